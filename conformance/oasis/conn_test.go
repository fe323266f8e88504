package oasis

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"time"
)

// message returns a TTLV Structure with the given tag and body length.
func message(tag uint32, body int) []byte {
	m := make([]byte, 8+body)
	binary.BigEndian.PutUint32(m, tag<<8|0x01)
	binary.BigEndian.PutUint32(m[4:], uint32(body))
	for i := 8; i < len(m); i++ {
		m[i] = byte(i)
	}
	return m
}

func TestReadMessage(t *testing.T) {
	ok := message(0x42007B, 24)
	huge := message(0x42007B, 0)
	binary.BigEndian.PutUint32(huge[4:], MaxMessageSize)
	notStruct := message(0x42007B, 8)
	notStruct[3] = 0x02
	odd := message(0x42007B, 8)
	binary.BigEndian.PutUint32(odd[4:], 7)
	for name, tc := range map[string]struct {
		in      []byte
		want    []byte
		wantErr string
	}{
		"one message":                {in: append(append([]byte{}, ok...), 0xFF), want: ok},
		"length over the cap":        {in: huge, wantErr: "larger than the limit"},
		"not a structure":            {in: notStruct, wantErr: "not a TTLV Structure"},
		"length not a multiple of 8": {in: odd, wantErr: "multiple of 8"},
		"short header":               {in: ok[:5], wantErr: "header"},
		"short body":                 {in: ok[:20], wantErr: "body"},
	} {
		t.Run(name, func(t *testing.T) {
			got, err := ReadMessage(bytes.NewReader(tc.in))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("got %v, want an error containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil || !bytes.Equal(got, tc.want) {
				t.Fatalf("got %x, %v", got, err)
			}
		})
	}
	if _, err := ReadMessage(bytes.NewReader(huge)); !errors.Is(err, ErrMessageTooLarge) {
		t.Fatalf("oversize error %v is not ErrMessageTooLarge", err)
	}
}

// countingReader fails the test if more than limit bytes are requested.
type countingReader struct {
	r io.Reader
	n int
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += n
	return n, err
}

func TestReadMessageChecksTheCapBeforeReading(t *testing.T) {
	huge := message(0x42007B, 0)
	binary.BigEndian.PutUint32(huge[4:], 0xFFFFFFF8)
	cr := &countingReader{r: io.MultiReader(bytes.NewReader(huge), strings.NewReader(strings.Repeat("x", 4096)))}
	if _, err := ReadMessage(cr); !errors.Is(err, ErrMessageTooLarge) {
		t.Fatalf("got %v", err)
	}
	if cr.n != 8 {
		t.Fatalf("read %d bytes, want only the 8-byte header", cr.n)
	}
}

func TestTTLVConnRoundTrip(t *testing.T) {
	client, server := net.Pipe()
	defer client.Close()
	defer server.Close()
	resp := message(0x42007B, 16)
	go func() {
		req, err := ReadMessage(server)
		if err != nil {
			return
		}
		if req[2] == 0x78 {
			_, _ = server.Write(resp)
		}
	}()
	conn := &TTLVConn{Conn: client}
	got, err := conn.RoundTrip(context.Background(), message(0x420078, 8))
	if err != nil || !bytes.Equal(got, resp) {
		t.Fatalf("got %x, %v", got, err)
	}
}

func TestTTLVConnHonoursTheContext(t *testing.T) {
	client, server := net.Pipe()
	defer client.Close()
	defer server.Close()
	go func() { _, _ = ReadMessage(server) }() // reads the request, never answers
	conn := &TTLVConn{Conn: client}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := conn.RoundTrip(ctx, message(0x420078, 8))
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("got %v, want the deadline", err)
	}
	if time.Since(start) > 5*time.Second {
		t.Fatal("round trip did not stop at the deadline")
	}
	if _, err := (&TTLVConn{}).RoundTrip(context.Background(), nil); err == nil {
		t.Fatal("a TTLVConn without connection worked")
	}
}
