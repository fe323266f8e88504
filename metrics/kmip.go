package metrics

import (
	"strings"
	"sync"
	"sync/atomic"
	"time"

	okmip "github.com/ovh/kmip-go"
	"github.com/ovh/kmip-go/ttlv"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/minikms/minikms/kmip"
)

// KMIP implements kmip.Observer.
type KMIP struct {
	ops        *prometheus.CounterVec   // operation, status, reason
	opDuration *prometheus.HistogramVec // operation
	messages   prometheus.Counter
	msgRefused *prometheus.CounterVec // reason
	msgDur     prometheus.Histogram
	active     prometheus.Gauge
	accepted   prometheus.Counter
	refused    *prometheus.CounterVec // cause
	handshake  *prometheus.CounterVec // cause

	// byOp caches the series of successful operations, so the common
	// path resolves no labels.
	byOp [maxCachedOp]atomic.Pointer[opSeries]
	// names caches label values of statuses and reasons.
	names sync.Map // uint64 (kind<<32|value) -> string
}

var _ kmip.Observer = (*KMIP)(nil)

// maxCachedOp bounds the operation codes cached in KMIP.byOp (KMIP 1.x
// and 2.x operations are below).
const maxCachedOp = 0x40

type opSeries struct {
	name     string
	duration prometheus.Observer
	success  prometheus.Counter
}

// Label values of operations, statuses and reasons outside the KMIP
// enumerations (a client can send any operation code).
const unknownLabel = "unknown"

func newKMIP(reg prometheus.Registerer) *KMIP {
	k := &KMIP{
		ops: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Subsystem: "kmip", Name: "operations_total",
			Help: "KMIP batch items by operation, Result Status and Result Reason (\"none\" on success).",
		}, []string{"operation", "status", "reason"}),
		opDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: namespace, Subsystem: "kmip", Name: "operation_duration_seconds",
			Help:    "Time to execute one KMIP batch item, by operation (cancelled items are not timed).",
			Buckets: latencyBuckets,
		}, []string{"operation"}),
		messages: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: namespace, Subsystem: "kmip", Name: "messages_total",
			Help: "KMIP request messages answered (refused ones included).",
		}),
		msgRefused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Subsystem: "kmip", Name: "messages_refused_total",
			Help: "KMIP request messages refused as a whole, by Result Reason.",
		}, []string{"reason"}),
		msgDur: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: namespace, Subsystem: "kmip", Name: "message_duration_seconds",
			Help:    "Time from a complete request message to its encoded response, audit append included.",
			Buckets: latencyBuckets,
		}),
		active: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: namespace, Subsystem: "kmip", Name: "connections_active",
			Help: "Open KMIP connections (handshaking ones included).",
		}),
		accepted: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: namespace, Subsystem: "kmip", Name: "connections_total",
			Help: "KMIP connections accepted.",
		}),
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Subsystem: "kmip", Name: "connections_refused_total",
			Help: "KMIP connections refused, by cause: max_connections, max_per_client, certificate, trust_changed, shutting_down.",
		}, []string{"cause"}),
		handshake: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Subsystem: "kmip", Name: "tls_handshake_failures_total",
			Help: "Failed TLS handshakes on the KMIP port, by cause: bad_cert, revoked, timeout, protocol, other.",
		}, []string{"cause"}),
	}
	reg.MustRegister(k.ops, k.opDuration, k.messages, k.msgRefused, k.msgDur, k.active, k.accepted, k.refused, k.handshake)
	// Zero series for the bounded causes, so rates exist before the first
	// event.
	for _, c := range []kmip.RefusalCause{kmip.RefusedMaxConnections, kmip.RefusedMaxPerClient, kmip.RefusedCertificate, kmip.RefusedTrustChanged, kmip.RefusedShuttingDown} {
		k.refused.WithLabelValues(string(c))
	}
	for _, c := range HandshakeCauses {
		k.handshake.WithLabelValues(c)
	}
	return k
}

// opName is the label value of an operation: its KMIP name, or "unknown"
// (ttlv.EnumStr answers "" for a value outside the enumeration).
func opName(op okmip.Operation) string {
	name := ttlv.EnumStr(op)
	if name == "" || strings.HasPrefix(name, "0x") {
		return unknownLabel
	}
	return name
}

const (
	kindStatus = 1
	kindReason = 2
)

// enumName is the label value of a Result Status or Result Reason.
func (k *KMIP) enumName(kind uint64, v uint32, name func() string) string {
	key := kind<<32 | uint64(v)
	if n, ok := k.names.Load(key); ok {
		return n.(string)
	}
	n := name()
	if n == "" || strings.HasPrefix(n, "0x") {
		return unknownLabel // not cached: the set stays bounded
	}
	k.names.Store(key, n)
	return n
}

func (k *KMIP) statusName(s okmip.ResultStatus) string {
	return k.enumName(kindStatus, uint32(s), func() string { return ttlv.EnumStr(s) })
}

func (k *KMIP) reasonName(r okmip.ResultReason) string {
	if r == 0 {
		return "none"
	}
	return k.enumName(kindReason, uint32(r), func() string { return ttlv.EnumStr(r) })
}

func (k *KMIP) series(op okmip.Operation) *opSeries {
	if uint32(op) < maxCachedOp {
		if s := k.byOp[op].Load(); s != nil {
			return s
		}
	}
	name := opName(op)
	s := &opSeries{name: name, duration: k.opDuration.WithLabelValues(name),
		success: k.ops.WithLabelValues(name, "Success", "none")}
	if uint32(op) < maxCachedOp {
		k.byOp[op].Store(s)
	}
	return s
}

// BatchItem implements kmip.Observer.
func (k *KMIP) BatchItem(op okmip.Operation, status okmip.ResultStatus, reason okmip.ResultReason, d time.Duration) {
	s := k.series(op)
	if d >= 0 {
		s.duration.Observe(d.Seconds())
	}
	if status == okmip.ResultStatusSuccess && reason == 0 {
		s.success.Inc()
		return
	}
	k.ops.WithLabelValues(s.name, k.statusName(status), k.reasonName(reason)).Inc()
}

// Message implements kmip.Observer.
func (k *KMIP) Message(refused okmip.ResultReason, d time.Duration) {
	k.messages.Inc()
	k.msgDur.Observe(d.Seconds())
	if refused != 0 {
		k.msgRefused.WithLabelValues(k.reasonName(refused)).Inc()
	}
}

// ConnectionOpened implements kmip.Observer.
func (k *KMIP) ConnectionOpened() { k.active.Inc(); k.accepted.Inc() }

// ConnectionClosed implements kmip.Observer.
func (k *KMIP) ConnectionClosed() { k.active.Dec() }

// ConnectionRefused implements kmip.Observer.
func (k *KMIP) ConnectionRefused(cause kmip.RefusalCause) {
	switch cause {
	case kmip.RefusedMaxConnections, kmip.RefusedMaxPerClient, kmip.RefusedCertificate, kmip.RefusedTrustChanged, kmip.RefusedShuttingDown:
	default:
		cause = unknownLabel
	}
	k.refused.WithLabelValues(string(cause)).Inc()
}

// HandshakeFailed implements kmip.Observer.
func (k *KMIP) HandshakeFailed(err error) {
	k.handshake.WithLabelValues(HandshakeCause(err)).Inc()
}
