package oasis

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// seedVectors adds a few small vectors of the corpus to a fuzz corpus.
func seedVectors(f *testing.F) []string {
	root := vectorRoot(f)
	var texts []string
	for _, name := range []string{"v1.4/TC-Q-CAP-1-14.xml", "v1.4/CS-BC-M-1-14.xml"} {
		data, err := os.ReadFile(filepath.Join(root, name))
		if err != nil {
			f.Fatal(err)
		}
		texts = append(texts, string(data))
	}
	return texts
}

// FuzzParse checks that no vector text makes the loader or a run against
// the fake server panic, and that a vector that loads can be run.
func FuzzParse(f *testing.F) {
	for _, s := range seedVectors(f) {
		f.Add(s)
	}
	f.Add(createRequest + createResponse)
	f.Fuzz(func(t *testing.T, text string) {
		v, err := Parse("v1.4", "FUZZ-1-14.xml", []byte(text))
		if err != nil {
			return
		}
		if len(v.Pairs) == 0 {
			t.Fatal("a vector without pairs loaded")
		}
		res := v.RunWith(context.Background(), newFakeServer(t, v), Options{RepeatTimeout: -1})
		if len(res.Steps) == 0 {
			t.Fatal("no step ran")
		}
	})
}

// FuzzResponse feeds arbitrary bytes as the server's answer to the first
// request of a vector: the comparison must fail cleanly, never panic.
func FuzzResponse(f *testing.F) {
	v, err := Parse("v1.2", "SKLC-M-1-12.xml", []byte(createRequest+createResponse))
	if err != nil {
		f.Fatal(err)
	}
	good, err := newFakeServer(f, v).RoundTrip(context.Background(), mustEncode(f, v.Pairs[0].Request))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add(good[:len(good)/2])
	f.Add([]byte{0x42, 0x00, 0x7B, 0x01, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, resp []byte) {
		res := v.Run(context.Background(), cannedResponse(resp))
		if !res.Passed() && res.Failure() == "" {
			t.Fatal("a failure without a reason")
		}
	})
}

// FuzzReadMessage checks the framing reader against arbitrary input.
func FuzzReadMessage(f *testing.F) {
	f.Add(message(0x42007B, 16))
	f.Add([]byte{0x42, 0x00, 0x7B, 0x01, 0xFF, 0xFF, 0xFF, 0xF8})
	f.Fuzz(func(t *testing.T, in []byte) {
		msg, err := ReadMessage(bytes.NewReader(in))
		if err != nil {
			return
		}
		if len(msg) > MaxMessageSize || len(msg) < 8 || !bytes.Equal(msg, in[:len(msg)]) {
			t.Fatalf("bad message of %d bytes from %d", len(msg), len(in))
		}
	})
}

type cannedResponse []byte

func (c cannedResponse) RoundTrip(context.Context, []byte) ([]byte, error) { return c, nil }

func mustEncode(tb testing.TB, request string) []byte {
	tb.Helper()
	st := newRunState(time.Now(), Options{})
	text, err := rewriteRequest(request, st.requestValue)
	if err != nil {
		tb.Fatal(err)
	}
	b, err := encodeRequest(text)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}
