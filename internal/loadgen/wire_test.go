package loadgen

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ovh/kmip-go"
	"github.com/ovh/kmip-go/payloads"
	"github.com/ovh/kmip-go/ttlv"
)

// response encodes a response message with the codec, as a server does.
func response(items ...kmip.ResponseBatchItem) []byte {
	return ttlv.MarshalTTLV(&kmip.ResponseMessage{
		Header:    kmip.ResponseHeader{ProtocolVersion: kmip.V1_4, TimeStamp: time.Unix(1700000000, 0), BatchCount: int32(len(items))},
		BatchItem: items,
	})
}

func encryptAnswer(data []byte) kmip.ResponseBatchItem {
	return kmip.ResponseBatchItem{Operation: kmip.OperationEncrypt, ResultStatus: kmip.ResultStatusSuccess,
		ResponsePayload: &payloads.EncryptResponsePayload{UniqueIdentifier: "7", Data: data, IVCounterNonce: make([]byte, 12), AuthenticatedEncryptionTag: make([]byte, 16)}}
}

func failure(op kmip.Operation, reason kmip.ResultReason, msg string) kmip.ResponseBatchItem {
	return kmip.ResponseBatchItem{Operation: op, ResultStatus: kmip.ResultStatusOperationFailed, ResultReason: reason, ResultMessage: msg}
}

func encryptFixture(size int) *request {
	fx := &fixture{keyID: "7", plaintext: make([]byte, size), version: kmip.V1_4, payloadSize: size}
	return fx.encryptRequest()
}

func TestVerifyAnswers(t *testing.T) {
	q := encryptFixture(32)
	cases := []struct {
		name string
		msg  []byte
		kind string // "" for success
	}{
		{"success", response(encryptAnswer(make([]byte, 32))), ""},
		{"failed with reason", response(failure(kmip.OperationEncrypt, kmip.ResultReasonPermissionDenied, "no")), "kmip: PermissionDenied"},
		{"failed without reason", response(kmip.ResponseBatchItem{Operation: kmip.OperationEncrypt, ResultStatus: kmip.ResultStatusOperationFailed}), "kmip: OperationFailed (no reason)"},
		{"whole-message failure", response(kmip.ResponseBatchItem{ResultStatus: kmip.ResultStatusOperationFailed, ResultReason: kmip.ResultReasonInvalidMessage}), "kmip: InvalidMessage"},
		{"other operation", response(kmip.ResponseBatchItem{Operation: kmip.OperationGet, ResultStatus: kmip.ResultStatusSuccess,
			ResponsePayload: &payloads.GetResponsePayload{ObjectType: kmip.ObjectTypeSymmetricKey, UniqueIdentifier: "7"}}), "protocol: wrong operation"},
		{"no payload", response(kmip.ResponseBatchItem{Operation: kmip.OperationEncrypt, ResultStatus: kmip.ResultStatusSuccess}), "protocol: unexpected payload"},
		{"short ciphertext", response(encryptAnswer(make([]byte, 31))), "protocol: unexpected payload"},
		{"two items", response(encryptAnswer(make([]byte, 32)), encryptAnswer(make([]byte, 32))), "protocol: batch count"},
		{"truncated", response(encryptAnswer(make([]byte, 32)))[:40], "protocol: undecodable response"},
		{"trailing bytes", append(response(encryptAnswer(make([]byte, 32))), make([]byte, 8)...), "protocol: undecodable response"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := q.verify(c.msg)
			switch {
			case c.kind == "" && err != nil:
				t.Fatalf("verify: %v", err)
			case c.kind != "" && err == nil:
				t.Fatalf("verify accepted it, want %s", c.kind)
			case c.kind != "" && errorKind(err) != c.kind:
				t.Fatalf("error %q counted as %q, want %q", err, errorKind(err), c.kind)
			}
		})
	}
}

func TestVerifyRejectsLyingLength(t *testing.T) {
	msg := response(encryptAnswer(make([]byte, 32)))
	// Find the Data item and make it claim more than the payload holds.
	i := bytes.Index(msg, []byte{0x42, 0x00, 0xC2, typeByteString})
	if i < 0 {
		t.Fatal("no Data item in the encoding")
	}
	binary.BigEndian.PutUint32(msg[i+4:], 1<<30)
	if err := encryptFixture(32).verify(msg); errorKind(err) != "protocol: undecodable response" {
		t.Fatalf("got %v, want an undecodable response", err)
	}
}

func TestReadFrame(t *testing.T) {
	good := response(encryptAnswer(make([]byte, 32)))
	hdr := func(tag uint32, typ byte, n uint32) []byte {
		b := []byte{byte(tag >> 16), byte(tag >> 8), byte(tag), typ, 0, 0, 0, 0}
		binary.BigEndian.PutUint32(b[4:], n)
		return b
	}
	t.Run("reads exactly one message and reuses the buffer", func(t *testing.T) {
		r := bytes.NewReader(append(append([]byte{}, good...), good...))
		buf := make([]byte, 0, 1024)
		first, err := readFrame(r, buf)
		if err != nil || !bytes.Equal(first, good) {
			t.Fatalf("first frame: %v", err)
		}
		second, err := readFrame(r, first)
		if err != nil || !bytes.Equal(second, good) || &second[0] != &buf[:1][0] {
			t.Fatalf("second frame: %v (buffer reused: %v)", err, err == nil && &second[0] == &buf[:1][0])
		}
		if _, err := readFrame(r, second); !errors.Is(err, io.EOF) {
			t.Fatalf("after the last frame: %v, want EOF", err)
		}
	})
	cases := []struct {
		name, want string
		in         []byte
	}{
		{"oversized, refused before reading", "oversized response", hdr(kmip.TagResponseMessage, typeStructure, 1<<30)},
		{"not a response", "bad framing", hdr(kmip.TagRequestMessage, typeStructure, 8)},
		{"not a structure", "bad framing", hdr(kmip.TagResponseMessage, typeByteString, 8)},
		{"length not padded", "bad framing", hdr(kmip.TagResponseMessage, typeStructure, 13)},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			// Only the header is there: an error proves nothing more was read.
			_, err := readFrame(bytes.NewReader(c.in), nil)
			var pe *protocolError
			if !errors.As(err, &pe) || pe.kind != c.want {
				t.Fatalf("got %v, want a %q protocol error", err, c.want)
			}
		})
	}
	t.Run("cut short", func(t *testing.T) {
		if _, err := readFrame(bytes.NewReader(good[:len(good)-8]), nil); !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Fatalf("got %v, want unexpected EOF", err)
		}
	})
}

func TestErrorKinds(t *testing.T) {
	cases := []struct {
		err  error
		want string
	}{
		{io.EOF, "network: connection closed"},
		{errors.New("remote error: tls: certificate required"), "tls: remote certificate required"},
		{&protocolError{kind: "bad framing"}, "protocol: bad framing"},
		{&resultError{status: kmip.ResultStatusOperationFailed, reason: kmip.ResultReasonItemNotFound}, "kmip: ItemNotFound"},
		{&resultError{status: kmip.ResultStatusOperationPending}, "kmip: status OperationPending"},
		{errors.New("something else"), "network: other"},
	}
	for _, c := range cases {
		if got := errorKind(c.err); got != c.want {
			t.Errorf("errorKind(%v) = %q, want %q", c.err, got, c.want)
		}
	}
}

// FuzzParseResponse: the scanner never panics or reads out of bounds, and
// whatever both it and the codec decode has the same status. The seed in
// testdata made the codec panic (an Integer with a lying length).
func FuzzParseResponse(f *testing.F) {
	f.Add(response(encryptAnswer(make([]byte, 32))))
	f.Add(response(failure(kmip.OperationGet, kmip.ResultReasonItemNotFound, "not found")))
	f.Add(response(kmip.ResponseBatchItem{Operation: kmip.OperationLocate, ResultStatus: kmip.ResultStatusSuccess,
		ResponsePayload: &payloads.LocateResponsePayload{UniqueIdentifier: []string{"1", "2"}}}))
	f.Add(response(encryptAnswer(nil), encryptAnswer(nil)))
	f.Fuzz(func(t *testing.T, msg []byte) {
		res, err := parseResponse(msg)
		if err != nil {
			var pe *protocolError
			if !errors.As(err, &pe) {
				t.Fatalf("a parse error that is not a protocol error: %v", err)
			}
			return
		}
		if res.payload != nil {
			scanTop(res.payload, func(ttlvItem) error { return nil })
			firstValue(res.payload, kmip.TagData, typeByteString)
		}
		// The codec panics on some malformed messages; decodeResponse
		// turns that into an error, and only a clean decode is compared.
		full, err := decodeResponse(msg)
		if err == nil && len(full.BatchItem) == 1 && full.BatchItem[0].ResultStatus != res.status {
			t.Fatalf("scanner status %v, codec status %v", res.status, full.BatchItem[0].ResultStatus)
		}
	})
}

// The scanner checks an Encrypt answer without the reflective codec; these
// two benchmarks compare it with a full decode (the numbers are in the
// package's report).
func BenchmarkVerifyEncryptAnswer(b *testing.B) {
	q := encryptFixture(32)
	msg := response(encryptAnswer(make([]byte, 32)))
	b.ReportAllocs()
	for b.Loop() {
		if err := q.verify(msg); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkCodecDecodeEncryptAnswer(b *testing.B) {
	msg := response(encryptAnswer(make([]byte, 32)))
	b.ReportAllocs()
	for b.Loop() {
		var resp kmip.ResponseMessage
		if err := ttlv.UnmarshalTTLV(msg, &resp); err != nil || resp.BatchItem[0].ResultStatus != kmip.ResultStatusSuccess {
			b.Fatal(err)
		}
	}
}

func TestResultJSONIsStable(t *testing.T) {
	res := Result{Op: OpEncrypt, Conns: 16, Size: 32, Pipeline: 1, KMIPVersion: "1.4", TLSVersion: "TLS 1.3", Duration: 10 * time.Second,
		Ops: 1000, OpsPerSec: 100, Latency: Latency{P50: 1500 * time.Microsecond, P95: 2 * time.Millisecond, P99: 3 * time.Millisecond, Max: 9 * time.Millisecond},
		ClientCPUPerOp: 42 * time.Microsecond}
	out, err := res.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	want := `{"op":"encrypt","conns":16,"size":32,"duration_s":10,"ops":1000,"ops_per_s":100,"errors":{},` +
		`"latency_ms":{"p50":1.5,"p95":2,"p99":3,"max":9},"client_cpu_us_per_op":42,"kmip_version":"1.4",` +
		`"pipeline":1,"tls_version":"TLS 1.3","resumed":0,"interrupted":false,"warmup_ops":0}`
	if string(out) != want {
		t.Fatalf("JSON\n%s\nwant\n%s", out, want)
	}
}

func TestDecodeResponseSurvivesCodecPanic(t *testing.T) {
	msg, err := os.ReadFile("testdata/fuzz/FuzzParseResponse/803284ae75372478")
	if err != nil {
		t.Fatal(err)
	}
	// The corpus file is Go fuzz syntax: one []byte literal.
	lit := strings.TrimSpace(strings.SplitN(string(msg), "\n", 2)[1])
	raw, err := strconv.Unquote(strings.TrimSuffix(strings.TrimPrefix(lit, "[]byte("), ")"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := decodeResponse([]byte(raw)); errorKind(err) != "protocol: undecodable response" {
		t.Fatalf("got %v, want an undecodable response", err)
	}
}
