package engine

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/rsa"
	_ "crypto/sha1" // SHA-1: verification of legacy signatures, OAEP default
	_ "crypto/sha256"
	_ "crypto/sha512"
	"crypto/x509"
	"errors"
	"fmt"
)

// Sign and Signature Verify (KMIP 1.2+): RSA PKCS#1 v1.5 and RSA-PSS, and
// ECDSA (signatures DER-encoded, as X.509 and the OASIS vectors use them),
// with SHA-224, SHA-256, SHA-384 or SHA-512. SHA-1 is accepted to verify
// legacy signatures, never to make new ones.
//
// The scheme comes from the request's Cryptographic Parameters, else from
// the key's Cryptographic Parameters attribute, else from defaults: PKCS#1
// v1.5 with SHA-256 for RSA; for ECDSA, the hash that matches the curve
// (SHA-256 up to P-256, SHA-384 for P-384, SHA-512 for P-521). A Digital
// Signature Algorithm names both at once and must agree with the rest.
// Padding Method does not apply to ECDSA and is ignored for EC keys, as the
// OASIS test cases do (CS-AC-M-3-ECC sends PSS to an ECDSA key).
//
// Sign needs an Active private key whose Usage Mask has Sign; Signature
// Verify a public key (or certificate) that is Active, Deactivated or
// Compromised with Verify in its mask. A signature that does not verify
// is a successful Signature Verify answering Invalid.

// OpSign and OpSignatureVerify are the signature operations.
const (
	OpSign            Op = "Sign"
	OpSignatureVerify Op = "SignatureVerify"
)

// Mask Generator (KMIP 1.4).
const maskGeneratorMGF1 = 0x01

// SignRequest is a KMIP Sign.
type SignRequest struct {
	ID     string
	Params *CryptographicParameters
	// Data is the message; DigestedData its digest (KMIP 1.4). Exactly one
	// is given.
	Data         []byte
	DigestedData []byte
}

// VerifyRequest is a KMIP Signature Verify.
type VerifyRequest struct {
	ID           string
	Params       *CryptographicParameters
	Data         []byte
	DigestedData []byte
	Signature    []byte
}

// Sign signs with a private key of the caller's tenant and returns the
// key's identity and the signature.
func (e *Engine) Sign(ctx context.Context, p Principal, req SignRequest) (*Object, []byte, error) {
	if err := authorize(p, OpSign); err != nil {
		return nil, nil, err
	}
	c, key, err := e.asymmetricKey(ctx, p, req.ID, UsageSign)
	if err != nil {
		return nil, nil, err
	}
	priv, ok := key.(crypto.Signer)
	if !ok {
		return nil, nil, fmt.Errorf("object %s: private key of type %T cannot sign", c.obj.ID, key)
	}
	s, err := signatureScheme(c.obj, priv.Public(), e.params(c.obj, req.Params), true)
	if err != nil {
		return nil, nil, err
	}
	digest, err := s.digest(req.Data, req.DigestedData)
	if err != nil {
		return nil, nil, err
	}
	if err := e.consumeUsage(ctx, c.obj, len(req.Data)+len(req.DigestedData)); err != nil {
		return nil, nil, err
	}
	var sig []byte
	switch k := priv.(type) {
	case *rsa.PrivateKey:
		if s.pss {
			sig, err = rsa.SignPSS(rand.Reader, k, s.hash, digest, &rsa.PSSOptions{SaltLength: s.salt, Hash: s.hash})
		} else {
			sig, err = rsa.SignPKCS1v15(rand.Reader, k, s.hash, digest)
		}
	case *ecdsa.PrivateKey:
		sig, err = ecdsa.SignASN1(rand.Reader, k, digest)
	default:
		return nil, nil, errf(ErrNotSupported, "signing with this kind of private key is not supported")
	}
	if err != nil {
		if errors.Is(err, rsa.ErrMessageTooLong) {
			return nil, nil, errf(ErrInvalidField, "the key is too short for this hash and salt length")
		}
		return nil, nil, fmt.Errorf("sign with object %s: %w", c.obj.ID, err)
	}
	return c.obj.ref(), sig, nil
}

// SignatureVerify checks a signature with a public key (or certificate)
// of the caller's tenant. valid is false for a signature that does not
// verify, which is not an error.
func (e *Engine) SignatureVerify(ctx context.Context, p Principal, req VerifyRequest) (o *Object, valid bool, err error) {
	if err := authorize(p, OpSignatureVerify); err != nil {
		return nil, false, err
	}
	c, key, err := e.asymmetricKey(ctx, p, req.ID, UsageVerify)
	if err != nil {
		return nil, false, err
	}
	s, err := signatureScheme(c.obj, key, e.params(c.obj, req.Params), false)
	if err != nil {
		return nil, false, err
	}
	digest, err := s.digest(req.Data, req.DigestedData)
	if err != nil {
		return nil, false, err
	}
	if req.Signature == nil {
		return nil, false, errf(ErrMissingData, "Signature Verify needs the Signature Data")
	}
	switch k := key.(type) {
	case *rsa.PublicKey:
		if s.pss {
			valid = rsa.VerifyPSS(k, s.hash, digest, req.Signature, &rsa.PSSOptions{SaltLength: s.salt, Hash: s.hash}) == nil
		} else {
			valid = rsa.VerifyPKCS1v15(k, s.hash, digest, req.Signature) == nil
		}
	case *ecdsa.PublicKey:
		valid = ecdsa.VerifyASN1(k, digest, req.Signature)
	default:
		return nil, false, errf(ErrNotSupported, "verifying with this kind of public key is not supported")
	}
	return c.obj.ref(), valid, nil
}

// params are the request's parameters, else the key's attribute.
func (e *Engine) params(o *Object, req *CryptographicParameters) CryptographicParameters {
	if req != nil {
		return *req
	}
	if v, ok := o.Attrs.First(AttrCryptographicParameters); ok {
		return v.(CryptographicParameters)
	}
	return CryptographicParameters{}
}

// asymmetricKey loads the key of an asymmetric operation, checks its type,
// state and usage mask for use, and returns it parsed: a private key for
// Sign and Decrypt, a public key for Verify (public key or certificate
// object) and Encrypt (public key object).
func (e *Engine) asymmetricKey(ctx context.Context, p Principal, id string, use UsageMask) (*cachedObject, any, error) {
	c, err := e.load(ctx, p.Tenant, id)
	if err != nil {
		return nil, nil, err
	}
	o := c.obj
	switch use {
	case UsageSign, UsageDecrypt:
		if o.Type != TypePrivateKey {
			return nil, nil, errf(ErrIllegalOperation, "%s objects cannot %s; a private key can", o.Type, useVerb(use))
		}
	case UsageVerify:
		if o.Type != TypePublicKey && o.Type != TypeCertificate {
			if o.Type == TypePrivateKey {
				return nil, nil, errf(ErrIllegalOperation, "signatures are verified with the public key of the pair, not the private key")
			}
			return nil, nil, errf(ErrIllegalOperation, "%s objects cannot verify signatures; a public key or a certificate can", o.Type)
		}
	case UsageEncrypt:
		if o.Type != TypePublicKey {
			if o.Type == TypePrivateKey {
				return nil, nil, errf(ErrIllegalOperation, "RSA encryption uses the public key of the pair; the private key decrypts")
			}
			return nil, nil, errf(ErrIllegalOperation, "%s objects cannot encrypt here", o.Type)
		}
	}
	now := e.now()
	st := o.EffectiveState(now)
	switch use {
	case UsageSign, UsageEncrypt: // protect
		if st != StateActive {
			return nil, nil, errf(ErrWrongState, "the key is %s; only an Active key can %s", st, useVerb(use))
		}
		if ps := o.Attrs.Time(AttrProtectStopDate); !ps.IsZero() && !now.Before(ps) {
			return nil, nil, errf(ErrWrongState, "the key's Protect Stop Date has passed")
		}
	default: // process
		if st != StateActive && st != StateDeactivated && st != StateCompromised {
			return nil, nil, errf(ErrWrongState, "the key is %s; it cannot %s", st, useVerb(use))
		}
		if ps := o.Attrs.Time(AttrProcessStartDate); !ps.IsZero() && now.Before(ps) {
			return nil, nil, errf(ErrWrongState, "the key's Process Start Date has not come")
		}
	}
	if o.Attrs.UsageMask()&use == 0 {
		return nil, nil, errf(ErrPermissionDenied, "the key's Cryptographic Usage Mask does not allow %s", useVerb(use))
	}
	k, err := e.key(ctx, c)
	if err != nil {
		return nil, nil, err
	}
	m, err := k.copyMaterial()
	if err != nil {
		return nil, nil, err
	}
	var key any
	switch o.Type {
	case TypePrivateKey:
		key, err = ParsePKCS8PrivateKey(m.Bytes)
		clear(m.Bytes)
	case TypePublicKey:
		key, err = ParsePKIXPublicKey(m.Bytes)
	case TypeCertificate:
		var cert *x509.Certificate
		if cert, err = ParseCertificate(m.Bytes); err == nil {
			key = cert.PublicKey
		}
	}
	if err != nil {
		return nil, nil, fmt.Errorf("object %s: stored key does not parse: %w", o.ID, err)
	}
	return c, key, nil
}

func useVerb(use UsageMask) string {
	switch use {
	case UsageSign:
		return "sign"
	case UsageVerify:
		return "verify signatures"
	case UsageEncrypt:
		return "encrypt"
	case UsageDecrypt:
		return "decrypt"
	}
	return "be used so"
}

// sigScheme is a resolved signature scheme.
type sigScheme struct {
	hash crypto.Hash
	pss  bool
	// salt is the PSS salt length in Go's convention (PSSSaltLengthAuto,
	// PSSSaltLengthEqualsHash or a length).
	salt int
}

// digest returns the digest to sign or verify: of Data, or Digested Data
// as given.
func (s sigScheme) digest(data, digested []byte) ([]byte, error) {
	switch {
	case data != nil && digested != nil:
		return nil, errf(ErrInvalidMessage, "give Data or Digested Data, not both")
	case digested != nil:
		if len(digested) != s.hash.Size() {
			return nil, errf(ErrInvalidField, "Digested Data is %d bytes; a %s digest is %d", len(digested), s.hash, s.hash.Size())
		}
		return digested, nil
	case data == nil:
		return nil, errf(ErrMissingData, "Data or Digested Data is required")
	case len(data) > MaxDataSize:
		return nil, errf(ErrLimit, "data larger than %d bytes", MaxDataSize)
	}
	h := s.hash.New()
	h.Write(data)
	return h.Sum(nil), nil
}

// signatureHashes are the KMIP hashing algorithms of signatures.
var signatureHashes = map[HashAlgorithm]crypto.Hash{
	HashSHA1: crypto.SHA1, HashSHA224: crypto.SHA224, HashSHA256: crypto.SHA256,
	HashSHA384: crypto.SHA384, HashSHA512: crypto.SHA512,
}

// digitalSignatureAlgorithms maps the KMIP Digital Signature Algorithm
// values the server implements to family, padding and hash.
var digitalSignatureAlgorithms = map[uint32]struct {
	family Algorithm
	pad    PaddingMethod
	hash   HashAlgorithm
}{
	0x03: {AlgRSA, PadPKCS1, HashSHA1}, 0x04: {AlgRSA, PadPKCS1, HashSHA224}, 0x05: {AlgRSA, PadPKCS1, HashSHA256},
	0x06: {AlgRSA, PadPKCS1, HashSHA384}, 0x07: {AlgRSA, PadPKCS1, HashSHA512}, 0x08: {AlgRSA, PadPSS, 0},
	0x0C: {AlgEC, 0, HashSHA1}, 0x0D: {AlgEC, 0, HashSHA224}, 0x0E: {AlgEC, 0, HashSHA256},
	0x0F: {AlgEC, 0, HashSHA384}, 0x10: {AlgEC, 0, HashSHA512},
}

// signatureScheme resolves the parameters of a signature by the key pub
// (a public key, or the public half of the private key) of object o.
func signatureScheme(o *Object, pub crypto.PublicKey, p CryptographicParameters, signing bool) (sigScheme, error) {
	var s sigScheme
	var family Algorithm
	var rsaPub *rsa.PublicKey
	curveBits := 0
	switch k := pub.(type) {
	case *rsa.PublicKey:
		family, rsaPub = AlgRSA, k
	case *ecdsa.PublicKey:
		family, curveBits = AlgEC, k.Curve.Params().BitSize
		switch a := o.Attrs.Algorithm(); a {
		case AlgECDH, AlgECMQV:
			return s, errf(ErrIllegalOperation, "the key's Cryptographic Algorithm is 0x%X (key agreement); an ECDSA key signs", uint32(a))
		}
	default:
		return s, errf(ErrNotSupported, "signatures with %T keys are not supported (RSA and ECDSA are)", pub)
	}
	if a := p.CryptographicAlgorithm; a != 0 && !(family == AlgRSA && a == AlgRSA) && !(family == AlgEC && (a == AlgECDSA || a == AlgEC)) {
		return s, errf(ErrInvalidField, "Cryptographic Parameters name algorithm 0x%X, which is not the key's", uint32(a))
	}
	pad, hashAlg := p.PaddingMethod, p.HashingAlgorithm
	if p.DigitalSignatureAlgorithm != 0 {
		d, ok := digitalSignatureAlgorithms[p.DigitalSignatureAlgorithm]
		if !ok {
			return s, errf(ErrNotSupported, "Digital Signature Algorithm 0x%X is not supported (RSA PKCS#1 v1.5 and PSS, ECDSA, with SHA-2)", p.DigitalSignatureAlgorithm)
		}
		if d.family != family {
			return s, errf(ErrInvalidField, "Digital Signature Algorithm 0x%X is not for the key's algorithm", p.DigitalSignatureAlgorithm)
		}
		if d.pad != 0 {
			if pad != 0 && pad != d.pad {
				return s, errf(ErrInvalidField, "Padding Method and Digital Signature Algorithm disagree")
			}
			pad = d.pad
		}
		if d.hash != 0 {
			if hashAlg != 0 && hashAlg != d.hash {
				return s, errf(ErrInvalidField, "Hashing Algorithm and Digital Signature Algorithm disagree")
			}
			hashAlg = d.hash
		}
	}
	if hashAlg == 0 {
		switch {
		case family == AlgEC && curveBits > 384:
			hashAlg = HashSHA512
		case family == AlgEC && curveBits > 256:
			hashAlg = HashSHA384
		default:
			hashAlg = HashSHA256
		}
	}
	h, ok := signatureHashes[hashAlg]
	if !ok {
		return s, errf(ErrNotSupported, "hashing algorithm 0x%X is not supported for signatures (SHA-224, SHA-256, SHA-384, SHA-512 are)", uint32(hashAlg))
	}
	if h == crypto.SHA1 && signing {
		return s, errf(ErrNotSupported, "SHA-1 signatures are not made (SHA-1 collisions are practical); SHA-1 is accepted only to verify legacy signatures")
	}
	s.hash = h
	if family == AlgEC {
		return s, nil
	}
	switch pad {
	case 0, PadPKCS1:
	case PadPSS:
		s.pss = true
		if p.MaskGenerator != 0 && p.MaskGenerator != maskGeneratorMGF1 {
			return s, errf(ErrNotSupported, "mask generator 0x%X is not supported (MGF1 is)", p.MaskGenerator)
		}
		if m := p.MaskGeneratorHashingAlgorithm; m != 0 && m != hashAlg {
			return s, errf(ErrNotSupported, "PSS with an MGF1 hash other than the message hash is not supported")
		}
		if p.TrailerField != nil && *p.TrailerField != 1 {
			return s, errf(ErrNotSupported, "PSS trailer field %d is not supported (1, 0xBC, is)", *p.TrailerField)
		}
		switch {
		case p.SaltLength == nil && signing:
			s.salt = rsa.PSSSaltLengthEqualsHash
		case p.SaltLength == nil:
			s.salt = rsa.PSSSaltLengthAuto
		case *p.SaltLength < 0:
			return s, errf(ErrInvalidField, "Salt Length is negative")
		case *p.SaltLength == 0 && signing:
			return s, errf(ErrNotSupported, "PSS signatures with an empty salt are not made")
		case *p.SaltLength == 0:
			s.salt = rsa.PSSSaltLengthAuto
		default:
			if limit := rsaPub.Size() - h.Size() - 2; int(*p.SaltLength) > limit {
				return s, errf(ErrInvalidField, "Salt Length %d exceeds the %d bytes this key and hash allow", *p.SaltLength, limit)
			}
			s.salt = int(*p.SaltLength)
		}
	default:
		return s, errf(ErrNotSupported, "padding method 0x%X is not supported for RSA signatures (PKCS1 v1.5 and PSS are)", uint32(pad))
	}
	return s, nil
}
