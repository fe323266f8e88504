package oasis

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"
)

// MaxMessageSize caps the size of one TTLV response read by TTLVConn,
// header included. It is checked against the length field before any
// buffer is allocated.
const MaxMessageSize = 1 << 20

// ttlvHeaderSize is tag (3) + type (1) + length (4).
const ttlvHeaderSize = 8

// ErrMessageTooLarge is returned when a response announces more than
// MaxMessageSize bytes.
var ErrMessageTooLarge = errors.New("ttlv message larger than the limit")

// TTLVConn is a RoundTripper over one established connection (typically a
// *tls.Conn): it writes the request and reads exactly one TTLV message
// back. It is safe for concurrent use, one round trip at a time; it does
// not close the connection.
type TTLVConn struct {
	Conn net.Conn
	mu   sync.Mutex
}

var _ RoundTripper = (*TTLVConn)(nil)

// RoundTrip writes req and reads one response message. A context deadline
// becomes the connection deadline for the round trip; cancelling the
// context interrupts a blocked read or write.
func (c *TTLVConn) RoundTrip(ctx context.Context, req []byte) ([]byte, error) {
	if c.Conn == nil {
		return nil, errors.New("TTLVConn has no connection")
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	deadline, _ := ctx.Deadline()
	if err := c.Conn.SetDeadline(deadline); err != nil {
		return nil, err
	}
	stop := context.AfterFunc(ctx, func() {
		// Unblock the read or write in progress.
		_ = c.Conn.SetDeadline(time.Unix(1, 0))
	})
	defer stop()
	if _, err := c.Conn.Write(req); err != nil {
		return nil, ctxErr(ctx, fmt.Errorf("write request: %w", err))
	}
	resp, err := ReadMessage(c.Conn)
	if err != nil {
		return nil, ctxErr(ctx, err)
	}
	return resp, nil
}

// ctxErr prefers the context's error when the context ended the I/O: the
// connection deadline, set from the context's, may fire a moment before
// the context itself reports it.
func ctxErr(ctx context.Context, err error) error {
	if cerr := ctx.Err(); cerr != nil {
		return fmt.Errorf("%w (%v)", cerr, err)
	}
	var ne net.Error
	if dl, ok := ctx.Deadline(); ok && errors.As(err, &ne) && ne.Timeout() && !time.Now().Before(dl) {
		return fmt.Errorf("%w (%v)", context.DeadlineExceeded, err)
	}
	return err
}

// ReadMessage reads one binary TTLV message from r: the 8-byte header, then
// the value whose length the header announces (padded to 8 bytes for a
// Structure, which a message always is). The length is checked against
// MaxMessageSize before the buffer is allocated.
func ReadMessage(r io.Reader) ([]byte, error) {
	var hdr [ttlvHeaderSize]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return nil, fmt.Errorf("read message header: %w", err)
	}
	const typeStructure = 0x01
	if hdr[3] != typeStructure {
		return nil, fmt.Errorf("message is not a TTLV Structure (type 0x%02X)", hdr[3])
	}
	length := binary.BigEndian.Uint32(hdr[4:])
	if length%8 != 0 {
		return nil, fmt.Errorf("structure length %d is not a multiple of 8", length)
	}
	if uint64(length)+ttlvHeaderSize > MaxMessageSize {
		return nil, fmt.Errorf("%w: %d bytes announced, limit %d", ErrMessageTooLarge, uint64(length)+ttlvHeaderSize, MaxMessageSize)
	}
	msg := make([]byte, ttlvHeaderSize+int(length))
	copy(msg, hdr[:])
	if _, err := io.ReadFull(r, msg[ttlvHeaderSize:]); err != nil {
		return nil, fmt.Errorf("read message body: %w", err)
	}
	return msg, nil
}
