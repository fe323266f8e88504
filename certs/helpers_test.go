package certs_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/minikms/minikms/engine"
	"github.com/minikms/minikms/pki"
	"github.com/minikms/minikms/store/sqlite"
)

// env is a real engine over a real SQLite store, and an Authority on it.
type env struct {
	path  string
	store *sqlite.Store
	eng   *engine.Engine
	auth  *pki.Authority
}

// newEnv opens a store in t's temp dir with a fixed root key.
func newEnv(t testing.TB) *env {
	t.Helper()
	return openEnv(t, filepath.Join(t.TempDir(), "minikms.db"))
}

// openEnv opens (or reopens) the store at path; closed at cleanup.
func openEnv(t testing.TB, path string) *env {
	t.Helper()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, path)
	require.NoError(t, err)
	t.Cleanup(func() { assert.NoError(t, st.Close()) })
	root := make([]byte, engine.RootKeySize)
	for i := range root {
		root[i] = byte(0xA0 + i)
	}
	kr, err := engine.NewSoftKeyring(root)
	require.NoError(t, err)
	eng, err := engine.Open(ctx, engine.Config{Store: st, Keyring: kr})
	require.NoError(t, err)
	return &env{path: path, store: st, eng: eng, auth: pki.NewAuthority(st, pki.SealedKeys{Sealer: eng}, nil)}
}

func (e *env) root(t testing.TB) *pki.CA {
	t.Helper()
	ca, err := e.auth.Root(context.Background())
	require.NoError(t, err)
	return ca
}

func (e *env) tenant(t testing.TB, name string) *pki.CA {
	t.Helper()
	ca, err := e.auth.Tenant(context.Background(), name, true)
	require.NoError(t, err)
	return ca
}

// verifier trusts e's root and every tenant CA of e, at the real clock.
func (e *env) verifier(t testing.TB) *pki.Verifier {
	t.Helper()
	cas, err := e.auth.TenantCertificates(context.Background())
	require.NoError(t, err)
	return pki.NewVerifier(e.root(t).Cert, cas, nil)
}

func newP256(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	return k
}

// pair makes a tls.Certificate of leaf (then chain) and key.
func pair(leaf *x509.Certificate, key crypto.PrivateKey, chain ...*x509.Certificate) tls.Certificate {
	c := tls.Certificate{Certificate: [][]byte{leaf.Raw}, PrivateKey: key, Leaf: leaf}
	for _, x := range chain {
		c.Certificate = append(c.Certificate, x.Raw)
	}
	return c
}

// issueMember issues a member of tenant under e with a fresh key at now.
func (e *env) issueMember(t testing.TB, tenant, member string, role engine.Role, now time.Time, validity time.Duration) (*x509.Certificate, *ecdsa.PrivateKey) {
	t.Helper()
	key := newP256(t)
	c, err := pki.IssueMember(e.tenant(t, tenant), pki.MemberSpec{Tenant: tenant, Member: member, Role: role, PublicKey: key.Public(), Validity: validity}, now)
	require.NoError(t, err)
	return c, key
}

// issueServer issues a server certificate for hosts under e's root.
func (e *env) issueServer(t testing.TB, hosts []string, now time.Time) tls.Certificate {
	t.Helper()
	key := newP256(t)
	c, err := pki.IssueServer(e.root(t), hosts, key.Public(), now)
	require.NoError(t, err)
	return pair(c, key)
}

// pemCerts encodes certs as PEM.
func pemCerts(certs ...*x509.Certificate) []byte {
	var b []byte
	for _, c := range certs {
		b = append(b, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})...)
	}
	return b
}

// pemKey encodes key as PKCS#8 PEM.
func pemKey(t testing.TB, key crypto.PrivateKey) []byte {
	t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(key)
	require.NoError(t, err)
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
}

// readCerts parses every CERTIFICATE block of a PEM file, failing on
// anything else in it.
func readCerts(t testing.TB, path string) []*x509.Certificate {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	var out []*x509.Certificate
	for {
		var blk *pem.Block
		blk, b = pem.Decode(b)
		if blk == nil {
			break
		}
		require.Equal(t, "CERTIFICATE", blk.Type, "%s", path)
		c, err := x509.ParseCertificate(blk.Bytes)
		require.NoError(t, err)
		out = append(out, c)
	}
	require.Empty(t, b, "%s has trailing data", path)
	return out
}

// readKey parses the single PKCS#8 signing key of a PEM file.
func readKey(t testing.TB, path string) crypto.Signer {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	blk, rest := pem.Decode(b)
	require.NotNil(t, blk, "%s is not PEM", path)
	require.Empty(t, rest)
	require.Equal(t, "PRIVATE KEY", blk.Type)
	k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
	require.NoError(t, err)
	s, ok := k.(crypto.Signer)
	require.True(t, ok, "%s holds a %T", path, k)
	return s
}

// rawChain returns the DER of certs in order.
func rawChain(certs ...*x509.Certificate) [][]byte {
	out := make([][]byte, len(certs))
	for i, c := range certs {
		out[i] = c.Raw
	}
	return out
}

func publicKeyEqual(a, b crypto.PublicKey) bool {
	e, ok := a.(interface{ Equal(crypto.PublicKey) bool })
	return ok && e.Equal(b)
}

func writeFile(t testing.TB, path string, data []byte, perm os.FileMode) {
	t.Helper()
	require.NoError(t, os.WriteFile(path, data, perm))
}
