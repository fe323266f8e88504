// Package metrics exports miniKMS's measurements in the Prometheus text
// format (served at /metrics on the HTTP address): KMIP operations and
// their latencies, results by Result Reason, connections, TLS handshake
// failures, the engine's caches, store and audit latencies, objects by
// type and state, build information, and the Go runtime and process.
//
// Label values come from bounded sets only (KMIP enumerations, fixed
// causes and method names): never a tenant, member or object identifier,
// so the number of series does not grow with clients or objects.
package metrics

import (
	"net/http"
	"runtime"
	"runtime/debug"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/minikms/minikms/engine"
)

const namespace = "minikms"

// Commit is the source revision, set at build time
// (-ldflags "-X github.com/minikms/minikms/metrics.Commit=..."); when
// empty, the VCS revision the Go toolchain recorded, else "unknown".
var Commit string

// Options configure New.
type Options struct {
	// Version is the server version (build info).
	Version string
	// ObjectsTTL is how long a count of objects by type and state is
	// reused before the store is asked again (default DefaultObjectsTTL):
	// scrapes cannot load the database.
	ObjectsTTL time.Duration
}

// DefaultObjectsTTL is the default Options.ObjectsTTL.
const DefaultObjectsTTL = 15 * time.Second

// Metrics is a registry with miniKMS's metrics.
type Metrics struct {
	reg  *prometheus.Registry
	opts Options
	kmip *KMIP

	store *storeMetrics
	audit *auditMetrics
}

// New returns the metrics of one server, with the Go runtime, process and
// build information collectors registered.
func New(opts Options) *Metrics {
	if opts.ObjectsTTL <= 0 {
		opts.ObjectsTTL = DefaultObjectsTTL
	}
	if opts.Version == "" {
		opts.Version = "unknown"
	}
	m := &Metrics{reg: prometheus.NewRegistry(), opts: opts}
	m.reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	info := prometheus.NewGauge(prometheus.GaugeOpts{
		Namespace: namespace, Name: "build_info",
		Help:        "Build information of the running server (always 1).",
		ConstLabels: prometheus.Labels{"version": opts.Version, "commit": commit(), "go_version": runtime.Version()},
	})
	info.Set(1)
	m.reg.MustRegister(info)
	m.kmip = newKMIP(m.reg)
	m.store = newStoreMetrics(m.reg)
	m.audit = newAuditMetrics(m.reg)
	return m
}

func commit() string {
	if Commit != "" {
		return Commit
	}
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" && s.Value != "" {
				return s.Value
			}
		}
	}
	return "unknown"
}

// Registry returns the registry (to add collectors, or gather in tests).
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Handler serves the metrics in the Prometheus exposition formats. A
// collector that fails (the object count while the store is down) is
// left out of that scrape; the others are served.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{
		ErrorHandling:       promhttp.ContinueOnError,
		MaxRequestsInFlight: 4,
		Timeout:             10 * time.Second,
	})
}

// KMIP returns the observer to set as kmip.Config.Observer.
func (m *Metrics) KMIP() *KMIP { return m.kmip }

// WatchEngine exports the engine's cache hit and miss counters.
func (m *Metrics) WatchEngine(e *engine.Engine) {
	m.reg.MustRegister(&cacheCollector{e: e})
}

// WatchObjects exports the objects by type and state, counted by c at
// most once per Options.ObjectsTTL.
func (m *Metrics) WatchObjects(c engine.ObjectCounter) {
	m.reg.MustRegister(newObjectsCollector(c, m.opts.ObjectsTTL))
}

// latencyBuckets (seconds) suit requests from a cached Get (tens of
// microseconds) to a slow RSA key generation or a struggling store.
var latencyBuckets = []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}
