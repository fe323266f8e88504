package oasis

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/ovh/kmip-go"
	"github.com/ovh/kmip-go/ttlv"
)

// recorder keeps the decoded requests that pass through it.
type recorder struct {
	inner RoundTripper
	reqs  []ttlv.Value
}

func (r *recorder) RoundTrip(ctx context.Context, req []byte) ([]byte, error) {
	v, err := decodeAny(req)
	if err != nil {
		return nil, err
	}
	r.reqs = append(r.reqs, v)
	return r.inner.RoundTrip(ctx, req)
}

func TestNowIsTheStartOfTheRun(t *testing.T) {
	start := time.Date(2030, 5, 6, 7, 8, 9, 500, time.UTC)
	req := strings.Replace(createRequest, `<Attribute>
          <AttributeName type="TextString" value="Cryptographic Algorithm"/>`, `<Attribute>
          <AttributeName type="TextString" value="Activation Date"/>
          <AttributeValue type="DateTime" value="$NOW-3600"/>
        </Attribute>
        <Attribute>
          <AttributeName type="TextString" value="Cryptographic Algorithm"/>`, 1)
	v, err := Parse("v1.2", "X-1-12.xml", []byte(req+createResponse+req+strings.ReplaceAll(createResponse, "_0", "_1")))
	if err != nil {
		t.Fatal(err)
	}
	clock := start
	rec := &recorder{inner: newFakeServer(t, v)}
	res := v.RunWith(context.Background(), rec, Options{Now: func() time.Time { clock = clock.Add(90 * time.Second); return clock }})
	if !res.Passed() {
		t.Fatal(res.Failure())
	}
	want := start.Add(90*time.Second - time.Hour).Truncate(time.Second)
	for i, r := range rec.reqs {
		var got time.Time
		walkValues(r, func(x ttlv.Value) {
			if t, ok := x.Value.(time.Time); ok && x.Tag == kmip.TagAttributeValue {
				got = t
			}
		})
		if !got.Equal(want) {
			t.Errorf("request %d: Activation Date %v, want %v", i, got, want)
		}
	}
}

func repeatVector(t *testing.T) *Vector {
	t.Helper()
	second := strings.ReplaceAll(createResponse, "_0", "_1")
	v, err := Parse("v1.2", "X-1-12.xml", []byte("<KMIP>"+createRequest+createResponse+"\n# [REPEAT] until created\n"+createRequest+second+"</KMIP>"))
	if err != nil {
		t.Fatal(err)
	}
	if !v.Pairs[1].Repeat {
		t.Fatal("repeat not marked")
	}
	return v
}

func wrongObjectType(resp *element) {
	resp.child(kmip.TagBatchItem).child(kmip.TagResponsePayload).child(kmip.TagObjectType).Value = "SecretData"
}

func TestRepeatResendsUntilTheResponseMatches(t *testing.T) {
	v := repeatVector(t)
	f := newFakeServer(t, v)
	f.stall, f.stallEdit = map[int]int{1: 2}, wrongObjectType
	res := v.RunWith(context.Background(), f, Options{RepeatInterval: time.Millisecond, RepeatTimeout: 10 * time.Second})
	if !res.Passed() {
		t.Fatal(res.Failure())
	}
	if notes := strings.Join(res.Steps[1].Notes, "\n"); !strings.Contains(notes, "sent 3 times") {
		t.Fatalf("notes %q", notes)
	}
}

func TestRepeatGivesUp(t *testing.T) {
	v := repeatVector(t)
	f := newFakeServer(t, v)
	f.stall, f.stallEdit = map[int]int{1: 1 << 30}, wrongObjectType
	res := v.RunWith(context.Background(), f, Options{RepeatInterval: time.Millisecond, RepeatTimeout: 30 * time.Millisecond})
	if res.Passed() || res.FirstFail != 1 {
		t.Fatalf("got %+v", res)
	}
	wantDiff(t, res.Steps[1], "BatchItem[0]/ResponsePayload/ObjectType", "expected Enumeration SymmetricKey", "got Enumeration SecretData")
}

func TestUnrepeatedStepFailsAtOnce(t *testing.T) {
	v := repeatVector(t)
	v.Pairs[1].Repeat = false
	f := newFakeServer(t, v)
	f.stall, f.stallEdit = map[int]int{1: 1}, wrongObjectType
	if res := v.Run(context.Background(), f); res.Passed() {
		t.Fatal("a wrong answer passed without [REPEAT]")
	}
}
