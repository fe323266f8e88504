package kmip

import (
	"context"
	"crypto"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"time"

	"github.com/minikms/minikms/engine"
	"github.com/ovh/kmip-go"
)

// Certifier signs member certificates with the caller's tenant CA and
// revokes them (implemented by pki.Authority).
type Certifier interface {
	CertifyMember(ctx context.Context, tenant, member string, role engine.Role, pub crypto.PublicKey, subject *pkix.Name) (*x509.Certificate, error)
	RevokeIssued(ctx context.Context, tenant string, c *x509.Certificate, reason int) error
	// MemberOf reads the identity a member certificate carries.
	MemberOf(c *x509.Certificate) (tenant, member string, role engine.Role, err error)
}

// Custom attributes of a Certify request that name the identity of the
// certificate: the member id (default: the subject's Common Name) and the
// role (default app). They describe the certificate, not the object, and
// are not stored on it.
const (
	attrCertMember = "x-minikms-member"
	attrCertRole   = "x-minikms-role"
)

// maxCSRSize bounds a certificate request.
const maxCSRSize = 64 << 10

// certifyRequest is the KMIP Certify payload (the codec has none).
type certifyRequest struct {
	UniqueIdentifier       string                      `ttlv:",omitempty"`
	CertificateRequestType kmip.CertificateRequestType `ttlv:",omitempty"`
	CertificateRequest     []byte                      `ttlv:",omitempty"`
	TemplateAttribute      *kmip.TemplateAttribute
}

// recertifyRequest is the KMIP Re-certify payload.
type recertifyRequest struct {
	UniqueIdentifier       string                      `ttlv:",omitempty"`
	CertificateRequestType kmip.CertificateRequestType `ttlv:",omitempty"`
	CertificateRequest     []byte                      `ttlv:",omitempty"`
	Offset                 *time.Duration
	TemplateAttribute      *kmip.TemplateAttribute
}

type certifyResponse struct {
	UniqueIdentifier  string
	TemplateAttribute *kmip.TemplateAttribute
}

func (*certifyResponse) Operation() kmip.Operation { return kmip.OperationCertify }

type recertifyResponse struct {
	UniqueIdentifier  string
	TemplateAttribute *kmip.TemplateAttribute
}

func (*recertifyResponse) Operation() kmip.Operation { return kmip.OperationReCertify }

func handleCertify(ctx context.Context, s *session, req *certifyRequest) (kmip.OperationPayload, error) {
	id, err := s.certify(ctx, req.UniqueIdentifier, req.CertificateRequestType, req.CertificateRequest, req.TemplateAttribute)
	if err != nil {
		return nil, err
	}
	return &certifyResponse{UniqueIdentifier: id}, nil
}

func handleRecertify(ctx context.Context, s *session, req *recertifyRequest) (kmip.OperationPayload, error) {
	if req.Offset != nil && *req.Offset != 0 {
		return nil, errReason(kmip.ResultReasonFeatureNotSupported, "Re-certify with an Offset is not supported: validity comes from the tenant CA's policy")
	}
	uid, err := s.id(req.UniqueIdentifier)
	if err != nil {
		return nil, err
	}
	id, err := s.certify(ctx, uid, req.CertificateRequestType, req.CertificateRequest, req.TemplateAttribute)
	if err != nil {
		return nil, err
	}
	return &recertifyResponse{UniqueIdentifier: id}, nil
}

// certify issues a member certificate signed by the caller's tenant CA:
// for a PKCS#10 request, for the public key of a managed object, or again
// for the key and identity of an existing certificate (re-certify).
func (s *session) certify(ctx context.Context, uid string, reqType kmip.CertificateRequestType, csrBytes []byte, tmpl *kmip.TemplateAttribute) (string, error) {
	if s.srv.cfg.Certifier == nil {
		return "", errReason(kmip.ResultReasonOperationNotSupported, "this server has no certificate authority")
	}
	if err := engine.Authorize(s.p, engine.OpCertify); err != nil {
		return "", err
	}
	names, attrs, err := templateAttrs(tmpl)
	if err != nil {
		return "", err
	}
	if len(names) > 0 {
		return "", errReason(kmip.ResultReasonFeatureNotSupported, "Certify does not take template references")
	}
	member, role, attrs, err := certIdentity(attrs)
	if err != nil {
		return "", err
	}
	var (
		pub      crypto.PublicKey
		subject  *pkix.Name
		keyID    string
		replaces string
	)
	if len(csrBytes) > 0 {
		csr, err := parseCSR(reqType, csrBytes)
		if err != nil {
			return "", err
		}
		pub, subject = csr.PublicKey, &csr.Subject
		if member == "" {
			member = csr.Subject.CommonName
		}
	}
	if uid == "" && pub == nil {
		uid = s.placeholder
	}
	if uid == "" && pub == nil {
		return "", errReason(kmip.ResultReasonMissingData, "Certify needs a Certificate Request or the Unique Identifier of a public key or certificate")
	}
	if uid != "" {
		o, key, old, err := s.eng.PublicKeyOf(ctx, s.p, uid)
		if err != nil {
			return "", err
		}
		if pub == nil {
			pub = key
		} else if k, ok := key.(interface{ Equal(crypto.PublicKey) bool }); !ok || !k.Equal(pub) {
			return "", errReason(kmip.ResultReasonInvalidField, "the certificate request is for another key than the object it names")
		}
		if old != nil {
			// Re-certify: same key, same identity, a new serial.
			replaces = o.ID
			if _, m, r, err := s.srv.cfg.Certifier.MemberOf(old); err == nil {
				if member == "" {
					member = m
				}
				if role == "" {
					role = r
				}
			}
			if subject == nil {
				subject = &old.Subject
			}
		} else {
			if o.Type == engine.TypePublicKey {
				keyID = o.ID
			}
			if member == "" {
				if n := o.Attrs.NameValues(); len(n) > 0 {
					member = n[0]
				}
			}
		}
	}
	if member == "" {
		return "", errReason(kmip.ResultReasonMissingData, "the certificate needs a member id: set "+attrCertMember+" or a subject Common Name")
	}
	if role == "" {
		role = engine.RoleApp
	}
	cert, err := s.srv.cfg.Certifier.CertifyMember(ctx, s.p.Tenant, member, role, pub, subject)
	if err != nil {
		return "", errReason(kmip.ResultReasonInvalidField, "the certificate cannot be issued: "+err.Error())
	}
	o, err := s.eng.RecordCertificate(ctx, s.p, engine.CertificateRecord{DER: cert.Raw, Attrs: attrs, KeyID: keyID, Replaces: replaces})
	if err != nil {
		return "", err
	}
	s.setPlaceholder(o.ID)
	return o.ID, nil
}

// certIdentity takes the identity attributes out of a Certify template.
func certIdentity(attrs []engine.Attribute) (member string, role engine.Role, rest []engine.Attribute, err error) {
	for _, a := range attrs {
		switch a.Name {
		case attrCertMember, attrCertRole:
			it, ok := a.Value.(engine.Item)
			if !ok || it.Kind != engine.KindTextString {
				return "", "", nil, errReason(kmip.ResultReasonInvalidField, a.Name+" must be a text string")
			}
			if a.Name == attrCertMember {
				member = it.Text
			} else {
				role = engine.Role(it.Text)
				if !role.Valid() {
					return "", "", nil, errReason(kmip.ResultReasonInvalidField, attrCertRole+" must be admin, app or auditor")
				}
			}
		default:
			rest = append(rest, a)
		}
	}
	return member, role, rest, nil
}

// parseCSR decodes and checks a PKCS#10 request (DER, or PEM).
func parseCSR(t kmip.CertificateRequestType, b []byte) (*x509.CertificateRequest, error) {
	if len(b) > maxCSRSize {
		return nil, errReason(kmip.ResultReasonInvalidField, "the certificate request is too large")
	}
	switch t {
	case kmip.CertificateRequestTypePKCS_10, 0:
	case kmip.CertificateRequestTypePEM:
		blk, _ := pem.Decode(b)
		if blk == nil || blk.Type != "CERTIFICATE REQUEST" && blk.Type != "NEW CERTIFICATE REQUEST" {
			return nil, errReason(kmip.ResultReasonInvalidField, "the PEM certificate request has no CERTIFICATE REQUEST block")
		}
		b = blk.Bytes
	default:
		return nil, errReason(kmip.ResultReasonFeatureNotSupported, "only PKCS#10 certificate requests (DER or PEM) are supported")
	}
	csr, err := x509.ParseCertificateRequest(b)
	if err != nil {
		return nil, errReason(kmip.ResultReasonInvalidField, "the certificate request does not parse: "+err.Error())
	}
	if err := csr.CheckSignature(); err != nil {
		return nil, errReason(kmip.ResultReasonInvalidField, "the certificate request's signature does not verify")
	}
	return csr, nil
}
