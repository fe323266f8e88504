package loadgen

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/ovh/kmip-go"
)

// certifyPayload is a KMIP Certify request for a PKCS#10 certificate
// request (ovh/kmip-go has no Certify payload).
type certifyPayload struct {
	CertificateRequestType kmip.CertificateRequestType
	CertificateRequest     []byte
	TemplateAttribute      *kmip.TemplateAttribute
}

func (*certifyPayload) Operation() kmip.Operation { return kmip.OperationCertify }

// benchCSR makes a PKCS#10 request for a new P-256 key. The subject's
// Common Name, which miniKMS takes as the member id of the certificate,
// is unique: "minikms-bench-<16 hex digits>". The private key is dropped:
// the certificates are only measured, never used.
func benchCSR() ([]byte, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	id := make([]byte, 8)
	if _, err := rand.Read(id); err != nil {
		return nil, err
	}
	tmpl := &x509.CertificateRequest{Subject: pkix.Name{CommonName: benchGroup + "-" + hex.EncodeToString(id)}}
	return x509.CreateCertificateRequest(rand.Reader, tmpl, key)
}

// certifyRequest is the certify operation: every send is a Certify of a
// fresh CSR (new key, new member id), tagged with the bench Object Group
// so the certificates can be located and destroyed afterwards. The client
// makes the CSR before the operation's clock starts.
func certifyRequest(v kmip.ProtocolVersion) *request {
	tmpl := &kmip.TemplateAttribute{Attribute: []kmip.Attribute{{AttributeName: kmip.AttributeNameObjectGroup, AttributeValue: benchGroup}}}
	return &request{
		op: kmip.OperationCertify,
		fresh: func() ([]byte, error) {
			csr, err := benchCSR()
			if err != nil {
				return nil, fmt.Errorf("making a certificate request: %w", err)
			}
			return encodeRequest(v, &certifyPayload{CertificateRequestType: kmip.CertificateRequestTypePKCS_10, CertificateRequest: csr, TemplateAttribute: tmpl}), nil
		},
		check: checkCreated,
	}
}

// once sends one request of q on the setup connection and checks its
// answer as a worker would.
func (s *setupConn) once(q *request) error {
	raw, err := q.bytes()
	if err != nil {
		return err
	}
	s.conn.SetDeadline(time.Now().Add(s.timeout))
	if _, err := s.conn.Write(raw); err != nil {
		return err
	}
	if s.buf, err = readFrame(s.conn, s.buf); err != nil {
		return err
	}
	return q.verify(s.buf)
}

// certifyHint explains the usual refusal of Certify.
func certifyHint(err error) string {
	var re *resultError
	if errors.As(err, &re) && re.reason == kmip.ResultReasonPermissionDenied {
		return " (Certify needs a member with the admin role; from a dev bundle: --member admin)"
	}
	return ""
}
