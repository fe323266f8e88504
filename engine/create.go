package engine

import (
	"context"
	"crypto/rand"
	"errors"
	"math/bits"
	"time"
)

// CreateRequest asks for a new server-generated object.
type CreateRequest struct {
	Type  ObjectType
	Attrs []Attribute
	// Templates names server-side templates whose attributes apply.
	Templates []string
}

// RegisterRequest stores client-supplied material.
type RegisterRequest struct {
	Type      ObjectType
	Attrs     []Attribute
	Templates []string
	Material  Material
	// TemplateContent is the attribute list of a Template object.
	TemplateContent []Attribute
	// Digest, when set, is the digest of the key value as the client sent
	// it (the protocol layer computes it over the registered format);
	// otherwise the engine digests the raw material.
	Digest *Digest
	// Algorithm and Length as the key block states them (keys only).
	Algorithm Algorithm
	Length    int32
}

// Create generates a new object. Only symmetric keys can be created; other
// types come from Register (or CreateKeyPair for key pairs).
func (e *Engine) Create(ctx context.Context, p Principal, req CreateRequest) (*Object, error) {
	if err := authorize(p, OpCreate); err != nil {
		return nil, err
	}
	if req.Type != TypeSymmetricKey {
		if !req.Type.Valid() {
			return nil, errf(ErrInvalidField, "object type 0x%X is not defined", uint32(req.Type))
		}
		return nil, errf(ErrInvalidField, "Create makes symmetric keys; %s objects are registered or made by other operations", req.Type)
	}
	attrs, err := e.resolveTemplates(ctx, p.Tenant, req.Templates, req.Attrs)
	if err != nil {
		return nil, err
	}
	now := e.now().UTC().Truncate(time.Second)
	o := e.newObject(p, req.Type, now)
	if err := applyTemplate(o, attrs, now); err != nil {
		return nil, err
	}
	alg, length := o.Attrs.Algorithm(), o.Attrs.Length()
	if alg == 0 {
		return nil, errf(ErrMissingData, "Cryptographic Algorithm is required to create a symmetric key")
	}
	if length == 0 {
		return nil, errf(ErrMissingData, "Cryptographic Length is required to create a symmetric key")
	}
	n, err := symmetricKeyBytes(alg, length, true)
	if err != nil {
		return nil, err
	}
	if !o.Attrs.Has(AttrCryptographicUsageMask) {
		o.Attrs.Set(AttrCryptographicUsageMask, UsageEncrypt|UsageDecrypt)
	}
	key := make([]byte, n)
	defer clear(key)
	if _, err := rand.Read(key); err != nil {
		return nil, err
	}
	if alg == Alg3DES {
		setDESParity(key)
	}
	o.Attrs.Set(AttrOriginalCreationDate, now)
	return e.store0(ctx, o, Material{Format: FormatRaw, Bytes: key}, now)
}

// Register stores client-supplied material as a new object.
func (e *Engine) Register(ctx context.Context, p Principal, req RegisterRequest) (*Object, error) {
	if err := authorize(p, OpRegister); err != nil {
		return nil, err
	}
	attrs, err := e.resolveTemplates(ctx, p.Tenant, req.Templates, req.Attrs)
	if err != nil {
		return nil, err
	}
	switch req.Type {
	case TypeSymmetricKey, TypeSecretData, TypeOpaqueObject, TypePublicKey, TypePrivateKey, TypeCertificate:
	case TypeTemplate:
		return e.registerTemplate(ctx, p, attrs, req.TemplateContent)
	default:
		if !req.Type.Valid() {
			return nil, errf(ErrInvalidField, "object type 0x%X is not defined", uint32(req.Type))
		}
		return nil, errf(ErrNotSupported, "Register of %s objects is not supported", req.Type)
	}
	m := req.Material
	if len(m.Bytes) == 0 {
		return nil, errf(ErrMissingData, "the object carries no key material")
	}
	if len(m.Bytes) > MaxMaterialSize-materialHeader {
		return nil, errf(ErrLimit, "key material larger than %d bytes", MaxMaterialSize-materialHeader)
	}
	now := e.now().UTC().Truncate(time.Second)
	o := e.newObject(p, req.Type, now)
	if err := applyTemplate(o, attrs, now); err != nil {
		return nil, err
	}
	if req.Type == TypeSymmetricKey {
		if m.Format != FormatRaw {
			return nil, errf(ErrKeyFormatNotSupported, "symmetric keys are registered in Raw or Transparent Symmetric Key format")
		}
		alg := req.Algorithm
		if ta := o.Attrs.Algorithm(); ta != 0 {
			if alg != 0 && alg != ta {
				return nil, errf(ErrInvalidField, "Cryptographic Algorithm of the template differs from the key block")
			}
			alg = ta
		}
		if alg == 0 {
			return nil, errf(ErrMissingData, "Cryptographic Algorithm is required to register a symmetric key")
		}
		bits := req.Length
		if tl := o.Attrs.Length(); tl != 0 {
			if bits != 0 && bits != tl {
				return nil, errf(ErrInvalidField, "Cryptographic Length of the template (%d) differs from the key block (%d)", tl, bits)
			}
			bits = tl
		}
		if bits == 0 {
			bits = symmetricBits(alg, len(m.Bytes))
		}
		n, err := symmetricKeyBytes(alg, bits, false)
		if err != nil {
			return nil, err
		}
		if n != len(m.Bytes) {
			return nil, errf(ErrInvalidField, "a %d-bit key has %d bytes of material, not %d", bits, n, len(m.Bytes))
		}
		o.Attrs.Set(AttrCryptographicAlgorithm, alg)
		o.Attrs.Set(AttrCryptographicLength, bits)
	}
	switch req.Type {
	case TypeOpaqueObject:
		m.Format = FormatRaw
	case TypePublicKey, TypePrivateKey:
		shape, _, err := describeAsymmetric(req.Type, m)
		if err != nil {
			return nil, err
		}
		alg := req.Algorithm
		if ta := o.Attrs.Algorithm(); ta != 0 {
			alg = ta
		}
		if alg == 0 {
			alg = shape.family
			if alg == AlgEC {
				alg = AlgECDSA
			}
		}
		if !algorithmFits(alg, shape.family) {
			return nil, errf(ErrInvalidField, "Cryptographic Algorithm 0x%X does not match the key", uint32(alg))
		}
		for _, l := range []int32{req.Length, o.Attrs.Length()} {
			if l != 0 && l != shape.bits {
				return nil, errf(ErrInvalidField, "Cryptographic Length %d does not match the %d-bit key", l, shape.bits)
			}
		}
		o.Attrs.Set(AttrCryptographicAlgorithm, alg)
		o.Attrs.Set(AttrCryptographicLength, shape.bits)
		if shape.curve != 0 && !o.Attrs.Has(AttrCryptographicDomainParameters) {
			o.Attrs.Set(AttrCryptographicDomainParameters, CryptographicDomainParameters{RecommendedCurve: shape.curve})
		}
	case TypeCertificate:
		if _, _, err := describeAsymmetric(req.Type, m); err != nil {
			return nil, err
		}
		if err := certificateAttributes(o, m.Bytes); err != nil {
			return nil, err
		}
	}
	if req.Digest != nil {
		o.Attrs.Add(AttrDigest, *req.Digest)
	}
	return e.store0(ctx, o, m, now)
}

// newObject makes an object with the server-set attributes.
func (e *Engine) newObject(p Principal, t ObjectType, now time.Time) *Object {
	o := &Object{Tenant: p.Tenant, ID: newID(), Type: t, State: StatePreActive, Attrs: NewAttrSet(), Rev: 1}
	o.Attrs.Set(AttrInitialDate, now)
	o.Attrs.Set(AttrLastChangeDate, now)
	return o
}

// store0 finishes a new object (lifecycle, defaults, digest), wraps its
// material and makes it durable.
func (e *Engine) store0(ctx context.Context, o *Object, m Material, now time.Time) (*Object, error) {
	if !o.Attrs.Has(AttrObjectGroup) {
		o.Attrs.Add(AttrObjectGroup, DefaultScope)
	}
	if o.Type.Cryptographic() {
		if ad := o.Attrs.Time(AttrActivationDate); !ad.IsZero() && !now.Before(ad) {
			o.State = StateActive
		}
		if !o.Attrs.Has(AttrCryptographicUsageMask) {
			o.Attrs.Set(AttrCryptographicUsageMask, UsageMask(0))
		}
	}
	if !o.Attrs.Has(AttrDigest) && !(o.Type == TypeSecretData && SecretDataType(m.DataType) == SecretPassword) {
		// A digest of a password would be an offline guessing oracle for
		// anyone who can read attributes; keys and seeds are high-entropy.
		o.Attrs.Add(AttrDigest, digestOf(m.Bytes, defaultKeyFormat(o.Type, m)))
	}
	initUsageLimits(o)
	o.Attrs.Set(AttrFresh, true)
	o.Attrs.Set(AttrKeyValuePresent, true)
	if !o.Attrs.Has(AttrSensitive) {
		o.Attrs.Set(AttrSensitive, false)
	}
	if !o.Attrs.Has(AttrExtractable) {
		o.Attrs.Set(AttrExtractable, true)
	}
	o.Attrs.Set(AttrAlwaysSensitive, boolAttr(o.Attrs, AttrSensitive))
	o.Attrs.Set(AttrNeverExtractable, !boolAttr(o.Attrs, AttrExtractable))
	if o.Attrs.Count() > MaxAttributeInstances {
		return nil, errf(ErrLimit, "more than %d attribute instances", MaxAttributeInstances)
	}
	if err := e.wrap(ctx, o, m); err != nil {
		return nil, err
	}
	for range 3 {
		st, err := o.toStored()
		if err != nil {
			return nil, err
		}
		err = e.store.CreateObject(ctx, st)
		if errors.Is(err, ErrExists) {
			// 122 random bits collided: take another identifier.
			o.ID = newID()
			if err := e.wrap(ctx, o, m); err != nil {
				return nil, err
			}
			continue
		}
		if err != nil {
			return nil, err
		}
		o.Seq = st.Seq
		e.cacheUpdated(o)
		return o, nil
	}
	return nil, errors.New("could not allocate a unique identifier")
}

func boolAttr(s *AttrSet, name string) bool {
	v, _ := s.First(name)
	b, _ := v.(bool)
	return b
}

// defaultKeyFormat is the KMIP Key Format Type the default digest is
// computed over: the format the material is held in.
func defaultKeyFormat(t ObjectType, m Material) uint32 {
	switch {
	case t == TypeOpaqueObject, m.Format == FormatOpaque:
		return 0x02 // Opaque
	case m.Format == FormatPKCS8:
		return 0x04 // PKCS#8
	case m.Format == FormatSPKI, m.Format == FormatX509:
		return 0x05 // X.509
	}
	return 0x01 // Raw
}

// symmetricKeyBytes returns the size of the key material of a symmetric
// key of alg with Cryptographic Length bits. creating restricts algorithms
// to those the server generates.
func symmetricKeyBytes(alg Algorithm, bits int32, creating bool) (int, error) {
	switch alg {
	case AlgAES:
		if bits != 128 && bits != 192 && bits != 256 {
			return 0, errf(ErrInvalidField, "AES keys are 128, 192 or 256 bits, not %d", bits)
		}
		return int(bits / 8), nil
	case Alg3DES:
		// Cryptographic Length counts effective bits: two-key 3DES is 112
		// (16 bytes of material with parity), three-key 168 (24 bytes).
		switch bits {
		case 112, 128:
			return 16, nil
		case 168, 192:
			return 24, nil
		}
		return 0, errf(ErrInvalidField, "triple-DES keys are 112 or 168 bits, not %d", bits)
	case AlgDES:
		if creating {
			return 0, errf(ErrNotSupported, "single DES is broken; the server does not create DES keys")
		}
		if bits != 56 && bits != 64 {
			return 0, errf(ErrInvalidField, "DES keys are 56 bits, not %d", bits)
		}
		return 8, nil
	case AlgSKIPJACK:
		// Key foundry only: 80-bit keys generated for clients that use
		// them elsewhere; the server does not encrypt with SKIPJACK.
		if bits != 80 {
			return 0, errf(ErrInvalidField, "SKIPJACK keys are 80 bits, not %d", bits)
		}
		return 10, nil
	case AlgHMACSHA1, AlgHMACSHA224, AlgHMACSHA256, AlgHMACSHA384, AlgHMACSHA512:
		if bits < 112 || bits > 4096 || bits%8 != 0 {
			return 0, errf(ErrInvalidField, "HMAC keys are 112 to 4096 bits in whole bytes, not %d", bits)
		}
		return int(bits / 8), nil
	}
	if creating {
		return 0, errf(ErrNotSupported, "creating keys of cryptographic algorithm 0x%X is not supported", uint32(alg))
	}
	if bits <= 0 || bits%8 != 0 || bits > 8*MaxMaterialSize {
		return 0, errf(ErrInvalidField, "invalid key length %d", bits)
	}
	return int(bits / 8), nil
}

// symmetricBits is the Cryptographic Length of nbytes of key material.
func symmetricBits(alg Algorithm, nbytes int) int32 {
	switch {
	case alg == Alg3DES && nbytes == 16:
		return 112
	case alg == Alg3DES && nbytes == 24:
		return 168
	case alg == AlgDES && nbytes == 8:
		return 56
	}
	return int32(nbytes * 8)
}

// setDESParity sets the odd parity bit of every byte of a DES key.
func setDESParity(k []byte) {
	for i, b := range k {
		b &= 0xFE
		if bits.OnesCount8(b)%2 == 0 {
			b |= 1
		}
		k[i] = b
	}
}

// applyTemplate applies the attributes of a Create or Register request.
func applyTemplate(o *Object, attrs []Attribute, now time.Time) error {
	if len(attrs) > MaxAttributeInstances {
		return errf(ErrLimit, "more than %d attributes", MaxAttributeInstances)
	}
	seen := map[string]bool{}
	for _, a := range attrs {
		d := LookupAttr(a.Name)
		if d == nil {
			return errf(ErrInvalidField, "unknown attribute %q", a.Name)
		}
		if !d.ClientSettable() {
			return errf(ErrInvalidField, "attribute %q is set by the server", a.Name)
		}
		if !d.AppliesTo(o.Type) {
			return errf(ErrInvalidField, "attribute %q does not apply to %s objects", a.Name, o.Type)
		}
		if err := validateValue(d, a.Value); err != nil {
			return err
		}
		if !d.Multi {
			if seen[a.Name] {
				return errf(ErrInvalidField, "single-instance attribute %q given twice", a.Name)
			}
			seen[a.Name] = true
			o.Attrs.Set(a.Name, a.Value)
			continue
		}
		o.Attrs.Add(a.Name, a.Value)
	}
	return checkDates(o)
}

// checkDates enforces the ordering rules among lifecycle dates.
func checkDates(o *Object) error {
	ad, dd := o.Attrs.Time(AttrActivationDate), o.Attrs.Time(AttrDeactivationDate)
	if !ad.IsZero() && !dd.IsZero() && dd.Before(ad) {
		return errf(ErrInvalidField, "Deactivation Date is before Activation Date")
	}
	return nil
}
