package loadgen

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

const (
	// progressInterval is how often Config.Progress is called.
	progressInterval = time.Second
	// failFastAfter is when a run in which every request failed is
	// stopped as misconfigured.
	failFastAfter = time.Second
	// sessionCacheSize is the TLS session cache of connect-resume.
	sessionCacheSize = 64
)

// ErrAllFailed is returned (wrapped, with the kinds of errors seen) when
// every request of the first second failed, or no request succeeded: a
// wrong certificate, a server that is down, a key the member may not use.
var ErrAllFailed = errors.New("every request failed")

// runner is the state the workers share.
type runner struct {
	cfg     Config
	tls     *tls.Config
	phase   atomic.Int32
	errs    *errorLog
	workers []*worker
}

// Run prepares the server (keys, ciphertexts), runs cfg.Conns workers for
// cfg.Warmup and then for the measured cfg.Duration, and returns what was
// measured. When ctx ends during the measured window, Run returns the
// partial result (Interrupted set) together with ctx's error.
func Run(ctx context.Context, cfg Config) (Result, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return Result{}, fmt.Errorf("invalid load configuration: %w", err)
	}
	tlsCfg := cfg.TLS.Clone()
	if tlsCfg.MinVersion == 0 {
		tlsCfg.MinVersion = tls.VersionTLS12
	}
	tlsCfg.ClientSessionCache = nil
	cacheChainVerification(tlsCfg, cfg.Addr)
	fx, err := prepare(ctx, cfg, tlsCfg)
	if err != nil {
		return Result{}, err
	}
	if cfg.Op == OpConnectResume {
		tlsCfg = tlsCfg.Clone()
		tlsCfg.ClientSessionCache = tls.NewLRUClientSessionCache(sessionCacheSize)
	}
	r := &runner{cfg: cfg, tls: tlsCfg, errs: newErrorLog()}
	for _, s := range fx.schedules(cfg.Op, cfg.Conns) {
		r.workers = append(r.workers, &worker{r: r, sched: s})
	}

	loadCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	var m measurement
	if cfg.Warmup == 0 {
		m.begin(r)
	}
	var wg sync.WaitGroup
	for _, w := range r.workers {
		wg.Go(func() { w.run(loadCtx) })
	}
	superr := r.supervise(ctx, &m)
	cancel()
	wg.Wait()

	res := r.result(fx, &m)
	if superr != nil {
		// All failing, or ctx ended: res holds what was measured.
		return res, superr
	}
	if r.okTotal() == 0 && r.errTotal() > 0 {
		return res, fmt.Errorf("%w: %s", ErrAllFailed, r.errs.summary())
	}
	if res.Ops == 0 {
		return res, fmt.Errorf("no request completed in the %v measured window", cfg.Duration)
	}
	return res, nil
}

// measurement is the measured window.
type measurement struct {
	start, end       time.Time
	cpuStart, cpuEnd time.Duration
	cpuOK            bool
	interrupted      bool
}

func (m *measurement) begin(r *runner) {
	m.cpuStart, m.cpuOK = processCPU()
	m.start = time.Now()
	r.phase.Store(phaseMeasure)
}

func (m *measurement) finish(r *runner, interrupted bool) {
	if r.phase.Swap(phaseDone) != phaseMeasure {
		return // stopped during the warm-up: nothing was measured
	}
	m.end = time.Now()
	cpu, ok := processCPU()
	m.cpuEnd, m.cpuOK = cpu, m.cpuOK && ok
	m.interrupted = interrupted
}

func (m *measurement) window() time.Duration {
	if m.end.IsZero() {
		return 0
	}
	return m.end.Sub(m.start)
}

// supervise switches the phases on time, reports progress, and stops a
// run in which every request of the first second failed.
func (r *runner) supervise(ctx context.Context, m *measurement) error {
	started := time.Now()
	ticker := time.NewTicker(progressInterval)
	defer ticker.Stop()
	next := r.cfg.Warmup
	if r.phase.Load() == phaseMeasure {
		next = r.cfg.Duration
	}
	timer := time.NewTimer(next)
	defer timer.Stop()
	checked := false
	for {
		select {
		case <-ctx.Done():
			m.finish(r, true)
			return ctx.Err()
		case now := <-ticker.C:
			if !checked && now.Sub(started) >= failFastAfter {
				checked = true
				if r.okTotal() == 0 && r.errTotal() > 0 {
					m.finish(r, false)
					return fmt.Errorf("%w in the first second against %s: %s", ErrAllFailed, r.cfg.Addr, r.errs.summary())
				}
			}
			if r.cfg.Progress != nil {
				r.cfg.Progress(r.progress(started, m))
			}
		case <-timer.C:
			if r.phase.Load() == phaseWarmup {
				m.begin(r)
				timer.Reset(r.cfg.Duration)
				continue
			}
			m.finish(r, false)
			return nil
		}
	}
}

func (r *runner) progress(started time.Time, m *measurement) Progress {
	var p Progress
	if r.phase.Load() == phaseMeasure {
		p.Measuring = true
		p.Elapsed = time.Since(m.start)
		for _, w := range r.workers {
			p.Ops += w.okMeasured.Load()
			p.Errors += w.errMeasured.Load()
		}
	} else {
		p.Elapsed = time.Since(started)
		p.Ops, p.Errors = r.okTotal(), r.errTotal()
	}
	if s := p.Elapsed.Seconds(); s > 0 {
		p.Rate = float64(p.Ops) / s
	}
	return p
}

func (r *runner) okTotal() (n int64) {
	for _, w := range r.workers {
		n += w.okTotal.Load()
	}
	return n
}

func (r *runner) errTotal() (n int64) {
	for _, w := range r.workers {
		n += w.errTotal.Load()
	}
	return n
}

// result assembles the measured numbers once the workers have stopped.
func (r *runner) result(fx *fixture, m *measurement) Result {
	var h Histogram
	res := Result{
		Op: r.cfg.Op, Conns: r.cfg.Conns, Pipeline: r.cfg.Pipeline,
		KMIPVersion: versionString(r.cfg.Version), TLSVersion: tls.VersionName(fx.tlsVersion),
		Duration: m.window(), Interrupted: m.interrupted,
	}
	if r.cfg.Op.usesPayload() {
		res.Size = r.cfg.Size
	}
	for _, w := range r.workers {
		res.Ops += w.okMeasured.Load()
		res.Resumed += w.resumed
		h.Merge(&w.hist)
	}
	// Operations that straddle the start of the window count as warm-up.
	res.WarmupOps = r.okTotal() - res.Ops
	res.Errors, res.ErrorSamples = r.errs.snapshot()
	if s := res.Duration.Seconds(); s > 0 {
		res.OpsPerSec = float64(res.Ops) / s
	}
	res.Latency = Latency{P50: h.Quantile(0.50), P95: h.Quantile(0.95), P99: h.Quantile(0.99), Max: h.Max()}
	if m.cpuOK && !m.end.IsZero() {
		res.ClientCPU = m.cpuEnd - m.cpuStart
		if res.Ops > 0 {
			res.ClientCPUPerOp = res.ClientCPU / time.Duration(res.Ops)
		}
	}
	return res
}
