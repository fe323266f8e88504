package pki

import (
	"crypto"
	"crypto/rand"
	"crypto/sha1"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"math/big"
	"net"
	"time"

	"github.com/minikms/minikms/engine"
)

// Validity periods.
const (
	RootValidity   = 20 * 365 * 24 * time.Hour
	TenantValidity = 10 * 365 * 24 * time.Hour
	MemberValidity = 365 * 24 * time.Hour
	ServerValidity = 365 * 24 * time.Hour
	// backdate covers clock skew between issuer and verifiers.
	backdate = 5 * time.Minute
)

// CA is a certificate authority: its certificate and its signing key.
type CA struct {
	Cert   *x509.Certificate
	Signer crypto.Signer
}

func serial() (*big.Int, error) {
	return rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
}

func subjectKeyID(pub crypto.PublicKey) ([]byte, error) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, err
	}
	// RFC 5280 §4.2.1.2 method 1 (over the whole SPKI, which is as unique).
	sum := sha1.Sum(der)
	return sum[:], nil
}

func baseTemplate(subject pkix.Name, pub crypto.PublicKey, now time.Time, validity time.Duration) (*x509.Certificate, error) {
	sn, err := serial()
	if err != nil {
		return nil, err
	}
	ski, err := subjectKeyID(pub)
	if err != nil {
		return nil, err
	}
	return &x509.Certificate{
		SerialNumber: sn, Subject: subject, SubjectKeyId: ski,
		NotBefore: now.Add(-backdate), NotAfter: now.Add(validity),
	}, nil
}

func sign(tmpl, parent *x509.Certificate, pub crypto.PublicKey, signer crypto.Signer) (*x509.Certificate, error) {
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, pub, signer)
	if err != nil {
		return nil, err
	}
	return x509.ParseCertificate(der)
}

// NewRootCA makes the self-signed root certificate for signer's key.
func NewRootCA(signer crypto.Signer, now time.Time) (*CA, error) {
	t, err := baseTemplate(pkix.Name{CommonName: "miniKMS Root CA", Organization: []string{"miniKMS"}}, signer.Public(), now, RootValidity)
	if err != nil {
		return nil, err
	}
	t.IsCA, t.BasicConstraintsValid = true, true
	t.MaxPathLen = 1
	t.KeyUsage = x509.KeyUsageCertSign | x509.KeyUsageCRLSign
	c, err := sign(t, t, signer.Public(), signer)
	if err != nil {
		return nil, fmt.Errorf("sign root CA: %w", err)
	}
	return &CA{Cert: c, Signer: signer}, nil
}

// NewTenantCA makes a tenant CA certificate for signer's key, signed by root.
func NewTenantCA(root *CA, tenant string, signer crypto.Signer, now time.Time) (*CA, error) {
	if !engine.ValidTenantID(tenant) {
		return nil, fmt.Errorf("invalid tenant id %q", tenant)
	}
	t, err := baseTemplate(pkix.Name{CommonName: "miniKMS Tenant CA " + tenant, Organization: []string{"miniKMS"}, OrganizationalUnit: []string{tenant}}, signer.Public(), now, TenantValidity)
	if err != nil {
		return nil, err
	}
	t.IsCA, t.BasicConstraintsValid = true, true
	t.MaxPathLen, t.MaxPathLenZero = 0, true
	t.KeyUsage = x509.KeyUsageCertSign | x509.KeyUsageCRLSign
	t.AuthorityKeyId = root.Cert.SubjectKeyId
	ext, err := textExtension(OIDTenant, tenant)
	if err != nil {
		return nil, err
	}
	t.ExtraExtensions = []pkix.Extension{ext}
	c, err := sign(t, root.Cert, signer.Public(), root.Signer)
	if err != nil {
		return nil, fmt.Errorf("sign tenant CA: %w", err)
	}
	return &CA{Cert: c, Signer: signer}, nil
}

// MemberSpec describes a member certificate.
type MemberSpec struct {
	Tenant    string
	Member    string
	Role      engine.Role
	PublicKey crypto.PublicKey
	// Subject overrides the default subject (CN=member, O=tenant); the
	// identity extensions are always set from Tenant, Member and Role.
	Subject  *pkix.Name
	Validity time.Duration
}

// maxMemberID bounds member identifiers.
const maxMemberID = 128

// ValidMemberID reports whether s can name a member.
func ValidMemberID(s string) bool {
	if s == "" || len(s) > maxMemberID {
		return false
	}
	for _, r := range s {
		ok := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.' || r == '@'
		if !ok {
			return false
		}
	}
	return true
}

// IssueMember signs a member certificate with the tenant CA.
func IssueMember(tenantCA *CA, spec MemberSpec, now time.Time) (*x509.Certificate, error) {
	if !engine.ValidTenantID(spec.Tenant) {
		return nil, fmt.Errorf("invalid tenant id %q", spec.Tenant)
	}
	if !ValidMemberID(spec.Member) {
		return nil, fmt.Errorf("invalid member id %q: 1-%d characters of letters, digits, '-', '_', '.', '@'", spec.Member, maxMemberID)
	}
	if !spec.Role.Valid() {
		return nil, fmt.Errorf("invalid role %q (admin, app or auditor)", spec.Role)
	}
	caTenant, err := extensionText(tenantCA.Cert, OIDTenant)
	if err != nil || caTenant != spec.Tenant {
		return nil, errors.New("the issuing CA is not the CA of this tenant")
	}
	validity := spec.Validity
	if validity <= 0 {
		validity = MemberValidity
	}
	subject := pkix.Name{CommonName: spec.Member, Organization: []string{spec.Tenant}}
	if spec.Subject != nil {
		subject = *spec.Subject
	}
	t, err := baseTemplate(subject, spec.PublicKey, now, validity)
	if err != nil {
		return nil, err
	}
	if t.NotAfter.After(tenantCA.Cert.NotAfter) {
		t.NotAfter = tenantCA.Cert.NotAfter
	}
	t.BasicConstraintsValid = true
	t.KeyUsage = x509.KeyUsageDigitalSignature
	t.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	t.AuthorityKeyId = tenantCA.Cert.SubjectKeyId
	for _, kv := range []struct {
		id  []int
		val string
	}{{OIDTenant, spec.Tenant}, {OIDMember, spec.Member}, {OIDRole, string(spec.Role)}} {
		ext, err := textExtension(kv.id, kv.val)
		if err != nil {
			return nil, err
		}
		t.ExtraExtensions = append(t.ExtraExtensions, ext)
	}
	c, err := sign(t, tenantCA.Cert, spec.PublicKey, tenantCA.Signer)
	if err != nil {
		return nil, fmt.Errorf("sign member certificate: %w", err)
	}
	return c, nil
}

// IssueServer signs a TLS server certificate for hosts (DNS names or IP
// addresses) with the root CA.
func IssueServer(root *CA, hosts []string, pub crypto.PublicKey, now time.Time) (*x509.Certificate, error) {
	if len(hosts) == 0 {
		return nil, errors.New("a server certificate needs at least one host name or address")
	}
	t, err := baseTemplate(pkix.Name{CommonName: hosts[0], Organization: []string{"miniKMS"}}, pub, now, ServerValidity)
	if err != nil {
		return nil, err
	}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			t.IPAddresses = append(t.IPAddresses, ip)
		} else {
			t.DNSNames = append(t.DNSNames, h)
		}
	}
	t.BasicConstraintsValid = true
	t.KeyUsage = x509.KeyUsageDigitalSignature
	t.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
	t.AuthorityKeyId = root.Cert.SubjectKeyId
	c, err := sign(t, root.Cert, pub, root.Signer)
	if err != nil {
		return nil, fmt.Errorf("sign server certificate: %w", err)
	}
	return c, nil
}
