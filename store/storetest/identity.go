package storetest

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/minikms/minikms/engine"
)

// testIdentity covers engine.IdentityStore for stores that implement it.
func testIdentity(t *testing.T, open func(t *testing.T) engine.Store) {
	s0 := open(t)
	if _, ok := s0.(engine.IdentityStore); !ok {
		t.Skip("store does not implement engine.IdentityStore")
	}
	now := time.Unix(1_800_000_000, 0).UTC()

	t.Run("certificates round trip per tenant", func(t *testing.T) {
		s, ctx := open(t).(engine.IdentityStore), testContext(t)
		a := engine.CertRecord{Serial: "0a1b", Tenant: "acme", Member: "app", Role: engine.RoleApp, Kind: "member",
			NotBefore: now, NotAfter: now.Add(time.Hour), DER: []byte{1, 2, 3}, IssuedAt: now}
		b := a
		b.Serial, b.Tenant, b.IssuedAt = "0c", "globex", now.Add(time.Second)
		require.NoError(t, s.RecordCertificate(ctx, a))
		require.NoError(t, s.RecordCertificate(ctx, b))
		got, err := s.Certificates(ctx, "acme")
		require.NoError(t, err)
		assert.Equal(t, []engine.CertRecord{a}, got)
		all, err := s.Certificates(ctx, "")
		require.NoError(t, err)
		assert.Len(t, all, 2)
		assert.ErrorIs(t, s.RecordCertificate(ctx, a), engine.ErrExists, "a serial is recorded once")
	})

	t.Run("revocations are idempotent and advance the generation", func(t *testing.T) {
		s, ctx := open(t).(engine.IdentityStore), testContext(t)
		g0, err := s.IdentityGeneration(ctx)
		require.NoError(t, err)
		r := engine.Revocation{Tenant: "acme", Serial: "ff", Reason: 1, RevokedAt: now}
		added, err := s.Revoke(ctx, r)
		require.NoError(t, err)
		assert.True(t, added)
		g1, _ := s.IdentityGeneration(ctx)
		assert.Greater(t, g1, g0)
		r2 := r
		r2.Reason = 4
		added, err = s.Revoke(ctx, r2)
		require.NoError(t, err)
		assert.False(t, added, "revoking twice keeps the first record")
		g2, _ := s.IdentityGeneration(ctx)
		assert.Equal(t, g1, g2, "a repeated revocation changes nothing")
		got, err := s.Revocations(ctx, "acme")
		require.NoError(t, err)
		assert.Equal(t, []engine.Revocation{r}, got)
		none, err := s.Revocations(ctx, "globex")
		require.NoError(t, err)
		assert.Empty(t, none)
	})

	t.Run("client registrations", func(t *testing.T) {
		s, ctx := open(t).(engine.IdentityStore), testContext(t)
		c := engine.ExternalClient{SPKIHash: "ab12", Tenant: "acme", Member: "array-1", Role: engine.RoleApp, Subject: "CN=array", RegisteredAt: now}
		require.NoError(t, s.RegisterClient(ctx, c))
		c.Role = engine.RoleAdmin
		require.NoError(t, s.RegisterClient(ctx, c), "registering the same key again replaces it")
		got, err := s.Clients(ctx)
		require.NoError(t, err)
		assert.Equal(t, []engine.ExternalClient{c}, got)
		g, _ := s.IdentityGeneration(ctx)
		require.NoError(t, s.UnregisterClient(ctx, "ab12"))
		g2, _ := s.IdentityGeneration(ctx)
		assert.Greater(t, g2, g)
		assert.ErrorIs(t, s.UnregisterClient(ctx, "ab12"), engine.ErrNotFound)
		got, _ = s.Clients(ctx)
		assert.Empty(t, got)
	})
}
