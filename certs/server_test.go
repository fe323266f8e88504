package certs_test

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/minikms/minikms/certs"
	"github.com/minikms/minikms/engine"
	"github.com/minikms/minikms/pki"
)

// tlsFixture is an authority, a certs.Server over it, and client material.
type tlsFixture struct {
	e       *env
	srv     *certs.Server
	roots   *x509.CertPool
	acmeApp tls.Certificate // leaf and tenant CA
}

func newTLSFixture(t testing.TB) *tlsFixture {
	t.Helper()
	e := newEnv(t)
	now := time.Now()
	leaf, key := e.issueMember(t, "acme", "app", engine.RoleApp, now, 0)
	f := &tlsFixture{e: e, roots: x509.NewCertPool(), acmeApp: pair(leaf, key, e.tenant(t, "acme").Cert)}
	e.tenant(t, "globex")
	f.roots.AddCert(e.root(t).Cert)
	f.srv = certs.NewServer(e.issueServer(t, []string{"localhost", "127.0.0.1"}, now), e.verifier(t))
	return f
}

// serverResult is what the server side of one connection saw.
type serverResult struct {
	err   error
	state tls.ConnectionState
}

// listen serves cfg on a loopback listener: every connection is
// handshaken, answered with one byte and then closed once the client is
// done. Results arrive on the channel in accept order.
func listen(t testing.TB, cfg *tls.Config) (string, <-chan serverResult) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	results := make(chan serverResult, 64)
	done := make(chan struct{})
	t.Cleanup(func() {
		ln.Close()
		<-done
	})
	go func() {
		defer close(done)
		for {
			raw, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer raw.Close()
				c := tls.Server(raw, cfg)
				_ = c.SetDeadline(time.Now().Add(10 * time.Second))
				err := c.Handshake()
				if err == nil {
					_, err = c.Write([]byte{1})
				}
				r := serverResult{err: err, state: c.ConnectionState()}
				if err == nil {
					_, _ = io.Copy(io.Discard, c) // until the client closes
				}
				results <- r
			}()
		}
	}()
	return ln.Addr().String(), results
}

// clientConfig trusts f's root and presents certs (none when nil).
func (f *tlsFixture) clientConfig(certs ...tls.Certificate) *tls.Config {
	return &tls.Config{RootCAs: f.roots, ServerName: "localhost", Certificates: certs}
}

// dial connects, handshakes and reads the server's byte, which arrives
// only if the server accepted the client (in TLS 1.3 the client finishes
// its handshake before the server has checked the client certificate).
func dial(t testing.TB, addr string, cfg *tls.Config) (tls.ConnectionState, error) {
	t.Helper()
	raw, err := net.DialTimeout("tcp", addr, 10*time.Second)
	require.NoError(t, err)
	defer raw.Close()
	c := tls.Client(raw, cfg)
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	if err := c.Handshake(); err != nil {
		return tls.ConnectionState{}, err
	}
	var b [1]byte
	if _, err := io.ReadFull(c, b[:]); err != nil {
		return tls.ConnectionState{}, err
	}
	return c.ConnectionState(), c.Close()
}

// result waits for the server side of the next connection.
func result(t testing.TB, results <-chan serverResult) serverResult {
	t.Helper()
	select {
	case r := <-results:
		return r
	case <-time.After(15 * time.Second):
		t.Fatal("no server-side result")
		return serverResult{}
	}
}

func TestTLSConfigSettings(t *testing.T) {
	f := newTLSFixture(t)
	cfg := f.srv.TLSConfig()
	assert.Equal(t, uint16(tls.VersionTLS12), cfg.MinVersion)
	assert.Equal(t, tls.RequireAnyClientCert, cfg.ClientAuth, "a client certificate is required; pki verifies it")
	assert.False(t, cfg.SessionTicketsDisabled, "session tickets on, so clients resume")
	assert.False(t, cfg.InsecureSkipVerify)
	require.NotNil(t, cfg.GetCertificate)
	c, err := cfg.GetCertificate(&tls.ClientHelloInfo{})
	require.NoError(t, err)
	assert.Same(t, f.srv.Certificate(), c)
}

func TestTLSVersions(t *testing.T) {
	f := newTLSFixture(t)
	addr, results := listen(t, f.srv.TLSConfig())
	tests := []struct {
		name    string
		version uint16
		ok      bool
	}{
		{"TLS 1.0", tls.VersionTLS10, false},
		{"TLS 1.1", tls.VersionTLS11, false},
		{"TLS 1.2", tls.VersionTLS12, true},
		{"TLS 1.3", tls.VersionTLS13, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := f.clientConfig(f.acmeApp)
			cfg.MinVersion, cfg.MaxVersion = tt.version, tt.version
			state, err := dial(t, addr, cfg)
			r := result(t, results)
			if !tt.ok {
				require.Error(t, err, "client connected with %s", tt.name)
				require.Error(t, r.err, "server accepted %s", tt.name)
				return
			}
			require.NoError(t, err)
			require.NoError(t, r.err)
			assert.Equal(t, tt.version, state.Version)
			assert.Equal(t, tt.version, r.state.Version)
		})
	}
}

func TestTLSClientAuthentication(t *testing.T) {
	f := newTLSFixture(t)
	e := f.e
	now := time.Now()
	addr, results := listen(t, f.srv.TLSConfig())

	acmeLeaf := f.acmeApp.Leaf
	leafOnly := pair(acmeLeaf, f.acmeApp.PrivateKey)
	gLeaf, gKey := e.issueMember(t, "globex", "admin", engine.RoleAdmin, now, 0)
	oldLeaf, oldKey := e.issueMember(t, "acme", "old", engine.RoleApp, now.Add(-48*time.Hour), time.Hour)
	other := newEnv(t)
	fLeaf, fKey := other.issueMember(t, "acme", "app", engine.RoleApp, now, 0)
	serverAsClient := e.issueServer(t, []string{"client.example"}, now)
	acmeCA := e.tenant(t, "acme")
	// A certificate whose key the client does not hold.
	stolen := pair(acmeLeaf, newP256(t), acmeCA.Cert)

	tests := []struct {
		name string
		cert *tls.Certificate
		// byVerifier: refused by pki (the error wraps ErrNotAuthenticated),
		// not by the TLS stack itself.
		byVerifier bool
		want       *engine.Principal
	}{
		{name: "no client certificate"},
		{name: "member with its tenant CA", cert: &f.acmeApp, want: &engine.Principal{Tenant: "acme", Member: "app", Role: engine.RoleApp}},
		{name: "member leaf only", cert: &leafOnly, want: &engine.Principal{Tenant: "acme", Member: "app", Role: engine.RoleApp}},
		{name: "member of another tenant", cert: ptr(pair(gLeaf, gKey, e.tenant(t, "globex").Cert)), want: &engine.Principal{Tenant: "globex", Member: "admin", Role: engine.RoleAdmin}},
		{name: "expired member", cert: ptr(pair(oldLeaf, oldKey, acmeCA.Cert)), byVerifier: true},
		{name: "member from a foreign CA", cert: ptr(pair(fLeaf, fKey, other.tenant(t, "acme").Cert)), byVerifier: true},
		{name: "server certificate as client", cert: &serverAsClient, byVerifier: true},
		{name: "tenant CA as client", cert: ptr(pair(acmeCA.Cert, acmeCA.Signer)), byVerifier: true},
		{name: "certificate without its key", cert: &stolen},
	}
	for _, tt := range tests {
		for _, version := range []uint16{tls.VersionTLS12, tls.VersionTLS13} {
			t.Run(tt.name+"/"+tls.VersionName(version), func(t *testing.T) {
				cfg := f.clientConfig()
				if tt.cert != nil {
					cfg.Certificates = []tls.Certificate{*tt.cert}
				}
				cfg.MinVersion, cfg.MaxVersion = version, version
				state, err := dial(t, addr, cfg)
				r := result(t, results)
				if tt.want == nil {
					require.Error(t, err, "client was let in")
					require.Error(t, r.err, "server completed the handshake")
					if tt.byVerifier {
						assert.ErrorIs(t, r.err, pki.ErrNotAuthenticated)
					}
					return
				}
				require.NoError(t, err)
				require.NoError(t, r.err)
				assert.Equal(t, f.srv.Certificate().Leaf.Raw, state.PeerCertificates[0].Raw, "client sees the server certificate")
				require.NotEmpty(t, r.state.PeerCertificates)
				assert.Equal(t, tt.cert.Certificate[0], r.state.PeerCertificates[0].Raw)
				var raws [][]byte
				for _, c := range r.state.PeerCertificates {
					raws = append(raws, c.Raw)
				}
				p, err := f.srv.Verifier.Verify(raws)
				require.NoError(t, err)
				assert.Equal(t, *tt.want, withoutHash(p))
			})
		}
	}
}

func ptr[T any](v T) *T { return &v }

func TestSetCertificate(t *testing.T) {
	f := newTLSFixture(t)
	addr, results := listen(t, f.srv.TLSConfig())
	first := f.srv.Certificate()

	state, err := dial(t, addr, f.clientConfig(f.acmeApp))
	require.NoError(t, err)
	require.NoError(t, result(t, results).err)
	assert.Equal(t, first.Leaf.Raw, state.PeerCertificates[0].Raw)

	next := f.e.issueServer(t, []string{"localhost", "kms.example"}, time.Now())
	f.srv.SetCertificate(next)
	assert.Equal(t, next.Leaf.Raw, f.srv.Certificate().Leaf.Raw)

	for _, name := range []string{"localhost", "kms.example"} {
		cfg := f.clientConfig(f.acmeApp)
		cfg.ServerName = name
		state, err = dial(t, addr, cfg)
		require.NoError(t, err, "server name %s", name)
		require.NoError(t, result(t, results).err)
		assert.Equal(t, next.Leaf.Raw, state.PeerCertificates[0].Raw, "new handshakes present the new certificate")
	}

	// 127.0.0.1 was in the old certificate only.
	cfg := f.clientConfig(f.acmeApp)
	cfg.ServerName = "127.0.0.1"
	_, err = dial(t, addr, cfg)
	require.Error(t, err, "the old certificate is no longer presented")
	assert.Error(t, result(t, results).err)
}

func TestLoadKeyPair(t *testing.T) {
	f := newTLSFixture(t)
	dir := t.TempDir()
	leaf := f.acmeApp.Leaf
	certFile, keyFile := dir+"/c.crt", dir+"/c.key"
	writeFile(t, certFile, pemCerts(leaf, f.e.tenant(t, "acme").Cert), 0o644)
	writeFile(t, keyFile, pemKey(t, f.acmeApp.PrivateKey), 0o600)

	c, err := certs.LoadKeyPair(certFile, keyFile)
	require.NoError(t, err)
	require.NotNil(t, c.Leaf)
	assert.Equal(t, leaf.Raw, c.Leaf.Raw)
	assert.Len(t, c.Certificate, 2)

	tests := []struct {
		name            string
		certPEM, keyPEM []byte
	}{
		{"mismatched key", pemCerts(leaf), pemKey(t, newP256(t))},
		{"no certificate", []byte("junk"), pemKey(t, f.acmeApp.PrivateKey)},
		{"no key", pemCerts(leaf), []byte("junk")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := t.TempDir()
			writeFile(t, d+"/c.crt", tt.certPEM, 0o644)
			writeFile(t, d+"/c.key", tt.keyPEM, 0o600)
			_, err := certs.LoadKeyPair(d+"/c.crt", d+"/c.key")
			require.Error(t, err)
		})
	}
	_, err = certs.LoadKeyPair(dir+"/missing.crt", keyFile)
	require.Error(t, err)
}

// TestResumedHandshakeIsVerified: TLSConfig verifies clients in
// VerifyPeerCertificate, which crypto/tls does not call on resumed
// connections. After the trust changes (SetTrust to another root, or a
// Flush after a revocation), a client holding a session ticket still
// completes the TLS handshake without pki seeing its chain.
func TestResumedHandshakeIsVerified(t *testing.T) {
	for _, version := range []uint16{tls.VersionTLS12, tls.VersionTLS13} {
		t.Run(tls.VersionName(version), func(t *testing.T) {
			f := newTLSFixture(t)
			addr, results := listen(t, f.srv.TLSConfig())
			cfg := f.clientConfig(f.acmeApp)
			cfg.MinVersion, cfg.MaxVersion = version, version
			cfg.ClientSessionCache = tls.NewLRUClientSessionCache(4)

			state, err := dial(t, addr, cfg)
			require.NoError(t, err)
			require.NoError(t, result(t, results).err)
			require.False(t, state.DidResume)
			state, err = dial(t, addr, cfg)
			require.NoError(t, err)
			require.NoError(t, result(t, results).err)
			require.True(t, state.DidResume, "the session was resumed (else this test proves nothing)")

			// The server stops trusting the client's root.
			other := newEnv(t)
			f.srv.Verifier.SetTrust(other.root(t).Cert, nil)
			_, err = f.srv.Verifier.Verify(rawChain(f.acmeApp.Leaf))
			require.ErrorIs(t, err, pki.ErrNotAuthenticated, "pki refuses the client now")

			state, err = dial(t, addr, cfg)
			r := result(t, results)
			if err == nil && r.err == nil {
				t.Fatalf("a client pki refuses was let in (DidResume=%v)", state.DidResume)
			}
			assert.True(t, errors.Is(r.err, pki.ErrNotAuthenticated), "server error %v", r.err)
		})
	}
}
