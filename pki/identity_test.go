package pki_test

import (
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/hex"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/minikms/minikms/engine"
	"github.com/minikms/minikms/pki"
)

// verifyFixture is a hierarchy with acme and globex, a foreign hierarchy,
// and members of both.
type verifyFixture struct {
	h, foreign *hierarchy
	acmeApp    member
}

func newVerifyFixture(t *testing.T) *verifyFixture {
	t.Helper()
	f := &verifyFixture{h: newHierarchy(t, t0, "acme", "globex"), foreign: newHierarchy(t, t0, "acme")}
	f.acmeApp = f.h.issueMember(t, "acme", "app", engine.RoleApp, t0, 0)
	return f
}

// verifier returns a Verifier trusting f's root and tenant CAs at clock c.
func (f *verifyFixture) verifier(c *fakeClock) *pki.Verifier {
	return pki.NewVerifier(f.h.root.Cert, f.h.tenantCerts(), c.Now)
}

// principalOf is the principal a verified member certificate must yield.
func principalOf(c *x509.Certificate, tenant, member string, role engine.Role) engine.Principal {
	sum := sha256.Sum256(c.Raw)
	return engine.Principal{Tenant: tenant, Member: member, Role: role, CertHash: hex.EncodeToString(sum[:])}
}

func TestVerifierRefuses(t *testing.T) {
	f := newVerifyFixture(t)
	acmeCA, globexCA, root := f.h.tenants["acme"], f.h.tenants["globex"], f.h.root
	leaf := f.acmeApp.cert

	expiring := f.h.issueMember(t, "acme", "short", engine.RoleApp, t0, time.Hour)
	future := f.h.issueMember(t, "acme", "future", engine.RoleApp, t0.Add(24*time.Hour), 0)
	foreignMember := f.foreign.issueMember(t, "acme", "app", engine.RoleApp, t0, 0)
	server, err := pki.IssueServer(root, []string{"localhost"}, newP256(t).Public(), t0)
	require.NoError(t, err)
	clientAuth := []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	wrongTenant := handMade{tenant: "globex", member: "app", role: "app", extKeyUsage: clientAuth}.build(t, acmeCA)
	serverOnly := handMade{tenant: "acme", member: "app", role: "app", extKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}.build(t, acmeCA)
	noEKU := handMade{tenant: "acme", member: "app", role: "app"}.build(t, acmeCA)
	anyEKU := handMade{tenant: "acme", member: "app", role: "app", extKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}.build(t, acmeCA)
	noIdentity := handMade{extKeyUsage: clientAuth}.build(t, acmeCA)
	noRole := handMade{tenant: "acme", member: "app", extKeyUsage: clientAuth}.build(t, acmeCA)
	noMember := handMade{tenant: "acme", role: "app", extKeyUsage: clientAuth}.build(t, acmeCA)
	noTenant := handMade{member: "app", role: "app", extKeyUsage: clientAuth}.build(t, acmeCA)
	unknownRole := handMade{tenant: "acme", member: "app", role: "root", extKeyUsage: clientAuth}.build(t, acmeCA)
	badMember := handMade{tenant: "acme", member: "app one", role: "app", extKeyUsage: clientAuth}.build(t, acmeCA)
	caLeaf := handMade{tenant: "acme", member: "app", role: "app", extKeyUsage: clientAuth, isCA: true}.build(t, acmeCA)
	integer, err := asn1.Marshal(42)
	require.NoError(t, err)
	notString := handMade{member: "app", role: "app", extKeyUsage: clientAuth, extra: []pkix.Extension{{Id: pki.OIDTenant, Value: integer}}}.build(t, acmeCA)
	longValue, err := asn1.MarshalWithParams(strings.Repeat("a", 300), "utf8")
	require.NoError(t, err)
	tooLong := handMade{tenant: "acme", role: "app", extKeyUsage: clientAuth, extra: []pkix.Extension{{Id: pki.OIDMember, Value: longValue}}}.build(t, acmeCA)
	byRoot := handMade{tenant: "acme", member: "app", role: "app", extKeyUsage: clientAuth}.build(t, root)

	nine := [][]byte{leaf.Raw}
	for range 8 {
		nine = append(nine, acmeCA.Cert.Raw)
	}

	tests := []struct {
		name    string
		raw     [][]byte
		now     time.Time // zero: t0
		revoked bool      // the leaf is on acme's CRL
	}{
		{name: "revoked member", raw: raw(leaf, acmeCA.Cert), revoked: true},
		{name: "revoked member, leaf only", raw: raw(leaf), revoked: true},
		{name: "expired member", raw: raw(expiring.cert, acmeCA.Cert), now: t0.Add(2 * time.Hour)},
		{name: "expired member, leaf only", raw: raw(expiring.cert), now: t0.Add(time.Hour + time.Second)},
		{name: "not yet valid member", raw: raw(future.cert, acmeCA.Cert)},
		{name: "not yet valid member, leaf only", raw: raw(future.cert)},
		{name: "certificate from a foreign CA", raw: raw(foreignMember.cert, f.foreign.tenants["acme"].Cert)},
		{name: "certificate from a foreign CA with its root", raw: raw(foreignMember.cert, f.foreign.tenants["acme"].Cert, f.foreign.root.Cert)},
		{name: "certificate from a foreign CA, leaf only", raw: raw(foreignMember.cert)},
		{name: "tenant extension does not match the issuing tenant CA", raw: raw(wrongTenant.cert, acmeCA.Cert)},
		{name: "tenant extension does not match, leaf only", raw: raw(wrongTenant.cert)},
		{name: "member presented with the wrong tenant CA only", raw: raw(wrongTenant.cert, globexCA.Cert)},
		{name: "tenant CA as client", raw: raw(acmeCA.Cert)},
		{name: "tenant CA as client with the root", raw: raw(acmeCA.Cert, root.Cert)},
		{name: "root CA as client", raw: raw(root.Cert)},
		{name: "CA certificate with identity as leaf", raw: raw(caLeaf.cert, acmeCA.Cert)},
		{name: "server certificate as client", raw: raw(server)},
		{name: "ServerAuth only", raw: raw(serverOnly.cert, acmeCA.Cert)},
		{name: "no ExtKeyUsage", raw: raw(noEKU.cert, acmeCA.Cert)},
		{name: "ExtKeyUsage any but not ClientAuth", raw: raw(anyEKU.cert, acmeCA.Cert)},
		{name: "without identity extensions", raw: raw(noIdentity.cert, acmeCA.Cert)},
		{name: "without role", raw: raw(noRole.cert, acmeCA.Cert)},
		{name: "without member", raw: raw(noMember.cert, acmeCA.Cert)},
		{name: "without tenant", raw: raw(noTenant.cert, acmeCA.Cert)},
		{name: "unknown role", raw: raw(unknownRole.cert, acmeCA.Cert)},
		{name: "invalid member id", raw: raw(badMember.cert, acmeCA.Cert)},
		{name: "tenant extension not a string", raw: raw(notString.cert, acmeCA.Cert)},
		{name: "member extension too long", raw: raw(tooLong.cert, acmeCA.Cert)},
		{name: "chain of 2: member signed directly by root", raw: raw(byRoot.cert)},
		{name: "chain of 2 presented with the root", raw: raw(byRoot.cert, root.Cert)},
		{name: "more than 8 certificates", raw: nine},
		{name: "garbage bytes", raw: [][]byte{[]byte("garbage, not DER")}},
		{name: "valid leaf then garbage", raw: [][]byte{leaf.Raw, []byte("garbage")}},
		{name: "truncated leaf", raw: [][]byte{leaf.Raw[:len(leaf.Raw)-1]}},
		{name: "leaf with trailing bytes", raw: [][]byte{append(append([]byte{}, leaf.Raw...), 0)}},
		{name: "empty certificate", raw: [][]byte{{}}},
		{name: "no certificate", raw: nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			now := tt.now
			if now.IsZero() {
				now = t0
			}
			v := f.verifier(newClock(now))
			if tt.revoked {
				v.SetIdentity([]engine.Revocation{{Tenant: "acme", Serial: pki.SerialHex(leaf), Reason: 1, RevokedAt: t0}}, nil, 1)
			}
			p, err := v.Verify(tt.raw)
			require.Error(t, err)
			assert.True(t, errors.Is(err, pki.ErrNotAuthenticated), "error %q must wrap ErrNotAuthenticated", err)
			assert.Equal(t, engine.Principal{}, p, "no principal on refusal")
		})
	}
}

func TestVerifierAccepts(t *testing.T) {
	f := newVerifyFixture(t)
	acmeCA, globexCA, root := f.h.tenants["acme"], f.h.tenants["globex"], f.h.root
	acmeAdmin := f.h.issueMember(t, "acme", "admin", engine.RoleAdmin, t0, 0)
	globexAuditor := f.h.issueMember(t, "globex", "auditor-1", engine.RoleAuditor, t0, 0)
	leaf := f.acmeApp.cert
	eight := [][]byte{leaf.Raw}
	for range 7 {
		eight = append(eight, acmeCA.Cert.Raw)
	}

	tests := []struct {
		name string
		raw  [][]byte
		now  time.Time
		want engine.Principal
	}{
		{name: "leaf only", raw: raw(leaf), want: principalOf(leaf, "acme", "app", engine.RoleApp)},
		{name: "leaf and tenant CA", raw: raw(leaf, acmeCA.Cert), want: principalOf(leaf, "acme", "app", engine.RoleApp)},
		{name: "leaf, tenant CA and root", raw: raw(leaf, acmeCA.Cert, root.Cert), want: principalOf(leaf, "acme", "app", engine.RoleApp)},
		{name: "leaf with an unrelated tenant CA", raw: raw(leaf, globexCA.Cert), want: principalOf(leaf, "acme", "app", engine.RoleApp)},
		{name: "exactly 8 certificates", raw: eight, want: principalOf(leaf, "acme", "app", engine.RoleApp)},
		{name: "admin role", raw: raw(acmeAdmin.cert), want: principalOf(acmeAdmin.cert, "acme", "admin", engine.RoleAdmin)},
		{name: "auditor of another tenant", raw: raw(globexAuditor.cert, globexCA.Cert), want: principalOf(globexAuditor.cert, "globex", "auditor-1", engine.RoleAuditor)},
		{name: "inside the backdate window", raw: raw(leaf), now: t0.Add(-4 * time.Minute), want: principalOf(leaf, "acme", "app", engine.RoleApp)},
		{name: "on the last day", raw: raw(leaf), now: leaf.NotAfter.Add(-time.Second), want: principalOf(leaf, "acme", "app", engine.RoleApp)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			now := tt.now
			if now.IsZero() {
				now = t0
			}
			v := f.verifier(newClock(now))
			p, err := v.Verify(tt.raw)
			require.NoError(t, err)
			assert.Equal(t, tt.want, p)
		})
	}
}

func TestVerifierAddTenantCA(t *testing.T) {
	h := newHierarchy(t, t0, "acme", "globex")
	m := h.issueMember(t, "globex", "app", engine.RoleApp, t0, 0)
	v := pki.NewVerifier(h.root.Cert, []*x509.Certificate{h.tenants["acme"].Cert}, newClock(t0).Now)

	_, err := v.Verify(raw(m.cert))
	require.ErrorIs(t, err, pki.ErrNotAuthenticated, "globex CA not known yet: a leaf alone cannot chain")

	p, err := v.Verify(raw(m.cert, h.tenants["globex"].Cert))
	require.NoError(t, err, "a presented tenant CA is enough")
	assert.Equal(t, principalOf(m.cert, "globex", "app", engine.RoleApp), p)

	v.AddTenantCA(h.tenants["globex"].Cert)
	p, err = v.Verify(raw(m.cert))
	require.NoError(t, err, "leaf only, after AddTenantCA")
	assert.Equal(t, principalOf(m.cert, "globex", "app", engine.RoleApp), p)

	a := h.issueMember(t, "acme", "admin", engine.RoleAdmin, t0, 0)
	_, err = v.Verify(raw(a.cert))
	require.NoError(t, err, "tenant CAs known before stay known")
}

func TestNewVerifierDefaultsToTimeNow(t *testing.T) {
	now := time.Now()
	h := newHierarchy(t, now, "acme")
	m := h.issueMember(t, "acme", "app", engine.RoleApp, now, 0)
	v := pki.NewVerifier(h.root.Cert, h.tenantCerts(), nil)
	_, err := v.Verify(raw(m.cert))
	require.NoError(t, err)

	old := h.issueMember(t, "acme", "old", engine.RoleApp, now.Add(-48*time.Hour), time.Hour)
	_, err = v.Verify(raw(old.cert))
	require.ErrorIs(t, err, pki.ErrNotAuthenticated, "nil clock means the real clock, under which this expired")
}

// TestIdentityExtensionsMustBeUTF8String: the package documents the
// identity extensions as UTF8String and extensionText says so in its error
// ("is not a UTF8String"), but encoding/asn1 decodes any string type
// (PrintableString, IA5String, T61String, ...) into a Go string, so a
// certificate whose tenant extension is a PrintableString is accepted.
func TestIdentityExtensionsMustBeUTF8String(t *testing.T) {
	f := newVerifyFixture(t)
	acmeCA := f.h.tenants["acme"]
	clientAuth := []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	tests := []struct {
		name   string
		params string
	}{
		{"PrintableString", "printable"},
		{"IA5String", "ia5"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			value, err := asn1.MarshalWithParams("acme", tt.params)
			require.NoError(t, err)
			m := handMade{member: "app", role: "app", extKeyUsage: clientAuth, extra: []pkix.Extension{{Id: pki.OIDTenant, Value: value}}}.build(t, acmeCA)
			_, err = f.verifier(newClock(t0)).Verify(raw(m.cert, acmeCA.Cert))
			require.ErrorIs(t, err, pki.ErrNotAuthenticated, "a tenant extension that is a %s, not a UTF8String, must be refused", tt.name)
		})
	}
}

// verifiedChain returns the chain x509 builds for leaf under h at t0.
func verifiedChain(t *testing.T, h *hierarchy, leaf *x509.Certificate) []*x509.Certificate {
	t.Helper()
	roots, inter := x509.NewCertPool(), x509.NewCertPool()
	roots.AddCert(h.root.Cert)
	for _, c := range h.tenantCerts() {
		inter.AddCert(c)
	}
	chains, err := leaf.Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter, CurrentTime: t0, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}})
	require.NoError(t, err)
	require.Len(t, chains, 1)
	return chains[0]
}

func TestIdentify(t *testing.T) {
	h := newHierarchy(t, t0, "acme", "globex")
	m := h.issueMember(t, "acme", "app", engine.RoleApp, t0, 0)
	chain := verifiedChain(t, h, m.cert)
	require.Len(t, chain, 3)
	clientAuth := []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	byRoot := handMade{tenant: "acme", member: "app", role: "app", extKeyUsage: clientAuth}.build(t, h.root)

	p, err := pki.Identify(chain)
	require.NoError(t, err)
	assert.Equal(t, principalOf(m.cert, "acme", "app", engine.RoleApp), p)

	// Shapes a verified chain could only have if a CA misbehaved: Identify
	// does not rely on issuance having validated them.
	integer, err := asn1.Marshal(7)
	require.NoError(t, err)
	badCA := handMade{isCA: true, extra: []pkix.Extension{{Id: pki.OIDTenant, Value: integer}}}.build(t, h.root)
	upperCA := handMade{isCA: true, tenant: "ACME"}.build(t, h.root)
	upperMember := handMade{tenant: "ACME", member: "app", role: "app", extKeyUsage: clientAuth}.build(t, h.root)
	badRole := handMade{tenant: "acme", member: "app", extKeyUsage: clientAuth, extra: []pkix.Extension{{Id: pki.OIDRole, Value: integer}}}.build(t, h.tenants["acme"])

	tests := []struct {
		name  string
		chain []*x509.Certificate
	}{
		{"empty", nil},
		{"leaf only", chain[:1]},
		{"chain of 2", []*x509.Certificate{byRoot.cert, h.root.Cert}},
		{"chain of 4", append(append([]*x509.Certificate{}, chain...), h.root.Cert)},
		{"issuer is the root, not a tenant CA", []*x509.Certificate{m.cert, h.root.Cert, h.root.Cert}},
		{"issuer is another tenant's CA", []*x509.Certificate{m.cert, h.tenants["globex"].Cert, h.root.Cert}},
		{"tenant CA as leaf", []*x509.Certificate{h.tenants["acme"].Cert, h.root.Cert, h.root.Cert}},
		{"issuing CA's tenant extension malformed", []*x509.Certificate{m.cert, badCA.cert, h.root.Cert}},
		{"invalid tenant id on both", []*x509.Certificate{upperMember.cert, upperCA.cert, h.root.Cert}},
		{"role extension malformed", []*x509.Certificate{badRole.cert, h.tenants["acme"].Cert, h.root.Cert}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := pki.Identify(tt.chain)
			require.ErrorIs(t, err, pki.ErrNotAuthenticated)
			assert.Equal(t, engine.Principal{}, p)
		})
	}
}
