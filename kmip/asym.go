package kmip

import (
	"bytes"
	"crypto"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/x509"
	"math/big"
	"strings"

	"github.com/minikms/minikms/engine"
	"github.com/ovh/kmip-go"
)

// asymmetricMaterial converts a registered public key, private key or
// certificate to the engine's canonical form: SubjectPublicKeyInfo, PKCS#8,
// X.509 DER. The KMIP format it came in is kept in DataType so that Get
// answers in it by default, and the Digest is computed over that format.
func asymmetricMaterial(obj kmip.Object, r *engine.RegisterRequest) error {
	switch o := obj.(type) {
	case *kmip.PublicKey:
		kb := &o.KeyBlock
		if err := plainKeyBlock(kb); err != nil {
			return err
		}
		pub, err := decodePublicKey(o)
		if err != nil {
			return err
		}
		spki, err := engine.MarshalPKIXPublicKey(pub)
		if err != nil {
			return errReason(kmip.ResultReasonInvalidField, "the public key cannot be encoded: "+err.Error())
		}
		r.Material = engine.Material{Format: engine.FormatSPKI, DataType: uint32(kb.KeyFormatType), Bytes: spki}
		r.Algorithm, r.Length = engine.Algorithm(kb.CryptographicAlgorithm), kb.CryptographicLength
		r.Digest = blockDigest(kb)
	case *kmip.PrivateKey:
		kb := &o.KeyBlock
		if err := plainKeyBlock(kb); err != nil {
			return err
		}
		priv, err := decodePrivateKey(o)
		if err != nil {
			return err
		}
		der, err := engine.MarshalPKCS8PrivateKey(priv)
		if err != nil {
			return errReason(kmip.ResultReasonInvalidField, "the private key cannot be encoded: "+err.Error())
		}
		r.Material = engine.Material{Format: engine.FormatPKCS8, DataType: uint32(kb.KeyFormatType), Bytes: der}
		r.Algorithm, r.Length = engine.Algorithm(kb.CryptographicAlgorithm), kb.CryptographicLength
		r.Digest = blockDigest(kb)
	case *kmip.Certificate:
		if o.CertificateType != kmip.CertificateTypeX_509 {
			return errReason(kmip.ResultReasonFeatureNotSupported, "only X.509 certificates are supported")
		}
		if len(o.CertificateValue) == 0 {
			return errReason(kmip.ResultReasonMissingData, "the certificate has no value")
		}
		r.Material = engine.Material{Format: engine.FormatX509, DataType: uint32(kmip.KeyFormatTypeX_509), Bytes: append([]byte(nil), o.CertificateValue...)}
	}
	return nil
}

// plainKeyBlock refuses key blocks this server cannot take as they are.
func plainKeyBlock(kb *kmip.KeyBlock) error {
	if kb.KeyWrappingData != nil {
		return errReason(kmip.ResultReasonFeatureNotSupported, "registering wrapped key material is not supported yet")
	}
	if kb.KeyValue == nil || kb.KeyValue.Plain == nil {
		return errReason(kmip.ResultReasonMissingData, "the key block has no Key Value")
	}
	if len(kb.KeyValue.Plain.Attribute) > 0 {
		return errReason(kmip.ResultReasonFeatureNotSupported, "attributes inside a Key Value are not supported; put them in the Template-Attribute")
	}
	return nil
}

// blockDigest is the Digest of a key as registered: over the bytes for
// byte-string formats, over the TTLV Key Material for structured ones.
func blockDigest(kb *kmip.KeyBlock) *engine.Digest {
	if b := kb.KeyValue.Plain.KeyMaterial.Bytes; b != nil {
		d := digestBytes(*b, uint32(kb.KeyFormatType))
		return &d
	}
	return structuredDigest(kb)
}

func decodePublicKey(o *kmip.PublicKey) (pub crypto.PublicKey, err error) {
	switch o.KeyBlock.KeyFormatType {
	case kmip.KeyFormatTypeX_509, kmip.KeyFormatTypePKCS_1, kmip.KeyFormatTypeTransparentRSAPublicKey,
		kmip.KeyFormatTypeTransparentECDSAPublicKey, kmip.KeyFormatTypeTransparentECPublicKey:
	default:
		return nil, errReason(kmip.ResultReasonKeyFormatTypeNotSupported, "public keys are accepted as X.509, PKCS#1 or Transparent RSA/EC")
	}
	defer func() {
		if recover() != nil {
			pub, err = nil, errReason(kmip.ResultReasonInvalidField, "the public key is malformed")
		}
	}()
	pub, err = o.CryptoPublicKey()
	if err != nil {
		if k1, ok := secp256k1Public(o.KeyBlock); ok {
			return k1, nil
		}
		return nil, keyParseError("public", err, o.KeyBlock.KeyValue.Plain.KeyMaterial.Bytes)
	}
	return pub, nil
}

// secp256k1Public decodes a public key on secp256k1, a curve the codec's
// conversion does not know.
func secp256k1Public(kb kmip.KeyBlock) (crypto.PublicKey, bool) {
	km := kb.KeyValue.Plain.KeyMaterial
	var (
		pub crypto.PublicKey
		err error
	)
	switch {
	case kb.KeyFormatType == kmip.KeyFormatTypeX_509 && km.Bytes != nil:
		pub, err = engine.ParsePKIXPublicKey(*km.Bytes)
	case km.TransparentECDSAPublicKey != nil && uint32(km.TransparentECDSAPublicKey.RecommendedCurve) == engine.CurveSECP256K1:
		pub, err = engine.Secp256k1PublicKey(km.TransparentECDSAPublicKey.QString)
	case km.TransparentECPublicKey != nil && uint32(km.TransparentECPublicKey.RecommendedCurve) == engine.CurveSECP256K1:
		pub, err = engine.Secp256k1PublicKey(km.TransparentECPublicKey.QString)
	default:
		return nil, false
	}
	return pub, err == nil
}

// secp256k1Private decodes a private key on secp256k1.
func secp256k1Private(kb kmip.KeyBlock) (crypto.PrivateKey, bool) {
	km := kb.KeyValue.Plain.KeyMaterial
	var (
		priv crypto.PrivateKey
		err  error
	)
	switch {
	case kb.KeyFormatType == kmip.KeyFormatTypePKCS_8 && km.Bytes != nil:
		priv, err = engine.ParsePKCS8PrivateKey(*km.Bytes)
	case kb.KeyFormatType == kmip.KeyFormatTypeECPrivateKey && km.Bytes != nil:
		priv, err = engine.ParseECPrivateKey(*km.Bytes)
	case km.TransparentECDSAPrivateKey != nil && uint32(km.TransparentECDSAPrivateKey.RecommendedCurve) == engine.CurveSECP256K1:
		priv, err = engine.Secp256k1PrivateKey(&km.TransparentECDSAPrivateKey.D)
	case km.TransparentECPrivateKey != nil && uint32(km.TransparentECPrivateKey.RecommendedCurve) == engine.CurveSECP256K1:
		priv, err = engine.Secp256k1PrivateKey(&km.TransparentECPrivateKey.D)
	default:
		return nil, false
	}
	return priv, err == nil
}

func decodePrivateKey(o *kmip.PrivateKey) (priv crypto.PrivateKey, err error) {
	switch o.KeyBlock.KeyFormatType {
	case kmip.KeyFormatTypePKCS_8, kmip.KeyFormatTypePKCS_1, kmip.KeyFormatTypeECPrivateKey, kmip.KeyFormatTypeTransparentRSAPrivateKey,
		kmip.KeyFormatTypeTransparentECDSAPrivateKey, kmip.KeyFormatTypeTransparentECPrivateKey:
	default:
		return nil, errReason(kmip.ResultReasonKeyFormatTypeNotSupported, "private keys are accepted as PKCS#8, PKCS#1, EC Private Key or Transparent RSA/EC")
	}
	defer func() {
		if recover() != nil {
			priv, err = nil, errReason(kmip.ResultReasonInvalidField, "the private key is malformed")
		}
	}()
	priv, err = o.CryptoPrivateKey()
	if err != nil {
		k1, ok := secp256k1Private(o.KeyBlock)
		if !ok {
			return nil, keyParseError("private", err, o.KeyBlock.KeyValue.Plain.KeyMaterial.Bytes)
		}
		priv = k1
	}
	if rk, ok := priv.(*rsa.PrivateKey); ok {
		if rk.Validate() != nil {
			return nil, errReason(kmip.ResultReasonInvalidField, "the RSA private key is inconsistent")
		}
	}
	if ek, ok := priv.(*ecdsa.PrivateKey); ok {
		if !engine.ValidECPrivateKey(ek) {
			return nil, errReason(kmip.ResultReasonInvalidField, "the EC private key is invalid")
		}
	}
	return priv, nil
}

// pkcs5PBE is the prefix of password-encrypted PKCS#8 (EncryptedPrivateKeyInfo
// under a PKCS#5/#12 password-based scheme): the OID arc 1.2.840.113549.1.5
// or 1.2.840.113549.1.12.
var (
	oidPKCS5  = []byte{0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x05}
	oidPKCS12 = []byte{0x06, 0x0a, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x0c}
)

// keyParseError names why key material was refused: an unsupported curve
// or a password-encrypted PKCS#8 are features, anything else is malformed.
func keyParseError(kind string, err error, raw *[]byte) error {
	msg := err.Error()
	switch {
	case strings.Contains(msg, "unknown elliptic curve") || strings.Contains(msg, "unsupported elliptic curve") || strings.Contains(msg, "Unsupported elliptic curve"):
		return errReason(kmip.ResultReasonFeatureNotSupported, "the "+kind+" key's elliptic curve is not supported (P-224, P-256, P-384, P-521 and secp256k1 are)")
	case raw != nil && len(*raw) > 24 && (bytes.Contains((*raw)[:24], oidPKCS5) || bytes.Contains((*raw)[:24], oidPKCS12)):
		return errReason(kmip.ResultReasonFeatureNotSupported, "password-encrypted PKCS#8 is not supported: register the key in the clear over TLS, or wrapped with Key Wrapping Data")
	}
	return errReason(kmip.ResultReasonInvalidField, "the "+kind+" key is malformed: "+msg)
}

// publicKeyObject builds a Get answer for a public key in format.
func publicKeyObject(o *engine.Object, m engine.Material, format kmip.KeyFormatType, v kmip.ProtocolVersion) (kmip.Object, error) {
	pub, err := engine.ParsePKIXPublicKey(m.Bytes)
	if err != nil {
		return nil, err
	}
	if format == 0 {
		format = kmip.KeyFormatType(m.DataType)
		if format == 0 {
			format = kmip.KeyFormatTypeX_509
		}
	}
	kb := kmip.KeyBlock{KeyFormatType: format, CryptographicAlgorithm: kmip.CryptographicAlgorithm(o.Attrs.Algorithm()), CryptographicLength: o.Attrs.Length()}
	var km kmip.KeyMaterial
	switch k := pub.(type) {
	case *rsa.PublicKey:
		switch format {
		case kmip.KeyFormatTypeX_509:
			km.Bytes = &m.Bytes
		case kmip.KeyFormatTypePKCS_1:
			b := x509.MarshalPKCS1PublicKey(k)
			km.Bytes = &b
		case kmip.KeyFormatTypeTransparentRSAPublicKey:
			km.TransparentRSAPublicKey = &kmip.TransparentRSAPublicKey{Modulus: *k.N, PublicExponent: *big.NewInt(int64(k.E))}
		default:
			return nil, errReason(kmip.ResultReasonKeyFormatTypeNotSupported, "RSA public keys are available as X.509, PKCS#1 and Transparent RSA Public Key")
		}
	case *ecdsa.PublicKey:
		q, err := engine.ECPoint(k) // uncompressed point
		if err != nil {
			return nil, err
		}
		curve := kmip.RecommendedCurve(engine.CurveValue(k.Curve))
		switch format {
		case kmip.KeyFormatTypeX_509:
			km.Bytes = &m.Bytes
		case kmip.KeyFormatTypeTransparentECDSAPublicKey:
			km.TransparentECDSAPublicKey = &kmip.TransparentECDSAPublicKey{RecommendedCurve: curve, QString: q}
		case kmip.KeyFormatTypeTransparentECPublicKey:
			if v.Minor() < 3 {
				return nil, errReason(kmip.ResultReasonKeyFormatTypeNotSupported, "Transparent EC Public Key exists from KMIP 1.3; ask for Transparent ECDSA Public Key")
			}
			km.TransparentECPublicKey = &kmip.TransparentECPublicKey{RecommendedCurve: curve, QString: q}
		default:
			return nil, errReason(kmip.ResultReasonKeyFormatTypeNotSupported, "EC public keys are available as X.509 and Transparent EC(DSA) Public Key")
		}
	default:
		return nil, errReason(kmip.ResultReasonKeyFormatTypeNotSupported, "unsupported public key")
	}
	kb.KeyValue = &kmip.KeyValue{Plain: &kmip.PlainKeyValue{KeyMaterial: km}}
	return &kmip.PublicKey{KeyBlock: kb}, nil
}

// privateKeyObject builds a Get answer for a private key in format. The
// encodings it makes are registered for scrubbing by the caller.
func privateKeyObject(o *engine.Object, m engine.Material, format kmip.KeyFormatType, v kmip.ProtocolVersion, scrub func([]byte)) (kmip.Object, error) {
	priv, err := engine.ParsePKCS8PrivateKey(m.Bytes)
	if err != nil {
		return nil, err
	}
	if format == 0 {
		format = kmip.KeyFormatType(m.DataType)
		if format == 0 {
			format = kmip.KeyFormatTypePKCS_8
		}
	}
	kb := kmip.KeyBlock{KeyFormatType: format, CryptographicAlgorithm: kmip.CryptographicAlgorithm(o.Attrs.Algorithm()), CryptographicLength: o.Attrs.Length()}
	var km kmip.KeyMaterial
	switch k := priv.(type) {
	case *rsa.PrivateKey:
		switch format {
		case kmip.KeyFormatTypePKCS_8:
			km.Bytes = &m.Bytes
		case kmip.KeyFormatTypePKCS_1:
			b := x509.MarshalPKCS1PrivateKey(k)
			scrub(b)
			km.Bytes = &b
		case kmip.KeyFormatTypeTransparentRSAPrivateKey:
			k.Precompute()
			km.TransparentRSAPrivateKey = &kmip.TransparentRSAPrivateKey{
				Modulus: *k.N, PrivateExponent: k.D, PublicExponent: big.NewInt(int64(k.E)),
				P: k.Primes[0], Q: k.Primes[1], PrimeExponentP: k.Precomputed.Dp, PrimeExponentQ: k.Precomputed.Dq, CRTCoefficient: k.Precomputed.Qinv,
			}
		default:
			return nil, errReason(kmip.ResultReasonKeyFormatTypeNotSupported, "RSA private keys are available as PKCS#8, PKCS#1 and Transparent RSA Private Key")
		}
	case *ecdsa.PrivateKey:
		curve := kmip.RecommendedCurve(engine.CurveValue(k.Curve))
		switch format {
		case kmip.KeyFormatTypePKCS_8:
			km.Bytes = &m.Bytes
		case kmip.KeyFormatTypeECPrivateKey:
			b, err := engine.MarshalECPrivateKey(k)
			if err != nil {
				return nil, err
			}
			scrub(b)
			km.Bytes = &b
		case kmip.KeyFormatTypeTransparentECDSAPrivateKey:
			km.TransparentECDSAPrivateKey = &kmip.TransparentECDSAPrivateKey{RecommendedCurve: curve, D: *k.D}
		case kmip.KeyFormatTypeTransparentECPrivateKey:
			if v.Minor() < 3 {
				return nil, errReason(kmip.ResultReasonKeyFormatTypeNotSupported, "Transparent EC Private Key exists from KMIP 1.3; ask for Transparent ECDSA Private Key")
			}
			km.TransparentECPrivateKey = &kmip.TransparentECPrivateKey{RecommendedCurve: curve, D: *k.D}
		default:
			return nil, errReason(kmip.ResultReasonKeyFormatTypeNotSupported, "EC private keys are available as PKCS#8, EC Private Key and Transparent EC(DSA) Private Key")
		}
	case *ecdh.PrivateKey:
		return nil, errReason(kmip.ResultReasonKeyFormatTypeNotSupported, "unsupported private key")
	default:
		return nil, errReason(kmip.ResultReasonKeyFormatTypeNotSupported, "unsupported private key")
	}
	kb.KeyValue = &kmip.KeyValue{Plain: &kmip.PlainKeyValue{KeyMaterial: km}}
	return &kmip.PrivateKey{KeyBlock: kb}, nil
}
