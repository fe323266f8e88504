package loadgen

import (
	"bytes"
	"context"
	"crypto/x509"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/minikms/minikms/engine"
	"github.com/minikms/minikms/internal/testkms"
	"github.com/ovh/kmip-go"
	"github.com/ovh/kmip-go/payloads"
	"github.com/ovh/kmip-go/ttlv"
)

// benchCertificates locates the certificates the bench issued in tenant
// acme and returns them parsed.
func benchCertificates(t *testing.T, env *testkms.Env) []*x509.Certificate {
	t.Helper()
	cfg := shortRun(t, env, OpCertify)
	conn, err := dial(context.Background(), cfg, cfg.TLS)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	s := &setupConn{conn: conn, version: kmip.V1_4, timeout: 10 * time.Second}
	loc, err := callAs[*payloads.LocateResponsePayload](s, &payloads.LocateRequestPayload{Attribute: []kmip.Attribute{
		{AttributeName: kmip.AttributeNameObjectType, AttributeValue: kmip.ObjectTypeCertificate},
		{AttributeName: kmip.AttributeNameObjectGroup, AttributeValue: benchGroup},
	}})
	if err != nil {
		t.Fatal(err)
	}
	var out []*x509.Certificate
	for _, id := range loc.UniqueIdentifier {
		got, err := callAs[*payloads.GetResponsePayload](s, &payloads.GetRequestPayload{UniqueIdentifier: id})
		if err != nil {
			t.Fatalf("Get %s: %v", id, err)
		}
		c, ok := got.Object.(*kmip.Certificate)
		if !ok {
			t.Fatalf("Get %s: a %T, want a certificate", id, got.Object)
		}
		cert, err := x509.ParseCertificate(c.CertificateValue)
		if err != nil {
			t.Fatalf("certificate %s: %v", id, err)
		}
		out = append(out, cert)
	}
	return out
}

// TestRunCertify: every operation is a Certify of a new P-256 key; the
// certificates are stored in the bench group, chain to the tenant CA and
// all certify different keys and members.
func TestRunCertify(t *testing.T) {
	env := testkms.Start(t, testkms.Options{})
	for _, pipeline := range []int{1, 3} {
		cfg := shortRun(t, env, OpCertify)
		cfg.Pipeline = pipeline
		res, err := Run(context.Background(), cfg)
		if err != nil {
			t.Fatalf("pipeline %d: %v (samples %v)", pipeline, err, res.ErrorSamples)
		}
		checkResult(t, res)
		if res.Op != OpCertify || res.Size != 0 {
			t.Fatalf("result describes %s with a %d-byte payload", res.Op, res.Size)
		}
	}

	certs := benchCertificates(t, env)
	ca, err := env.Auth.Tenant(context.Background(), "acme", false)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(ca.Cert)
	keys := map[string]bool{}
	members := map[string]bool{}
	for _, c := range certs {
		if _, err := c.Verify(x509.VerifyOptions{Roots: roots, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err != nil {
			t.Fatalf("certificate %s does not chain to acme's CA: %v", c.Subject, err)
		}
		if !strings.HasPrefix(c.Subject.CommonName, benchGroup+"-") {
			t.Fatalf("subject %q", c.Subject)
		}
		der, err := x509.MarshalPKIXPublicKey(c.PublicKey)
		if err != nil {
			t.Fatal(err)
		}
		keys[string(der)] = true
		members[c.Subject.CommonName] = true
	}
	// The two runs' setup Certify and every counted operation left one.
	if len(certs) < 10 {
		t.Fatalf("%d certificates in the bench group", len(certs))
	}
	if len(keys) != len(certs) || len(members) != len(certs) {
		t.Fatalf("%d certificates for %d keys and %d members: a CSR was reused", len(certs), len(keys), len(members))
	}
}

// TestRunCertifyNeedsAdmin: an app member may not Certify; the setup says
// so before any load, with the way out.
func TestRunCertifyNeedsAdmin(t *testing.T) {
	env := testkms.Start(t, testkms.Options{})
	cfg := shortRun(t, env, OpCertify)
	cfg.TLS = env.ClientTLS(t, "acme", "app", engine.RoleApp)
	cfg.Duration = 10 * time.Second
	start := time.Now()
	_, err := Run(context.Background(), cfg)
	if err == nil {
		t.Fatal("an app member certified")
	}
	for _, want := range []string{"setup: a first Certify", "PermissionDenied", "admin role"} {
		if !strings.Contains(err.Error(), want) {
			t.Fatalf("error %q does not say %q", err, want)
		}
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Fatalf("failed only after %v", took)
	}
}

// TestCertifyRequestsAreFresh: each send is a new, well-formed Certify of
// a PKCS#10 request for a new P-256 key, signed by it.
func TestCertifyRequestsAreFresh(t *testing.T) {
	q := certifyRequest(kmip.V1_2)
	if q.op != kmip.OperationCertify || q.raw != nil {
		t.Fatalf("request %+v", q)
	}
	var prev []byte
	for range 3 {
		raw, err := q.bytes()
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Equal(raw, prev) {
			t.Fatal("the same request twice")
		}
		prev = raw
		var msg struct {
			RequestHeader kmip.RequestHeader
			BatchItem     struct {
				Operation      kmip.Operation
				RequestPayload certifyPayload
			}
		}
		dec, err := ttlv.NewTTLVDecoder(raw)
		if err == nil {
			err = dec.TagAny(kmip.TagRequestMessage, &msg)
		}
		if err != nil {
			t.Fatalf("the request does not decode: %v", err)
		}
		if msg.RequestHeader.ProtocolVersion != kmip.V1_2 || msg.RequestHeader.TimeStamp != nil || msg.BatchItem.Operation != kmip.OperationCertify {
			t.Fatalf("request header %+v / %v", msg.RequestHeader, msg.BatchItem.Operation)
		}
		pl := msg.BatchItem.RequestPayload
		if pl.CertificateRequestType != kmip.CertificateRequestTypePKCS_10 || pl.TemplateAttribute == nil ||
			len(pl.TemplateAttribute.Attribute) != 1 || pl.TemplateAttribute.Attribute[0].AttributeValue != benchGroup {
			t.Fatalf("payload %+v", pl)
		}
		csr, err := x509.ParseCertificateRequest(pl.CertificateRequest)
		if err != nil {
			t.Fatal(err)
		}
		if err := csr.CheckSignature(); err != nil || csr.PublicKeyAlgorithm != x509.ECDSA || csr.SignatureAlgorithm != x509.ECDSAWithSHA256 {
			t.Fatalf("CSR %v %v: %v", csr.PublicKeyAlgorithm, csr.SignatureAlgorithm, err)
		}
	}
}

// A request the client fails to make is counted as the client's, and does
// not cost the connection (nothing was sent).
func TestClientErrorKind(t *testing.T) {
	q := &request{op: kmip.OperationCertify, fresh: func() ([]byte, error) { return nil, errors.New("no entropy") }}
	_, err := q.bytes()
	if err == nil || errorKind(err) != "client: making the request" || fatalForConn(err) {
		t.Fatalf("error %v: kind %q, fatal %v", err, errorKind(err), fatalForConn(err))
	}
	if fatalForConn(&resultError{status: kmip.ResultStatusOperationFailed}) != false || !fatalForConn(protoErr("bad framing", "x")) {
		t.Fatal("fatalForConn changed for KMIP and protocol errors")
	}
}
