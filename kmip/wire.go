package kmip

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// Limits on what a client may send, checked before allocating.
const (
	// DefaultMaxMessageSize bounds one request message, header included.
	DefaultMaxMessageSize = 1 << 20
	// MaxBatchItems bounds the batch items of one request.
	MaxBatchItems = 256
	// MaxDepth bounds structure nesting in a request.
	MaxDepth = 16
	// ttlvHeader is the size of a TTLV item header (tag 3, type 1, length 4).
	ttlvHeader = 8
)

// TTLV item types.
const (
	typeStructure   = 0x01
	typeInteger     = 0x02
	typeLongInteger = 0x03
	typeBigInteger  = 0x04
	typeEnumeration = 0x05
	typeBoolean     = 0x06
	typeTextString  = 0x07
	typeByteString  = 0x08
	typeDateTime    = 0x09
	typeInterval    = 0x0A
)

// Tags the framing layer needs.
const (
	tagRequestMessage    = 0x420078
	tagRequestHeader     = 0x420077
	tagBatchItem         = 0x42000F
	tagOperation         = 0x42005C
	tagUniqueBatchItemID = 0x420093
	tagRequestPayload    = 0x420079
	tagMessageExtension  = 0x420051
)

// errFraming marks input whose framing is broken: the stream can no longer
// be trusted and the connection closes after the answer.
var errFraming = errors.New("malformed message framing")

// readMessage reads one TTLV request message: the 8-byte header first, then
// exactly the announced length, refused before allocation when it exceeds
// max.
func readMessage(r io.Reader, max int, hdr *[ttlvHeader]byte) ([]byte, error) {
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return nil, err
	}
	tag := uint32(hdr[0])<<16 | uint32(hdr[1])<<8 | uint32(hdr[2])
	if tag != tagRequestMessage || hdr[3] != typeStructure {
		return nil, fmt.Errorf("%w: expected a Request Message structure, got tag %06X type %02X", errFraming, tag, hdr[3])
	}
	n := binary.BigEndian.Uint32(hdr[4:8])
	if n%8 != 0 {
		return nil, fmt.Errorf("%w: structure length %d is not a multiple of 8", errFraming, n)
	}
	if uint64(n)+ttlvHeader > uint64(max) {
		return nil, fmt.Errorf("%w: message of %d bytes exceeds the limit of %d", errTooLarge, uint64(n)+ttlvHeader, max)
	}
	buf := make([]byte, ttlvHeader+int(n))
	copy(buf, hdr[:])
	if _, err := io.ReadFull(r, buf[ttlvHeader:]); err != nil {
		return nil, err
	}
	return buf, nil
}

var errTooLarge = errors.New("message too large")

// item is one TTLV item in a buffer: the whole encoding (raw) and its value.
type item struct {
	tag uint32
	typ byte
	raw []byte // header + padded value
	val []byte // value without padding
}

// nextItem splits the first item off buf.
func nextItem(buf []byte) (item, []byte, error) {
	if len(buf) < ttlvHeader {
		return item{}, nil, fmt.Errorf("truncated item header (%d bytes)", len(buf))
	}
	it := item{tag: uint32(buf[0])<<16 | uint32(buf[1])<<8 | uint32(buf[2]), typ: buf[3]}
	n := uint64(binary.BigEndian.Uint32(buf[4:8]))
	padded := (n + 7) &^ 7
	if padded > uint64(len(buf)-ttlvHeader) {
		return item{}, nil, fmt.Errorf("item %06X announces %d bytes, only %d remain", it.tag, n, len(buf)-ttlvHeader)
	}
	if it.typ < typeStructure || it.typ > typeInterval {
		return item{}, nil, fmt.Errorf("item %06X has unknown type %02X", it.tag, it.typ)
	}
	if want := fixedLength(it.typ); want >= 0 && n != uint64(want) {
		return item{}, nil, fmt.Errorf("item %06X of type %02X has length %d, want %d", it.tag, it.typ, n, want)
	}
	if it.typ == typeStructure && n%8 != 0 {
		return item{}, nil, fmt.Errorf("structure %06X length %d is not a multiple of 8", it.tag, n)
	}
	if it.typ == typeBigInteger && n%8 != 0 {
		return item{}, nil, fmt.Errorf("big integer %06X length %d is not a multiple of 8", it.tag, n)
	}
	end := ttlvHeader + int(padded)
	it.raw = buf[:end]
	it.val = buf[ttlvHeader : ttlvHeader+int(n)]
	return it, buf[end:], nil
}

func fixedLength(typ byte) int {
	switch typ {
	case typeInteger, typeEnumeration, typeInterval:
		return 4
	case typeLongInteger, typeBoolean, typeDateTime:
		return 8
	}
	return -1
}

// children returns the items of a structure's value.
func children(val []byte) ([]item, error) {
	var out []item
	for len(val) > 0 {
		it, rest, err := nextItem(val)
		if err != nil {
			return nil, err
		}
		out = append(out, it)
		val = rest
	}
	return out, nil
}

// checkTree validates the framing of every nested item (lengths, types,
// depth) so the codec only ever sees well-formed TTLV.
func checkTree(val []byte, depth int) error {
	if depth > MaxDepth {
		return fmt.Errorf("structures nest deeper than %d", MaxDepth)
	}
	for len(val) > 0 {
		it, rest, err := nextItem(val)
		if err != nil {
			return err
		}
		if it.typ == typeStructure {
			if err := checkTree(it.val, depth+1); err != nil {
				return err
			}
		}
		val = rest
	}
	return nil
}

// rawBatchItem is a batch item split from its message.
type rawBatchItem struct {
	operation uint32
	hasOp     bool
	batchID   []byte
	payload   []byte // raw Request Payload item, nil if absent
	extension []byte // raw Message Extension item, nil if absent
	err       error  // framing problem inside this item
}

// rawRequest is a request message split into header and items.
type rawRequest struct {
	header []byte // raw Request Header item
	items  []rawBatchItem
}

// splitRequest splits a framed request message. An error means the message
// as a whole cannot be understood.
func splitRequest(msg []byte) (*rawRequest, error) {
	top, rest, err := nextItem(msg)
	if err != nil {
		return nil, err
	}
	if len(rest) != 0 {
		return nil, errors.New("trailing bytes after the request message")
	}
	if err := checkTree(top.val, 1); err != nil {
		return nil, err
	}
	kids, err := children(top.val)
	if err != nil {
		return nil, err
	}
	if len(kids) == 0 || kids[0].tag != tagRequestHeader || kids[0].typ != typeStructure {
		return nil, errors.New("the request message does not start with a Request Header")
	}
	req := &rawRequest{header: kids[0].raw}
	for _, k := range kids[1:] {
		if k.tag != tagBatchItem || k.typ != typeStructure {
			return nil, fmt.Errorf("unexpected item %06X in the request message", k.tag)
		}
		if len(req.items) == MaxBatchItems {
			return nil, fmt.Errorf("more than %d batch items", MaxBatchItems)
		}
		req.items = append(req.items, splitBatchItem(k.val))
	}
	if len(req.items) == 0 {
		return nil, errors.New("the request message has no batch item")
	}
	return req, nil
}

func splitBatchItem(val []byte) rawBatchItem {
	var bi rawBatchItem
	kids, err := children(val)
	if err != nil {
		bi.err = err
		return bi
	}
	for _, k := range kids {
		switch {
		case k.tag == tagOperation && k.typ == typeEnumeration && !bi.hasOp:
			bi.operation = binary.BigEndian.Uint32(k.val)
			bi.hasOp = true
		case k.tag == tagUniqueBatchItemID && k.typ == typeByteString && bi.batchID == nil:
			bi.batchID = append([]byte{}, k.val...)
		case k.tag == tagRequestPayload && k.typ == typeStructure && bi.payload == nil:
			bi.payload = k.raw
		case k.tag == tagMessageExtension && k.typ == typeStructure && bi.extension == nil:
			bi.extension = k.raw
		default:
			bi.err = fmt.Errorf("unexpected item %06X (type %02X) in a batch item", k.tag, k.typ)
			return bi
		}
	}
	if !bi.hasOp {
		bi.err = errors.New("batch item has no Operation")
	}
	return bi
}
