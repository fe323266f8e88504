// Package testkms starts a complete miniKMS in process for tests: a SQLite
// store in a temporary directory, a random root key, the PKI, and the KMIP
// listener on loopback. Clients get real member certificates.
package testkms

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"net"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/minikms/minikms/audit"
	"github.com/minikms/minikms/certs"
	"github.com/minikms/minikms/engine"
	"github.com/minikms/minikms/kmip"
	"github.com/minikms/minikms/pki"
	"github.com/minikms/minikms/store/sqlite"
)

// Env is a running miniKMS.
type Env struct {
	Engine   *engine.Engine
	Store    *sqlite.Store
	Auth     *pki.Authority
	Verifier *pki.Verifier
	Server   *kmip.Server
	Audit    *audit.Log // nil with Options.NoAudit
	Addr     string
	Roots    *x509.CertPool
	RootKey  []byte
	Dir      string

	mu      sync.Mutex
	clients map[string]tls.Certificate
	known   map[string]bool
}

// Options tune Start.
type Options struct {
	// Dir holds the database; a fresh temporary directory when empty.
	Dir string
	// RootKey is the root key; random when nil.
	RootKey []byte
	// KMIP adjusts the server configuration before it starts.
	KMIP func(*kmip.Config)
	// Engine adjusts the engine configuration before it opens.
	Engine func(*engine.Config)
	// NoAudit runs without an audit log.
	NoAudit bool
	// Keyring, when set, is the engine's root keyring instead of a
	// software one made from RootKey (e.g. a pkcs11.Keyring over a
	// SoftHSM2 token); the caller owns it and closes it after the test.
	// Env.RootKey is then nil.
	Keyring engine.Keyring
	// KeySource, when set, returns where the PKI generates and loads the
	// CA keys (e.g. pkcs11's KeySource) instead of keys sealed by the
	// engine (pki.SealedKeys); it is called once the engine is open.
	KeySource func(*engine.Engine) pki.KeySource
}

// Start runs a server until the test ends.
func Start(t testing.TB, opts Options) *Env {
	t.Helper()
	ctx := context.Background()
	e := &Env{Dir: opts.Dir, RootKey: opts.RootKey, clients: map[string]tls.Certificate{}}
	if e.Dir == "" {
		e.Dir = t.TempDir()
	}
	if e.RootKey == nil && opts.Keyring == nil {
		e.RootKey = make([]byte, engine.RootKeySize)
		rand.Read(e.RootKey)
	}
	var err error
	e.Store, err = sqlite.Open(ctx, filepath.Join(e.Dir, "minikms.db"))
	if err != nil {
		t.Fatal(err)
	}
	var kr engine.Keyring = opts.Keyring
	closeKeyring := func() {}
	if kr == nil {
		soft, err := engine.NewSoftKeyring(e.RootKey)
		if err != nil {
			t.Fatal(err)
		}
		kr, closeKeyring = soft, soft.Close
	}
	ecfg := engine.Config{Store: e.Store, Keyring: kr}
	if opts.Engine != nil {
		opts.Engine(&ecfg)
	}
	e.Engine, err = engine.Open(ctx, ecfg)
	if err != nil {
		e.Store.Close()
		t.Fatal(err)
	}
	var keys pki.KeySource = pki.SealedKeys{Sealer: e.Engine}
	if opts.KeySource != nil {
		keys = opts.KeySource(e.Engine)
	}
	e.Auth = pki.NewAuthority(e.Store, keys, nil)
	root, err := e.Auth.Root(ctx)
	if err != nil {
		t.Fatal(err)
	}
	e.Roots = x509.NewCertPool()
	e.Roots.AddCert(root.Cert)
	cas, err := e.Auth.TenantCertificates(ctx)
	if err != nil {
		t.Fatal(err)
	}
	e.Verifier = pki.NewVerifier(root.Cert, cas, nil)

	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	leaf, err := pki.IssueServer(root, []string{"127.0.0.1", "localhost"}, key.Public(), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	srvTLS := certs.NewServer(tls.Certificate{Certificate: [][]byte{leaf.Raw}, PrivateKey: key, Leaf: leaf}, e.Verifier)
	if err := e.Refresh(); err != nil {
		t.Fatal(err)
	}
	cfg := kmip.Config{Engine: e.Engine, TLS: srvTLS.TLSConfig(), Identifier: e.Verifier, Certifier: e.Auth}
	if !opts.NoAudit {
		e.Audit = audit.NewLog(e.Store, "test")
		cfg.Audit = e.Audit
	}
	if opts.KMIP != nil {
		opts.KMIP(&cfg)
	}
	e.Server, err = kmip.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	e.Addr = ln.Addr().String()
	done := make(chan struct{})
	go func() { e.Server.Serve(ln); close(done) }()
	t.Cleanup(func() {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		e.Server.Shutdown(sctx)
		<-done
		e.Engine.Close()
		e.Store.Close()
		closeKeyring()
	})
	return e
}

// Refresh applies the store's revocations, client registrations and tenant
// CAs to the verifier now (a running server polls every second).
func (e *Env) Refresh() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.known == nil {
		e.known = map[string]bool{}
	}
	return e.Auth.Refresh(context.Background(), e.Verifier, e.known)
}

// ClientCertificate returns (issuing once) a member certificate, creating
// the tenant's CA when needed.
func (e *Env) ClientCertificate(t testing.TB, tenant, member string, role engine.Role) tls.Certificate {
	t.Helper()
	k := tenant + "/" + member + "/" + string(role)
	e.mu.Lock()
	defer e.mu.Unlock()
	if c, ok := e.clients[k]; ok {
		return c
	}
	ca, err := e.Auth.Tenant(context.Background(), tenant, true)
	if err != nil {
		t.Fatal(err)
	}
	e.Verifier.AddTenantCA(ca.Cert)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	leaf, err := e.Auth.IssueMember(context.Background(), pki.MemberSpec{Tenant: tenant, Member: member, Role: role, PublicKey: key.Public()})
	if err != nil {
		t.Fatal(err)
	}
	c := tls.Certificate{Certificate: [][]byte{leaf.Raw, ca.Cert.Raw}, PrivateKey: key, Leaf: leaf}
	e.clients[k] = c
	return c
}

// ClientTLS is a client configuration presenting a member certificate.
func (e *Env) ClientTLS(t testing.TB, tenant, member string, role engine.Role) *tls.Config {
	t.Helper()
	return &tls.Config{RootCAs: e.Roots, ServerName: "127.0.0.1", Certificates: []tls.Certificate{e.ClientCertificate(t, tenant, member, role)}}
}

// Dial connects as a member; the connection closes when the test ends.
func (e *Env) Dial(t testing.TB, tenant, member string, role engine.Role) *tls.Conn {
	t.Helper()
	c, err := tls.Dial("tcp", e.Addr, e.ClientTLS(t, tenant, member, role))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Handshake(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}
