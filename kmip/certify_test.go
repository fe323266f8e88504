package kmip_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"testing"
	"time"

	"github.com/minikms/minikms/engine"
	"github.com/minikms/minikms/internal/testkms"
	"github.com/minikms/minikms/pki"
	okmip "github.com/ovh/kmip-go"
	"github.com/ovh/kmip-go/payloads"
	"github.com/ovh/kmip-go/ttlv"
)

// certifyReq is a KMIP Certify request as a client builds it.
type certifyReq struct {
	UniqueIdentifier       string                       `ttlv:",omitempty"`
	CertificateRequestType okmip.CertificateRequestType `ttlv:",omitempty"`
	CertificateRequest     []byte                       `ttlv:",omitempty"`
	TemplateAttribute      *okmip.TemplateAttribute
}

func (*certifyReq) Operation() okmip.Operation { return okmip.OperationCertify }

// uidOf reads the Unique Identifier of an answer the codec does not type.
func uidOf(t *testing.T, bi okmip.ResponseBatchItem) string {
	t.Helper()
	if bi.ResultStatus != okmip.ResultStatusSuccess {
		t.Fatalf("%s failed: %s: %s", ttlv.EnumStr(bi.Operation), ttlv.EnumStr(bi.ResultReason), bi.ResultMessage)
	}
	up, ok := bi.ResponsePayload.(*okmip.UnknownPayload)
	if !ok {
		t.Fatalf("payload %T", bi.ResponsePayload)
	}
	for _, f := range up.Fields {
		if f.Tag == okmip.TagUniqueIdentifier {
			return f.Value.(string)
		}
	}
	t.Fatal("no Unique Identifier in the answer")
	return ""
}

func textAttr(name, v string) okmip.Attribute {
	return okmip.Attribute{AttributeName: okmip.AttributeName(name), AttributeValue: v}
}

func newCSR(t *testing.T, cn string) (*ecdsa.PrivateKey, []byte) {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: cn}}, key)
	if err != nil {
		t.Fatal(err)
	}
	return key, der
}

// getCert fetches a Certificate object and parses it.
func getCert(t *testing.T, w *wireConn, id string) *x509.Certificate {
	t.Helper()
	g := ok[*payloads.GetResponsePayload](w, v14, &payloads.GetRequestPayload{UniqueIdentifier: id})
	c, err := g.X509Certificate()
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// dialWith connects with a given client certificate and key; the
// handshake result is returned rather than checked.
func dialWith(t *testing.T, env *testkms.Env, cert *x509.Certificate, key any, chain ...*x509.Certificate) (*wireConn, error) {
	t.Helper()
	tc := tls.Certificate{Certificate: [][]byte{cert.Raw}, PrivateKey: key, Leaf: cert}
	for _, c := range chain {
		tc.Certificate = append(tc.Certificate, c.Raw)
	}
	c, err := tls.Dial("tcp", env.Addr, &tls.Config{RootCAs: env.Roots, ServerName: "127.0.0.1", Certificates: []tls.Certificate{tc}})
	if err != nil {
		return nil, err
	}
	t.Cleanup(func() { c.Close() })
	w := &wireConn{t: t, conn: c}
	// TLS 1.3 reports a refused client certificate on the first read.
	w.write(ttlv.MarshalTTLV(newRequest(v14, &payloads.QueryRequestPayload{QueryFunction: []okmip.QueryFunction{okmip.QueryFunctionServerInformation}})))
	if _, err := w.readRaw(5 * time.Second); err != nil {
		return nil, err
	}
	return w, nil
}

func TestCertifyFromCSR(t *testing.T) {
	env := startKMS(t, nil)
	admin := dialAdmin(t, env)
	key, csr := newCSR(t, "worker-1")
	for _, tc := range []struct {
		name string
		typ  okmip.CertificateRequestType
		req  []byte
	}{
		{"DER", okmip.CertificateRequestTypePKCS_10, csr},
		{"PEM", okmip.CertificateRequestTypePEM, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: csr})},
	} {
		t.Run(tc.name, func(t *testing.T) {
			admin.t = t
			id := uidOf(t, admin.one(v14, &certifyReq{CertificateRequestType: tc.typ, CertificateRequest: tc.req,
				TemplateAttribute: &okmip.TemplateAttribute{Attribute: []okmip.Attribute{textAttr("x-minikms-role", "app")}}}))
			cert := getCert(t, admin, id)
			tenant, member, role, err := pki.MemberOf(cert)
			if err != nil || tenant != "acme" || member != "worker-1" || role != engine.RoleApp {
				t.Fatalf("identity %s/%s/%s (%v), want acme/worker-1/app", tenant, member, role, err)
			}
			// The new certificate authenticates a new connection as worker-1.
			w, err := dialWith(t, env, cert, key)
			if err != nil {
				t.Fatalf("connecting with the issued certificate: %v", err)
			}
			w.t = t
			cr := ok[*payloads.CreateResponsePayload](w, v14, createAES())
			attrs := ok[*payloads.GetAttributesResponsePayload](admin, v14, &payloads.GetAttributesRequestPayload{UniqueIdentifier: cr.UniqueIdentifier})
			if len(attrs.Attribute) == 0 {
				t.Fatal("the key worker-1 made is not visible to the tenant's admin")
			}
		})
	}
}

func TestCertifyAttributesAndLinks(t *testing.T) {
	env := startKMS(t, nil)
	admin := dialAdmin(t, env)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	spki, _ := x509.MarshalPKIXPublicKey(key.Public())
	pub := ok[*payloads.RegisterResponsePayload](admin, v14, &payloads.RegisterRequestPayload{
		ObjectType: okmip.ObjectTypePublicKey,
		TemplateAttribute: okmip.TemplateAttribute{Attribute: []okmip.Attribute{
			{AttributeName: okmip.AttributeNameName, AttributeValue: okmip.Name{NameValue: "svc-a", NameType: okmip.NameTypeUninterpretedTextString}},
			{AttributeName: okmip.AttributeNameCryptographicUsageMask, AttributeValue: okmip.CryptographicUsageVerify},
		}},
		Object: &okmip.PublicKey{KeyBlock: okmip.KeyBlock{KeyFormatType: okmip.KeyFormatTypeX_509,
			KeyValue: &okmip.KeyValue{Plain: &okmip.PlainKeyValue{KeyMaterial: okmip.KeyMaterial{Bytes: &spki}}}}},
	})
	id := uidOf(t, admin.one(v14, &certifyReq{UniqueIdentifier: pub.UniqueIdentifier}))
	cert := getCert(t, admin, id)
	if _, member, _, _ := pki.MemberOf(cert); member != "svc-a" {
		t.Fatalf("member %q, want svc-a (the public key's Name)", member)
	}
	if !cert.PublicKey.(*ecdsa.PublicKey).Equal(key.Public()) {
		t.Fatal("the certificate is not for the registered key")
	}
	attrs := ok[*payloads.GetAttributesResponsePayload](admin, v14, &payloads.GetAttributesRequestPayload{UniqueIdentifier: id})
	want := map[okmip.AttributeName]bool{"Certificate Type": false, "Certificate Identifier": false, "Certificate Subject": false,
		"Certificate Issuer": false, "X.509 Certificate Identifier": false, "X.509 Certificate Subject": false,
		"X.509 Certificate Issuer": false, "Certificate Length": false, "Digital Signature Algorithm": false}
	var certLinkToKey bool
	for _, a := range attrs.Attribute {
		if _, ok := want[a.AttributeName]; ok {
			want[a.AttributeName] = true
		}
		if l, ok := a.AttributeValue.(okmip.Link); ok && l.LinkType == okmip.LinkTypePublicKeyLink && l.LinkedObjectIdentifier == pub.UniqueIdentifier {
			certLinkToKey = true
		}
	}
	for n, seen := range want {
		if !seen {
			t.Errorf("certificate object lacks %q", n)
		}
	}
	if !certLinkToKey {
		t.Error("the certificate has no Public Key Link to its key")
	}
	keyAttrs := ok[*payloads.GetAttributesResponsePayload](admin, v14, &payloads.GetAttributesRequestPayload{UniqueIdentifier: pub.UniqueIdentifier, AttributeName: []okmip.AttributeName{"Link"}})
	if len(keyAttrs.Attribute) != 1 || keyAttrs.Attribute[0].AttributeValue.(okmip.Link) != (okmip.Link{LinkType: okmip.LinkTypeCertificateLink, LinkedObjectIdentifier: id}) {
		t.Fatalf("public key links %+v, want a Certificate Link to %s", keyAttrs.Attribute, id)
	}

	// Re-certify: same key and identity, new serial, linked both ways.
	id2 := uidOf(t, admin.one(v14, &certifyReq{UniqueIdentifier: id}))
	cert2 := getCert(t, admin, id2)
	if cert2.SerialNumber.Cmp(cert.SerialNumber) == 0 || !cert2.PublicKey.(*ecdsa.PublicKey).Equal(key.Public()) {
		t.Fatal("re-certification did not give a new certificate for the same key")
	}
	if _, member, _, _ := pki.MemberOf(cert2); member != "svc-a" {
		t.Fatalf("re-certified member %q", member)
	}
	old := ok[*payloads.GetAttributesResponsePayload](admin, v14, &payloads.GetAttributesRequestPayload{UniqueIdentifier: id, AttributeName: []okmip.AttributeName{"Link"}})
	var replaced bool
	for _, a := range old.Attribute {
		if a.AttributeValue.(okmip.Link) == (okmip.Link{LinkType: okmip.LinkTypeReplacementObjectLink, LinkedObjectIdentifier: id2}) {
			replaced = true
		}
	}
	if !replaced {
		t.Fatalf("old certificate links %+v lack the Replacement Object link", old.Attribute)
	}
}

func TestCertifyRefusals(t *testing.T) {
	env := startKMS(t, nil)
	admin := dialAdmin(t, env)
	app := dialAs(t, env, "acme", "app", engine.RoleApp)
	_, csr := newCSR(t, "x")
	app.fails(v14, &certifyReq{CertificateRequestType: okmip.CertificateRequestTypePKCS_10, CertificateRequest: csr}, okmip.ResultReasonPermissionDenied)
	bad := append([]byte(nil), csr...)
	bad[len(bad)-3] ^= 0xFF // break the signature
	admin.fails(v14, &certifyReq{CertificateRequestType: okmip.CertificateRequestTypePKCS_10, CertificateRequest: bad}, okmip.ResultReasonInvalidField)
	admin.fails(v14, &certifyReq{CertificateRequestType: okmip.CertificateRequestTypeCRMF, CertificateRequest: csr}, okmip.ResultReasonFeatureNotSupported)
	admin.fails(v14, &certifyReq{}, okmip.ResultReasonMissingData)
	admin.fails(v14, &certifyReq{CertificateRequest: csr, TemplateAttribute: &okmip.TemplateAttribute{Attribute: []okmip.Attribute{textAttr("x-minikms-role", "root")}}}, okmip.ResultReasonInvalidField)
	sym := ok[*payloads.CreateResponsePayload](admin, v14, createAES())
	admin.fails(v14, &certifyReq{UniqueIdentifier: sym.UniqueIdentifier}, okmip.ResultReasonIllegalOperation)
	globex := dialAs(t, env, "globex", "admin", engine.RoleAdmin)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	spki, _ := x509.MarshalPKIXPublicKey(key.Public())
	pub := ok[*payloads.RegisterResponsePayload](admin, v14, &payloads.RegisterRequestPayload{ObjectType: okmip.ObjectTypePublicKey,
		Object: &okmip.PublicKey{KeyBlock: okmip.KeyBlock{KeyFormatType: okmip.KeyFormatTypeX_509, KeyValue: &okmip.KeyValue{Plain: &okmip.PlainKeyValue{KeyMaterial: okmip.KeyMaterial{Bytes: &spki}}}}}})
	globex.fails(v14, &certifyReq{UniqueIdentifier: pub.UniqueIdentifier}, okmip.ResultReasonItemNotFound)
}

func TestRevocationRefusesClients(t *testing.T) {
	env := startKMS(t, nil)
	admin := dialAdmin(t, env)
	key, csr := newCSR(t, "revokee")
	id := uidOf(t, admin.one(v14, &certifyReq{CertificateRequestType: okmip.CertificateRequestTypePKCS_10, CertificateRequest: csr}))
	cert := getCert(t, admin, id)
	live, err := dialWith(t, env, cert, key)
	if err != nil {
		t.Fatalf("before revocation: %v", err)
	}

	// Revoke the certificate object through KMIP: it goes on the CRL.
	ok[*payloads.RevokeResponsePayload](admin, v14, &payloads.RevokeRequestPayload{UniqueIdentifier: id,
		RevocationReason: okmip.RevocationReason{RevocationReasonCode: okmip.RevocationReasonCodeKeyCompromise}})
	crlDER, err := env.Auth.CRL(context.Background(), "acme")
	if err != nil {
		t.Fatal(err)
	}
	crl, err := x509.ParseRevocationList(crlDER)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := env.Auth.Tenant(context.Background(), "acme", false)
	if err := crl.CheckSignatureFrom(ca.Cert); err != nil {
		t.Fatalf("CRL not signed by the tenant CA: %v", err)
	}
	var listed bool
	for _, e := range crl.RevokedCertificateEntries {
		if e.SerialNumber.Cmp(cert.SerialNumber) == 0 && e.ReasonCode == 1 {
			listed = true
		}
	}
	if !listed {
		t.Fatal("the revoked certificate is not on the tenant CRL with reason keyCompromise")
	}

	if err := env.Refresh(); err != nil {
		t.Fatal(err)
	}
	if _, err := dialWith(t, env, cert, key); err == nil {
		t.Fatal("a revoked certificate still opens connections")
	}
	// The connection opened before the revocation is closed at its next request.
	live.write(ttlv.MarshalTTLV(newRequest(v14, &payloads.QueryRequestPayload{QueryFunction: []okmip.QueryFunction{okmip.QueryFunctionServerInformation}})))
	if _, err := live.readRaw(5 * time.Second); err == nil {
		t.Fatal("a connection of a revoked client was served after the revocation")
	}
	// Everyone else is unaffected.
	admin.servesOK()
}

func TestRegisteredExternalClient(t *testing.T) {
	env := startKMS(t, nil)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(7), Subject: pkix.Name{CommonName: "array-01"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth, x509.ExtKeyUsageServerAuth}}
	der, _ := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	cert, _ := x509.ParseCertificate(der)
	if _, err := dialWith(t, env, cert, key); err == nil {
		t.Fatal("an unregistered foreign certificate was accepted")
	}
	if _, err := env.Auth.Tenant(context.Background(), "acme", true); err != nil {
		t.Fatal(err)
	}
	if err := env.Store.RegisterClient(context.Background(), engine.ExternalClient{SPKIHash: pki.SPKIHash(cert), Tenant: "acme", Member: "array-01",
		Role: engine.RoleApp, Subject: cert.Subject.String(), RegisteredAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	if err := env.Refresh(); err != nil {
		t.Fatal(err)
	}
	w, err := dialWith(t, env, cert, key)
	if err != nil {
		t.Fatalf("registered client refused: %v", err)
	}
	w.t = t
	cr := ok[*payloads.CreateResponsePayload](w, v14, createAES())
	admin := dialAdmin(t, env)
	ok[*payloads.GetAttributesResponsePayload](admin, v14, &payloads.GetAttributesRequestPayload{UniqueIdentifier: cr.UniqueIdentifier})
	w.fails(v14, &payloads.DestroyRequestPayload{UniqueIdentifier: cr.UniqueIdentifier}, okmip.ResultReasonPermissionDenied)

	if err := env.Store.UnregisterClient(context.Background(), pki.SPKIHash(cert)); err != nil {
		t.Fatal(err)
	}
	if err := env.Refresh(); err != nil {
		t.Fatal(err)
	}
	if _, err := dialWith(t, env, cert, key); err == nil {
		t.Fatal("a removed registration still opens connections")
	}
}
