package metrics

import (
	"context"
	"errors"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/minikms/minikms/engine"
)

// Store method label values.
const (
	methodInitMeta     = "InitMeta"
	methodGetMeta      = "GetMeta"
	methodListMeta     = "ListMeta"
	methodCreateObject = "CreateObject"
	methodGetObject    = "GetObject"
	methodUpdateObject = "UpdateObject"
	methodListObjects  = "ListObjects"
	methodDeleteObject = "DeleteObject"
	methodPing         = "Ping"
)

var storeMethods = []string{methodInitMeta, methodGetMeta, methodListMeta, methodCreateObject, methodGetObject,
	methodUpdateObject, methodListObjects, methodDeleteObject, methodPing}

type storeMetrics struct {
	latency *prometheus.HistogramVec
	errs    *prometheus.CounterVec
	byName  map[string]methodSeries // fixed after construction
}

type methodSeries struct {
	latency prometheus.Observer
	errs    prometheus.Counter
}

func newStoreMetrics(reg prometheus.Registerer) *storeMetrics {
	m := &storeMetrics{
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: namespace, Subsystem: "store", Name: "request_duration_seconds",
			Help:    "Latency of the engine's store calls, by method.",
			Buckets: latencyBuckets,
		}, []string{"method"}),
		errs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Subsystem: "store", Name: "errors_total",
			Help: "Failed store calls of the engine, by method (not found, exists and conflicts are answers, not failures).",
		}, []string{"method"}),
		byName: map[string]methodSeries{},
	}
	reg.MustRegister(m.latency, m.errs)
	for _, name := range storeMethods {
		m.byName[name] = methodSeries{latency: m.latency.WithLabelValues(name), errs: m.errs.WithLabelValues(name)}
	}
	return m
}

func (m *storeMetrics) done(method string, start time.Time, err error) {
	s := m.byName[method]
	s.latency.Observe(time.Since(start).Seconds())
	if err != nil && !errors.Is(err, engine.ErrNotFound) && !errors.Is(err, engine.ErrExists) && !errors.Is(err, engine.ErrConflict) {
		s.errs.Inc()
	}
}

// Store returns s timing every call (the engine's store: pass the result
// as engine.Config.Store). The optional interfaces the engine asserts on
// its store (engine.ObjectDeleter, engine.ChangeFeed, engine.RotationStore)
// are kept when s has them (TestStoreKeepsEngineInterfaces checks this
// list against the engine's source); Unwrap returns s.
func (m *Metrics) Store(s engine.Store) engine.Store {
	t := &timedStore{Store: s, m: m.store}
	d, isD := s.(engine.ObjectDeleter)
	f, isF := s.(engine.ChangeFeed)
	r, isR := s.(engine.RotationStore)
	td, ff, rf := timedDeleter{d: d, t: t}, feedFwd{f}, rotationFwd{r}
	switch {
	case isD && isF && isR:
		return &storeDFR{t, td, ff, rf}
	case isD && isF:
		return &storeDF{t, td, ff}
	case isD && isR:
		return &storeDR{t, td, rf}
	case isF && isR:
		return &storeFR{t, ff, rf}
	case isD:
		return &storeD{t, td}
	case isF:
		return &storeF{t, ff}
	case isR:
		return &storeR{t, rf}
	}
	return t
}

// The variants embed *timedStore, whose own methods (every engine.Store
// method, at depth 1) win over the same methods of the forwarded
// interfaces (depth 2).
type (
	storeD struct {
		*timedStore
		timedDeleter
	}
	storeF struct {
		*timedStore
		feedFwd
	}
	storeR struct {
		*timedStore
		rotationFwd
	}
	storeDF struct {
		*timedStore
		timedDeleter
		feedFwd
	}
	storeDR struct {
		*timedStore
		timedDeleter
		rotationFwd
	}
	storeFR struct {
		*timedStore
		feedFwd
		rotationFwd
	}
	storeDFR struct {
		*timedStore
		timedDeleter
		feedFwd
		rotationFwd
	}
)

type feedFwd struct{ engine.ChangeFeed }

// rotationFwd forwards the root rotation's bulk calls untimed.
type rotationFwd struct{ engine.RotationStore }

type timedDeleter struct {
	d engine.ObjectDeleter
	t *timedStore
}

func (d timedDeleter) DeleteObject(ctx context.Context, tenant, id string, rev int64) error {
	start := time.Now()
	err := d.d.DeleteObject(ctx, tenant, id, rev)
	d.t.m.done(methodDeleteObject, start, err)
	return err
}

type timedStore struct {
	engine.Store
	m *storeMetrics
}

// Unwrap returns the store being timed.
func (s *timedStore) Unwrap() engine.Store { return s.Store }

func (s *timedStore) InitMeta(ctx context.Context, key string, value []byte) ([]byte, error) {
	start := time.Now()
	v, err := s.Store.InitMeta(ctx, key, value)
	s.m.done(methodInitMeta, start, err)
	return v, err
}

func (s *timedStore) GetMeta(ctx context.Context, key string) ([]byte, error) {
	start := time.Now()
	v, err := s.Store.GetMeta(ctx, key)
	s.m.done(methodGetMeta, start, err)
	return v, err
}

func (s *timedStore) ListMeta(ctx context.Context, prefix string) (map[string][]byte, error) {
	start := time.Now()
	v, err := s.Store.ListMeta(ctx, prefix)
	s.m.done(methodListMeta, start, err)
	return v, err
}

func (s *timedStore) CreateObject(ctx context.Context, o *engine.StoredObject) error {
	start := time.Now()
	err := s.Store.CreateObject(ctx, o)
	s.m.done(methodCreateObject, start, err)
	return err
}

func (s *timedStore) GetObject(ctx context.Context, tenant, id string) (*engine.StoredObject, error) {
	start := time.Now()
	o, err := s.Store.GetObject(ctx, tenant, id)
	s.m.done(methodGetObject, start, err)
	return o, err
}

func (s *timedStore) UpdateObject(ctx context.Context, o *engine.StoredObject, prevRev int64) error {
	start := time.Now()
	err := s.Store.UpdateObject(ctx, o, prevRev)
	s.m.done(methodUpdateObject, start, err)
	return err
}

func (s *timedStore) ListObjects(ctx context.Context, q engine.ObjectQuery) ([]*engine.StoredObject, error) {
	start := time.Now()
	v, err := s.Store.ListObjects(ctx, q)
	s.m.done(methodListObjects, start, err)
	return v, err
}

func (s *timedStore) Ping(ctx context.Context) error {
	start := time.Now()
	err := s.Store.Ping(ctx)
	s.m.done(methodPing, start, err)
	return err
}

// Close closes the store.
func (s *timedStore) Close() error { return s.Store.Close() }
