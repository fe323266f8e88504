package pki_test

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"database/sql"
	"encoding/json"
	"errors"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/minikms/minikms/engine"
	"github.com/minikms/minikms/pki"
)

// assertWorkingSigner checks that ca.Signer is the private key of ca.Cert.
func assertWorkingSigner(t *testing.T, ca *pki.CA) {
	t.Helper()
	require.True(t, publicKeyEqual(ca.Signer.Public(), ca.Cert.PublicKey), "signer's public key matches the certificate")
	digest := sha256.Sum256([]byte("minikms"))
	sig, err := ca.Signer.Sign(rand.Reader, digest[:], crypto.SHA256)
	require.NoError(t, err)
	pub, ok := ca.Cert.PublicKey.(*ecdsa.PublicKey)
	require.True(t, ok)
	assert.True(t, ecdsa.VerifyASN1(pub, digest[:], sig), "signature verifies under the certificate's key")
}

func TestAuthorityCreatesOnceAndPersists(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "minikms.db")
	e1 := openEnv(t, path)
	a1 := e1.authority(newClock(t0).Now)

	root, err := a1.Root(ctx)
	require.NoError(t, err)
	again, err := a1.Root(ctx)
	require.NoError(t, err)
	assert.Same(t, root, again, "the root CA is made once")
	assert.True(t, root.Cert.IsCA)
	assert.Equal(t, 1, root.Cert.MaxPathLen)
	assert.True(t, root.Cert.NotBefore.Equal(t0.Add(-backdate)), "issued with the authority's clock")
	assertWorkingSigner(t, root)

	acme, err := a1.Tenant(ctx, "acme", true)
	require.NoError(t, err)
	acmeAgain, err := a1.Tenant(ctx, "acme", true)
	require.NoError(t, err)
	assert.Same(t, acme, acmeAgain)
	acmeNoCreate, err := a1.Tenant(ctx, "acme", false)
	require.NoError(t, err)
	assert.Same(t, acme, acmeNoCreate)
	require.NoError(t, acme.Cert.CheckSignatureFrom(root.Cert))
	assert.Equal(t, "acme", utf8Value(t, extensionValue(t, acme.Cert, pki.OIDTenant)))
	assertWorkingSigner(t, acme)

	// A second authority over the same store (a restarted node, a peer).
	check := func(t *testing.T, a *pki.Authority) {
		t.Helper()
		r, err := a.Root(ctx)
		require.NoError(t, err)
		assert.Equal(t, root.Cert.Raw, r.Cert.Raw, "same root certificate")
		assertWorkingSigner(t, r)
		ac, err := a.Tenant(ctx, "acme", false)
		require.NoError(t, err)
		assert.Equal(t, acme.Cert.Raw, ac.Cert.Raw, "same tenant certificate")
		assertWorkingSigner(t, ac)

		// The loaded tenant CA issues members that verify under the root.
		m, err := pki.IssueMember(ac, pki.MemberSpec{Tenant: "acme", Member: "app", Role: engine.RoleApp, PublicKey: newP256(t).Public()}, t0.Add(time.Hour))
		require.NoError(t, err)
		p, err := pki.NewVerifier(r.Cert, []*x509.Certificate{ac.Cert}, newClock(t0.Add(2*time.Hour)).Now).Verify(raw(m))
		require.NoError(t, err)
		assert.Equal(t, "acme", p.Tenant)
	}
	t.Run("second authority, same engine", func(t *testing.T) {
		check(t, e1.authority(newClock(t0.Add(24*time.Hour)).Now))
	})
	t.Run("after reopening the store", func(t *testing.T) {
		require.NoError(t, e1.store.Close())
		check(t, openEnv(t, path).authority(newClock(t0.Add(48*time.Hour)).Now))
	})
}

func TestAuthorityConcurrentCreationAgrees(t *testing.T) {
	ctx := t.Context()
	e := newEnv(t)
	const n = 8
	cas := make([]*pki.CA, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Separate authorities: only the store serializes them.
			cas[i], errs[i] = e.authority(nil).Tenant(ctx, "acme", true)
		}()
	}
	wg.Wait()
	for i := range n {
		require.NoError(t, errs[i])
		assert.Equal(t, cas[0].Cert.Raw, cas[i].Cert.Raw, "authority %d got another tenant CA", i)
		assertWorkingSigner(t, cas[i])
	}
	certs, err := e.authority(nil).TenantCertificates(ctx)
	require.NoError(t, err)
	require.Len(t, certs, 1)
	assert.Equal(t, cas[0].Cert.Raw, certs[0].Raw)
}

func TestAuthorityTenantLookup(t *testing.T) {
	ctx := t.Context()
	a := newEnv(t).authority(nil)
	_, err := a.Tenant(ctx, "acme", true)
	require.NoError(t, err)

	tests := []struct {
		name     string
		tenant   string
		noTenant bool
	}{
		{"unknown tenant", "globex", true},
		{"prefix of a known tenant", "acm", true},
		{"extension of a known tenant", "acme2", true},
		{"invalid id", "Globex", false},
		{"empty id", "", false},
		{"system domain", "_system", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ca, err := a.Tenant(ctx, tt.tenant, false)
			require.Error(t, err)
			assert.Nil(t, ca)
			assert.Equal(t, tt.noTenant, errors.Is(err, pki.ErrNoTenant), "ErrNoTenant for %q: %v", tt.tenant, err)
		})
	}
	names, err := a.Tenants(ctx)
	require.NoError(t, err)
	assert.Equal(t, []string{"acme"}, names, "lookups without create made nothing")
}

func TestAuthorityListsTenants(t *testing.T) {
	ctx := t.Context()
	e := newEnv(t)
	a := e.authority(nil)

	names, err := a.Tenants(ctx)
	require.NoError(t, err)
	assert.Empty(t, names)
	certs, err := a.TenantCertificates(ctx)
	require.NoError(t, err)
	assert.Empty(t, certs)

	want := map[string][]byte{}
	for _, name := range []string{"acme", "globex", "initech", "a", "acme-eu"} {
		ca, err := a.Tenant(ctx, name, true)
		require.NoError(t, err)
		want[name] = ca.Cert.Raw
	}
	root, err := a.Root(ctx)
	require.NoError(t, err)

	for _, reader := range []struct {
		name string
		a    *pki.Authority
	}{{"same authority", a}, {"fresh authority", e.authority(nil)}} {
		t.Run(reader.name, func(t *testing.T) {
			names, err := reader.a.Tenants(ctx)
			require.NoError(t, err)
			assert.ElementsMatch(t, []string{"acme", "globex", "initech", "a", "acme-eu"}, names)

			certs, err := reader.a.TenantCertificates(ctx)
			require.NoError(t, err)
			require.Len(t, certs, len(want))
			seen := map[string]bool{}
			for _, c := range certs {
				tenant := utf8Value(t, extensionValue(t, c, pki.OIDTenant))
				assert.Equal(t, want[tenant], c.Raw, "certificate of %s", tenant)
				assert.False(t, seen[tenant], "%s listed twice", tenant)
				seen[tenant] = true
				require.NoError(t, c.CheckSignatureFrom(root.Cert))
			}
		})
	}
}

// tamper overwrites a metadata value behind the Authority's back, as
// someone with write access to the database could.
func tamper(t *testing.T, e *env, key string, value []byte) {
	t.Helper()
	err := e.store.Write(t.Context(), func(ctx context.Context, tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE meta SET value = ? WHERE key = ?`, value, key)
		if err != nil {
			return err
		}
		n, err := res.RowsAffected()
		if err == nil && n != 1 {
			err = errors.New("no such metadata key: " + key)
		}
		return err
	})
	require.NoError(t, err)
}

type storedCA struct {
	Cert []byte `json:"cert"`
	Key  []byte `json:"key"`
}

func readStoredCA(t *testing.T, e *env, key string) storedCA {
	t.Helper()
	b, err := e.store.GetMeta(t.Context(), key)
	require.NoError(t, err)
	var rec storedCA
	require.NoError(t, json.Unmarshal(b, &rec))
	require.NotEmpty(t, rec.Cert)
	require.NotEmpty(t, rec.Key)
	return rec
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	require.NoError(t, err)
	return b
}

// TestAuthorityRefusesTamperedCA: a stored CA whose key does not belong
// to its certificate, or whose record does not decode, is refused when
// loaded; no signer is handed out for it.
func TestAuthorityRefusesTamperedCA(t *testing.T) {
	const (
		rootKey = "pki.ca.root"
		acmeKey = "pki.ca.tenant.acme"
	)
	tests := []struct {
		name   string
		key    string
		forge  func(t *testing.T, e *env, acme, globex storedCA) []byte
		reason string // in the error, when the reason is ours to name
	}{
		{"tenant key replaced by another key sealed under its label", acmeKey, func(t *testing.T, e *env, acme, _ storedCA) []byte {
			_, ref, err := pki.SealedKeys{Sealer: e.eng}.Generate(t.Context(), "tenant/acme")
			require.NoError(t, err)
			return mustJSON(t, storedCA{Cert: acme.Cert, Key: ref})
		}, "does not match"},
		{"tenant certificate replaced by another tenant's", acmeKey, func(t *testing.T, _ *env, acme, globex storedCA) []byte {
			return mustJSON(t, storedCA{Cert: globex.Cert, Key: acme.Key})
		}, "does not match"},
		{"tenant key replaced by another tenant's sealed key", acmeKey, func(t *testing.T, _ *env, acme, globex storedCA) []byte {
			return mustJSON(t, storedCA{Cert: acme.Cert, Key: globex.Key})
		}, ""},
		{"another tenant's whole record", acmeKey, func(t *testing.T, _ *env, _, globex storedCA) []byte {
			return mustJSON(t, globex)
		}, ""},
		{"tenant key bit-flipped", acmeKey, func(t *testing.T, _ *env, acme, _ storedCA) []byte {
			k := bytes.Clone(acme.Key)
			k[len(k)-1] ^= 1
			return mustJSON(t, storedCA{Cert: acme.Cert, Key: k})
		}, ""},
		{"tenant certificate not DER", acmeKey, func(t *testing.T, _ *env, acme, _ storedCA) []byte {
			return mustJSON(t, storedCA{Cert: []byte("not a certificate"), Key: acme.Key})
		}, ""},
		{"tenant record not JSON", acmeKey, func(*testing.T, *env, storedCA, storedCA) []byte {
			return []byte("{")
		}, ""},
		{"root key replaced by another key sealed under its label", rootKey, func(t *testing.T, e *env, _, _ storedCA) []byte {
			root := readStoredCA(t, e, rootKey)
			_, ref, err := pki.SealedKeys{Sealer: e.eng}.Generate(t.Context(), "root")
			require.NoError(t, err)
			return mustJSON(t, storedCA{Cert: root.Cert, Key: ref})
		}, "does not match"},
		{"root key replaced by a tenant key", rootKey, func(t *testing.T, e *env, acme, _ storedCA) []byte {
			root := readStoredCA(t, e, rootKey)
			return mustJSON(t, storedCA{Cert: root.Cert, Key: acme.Key})
		}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := t.Context()
			e := newEnv(t)
			a := e.authority(nil)
			_, err := a.Tenant(ctx, "acme", true)
			require.NoError(t, err)
			_, err = a.Tenant(ctx, "globex", true)
			require.NoError(t, err)

			tamper(t, e, tt.key, tt.forge(t, e, readStoredCA(t, e, acmeKey), readStoredCA(t, e, "pki.ca.tenant.globex")))

			fresh := e.authority(nil)
			if tt.key == rootKey {
				ca, err := fresh.Root(ctx)
				require.Error(t, err, "root loaded")
				assert.Nil(t, ca)
				if tt.reason != "" {
					assert.Contains(t, err.Error(), tt.reason)
				}
			}
			ca, err := fresh.Tenant(ctx, "acme", false)
			require.Error(t, err, "tampered CA loaded")
			assert.Nil(t, ca)
			assert.NotErrorIs(t, err, pki.ErrNoTenant)
			if tt.reason != "" {
				assert.Contains(t, err.Error(), tt.reason)
			}
			ca, err = fresh.Tenant(ctx, "acme", true)
			require.Error(t, err, "create must not paper over a tampered CA")
			assert.Nil(t, ca)
		})
	}
}

func TestSealedKeys(t *testing.T) {
	ctx := t.Context()
	e := newEnv(t)
	keys := pki.SealedKeys{Sealer: e.eng}
	signer, ref, err := keys.Generate(ctx, "tenant/acme")
	require.NoError(t, err)
	k, ok := signer.(*ecdsa.PrivateKey)
	require.True(t, ok, "software CA keys are ECDSA, got %T", signer)
	assert.Equal(t, elliptic.P384(), k.Curve)

	der, err := x509.MarshalPKCS8PrivateKey(k)
	require.NoError(t, err)
	assert.False(t, bytes.Contains(ref, der), "the reference holds the key in the clear")
	assert.False(t, bytes.Contains(ref, k.D.Bytes()), "the reference holds the private scalar")

	loaded, err := keys.Load(ctx, "tenant/acme", ref)
	require.NoError(t, err)
	assert.True(t, k.Equal(loaded), "Load returns the generated key")

	flipped := bytes.Clone(ref)
	flipped[len(flipped)-1] ^= 0x80
	tests := []struct {
		name  string
		label string
		ref   []byte
	}{
		{"another label", "tenant/globex", ref},
		{"the root's label", "root", ref},
		{"label with a suffix", "tenant/acme2", ref},
		{"empty label", "", ref},
		{"bit-flipped reference", "tenant/acme", flipped},
		{"truncated reference", "tenant/acme", ref[:len(ref)-1]},
		{"empty reference", "tenant/acme", nil},
		{"unknown root version", "tenant/acme", append([]byte{0, 0, 0, 9}, ref[4:]...)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := keys.Load(ctx, tt.label, tt.ref)
			require.Error(t, err)
			assert.Nil(t, s)
		})
	}

	// Two keys for the same label are different keys.
	other, _, err := keys.Generate(ctx, "tenant/acme")
	require.NoError(t, err)
	assert.False(t, k.Equal(other))
}
