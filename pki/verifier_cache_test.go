package pki_test

import (
	"crypto/x509"
	"errors"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/minikms/minikms/engine"
	"github.com/minikms/minikms/pki"
)

// TestVerifierCacheHonoursExpiry: a cached verification is answered only
// while every certificate of the chain is valid; past the leaf's NotAfter
// the chain is refused even though it was verified (and cached) before.
func TestVerifierCacheHonoursExpiry(t *testing.T) {
	h := newHierarchy(t, t0, "acme")
	m := h.issueMember(t, "acme", "app", engine.RoleApp, t0, time.Hour)
	clock := newClock(t0)
	v := pki.NewVerifier(h.root.Cert, h.tenantCerts(), clock.Now)

	tests := []struct {
		name string
		now  time.Time
		ok   bool
	}{
		{"first verification", t0, true},
		{"cached, still valid", t0.Add(30 * time.Minute), true},
		{"cached, last second", m.cert.NotAfter.Add(-time.Second), true},
		{"cached, but the leaf expired", m.cert.NotAfter.Add(time.Second), false},
		{"still refused later", m.cert.NotAfter.Add(24 * time.Hour), false},
	}
	// The steps share one verifier and run in order.
	for _, tt := range tests {
		clock.Set(tt.now)
		p, err := v.Verify(raw(m.cert, h.tenants["acme"].Cert))
		if tt.ok {
			require.NoError(t, err, tt.name)
			assert.Equal(t, principalOf(m.cert, "acme", "app", engine.RoleApp), p, tt.name)
		} else {
			require.ErrorIs(t, err, pki.ErrNotAuthenticated, tt.name)
		}
	}
}

// TestVerifierCacheHonoursIssuerExpiry: the cache lives only as long as the
// shortest-lived certificate of the chain, here the tenant CA, which
// expires before the (hand-made, over-long) leaf.
func TestVerifierCacheHonoursIssuerExpiry(t *testing.T) {
	h := newHierarchy(t, t0, "acme")
	ca := h.tenants["acme"]
	m := handMade{
		tenant: "acme", member: "app", role: "app",
		extKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		notBefore:   t0, notAfter: ca.Cert.NotAfter.Add(365 * 24 * time.Hour),
	}.build(t, ca)
	clock := newClock(ca.Cert.NotAfter.Add(-time.Hour))
	v := pki.NewVerifier(h.root.Cert, h.tenantCerts(), clock.Now)
	_, err := v.Verify(raw(m.cert))
	require.NoError(t, err)

	clock.Set(ca.Cert.NotAfter.Add(time.Second))
	_, err = v.Verify(raw(m.cert))
	require.ErrorIs(t, err, pki.ErrNotAuthenticated, "the tenant CA expired: the cached entry must not outlive it")
}

// TestVerifierSetTrustDropsCache: after SetTrust with a different root the
// very chain verified (and cached) before is refused.
func TestVerifierSetTrustDropsCache(t *testing.T) {
	h := newHierarchy(t, t0, "acme")
	foreign := newHierarchy(t, t0, "acme")
	m := h.issueMember(t, "acme", "app", engine.RoleApp, t0, 0)
	v := pki.NewVerifier(h.root.Cert, h.tenantCerts(), newClock(t0).Now)

	for _, chain := range [][][]byte{raw(m.cert), raw(m.cert, h.tenants["acme"].Cert)} {
		_, err := v.Verify(chain)
		require.NoError(t, err)
		_, err = v.Verify(chain)
		require.NoError(t, err, "second verification (cached)")
	}

	v.SetTrust(foreign.root.Cert, foreign.tenantCerts())
	for _, chain := range [][][]byte{raw(m.cert), raw(m.cert, h.tenants["acme"].Cert)} {
		_, err := v.Verify(chain)
		require.ErrorIs(t, err, pki.ErrNotAuthenticated, "cached verification survived SetTrust")
	}

	v.SetTrust(h.root.Cert, nil)
	_, err := v.Verify(raw(m.cert))
	require.ErrorIs(t, err, pki.ErrNotAuthenticated, "SetTrust replaces the tenant CAs too")
	_, err = v.Verify(raw(m.cert, h.tenants["acme"].Cert))
	require.NoError(t, err)
}

// TestVerifierCacheKeyIsUnambiguous: the cache key hashes the presented
// certificates concatenated without their lengths, so after [leaf, CA] is
// verified, the single "certificate" leaf||CA (which does not even parse)
// is answered from the cache with the member's principal.
func TestVerifierCacheKeyIsUnambiguous(t *testing.T) {
	h := newHierarchy(t, t0, "acme")
	m := h.issueMember(t, "acme", "app", engine.RoleApp, t0, 0)
	ca := h.tenants["acme"].Cert
	joined := append(append([]byte{}, m.cert.Raw...), ca.Raw...)
	split := len(m.cert.Raw) / 2

	tests := []struct {
		name string
		raw  [][]byte
	}{
		{"leaf and CA joined into one", [][]byte{joined}},
		{"split at another boundary", [][]byte{joined[:split], joined[split:]}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := pki.NewVerifier(h.root.Cert, h.tenantCerts(), newClock(t0).Now)
			_, err := v.Verify(tt.raw)
			require.ErrorIs(t, err, pki.ErrNotAuthenticated, "a fresh verifier refuses it")

			_, err = v.Verify(raw(m.cert, ca))
			require.NoError(t, err)
			p, err := v.Verify(tt.raw)
			require.ErrorIs(t, err, pki.ErrNotAuthenticated, "answered from the cache of another presentation: %+v", p)
		})
	}
}

// TestVerifierConcurrent: 32 goroutines verify while trust changes. Every
// answer is either the right principal or a refusal, never another
// principal; and once SetTrust to a foreign root has returned, no
// verification that raced it may leave an entry the new trust would use.
func TestVerifierConcurrent(t *testing.T) {
	h := newHierarchy(t, t0, "acme", "globex")
	foreign := newHierarchy(t, t0, "acme")
	acmeApp := h.issueMember(t, "acme", "app", engine.RoleApp, t0, 0)
	globexAdmin := h.issueMember(t, "globex", "admin", engine.RoleAdmin, t0, 0)
	chains := []struct {
		raw  [][]byte
		want engine.Principal
	}{
		{raw(acmeApp.cert), principalOf(acmeApp.cert, "acme", "app", engine.RoleApp)},
		{raw(acmeApp.cert, h.tenants["acme"].Cert), principalOf(acmeApp.cert, "acme", "app", engine.RoleApp)},
		{raw(globexAdmin.cert), principalOf(globexAdmin.cert, "globex", "admin", engine.RoleAdmin)},
		{raw(globexAdmin.cert, h.tenants["globex"].Cert), principalOf(globexAdmin.cert, "globex", "admin", engine.RoleAdmin)},
	}
	v := pki.NewVerifier(h.root.Cert, []*x509.Certificate{h.tenants["acme"].Cert}, newClock(t0).Now)

	const workers, rounds = 32, 12
	var (
		stopWorkers atomic.Bool
		accepted    atomic.Int64
		answered    atomic.Int64 // verifications that returned
		wg, mut     sync.WaitGroup
		errs        = make(chan error, workers)
	)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; !stopWorkers.Load(); i++ {
				c := chains[(w+i)%len(chains)]
				p, err := v.Verify(c.raw)
				answered.Add(1)
				switch {
				case err == nil && p != c.want:
					errs <- errors.New("wrong principal " + p.Tenant + "/" + p.Member)
					return
				case err != nil && !errors.Is(err, pki.ErrNotAuthenticated):
					errs <- err
					return
				case err == nil:
					accepted.Add(1)
				}
				runtime.Gosched() // let the trust changes in
			}
		}()
	}
	mut.Add(1)
	go func() {
		defer mut.Done()
		// Let some workers finish a verification under the current trust
		// before changing it again.
		settle := func() {
			for n := answered.Load(); answered.Load() < n+workers/4; {
				runtime.Gosched()
			}
		}
		for i := range rounds {
			switch i % 4 {
			case 0:
				v.SetTrust(foreign.root.Cert, foreign.tenantCerts())
				settle()
				v.SetTrust(h.root.Cert, []*x509.Certificate{h.tenants["acme"].Cert})
			case 1:
				v.AddTenantCA(h.tenants["globex"].Cert)
			case 2:
				v.Flush()
			case 3:
				v.AddTenantCA(h.tenants["acme"].Cert) // already known
			}
			settle()
		}
	}()

	mut.Wait()
	// Trust changes for good while the workers still run. Flush a moment
	// before, so that verifications are in flight (cache misses under the
	// old trust) when the trust changes.
	before := accepted.Load()
	v.Flush()
	time.Sleep(time.Millisecond)
	v.SetTrust(foreign.root.Cert, foreign.tenantCerts())
	time.Sleep(20 * time.Millisecond)
	stopWorkers.Store(true)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	t.Logf("%d verifications accepted during %d rounds of trust changes", before, rounds)
	assert.Positive(t, before, "no verification succeeded while trust changed")

	for _, c := range chains {
		_, err := v.Verify(c.raw)
		require.ErrorIs(t, err, pki.ErrNotAuthenticated, "a verification under the old trust was cached under the new one")
	}
}
