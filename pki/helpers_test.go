package pki_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/minikms/minikms/engine"
	"github.com/minikms/minikms/pki"
	"github.com/minikms/minikms/store/sqlite"
)

// t0 is the fixed "now" most tests issue certificates at.
var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// fakeClock is a settable clock for pki.NewVerifier and pki.NewAuthority.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock(t time.Time) *fakeClock { return &fakeClock{t: t} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Set(t time.Time) {
	c.mu.Lock()
	c.t = t
	c.mu.Unlock()
}

// env is a real engine over a real SQLite store in a temp dir.
type env struct {
	store *sqlite.Store
	eng   *engine.Engine
}

// newEnv opens a SQLite store in t's temp dir and an engine over it with a
// fixed root key; both are closed at cleanup.
func newEnv(t testing.TB) *env {
	t.Helper()
	return openEnv(t, filepath.Join(t.TempDir(), "minikms.db"))
}

// openEnv opens (or reopens) the store at path with the test root key.
func openEnv(t testing.TB, path string) *env {
	t.Helper()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, path)
	require.NoError(t, err)
	t.Cleanup(func() { assert.NoError(t, st.Close()) })
	root := make([]byte, engine.RootKeySize)
	for i := range root {
		root[i] = byte(i + 1)
	}
	kr, err := engine.NewSoftKeyring(root)
	require.NoError(t, err)
	eng, err := engine.Open(ctx, engine.Config{Store: st, Keyring: kr})
	require.NoError(t, err)
	return &env{store: st, eng: eng}
}

// authority returns a pki.Authority over e with software keys and clock.
func (e *env) authority(now func() time.Time) *pki.Authority {
	return pki.NewAuthority(e.store, pki.SealedKeys{Sealer: e.eng}, now)
}

// hierarchy is a root CA with tenant CAs built directly from pki's
// constructors (no store), for tests that only need certificates.
type hierarchy struct {
	root    *pki.CA
	tenants map[string]*pki.CA
}

func newP384(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	require.NoError(t, err)
	return k
}

func newP256(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	return k
}

// newHierarchy makes a root CA and one tenant CA per name, issued at now.
func newHierarchy(t testing.TB, now time.Time, tenants ...string) *hierarchy {
	t.Helper()
	root, err := pki.NewRootCA(newP384(t), now)
	require.NoError(t, err)
	h := &hierarchy{root: root, tenants: map[string]*pki.CA{}}
	for _, name := range tenants {
		ca, err := pki.NewTenantCA(root, name, newP384(t), now)
		require.NoError(t, err)
		h.tenants[name] = ca
	}
	return h
}

// tenantCerts returns the tenant CA certificates of h.
func (h *hierarchy) tenantCerts() []*x509.Certificate {
	var out []*x509.Certificate
	for _, ca := range h.tenants {
		out = append(out, ca.Cert)
	}
	return out
}

// member is an issued member certificate with its private key.
type member struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
}

// issueMember issues a member of tenant with a fresh P-256 key.
func (h *hierarchy) issueMember(t testing.TB, tenant, id string, role engine.Role, now time.Time, validity time.Duration) member {
	t.Helper()
	ca, ok := h.tenants[tenant]
	require.True(t, ok, "no tenant CA %q in the test hierarchy", tenant)
	key := newP256(t)
	c, err := pki.IssueMember(ca, pki.MemberSpec{Tenant: tenant, Member: id, Role: role, PublicKey: key.Public(), Validity: validity}, now)
	require.NoError(t, err)
	return member{cert: c, key: key}
}

// handMade describes a certificate built directly with x509.CreateCertificate,
// for shapes pki itself never issues.
type handMade struct {
	tenant, member, role string // identity extensions; "" leaves one out
	extKeyUsage          []x509.ExtKeyUsage
	isCA                 bool
	notBefore, notAfter  time.Time
	extra                []pkix.Extension // added as they are
}

// utf8Ext builds one of pki's identity extensions.
func utf8Ext(t testing.TB, id asn1.ObjectIdentifier, value string) pkix.Extension {
	t.Helper()
	der, err := asn1.MarshalWithParams(value, "utf8")
	require.NoError(t, err)
	return pkix.Extension{Id: id, Value: der}
}

// build signs spec with issuer and returns the certificate and its key.
func (spec handMade) build(t testing.TB, issuer *pki.CA) member {
	t.Helper()
	key := newP256(t)
	sn, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 100))
	require.NoError(t, err)
	nb, na := spec.notBefore, spec.notAfter
	if nb.IsZero() {
		nb = t0.Add(-time.Hour)
	}
	if na.IsZero() {
		na = t0.Add(30 * 24 * time.Hour)
	}
	tmpl := &x509.Certificate{
		SerialNumber: sn, Subject: pkix.Name{CommonName: "hand-made"},
		NotBefore: nb, NotAfter: na,
		BasicConstraintsValid: true, IsCA: spec.isCA,
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: spec.extKeyUsage,
	}
	if spec.isCA {
		tmpl.KeyUsage |= x509.KeyUsageCertSign
	}
	for _, kv := range []struct {
		id  asn1.ObjectIdentifier
		val string
	}{{pki.OIDTenant, spec.tenant}, {pki.OIDMember, spec.member}, {pki.OIDRole, spec.role}} {
		if kv.val != "" {
			tmpl.ExtraExtensions = append(tmpl.ExtraExtensions, utf8Ext(t, kv.id, kv.val))
		}
	}
	tmpl.ExtraExtensions = append(tmpl.ExtraExtensions, spec.extra...)
	der, err := x509.CreateCertificate(rand.Reader, tmpl, issuer.Cert, key.Public(), issuer.Signer)
	require.NoError(t, err)
	c, err := x509.ParseCertificate(der)
	require.NoError(t, err)
	return member{cert: c, key: key}
}

// raw returns the DER of certs, in order, as a TLS peer presents them.
func raw(certs ...*x509.Certificate) [][]byte {
	out := make([][]byte, len(certs))
	for i, c := range certs {
		out[i] = c.Raw
	}
	return out
}

// extensionValue returns the extension id of c, failing if absent or repeated.
func extensionValue(t testing.TB, c *x509.Certificate, id asn1.ObjectIdentifier) pkix.Extension {
	t.Helper()
	var found []pkix.Extension
	for _, e := range c.Extensions {
		if e.Id.Equal(id) {
			found = append(found, e)
		}
	}
	require.Len(t, found, 1, "extension %s", id)
	return found[0]
}

// utf8Value decodes an extension value that must be exactly one UTF8String.
func utf8Value(t testing.TB, e pkix.Extension) string {
	t.Helper()
	var raw asn1.RawValue
	rest, err := asn1.Unmarshal(e.Value, &raw)
	require.NoError(t, err)
	require.Empty(t, rest)
	require.Equal(t, asn1.TagUTF8String, raw.Tag, "extension %s must be a UTF8String", e.Id)
	require.Equal(t, asn1.ClassUniversal, raw.Class)
	return string(raw.Bytes)
}

// writePEM writes certs as one PEM file in dir and returns its path.
func writePEM(t testing.TB, dir, name string, certs ...*x509.Certificate) string {
	t.Helper()
	var b []byte
	for _, c := range certs {
		b = append(b, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})...)
	}
	p := filepath.Join(dir, name)
	require.NoError(t, os.WriteFile(p, b, 0o644))
	return p
}

// publicKeyEqual reports whether a and b are the same public key.
func publicKeyEqual(a, b crypto.PublicKey) bool {
	e, ok := a.(interface{ Equal(crypto.PublicKey) bool })
	return ok && e.Equal(b)
}
