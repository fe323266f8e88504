package engine_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/minikms/minikms/engine"
)

// movedStore serves the rows of tenant from as if they belonged to tenant
// to, with the same identifiers: a row copied into another tenant.
type movedStore struct {
	engine.Store
	from, to string
}

func (s *movedStore) GetObject(ctx context.Context, tenant, id string) (*engine.StoredObject, error) {
	if tenant != s.to {
		return s.Store.GetObject(ctx, tenant, id)
	}
	so, err := s.Store.GetObject(ctx, s.from, id)
	if err != nil {
		return nil, err
	}
	so.Tenant = s.to
	return so, nil
}

// rewriteRow replaces the stored row of (tenant, id) through the store,
// as an attacker with write access to the database could.
func rewriteRow(t testing.TB, s engine.Store, tenant, id string, edit func(so *engine.StoredObject)) {
	t.Helper()
	so, err := s.GetObject(t.Context(), tenant, id)
	require.NoError(t, err)
	prev := so.Rev
	edit(so)
	so.Rev = prev + 1
	require.NoError(t, s.UpdateObject(t.Context(), so, prev))
}

func TestWrappedMaterialNeverContainsPlaintext(t *testing.T) {
	e := newEnv(t)
	key := randomBytes(t, 32)
	a := e.registerKey(t, acmeAdmin, engine.AlgAES, key)
	b := e.registerKey(t, acmeAdmin, engine.AlgAES, key)

	sa, sb := e.stored(t, "acme", a.ID), e.stored(t, "acme", b.ID)
	for _, so := range []*engine.StoredObject{sa, sb} {
		// version | nonce (12) | material header (6) + key (32) | tag (16)
		require.Len(t, so.Wrapped, 1+12+6+32+16)
		assert.Equal(t, byte(0x01), so.Wrapped[0], "wrap format version")
		assert.Equal(t, uint32(1), so.RootVersion)
		assert.False(t, bytes.Contains(so.Wrapped, key), "wrapped bytes contain the key")
		assert.False(t, bytes.Contains(so.Wrapped, key[:16]), "wrapped bytes contain half the key")
		assertNoSecret(t, string(so.Attrs), key, "stored attributes")
	}
	assert.NotEqual(t, sa.Wrapped[1:13], sb.Wrapped[1:13], "nonces repeat")
	assert.NotEqual(t, sa.Wrapped, sb.Wrapped, "same material wraps identically")

	// A created key: its material never appears at rest either.
	c := e.activeAES(t, acmeAdmin, 256)
	_, m, err := e.eng.Get(t.Context(), acmeAdmin, c.ID)
	require.NoError(t, err)
	sc := e.stored(t, "acme", c.ID)
	assert.False(t, bytes.Contains(sc.Wrapped, m.Bytes))
	assertNoSecret(t, string(sc.Attrs), m.Bytes, "stored attributes")
	assertNoSecret(t, e.logs.String(), key, "the log")
	assertNoSecret(t, e.logs.String(), m.Bytes, "the log")
}

func TestWrappedRowMovedFailsToUnwrap(t *testing.T) {
	secret := randomBytes(t, 32)
	cases := []struct {
		name string
		// setup registers secret as an object and returns the principal
		// and identifier under which the moved row is then read.
		setup func(t *testing.T, e *env, src *engine.Object) (engine.Principal, string)
		opts  []envOption
		ok    bool
	}{
		{
			name: "unchanged row (control)",
			ok:   true,
			setup: func(t *testing.T, e *env, src *engine.Object) (engine.Principal, string) {
				rewriteRow(t, e.store, "acme", src.ID, func(*engine.StoredObject) {})
				return acmeAdmin, src.ID
			},
		},
		{
			name: "to another object of the tenant",
			setup: func(t *testing.T, e *env, src *engine.Object) (engine.Principal, string) {
				dst := e.registerKey(t, acmeAdmin, engine.AlgAES, randomBytes(t, 32))
				w := e.stored(t, "acme", src.ID).Wrapped
				rewriteRow(t, e.store, "acme", dst.ID, func(so *engine.StoredObject) { so.Wrapped = w })
				return acmeAdmin, dst.ID
			},
		},
		{
			name: "to an object of another tenant",
			setup: func(t *testing.T, e *env, src *engine.Object) (engine.Principal, string) {
				dst := e.registerKey(t, globexAdmin, engine.AlgAES, randomBytes(t, 32))
				w := e.stored(t, "acme", src.ID).Wrapped
				rewriteRow(t, e.store, "globex", dst.ID, func(so *engine.StoredObject) { so.Wrapped = w })
				return globexAdmin, dst.ID
			},
		},
		{
			name: "whole row to another tenant, same identifier",
			opts: []envOption{withStoreWrapper(func(s engine.Store) engine.Store {
				return &movedStore{Store: s, from: "acme", to: "globex"}
			})},
			setup: func(t *testing.T, e *env, src *engine.Object) (engine.Principal, string) {
				return globexAdmin, src.ID
			},
		},
		{
			name: "relabelled with another root version",
			setup: func(t *testing.T, e *env, src *engine.Object) (engine.Principal, string) {
				// Version 2 is the same root key: only the AAD differs.
				e.kr.AddRootVersionForTest(2, e.root)
				rewriteRow(t, e.store, "acme", src.ID, func(so *engine.StoredObject) { so.RootVersion = 2 })
				return acmeAdmin, src.ID
			},
		},
		{
			name: "one bit flipped",
			setup: func(t *testing.T, e *env, src *engine.Object) (engine.Principal, string) {
				rewriteRow(t, e.store, "acme", src.ID, func(so *engine.StoredObject) { so.Wrapped[20] ^= 0x01 })
				return acmeAdmin, src.ID
			},
		},
		{
			name: "truncated",
			setup: func(t *testing.T, e *env, src *engine.Object) (engine.Principal, string) {
				rewriteRow(t, e.store, "acme", src.ID, func(so *engine.StoredObject) { so.Wrapped = so.Wrapped[:20] })
				return acmeAdmin, src.ID
			},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, tc.opts...)
			src := e.registerKey(t, acmeAdmin, engine.AlgAES, secret)
			p, id := tc.setup(t, e, src)
			// A restarted node reads the row from the store, not the cache.
			e.reopen(t)

			_, m, err := e.eng.Get(t.Context(), p, id)
			res, encErr := e.eng.Encrypt(t.Context(), p, engine.EncryptRequest{ID: id, Data: []byte("data")})
			if tc.ok {
				require.NoError(t, err)
				assert.Equal(t, secret, m.Bytes)
				require.NoError(t, encErr)
				return
			}
			for _, err := range []error{err, encErr} {
				require.Error(t, err)
				assert.NotErrorIs(t, err, engine.ErrNotFound, "a moved row is corruption, not absence")
				assertNoSecret(t, err.Error(), secret, "the error")
			}
			assert.Empty(t, m.Bytes, "material returned")
			assert.Empty(t, res.Ciphertext, "ciphertext returned")
			assertNoSecret(t, e.logs.String(), secret, "the log")
		})
	}
}

func TestSealSystem(t *testing.T) {
	ctx := t.Context()
	e := newEnv(t)
	secret := []byte("-----BEGIN EC PRIVATE KEY----- not really")

	sealed, err := e.eng.SealSystem(ctx, "ca/root", secret)
	require.NoError(t, err)
	assert.False(t, bytes.Contains(sealed, secret))
	assert.Equal(t, uint32(1), binary.BigEndian.Uint32(sealed[:4]), "root version prefix")
	assert.Len(t, sealed, 4+1+12+len(secret)+16)

	again, err := e.eng.SealSystem(ctx, "ca/root", secret)
	require.NoError(t, err)
	assert.NotEqual(t, sealed, again, "sealing is randomized")

	got, err := e.eng.OpenSystem(ctx, "ca/root", sealed)
	require.NoError(t, err)
	assert.Equal(t, secret, got)

	// Survives a restart with the same root key.
	e.reopen(t)
	got, err = e.eng.OpenSystem(ctx, "ca/root", sealed)
	require.NoError(t, err)
	assert.Equal(t, secret, got)

	flipped := bytes.Clone(sealed)
	flipped[len(flipped)-1] ^= 0x80
	otherVersion := bytes.Clone(sealed)
	binary.BigEndian.PutUint32(otherVersion, 2)
	bad := []struct {
		name, label string
		sealed      []byte
	}{
		{"other label", "ca/tenant/acme", sealed},
		{"label prefix", "ca/roo", sealed},
		{"empty label", "", sealed},
		{"flipped tag bit", "ca/root", flipped},
		{"other root version", "ca/root", otherVersion},
		{"truncated", "ca/root", sealed[:3]},
		{"header only", "ca/root", sealed[:4+1+12]},
		{"nil", "ca/root", nil},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			pt, err := e.eng.OpenSystem(ctx, tc.label, tc.sealed)
			require.Error(t, err)
			assert.Nil(t, pt)
			assert.NotContains(t, err.Error(), string(secret))
		})
	}

	t.Run("other root key", func(t *testing.T) {
		o := newEnv(t)
		_, err := o.eng.OpenSystem(ctx, "ca/root", sealed)
		require.Error(t, err)
	})
	t.Run("system key is no tenant key", func(t *testing.T) {
		// A tenant object whose identifier equals the label cannot be
		// opened as a system secret, nor the reverse.
		k := e.registerKey(t, acmeAdmin, engine.AlgAES, randomBytes(t, 32))
		w := e.stored(t, "acme", k.ID).Wrapped
		_, err := e.eng.OpenSystem(ctx, k.ID, binary.BigEndian.AppendUint32(nil, 1)[:4:4])
		require.Error(t, err)
		_, err = e.eng.OpenSystem(ctx, k.ID, append(binary.BigEndian.AppendUint32(nil, 1), w...))
		require.Error(t, err)
	})
}
