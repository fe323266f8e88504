package pkcs11

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// HSM is a logged-in connection to one PKCS#11 token, shared by the
// Keyring, the KeySource and the administration functions.
//
// When an operation finds the token gone (removed, reset, sessions or login
// lost, module failure) the connection is dropped, every cache of derived
// keys is zeroized, the operation fails with ErrTokenUnavailable (after
// one immediate retry on a fresh connection for operations that can be
// repeated), Healthy and Ready report the loss, and the next operation or
// Ready call reopens the connection (new crypto11 context, new login), at
// most once per Config.ReconnectInterval. A PIN the token refuses is never
// tried again. Nothing panics into the caller: panics of the PKCS#11 layer
// are recovered and returned as ErrTokenFailure errors.
type HSM struct {
	cfg  Config
	open func() (token, error)

	mu      sync.Mutex
	tok     token
	gen     uint64
	down    error // why tok is nil
	fatal   bool  // down cannot be cured by reopening
	nextTry time.Time
	closed  bool
	onLoss  []func()
	checks  []func(token) error // extra readiness checks

	health atomic.Pointer[error] // nil: healthy

	closing sync.WaitGroup // closes of dropped connections

	pmu   sync.Mutex
	probe *probeCall

	now func() time.Time
}

type probeCall struct {
	done chan struct{}
	err  error
}

// closeWait bounds how long Close waits for dropped connections to close.
const closeWait = 10 * time.Second

// Open loads the module, finds the token by label and logs in. Its errors
// wrap ErrConfig, ErrModule, ErrTokenNotFound, ErrPINIncorrect,
// ErrPINLocked or ErrTokenFailure; a build without cgo returns ErrNoCgo.
func Open(ctx context.Context, cfg Config) (*HSM, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if !cgoEnabled {
		return nil, ErrNoCgo
	}
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	pin, err := cfg.pin()
	if err != nil {
		return nil, err
	}
	return newHSM(cfg, func() (token, error) { return openToken(cfg, pin) })
}

// newHSM opens the first connection with open.
func newHSM(cfg Config, open func() (token, error)) (*HSM, error) {
	h := &HSM{cfg: cfg, open: open, now: time.Now}
	t, err := h.callOpen()
	if err != nil {
		return nil, err
	}
	h.tok, h.gen = t, 1
	return h, nil
}

func (h *HSM) callOpen() (t token, err error) {
	defer func() {
		if r := recover(); r != nil {
			t, err = nil, newErr(kindFailure, "open token", fmt.Errorf("panic: %v", r))
		}
	}()
	return h.open()
}

// Config returns the configuration in use (with defaults filled in).
func (h *HSM) Config() Config {
	c := h.cfg
	c.PIN = ""
	return c
}

// current returns the open connection, reopening it when it was lost.
func (h *HSM) current() (token, uint64, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return nil, 0, newErr(kindClosed, "use", nil)
	}
	if h.tok != nil {
		return h.tok, h.gen, nil
	}
	if h.fatal || h.now().Before(h.nextTry) {
		return nil, 0, h.down
	}
	t, err := h.callOpen()
	if err != nil {
		h.nextTry = h.now().Add(h.cfg.ReconnectInterval)
		if kindOf(err).fatal() {
			h.fatal = true
			h.down = fmt.Errorf("%w: reopening the token failed and will not be retried (restart with the right PIN): %w", ErrTokenUnavailable, err)
		} else {
			h.down = fmt.Errorf("%w: reopen: %w", ErrTokenUnavailable, err)
		}
		h.setHealth(h.down)
		return nil, 0, h.down
	}
	h.tok, h.down = t, nil
	h.gen++
	h.setHealth(nil)
	return t, h.gen, nil
}

func (h *HSM) setHealth(err error) {
	if err == nil {
		h.health.Store(nil)
		return
	}
	h.health.Store(&err)
}

// markLost drops connection gen after cause showed it is gone.
func (h *HSM) markLost(gen uint64, cause error) {
	h.mu.Lock()
	if h.tok == nil || h.gen != gen {
		h.mu.Unlock()
		return
	}
	t := h.tok
	h.tok = nil
	h.down = cause
	h.nextTry = time.Time{} // the first reopen is immediate
	h.setHealth(cause)
	hooks := append([]func(){}, h.onLoss...)
	h.closing.Add(1)
	h.mu.Unlock()
	for _, f := range hooks {
		f()
	}
	// Closing waits for operations in flight on the old connection; it
	// must not hold up the reopen.
	go func() {
		defer h.closing.Done()
		safeClose(t)
	}()
}

func safeClose(t token) {
	defer func() { _ = recover() }()
	_ = t.close()
}

// onLossHook registers f, run when the connection is lost or closed.
func (h *HSM) onLossHook(f func()) {
	h.mu.Lock()
	h.onLoss = append(h.onLoss, f)
	h.mu.Unlock()
}

// readyCheck registers a check Ready runs after ping.
func (h *HSM) readyCheck(f func(token) error) {
	h.mu.Lock()
	h.checks = append(h.checks, f)
	h.mu.Unlock()
}

// do runs f with the current connection. A panic in f becomes an error. When
// f finds the token lost the connection is dropped and, with retry, f runs
// once more on a fresh connection.
func (h *HSM) do(ctx context.Context, op string, retry bool, f func(token) error) error {
	for attempt := 0; ; attempt++ {
		if err := ctx.Err(); err != nil {
			return err
		}
		t, gen, err := h.current()
		if err != nil {
			return err
		}
		err = protect(op, func() error { return f(t) })
		if err == nil {
			return nil
		}
		if kindOf(err) == kindLost {
			h.markLost(gen, err)
			if retry && attempt == 0 {
				continue
			}
		}
		return err
	}
}

// protect runs f, turning a panic into an ErrTokenFailure error.
func protect(op string, f func() error) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = newErr(kindFailure, op, fmt.Errorf("panic in the PKCS#11 layer: %v", r))
		}
	}()
	return f()
}

// Healthy reports, without talking to the token, whether the connection is
// up: nil, or why it is not (wrapping ErrTokenUnavailable, ErrClosed ...).
// It changes when an operation or Ready finds the token gone or back.
func (h *HSM) Healthy() error {
	if p := h.health.Load(); p != nil {
		return *p
	}
	return nil
}

// Ready asks the token whether it is there and logged in (and runs the
// checks of the Keyring: the current root key answers), reopening a lost
// connection. It returns when ctx ends even if the token does not answer;
// concurrent calls share one probe.
func (h *HSM) Ready(ctx context.Context) error {
	h.pmu.Lock()
	p := h.probe
	if p == nil {
		p = &probeCall{done: make(chan struct{})}
		h.probe = p
		go func() {
			p.err = h.do(context.Background(), "readiness probe", true, func(t token) error {
				if err := t.ping(); err != nil {
					return err
				}
				h.mu.Lock()
				checks := append([]func(token) error{}, h.checks...)
				h.mu.Unlock()
				for _, c := range checks {
					if err := c(t); err != nil {
						return err
					}
				}
				return nil
			})
			h.pmu.Lock()
			h.probe = nil
			h.pmu.Unlock()
			close(p.done)
		}()
	}
	h.pmu.Unlock()
	select {
	case <-p.done:
		return p.err
	case <-ctx.Done():
		return fmt.Errorf("%w: the token did not answer: %w", ErrTokenUnavailable, ctx.Err())
	}
}

// Info describes the token (from the current connection).
func (h *HSM) Info(ctx context.Context) (TokenInfo, error) {
	var ti TokenInfo
	err := h.do(ctx, "token info", true, func(t token) error {
		ti = t.info()
		return nil
	})
	return ti, err
}

// Close zeroizes the caches of derived keys and closes the connection,
// waiting for operations in flight. Keys and signers made from h fail with
// ErrClosed afterwards.
func (h *HSM) Close() error {
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		return nil
	}
	h.closed = true
	t := h.tok
	h.tok = nil
	closedErr := newErr(kindClosed, "use", nil)
	h.down, h.fatal = closedErr, true
	h.setHealth(closedErr)
	hooks := append([]func(){}, h.onLoss...)
	h.mu.Unlock()
	for _, f := range hooks {
		f()
	}
	var err error
	if t != nil {
		err = protect("close", t.close)
	}
	done := make(chan struct{})
	go func() { h.closing.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(closeWait):
		if err == nil {
			err = errors.New("pkcs11: a dropped token connection did not close in time")
		}
	}
	return err
}
