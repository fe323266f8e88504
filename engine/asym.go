package engine

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/asn1"
	"encoding/hex"
	"math/big"
	"slices"
	"strings"
)

// Asymmetric objects are stored in one canonical form each: public keys as
// X.509 SubjectPublicKeyInfo, private keys as PKCS#8, certificates as DER.
// Material.DataType records the KMIP Key Format Type they were registered
// in, so Get can answer in it by default.

// Recommended curves (KMIP enumeration values).
const (
	CurveP224 uint32 = 0x04
	CurveP256 uint32 = 0x07
	CurveP384 uint32 = 0x0A
	CurveP521 uint32 = 0x0D
)

// CurveValue is the KMIP Recommended Curve of an elliptic curve, 0 if none.
func CurveValue(c elliptic.Curve) uint32 {
	switch c {
	case elliptic.P224():
		return CurveP224
	case elliptic.P256():
		return CurveP256
	case elliptic.P384():
		return CurveP384
	case elliptic.P521():
		return CurveP521
	}
	if isSecp256k1(c) {
		return CurveSECP256K1
	}
	return 0
}

// CurveByValue is the elliptic curve of a KMIP Recommended Curve value.
func CurveByValue(v uint32) (elliptic.Curve, bool) {
	switch v {
	case CurveP224:
		return elliptic.P224(), true
	case CurveP256:
		return elliptic.P256(), true
	case CurveP384:
		return elliptic.P384(), true
	case CurveP521:
		return elliptic.P521(), true
	case CurveSECP256K1:
		return Secp256k1(), true
	}
	return nil, false
}

// keyShape is what the engine derives from asymmetric key material.
type keyShape struct {
	family Algorithm // AlgRSA or AlgEC (the curve family)
	bits   int32
	curve  uint32
}

func shapeOf(pub crypto.PublicKey) (keyShape, error) {
	switch k := pub.(type) {
	case *rsa.PublicKey:
		if k.N.BitLen() < 1024 {
			return keyShape{}, errf(ErrInvalidField, "RSA keys shorter than 1024 bits are refused")
		}
		return keyShape{family: AlgRSA, bits: int32(k.N.BitLen())}, nil
	case *ecdsa.PublicKey:
		c := CurveValue(k.Curve)
		if c == 0 {
			return keyShape{}, errf(ErrNotSupported, "elliptic curve %s is not supported (P-224, P-256, P-384, P-521 and secp256k1 are)", k.Curve.Params().Name)
		}
		return keyShape{family: AlgEC, bits: int32(k.Curve.Params().BitSize), curve: c}, nil
	case ed25519.PublicKey:
		return keyShape{}, errf(ErrNotSupported, "Ed25519 keys are not supported")
	}
	return keyShape{}, errf(ErrNotSupported, "unsupported public key type %T", pub)
}

// algorithmFits reports whether a client's Cryptographic Algorithm names
// the family of the key.
func algorithmFits(alg Algorithm, family Algorithm) bool {
	switch family {
	case AlgRSA:
		return alg == AlgRSA
	case AlgEC:
		return alg == AlgECDSA || alg == AlgEC || alg == 0x0E || alg == 0x0F // ECDH, ECMQV
	}
	return false
}

// describeAsymmetric validates registered asymmetric material and returns
// the attributes it implies.
func describeAsymmetric(t ObjectType, m Material) (keyShape, []byte, error) {
	switch t {
	case TypePublicKey:
		if m.Format != FormatSPKI {
			return keyShape{}, nil, errf(ErrKeyFormatNotSupported, "public keys are stored as SubjectPublicKeyInfo")
		}
		pub, err := ParsePKIXPublicKey(m.Bytes)
		if err != nil {
			return keyShape{}, nil, errf(ErrInvalidField, "the public key does not parse")
		}
		s, err := shapeOf(pub)
		return s, m.Bytes, err
	case TypePrivateKey:
		if m.Format != FormatPKCS8 {
			return keyShape{}, nil, errf(ErrKeyFormatNotSupported, "private keys are stored as PKCS#8")
		}
		k, err := ParsePKCS8PrivateKey(m.Bytes)
		if err != nil {
			return keyShape{}, nil, errf(ErrInvalidField, "the private key does not parse")
		}
		signer, ok := k.(crypto.Signer)
		if !ok {
			return keyShape{}, nil, errf(ErrNotSupported, "unsupported private key type %T", k)
		}
		if rk, ok := k.(*rsa.PrivateKey); ok {
			if err := rk.Validate(); err != nil {
				return keyShape{}, nil, errf(ErrInvalidField, "the RSA private key is inconsistent")
			}
		}
		s, err := shapeOf(signer.Public())
		return s, nil, err
	case TypeCertificate:
		if m.Format != FormatX509 {
			return keyShape{}, nil, errf(ErrKeyFormatNotSupported, "certificates are stored as X.509 DER")
		}
		c, err := ParseCertificate(m.Bytes)
		if err != nil {
			return keyShape{}, nil, errf(ErrInvalidField, "the certificate does not parse")
		}
		s, err := shapeOf(c.PublicKey)
		return s, nil, err
	}
	return keyShape{}, nil, errf(ErrNotSupported, "not an asymmetric object type")
}

// Digital Signature Algorithm values (KMIP).
var signatureAlgorithms = map[x509.SignatureAlgorithm]Enum{
	x509.MD5WithRSA: 0x02, x509.SHA1WithRSA: 0x03, x509.SHA256WithRSA: 0x05, x509.SHA384WithRSA: 0x06,
	x509.SHA512WithRSA: 0x07, x509.SHA256WithRSAPSS: 0x08, x509.SHA384WithRSAPSS: 0x08, x509.SHA512WithRSAPSS: 0x08,
	x509.DSAWithSHA1: 0x09, x509.DSAWithSHA256: 0x0B, x509.ECDSAWithSHA1: 0x0C, x509.ECDSAWithSHA256: 0x0E,
	x509.ECDSAWithSHA384: 0x0F, x509.ECDSAWithSHA512: 0x10,
}

// certificateAttributes sets the attributes KMIP derives from a
// certificate: type, length, identifiers, subject, issuer (1.0 text forms
// and 1.1 X.509 forms), signature algorithm, key algorithm and length.
func certificateAttributes(o *Object, der []byte) error {
	c, err := ParseCertificate(der)
	if err != nil {
		return errf(ErrInvalidField, "the certificate does not parse")
	}
	serial := hex.EncodeToString(c.SerialNumber.Bytes())
	if serial == "" {
		serial = "00"
	}
	if v, ok := o.Attrs.First(AttrCertificateType); ok && v.(Enum) != Enum(0x01) {
		return errf(ErrInvalidField, "Certificate Type 0x%X given for an X.509 certificate", uint32(v.(Enum)))
	}
	o.Attrs.Set(AttrCertificateType, Enum(0x01)) // X.509
	o.Attrs.Set(AttrCertificateLength, int32(len(der)))
	o.Attrs.Set(AttrCertificateIdentifier, CertificateIdentifier{Issuer: c.Issuer.String(), SerialNumber: strings.ToUpper(serial)})
	o.Attrs.Set(AttrCertificateSubject, CertificateSubject{CertificateSubjectDistinguishedName: c.Subject.String(), CertificateSubjectAlternativeName: altNames(c)})
	o.Attrs.Set(AttrCertificateIssuer, CertificateIssuer{CertificateIssuerDistinguishedName: c.Issuer.String()})
	// The parsed certificate aliases der, which the caller may clear:
	// attribute values get their own copies.
	// The serial number is its DER INTEGER, as the Issuer is its DER Name
	// (so a negative or zero-led serial is carried exactly; this is what
	// the OASIS reference servers answer).
	serialDER, err := asn1.Marshal(c.SerialNumber)
	if err != nil {
		return errf(ErrInvalidField, "the certificate's serial number cannot be encoded")
	}
	o.Attrs.Set(AttrX509CertificateIdentifier, X509CertificateIdentifier{IssuerDistinguishedName: slices.Clone(c.RawIssuer), CertificateSerialNumber: serialDER})
	o.Attrs.Set(AttrX509CertificateSubject, X509CertificateSubject{SubjectDistinguishedName: slices.Clone(c.RawSubject)})
	o.Attrs.Set(AttrX509CertificateIssuer, X509CertificateIssuer{IssuerDistinguishedName: slices.Clone(c.RawIssuer)})
	if alg, ok := signatureAlgorithms[c.SignatureAlgorithm]; ok {
		o.Attrs.Set(AttrDigitalSignatureAlgorithm, alg)
	}
	if s, err := shapeOf(c.PublicKey); err == nil {
		alg := s.family
		if alg == AlgEC {
			alg = AlgECDSA
		}
		o.Attrs.Set(AttrCryptographicAlgorithm, alg)
		o.Attrs.Set(AttrCryptographicLength, s.bits)
	}
	return nil
}

func altNames(c *x509.Certificate) []string {
	var out []string
	out = append(out, c.DNSNames...)
	out = append(out, c.EmailAddresses...)
	for _, ip := range c.IPAddresses {
		out = append(out, ip.String())
	}
	for _, u := range c.URIs {
		out = append(out, u.String())
	}
	return out
}

// digestOf is the default Digest of material: SHA-256 over the bytes in
// the format they were registered in.
func digestOf(b []byte, keyFormat uint32) Digest {
	sum := sha256.Sum256(b)
	return Digest{HashingAlgorithm: HashSHA256, DigestValue: sum[:], KeyFormatType: keyFormat}
}

// SerialHex formats a certificate serial as the engine records it.
func SerialHex(n *big.Int) string { return n.Text(16) }
