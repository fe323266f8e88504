package pki_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/sha1"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/minikms/minikms/engine"
	"github.com/minikms/minikms/pki"
)

// backdate is pki's allowance for clock skew (NotBefore = now - backdate).
const backdate = 5 * time.Minute

// oidBasicConstraints is id-ce-basicConstraints.
var oidBasicConstraints = []int{2, 5, 29, 19}

// assertCommon checks what every certificate pki issues has in common.
func assertCommon(t *testing.T, c *x509.Certificate, now time.Time, validity time.Duration) {
	t.Helper()
	assert.Equal(t, 3, c.Version)
	assert.Equal(t, 1, c.SerialNumber.Sign(), "serial must be positive")
	assert.Less(t, c.SerialNumber.Cmp(new(big.Int).Lsh(big.NewInt(1), 127)), 0, "serial fits 127 bits")
	assert.True(t, c.NotBefore.Equal(now.Add(-backdate)), "NotBefore %s", c.NotBefore)
	assert.True(t, c.NotAfter.Equal(now.Add(validity)), "NotAfter %s, want %s", c.NotAfter, now.Add(validity))
	assert.True(t, c.BasicConstraintsValid)
	bc := extensionValue(t, c, oidBasicConstraints)
	assert.True(t, bc.Critical, "basic constraints must be critical")
	der, err := x509.MarshalPKIXPublicKey(c.PublicKey)
	require.NoError(t, err)
	ski := sha1.Sum(der)
	assert.Equal(t, ski[:], c.SubjectKeyId, "SubjectKeyId is SHA-1 of the SPKI")
}

func assertCurve(t *testing.T, c *x509.Certificate, curve elliptic.Curve) {
	t.Helper()
	pub, ok := c.PublicKey.(*ecdsa.PublicKey)
	require.True(t, ok, "public key is %T, want ECDSA", c.PublicKey)
	assert.Equal(t, curve, pub.Curve)
}

func assertNoIdentity(t *testing.T, c *x509.Certificate, ids ...[]int) {
	t.Helper()
	for _, e := range c.Extensions {
		for _, id := range ids {
			assert.False(t, e.Id.Equal(id), "unexpected extension %s", e.Id)
		}
	}
}

func TestRootCA(t *testing.T) {
	key := newP384(t)
	root, err := pki.NewRootCA(key, t0)
	require.NoError(t, err)
	c := root.Cert

	assert.Same(t, key, root.Signer)
	assertCommon(t, c, t0, pki.RootValidity)
	assertCurve(t, c, elliptic.P384())
	assert.True(t, publicKeyEqual(key.Public(), c.PublicKey), "certificate carries the signer's key")
	assert.Equal(t, x509.ECDSAWithSHA384, c.SignatureAlgorithm)

	// Self-signed.
	assert.Equal(t, c.RawSubject, c.RawIssuer)
	require.NoError(t, c.CheckSignatureFrom(c))
	assert.Equal(t, "miniKMS Root CA", c.Subject.CommonName)
	assert.Equal(t, []string{"miniKMS"}, c.Subject.Organization)

	assert.True(t, c.IsCA)
	assert.Equal(t, 1, c.MaxPathLen)
	assert.False(t, c.MaxPathLenZero)
	assert.Equal(t, x509.KeyUsageCertSign|x509.KeyUsageCRLSign, c.KeyUsage)
	assert.Empty(t, c.ExtKeyUsage)
	assert.Empty(t, c.DNSNames)
	assert.Empty(t, c.IPAddresses)
	assertNoIdentity(t, c, pki.OIDTenant, pki.OIDMember, pki.OIDRole)
	assert.True(t, c.NotAfter.Sub(c.NotBefore) > 19*365*24*time.Hour, "root is long-lived")
}

func TestTenantCA(t *testing.T) {
	h := newHierarchy(t, t0)
	key := newP384(t)
	ca, err := pki.NewTenantCA(h.root, "acme", key, t0)
	require.NoError(t, err)
	c := ca.Cert

	assert.Same(t, key, ca.Signer)
	assertCommon(t, c, t0, pki.TenantValidity)
	assertCurve(t, c, elliptic.P384())
	assert.True(t, publicKeyEqual(key.Public(), c.PublicKey))
	assert.Equal(t, x509.ECDSAWithSHA384, c.SignatureAlgorithm, "signed by the P-384 root")

	assert.True(t, c.IsCA)
	assert.Equal(t, 0, c.MaxPathLen)
	assert.True(t, c.MaxPathLenZero, "path length 0 must be encoded, not omitted")
	assert.Equal(t, x509.KeyUsageCertSign|x509.KeyUsageCRLSign, c.KeyUsage)
	assert.Empty(t, c.ExtKeyUsage)

	ext := extensionValue(t, c, pki.OIDTenant)
	assert.False(t, ext.Critical, "tenant extension is non-critical")
	assert.Equal(t, "acme", utf8Value(t, ext))
	assertNoIdentity(t, c, pki.OIDMember, pki.OIDRole)

	assert.Equal(t, h.root.Cert.SubjectKeyId, c.AuthorityKeyId)
	assert.Equal(t, h.root.Cert.RawSubject, c.RawIssuer)
	require.NoError(t, c.CheckSignatureFrom(h.root.Cert))
	assert.Equal(t, "miniKMS Tenant CA acme", c.Subject.CommonName)
	assert.Equal(t, []string{"acme"}, c.Subject.OrganizationalUnit)

	// It is a valid intermediate under the root.
	roots := x509.NewCertPool()
	roots.AddCert(h.root.Cert)
	_, err = c.Verify(x509.VerifyOptions{Roots: roots, CurrentTime: t0, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}})
	require.NoError(t, err)
}

func TestNewTenantCARefusesInvalidTenant(t *testing.T) {
	h := newHierarchy(t, t0)
	for _, tenant := range []string{"", "Acme", "-acme", "a_b", "_system", strings.Repeat("a", 64)} {
		t.Run(tenant, func(t *testing.T) {
			_, err := pki.NewTenantCA(h.root, tenant, newP384(t), t0)
			require.Error(t, err)
		})
	}
}

func TestIssueMember(t *testing.T) {
	h := newHierarchy(t, t0, "acme")
	ca := h.tenants["acme"]
	key := newP256(t)
	c, err := pki.IssueMember(ca, pki.MemberSpec{Tenant: "acme", Member: "app-1", Role: engine.RoleApp, PublicKey: key.Public()}, t0)
	require.NoError(t, err)

	assertCommon(t, c, t0, pki.MemberValidity)
	assertCurve(t, c, elliptic.P256())
	assert.True(t, publicKeyEqual(key.Public(), c.PublicKey), "the caller's key is certified")
	assert.False(t, c.IsCA)
	assert.Equal(t, x509.KeyUsageDigitalSignature, c.KeyUsage)
	assert.Equal(t, []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}, c.ExtKeyUsage)
	assert.Empty(t, c.UnknownExtKeyUsage)
	assert.Empty(t, c.DNSNames)
	assert.Empty(t, c.IPAddresses)

	for _, want := range []struct {
		id  []int
		val string
	}{{pki.OIDTenant, "acme"}, {pki.OIDMember, "app-1"}, {pki.OIDRole, "app"}} {
		ext := extensionValue(t, c, want.id)
		assert.False(t, ext.Critical, "extension %v is non-critical", want.id)
		assert.Equal(t, want.val, utf8Value(t, ext))
	}
	assert.Equal(t, "app-1", c.Subject.CommonName)
	assert.Equal(t, []string{"acme"}, c.Subject.Organization)
	assert.Equal(t, ca.Cert.SubjectKeyId, c.AuthorityKeyId)
	assert.Equal(t, ca.Cert.RawSubject, c.RawIssuer)
	require.NoError(t, c.CheckSignatureFrom(ca.Cert))
	assert.Error(t, c.CheckSignatureFrom(h.root.Cert), "not signed by the root")
}

func TestIssueMemberValidity(t *testing.T) {
	h := newHierarchy(t, t0, "acme")
	ca := h.tenants["acme"]
	late := ca.Cert.NotAfter.Add(-10 * 24 * time.Hour)
	tests := []struct {
		name     string
		now      time.Time
		validity time.Duration
		want     time.Time
	}{
		{"default", t0, 0, t0.Add(pki.MemberValidity)},
		{"negative means default", t0, -time.Hour, t0.Add(pki.MemberValidity)},
		{"custom", t0, 48 * time.Hour, t0.Add(48 * time.Hour)},
		{"capped by the tenant CA", late, 0, ca.Cert.NotAfter},
		{"custom capped by the tenant CA", late, 11 * 24 * time.Hour, ca.Cert.NotAfter},
		{"ending just before the tenant CA", late, 9 * 24 * time.Hour, late.Add(9 * 24 * time.Hour)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := pki.IssueMember(ca, pki.MemberSpec{Tenant: "acme", Member: "m", Role: engine.RoleAdmin, PublicKey: newP256(t).Public(), Validity: tt.validity}, tt.now)
			require.NoError(t, err)
			assert.True(t, c.NotAfter.Equal(tt.want), "NotAfter %s, want %s", c.NotAfter, tt.want)
			assert.True(t, c.NotBefore.Equal(tt.now.Add(-backdate)))
			assert.False(t, c.NotAfter.After(ca.Cert.NotAfter), "never outlives its CA")
		})
	}
}

func TestIssueMemberSubjectOverride(t *testing.T) {
	h := newHierarchy(t, t0, "acme")
	subject := pkix.Name{CommonName: "array-7.example", Organization: []string{"Storage"}}
	c, err := pki.IssueMember(h.tenants["acme"], pki.MemberSpec{Tenant: "acme", Member: "array-7", Role: engine.RoleAuditor, PublicKey: newP256(t).Public(), Subject: &subject}, t0)
	require.NoError(t, err)
	assert.Equal(t, "array-7.example", c.Subject.CommonName)
	assert.Equal(t, []string{"Storage"}, c.Subject.Organization)
	assert.Equal(t, "acme", utf8Value(t, extensionValue(t, c, pki.OIDTenant)), "identity comes from the spec, not the subject")
	assert.Equal(t, "array-7", utf8Value(t, extensionValue(t, c, pki.OIDMember)))
	assert.Equal(t, "auditor", utf8Value(t, extensionValue(t, c, pki.OIDRole)))
}

func TestIssueMemberRefuses(t *testing.T) {
	h := newHierarchy(t, t0, "acme", "globex")
	valid := pki.MemberSpec{Tenant: "acme", Member: "app", Role: engine.RoleApp}
	tests := []struct {
		name   string
		ca     *pki.CA
		modify func(*pki.MemberSpec)
	}{
		{"empty tenant", h.tenants["acme"], func(s *pki.MemberSpec) { s.Tenant = "" }},
		{"upper-case tenant", h.tenants["acme"], func(s *pki.MemberSpec) { s.Tenant = "ACME" }},
		{"tenant starting with dash", h.tenants["acme"], func(s *pki.MemberSpec) { s.Tenant = "-acme" }},
		{"tenant too long", h.tenants["acme"], func(s *pki.MemberSpec) { s.Tenant = strings.Repeat("a", 64) }},
		{"empty member", h.tenants["acme"], func(s *pki.MemberSpec) { s.Member = "" }},
		{"member with space", h.tenants["acme"], func(s *pki.MemberSpec) { s.Member = "app one" }},
		{"member with slash", h.tenants["acme"], func(s *pki.MemberSpec) { s.Member = "../admin" }},
		{"member non-ASCII", h.tenants["acme"], func(s *pki.MemberSpec) { s.Member = "appé" }},
		{"member too long", h.tenants["acme"], func(s *pki.MemberSpec) { s.Member = strings.Repeat("m", 129) }},
		{"empty role", h.tenants["acme"], func(s *pki.MemberSpec) { s.Role = "" }},
		{"unknown role", h.tenants["acme"], func(s *pki.MemberSpec) { s.Role = "root" }},
		{"role in upper case", h.tenants["acme"], func(s *pki.MemberSpec) { s.Role = "Admin" }},
		{"CA of another tenant", h.tenants["globex"], func(s *pki.MemberSpec) {}},
		{"root CA as issuer", h.root, func(s *pki.MemberSpec) {}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			spec := valid
			spec.PublicKey = newP256(t).Public()
			tt.modify(&spec)
			c, err := pki.IssueMember(tt.ca, spec, t0)
			require.Error(t, err)
			assert.Nil(t, c)
		})
	}
}

func TestIssueMemberAcceptsLimits(t *testing.T) {
	long := strings.Repeat("t", 63)
	h := newHierarchy(t, t0, long)
	tests := []struct{ name, member string }{
		{"one character", "a"},
		{"128 characters", strings.Repeat("m", 128)},
		{"every allowed punctuation", "svc.app-1_x@host"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := pki.IssueMember(h.tenants[long], pki.MemberSpec{Tenant: long, Member: tt.member, Role: engine.RoleApp, PublicKey: newP256(t).Public()}, t0)
			require.NoError(t, err)
			assert.Equal(t, tt.member, utf8Value(t, extensionValue(t, c, pki.OIDMember)))
			assert.Equal(t, long, utf8Value(t, extensionValue(t, c, pki.OIDTenant)))
		})
	}
}

func TestIssueServer(t *testing.T) {
	h := newHierarchy(t, t0)
	key := newP256(t)
	hosts := []string{"kms.example", "localhost", "127.0.0.1", "::1", "10.1.2.3"}
	c, err := pki.IssueServer(h.root, hosts, key.Public(), t0)
	require.NoError(t, err)

	assertCommon(t, c, t0, pki.ServerValidity)
	assert.True(t, publicKeyEqual(key.Public(), c.PublicKey))
	assert.False(t, c.IsCA)
	assert.Equal(t, x509.KeyUsageDigitalSignature, c.KeyUsage)
	assert.Equal(t, []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, c.ExtKeyUsage)
	assert.Equal(t, []string{"kms.example", "localhost"}, c.DNSNames)
	require.Len(t, c.IPAddresses, 3)
	for i, ip := range []string{"127.0.0.1", "::1", "10.1.2.3"} {
		assert.True(t, c.IPAddresses[i].Equal(net.ParseIP(ip)), "IP SAN %d = %s", i, c.IPAddresses[i])
	}
	assert.Equal(t, "kms.example", c.Subject.CommonName)
	assert.Equal(t, h.root.Cert.SubjectKeyId, c.AuthorityKeyId)
	require.NoError(t, c.CheckSignatureFrom(h.root.Cert))
	assertNoIdentity(t, c, pki.OIDTenant, pki.OIDMember, pki.OIDRole)

	roots := x509.NewCertPool()
	roots.AddCert(h.root.Cert)
	for _, host := range hosts {
		_, err := c.Verify(x509.VerifyOptions{Roots: roots, DNSName: host, CurrentTime: t0})
		assert.NoError(t, err, "host %s", host)
	}
	_, err = c.Verify(x509.VerifyOptions{Roots: roots, DNSName: "other.example", CurrentTime: t0})
	assert.Error(t, err, "a host not asked for is not covered")

	_, err = pki.IssueServer(h.root, nil, key.Public(), t0)
	assert.Error(t, err, "no hosts")
}
