package metrics

import (
	"context"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/minikms/minikms/engine"
)

// objectsCollector exports the objects by type and state, counting them at
// most once per ttl: concurrent and frequent scrapes share one count.
type objectsCollector struct {
	c   engine.ObjectCounter
	ttl time.Duration

	desc     *prometheus.Desc
	failures prometheus.Counter
	age      *prometheus.Desc

	mu     sync.Mutex
	at     time.Time // of the last attempt
	okAt   time.Time // of the last count that succeeded
	counts map[[2]string]float64
}

// countTimeout bounds one count.
const countTimeout = 5 * time.Second

func newObjectsCollector(c engine.ObjectCounter, ttl time.Duration) *objectsCollector {
	return &objectsCollector{
		c: c, ttl: ttl,
		desc: prometheus.NewDesc(namespace+"_objects", "Managed objects of every tenant by object type and state (counted at most every few seconds).",
			[]string{"type", "state"}, nil),
		failures: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: namespace, Name: "objects_count_failures_total",
			Help: "Failed counts of the objects (the last successful count is served meanwhile).",
		}),
		age: prometheus.NewDesc(namespace+"_objects_count_age_seconds", "Age of the served count of objects.", nil, nil),
	}
}

func (o *objectsCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- o.desc
	ch <- o.age
	o.failures.Describe(ch)
}

func (o *objectsCollector) Collect(ch chan<- prometheus.Metric) {
	o.mu.Lock()
	defer o.mu.Unlock()
	now := time.Now()
	if o.at.IsZero() || now.Sub(o.at) >= o.ttl {
		o.at = now
		ctx, cancel := context.WithTimeout(context.Background(), countTimeout)
		counts, err := o.c.CountObjects(ctx)
		cancel()
		if err != nil {
			o.failures.Inc()
		} else {
			o.counts = aggregate(counts)
			o.okAt = now
		}
	}
	o.failures.Collect(ch)
	if o.okAt.IsZero() {
		return
	}
	for k, n := range o.counts {
		ch <- prometheus.MustNewConstMetric(o.desc, prometheus.GaugeValue, n, k[0], k[1])
	}
	ch <- prometheus.MustNewConstMetric(o.age, prometheus.GaugeValue, now.Sub(o.okAt).Seconds())
}

// aggregate names types and states, folding values outside the KMIP
// enumerations into "unknown" (the label set stays bounded).
func aggregate(counts []engine.ObjectCount) map[[2]string]float64 {
	out := make(map[[2]string]float64, len(counts))
	for _, c := range counts {
		t, s := unknownLabel, unknownLabel
		if c.Type.Valid() {
			t = c.Type.String()
		}
		if c.State.Valid() {
			s = c.State.String()
		}
		out[[2]string{t, s}] += float64(c.Count)
	}
	return out
}
