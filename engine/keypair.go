package engine

import (
	"context"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"errors"
	"time"
)

// Create Key Pair (KMIP 1.0+, §4.2 of KMIP 1.4): the server generates an
// RSA or elliptic-curve key pair and stores it as two linked objects, a
// Private Key and a Public Key.
//
// Generation policy (documented in the operation's refusals):
//   - RSA: 2048, 3072 or 4096 bits. Shorter moduli give less than 112 bits
//     of security (NIST SP 800-131A) and are refused with Feature Not
//     Supported; keys of 1024 bits and more made elsewhere can still be
//     registered, and used.
//   - EC: the NIST curves P-256, P-384 and P-521, for the algorithms ECDSA,
//     ECDH and EC (KMIP 1.3+). The curve comes from the Recommended Curve of
//     the Cryptographic Domain Parameters, or from the Cryptographic Length.
//
// Attributes: single-instance attributes of the Private and Public Key
// Template-Attributes override the Common one; multi-instance attributes
// are the union. Names are given per key (a Name in the Common
// Template-Attribute would name both keys alike and is refused).

// Algorithms and formats of key pairs (KMIP values).
const (
	AlgECDH  Algorithm = 0x0E
	AlgECMQV Algorithm = 0x0F
)

// KMIP Key Format Types the engine records for asymmetric material.
const (
	keyFormatPKCS1 uint32 = 0x03
	keyFormatPKCS8 uint32 = 0x04
	keyFormatX509  uint32 = 0x05
)

// OpCreateKeyPair and OpReKeyKeyPair are the key-pair operations.
const (
	OpCreateKeyPair Op = "CreateKeyPair"
	OpReKeyKeyPair  Op = "ReKeyKeyPair"
)

// RSA moduli the server generates.
var rsaCreateBits = map[int32]bool{2048: true, 3072: true, 4096: true}

// CreateKeyPairRequest asks for a new server-generated key pair. Each
// Template-Attribute is a list of attributes and the names of server-side
// templates (KMIP 1.0-1.2).
type CreateKeyPairRequest struct {
	Common, Private, Public                            []Attribute
	CommonTemplates, PrivateTemplates, PublicTemplates []string
}

// KeyPair is the result of Create Key Pair and Re-key Key Pair.
type KeyPair struct {
	Private, Public *Object
}

// CreateKeyPair generates a key pair of the caller's tenant.
func (e *Engine) CreateKeyPair(ctx context.Context, p Principal, req CreateKeyPairRequest) (*KeyPair, error) {
	if err := authorize(p, OpCreateKeyPair); err != nil {
		return nil, err
	}
	privAttrs, pubAttrs, err := e.pairAttributes(ctx, p.Tenant, req)
	if err != nil {
		return nil, err
	}
	now := e.now().UTC().Truncate(time.Second)
	priv, pub := e.newObject(p, TypePrivateKey, now), e.newObject(p, TypePublicKey, now)
	if err := applyTemplate(priv, privAttrs, now); err != nil {
		return nil, err
	}
	if err := applyTemplate(pub, pubAttrs, now); err != nil {
		return nil, err
	}
	return e.generatePair(ctx, priv, pub, nil, now)
}

// pairAttributes resolves the three Template-Attributes of a key-pair
// request into the attribute lists of the private and the public key.
func (e *Engine) pairAttributes(ctx context.Context, tenant string, req CreateKeyPairRequest) (priv, pub []Attribute, err error) {
	for _, a := range req.Common {
		if a.Name == AttrName {
			return nil, nil, errf(ErrInvalidField, "a Name in the Common Template-Attribute would name both keys alike; give names in the Private and Public Key Template-Attributes")
		}
	}
	common, err := e.resolveTemplates(ctx, tenant, req.CommonTemplates, req.Common)
	if err != nil {
		return nil, nil, err
	}
	privOwn, err := e.resolveTemplates(ctx, tenant, req.PrivateTemplates, req.Private)
	if err != nil {
		return nil, nil, err
	}
	pubOwn, err := e.resolveTemplates(ctx, tenant, req.PublicTemplates, req.Public)
	if err != nil {
		return nil, nil, err
	}
	return overlay(common, privOwn), overlay(common, pubOwn), nil
}

// overlay is base with specific on top: a single-instance attribute that
// specific gives replaces base's; multi-instance attributes add up.
func overlay(base, specific []Attribute) []Attribute {
	given := map[string]bool{}
	for _, a := range specific {
		if d := LookupAttr(a.Name); d != nil && !d.Multi {
			given[a.Name] = true
		}
	}
	out := make([]Attribute, 0, len(base)+len(specific))
	for _, a := range base {
		if !given[a.Name] {
			out = append(out, a)
		}
	}
	return append(out, specific...)
}

// pairSpec is what a key pair is generated from.
type pairSpec struct {
	alg   Algorithm
	bits  int32
	curve uint32 // EC only
}

// reconcile makes a single-instance attribute agree between the two keys:
// a value on one only is given to the other; different values are refused.
func reconcile(priv, pub *Object, name string, equal func(a, b any) bool) error {
	a, okA := priv.Attrs.First(name)
	b, okB := pub.Attrs.First(name)
	switch {
	case okA && okB:
		if !equal(a, b) {
			return errf(ErrInvalidField, "the private and the public key templates give different values of %s", name)
		}
	case okA:
		pub.Attrs.Set(name, a)
	case okB:
		priv.Attrs.Set(name, b)
	}
	return nil
}

func sameValue(a, b any) bool { return a == b }

// keyPairSpec checks the attributes that define the pair's key and
// completes them (length of a curve, curve of a length).
func keyPairSpec(priv, pub *Object) (pairSpec, error) {
	for _, n := range []string{AttrCryptographicAlgorithm, AttrCryptographicLength, AttrCryptographicDomainParameters} {
		if err := reconcile(priv, pub, n, sameValue); err != nil {
			return pairSpec{}, err
		}
	}
	s := pairSpec{alg: priv.Attrs.Algorithm(), bits: priv.Attrs.Length()}
	var dp CryptographicDomainParameters
	if v, ok := priv.Attrs.First(AttrCryptographicDomainParameters); ok {
		dp = v.(CryptographicDomainParameters)
	}
	switch s.alg {
	case 0:
		return s, errf(ErrMissingData, "Cryptographic Algorithm is required to create a key pair (RSA, ECDSA, ECDH or EC)")
	case AlgRSA:
		if dp != (CryptographicDomainParameters{}) {
			return s, errf(ErrInvalidField, "Cryptographic Domain Parameters do not apply to RSA keys")
		}
		if s.bits == 0 {
			return s, errf(ErrMissingData, "Cryptographic Length is required to create an RSA key pair")
		}
		if !rsaCreateBits[s.bits] {
			if s.bits < 2048 {
				return s, errf(ErrNotSupported, "RSA keys shorter than 2048 bits are not generated: they give less than 112 bits of security (NIST SP 800-131A); 2048, 3072 and 4096 bits are")
			}
			return s, errf(ErrNotSupported, "RSA keys of %d bits are not generated; 2048, 3072 and 4096 bits are", s.bits)
		}
	case AlgECDSA, AlgECDH, AlgEC:
		if dp.Qlength != 0 {
			return s, errf(ErrInvalidField, "Qlength applies to DSA and DH keys, not to elliptic curves")
		}
		s.curve = dp.RecommendedCurve
		if s.curve == 0 {
			s.curve = curveOfLength(s.bits)
			if s.curve == 0 {
				if s.bits == 0 {
					return s, errf(ErrMissingData, "an elliptic-curve key pair needs a Recommended Curve (Cryptographic Domain Parameters) or a Cryptographic Length")
				}
				return s, errf(ErrNotSupported, "no supported curve has %d bits; P-256, P-384 and P-521 are", s.bits)
			}
		}
		c, ok := CurveByValue(s.curve)
		if !ok || s.curve == CurveP224 {
			return s, errf(ErrNotSupported, "Recommended Curve 0x%X is not supported for new keys; P-256, P-384 and P-521 are", s.curve)
		}
		bits := int32(c.Params().BitSize)
		if s.bits != 0 && s.bits != bits {
			return s, errf(ErrInvalidField, "Cryptographic Length %d does not match the %d-bit curve", s.bits, bits)
		}
		s.bits = bits
		for _, o := range []*Object{priv, pub} {
			o.Attrs.Set(AttrCryptographicLength, bits)
			o.Attrs.Set(AttrCryptographicDomainParameters, CryptographicDomainParameters{RecommendedCurve: s.curve})
		}
	case AlgECMQV, AlgDSA, 0x0D /* DH */ :
		return s, errf(ErrNotSupported, "creating key pairs of cryptographic algorithm 0x%X is not supported (RSA, ECDSA, ECDH and EC are)", uint32(s.alg))
	default:
		return s, errf(ErrInvalidField, "cryptographic algorithm 0x%X is not an asymmetric algorithm; Create Key Pair makes RSA, ECDSA, ECDH and EC keys", uint32(s.alg))
	}
	return s, nil
}

func curveOfLength(bits int32) uint32 {
	switch bits {
	case 256:
		return CurveP256
	case 384:
		return CurveP384
	case 521:
		return CurveP521
	}
	return 0
}

// defaultPairUsage is the Cryptographic Usage Mask a key of the pair gets
// when no template sets one: signing for RSA and ECDSA (a key does one
// job), key agreement for ECDH.
func defaultPairUsage(alg Algorithm, t ObjectType) UsageMask {
	switch {
	case alg == AlgECDH:
		return UsageKeyAgreement
	case t == TypePrivateKey:
		return UsageSign
	}
	return UsageVerify
}

// generatedPair is the new material, encoded, with its digests.
type generatedPair struct {
	priv, pub             Material
	privDigest, pubDigest Digest
}

func (g *generatedPair) clear() {
	clear(g.priv.Bytes)
	clear(g.pub.Bytes)
}

// generate makes the key material of s. RSA keys are served as PKCS#1 by
// default, elliptic-curve keys as PKCS#8 and X.509; the Digest covers that
// default encoding.
func generate(s pairSpec) (*generatedPair, error) {
	var g generatedPair
	switch s.alg {
	case AlgRSA:
		k, err := rsa.GenerateKey(rand.Reader, int(s.bits))
		if err != nil {
			return nil, err
		}
		der, err := x509.MarshalPKCS8PrivateKey(k)
		if err != nil {
			return nil, err
		}
		spki, err := x509.MarshalPKIXPublicKey(&k.PublicKey)
		if err != nil {
			clear(der)
			return nil, err
		}
		p1 := x509.MarshalPKCS1PrivateKey(k)
		g.privDigest = digestOf(p1, keyFormatPKCS1)
		clear(p1)
		g.pubDigest = digestOf(x509.MarshalPKCS1PublicKey(&k.PublicKey), keyFormatPKCS1)
		g.priv = Material{Format: FormatPKCS8, DataType: keyFormatPKCS1, Bytes: der}
		g.pub = Material{Format: FormatSPKI, DataType: keyFormatPKCS1, Bytes: spki}
	default:
		c, ok := CurveByValue(s.curve)
		if !ok {
			return nil, errf(ErrNotSupported, "Recommended Curve 0x%X is not supported", s.curve)
		}
		k, err := ecdsa.GenerateKey(c, rand.Reader)
		if err != nil {
			return nil, err
		}
		der, err := x509.MarshalPKCS8PrivateKey(k)
		if err != nil {
			return nil, err
		}
		spki, err := x509.MarshalPKIXPublicKey(&k.PublicKey)
		if err != nil {
			clear(der)
			return nil, err
		}
		g.privDigest = digestOf(der, keyFormatPKCS8)
		g.pubDigest = digestOf(spki, keyFormatX509)
		g.priv = Material{Format: FormatPKCS8, DataType: keyFormatPKCS8, Bytes: der}
		g.pub = Material{Format: FormatSPKI, DataType: keyFormatX509, Bytes: spki}
	}
	return &g, nil
}

// generatePair completes the two prepared objects (whose template
// attributes are applied), generates their material and stores them,
// linked to each other. replaced, for Re-key Key Pair, are the pair they
// replace: the new objects get Replaced Object links to them.
func (e *Engine) generatePair(ctx context.Context, priv, pub *Object, replaced *KeyPair, now time.Time) (*KeyPair, error) {
	s, err := keyPairSpec(priv, pub)
	if err != nil {
		return nil, err
	}
	for _, o := range []*Object{priv, pub} {
		if !o.Attrs.Has(AttrCryptographicUsageMask) {
			o.Attrs.Set(AttrCryptographicUsageMask, defaultPairUsage(s.alg, o.Type))
		}
		o.Attrs.Set(AttrOriginalCreationDate, now)
	}
	priv.Attrs.Add(AttrLink, Link{LinkType: LinkPublicKey, LinkedObjectIdentifier: pub.ID})
	pub.Attrs.Add(AttrLink, Link{LinkType: LinkPrivateKey, LinkedObjectIdentifier: priv.ID})
	if replaced != nil {
		priv.Attrs.Add(AttrLink, Link{LinkType: LinkReplacedObject, LinkedObjectIdentifier: replaced.Private.ID})
		pub.Attrs.Add(AttrLink, Link{LinkType: LinkReplacedObject, LinkedObjectIdentifier: replaced.Public.ID})
	}
	g, err := generate(s)
	if err != nil {
		return nil, err
	}
	defer g.clear()
	priv.Attrs.Add(AttrDigest, g.privDigest)
	pub.Attrs.Add(AttrDigest, g.pubDigest)
	privID, pubID := priv.ID, pub.ID
	sp, err := e.store0(ctx, priv, g.priv, now)
	if err != nil {
		return nil, err
	}
	if sp.ID != privID {
		// store0 drew another identifier (a collision): the public key
		// must link to the one stored.
		relink(pub, LinkPrivateKey, privID, sp.ID)
	}
	spub, err := e.store0(ctx, pub, g.pub, now)
	if err != nil {
		// Without its public half the private key is useless and was
		// never handed out: destroy it.
		e.abandon(ctx, sp)
		return nil, err
	}
	if spub.ID != pubID {
		if sp, err = e.update(ctx, sp.Tenant, sp.ID, func(o *Object, _ time.Time) error {
			relink(o, LinkPublicKey, pubID, spub.ID)
			return nil
		}); err != nil {
			return nil, err
		}
	}
	return &KeyPair{Private: sp, Public: spub}, nil
}

// relink points o's link of type t from one object to another.
func relink(o *Object, t LinkType, from, to string) {
	for _, in := range o.Attrs.Get(AttrLink) {
		if l, ok := in.Value.(Link); ok && l.LinkType == t && l.LinkedObjectIdentifier == from {
			_ = o.Attrs.Replace(AttrLink, in.Index, Link{LinkType: t, LinkedObjectIdentifier: to})
		}
	}
}

// abandon removes an object a failed operation created but never
// returned; a store that cannot remove objects keeps it destroyed.
func (e *Engine) abandon(ctx context.Context, o *Object) {
	ctx = context.WithoutCancel(ctx)
	if d, ok := e.store.(ObjectDeleter); ok {
		if err := d.DeleteObject(ctx, o.Tenant, o.ID, o.Rev); err == nil {
			e.Invalidate(o.Tenant, o.ID)
			return
		}
	}
	_, err := e.update(ctx, o.Tenant, o.ID, func(o *Object, now time.Time) error {
		clear(o.wrapped)
		o.wrapped = nil
		o.State = StateDestroyed
		o.Attrs.Set(AttrDestroyDate, now)
		o.Attrs.Set(AttrKeyValuePresent, false)
		return nil
	})
	if err != nil && !errors.Is(err, ErrNotFound) {
		e.log.Error("could not destroy the half of a key pair whose creation failed", "object", o.ID, "tenant", o.Tenant, "err", err)
	}
}
