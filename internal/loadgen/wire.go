package loadgen

import (
	"encoding/binary"
	"fmt"
	"io"

	"github.com/ovh/kmip-go"
)

// Limits on what the load generator accepts from a server, checked before
// allocating.
const (
	// MaxResponseSize bounds one response message, header included.
	MaxResponseSize = 16 << 20
	// ttlvHeaderSize is the size of a TTLV item header (tag 3, type 1, length 4).
	ttlvHeaderSize = 8
)

// TTLV item types the scanner interprets.
const (
	typeStructure   = 0x01
	typeInteger     = 0x02
	typeEnumeration = 0x05
	typeTextString  = 0x07
	typeByteString  = 0x08
)

// protocolError is a response that cannot be trusted: bad framing, a
// structure that does not decode, or an answer that does not match the
// request. The connection is dropped after one.
type protocolError struct {
	kind   string // short and bounded: it becomes an error-count key
	detail string
}

func (e *protocolError) Error() string {
	if e.detail == "" {
		return "protocol error: " + e.kind
	}
	return "protocol error: " + e.kind + ": " + e.detail
}

func protoErr(kind, format string, args ...any) error {
	return &protocolError{kind: kind, detail: fmt.Sprintf(format, args...)}
}

// readFrame reads one Response Message into buf (grown only when a
// response is larger than any before) and returns it, header included. The
// announced length is checked against MaxResponseSize before allocating.
func readFrame(r io.Reader, buf []byte) ([]byte, error) {
	if cap(buf) < ttlvHeaderSize {
		buf = make([]byte, 0, 4096)
	}
	buf = buf[:ttlvHeaderSize]
	if _, err := io.ReadFull(r, buf); err != nil {
		return buf, err
	}
	tag := uint32(buf[0])<<16 | uint32(buf[1])<<8 | uint32(buf[2])
	if tag != kmip.TagResponseMessage || buf[3] != typeStructure {
		return buf, protoErr("bad framing", "expected a Response Message structure, got tag %06X type %02X", tag, buf[3])
	}
	n := binary.BigEndian.Uint32(buf[4:8])
	if n%8 != 0 {
		return buf, protoErr("bad framing", "structure length %d is not a multiple of 8", n)
	}
	if uint64(n)+ttlvHeaderSize > MaxResponseSize {
		return buf, protoErr("oversized response", "response announces %d bytes, over the limit of %d", uint64(n)+ttlvHeaderSize, MaxResponseSize)
	}
	total := ttlvHeaderSize + int(n)
	if cap(buf) < total {
		nb := make([]byte, total)
		copy(nb, buf)
		buf = nb
	}
	buf = buf[:total]
	if _, err := io.ReadFull(r, buf[ttlvHeaderSize:]); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return buf, err
	}
	return buf, nil
}

// ttlvItem is one TTLV item: its tag, type and value (unpadded).
type ttlvItem struct {
	tag uint32
	typ byte
	val []byte
}

// nextItem splits the first item off b. Every length is checked against
// what remains, so a lying length cannot read past the buffer.
func nextItem(b []byte) (ttlvItem, []byte, error) {
	if len(b) < ttlvHeaderSize {
		return ttlvItem{}, nil, protoErr("undecodable response", "truncated TTLV header")
	}
	n := uint64(binary.BigEndian.Uint32(b[4:8]))
	padded := (n + 7) &^ 7
	if padded > uint64(len(b)-ttlvHeaderSize) {
		return ttlvItem{}, nil, protoErr("undecodable response", "TTLV item of %d bytes overruns its structure", n)
	}
	it := ttlvItem{tag: uint32(b[0])<<16 | uint32(b[1])<<8 | uint32(b[2]), typ: b[3], val: b[ttlvHeaderSize : ttlvHeaderSize+n]}
	return it, b[ttlvHeaderSize+padded:], nil
}

// enumValue reads an Enumeration or Integer item.
func (it ttlvItem) enumValue() (uint32, error) {
	if (it.typ != typeEnumeration && it.typ != typeInteger) || len(it.val) != 4 {
		return 0, protoErr("undecodable response", "tag %06X: want a 4-byte enumeration or integer, got type %02X of %d bytes", it.tag, it.typ, len(it.val))
	}
	return binary.BigEndian.Uint32(it.val), nil
}

// batchResult is what the hot loop needs from a one-item response.
type batchResult struct {
	operation kmip.Operation
	status    kmip.ResultStatus
	reason    kmip.ResultReason
	message   []byte // Result Message, may be nil
	payload   []byte // value of the Response Payload structure, nil when absent
}

// parseResponse walks a one-item Response Message without the reflective
// codec: it checks the structure of the message, header and batch item
// (every length in bounds, Batch Count 1, exactly one batch item, a Result
// Status) and returns the item's result and payload bytes. The payload's
// inner structure is checked by the operation's own check.
func parseResponse(msg []byte) (batchResult, error) {
	var res batchResult
	top, rest, err := nextItem(msg)
	if err != nil {
		return res, err
	}
	if len(rest) != 0 || top.tag != kmip.TagResponseMessage || top.typ != typeStructure {
		return res, protoErr("undecodable response", "not a single Response Message structure")
	}
	var haveHeader bool
	items := 0
	for b := top.val; len(b) > 0; {
		var it ttlvItem
		if it, b, err = nextItem(b); err != nil {
			return res, err
		}
		switch it.tag {
		case kmip.TagResponseHeader:
			if it.typ != typeStructure {
				return res, protoErr("undecodable response", "Response Header is not a structure")
			}
			count, err := batchCount(it.val)
			if err != nil {
				return res, err
			}
			if count != 1 {
				return res, protoErr("batch count", "response Batch Count %d, want 1", count)
			}
			haveHeader = true
		case kmip.TagBatchItem:
			items++
			if items > 1 {
				return res, protoErr("batch count", "more than one batch item in the response")
			}
			if it.typ != typeStructure {
				return res, protoErr("undecodable response", "Batch Item is not a structure")
			}
			if res, err = parseBatchItem(it.val); err != nil {
				return res, err
			}
		default:
			return res, protoErr("undecodable response", "unexpected tag %06X in the Response Message", it.tag)
		}
	}
	if !haveHeader {
		return res, protoErr("undecodable response", "no Response Header")
	}
	if items != 1 {
		return res, protoErr("batch count", "no batch item in the response")
	}
	return res, nil
}

// batchCount reads the Batch Count of a Response Header.
func batchCount(hdr []byte) (uint32, error) {
	for len(hdr) > 0 {
		it, rest, err := nextItem(hdr)
		if err != nil {
			return 0, err
		}
		if it.tag == kmip.TagBatchCount {
			return it.enumValue()
		}
		hdr = rest
	}
	return 0, protoErr("undecodable response", "Response Header without Batch Count")
}

func parseBatchItem(b []byte) (batchResult, error) {
	var res batchResult
	var haveStatus bool
	for len(b) > 0 {
		it, rest, err := nextItem(b)
		if err != nil {
			return res, err
		}
		b = rest
		switch it.tag {
		case kmip.TagOperation:
			v, err := it.enumValue()
			if err != nil {
				return res, err
			}
			res.operation = kmip.Operation(v)
		case kmip.TagResultStatus:
			v, err := it.enumValue()
			if err != nil {
				return res, err
			}
			res.status, haveStatus = kmip.ResultStatus(v), true
		case kmip.TagResultReason:
			v, err := it.enumValue()
			if err != nil {
				return res, err
			}
			res.reason = kmip.ResultReason(v)
		case kmip.TagResultMessage:
			if it.typ != typeTextString {
				return res, protoErr("undecodable response", "Result Message is not a text string")
			}
			res.message = it.val
		case kmip.TagResponsePayload:
			if it.typ != typeStructure {
				return res, protoErr("undecodable response", "Response Payload is not a structure")
			}
			res.payload = it.val
			if res.payload == nil {
				res.payload = []byte{}
			}
		}
	}
	if !haveStatus {
		return res, protoErr("undecodable response", "batch item without Result Status")
	}
	return res, nil
}

// scanTop walks the top-level items of a payload, checking every length,
// and calls fn for each.
func scanTop(payload []byte, fn func(ttlvItem) error) error {
	for b := payload; len(b) > 0; {
		it, rest, err := nextItem(b)
		if err != nil {
			return err
		}
		if err := fn(it); err != nil {
			return err
		}
		b = rest
	}
	return nil
}

// firstValue returns the value of the first top-level item of a payload
// with tag, which must have type typ; nil when there is none.
func firstValue(payload []byte, tag uint32, typ byte) ([]byte, error) {
	for b := payload; len(b) > 0; {
		it, rest, err := nextItem(b)
		if err != nil {
			return nil, err
		}
		if it.tag == tag {
			if it.typ != typ {
				return nil, protoErr("undecodable response", "tag %06X has type %02X, want %02X", tag, it.typ, typ)
			}
			return it.val, nil
		}
		b = rest
	}
	return nil, nil
}
