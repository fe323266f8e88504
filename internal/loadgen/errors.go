package loadgen

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"slices"
	"strings"
	"sync"
	"syscall"

	"github.com/ovh/kmip-go"
	"github.com/ovh/kmip-go/ttlv"
)

// resultError is a response whose Result Status is not Success. The
// connection stays usable.
type resultError struct {
	status  kmip.ResultStatus
	reason  kmip.ResultReason
	message string
}

func (e *resultError) Error() string {
	s := "KMIP " + e.kind()
	if e.message != "" {
		s += ": " + e.message
	}
	return s
}

// kind names the failure by its Result Reason (or status when the server
// gave no reason).
func (e *resultError) kind() string {
	if e.status != kmip.ResultStatusOperationFailed {
		return "status " + enumName(e.status)
	}
	if e.reason == 0 {
		return "OperationFailed (no reason)"
	}
	return enumName(e.reason)
}

func enumName[T ~uint32](v T) string {
	if s := ttlv.EnumStr(v); s != "" {
		return s
	}
	return fmt.Sprintf("0x%08X", uint32(v))
}

// errorKind returns the bounded key an error is counted under:
// "kmip: <Result Reason>", "protocol: <what>", "tls: <alert or check>" or
// "network: <what>".
func errorKind(err error) string {
	var re *resultError
	if errors.As(err, &re) {
		return "kmip: " + re.kind()
	}
	var pe *protocolError
	if errors.As(err, &pe) {
		return "protocol: " + pe.kind
	}
	var ce *clientError
	if errors.As(err, &ce) {
		return "client: making the request"
	}
	var ne net.Error
	switch {
	case errors.As(err, &ne) && ne.Timeout():
		return "network: timeout"
	case errors.Is(err, syscall.ECONNREFUSED):
		return "network: connection refused"
	case errors.Is(err, syscall.ECONNRESET):
		return "network: connection reset"
	case errors.Is(err, syscall.EPIPE):
		return "network: broken pipe"
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, net.ErrClosed):
		return "network: connection closed"
	}
	var (
		unknownCA *x509.UnknownAuthorityError
		hostname  x509.HostnameError
		invalid   x509.CertificateInvalidError
		verify    *tls.CertificateVerificationError
	)
	switch {
	case errors.As(err, &unknownCA), errors.As(err, &hostname), errors.As(err, &invalid), errors.As(err, &verify):
		return "tls: server certificate rejected"
	}
	var alert tls.AlertError
	if errors.As(err, &alert) {
		return "tls: " + alert.Error()
	}
	// A peer's alert has no exported type: "remote error: tls: bad certificate".
	if msg := err.Error(); strings.Contains(msg, "remote error: tls: ") {
		return "tls: remote " + msg[strings.LastIndex(msg, "tls: ")+len("tls: "):]
	}
	if strings.Contains(err.Error(), "tls: ") {
		return "tls: handshake failed"
	}
	return "network: other"
}

// fatalForConn reports whether the connection must be dropped after err: any
// error but a KMIP failure result (or a request the client could not make,
// so did not send) leaves the stream in an unknown state.
func fatalForConn(err error) bool {
	var (
		re *resultError
		ce *clientError
	)
	return !errors.As(err, &re) && !errors.As(err, &ce)
}

// clientError is a request the client failed to make (nothing was sent).
type clientError struct{ err error }

func (e *clientError) Error() string { return e.err.Error() }
func (e *clientError) Unwrap() error { return e.err }

// errorLog counts errors by kind. Errors are rare in a healthy run, so one
// mutex is enough; the first message of each kind is kept as a sample to
// explain a failing run.
type errorLog struct {
	mu       sync.Mutex
	measured map[string]int64
	samples  map[string]string
	total    int64
}

func newErrorLog() *errorLog {
	return &errorLog{measured: map[string]int64{}, samples: map[string]string{}}
}

func (l *errorLog) record(err error, measured bool) {
	kind := errorKind(err)
	l.mu.Lock()
	defer l.mu.Unlock()
	l.total++
	if measured {
		l.measured[kind]++
	}
	if _, ok := l.samples[kind]; !ok {
		l.samples[kind] = err.Error()
	}
}

// summary describes every kind seen with a sample message, for an abort.
func (l *errorLog) summary() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var parts []string
	for kind, sample := range l.samples {
		parts = append(parts, kind+" (e.g. "+sample+")")
	}
	slices.Sort(parts)
	return strings.Join(parts, "; ")
}

func (l *errorLog) snapshot() (measured map[string]int64, samples map[string]string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return maps.Clone(l.measured), maps.Clone(l.samples)
}
