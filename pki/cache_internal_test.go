package pki

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/minikms/minikms/engine"
)

// cacheLen is the number of cached verifications of v.
func cacheLen(v *Verifier) int {
	v.mu.RLock()
	defer v.mu.RUnlock()
	return len(v.cache)
}

// TestVerifierCacheLifecycle looks inside the verifier: a success is
// cached once, a second Verify of the same chain is a hit (no new entry),
// refusals are never cached, Flush and SetTrust empty the cache, and
// AddTenantCA (which only widens trust) keeps it.
func TestVerifierCacheLifecycle(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	key := func(c elliptic.Curve) *ecdsa.PrivateKey {
		k, err := ecdsa.GenerateKey(c, rand.Reader)
		require.NoError(t, err)
		return k
	}
	root, err := NewRootCA(key(elliptic.P384()), now)
	require.NoError(t, err)
	acme, err := NewTenantCA(root, "acme", key(elliptic.P384()), now)
	require.NoError(t, err)
	globex, err := NewTenantCA(root, "globex", key(elliptic.P384()), now)
	require.NoError(t, err)
	issue := func(ca *CA, tenant string) [][]byte {
		c, err := IssueMember(ca, MemberSpec{Tenant: tenant, Member: "app", Role: engine.RoleApp, PublicKey: key(elliptic.P256()).Public()}, now)
		require.NoError(t, err)
		return [][]byte{c.Raw}
	}
	a, g := issue(acme, "acme"), issue(globex, "globex")
	v := NewVerifier(root.Cert, nil, func() time.Time { return now })

	steps := []struct {
		name string
		do   func() error
		ok   bool
		want int
	}{
		{"refusal is not cached", func() error { _, err := v.Verify(a); return err }, false, 0},
		{"AddTenantCA acme", func() error { v.AddTenantCA(acme.Cert); return nil }, true, 0},
		{"first success is cached", func() error { _, err := v.Verify(a); return err }, true, 1},
		{"second verification is a hit", func() error { _, err := v.Verify(a); return err }, true, 1},
		{"AddTenantCA keeps the cache", func() error { v.AddTenantCA(globex.Cert); return nil }, true, 1},
		{"another chain is cached", func() error { _, err := v.Verify(g); return err }, true, 2},
		{"Flush empties", func() error { v.Flush(); return nil }, true, 0},
		{"cached again after Flush", func() error { _, err := v.Verify(a); return err }, true, 1},
		{"SetTrust empties", func() error { v.SetTrust(root.Cert, []*x509.Certificate{acme.Cert, globex.Cert}); return nil }, true, 0},
		{"cached again after SetTrust", func() error { _, err := v.Verify(g); return err }, true, 1},
	}
	for _, s := range steps {
		err := s.do()
		if s.ok {
			require.NoError(t, err, s.name)
		} else {
			require.ErrorIs(t, err, ErrNotAuthenticated, s.name)
		}
		require.Equal(t, s.want, cacheLen(v), s.name)
	}
}

// TestVerifierCacheBounded: at maxVerifiedCache entries, a new success
// replaces an entry instead of growing the cache.
func TestVerifierCacheBounded(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	rootKey, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	require.NoError(t, err)
	root, err := NewRootCA(rootKey, now)
	require.NoError(t, err)
	caKey, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	require.NoError(t, err)
	acme, err := NewTenantCA(root, "acme", caKey, now)
	require.NoError(t, err)
	memberKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	leaf, err := IssueMember(acme, MemberSpec{Tenant: "acme", Member: "app", Role: engine.RoleApp, PublicKey: memberKey.Public()}, now)
	require.NoError(t, err)

	v := NewVerifier(root.Cert, []*x509.Certificate{acme.Cert}, func() time.Time { return now })
	v.mu.Lock()
	for i := range maxVerifiedCache {
		var k [32]byte
		k[0], k[1], k[2] = byte(i), byte(i>>8), 0xEE
		v.cache[k] = verified{p: engine.Principal{Tenant: "filler"}, notAfter: now.Add(time.Hour)}
	}
	v.mu.Unlock()

	p, err := v.Verify([][]byte{leaf.Raw})
	require.NoError(t, err)
	require.Equal(t, "acme", p.Tenant)
	require.Equal(t, maxVerifiedCache, cacheLen(v), "the cache does not grow past its bound")
	found := false
	v.mu.RLock()
	for _, e := range v.cache {
		found = found || e.p.Tenant == "acme"
	}
	v.mu.RUnlock()
	require.True(t, found, "the new verification is cached")
}
