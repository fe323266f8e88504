package metrics

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/minikms/minikms/engine"
)

type auditMetrics struct {
	latency prometheus.Histogram
	batch   prometheus.Histogram
	errs    prometheus.Counter
}

func newAuditMetrics(reg prometheus.Registerer) *auditMetrics {
	m := &auditMetrics{
		latency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: namespace, Subsystem: "audit", Name: "append_duration_seconds",
			Help:    "Latency of one audit chain append (one store transaction, made durable).",
			Buckets: latencyBuckets,
		}),
		batch: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: namespace, Subsystem: "audit", Name: "append_batch_records",
			Help:    "Records per audit append (concurrent requests share one append).",
			Buckets: []float64{1, 2, 4, 8, 16, 32, 64, 128, 256, 512},
		}),
		errs: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: namespace, Subsystem: "audit", Name: "append_errors_total",
			Help: "Failed audit appends (operations are refused while appends fail).",
		}),
	}
	reg.MustRegister(m.latency, m.batch, m.errs)
	return m
}

// AuditStore returns s timing its appends and recording their sizes: pass
// it to audit.NewLog.
func (m *Metrics) AuditStore(s engine.AuditStore) engine.AuditStore {
	return &timedAudit{AuditStore: s, m: m.audit}
}

type timedAudit struct {
	engine.AuditStore
	m *auditMetrics
}

func (a *timedAudit) AppendAudit(ctx context.Context, build func(head engine.AuditHead) ([]engine.AuditRecord, error)) error {
	n := 0
	start := time.Now()
	err := a.AuditStore.AppendAudit(ctx, func(head engine.AuditHead) ([]engine.AuditRecord, error) {
		recs, err := build(head)
		n = len(recs)
		return recs, err
	})
	a.m.latency.Observe(time.Since(start).Seconds())
	if err != nil {
		a.m.errs.Inc()
		return err
	}
	a.m.batch.Observe(float64(n))
	return nil
}
