package engine

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/binary"
	"fmt"
	"math/big"
	"slices"
	"time"
)

// Split Key operations (KMIP 1.4 §4.38, §4.39).
const (
	OpCreateSplitKey Op = "CreateSplitKey"
	OpJoinSplitKey   Op = "JoinSplitKey"
)

// SplitKeyMethod is the KMIP Split Key Method.
type SplitKeyMethod uint32

// Split key methods (KMIP 1.4 §9.1.3.2.8).
const (
	SplitXOR        SplitKeyMethod = 0x01
	SplitGF216      SplitKeyMethod = 0x02
	SplitPrimeField SplitKeyMethod = 0x03
	SplitGF28       SplitKeyMethod = 0x04
)

func (m SplitKeyMethod) String() string {
	switch m {
	case SplitXOR:
		return "XOR"
	case SplitGF216:
		return "Polynomial Sharing GF(2^16)"
	case SplitPrimeField:
		return "Polynomial Sharing Prime Field"
	case SplitGF28:
		return "Polynomial Sharing GF(2^8)"
	}
	return fmt.Sprintf("SplitKeyMethod(0x%X)", uint32(m))
}

// Bounds of split keys.
const (
	// MaxSplitKeyParts bounds Split Key Parts (and so Key Part
	// Identifiers): GF(2^8) has 255 non-zero points, and one request
	// creates at most this many objects.
	MaxSplitKeyParts = 255
	// MaxPrimeFieldBits bounds the Prime Field Size.
	MaxPrimeFieldBits = 4160
	// maxSplitSecret bounds the secret a Create Split Key splits.
	maxSplitSecret = 512
)

// SplitKeyInfo is the description of one split key part: the fields of
// the KMIP Split Key object besides its Key Block.
type SplitKeyInfo struct {
	Parts     int32
	PartID    int32
	Threshold int32
	Method    SplitKeyMethod
	// PrimeFieldSize is set for Polynomial Sharing Prime Field only.
	PrimeFieldSize *big.Int
}

// checkSplitParams validates a method, part count, threshold and prime.
func checkSplitParams(method SplitKeyMethod, parts, threshold int32, prime *big.Int) error {
	switch method {
	case SplitXOR, SplitGF216, SplitPrimeField, SplitGF28:
	case 0:
		return errf(ErrMissingData, "a Split Key Method is required")
	default:
		return errf(ErrInvalidField, "split key method 0x%X is not defined", uint32(method))
	}
	if parts == 0 || threshold == 0 {
		return errf(ErrMissingData, "Split Key Parts and Split Key Threshold are required")
	}
	if parts < 1 || parts > MaxSplitKeyParts {
		return errf(ErrInvalidField, "Split Key Parts must be 1 to %d, not %d", MaxSplitKeyParts, parts)
	}
	if threshold < 1 || threshold > parts {
		return errf(ErrInvalidField, "Split Key Threshold must be 1 to Split Key Parts (%d), not %d", parts, threshold)
	}
	if method == SplitXOR && threshold != parts {
		return errf(ErrInvalidField, "with the XOR method every part is needed: Split Key Threshold (%d) must equal Split Key Parts (%d)", threshold, parts)
	}
	if method == SplitPrimeField {
		if prime == nil {
			return errf(ErrMissingData, "Polynomial Sharing Prime Field needs a Prime Field Size")
		}
		if prime.Sign() <= 0 || prime.BitLen() > MaxPrimeFieldBits || prime.Cmp(big.NewInt(MaxSplitKeyParts)) <= 0 {
			return errf(ErrInvalidField, "Prime Field Size must be a prime above %d of at most %d bits", MaxSplitKeyParts, MaxPrimeFieldBits)
		}
		if !prime.ProbablyPrime(20) {
			return errf(ErrInvalidField, "Prime Field Size is not a prime")
		}
	} else if prime != nil {
		return errf(ErrInvalidField, "a Prime Field Size applies only to Polynomial Sharing Prime Field")
	}
	return nil
}

// checkShare validates a share (the Key Material of a part) against its method.
func (in SplitKeyInfo) checkShare(share []byte) error {
	if len(share) == 0 {
		return errf(ErrMissingData, "the split key carries no key material")
	}
	switch in.Method {
	case SplitGF216:
		if len(share)%2 != 0 {
			return errf(ErrInvalidField, "a GF(2^16) share is a whole number of 16-bit elements; %d bytes is not", len(share))
		}
	case SplitPrimeField:
		if new(big.Int).SetBytes(share).Cmp(in.PrimeFieldSize) >= 0 {
			return errf(ErrInvalidField, "the share is not an element of the prime field")
		}
	}
	return nil
}

// validate checks the fields of one part.
func (in SplitKeyInfo) validate() error {
	if err := checkSplitParams(in.Method, in.Parts, in.Threshold, in.PrimeFieldSize); err != nil {
		return err
	}
	if in.PartID < 1 || in.PartID > in.Parts {
		return errf(ErrInvalidField, "Key Part Identifier must be 1 to Split Key Parts (%d), not %d", in.Parts, in.PartID)
	}
	return nil
}

// The material of a split key object: 'S' | u32 parts | u32 part id |
// u32 threshold | u32 method | u32 prime length | prime | share.
const splitHeader = 1 + 5*4

func encodeSplitMaterial(in SplitKeyInfo, share []byte) Material {
	var prime []byte
	if in.PrimeFieldSize != nil {
		prime = in.PrimeFieldSize.Bytes()
	}
	b := make([]byte, splitHeader, splitHeader+len(prime)+len(share))
	b[0] = 'S'
	binary.BigEndian.PutUint32(b[1:], uint32(in.Parts))
	binary.BigEndian.PutUint32(b[5:], uint32(in.PartID))
	binary.BigEndian.PutUint32(b[9:], uint32(in.Threshold))
	binary.BigEndian.PutUint32(b[13:], uint32(in.Method))
	binary.BigEndian.PutUint32(b[17:], uint32(len(prime)))
	b = append(append(b, prime...), share...)
	return Material{Format: FormatRaw, Bytes: b}
}

// DecodeSplitKey splits the material of a Split Key object (as Get
// returns it) into the part's description and its share, which aliases
// m.Bytes.
func DecodeSplitKey(m Material) (SplitKeyInfo, []byte, error) {
	b := m.Bytes
	if len(b) < splitHeader || b[0] != 'S' {
		return SplitKeyInfo{}, nil, fmt.Errorf("split key material has an unknown layout")
	}
	in := SplitKeyInfo{
		Parts: int32(binary.BigEndian.Uint32(b[1:])), PartID: int32(binary.BigEndian.Uint32(b[5:])),
		Threshold: int32(binary.BigEndian.Uint32(b[9:])), Method: SplitKeyMethod(binary.BigEndian.Uint32(b[13:])),
	}
	n := binary.BigEndian.Uint32(b[17:])
	if uint64(n) > uint64(len(b)-splitHeader) {
		return SplitKeyInfo{}, nil, fmt.Errorf("split key material has an unknown layout")
	}
	if n > 0 {
		in.PrimeFieldSize = new(big.Int).SetBytes(b[splitHeader : splitHeader+int(n)])
	}
	return in, b[splitHeader+int(n):], nil
}

// RegisterSplitKey registers one split key part given by a client. share
// is its Key Material (Raw); req.Algorithm and req.Length are those of
// its Key Block (the split key's), both optional.
func (e *Engine) RegisterSplitKey(ctx context.Context, p Principal, req RegisterRequest, in SplitKeyInfo, share []byte) (*Object, error) {
	if err := authorize(p, OpRegister); err != nil {
		return nil, err
	}
	if err := in.validate(); err != nil {
		return nil, err
	}
	if err := in.checkShare(share); err != nil {
		return nil, err
	}
	if len(share) > MaxMaterialSize-materialHeader-splitHeader-MaxPrimeFieldBits/8-1 {
		return nil, errf(ErrLimit, "split key material too large")
	}
	attrs, err := e.resolveTemplates(ctx, p.Tenant, req.Templates, req.Attrs)
	if err != nil {
		return nil, err
	}
	now := e.now().UTC().Truncate(time.Second)
	o := e.newObject(p, TypeSplitKey, now)
	if err := applyTemplate(o, attrs, now); err != nil {
		return nil, err
	}
	if err := setBlockAlgorithm(o, req.Algorithm, req.Length); err != nil {
		return nil, err
	}
	o.Attrs.Add(AttrDigest, digestOf(share, 0x01))
	m := encodeSplitMaterial(in, share)
	defer clear(m.Bytes)
	return e.store0(ctx, o, m, now)
}

// setBlockAlgorithm records the Cryptographic Algorithm and Length a key
// block states, which must agree with the template's.
func setBlockAlgorithm(o *Object, alg Algorithm, length int32) error {
	if ta := o.Attrs.Algorithm(); ta != 0 && alg != 0 && ta != alg {
		return errf(ErrInvalidField, "Cryptographic Algorithm of the template differs from the key block")
	}
	if tl := o.Attrs.Length(); tl != 0 && length != 0 && tl != length {
		return errf(ErrInvalidField, "Cryptographic Length of the template (%d) differs from the key block (%d)", tl, length)
	}
	if length < 0 {
		return errf(ErrInvalidField, "invalid Cryptographic Length %d", length)
	}
	if alg != 0 {
		o.Attrs.Set(AttrCryptographicAlgorithm, alg)
	}
	if length != 0 {
		o.Attrs.Set(AttrCryptographicLength, length)
	}
	return nil
}

// CreateSplitKeyRequest is a KMIP Create Split Key.
type CreateSplitKeyRequest struct {
	// Type must be Split Key.
	Type ObjectType
	// BaseID is the key to split; empty: the server generates a new
	// symmetric key from the template's Cryptographic Algorithm and Length.
	BaseID         string
	Parts          int32
	Threshold      int32
	Method         SplitKeyMethod
	PrimeFieldSize *big.Int
	// Attributes of every part.
	Attrs     []Attribute
	Templates []string
}

// CreateSplitKey splits a symmetric key or secret data (or a new
// symmetric key) into Parts split keys, any Threshold of which rebuild it
// (KMIP 1.4 §4.38). Splitting hands the key out in pieces, so a key that
// may not leave the server (Sensitive, not Extractable) is refused as Get
// would refuse it. The parts link to the key with Parent Links, the key
// to each part with a Child Link.
func (e *Engine) CreateSplitKey(ctx context.Context, p Principal, req CreateSplitKeyRequest) ([]*Object, error) {
	if err := authorize(p, OpCreateSplitKey); err != nil {
		return nil, err
	}
	if req.Type != TypeSplitKey {
		if !req.Type.Valid() {
			return nil, errf(ErrInvalidField, "object type 0x%X is not defined", uint32(req.Type))
		}
		return nil, errf(ErrInvalidField, "Create Split Key makes Split Key objects, not %s objects", req.Type)
	}
	if err := checkSplitParams(req.Method, req.Parts, req.Threshold, req.PrimeFieldSize); err != nil {
		return nil, err
	}
	attrs, err := e.resolveTemplates(ctx, p.Tenant, req.Templates, req.Attrs)
	if err != nil {
		return nil, err
	}
	now := e.now().UTC().Truncate(time.Second)
	// The template applied once to a probe object: it must apply to split
	// keys, and it may name the algorithm and length of a new key.
	probe := e.newObject(p, TypeSplitKey, now)
	if err := applyTemplate(probe, attrs, now); err != nil {
		return nil, err
	}
	var (
		secret []byte
		alg    Algorithm
		length int32
		base   *cachedObject
	)
	if req.BaseID != "" {
		base, err = e.load(ctx, p.Tenant, req.BaseID)
		if err != nil {
			return nil, err
		}
		bo := base.obj
		if bo.Type != TypeSymmetricKey && bo.Type != TypeSecretData {
			return nil, errf(ErrIllegalOperation, "%s objects cannot be split; symmetric keys and secret data can", bo.Type)
		}
		if bo.Attrs.Count()+int(req.Parts) > MaxAttributeInstances {
			return nil, errf(ErrLimit, "object %s cannot take %d more attribute instances (the links to its parts)", bo.ID, req.Parts)
		}
		if bo.EffectiveState(e.now()).Destroyed() {
			return nil, errf(ErrWrongState, "object %s was destroyed; it has no value to split", bo.ID)
		}
		if boolAttr(bo.Attrs, AttrSensitive) {
			return nil, errf(ErrSensitive, "object %s is sensitive: its value may not leave the server, even in parts", bo.ID)
		}
		if v, ok := bo.Attrs.First(AttrExtractable); ok && v == false {
			return nil, errf(ErrNotExtractable, "object %s is not extractable: its value may not leave the server, even in parts", bo.ID)
		}
		k, err := e.key(ctx, base)
		if err != nil {
			return nil, err
		}
		m, err := k.copyMaterial()
		if err != nil {
			return nil, err
		}
		secret = m.Bytes
		if bo.Type == TypeSymmetricKey {
			alg, length = bo.Attrs.Algorithm(), bo.Attrs.Length()
		}
		if (probe.Attrs.Algorithm() != 0 && probe.Attrs.Algorithm() != alg) || (probe.Attrs.Length() != 0 && probe.Attrs.Length() != length) {
			clear(secret)
			return nil, errf(ErrInvalidField, "the template's Cryptographic Algorithm or Length differs from the key being split")
		}
	} else {
		alg, length = probe.Attrs.Algorithm(), probe.Attrs.Length()
		if alg == 0 || length == 0 {
			return nil, errf(ErrMissingData, "without a key to split, Create Split Key needs the Cryptographic Algorithm and Length of the key to generate")
		}
		n, err := symmetricKeyBytes(alg, length, true)
		if err != nil {
			return nil, err
		}
		secret = make([]byte, n)
		if _, err := rand.Read(secret); err != nil {
			return nil, err
		}
		if alg == Alg3DES {
			setDESParity(secret)
		}
	}
	defer clear(secret)
	if len(secret) > maxSplitSecret {
		return nil, errf(ErrLimit, "values above %d bytes are not split", maxSplitSecret)
	}
	shares, err := splitSecret(req.Method, secret, int(req.Parts), int(req.Threshold), req.PrimeFieldSize)
	if err != nil {
		return nil, err
	}
	defer func() {
		for _, s := range shares {
			clear(s)
		}
	}()
	out := make([]*Object, 0, len(shares))
	for i, share := range shares {
		o := e.newObject(p, TypeSplitKey, now)
		if err := applyTemplate(o, attrs, now); err != nil {
			return nil, err
		}
		if alg != 0 {
			o.Attrs.Set(AttrCryptographicAlgorithm, alg)
		}
		if length != 0 {
			o.Attrs.Set(AttrCryptographicLength, length)
		}
		if base != nil {
			o.Attrs.Add(AttrLink, Link{LinkType: LinkParent, LinkedObjectIdentifier: base.obj.ID})
		}
		o.Attrs.Add(AttrDigest, digestOf(share, 0x01))
		o.Attrs.Set(AttrOriginalCreationDate, now)
		in := SplitKeyInfo{Parts: req.Parts, PartID: int32(i + 1), Threshold: req.Threshold, Method: req.Method, PrimeFieldSize: req.PrimeFieldSize}
		m := encodeSplitMaterial(in, share)
		created, err := e.store0(ctx, o, m, now)
		clear(m.Bytes)
		if err != nil {
			return nil, err
		}
		out = append(out, created)
	}
	if base != nil {
		if _, err := e.update(ctx, p.Tenant, base.obj.ID, func(bo *Object, _ time.Time) error {
			if bo.Attrs.Count()+len(out) > MaxAttributeInstances {
				return errf(ErrLimit, "object %s cannot take %d more links to its parts", bo.ID, len(out))
			}
			for _, c := range out {
				bo.Attrs.Add(AttrLink, Link{LinkType: LinkChild, LinkedObjectIdentifier: c.ID})
			}
			return nil
		}); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// JoinSplitKeyRequest is a KMIP Join Split Key.
type JoinSplitKeyRequest struct {
	// Type of the new object: Symmetric Key or Secret Data.
	Type      ObjectType
	IDs       []string
	Attrs     []Attribute
	Templates []string
}

// JoinSplitKey rebuilds a key from at least Split Key Threshold parts of
// one split (KMIP 1.4 §4.39). Too few parts is a Cryptographic Failure.
// The new object links to the parts (Parent Link), each part to it
// (Child Link).
func (e *Engine) JoinSplitKey(ctx context.Context, p Principal, req JoinSplitKeyRequest) (*Object, error) {
	if err := authorize(p, OpJoinSplitKey); err != nil {
		return nil, err
	}
	switch req.Type {
	case TypeSymmetricKey, TypeSecretData:
	case 0:
		return nil, errf(ErrMissingData, "Join Split Key needs the Object Type of the new object")
	default:
		if !req.Type.Valid() {
			return nil, errf(ErrInvalidField, "object type 0x%X is not defined", uint32(req.Type))
		}
		return nil, errf(ErrNotSupported, "Join Split Key makes Symmetric Keys or Secret Data, not %s objects", req.Type)
	}
	if len(req.IDs) == 0 {
		return nil, errf(ErrMissingData, "Join Split Key needs the Unique Identifiers of the parts")
	}
	if len(req.IDs) > MaxSplitKeyParts {
		return nil, errf(ErrInvalidField, "a split has at most %d parts", MaxSplitKeyParts)
	}
	var (
		first  SplitKeyInfo
		xs     []int32
		ys     [][]byte // encoded materials, cleared on return
		shares [][]byte // the shares, aliasing ys
		parts  []*cachedObject
		alg    Algorithm
		length int32
	)
	defer func() {
		for _, y := range ys {
			clear(y)
		}
	}()
	now := e.now()
	for i, id := range req.IDs {
		if slices.Contains(req.IDs[:i], id) {
			return nil, errf(ErrInvalidField, "part %s is given twice", id)
		}
		c, err := e.load(ctx, p.Tenant, id)
		if err != nil {
			return nil, err
		}
		if c.obj.Type != TypeSplitKey {
			return nil, errf(ErrIllegalOperation, "object %s is a %s, not a Split Key", id, c.obj.Type)
		}
		if c.obj.EffectiveState(now).Destroyed() {
			return nil, errf(ErrWrongState, "split key %s was destroyed", id)
		}
		k, err := e.key(ctx, c)
		if err != nil {
			return nil, err
		}
		m, err := k.copyMaterial()
		if err != nil {
			return nil, err
		}
		in, share, err := DecodeSplitKey(m)
		if err != nil {
			clear(m.Bytes)
			return nil, err
		}
		ys = append(ys, m.Bytes)
		if i == 0 {
			first = in
			alg, length = c.obj.Attrs.Algorithm(), c.obj.Attrs.Length()
		} else {
			if in.Parts != first.Parts || in.Threshold != first.Threshold || in.Method != first.Method ||
				!samePrime(in.PrimeFieldSize, first.PrimeFieldSize) ||
				(in.Method != SplitPrimeField && len(share) != len(shares[0])) {
				return nil, errf(ErrInvalidField, "split key %s does not belong to the same split as %s", id, req.IDs[0])
			}
			if slices.Contains(xs, in.PartID) {
				return nil, errf(ErrInvalidField, "split key %s repeats Key Part Identifier %d", id, in.PartID)
			}
		}
		xs = append(xs, in.PartID)
		shares = append(shares, share)
		parts = append(parts, c)
	}
	if len(xs) < int(first.Threshold) {
		return nil, errf(ErrCryptoFailure, "%d parts were given; this split needs %d to be joined", len(xs), first.Threshold)
	}
	secret, err := joinShares(first.Method, xs, shares, first.PrimeFieldSize)
	if err != nil {
		return nil, err
	}
	defer clear(secret)

	attrs, err := e.resolveTemplates(ctx, p.Tenant, req.Templates, req.Attrs)
	if err != nil {
		return nil, err
	}
	nowS := now.UTC().Truncate(time.Second)
	o := e.newObject(p, req.Type, nowS)
	if err := applyTemplate(o, attrs, nowS); err != nil {
		return nil, err
	}
	m := Material{Format: FormatRaw}
	if req.Type == TypeSymmetricKey {
		if ta := o.Attrs.Algorithm(); ta != 0 {
			alg = ta
		}
		if tl := o.Attrs.Length(); tl != 0 {
			length = tl
		}
		if alg == 0 {
			return nil, errf(ErrMissingData, "Join Split Key needs the Cryptographic Algorithm of the new key")
		}
		if length == 0 {
			length = symmetricBits(alg, len(secret))
		}
		n, err := symmetricKeyBytes(alg, length, false)
		if err != nil {
			return nil, err
		}
		if secret, err = fitSecret(first.Method, secret, n); err != nil {
			return nil, err
		}
		o.Attrs.Set(AttrCryptographicAlgorithm, alg)
		o.Attrs.Set(AttrCryptographicLength, length)
		if !o.Attrs.Has(AttrCryptographicUsageMask) {
			o.Attrs.Set(AttrCryptographicUsageMask, UsageEncrypt|UsageDecrypt)
		}
	} else {
		m.DataType = uint32(SecretSeed)
		if length != 0 {
			if secret, err = fitSecret(first.Method, secret, int(length+7)/8); err != nil {
				return nil, err
			}
		}
	}
	m.Bytes = secret
	for _, c := range parts {
		o.Attrs.Add(AttrLink, Link{LinkType: LinkParent, LinkedObjectIdentifier: c.obj.ID})
	}
	o.Attrs.Set(AttrOriginalCreationDate, nowS)
	created, err := e.store0(ctx, o, m, nowS)
	if err != nil {
		return nil, err
	}
	for _, c := range parts {
		if _, err := e.update(ctx, p.Tenant, c.obj.ID, func(po *Object, _ time.Time) error {
			if po.Attrs.Count() >= MaxAttributeInstances {
				return errf(ErrLimit, "split key %s has %d attribute instances; it cannot link to the joined object %s", po.ID, MaxAttributeInstances, created.ID)
			}
			po.Attrs.Add(AttrLink, Link{LinkType: LinkChild, LinkedObjectIdentifier: created.ID})
			return nil
		}); err != nil {
			return nil, err
		}
	}
	return created, nil
}

func samePrime(a, b *big.Int) bool {
	if a == nil || b == nil {
		return a == nil && b == nil
	}
	return a.Cmp(b) == 0
}

// fitSecret adjusts a joined secret to n bytes: a prime-field secret is
// an integer (left-padded, or stripped of leading zeros); the other
// methods yield exactly the secret's bytes.
func fitSecret(method SplitKeyMethod, secret []byte, n int) ([]byte, error) {
	if len(secret) == n {
		return secret, nil
	}
	if method == SplitPrimeField {
		v := new(big.Int).SetBytes(secret)
		if (v.BitLen()+7)/8 <= n {
			out := v.FillBytes(make([]byte, n))
			clear(secret)
			v.SetInt64(0)
			return out, nil
		}
	}
	clear(secret)
	return nil, errf(ErrInvalidField, "the joined value has %d bytes; the new object's Cryptographic Length asks for %d", len(secret), n)
}

// splitSecret makes parts shares of secret, any threshold of which rebuild it.
func splitSecret(method SplitKeyMethod, secret []byte, parts, threshold int, prime *big.Int) ([][]byte, error) {
	shares := make([][]byte, parts)
	switch method {
	case SplitXOR:
		last := slices.Clone(secret)
		for i := 0; i < parts-1; i++ {
			shares[i] = make([]byte, len(secret))
			if _, err := rand.Read(shares[i]); err != nil {
				return nil, err
			}
			subtle.XORBytes(last, last, shares[i])
		}
		shares[parts-1] = last
	case SplitGF28:
		coef := make([]byte, threshold)
		defer clear(coef)
		for i := range shares {
			shares[i] = make([]byte, len(secret))
		}
		for pos, s := range secret {
			coef[0] = s
			if _, err := rand.Read(coef[1:]); err != nil {
				return nil, err
			}
			for i := range shares {
				x, y := byte(i+1), byte(0)
				for j := threshold - 1; j >= 0; j-- {
					y = gf8Mul(y, x) ^ coef[j]
				}
				shares[i][pos] = y
			}
		}
	case SplitGF216:
		if len(secret)%2 != 0 {
			return nil, errf(ErrInvalidField, "GF(2^16) sharing splits values of a whole number of 16-bit elements; this one has %d bytes", len(secret))
		}
		coef := make([]uint16, threshold)
		defer clear(coef)
		rnd := make([]byte, 2*threshold)
		defer clear(rnd)
		for i := range shares {
			shares[i] = make([]byte, len(secret))
		}
		for pos := 0; pos < len(secret); pos += 2 {
			if _, err := rand.Read(rnd); err != nil {
				return nil, err
			}
			coef[0] = binary.BigEndian.Uint16(secret[pos:])
			for j := 1; j < threshold; j++ {
				coef[j] = binary.BigEndian.Uint16(rnd[2*j:])
			}
			for i := range shares {
				x, y := uint16(i+1), uint16(0)
				for j := threshold - 1; j >= 0; j-- {
					y = gf16Mul(y, x) ^ coef[j]
				}
				binary.BigEndian.PutUint16(shares[i][pos:], y)
			}
		}
	case SplitPrimeField:
		s := new(big.Int).SetBytes(secret)
		defer s.SetInt64(0)
		// The prime must exceed 2^L for the L-bit secret (KMIP 1.4 §2.2.5).
		if prime.BitLen()-1 < 8*len(secret) {
			return nil, errf(ErrInvalidField, "Prime Field Size must exceed 2^%d for a %d-bit value", 8*len(secret), 8*len(secret))
		}
		coef := make([]*big.Int, threshold)
		coef[0] = s
		for j := 1; j < threshold; j++ {
			c, err := rand.Int(rand.Reader, prime)
			if err != nil {
				return nil, err
			}
			coef[j] = c
		}
		size := (prime.BitLen() + 7) / 8
		for i := range shares {
			x, y := big.NewInt(int64(i+1)), new(big.Int)
			for j := threshold - 1; j >= 0; j-- {
				y.Mul(y, x).Add(y, coef[j]).Mod(y, prime)
			}
			shares[i] = y.FillBytes(make([]byte, size))
			y.SetInt64(0)
		}
		for _, c := range coef {
			c.SetInt64(0)
		}
	default:
		return nil, errf(ErrInvalidField, "split key method 0x%X is not defined", uint32(method))
	}
	return shares, nil
}

// joinShares rebuilds the secret from shares at the points xs (the Key
// Part Identifiers): the XOR of all parts, or the value at 0 of the
// interpolating polynomial.
func joinShares(method SplitKeyMethod, xs []int32, shares [][]byte, prime *big.Int) ([]byte, error) {
	n := len(shares[0])
	out := make([]byte, n)
	switch method {
	case SplitXOR:
		for _, s := range shares {
			subtle.XORBytes(out, out, s)
		}
	case SplitGF28:
		// Lagrange coefficients at 0: l_i = prod_{j != i} x_j / (x_j + x_i).
		l := make([]byte, len(xs))
		for i := range xs {
			num, den := byte(1), byte(1)
			for j := range xs {
				if j != i {
					num = gf8Mul(num, byte(xs[j]))
					den = gf8Mul(den, byte(xs[j])^byte(xs[i]))
				}
			}
			l[i] = gf8Mul(num, gf8Inv(den))
		}
		for pos := range out {
			var v byte
			for i, s := range shares {
				v ^= gf8Mul(s[pos], l[i])
			}
			out[pos] = v
		}
	case SplitGF216:
		l := make([]uint16, len(xs))
		for i := range xs {
			num, den := uint16(1), uint16(1)
			for j := range xs {
				if j != i {
					num = gf16Mul(num, uint16(xs[j]))
					den = gf16Mul(den, uint16(xs[j])^uint16(xs[i]))
				}
			}
			l[i] = gf16Mul(num, gf16Inv(den))
		}
		for pos := 0; pos+1 < n; pos += 2 {
			var v uint16
			for i, s := range shares {
				v ^= gf16Mul(binary.BigEndian.Uint16(s[pos:]), l[i])
			}
			binary.BigEndian.PutUint16(out[pos:], v)
		}
	case SplitPrimeField:
		sum := new(big.Int)
		for i := range xs {
			num, den := big.NewInt(1), big.NewInt(1)
			for j := range xs {
				if j != i {
					num.Mul(num, big.NewInt(int64(xs[j]))).Mod(num, prime)
					d := big.NewInt(int64(xs[j]) - int64(xs[i]))
					den.Mul(den, d).Mod(den, prime)
				}
			}
			inv := new(big.Int).ModInverse(den, prime)
			if inv == nil {
				return nil, errf(ErrCryptoFailure, "the parts do not interpolate in this field")
			}
			t := new(big.Int).SetBytes(shares[i])
			t.Mul(t, num).Mul(t, inv).Mod(t, prime)
			sum.Add(sum, t).Mod(sum, prime)
			t.SetInt64(0)
		}
		b := sum.Bytes()
		sum.SetInt64(0)
		return b, nil
	default:
		return nil, errf(ErrInvalidField, "split key method 0x%X is not defined", uint32(method))
	}
	return out, nil
}

// Two representations of GF(2^8). Polynomial Sharing GF(2^8) works in
// GF(2)[x]/(x^8+x^4+x^3+x^2+1) (0x11D, the Reed-Solomon field, in which
// the shares of the OASIS vectors TC-SJ-2/3-12 interpolate); GF(2^16) is
// built, as KMIP specifies, over the field of AES (FIPS 197),
// GF(2)[x]/(x^8+x^4+x^3+x+1) (0x11B).
const (
	gf8Poly   = 0x1D // 0x11D
	gfAESPoly = 0x1B // 0x11B
)

func gf256Mul(a, b, poly byte) byte {
	var p byte
	for b != 0 {
		if b&1 != 0 {
			p ^= a
		}
		hi := a & 0x80
		a <<= 1
		if hi != 0 {
			a ^= poly
		}
		b >>= 1
	}
	return p
}

func gf8Mul(a, b byte) byte { return gf256Mul(a, b, gf8Poly) }

// gf8Inv is a^254 (0 for 0).
func gf8Inv(a byte) byte {
	r, x := byte(1), a
	for e := 254; e > 0; e >>= 1 {
		if e&1 != 0 {
			r = gf8Mul(r, x)
		}
		x = gf8Mul(x, x)
	}
	return r
}

// GF(2^16) as KMIP defines it: GF(2^8)[y]/(y^2+y+m), m = {3A}; the
// element uy+v is the byte pair (u, v), here the uint16 u<<8|v.
const gf16M = 0x3A

func aesMul(a, b byte) byte { return gf256Mul(a, b, gfAESPoly) }

func gf16Mul(a, b uint16) uint16 {
	r, s := byte(a>>8), byte(a)
	u, v := byte(b>>8), byte(b)
	// (ry+s)(uy+v) = ru y^2 + (rv+su) y + sv, with y^2 = y + m.
	ru := aesMul(r, u)
	hi := ru ^ aesMul(r, v) ^ aesMul(s, u)
	lo := aesMul(ru, gf16M) ^ aesMul(s, v)
	return uint16(hi)<<8 | uint16(lo)
}

// gf16Inv is a^(2^16-2) (0 for 0).
func gf16Inv(a uint16) uint16 {
	r, x := uint16(1), a
	for e := 0xFFFE; e > 0; e >>= 1 {
		if e&1 != 0 {
			r = gf16Mul(r, x)
		}
		x = gf16Mul(x, x)
	}
	return r
}
