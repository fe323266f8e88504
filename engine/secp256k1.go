package engine

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"fmt"
	"math/big"

	"github.com/decred/dcrd/dcrec/secp256k1/v4"
)

// secp256k1 (SEC 2, KMIP Recommended Curve SECP256K1) is the curve of
// Bitcoin and Ethereum keys and of several KMIP clients' test keys. The Go
// standard library parses and encodes only the NIST curves, so keys on
// secp256k1 are parsed and encoded here, in the same DER forms (SEC 1
// ECPrivateKey, PKCS#8, SubjectPublicKeyInfo), and carried as
// *ecdsa.PrivateKey / *ecdsa.PublicKey over the curve of
// github.com/decred/dcrd/dcrec/secp256k1 (constant-time field and scalar
// arithmetic). crypto/ecdsa signs and verifies with such keys through its
// generic-curve path.
//
// The parse and marshal functions below are the engine's and the protocol
// layer's only way to read and write asymmetric DER: they defer to
// crypto/x509 for every other key.

// CurveSECP256K1 is the KMIP Recommended Curve value of secp256k1.
const CurveSECP256K1 uint32 = 0x19

var (
	oidPublicKeyEC = asn1.ObjectIdentifier{1, 2, 840, 10045, 2, 1}
	oidSecp256k1   = asn1.ObjectIdentifier{1, 3, 132, 0, 10}
)

// Secp256k1 is the secp256k1 curve.
func Secp256k1() elliptic.Curve { return secp256k1.S256() }

func isSecp256k1(c elliptic.Curve) bool { return c == elliptic.Curve(secp256k1.S256()) }

// ASN.1 shapes (RFC 5280, RFC 5208, RFC 5915).
type (
	spkiASN1 struct {
		Algorithm pkix.AlgorithmIdentifier
		PublicKey asn1.BitString
	}
	pkcs8ASN1 struct {
		Version    int
		Algorithm  pkix.AlgorithmIdentifier
		PrivateKey []byte
	}
	ecPrivateKeyASN1 struct {
		Version       int
		PrivateKey    []byte
		NamedCurveOID asn1.ObjectIdentifier `asn1:"optional,explicit,tag:0"`
		PublicKey     asn1.BitString        `asn1:"optional,explicit,tag:1"`
	}
)

// errNotK1 means: not a secp256k1 key, let crypto/x509's error stand.
var errNotK1 = errors.New("not a secp256k1 key")

// ParsePKIXPublicKey parses a DER SubjectPublicKeyInfo, secp256k1 included.
func ParsePKIXPublicKey(der []byte) (crypto.PublicKey, error) {
	pub, err := x509.ParsePKIXPublicKey(der)
	if err == nil {
		return pub, nil
	}
	if k, kerr := parseK1SPKI(der); kerr == nil {
		return k, nil
	} else if !errors.Is(kerr, errNotK1) {
		return nil, kerr
	}
	return nil, err
}

func parseK1SPKI(der []byte) (*ecdsa.PublicKey, error) {
	var s spkiASN1
	if rest, err := asn1.Unmarshal(der, &s); err != nil || len(rest) > 0 {
		return nil, errNotK1
	}
	if !s.Algorithm.Algorithm.Equal(oidPublicKeyEC) || !k1Params(s.Algorithm.Parameters) {
		return nil, errNotK1
	}
	return parseK1Point(s.PublicKey.RightAlign())
}

// k1Params reports whether algorithm parameters name secp256k1.
func k1Params(p asn1.RawValue) bool {
	var oid asn1.ObjectIdentifier
	rest, err := asn1.Unmarshal(p.FullBytes, &oid)
	return err == nil && len(rest) == 0 && oid.Equal(oidSecp256k1)
}

func parseK1Point(b []byte) (*ecdsa.PublicKey, error) {
	pk, err := secp256k1.ParsePubKey(b)
	if err != nil {
		return nil, fmt.Errorf("secp256k1 public key: %w", err)
	}
	return pk.ToECDSA(), nil
}

// ParsePKCS8PrivateKey parses a DER PKCS#8 PrivateKeyInfo, secp256k1
// included.
func ParsePKCS8PrivateKey(der []byte) (crypto.PrivateKey, error) {
	k, err := x509.ParsePKCS8PrivateKey(der)
	if err == nil {
		return k, nil
	}
	var p pkcs8ASN1
	if rest, uerr := asn1.Unmarshal(der, &p); uerr == nil && len(rest) == 0 &&
		p.Algorithm.Algorithm.Equal(oidPublicKeyEC) && k1Params(p.Algorithm.Parameters) {
		return parseK1ECPrivateKey(p.PrivateKey, true)
	}
	return nil, err
}

// ParseECPrivateKey parses a DER SEC 1 ECPrivateKey, secp256k1 included.
func ParseECPrivateKey(der []byte) (*ecdsa.PrivateKey, error) {
	k, err := x509.ParseECPrivateKey(der)
	if err == nil {
		return k, nil
	}
	if k1, kerr := parseK1ECPrivateKey(der, false); kerr == nil {
		return k1, nil
	} else if !errors.Is(kerr, errNotK1) {
		return nil, kerr
	}
	return nil, err
}

// parseK1ECPrivateKey parses a SEC 1 ECPrivateKey on secp256k1; inPKCS8:
// the curve was named by the PKCS#8 wrapper and may be absent here.
func parseK1ECPrivateKey(der []byte, inPKCS8 bool) (*ecdsa.PrivateKey, error) {
	var s ecPrivateKeyASN1
	if rest, err := asn1.Unmarshal(der, &s); err != nil || len(rest) > 0 {
		return nil, errNotK1
	}
	switch {
	case s.NamedCurveOID.Equal(oidSecp256k1):
	case len(s.NamedCurveOID) == 0 && inPKCS8:
	default:
		return nil, errNotK1
	}
	if s.Version != 1 {
		return nil, fmt.Errorf("secp256k1 private key: unknown EC private key version %d", s.Version)
	}
	n := secp256k1.S256().Params().N
	d := new(big.Int).SetBytes(s.PrivateKey)
	if len(s.PrivateKey) > 32 || d.Sign() <= 0 || d.Cmp(n) >= 0 {
		return nil, errors.New("secp256k1 private key: the scalar is out of range")
	}
	var buf [32]byte
	d.FillBytes(buf[:])
	priv := secp256k1.PrivKeyFromBytes(buf[:])
	clear(buf[:])
	k := priv.ToECDSA()
	priv.Zero()
	if len(s.PublicKey.Bytes) > 0 {
		pub, err := parseK1Point(s.PublicKey.RightAlign())
		if err != nil {
			return nil, err
		}
		if pub.X.Cmp(k.X) != 0 || pub.Y.Cmp(k.Y) != 0 {
			return nil, errors.New("secp256k1 private key: the public key does not match the private scalar")
		}
	}
	return k, nil
}

// MarshalPKIXPublicKey encodes a public key as DER SubjectPublicKeyInfo,
// secp256k1 included.
func MarshalPKIXPublicKey(pub crypto.PublicKey) ([]byte, error) {
	if k, ok := pub.(*ecdsa.PublicKey); ok && isSecp256k1(k.Curve) {
		params, err := asn1.Marshal(oidSecp256k1)
		if err != nil {
			return nil, err
		}
		pt := k1Point(k)
		return asn1.Marshal(spkiASN1{
			Algorithm: pkix.AlgorithmIdentifier{Algorithm: oidPublicKeyEC, Parameters: asn1.RawValue{FullBytes: params}},
			PublicKey: asn1.BitString{Bytes: pt, BitLength: 8 * len(pt)},
		})
	}
	return x509.MarshalPKIXPublicKey(pub)
}

// MarshalECPrivateKey encodes an EC private key as DER SEC 1, secp256k1
// included.
func MarshalECPrivateKey(k *ecdsa.PrivateKey) ([]byte, error) {
	if isSecp256k1(k.Curve) {
		return marshalK1ECPrivateKey(k, oidSecp256k1)
	}
	return x509.MarshalECPrivateKey(k)
}

// MarshalPKCS8PrivateKey encodes a private key as DER PKCS#8, secp256k1
// included.
func MarshalPKCS8PrivateKey(key crypto.PrivateKey) ([]byte, error) {
	k, ok := key.(*ecdsa.PrivateKey)
	if !ok || !isSecp256k1(k.Curve) {
		return x509.MarshalPKCS8PrivateKey(key)
	}
	inner, err := marshalK1ECPrivateKey(k, nil) // the curve is in the wrapper (RFC 5915 §3)
	if err != nil {
		return nil, err
	}
	defer clear(inner)
	params, err := asn1.Marshal(oidSecp256k1)
	if err != nil {
		return nil, err
	}
	return asn1.Marshal(pkcs8ASN1{
		Algorithm:  pkix.AlgorithmIdentifier{Algorithm: oidPublicKeyEC, Parameters: asn1.RawValue{FullBytes: params}},
		PrivateKey: inner,
	})
}

func marshalK1ECPrivateKey(k *ecdsa.PrivateKey, curve asn1.ObjectIdentifier) ([]byte, error) {
	d := make([]byte, 32)
	defer clear(d)
	if k.D == nil || k.D.Sign() <= 0 || k.D.BitLen() > 256 {
		return nil, errors.New("secp256k1 private key: the scalar is out of range")
	}
	k.D.FillBytes(d)
	pt := k1Point(&k.PublicKey)
	return asn1.Marshal(ecPrivateKeyASN1{
		Version: 1, PrivateKey: d, NamedCurveOID: curve,
		PublicKey: asn1.BitString{Bytes: pt, BitLength: 8 * len(pt)},
	})
}

// k1Point is the uncompressed SEC 1 encoding of a secp256k1 point.
func k1Point(k *ecdsa.PublicKey) []byte {
	pt := make([]byte, 65)
	pt[0] = 4
	k.X.FillBytes(pt[1:33])
	k.Y.FillBytes(pt[33:])
	return pt
}

// ECPoint is the uncompressed SEC 1 encoding of an EC public key (the
// Q String of KMIP's Transparent EC keys), secp256k1 included.
func ECPoint(k *ecdsa.PublicKey) ([]byte, error) {
	if isSecp256k1(k.Curve) {
		return k1Point(k), nil
	}
	ek, err := k.ECDH()
	if err != nil {
		return nil, err
	}
	return ek.Bytes(), nil
}

// ValidECPrivateKey reports whether k's scalar is in range and its public
// point is the scalar's.
func ValidECPrivateKey(k *ecdsa.PrivateKey) bool {
	if k.D == nil || k.D.Sign() <= 0 || k.D.Cmp(k.Curve.Params().N) >= 0 {
		return false
	}
	if isSecp256k1(k.Curve) {
		var buf [32]byte
		k.D.FillBytes(buf[:])
		p := secp256k1.PrivKeyFromBytes(buf[:])
		clear(buf[:])
		pub := p.PubKey().ToECDSA()
		p.Zero()
		return pub.X.Cmp(k.X) == 0 && pub.Y.Cmp(k.Y) == 0
	}
	_, err := k.ECDH()
	return err == nil
}

// Secp256k1PublicKey parses a SEC 1 encoded secp256k1 point (the Q String
// of a Transparent EC key).
func Secp256k1PublicKey(q []byte) (*ecdsa.PublicKey, error) { return parseK1Point(q) }

// Secp256k1PrivateKey is the secp256k1 key of scalar d (the D of a
// Transparent EC private key).
func Secp256k1PrivateKey(d *big.Int) (*ecdsa.PrivateKey, error) {
	if d == nil || d.Sign() <= 0 || d.Cmp(secp256k1.S256().Params().N) >= 0 {
		return nil, errors.New("secp256k1 private key: the scalar is out of range")
	}
	var buf [32]byte
	d.FillBytes(buf[:])
	p := secp256k1.PrivKeyFromBytes(buf[:])
	clear(buf[:])
	k := p.ToECDSA()
	p.Zero()
	return k, nil
}

// Shapes of an X.509 certificate (RFC 5280 §4.1), to read one whose key is
// on secp256k1.
type (
	certASN1 struct {
		TBS    tbsASN1
		SigAlg pkix.AlgorithmIdentifier
		Sig    asn1.BitString
	}
	tbsASN1 struct {
		Raw        asn1.RawContent
		Version    int `asn1:"optional,explicit,default:0,tag:0"`
		Serial     asn1.RawValue
		SigAlg     pkix.AlgorithmIdentifier
		Issuer     asn1.RawValue
		Validity   asn1.RawValue
		Subject    asn1.RawValue
		PublicKey  asn1.RawValue
		IssuerUID  asn1.BitString   `asn1:"optional,tag:1"`
		SubjectUID asn1.BitString   `asn1:"optional,tag:2"`
		Extensions []pkix.Extension `asn1:"omitempty,optional,explicit,tag:3"`
	}
)

// ParseCertificate parses a DER X.509 certificate, including one whose
// subject key is on secp256k1: crypto/x509 refuses those, so the
// certificate is read with a stand-in key and the secp256k1 key put back.
// Such a certificate's signature can be checked by the key that issued it,
// not through crypto/x509's chain building.
func ParseCertificate(der []byte) (*x509.Certificate, error) {
	c, err := x509.ParseCertificate(der)
	if err == nil {
		return c, nil
	}
	var raw certASN1
	if rest, uerr := asn1.Unmarshal(der, &raw); uerr != nil || len(rest) > 0 {
		return nil, err
	}
	k1, kerr := parseK1SPKI(raw.TBS.PublicKey.FullBytes)
	if kerr != nil {
		return nil, err
	}
	standIn, serr := x509.MarshalPKIXPublicKey(&ecdsa.PublicKey{Curve: elliptic.P256(), X: elliptic.P256().Params().Gx, Y: elliptic.P256().Params().Gy})
	if serr != nil {
		return nil, err
	}
	tbs := raw.TBS
	tbs.Raw = nil
	tbs.PublicKey = asn1.RawValue{FullBytes: standIn}
	again, merr := asn1.Marshal(certASN1{TBS: tbs, SigAlg: raw.SigAlg, Sig: raw.Sig})
	if merr != nil {
		return nil, err
	}
	c, perr := x509.ParseCertificate(again)
	if perr != nil {
		return nil, err
	}
	c.Raw, c.RawTBSCertificate, c.RawSubjectPublicKeyInfo = der, raw.TBS.Raw, raw.TBS.PublicKey.FullBytes
	c.PublicKey, c.PublicKeyAlgorithm = k1, x509.ECDSA
	return c, nil
}

// generateEC makes a key on c: crypto/ecdsa for the NIST curves, the
// secp256k1 package (constant-time scalar multiplication) for secp256k1.
func generateEC(c elliptic.Curve) (*ecdsa.PrivateKey, error) {
	if !isSecp256k1(c) {
		return ecdsa.GenerateKey(c, rand.Reader)
	}
	p, err := secp256k1.GeneratePrivateKey()
	if err != nil {
		return nil, err
	}
	k := p.ToECDSA()
	p.Zero()
	return k, nil
}
