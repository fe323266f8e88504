package engine_test

import (
	"fmt"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/minikms/minikms/engine"
)

// runWorkers runs fn(worker) on n goroutines at once and returns every
// error they report.
func runWorkers(n int, fn func(w int) error) []error {
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
	)
	start := make(chan struct{})
	for w := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			if err := fn(w); err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
		}()
	}
	close(start)
	wg.Wait()
	return errs
}

// TestConcurrentAddAttributeLosesNothing: 16 clients add a Name to one
// object at the same moment. Every Add succeeds, and every Name is there
// once, under its own index.
func TestConcurrentAddAttributeLosesNothing(t *testing.T) {
	const workers = 16
	e := newEnv(t)
	o := e.create(t, acmeApp, aesAttrs(128)...)
	var mu sync.Mutex
	indices := map[int32]string{}
	errs := runWorkers(workers, func(w int) error {
		v := fmt.Sprintf("name-%02d", w)
		_, a, err := e.eng.AddAttribute(t.Context(), acmeApp, o.ID, attr(engine.AttrName, name(v)))
		if err != nil {
			return fmt.Errorf("worker %d: %w", w, err)
		}
		mu.Lock()
		defer mu.Unlock()
		if prev, dup := indices[*a.Index]; dup {
			return fmt.Errorf("index %d handed to %s and %s", *a.Index, prev, v)
		}
		indices[*a.Index] = v
		return nil
	})
	for _, err := range errs {
		t.Errorf("concurrent AddAttribute: %v", err)
	}

	got := e.instances(t, acmeApp, o.ID, engine.AttrName)
	assert.Len(t, got, workers-len(errs), "an acknowledged Add was lost")
	for idx, v := range indices {
		assert.Equal(t, name(v), got[idx], "index %d", idx)
	}
	e.reopen(t)
	assert.Equal(t, got, e.instances(t, acmeApp, o.ID, engine.AttrName), "durable")
	assert.Equal(t, int64(1+len(indices)), e.stored(t, "acme", o.ID).Rev, "one revision per Add")
}

// TestConcurrentEncryptWithUsageLimits: 16 clients encrypt with one
// usage-limited key. Every use is counted exactly once and every
// Encrypt succeeds while the limit allows.
func TestConcurrentEncryptWithUsageLimits(t *testing.T) {
	const workers, rounds, total = 16, 10, 1_000_000
	e := newEnv(t)
	k := e.activeAES(t, acmeApp, 256, attr(engine.AttrUsageLimits, engine.UsageLimits{UsageLimitsTotal: total, UsageLimitsUnit: 2}))
	var mu sync.Mutex
	ok := 0
	errs := runWorkers(workers, func(w int) error {
		for i := range rounds {
			res, err := e.eng.Encrypt(t.Context(), acmeApp, engine.EncryptRequest{ID: k.ID, Data: []byte{byte(w), byte(i)}})
			if err != nil {
				return fmt.Errorf("worker %d, round %d: %w", w, i, err)
			}
			if len(res.Ciphertext) != 2 {
				return fmt.Errorf("worker %d: %d bytes of ciphertext", w, len(res.Ciphertext))
			}
			mu.Lock()
			ok++
			mu.Unlock()
		}
		return nil
	})
	for _, err := range errs {
		t.Errorf("concurrent Encrypt: %v", err)
	}
	v, _ := e.value(t, acmeApp, k.ID, engine.AttrUsageLimits)
	left := *v.(engine.UsageLimits).UsageLimitsCount
	assert.GreaterOrEqual(t, total-left, int64(ok), "a use was not counted")
	assert.Equal(t, int64(workers*rounds), total-left, "uses counted")
}

// TestConcurrentCreateAndUse: tenants working side by side never see each
// other's objects and every object is usable at once.
func TestConcurrentCreateAndUse(t *testing.T) {
	e := newEnv(t)
	tenants := []engine.Principal{acmeApp, globexAdmin, {Tenant: "initech", Role: engine.RoleApp}, {Tenant: "umbrella", Role: engine.RoleAdmin}}
	const perWorker = 5
	var mu sync.Mutex
	made := map[string][]string{}
	errs := runWorkers(16, func(w int) error {
		p := tenants[w%len(tenants)]
		for range perWorker {
			o, err := e.eng.Create(t.Context(), p, engine.CreateRequest{Type: engine.TypeSymmetricKey,
				Attrs: aesAttrs(256, attr(engine.AttrActivationDate, e.clock.Now()))})
			if err != nil {
				return err
			}
			res, err := e.eng.Encrypt(t.Context(), p, engine.EncryptRequest{ID: o.ID, Data: []byte(p.Tenant)})
			if err != nil {
				return err
			}
			_, pt, err := e.eng.Decrypt(t.Context(), p, engine.DecryptRequest{ID: o.ID, Data: res.Ciphertext, IV: res.IV, Tag: res.Tag})
			if err != nil {
				return err
			}
			if string(pt) != p.Tenant {
				return fmt.Errorf("decrypted %q, want %q", pt, p.Tenant)
			}
			mu.Lock()
			made[p.Tenant] = append(made[p.Tenant], o.ID)
			mu.Unlock()
		}
		return nil
	})
	require.Empty(t, errs)
	for _, p := range tenants {
		assert.ElementsMatch(t, made[p.Tenant], e.locate(t, engine.Principal{Tenant: p.Tenant, Role: engine.RoleAuditor}))
	}
}
