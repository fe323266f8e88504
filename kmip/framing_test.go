package kmip_test

import (
	"bytes"
	"encoding/binary"
	"runtime"
	"testing"
	"time"

	"github.com/minikms/minikms/kmip"
	okmip "github.com/ovh/kmip-go"
	"github.com/ovh/kmip-go/payloads"
	"github.com/ovh/kmip-go/ttlv"
)

// framingMaxMessage is the MaxMessageSize of the framing tests: small, so
// "too large" needs no large buffer, yet above a full batch of
// MaxBatchItems small items.
const framingMaxMessage = 16 << 10

// discoverItem is a minimal valid batch item.
func discoverItem(id string) []byte {
	return rawItem(okmip.OperationDiscoverVersions, id, tStruct(okmip.TagRequestPayload))
}

func validRequest() []byte {
	return rawMessage(rawHeader(hdr(v14, 1)), discoverItem("a"))
}

// header8 is a bare message header: tag, type, length.
func header8(tag int, typ byte, length uint32) []byte {
	b := []byte{byte(tag >> 16), byte(tag >> 8), byte(tag), typ}
	return binary.BigEndian.AppendUint32(b, length)
}

// nested wraps depth structures around the innermost value.
func nested(depth int) []byte {
	b := tText(okmip.TagVendorIdentification, "x")
	for range depth {
		b = tStruct(okmip.TagVendorExtension, b)
	}
	return b
}

// extensionItem is a DiscoverVersions item carrying a non-critical
// extension whose Vendor Extension nests extra structures. The message
// then nests 4+extra structures (message, item, extension, vendor
// extension, extra...).
func extensionItem(extra int) []byte {
	inner := tText(okmip.TagVendorIdentification, "deep")
	for range extra {
		inner = tStruct(0x540001, inner)
	}
	ext := tStruct(okmip.TagMessageExtension,
		tText(okmip.TagVendorIdentification, "test"),
		tBool(okmip.TagCriticalityIndicator, false),
		tStruct(okmip.TagVendorExtension, inner))
	return rawItem(okmip.OperationDiscoverVersions, "x", tStruct(okmip.TagRequestPayload), ext)
}

// withBadItem is a valid request whose payload carries item.
func withBadItem(item []byte) []byte {
	return rawMessage(rawHeader(hdr(v14, 1)),
		rawItem(okmip.OperationGet, "a", tStruct(okmip.TagRequestPayload, item)))
}

func manyItems(n int) []byte {
	parts := [][]byte{rawHeader(hdr(v14, int32(n)))}
	for range n {
		parts = append(parts, rawItem(okmip.OperationDiscoverVersions, "", tStruct(okmip.TagRequestPayload)))
	}
	return rawMessage(parts...)
}

// TestFramingBrokenStream: input after which the byte stream cannot be
// trusted. The server answers Invalid Message when it understood enough
// to answer, then closes; it never waits for a client that went away.
func TestFramingBrokenStream(t *testing.T) {
	env := startKMS(t, func(c *kmip.Config) { c.MaxMessageSize = framingMaxMessage })
	oversize := rawMessage(rawHeader(hdr(v14, 1)), rawItem(okmip.OperationDiscoverVersions, "a",
		tStruct(okmip.TagRequestPayload), tStruct(okmip.TagMessageExtension, tText(okmip.TagVendorIdentification, string(make([]byte, framingMaxMessage))))))
	cases := []struct {
		name       string
		send       []byte
		closeWrite bool               // the client half-closes after sending
		answer     okmip.ResultReason // 0: no answer expected
	}{
		{name: "truncated header", send: header8(okmip.TagRequestMessage, 0x01, 16)[:5], closeWrite: true},
		{name: "wrong tag", send: header8(okmip.TagRequestHeader, 0x01, 0), answer: okmip.ResultReasonInvalidMessage},
		{name: "response message tag", send: header8(okmip.TagResponseMessage, 0x01, 0), answer: okmip.ResultReasonInvalidMessage},
		{name: "non-structure type", send: header8(okmip.TagRequestMessage, 0x02, 8), answer: okmip.ResultReasonInvalidMessage},
		{name: "byte string type", send: header8(okmip.TagRequestMessage, 0x08, 8), answer: okmip.ResultReasonInvalidMessage},
		{name: "length not multiple of 8", send: header8(okmip.TagRequestMessage, 0x01, 12), answer: okmip.ResultReasonInvalidMessage},
		{name: "length larger than the body, then the client closes", send: append(header8(okmip.TagRequestMessage, 0x01, 64), make([]byte, 16)...), closeWrite: true},
		{name: "length above MaxMessageSize", send: header8(okmip.TagRequestMessage, 0x01, framingMaxMessage), answer: okmip.ResultReasonInvalidMessage},
		{name: "length of 4 GiB", send: header8(okmip.TagRequestMessage, 0x01, 0xFFFFFFF8), answer: okmip.ResultReasonInvalidMessage},
		{name: "whole message above MaxMessageSize", send: oversize, answer: okmip.ResultReasonInvalidMessage},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			w := dialAdmin(t, env)
			w.servesOK()
			// The server may stop reading before the client is done writing:
			// write in the background and read the answer meanwhile.
			wrote := make(chan error, 1)
			go func() {
				w.conn.SetWriteDeadline(time.Now().Add(10 * time.Second))
				_, err := w.conn.Write(c.send)
				if err == nil && c.closeWrite {
					err = w.conn.CloseWrite()
				}
				wrote <- err
			}()
			if c.answer != 0 {
				resp, _ := w.response()
				wantMessageError(t, resp, c.answer)
			}
			w.expectClosed(5 * time.Second)
			if err := <-wrote; err != nil && c.closeWrite {
				t.Fatal(err)
			}
			// The server dropped the connection at once: it did not wait for
			// its read timeout (the default, 30 s).
			waitConns(t, env, 0, 2*time.Second)
			servesNew(t, env)
		})
	}
}

// TestFramingOversizeDoesNotAllocate: a header announcing 2 GiB is refused
// from its 8 bytes; the server allocates nothing near that size.
func TestFramingOversizeDoesNotAllocate(t *testing.T) {
	env := startKMS(t, func(c *kmip.Config) { c.MaxMessageSize = 512 })
	w := dialAdmin(t, env)
	w.servesOK()
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	w.write(header8(okmip.TagRequestMessage, 0x01, 1<<31-8))
	resp, _ := w.response()
	wantMessageError(t, resp, okmip.ResultReasonInvalidMessage)
	w.expectClosed(5 * time.Second)
	runtime.ReadMemStats(&after)
	if grown := after.TotalAlloc - before.TotalAlloc; grown > 64<<20 {
		t.Fatalf("the server allocated %d bytes for a refused 2 GiB header", grown)
	}
	// Eight bytes over the limit (the next valid length) are refused;
	// exactly the limit is read and served.
	w = dialAdmin(t, env)
	w.write(header8(okmip.TagRequestMessage, 0x01, 512-8+8))
	resp, _ = w.response()
	wantMessageError(t, resp, okmip.ResultReasonInvalidMessage)
	w.expectClosed(5 * time.Second)

	w = dialAdmin(t, env)
	var msg []byte
	for pad := 0; len(msg) != 512; pad++ {
		ext := tStruct(okmip.TagMessageExtension, tText(okmip.TagVendorIdentification, string(bytes.Repeat([]byte("p"), pad))),
			tBool(okmip.TagCriticalityIndicator, false), tStruct(okmip.TagVendorExtension))
		msg = rawMessage(rawHeader(hdr(v14, 1)), rawItem(okmip.OperationDiscoverVersions, "a", tStruct(okmip.TagRequestPayload), ext))
		if len(msg) > 512 {
			t.Fatalf("cannot pad the request to 512 bytes")
		}
	}
	resp, _ = w.roundTripRaw(msg)
	wantSuccess(t, resp.BatchItem[0])
}

// TestFramingIntact: malformed content inside a correctly framed message.
// The server answers Invalid Message and keeps serving the connection.
func TestFramingIntact(t *testing.T) {
	env := startKMS(t, func(c *kmip.Config) { c.MaxMessageSize = framingMaxMessage })
	h := rawHeader(hdr(v14, 1))
	cases := []struct {
		name string
		msg  []byte
	}{
		{"empty message", rawMessage()},
		{"request header missing", rawMessage(discoverItem("a"))},
		{"batch item before the header", rawMessage(discoverItem("a"), h)},
		{"header is not a structure", rawMessage(tInt(okmip.TagRequestHeader, 1), discoverItem("a"))},
		{"no batch item", rawMessage(rawHeader(hdr(v14, 0)))},
		{"stray item after the batch items", rawMessage(h, discoverItem("a"), tInt(okmip.TagBatchCount, 1))},
		{"trailing zero bytes inside the message", rawMessage(h, discoverItem("a"), make([]byte, 8))},
		{"batch item is not a structure", rawMessage(h, tInt(okmip.TagBatchItem, 1))},
		{"nested deeper than MaxDepth", rawMessage(h, extensionItem(kmip.MaxDepth-4+1))},
		{"very deep nesting", rawMessage(h, rawItem(okmip.OperationGet, "a", tStruct(okmip.TagRequestPayload, nested(200))))},
		{"invalid type byte 0x00", withBadItem(tItem(okmip.TagUniqueIdentifier, 0x00, []byte("abc")))},
		{"invalid type byte 0x0B", withBadItem(tItem(okmip.TagUniqueIdentifier, 0x0B, []byte("abc")))},
		{"invalid type byte 0xFF", withBadItem(tItem(okmip.TagUniqueIdentifier, 0xFF, nil))},
		{"integer of 8 bytes", withBadItem(tItemLen(okmip.TagKeyFormatType, 0x02, 8, make([]byte, 8)))},
		{"integer of 2 bytes", withBadItem(tItemLen(okmip.TagKeyFormatType, 0x02, 2, make([]byte, 2)))},
		{"enumeration of 8 bytes", withBadItem(tItemLen(okmip.TagKeyFormatType, 0x05, 8, make([]byte, 8)))},
		{"boolean of 4 bytes", withBadItem(tItemLen(okmip.TagCriticalityIndicator, 0x06, 4, make([]byte, 4)))},
		{"boolean of 1 byte", withBadItem(tItemLen(okmip.TagCriticalityIndicator, 0x06, 1, []byte{1}))},
		{"datetime of 4 bytes", withBadItem(tItemLen(okmip.TagTimeStamp, 0x09, 4, make([]byte, 4)))},
		{"datetime of 16 bytes", withBadItem(tItemLen(okmip.TagTimeStamp, 0x09, 16, make([]byte, 16)))},
		{"long integer of 4 bytes", withBadItem(tItemLen(okmip.TagLeaseTime, 0x03, 4, make([]byte, 4)))},
		{"interval of 8 bytes", withBadItem(tItemLen(okmip.TagLeaseTime, 0x0A, 8, make([]byte, 8)))},
		{"big integer of 12 bytes", withBadItem(tItemLen(okmip.TagModulus, 0x04, 12, make([]byte, 12)))},
		{"structure of 12 bytes", withBadItem(tItemLen(okmip.TagKeyBlock, 0x01, 12, make([]byte, 12)))},
		{"inner length past its parent", withBadItem(tItemLen(okmip.TagUniqueIdentifier, 0x07, 64, []byte("abc")))},
		{"inner length of 4 GiB", withBadItem(tItemLen(okmip.TagUniqueIdentifier, 0x07, 0xFFFFFFFF, []byte("abc")))},
		{"inner item without its value", rawMessage(h, tItem(okmip.TagBatchItem, 0x01, []byte{0x42, 0x00, 0x5C, 0x05, 0, 0, 0, 4}))},
		{"more than MaxBatchItems items", manyItems(kmip.MaxBatchItems + 1)},
	}
	w := dialAdmin(t, env)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			w.t = t
			if len(c.msg) > framingMaxMessage {
				t.Fatalf("test message of %d bytes exceeds the server limit", len(c.msg))
			}
			resp, _ := w.roundTripRaw(c.msg)
			wantMessageError(t, resp, okmip.ResultReasonInvalidMessage)
			w.servesOK()
		})
	}
}

// TestFramingLimitsInclusive: MaxDepth and MaxBatchItems are limits, not
// off by one.
func TestFramingLimitsInclusive(t *testing.T) {
	env := startKMS(t, func(c *kmip.Config) { c.MaxMessageSize = framingMaxMessage })
	w := dialAdmin(t, env)

	t.Run("nesting of exactly MaxDepth", func(t *testing.T) {
		w.t = t
		resp, _ := w.roundTripRaw(rawMessage(rawHeader(hdr(v14, 1)), extensionItem(kmip.MaxDepth-4)))
		wantSuccess(t, resp.BatchItem[0])
	})
	t.Run("exactly MaxBatchItems items", func(t *testing.T) {
		w.t = t
		resp, _ := w.roundTripRaw(manyItems(kmip.MaxBatchItems))
		if len(resp.BatchItem) != kmip.MaxBatchItems {
			t.Fatalf("%d items answered", len(resp.BatchItem))
		}
		for _, bi := range resp.BatchItem {
			wantSuccess(t, bi)
			if bi.Operation != okmip.OperationDiscoverVersions {
				t.Fatalf("operation %v", bi.Operation)
			}
		}
	})
}

// TestFramingPipelined: two messages written at once are answered in
// order; garbage after a valid message is answered as a broken frame.
func TestFramingPipelined(t *testing.T) {
	env := startKMS(t, nil)
	w := dialAdmin(t, env)
	q := ttlv.MarshalTTLV(newRequest(v14, &payloads.QueryRequestPayload{QueryFunction: []okmip.QueryFunction{okmip.QueryFunctionServerInformation}}))
	w.write(append(validRequest(), q...))
	r1, _ := w.response()
	r2, _ := w.response()
	if r1.BatchItem[0].Operation != okmip.OperationDiscoverVersions || r2.BatchItem[0].Operation != okmip.OperationQuery {
		t.Fatalf("answers out of order: %v then %v", r1.BatchItem[0].Operation, r2.BatchItem[0].Operation)
	}
	wantSuccess(t, r1.BatchItem[0])
	wantSuccess(t, r2.BatchItem[0])

	w.write(append(validRequest(), 0xDE, 0xAD, 0xBE, 0xEF, 0, 0, 0, 0))
	r1, _ = w.response()
	wantSuccess(t, r1.BatchItem[0])
	r2, _ = w.response()
	wantMessageError(t, r2, okmip.ResultReasonInvalidMessage)
	w.expectClosed(5 * time.Second)
	servesNew(t, env)
}
