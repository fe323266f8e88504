package kmip

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"reflect"
	"runtime"
	"strings"
	"testing"

	"github.com/ovh/kmip-go"
	"github.com/ovh/kmip-go/payloads"
	"github.com/ovh/kmip-go/ttlv"
)

// ---- small TTLV builders (package-internal twins of the external ones) ----

func ttlvLen(tag uint32, typ byte, length uint32, val []byte) []byte {
	b := []byte{byte(tag >> 16), byte(tag >> 8), byte(tag), typ}
	b = binary.BigEndian.AppendUint32(b, length)
	b = append(b, val...)
	for len(b)%8 != 0 {
		b = append(b, 0)
	}
	return b
}

func ttlvOf(tag uint32, typ byte, val []byte) []byte { return ttlvLen(tag, typ, uint32(len(val)), val) }

func structOf(tag uint32, kids ...[]byte) []byte {
	return ttlvOf(tag, typeStructure, bytes.Join(kids, nil))
}

func enumOf(tag uint32, v uint32) []byte {
	return ttlvOf(tag, typeEnumeration, binary.BigEndian.AppendUint32(nil, v))
}

func bytesOf(tag uint32, b []byte) []byte { return ttlvOf(tag, typeByteString, b) }

func headerOf(count int32) []byte {
	return ttlv.MarshalTTLV(&kmip.RequestHeader{ProtocolVersion: kmip.V1_4, BatchCount: count})
}

func payloadOf(pl kmip.OperationPayload) []byte {
	enc := ttlv.NewTTLVEncoder()
	enc.TagAny(kmip.TagRequestPayload, pl)
	return enc.Bytes()
}

func itemOf(op kmip.Operation, fields ...[]byte) []byte {
	return structOf(tagBatchItem, append([][]byte{enumOf(tagOperation, uint32(op))}, fields...)...)
}

func messageOf(parts ...[]byte) []byte { return structOf(tagRequestMessage, parts...) }

func emptyPayload() []byte { return structOf(tagRequestPayload) }

func TestNextItem(t *testing.T) {
	cases := []struct {
		name    string
		in      []byte
		tag     uint32
		typ     byte
		val     []byte
		rest    int
		wantErr string
	}{
		{name: "empty", in: nil, wantErr: "truncated item header (0 bytes)"},
		{name: "7 bytes", in: make([]byte, 7), wantErr: "truncated item header (7 bytes)"},
		{name: "integer", in: ttlvOf(0x420001, typeInteger, []byte{0, 0, 0, 5}), tag: 0x420001, typ: typeInteger, val: []byte{0, 0, 0, 5}},
		{name: "integer then more", in: append(ttlvOf(0x420001, typeInteger, []byte{0, 0, 0, 5}), make([]byte, 9)...), tag: 0x420001, typ: typeInteger, val: []byte{0, 0, 0, 5}, rest: 9},
		{name: "text padded", in: ttlvOf(0x420002, typeTextString, []byte("abc")), tag: 0x420002, typ: typeTextString, val: []byte("abc")},
		{name: "empty byte string", in: ttlvOf(0x420003, typeByteString, nil), tag: 0x420003, typ: typeByteString, val: []byte{}},
		{name: "empty structure", in: ttlvOf(0x420004, typeStructure, nil), tag: 0x420004, typ: typeStructure, val: []byte{}},
		{name: "big integer of 16 bytes", in: ttlvOf(0x420005, typeBigInteger, make([]byte, 16)), tag: 0x420005, typ: typeBigInteger, val: make([]byte, 16)},
		{name: "date-time", in: ttlvOf(0x420006, typeDateTime, make([]byte, 8)), tag: 0x420006, typ: typeDateTime, val: make([]byte, 8)},
		{name: "text missing its padding", in: ttlvOf(0x420002, typeTextString, []byte("abc"))[:11], wantErr: "announces 3 bytes, only 3 remain"},
		{name: "length past the buffer", in: ttlvLen(0x420002, typeTextString, 9, []byte("abcdefgh")), wantErr: "announces 9 bytes, only 8 remain"},
		{name: "length of 4 GiB", in: ttlvLen(0x420002, typeByteString, 0xFFFFFFFF, nil), wantErr: "announces 4294967295 bytes"},
		{name: "type 0x00", in: ttlvOf(0x420002, 0x00, nil), wantErr: "unknown type 00"},
		{name: "type 0x0B", in: ttlvOf(0x420002, 0x0B, nil), wantErr: "unknown type 0B"},
		{name: "type 0xFF", in: ttlvOf(0x420002, 0xFF, nil), wantErr: "unknown type FF"},
		{name: "integer of 8", in: ttlvOf(0x420002, typeInteger, make([]byte, 8)), wantErr: "has length 8, want 4"},
		{name: "enumeration of 0", in: ttlvOf(0x420002, typeEnumeration, nil), wantErr: "has length 0, want 4"},
		{name: "interval of 8", in: ttlvOf(0x420002, typeInterval, make([]byte, 8)), wantErr: "has length 8, want 4"},
		{name: "long integer of 4", in: ttlvOf(0x420002, typeLongInteger, make([]byte, 4)), wantErr: "has length 4, want 8"},
		{name: "boolean of 1", in: ttlvOf(0x420002, typeBoolean, []byte{1}), wantErr: "has length 1, want 8"},
		{name: "date-time of 16", in: ttlvOf(0x420002, typeDateTime, make([]byte, 16)), wantErr: "has length 16, want 8"},
		{name: "structure of 12", in: ttlvOf(0x420002, typeStructure, make([]byte, 12)), wantErr: "is not a multiple of 8"},
		{name: "big integer of 12", in: ttlvOf(0x420002, typeBigInteger, make([]byte, 12)), wantErr: "is not a multiple of 8"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			it, rest, err := nextItem(c.in)
			if c.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), c.wantErr) {
					t.Fatalf("error %v, want %q", err, c.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if it.tag != c.tag || it.typ != c.typ || !bytes.Equal(it.val, c.val) || len(rest) != c.rest {
				t.Fatalf("item %06X/%02X %x, %d bytes left", it.tag, it.typ, it.val, len(rest))
			}
			if len(it.raw)%8 != 0 || len(it.raw)+len(rest) != len(c.in) || !bytes.Equal(it.raw, c.in[:len(it.raw)]) {
				t.Fatalf("raw of %d bytes does not cover the item", len(it.raw))
			}
		})
	}
}

func TestCheckTree(t *testing.T) {
	deep := func(n int) []byte {
		b := ttlvOf(0x420001, typeInteger, make([]byte, 4))
		for range n {
			b = structOf(0x420002, b)
		}
		return b
	}
	cases := []struct {
		name    string
		in      []byte
		depth   int
		wantErr string
	}{
		{name: "empty", in: nil, depth: 1},
		{name: "flat", in: append(ttlvOf(0x420001, typeInteger, make([]byte, 4)), ttlvOf(0x420002, typeTextString, []byte("x"))...), depth: 1},
		// Starting at depth 1 (inside the message), MaxDepth-1 nested
		// structures reach MaxDepth.
		{name: "deepest allowed", in: deep(MaxDepth - 1), depth: 1},
		{name: "one too deep", in: deep(MaxDepth), depth: 1, wantErr: "nest deeper than 16"},
		{name: "far too deep", in: deep(1000), depth: 1, wantErr: "nest deeper than 16"},
		{name: "entered too deep", in: nil, depth: MaxDepth + 1, wantErr: "nest deeper than 16"},
		{name: "bad item deep inside", in: structOf(0x420002, structOf(0x420003, ttlvOf(0x420001, typeInteger, make([]byte, 8)))), depth: 1, wantErr: "has length 8, want 4"},
		{name: "bad type deep inside", in: structOf(0x420002, structOf(0x420003, ttlvOf(0x420001, 0x0C, nil))), depth: 1, wantErr: "unknown type 0C"},
		{name: "inner length past its structure", in: append(structOf(0x420002, ttlvLen(0x420001, typeByteString, 24, make([]byte, 8))), make([]byte, 16)...), depth: 1, wantErr: "announces 24 bytes, only 8 remain"},
		{name: "trailing garbage", in: append(ttlvOf(0x420001, typeInteger, make([]byte, 4)), 1, 2, 3), depth: 1, wantErr: "truncated item header (3 bytes)"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := checkTree(c.in, c.depth)
			if c.wantErr == "" && err != nil {
				t.Fatal(err)
			}
			if c.wantErr != "" && (err == nil || !strings.Contains(err.Error(), c.wantErr)) {
				t.Fatalf("error %v, want %q", err, c.wantErr)
			}
		})
	}
}

func TestSplitRequest(t *testing.T) {
	h1 := headerOf(1)
	get := payloadOf(&payloads.GetRequestPayload{UniqueIdentifier: "k1"})
	ext := structOf(tagMessageExtension, ttlvOf(0x42009D, typeTextString, []byte("v")))
	many := func(n int) []byte {
		parts := [][]byte{headerOf(int32(n))}
		for range n {
			parts = append(parts, itemOf(kmip.OperationDiscoverVersions, emptyPayload()))
		}
		return messageOf(parts...)
	}
	cases := []struct {
		name    string
		msg     []byte
		items   []rawBatchItem
		wantErr string
	}{
		{name: "one item", msg: messageOf(h1, itemOf(kmip.OperationGet, bytesOf(tagUniqueBatchItemID, []byte("id")), get)),
			items: []rawBatchItem{{operation: uint32(kmip.OperationGet), hasOp: true, batchID: []byte("id"), payload: get}}},
		{name: "extension before the payload", msg: messageOf(h1, itemOf(kmip.OperationGet, ext, get)),
			items: []rawBatchItem{{operation: uint32(kmip.OperationGet), hasOp: true, payload: get, extension: ext}}},
		{name: "empty batch id", msg: messageOf(h1, itemOf(kmip.OperationGet, bytesOf(tagUniqueBatchItemID, nil), get)),
			items: []rawBatchItem{{operation: uint32(kmip.OperationGet), hasOp: true, batchID: []byte{}, payload: get}}},
		{name: "no payload", msg: messageOf(h1, itemOf(kmip.OperationGet)),
			items: []rawBatchItem{{operation: uint32(kmip.OperationGet), hasOp: true}}},
		{name: "no operation", msg: messageOf(h1, structOf(tagBatchItem, get)),
			items: []rawBatchItem{{err: errors.New("batch item has no Operation")}}},
		{name: "two operations", msg: messageOf(h1, itemOf(kmip.OperationGet, enumOf(tagOperation, 1), get)),
			items: []rawBatchItem{{err: errors.New("unexpected item 42005C (type 05) in a batch item")}}},
		{name: "two payloads", msg: messageOf(h1, itemOf(kmip.OperationGet, get, get)),
			items: []rawBatchItem{{err: errors.New("unexpected item 420079 (type 01) in a batch item")}}},
		{name: "payload of the wrong type", msg: messageOf(h1, itemOf(kmip.OperationGet, bytesOf(tagRequestPayload, nil))),
			items: []rawBatchItem{{err: errors.New("unexpected item 420079 (type 08) in a batch item")}}},
		{name: "MaxBatchItems", msg: many(MaxBatchItems)},
		{name: "trailing bytes", msg: append(messageOf(h1, itemOf(kmip.OperationGet, get)), make([]byte, 8)...), wantErr: "trailing bytes after the request message"},
		{name: "not a message", msg: nil, wantErr: "truncated item header"},
		{name: "no header", msg: messageOf(itemOf(kmip.OperationGet, get)), wantErr: "does not start with a Request Header"},
		{name: "header of the wrong type", msg: messageOf(bytesOf(tagRequestHeader, nil), itemOf(kmip.OperationGet, get)), wantErr: "does not start with a Request Header"},
		{name: "empty message", msg: messageOf(), wantErr: "does not start with a Request Header"},
		{name: "header only", msg: messageOf(h1), wantErr: "has no batch item"},
		{name: "two headers", msg: messageOf(h1, h1, itemOf(kmip.OperationGet, get)), wantErr: "unexpected item 420077 in the request message"},
		{name: "more than MaxBatchItems", msg: many(MaxBatchItems + 1), wantErr: "more than 256 batch items"},
		{name: "too deep", msg: messageOf(h1, itemOf(kmip.OperationGet, structOf(tagRequestPayload, nestedOf(MaxDepth)))), wantErr: "nest deeper"},
		{name: "bad length inside an item", msg: messageOf(h1, itemOf(kmip.OperationGet, structOf(tagRequestPayload, ttlvOf(0x420094, typeInteger, make([]byte, 8))))), wantErr: "has length 8, want 4"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			req, err := splitRequest(c.msg)
			if c.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), c.wantErr) {
					t.Fatalf("error %v, want %q", err, c.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.HasPrefix(req.header, []byte{0x42, 0x00, 0x77, typeStructure}) {
				t.Fatalf("header %x", req.header)
			}
			if c.items == nil {
				return
			}
			if len(req.items) != len(c.items) {
				t.Fatalf("%d items", len(req.items))
			}
			for i, got := range req.items {
				want := c.items[i]
				gotErr, wantErr := errText(got.err), errText(want.err)
				if wantErr != "" {
					// A broken item is known by its error alone.
					got, want = rawBatchItem{}, rawBatchItem{}
				}
				got.err, want.err = nil, nil
				if gotErr != wantErr || !reflect.DeepEqual(got, want) {
					t.Fatalf("item %d:\n got %+v (%s)\nwant %+v (%s)", i, got, gotErr, want, wantErr)
				}
			}
		})
	}
}

func nestedOf(n int) []byte {
	b := ttlvOf(0x420001, typeInteger, make([]byte, 4))
	for range n {
		b = structOf(0x420002, b)
	}
	return b
}

func errText(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// TestReadMessage: the length is checked against the limit before the body
// is read or a buffer allocated for it.
func TestReadMessage(t *testing.T) {
	valid := messageOf(headerOf(1), itemOf(kmip.OperationDiscoverVersions, emptyPayload()))
	cases := []struct {
		name     string
		in       []byte
		max      int
		want     error  // errors.Is target
		wantText string // or a plain error's text
		consumed int    // bytes read from the stream
	}{
		{name: "valid", in: append(slicesClone(valid), 9, 9, 9), max: 1 << 20, consumed: len(valid)},
		{name: "exactly max", in: valid, max: len(valid), consumed: len(valid)},
		{name: "one block over max", in: valid, max: len(valid) - 8, want: errTooLarge, consumed: 8},
		{name: "4 GiB announced", in: append([]byte{0x42, 0x00, 0x78, 0x01}, 0xFF, 0xFF, 0xFF, 0xF8), max: 1 << 20, want: errTooLarge, consumed: 8},
		{name: "wrong tag", in: append([]byte{0x42, 0x00, 0x7B, 0x01}, 0, 0, 0, 8), max: 1 << 20, want: errFraming, consumed: 8},
		{name: "wrong type", in: append([]byte{0x42, 0x00, 0x78, 0x02}, 0, 0, 0, 8), max: 1 << 20, want: errFraming, consumed: 8},
		{name: "length not a multiple of 8", in: append([]byte{0x42, 0x00, 0x78, 0x01}, 0, 0, 0, 9), max: 1 << 20, want: errFraming, consumed: 8},
		{name: "truncated header", in: []byte{0x42, 0x00, 0x78}, max: 1 << 20, want: io.ErrUnexpectedEOF, consumed: 3},
		{name: "nothing", in: nil, max: 1 << 20, want: io.EOF},
		{name: "truncated body", in: valid[:len(valid)-8], max: 1 << 20, want: io.ErrUnexpectedEOF, consumed: len(valid) - 8},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := &countingReader{b: c.in}
			var hdr [ttlvHeader]byte
			msg, err := readMessage(r, c.max, &hdr)
			if c.want == nil {
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(msg, valid) {
					t.Fatalf("read %x", msg)
				}
			} else if !errors.Is(err, c.want) {
				t.Fatalf("error %v, want %v", err, c.want)
			}
			if r.n != c.consumed {
				t.Fatalf("consumed %d bytes, want %d", r.n, c.consumed)
			}
		})
	}
	t.Run("no allocation for a refused length", func(t *testing.T) {
		in := []byte{0x42, 0x00, 0x78, 0x01, 0x7F, 0xFF, 0xFF, 0xF8}
		const runs = 100
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		for range runs {
			var hdr [ttlvHeader]byte
			if _, err := readMessage(&countingReader{b: in}, 1<<20, &hdr); !errors.Is(err, errTooLarge) {
				t.Fatal(err)
			}
		}
		runtime.ReadMemStats(&after)
		// The reader and the error; never a body buffer (2 GiB here).
		if per := (after.TotalAlloc - before.TotalAlloc) / runs; per > 1024 {
			t.Fatalf("%d bytes allocated to refuse a header", per)
		}
	})
}

func slicesClone(b []byte) []byte { return append([]byte(nil), b...) }

type countingReader struct {
	b []byte
	n int
}

func (r *countingReader) Read(p []byte) (int, error) {
	if len(r.b) == 0 {
		return 0, io.EOF
	}
	n := copy(p, r.b)
	r.b, r.n = r.b[n:], r.n+n
	return n, nil
}

// fuzzSeeds are valid requests of several shapes.
func fuzzSeeds() [][]byte {
	var seeds [][]byte
	for _, m := range []kmip.RequestMessage{
		kmip.NewRequestMessage(kmip.V1_4, &payloads.DiscoverVersionsRequestPayload{}),
		kmip.NewRequestMessage(kmip.V1_2, &payloads.GetRequestPayload{UniqueIdentifier: "abc"}, &payloads.ActivateRequestPayload{}),
		kmip.NewRequestMessage(kmip.V1_4, &payloads.CreateRequestPayload{ObjectType: kmip.ObjectTypeSymmetricKey, TemplateAttribute: kmip.TemplateAttribute{Attribute: []kmip.Attribute{
			{AttributeName: kmip.AttributeNameCryptographicAlgorithm, AttributeValue: kmip.CryptographicAlgorithmAES},
			{AttributeName: kmip.AttributeNameCryptographicLength, AttributeValue: int32(256)},
			{AttributeName: kmip.AttributeNameName, AttributeValue: kmip.Name{NameValue: "n", NameType: kmip.NameTypeUninterpretedTextString}},
		}}}),
		kmip.NewRequestMessage(kmip.V1_4, &payloads.EncryptRequestPayload{UniqueIdentifier: "k", Data: []byte("hello"),
			CryptographicParameters: &kmip.CryptographicParameters{BlockCipherMode: kmip.BlockCipherModeGCM}}),
		kmip.NewRequestMessage(kmip.V1_0, &payloads.QueryRequestPayload{QueryFunction: []kmip.QueryFunction{kmip.QueryFunctionOperations}}),
	} {
		seeds = append(seeds, ttlv.MarshalTTLV(&m))
	}
	ext := structOf(tagMessageExtension, ttlvOf(0x42009D, typeTextString, []byte("v")), ttlvOf(0x420009, typeBoolean, make([]byte, 8)), structOf(0x42009E))
	seeds = append(seeds,
		messageOf(headerOf(2), itemOf(kmip.OperationGet, bytesOf(tagUniqueBatchItemID, []byte{1}), emptyPayload(), ext), structOf(tagBatchItem, emptyPayload())),
		messageOf(headerOf(1), itemOf(kmip.OperationGet)),
	)
	return seeds
}

// FuzzSplitRequest: splitRequest never panics; a message it accepts is
// well formed and splits again identically once rebuilt from its parts.
func FuzzSplitRequest(f *testing.F) {
	for _, s := range fuzzSeeds() {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, msg []byte) {
		req, err := splitRequest(msg)
		if err != nil {
			return
		}
		if err := checkTree(msg, 0); err != nil {
			t.Fatalf("accepted a message checkTree refuses: %v", err)
		}
		if len(req.items) == 0 || len(req.items) > MaxBatchItems {
			t.Fatalf("accepted %d batch items", len(req.items))
		}
		again, err := splitRequest(slicesClone(msg))
		if err != nil || !reflect.DeepEqual(again, req) {
			t.Fatalf("a second split differs: %v", err)
		}
		// Rebuild the message from its parts, fields in canonical order.
		parts := [][]byte{req.header}
		var kept []rawBatchItem
		for _, bi := range req.items {
			if !bi.hasOp && bi.err == nil {
				t.Fatal("an item without Operation has no error")
			}
			if bi.payload != nil && !bytes.HasPrefix(bi.payload, []byte{0x42, 0x00, 0x79, typeStructure}) {
				t.Fatalf("payload %x", bi.payload[:8])
			}
			if bi.extension != nil && !bytes.HasPrefix(bi.extension, []byte{0x42, 0x00, 0x51, typeStructure}) {
				t.Fatalf("extension %x", bi.extension[:8])
			}
			if bi.err != nil {
				continue
			}
			fields := [][]byte{enumOf(tagOperation, bi.operation)}
			if bi.batchID != nil {
				fields = append(fields, bytesOf(tagUniqueBatchItemID, bi.batchID))
			}
			if bi.payload != nil {
				fields = append(fields, bi.payload)
			}
			if bi.extension != nil {
				fields = append(fields, bi.extension)
			}
			parts = append(parts, structOf(tagBatchItem, fields...))
			kept = append(kept, bi)
		}
		if len(kept) == 0 {
			return
		}
		rebuilt, err := splitRequest(messageOf(parts...))
		if err != nil {
			t.Fatalf("the rebuilt message is refused: %v", err)
		}
		if !bytes.Equal(rebuilt.header, req.header) || !reflect.DeepEqual(rebuilt.items, kept) {
			t.Fatalf("the rebuilt message splits differently:\n got %+v\nwant %+v", rebuilt.items, kept)
		}
	})
}

func TestDecodeSafely(t *testing.T) {
	if err := decodeSafely(func() error { return nil }); err != nil {
		t.Fatal(err)
	}
	want := errors.New("plain")
	if err := decodeSafely(func() error { return want }); err != want {
		t.Fatalf("error %v", err)
	}
	err := decodeSafely(func() error { panic("boom") })
	if err == nil || !strings.Contains(err.Error(), "undecodable input: boom") {
		t.Fatalf("a panic became %v", err)
	}
	// A real codec panic: decoding into a non-pointer.
	dec, derr := ttlv.NewTTLVDecoder(payloadOf(&payloads.GetRequestPayload{UniqueIdentifier: "x"}))
	if derr != nil {
		t.Fatal(derr)
	}
	if err := decodeSafely(func() error { return dec.TagAny(kmip.TagRequestPayload, struct{ X int }{}) }); err == nil {
		t.Fatal("no error from a panicking decode")
	}
}

// unencodable is a response payload the codec cannot encode (it panics).
type unencodable struct{ M map[string]int }

func (*unencodable) Operation() kmip.Operation { return kmip.OperationQuery }

func TestEncodeSafely(t *testing.T) {
	ok := &kmip.ResponseMessage{Header: kmip.ResponseHeader{ProtocolVersion: kmip.V1_4, BatchCount: 1},
		BatchItem: []kmip.ResponseBatchItem{{Operation: kmip.OperationQuery, ResultStatus: kmip.ResultStatusSuccess, ResponsePayload: &payloads.QueryResponsePayload{}}}}
	b, err := encodeSafely(ok)
	if err != nil || len(b) == 0 {
		t.Fatalf("%d bytes, %v", len(b), err)
	}
	bad := &kmip.ResponseMessage{Header: kmip.ResponseHeader{ProtocolVersion: kmip.V1_4, BatchCount: 1},
		BatchItem: []kmip.ResponseBatchItem{{Operation: kmip.OperationQuery, ResultStatus: kmip.ResultStatusSuccess, ResponsePayload: &unencodable{M: map[string]int{"a": 1}}}}}
	if _, err := encodeSafely(bad); err == nil || !strings.Contains(err.Error(), "encoder panic") {
		t.Fatalf("error %v", err)
	}
}
