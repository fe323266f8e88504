package kmip_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"math/big"
	"testing"
	"time"

	"github.com/minikms/minikms/engine"
	"github.com/minikms/minikms/pki"
	okmip "github.com/ovh/kmip-go"
	"github.com/ovh/kmip-go/payloads"
)

// handIssue signs a member-shaped certificate with ca, from a template the
// test controls (validity, key usages, CA flag).
func handIssue(t *testing.T, ca *pki.CA, edit func(*x509.Certificate)) (*x509.Certificate, *ecdsa.PrivateKey) {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	utf8 := func(s string) []byte {
		b, err := asn1.MarshalWithParams(s, "utf8")
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: "hand", Organization: []string{"acme"}},
		NotBefore:    time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		ExtraExtensions: []pkix.Extension{
			{Id: pki.OIDTenant, Value: utf8("acme")}, {Id: pki.OIDMember, Value: utf8("hand")}, {Id: pki.OIDRole, Value: utf8("admin")},
		},
		BasicConstraintsValid: true,
	}
	edit(tmpl)
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, key.Public(), ca.Signer)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c, key
}

// TestCertificatesRefusedOverTLS: each kind of unacceptable client
// certificate is refused by the live listener (the handshake fails or the
// connection closes before any answer), the refusal serves no request,
// and the server goes on serving. The control case (same construction,
// acceptable) is served, so the refusals are about the property tested.
func TestCertificatesRefusedOverTLS(t *testing.T) {
	env := startKMS(t, nil)
	env.ClientCertificate(t, "acme", "admin", engine.RoleAdmin) // creates acme's CA
	ca, err := env.Auth.Tenant(context.Background(), "acme", false)
	if err != nil {
		t.Fatal(err)
	}
	foreign := startKMS(t, nil)
	foreign.ClientCertificate(t, "acme", "admin", engine.RoleAdmin)
	foreignCA, err := foreign.Auth.Tenant(context.Background(), "acme", false)
	if err != nil {
		t.Fatal(err)
	}
	// A member revoked through KMIP (its certificate object goes on the CRL).
	admin := dialAdmin(t, env)
	rkey, csr := newCSR(t, "revokee")
	rid := uidOf(t, admin.one(v14, &certifyReq{CertificateRequestType: okmip.CertificateRequestTypePKCS_10, CertificateRequest: csr}))
	revoked := getCert(t, admin, rid)
	ok[*payloads.RevokeResponsePayload](admin, v14, &payloads.RevokeRequestPayload{UniqueIdentifier: rid,
		RevocationReason: okmip.RevocationReason{RevocationReasonCode: okmip.RevocationReasonCodeKeyCompromise}})
	if err := env.Refresh(); err != nil {
		t.Fatal(err)
	}

	type tc struct {
		name  string
		cert  *x509.Certificate
		key   any
		chain []*x509.Certificate
	}
	mk := func(name string, issuer *pki.CA, edit func(*x509.Certificate)) tc {
		c, k := handIssue(t, issuer, edit)
		return tc{name: name, cert: c, key: k, chain: []*x509.Certificate{issuer.Cert}}
	}
	control := mk("control", ca, func(*x509.Certificate) {})
	cases := []tc{
		{name: "revoked", cert: revoked, key: rkey, chain: []*x509.Certificate{ca.Cert}},
		mk("expired", ca, func(c *x509.Certificate) {
			c.NotBefore, c.NotAfter = time.Now().Add(-48*time.Hour), time.Now().Add(-24*time.Hour)
		}),
		mk("not yet valid", ca, func(c *x509.Certificate) {
			c.NotBefore, c.NotAfter = time.Now().Add(24*time.Hour), time.Now().Add(48*time.Hour)
		}),
		mk("foreign CA", foreignCA, func(*x509.Certificate) {}),
		{name: "tenant CA used as client", cert: ca.Cert, key: ca.Signer},
		mk("CA flag on the member", ca, func(c *x509.Certificate) { c.IsCA = true; c.KeyUsage |= x509.KeyUsageCertSign }),
		mk("no ClientAuth usage (ServerAuth only)", ca, func(c *x509.Certificate) { c.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth} }),
		mk("no extended key usage", ca, func(c *x509.Certificate) { c.ExtKeyUsage = nil }),
	}
	if w, err := dialWith(t, env, control.cert, control.key, control.chain...); err != nil {
		t.Fatalf("the control certificate is refused: %v", err)
	} else {
		w.servesOK()
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if _, err := dialWith(t, env, c.cert, c.key, c.chain...); err == nil {
				t.Fatal("the certificate was accepted")
			}
			servesNew(t, env)
		})
	}
}
