package oasis

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/ovh/kmip-go"
)

// vectorNamed returns one vector of the corpus.
func vectorNamed(t *testing.T, name string) *Vector {
	t.Helper()
	for _, v := range loadAll(t) {
		if v.Name() == name {
			return v
		}
	}
	t.Fatalf("no vector %s", name)
	return nil
}

// payloadAttribute returns the Attribute called name in the payload of the
// first batch item of a response.
func payloadAttribute(resp *element, name string) (parent *element, index int) {
	pl := resp.child(kmip.TagBatchItem).child(kmip.TagResponsePayload)
	for i, c := range pl.Children {
		if c.Tag == kmip.TagAttribute && attributeName(c) == name {
			return pl, i
		}
	}
	return pl, -1
}

// failingStep runs v against the fake server with edit applied to the
// response of step and returns the step that failed.
func failingStep(t *testing.T, v *Vector, step int, edit func(resp *element)) Step {
	t.Helper()
	f := newFakeServer(t, v)
	f.edit = func(i int, resp *element) {
		if i == step {
			edit(resp)
		}
	}
	res := v.Run(context.Background(), f)
	if res.Passed() {
		t.Fatalf("the edited response passed")
	}
	if res.FirstFail != step || len(res.Steps) != step+1 {
		t.Fatalf("failed at step %d after %d steps, want step %d and a stop: %s", res.FirstFail, len(res.Steps), step, res.Failure())
	}
	return res.Steps[step]
}

// wantDiff checks that the step has a diff at path whose text contains
// every fragment.
func wantDiff(t *testing.T, s Step, path string, fragments ...string) {
	t.Helper()
	for _, d := range s.Diffs {
		if d.Path != path {
			continue
		}
		text := d.String()
		for _, f := range fragments {
			if !strings.Contains(text, f) {
				t.Errorf("diff %q lacks %q", text, f)
			}
		}
		return
	}
	t.Errorf("no diff at %s; diffs: %v", path, s.Diffs)
}

func TestChangedValueIsReported(t *testing.T) {
	v := vectorNamed(t, "v1.4/SKLC-M-2-14.xml")
	s := failingStep(t, v, 1, func(resp *element) {
		pl, i := payloadAttribute(resp, "State")
		pl.Children[i].child(kmip.TagAttributeValue).Value = "Active"
	})
	wantDiff(t, s, "BatchItem[0]/ResponsePayload/Attribute[0]/AttributeValue",
		`attribute "State"`, "expected Enumeration PreActive", "got Enumeration Active", "vector line")
}

func TestMissingAttributeIsReported(t *testing.T) {
	v := vectorNamed(t, "v1.4/SKLC-M-2-14.xml")
	s := failingStep(t, v, 1, func(resp *element) {
		pl, i := payloadAttribute(resp, "Cryptographic Length")
		pl.Children = append(pl.Children[:i], pl.Children[i+1:]...)
	})
	wantDiff(t, s, "BatchItem[0]/ResponsePayload/Attribute[5]", "missing attribute", `"Cryptographic Length"`)
}

func TestUnrequestedAttributeIsReported(t *testing.T) {
	v := vectorNamed(t, "v1.4/SKLC-M-2-14.xml")
	s := failingStep(t, v, 1, func(resp *element) {
		pl, _ := payloadAttribute(resp, "State")
		pl.Children = append(pl.Children, &element{Name: "Attribute", Tag: kmip.TagAttribute, Type: 1, Children: []*element{
			{Name: "AttributeName", Tag: kmip.TagAttributeName, Type: 7, Value: "Contact Information", HasValue: true},
			{Name: "AttributeValue", Tag: kmip.TagAttributeValue, Type: 7, Value: "nobody asked", HasValue: true},
		}})
	})
	wantDiff(t, s, "BatchItem[0]/ResponsePayload/Attribute[9]", "unexpected attribute", `"Contact Information"`)
}

func TestWrongResultReasonIsReported(t *testing.T) {
	v := vectorNamed(t, "v1.4/SKLC-M-2-14.xml")
	s := failingStep(t, v, 4, func(resp *element) {
		resp.child(kmip.TagBatchItem).child(kmip.TagResultReason).Value = "ItemNotFound"
	})
	wantDiff(t, s, "BatchItem[0]/ResultReason", "expected Enumeration PermissionDenied", "got Enumeration ItemNotFound")
}

func TestMismatchedBoundIdentifierIsReported(t *testing.T) {
	v := vectorNamed(t, "v1.4/SKLC-M-2-14.xml")
	s := failingStep(t, v, 2, func(resp *element) {
		resp.child(kmip.TagBatchItem).child(kmip.TagResponsePayload).child(kmip.TagUniqueIdentifier).Value = "$SOME_OTHER_OBJECT"
	})
	wantDiff(t, s, "BatchItem[0]/ResponsePayload/UniqueIdentifier",
		"placeholder bound earlier to another value", "$UNIQUE_IDENTIFIER_0 = TextString", "fake-some_other_object")
}

func TestReusedIdentifierIsReported(t *testing.T) {
	v := vectorNamed(t, "v1.4/AKLC-M-1-14.xml")
	s := failingStep(t, v, 0, func(resp *element) {
		resp.child(kmip.TagBatchItem).child(kmip.TagResponsePayload).child(kmip.TagPublicKeyUniqueIdentifier).Value = "$UNIQUE_IDENTIFIER_0"
	})
	wantDiff(t, s, "BatchItem[0]/ResponsePayload/PublicKeyUniqueIdentifier", "already returned for $UNIQUE_IDENTIFIER_0")
}

func TestKnownKeyCiphertextMustMatch(t *testing.T) {
	v := vectorNamed(t, "v1.4/CS-BC-M-4-14.xml")
	s := failingStep(t, v, 1, func(resp *element) {
		d := resp.child(kmip.TagBatchItem).child(kmip.TagResponsePayload).child(kmip.TagData)
		d.Value = "00" + d.Value[2:]
	})
	wantDiff(t, s, "BatchItem[0]/ResponsePayload/Data", "expected ByteString", "got ByteString 00")
}

func TestGeneratedKeyCiphertextLengthMustMatch(t *testing.T) {
	v := vectorNamed(t, "v1.4/CS-BC-M-1-14.xml")
	s := failingStep(t, v, 1, func(resp *element) {
		d := resp.child(kmip.TagBatchItem).child(kmip.TagResponsePayload).child(kmip.TagData)
		d.Value += "00"
	})
	wantDiff(t, s, "BatchItem[0]/ResponsePayload/Data", "length of a server-random value differs", "expected 16 bytes, got 17 bytes")
}

func TestDateOutsideWindowIsReported(t *testing.T) {
	v := vectorNamed(t, "v1.4/SKLC-M-2-14.xml")
	s := failingStep(t, v, 1, func(resp *element) {
		pl, i := payloadAttribute(resp, "Initial Date")
		pl.Children[i].child(kmip.TagAttributeValue).Value = "$NOW-86400"
	})
	wantDiff(t, s, "BatchItem[0]/ResponsePayload/Attribute[7]/AttributeValue", "date outside the allowed window")
}

func TestUnrequestedQueryFieldIsReported(t *testing.T) {
	v := vectorNamed(t, "v1.4/TC-Q-RNGS-1-14.xml")
	s := failingStep(t, v, 0, func(resp *element) {
		pl := resp.child(kmip.TagBatchItem).child(kmip.TagResponsePayload)
		pl.Children = append(pl.Children, &element{Name: "Operation", Tag: kmip.TagOperation, Type: 5, Value: "Get", HasValue: true})
	})
	wantDiff(t, s, "BatchItem[0]/ResponsePayload/Operation", "field not asked for by any requested Query Function")
}

func TestResultMessageNeverFails(t *testing.T) {
	v := vectorNamed(t, "v1.4/SKLC-M-2-14.xml")
	f := newFakeServer(t, v)
	f.edit = func(i int, resp *element) {
		if i == 4 {
			bi := resp.child(kmip.TagBatchItem)
			bi.child(kmip.TagResultMessage).Value = "completely different words"
		}
	}
	if res := v.Run(context.Background(), f); !res.Passed() {
		t.Fatalf("a different Result Message failed the vector: %s", res.Failure())
	}
}

type failingTransport struct {
	inner RoundTripper
	at    int
	n     int
	reply []byte
}

func (f *failingTransport) RoundTrip(ctx context.Context, req []byte) ([]byte, error) {
	n := f.n
	f.n++
	if n == f.at {
		if f.reply != nil {
			return f.reply, nil
		}
		return nil, errors.New("connection reset")
	}
	return f.inner.RoundTrip(ctx, req)
}

func TestTransportErrorStopsTheRun(t *testing.T) {
	v := vectorNamed(t, "v1.4/SKLC-M-2-14.xml")
	res := v.Run(context.Background(), &failingTransport{inner: newFakeServer(t, v), at: 2})
	if res.Passed() || res.FirstFail != 2 || len(res.Steps) != 3 {
		t.Fatalf("got first failure %d after %d steps", res.FirstFail, len(res.Steps))
	}
	if err := res.Steps[2].Err; err == nil || !strings.Contains(err.Error(), "connection reset") {
		t.Fatalf("step error %v", err)
	}
	if !strings.Contains(res.Failure(), "step 2 (Activate") {
		t.Fatalf("failure text %q", res.Failure())
	}
}

func TestGarbageResponseIsAnError(t *testing.T) {
	v := vectorNamed(t, "v1.4/SKLC-M-2-14.xml")
	for name, reply := range map[string][]byte{
		"short":        {0x42, 0x00},
		"huge length":  {0x42, 0x00, 0x7B, 0x01, 0xFF, 0xFF, 0xFF, 0xF0},
		"not response": {0x42, 0x00, 0x78, 0x01, 0x00, 0x00, 0x00, 0x00},
	} {
		t.Run(name, func(t *testing.T) {
			res := v.Run(context.Background(), &failingTransport{inner: newFakeServer(t, v), at: 0, reply: reply})
			if res.Passed() || res.Steps[0].Err == nil {
				t.Fatalf("garbage accepted: %+v", res.Steps[0])
			}
		})
	}
}

func TestCancelledContextStopsTheRun(t *testing.T) {
	v := vectorNamed(t, "v1.4/SKLC-M-2-14.xml")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	res := v.Run(ctx, newFakeServer(t, v))
	if res.Passed() || !errors.Is(res.Steps[0].Err, context.Canceled) {
		t.Fatalf("cancelled run: %+v", res.Steps)
	}
}
