package kmip

import (
	"context"
	"encoding/binary"
	"encoding/hex"
	"log/slog"
	mrand "math/rand/v2"
	"time"

	"github.com/minikms/minikms/engine"
	"github.com/ovh/kmip-go"
)

// Observer receives the server's measurements (package metrics exports
// them to Prometheus). Its methods run on the request path: they must be
// cheap, must not block, and are called concurrently.
type Observer interface {
	// BatchItem: one batch item ended with its final Result Status and
	// Result Reason (0 on success); d is how long it ran, negative for an
	// item that did not run (cancelled after an earlier failure).
	BatchItem(op kmip.Operation, status kmip.ResultStatus, reason kmip.ResultReason, d time.Duration)
	// Message: a request message was answered in d; refused is the Result
	// Reason of a message refused as a whole, 0 otherwise.
	Message(refused kmip.ResultReason, d time.Duration)
	// ConnectionOpened and ConnectionClosed bracket every accepted
	// connection (TLS handshake included).
	ConnectionOpened()
	ConnectionClosed()
	// ConnectionRefused: a connection was closed for cause.
	ConnectionRefused(cause RefusalCause)
	// HandshakeFailed: a TLS handshake failed with err (a client that
	// closes before sending anything is a port probe, not reported).
	HandshakeFailed(err error)
}

// RefusalCause is why a connection was refused (a bounded set: they are
// metric label values).
type RefusalCause string

// Refusal causes.
const (
	RefusedMaxConnections RefusalCause = "max_connections" // the server's connection limit
	RefusedMaxPerClient   RefusalCause = "max_per_client"  // the certificate's connection limit
	RefusedCertificate    RefusalCause = "certificate"     // the identity check after the handshake
	RefusedTrustChanged   RefusalCause = "trust_changed"   // revoked or unregistered while connected
	RefusedShuttingDown   RefusalCause = "shutting_down"   // accepted while the server stops
)

type nopObserver struct{}

func (nopObserver) BatchItem(kmip.Operation, kmip.ResultStatus, kmip.ResultReason, time.Duration) {}
func (nopObserver) Message(kmip.ResultReason, time.Duration)                                      {}
func (nopObserver) ConnectionOpened()                                                             {}
func (nopObserver) ConnectionClosed()                                                             {}
func (nopObserver) ConnectionRefused(RefusalCause)                                                {}
func (nopObserver) HandshakeFailed(error)                                                         {}

// newRequestID returns a short random identifier of one request message:
// it is on every log line about the message and in its audit records. Not
// a secret, so a fast generator serves.
func newRequestID() string {
	var b [8]byte
	binary.LittleEndian.PutUint64(b[:], mrand.Uint64())
	return hex.EncodeToString(b[:])
}

// begin starts a request message: a new request id, no refusal yet.
func (s *session) begin() {
	s.reqID = newRequestID()
	s.refused = 0
	s.itemDur = s.itemDur[:0]
}

// noteRefused records the Result Reason of a message refused as a whole.
func (s *session) noteRefused(reason kmip.ResultReason) { s.refused = reason }

// observeItems reports the final result of every batch item. The items
// that ran are a prefix of the batch (once one stops the batch, the rest
// are cancelled), timed in s.itemDur.
func (s *session) observeItems(items []kmip.ResponseBatchItem) {
	obs := s.srv.cfg.Observer
	for i := range items {
		d := time.Duration(-1)
		if i < len(s.itemDur) {
			d = s.itemDur[i]
		}
		obs.BatchItem(items[i].Operation, items[i].ResultStatus, items[i].ResultReason, d)
	}
}

// tagEvents puts the request id into the details of the message's audit
// events.
func (s *session) tagEvents(events []engine.AuditEvent) []engine.AuditEvent {
	for i := range events {
		d := events[i].Details
		if d == nil {
			d = make(map[string]string, 1)
			events[i].Details = d
		}
		d[AuditRequestID] = s.reqID
	}
	return events
}

// AuditRequestID is the audit details key of the request id.
const AuditRequestID = "request_id"

// requestIDHandler adds the session's current request id to every record
// logged through it. The id is read when a record is handled, so nothing
// is formatted for the records a level filters out.
type requestIDHandler struct {
	inner slog.Handler
	id    *string
}

// LogKeyRequestID is the log attribute of the request id.
const LogKeyRequestID = "request_id"

func (h requestIDHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return h.inner.Enabled(ctx, l)
}

func (h requestIDHandler) Handle(ctx context.Context, r slog.Record) error {
	if *h.id != "" {
		r.AddAttrs(slog.String(LogKeyRequestID, *h.id))
	}
	return h.inner.Handle(ctx, r)
}

func (h requestIDHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return requestIDHandler{inner: h.inner.WithAttrs(attrs), id: h.id}
}

func (h requestIDHandler) WithGroup(name string) slog.Handler {
	return requestIDHandler{inner: h.inner.WithGroup(name), id: h.id}
}

// refusalOf is the cause of a connection refused before its handshake.
func refusalOf(closing bool) RefusalCause {
	if closing {
		return RefusedShuttingDown
	}
	return RefusedMaxConnections
}
