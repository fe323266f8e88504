package pki_test

import (
	"crypto/x509"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/minikms/minikms/engine"
	"github.com/minikms/minikms/pki"
)

// opensslVerify runs `openssl verify` in dir on leaf with root as the only
// trust anchor and untrusted as intermediates; it returns the output and
// whether openssl accepted the chain.
func opensslVerify(t *testing.T, dir string, root, leaf *x509.Certificate, untrusted []*x509.Certificate, purpose string) (string, bool) {
	t.Helper()
	args := []string{"verify", "-x509_strict", "-CAfile", writePEM(t, dir, "root.pem", root)}
	if len(untrusted) > 0 {
		args = append(args, "-untrusted", writePEM(t, dir, "tenant.pem", untrusted...))
	}
	if purpose != "" {
		args = append(args, "-purpose", purpose)
	}
	args = append(args, writePEM(t, dir, "leaf.pem", leaf))
	cmd := exec.Command("openssl", args...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	return string(out), err == nil
}

// TestOpenSSLVerifiesIssuedChains checks the chains with an independent
// implementation: OpenSSL must build and verify exactly the chains pki
// means to be valid, with the custom extensions non-critical.
func TestOpenSSLVerifiesIssuedChains(t *testing.T) {
	if _, err := exec.LookPath("openssl"); err != nil {
		t.Skip("openssl is not installed: cannot cross-check chains with an independent verifier")
	}
	now := time.Now()
	h := newHierarchy(t, now, "acme", "globex")
	foreign := newHierarchy(t, now, "acme")
	acme := h.issueMember(t, "acme", "app", engine.RoleApp, now, 0)
	globex := h.issueMember(t, "globex", "admin", engine.RoleAdmin, now, 0)
	server, err := pki.IssueServer(h.root, []string{"localhost", "127.0.0.1"}, newP256(t).Public(), now)
	require.NoError(t, err)

	// The same hierarchy made by a persisted Authority (sealed keys).
	auth := newEnv(t).authority(nil)
	authRoot, err := auth.Root(t.Context())
	require.NoError(t, err)
	authTenant, err := auth.Tenant(t.Context(), "acme", true)
	require.NoError(t, err)
	authMember, err := pki.IssueMember(authTenant, pki.MemberSpec{Tenant: "acme", Member: "admin", Role: engine.RoleAdmin, PublicKey: newP256(t).Public()}, now)
	require.NoError(t, err)

	tests := []struct {
		name      string
		root      *x509.Certificate
		leaf      *x509.Certificate
		untrusted []*x509.Certificate
		purpose   string
		ok        bool
	}{
		{"acme member", h.root.Cert, acme.cert, []*x509.Certificate{h.tenants["acme"].Cert}, "sslclient", true},
		{"globex member", h.root.Cert, globex.cert, []*x509.Certificate{h.tenants["globex"].Cert}, "sslclient", true},
		{"member with every tenant CA as candidates", h.root.Cert, acme.cert, h.tenantCerts(), "sslclient", true},
		{"authority-issued member", authRoot.Cert, authMember, []*x509.Certificate{authTenant.Cert}, "sslclient", true},
		{"tenant CA", h.root.Cert, h.tenants["acme"].Cert, nil, "", true},
		{"server", h.root.Cert, server, nil, "sslserver", true},
		{"member under the wrong tenant CA", h.root.Cert, acme.cert, []*x509.Certificate{h.tenants["globex"].Cert}, "sslclient", false},
		{"member without its tenant CA", h.root.Cert, acme.cert, nil, "sslclient", false},
		{"member under a foreign root", foreign.root.Cert, acme.cert, []*x509.Certificate{foreign.tenants["acme"].Cert}, "sslclient", false},
		{"member used as a server", h.root.Cert, acme.cert, []*x509.Certificate{h.tenants["acme"].Cert}, "sslserver", false},
		{"server used as a client", h.root.Cert, server, nil, "sslclient", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, ok := opensslVerify(t, t.TempDir(), tt.root, tt.leaf, tt.untrusted, tt.purpose)
			if tt.ok {
				require.True(t, ok, "openssl refused: %s", out)
				assert.True(t, strings.HasSuffix(strings.TrimSpace(out), "leaf.pem: OK"), "%s", out)
			} else {
				require.False(t, ok, "openssl accepted: %s", out)
				assert.Contains(t, out, "error", "openssl names the failure")
			}
		})
	}
}
