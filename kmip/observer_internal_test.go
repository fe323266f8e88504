package kmip

import (
	"io"
	"log/slog"
	"testing"

	"github.com/minikms/minikms/engine"
)

// BenchmarkRequestID is what a message pays for its request id: the id,
// the audit detail, and a debug line filtered out at info level.
func BenchmarkRequestID(b *testing.B) {
	s := &session{}
	s.log = slog.New(requestIDHandler{inner: slog.NewJSONHandler(io.Discard, nil), id: &s.reqID})
	events := make([]engine.AuditEvent, 1)
	b.ReportAllocs()
	for b.Loop() {
		s.begin()
		events[0].Details = nil
		s.tagEvents(events)
		s.log.Debug("kmip operation", "op", "Encrypt")
	}
}
