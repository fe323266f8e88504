package metrics

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/minikms/minikms/engine"
)

// cacheCollector exports the engine's cache counters, read at scrape time
// (the engine counts with plain atomics).
type cacheCollector struct{ e *engine.Engine }

var (
	cacheHitsDesc = prometheus.NewDesc(namespace+"_cache_hits_total",
		"Engine cache lookups that hit, by cache: object (metadata by id), key (unwrapped key material), tenant_key (derived tenant master keys).",
		[]string{"cache"}, nil)
	cacheMissesDesc = prometheus.NewDesc(namespace+"_cache_misses_total",
		"Engine cache lookups that missed (object: a store read; key: an unwrap; tenant_key: a root keyring derivation).",
		[]string{"cache"}, nil)
)

func (c *cacheCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- cacheHitsDesc
	ch <- cacheMissesDesc
}

func (c *cacheCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.e.CacheStats()
	for _, v := range []struct {
		cache        string
		hits, misses uint64
	}{{"object", s.ObjectHits, s.ObjectMisses}, {"key", s.KeyHits, s.KeyMisses}, {"tenant_key", s.TenantKeyHits, s.TenantKeyMisses}} {
		ch <- prometheus.MustNewConstMetric(cacheHitsDesc, prometheus.CounterValue, float64(v.hits), v.cache)
		ch <- prometheus.MustNewConstMetric(cacheMissesDesc, prometheus.CounterValue, float64(v.misses), v.cache)
	}
}
