package engine

import (
	"context"
	"crypto/cipher"
	"crypto/pbkdf2"
	"encoding/binary"
	"fmt"
	"slices"
	"time"
)

// OpDeriveKey is the KMIP Derive Key operation.
const OpDeriveKey Op = "DeriveKey"

// DerivationMethod is the KMIP Derivation Method.
type DerivationMethod uint32

// Derivation methods (KMIP 1.4 §9.1.3.2.21).
const (
	DerivePBKDF2        DerivationMethod = 0x01
	DeriveHash          DerivationMethod = 0x02
	DeriveHMAC          DerivationMethod = 0x03
	DeriveEncrypt       DerivationMethod = 0x04
	DeriveNIST800108C   DerivationMethod = 0x05
	DeriveNIST800108F   DerivationMethod = 0x06
	DeriveNIST800108DPI DerivationMethod = 0x07
	DeriveAsymmetricKey DerivationMethod = 0x08
)

// Bounds of a derivation.
const (
	// MaxDerivedBytes bounds the material one Derive Key makes.
	MaxDerivedBytes = 1024
	// MaxPBKDF2Iterations bounds the PBKDF2 work of one request.
	MaxPBKDF2Iterations = 5_000_000
)

// DeriveRequest is a KMIP Derive Key.
type DeriveRequest struct {
	// Type of the new object: Symmetric Key or Secret Data.
	Type ObjectType
	// BaseIDs: the derivation key (or password), optionally with a Secret
	// Data object whose value is the Derivation Data.
	BaseIDs []string
	Method  DerivationMethod
	// Derivation Parameters. Params nil falls back to the base key's
	// Cryptographic Parameters attribute.
	Params         *CryptographicParameters
	IV             []byte
	Data           []byte
	Salt           []byte
	IterationCount *int32
	// Attributes of the new object (Cryptographic Length required; and
	// Cryptographic Algorithm for a key).
	Attrs     []Attribute
	Templates []string
}

// DeriveKey derives a new Symmetric Key or Secret Data object from one or
// two base objects of the caller's tenant (KMIP 1.4 §4.6):
//
//   - PBKDF2 (RFC 8018) from a password (Secret Data) or key: Salt and
//     Iteration Count required; PRF HMAC with the Hashing Algorithm of the
//     Cryptographic Parameters (default SHA-1, as PKCS #5).
//   - HASH: the hash of the base object's value (Hashing Algorithm).
//   - HMAC: the HMAC of the Derivation Data under the base key.
//   - ENCRYPT: the encryption of the Derivation Data under the base key
//     (AES or triple DES; mode, padding and Initialization Vector as given).
//   - NIST800-108-C: the SP 800-108 KDF in counter mode, PRF HMAC or CMAC,
//     the counter (Counter Length bits, default 32) before the fixed input
//     data, which is the Derivation Data as the client built it.
//
// Each base needs the Derive Key usage and an Active state. The new object
// links to its bases (Derivation Base Object) and they to it (Derived Key).
func (e *Engine) DeriveKey(ctx context.Context, p Principal, req DeriveRequest) (*Object, error) {
	if err := authorize(p, OpDeriveKey); err != nil {
		return nil, err
	}
	switch req.Type {
	case TypeSymmetricKey, TypeSecretData:
	default:
		if !req.Type.Valid() {
			return nil, errf(ErrInvalidField, "object type 0x%X is not defined", uint32(req.Type))
		}
		return nil, errf(ErrInvalidField, "Derive Key makes Symmetric Keys or Secret Data, not %s objects", req.Type)
	}
	if err := checkMethodFields(req); err != nil {
		return nil, err
	}
	key, secret, err := e.derivationBases(ctx, p, req)
	if err != nil {
		return nil, err
	}
	data := req.Data
	if secret != nil {
		if req.Method == DerivePBKDF2 || req.Method == DeriveHash {
			return nil, errf(ErrInvalidField, "the %s method derives from one object; a second (Secret Data) supplies Derivation Data to HMAC, ENCRYPT or NIST800-108-C", req.Method)
		}
		if req.Data != nil {
			return nil, errf(ErrInvalidField, "Derivation Data comes either from the request or from the Secret Data object, not both")
		}
		sk, err := e.key(ctx, secret)
		if err != nil {
			return nil, err
		}
		m, err := sk.copyMaterial()
		if err != nil {
			return nil, err
		}
		defer clear(m.Bytes)
		data = m.Bytes
	}

	// The new object and its size.
	attrs, err := e.resolveTemplates(ctx, p.Tenant, req.Templates, req.Attrs)
	if err != nil {
		return nil, err
	}
	var bits int32
	if req.Type == TypeSecretData {
		// Cryptographic Length does not apply to Secret Data objects; here
		// it only says how much to derive, and is not stored.
		attrs = slices.DeleteFunc(slices.Clone(attrs), func(a Attribute) bool {
			if a.Name != AttrCryptographicLength {
				return false
			}
			bits, _ = a.Value.(int32)
			return true
		})
	}
	now := e.now().UTC().Truncate(time.Second)
	o := e.newObject(p, req.Type, now)
	if err := applyTemplate(o, attrs, now); err != nil {
		return nil, err
	}
	if req.Type == TypeSymmetricKey {
		bits = o.Attrs.Length()
	}
	if bits == 0 {
		return nil, errf(ErrMissingData, "Derive Key needs the Cryptographic Length of the new object")
	}
	var n int
	alg := o.Attrs.Algorithm()
	if req.Type == TypeSymmetricKey {
		if alg == 0 {
			return nil, errf(ErrMissingData, "Derive Key needs the Cryptographic Algorithm of the new key")
		}
		if n, err = symmetricKeyBytes(alg, bits, true); err != nil {
			return nil, err
		}
		if !o.Attrs.Has(AttrCryptographicUsageMask) {
			o.Attrs.Set(AttrCryptographicUsageMask, UsageEncrypt|UsageDecrypt)
		}
	} else {
		if bits < 0 || bits%8 != 0 || bits > 8*MaxDerivedBytes {
			return nil, errf(ErrInvalidField, "Cryptographic Length %d is not a whole number of bytes up to %d bits", bits, 8*MaxDerivedBytes)
		}
		n = int(bits / 8)
	}

	// Compute.
	params, err := derivationParams(req.Params, key.obj)
	if err != nil {
		return nil, err
	}
	kk, err := e.key(ctx, key)
	if err != nil {
		return nil, err
	}
	km, err := kk.copyMaterial()
	if err != nil {
		return nil, err
	}
	defer clear(km.Bytes)
	bases := []*cachedObject{key}
	if secret != nil {
		bases = append(bases, secret)
	}
	// Derivation is a use of every base: charged to Usage Limits once the
	// request is known to be valid, before the new material exists.
	out, err := derive(req, params, key.obj, kk, km.Bytes, data, n, func() error {
		for _, b := range bases {
			if err := e.consumeUsage(ctx, b.obj, n); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	defer clear(out)
	m := Material{Format: FormatRaw, Bytes: out}
	if req.Type == TypeSecretData {
		m.DataType = uint32(SecretSeed)
	} else if alg == Alg3DES {
		setDESParity(out)
	}
	for _, b := range bases {
		o.Attrs.Add(AttrLink, Link{LinkType: LinkDerivationBaseObject, LinkedObjectIdentifier: b.obj.ID})
	}
	o.Attrs.Set(AttrOriginalCreationDate, now)
	created, err := e.store0(ctx, o, m, now)
	if err != nil {
		return nil, err
	}
	for _, b := range bases {
		if _, err := e.update(ctx, p.Tenant, b.obj.ID, func(bo *Object, _ time.Time) error {
			if bo.Attrs.Count() >= MaxAttributeInstances {
				return errf(ErrLimit, "the base object %s has %d attribute instances; it cannot link to the derived object %s", bo.ID, MaxAttributeInstances, created.ID)
			}
			bo.Attrs.Add(AttrLink, Link{LinkType: LinkDerivedKey, LinkedObjectIdentifier: created.ID})
			return nil
		}); err != nil {
			return nil, err
		}
	}
	return created, nil
}

func (m DerivationMethod) String() string {
	switch m {
	case DerivePBKDF2:
		return "PBKDF2"
	case DeriveHash:
		return "HASH"
	case DeriveHMAC:
		return "HMAC"
	case DeriveEncrypt:
		return "ENCRYPT"
	case DeriveNIST800108C:
		return "NIST800-108-C"
	case DeriveNIST800108F:
		return "NIST800-108-F"
	case DeriveNIST800108DPI:
		return "NIST800-108-DPI"
	case DeriveAsymmetricKey:
		return "Asymmetric Key"
	}
	return fmt.Sprintf("DerivationMethod(0x%X)", uint32(m))
}

// checkMethodFields refuses unsupported methods and parameters a method
// does not take, before anything is loaded.
func checkMethodFields(req DeriveRequest) error {
	switch req.Method {
	case DerivePBKDF2, DeriveHash, DeriveHMAC, DeriveEncrypt, DeriveNIST800108C:
	case DeriveNIST800108F, DeriveNIST800108DPI, DeriveAsymmetricKey:
		return errf(ErrNotSupported, "derivation method %s is not supported (PBKDF2, HASH, HMAC, ENCRYPT and NIST800-108-C are)", req.Method)
	case 0:
		return errf(ErrMissingData, "Derive Key needs a Derivation Method")
	default:
		return errf(ErrInvalidField, "derivation method 0x%X is not defined", uint32(req.Method))
	}
	if req.Method != DerivePBKDF2 && (req.Salt != nil || req.IterationCount != nil) {
		return errf(ErrInvalidField, "Salt and Iteration Count are parameters of PBKDF2, not of %s", req.Method)
	}
	if req.Method != DeriveEncrypt && req.IV != nil {
		return errf(ErrInvalidField, "an Initialization Vector is a parameter of ENCRYPT, not of %s", req.Method)
	}
	if (req.Method == DerivePBKDF2 || req.Method == DeriveHash) && req.Data != nil {
		return errf(ErrInvalidField, "the %s method derives from the base object alone; it takes no Derivation Data", req.Method)
	}
	switch n := len(req.BaseIDs); {
	case n == 0:
		return errf(ErrMissingData, "Derive Key needs the Unique Identifier of the base object")
	case n > 2:
		return errf(ErrInvalidField, "Derive Key takes at most two base objects (a key and a Secret Data), not %d", n)
	case n == 2 && req.BaseIDs[0] == req.BaseIDs[1]:
		return errf(ErrInvalidField, "the two base objects are the same object")
	}
	if len(req.Data) > MaxDataSize || len(req.Salt) > MaxBytesLength || len(req.IV) > MaxBytesLength {
		return errf(ErrLimit, "Derivation Data, Salt or Initialization Vector too large")
	}
	return nil
}

// derivationBases loads and checks the base objects: key is the derivation
// key (or password), secret the optional Secret Data.
func (e *Engine) derivationBases(ctx context.Context, p Principal, req DeriveRequest) (key, secret *cachedObject, err error) {
	now := e.now()
	var loaded []*cachedObject
	for _, id := range req.BaseIDs {
		c, err := e.load(ctx, p.Tenant, id)
		if err != nil {
			return nil, nil, err
		}
		if c.obj.Type != TypeSymmetricKey && c.obj.Type != TypeSecretData {
			return nil, nil, errf(ErrIllegalOperation, "%s objects cannot be derivation bases; symmetric keys and secret data can", c.obj.Type)
		}
		if err := checkUse(c.obj, now, UsageDeriveKey); err != nil {
			return nil, nil, err
		}
		loaded = append(loaded, c)
	}
	if len(loaded) == 1 {
		return loaded[0], nil, nil
	}
	i := slices.IndexFunc(loaded, func(c *cachedObject) bool { return c.obj.Type == TypeSymmetricKey })
	j := slices.IndexFunc(loaded, func(c *cachedObject) bool { return c.obj.Type == TypeSecretData })
	if i < 0 || j < 0 {
		return nil, nil, errf(ErrInvalidField, "two base objects must be a symmetric key and a Secret Data")
	}
	return loaded[i], loaded[j], nil
}

// derivationParams are the request's Cryptographic Parameters, else the
// base key's attribute.
func derivationParams(req *CryptographicParameters, base *Object) (CryptographicParameters, error) {
	var params CryptographicParameters
	if req != nil {
		params = *req
	} else if v, ok := base.Attrs.First(AttrCryptographicParameters); ok {
		params = v.(CryptographicParameters)
	}
	return params, validateCryptoParams(params)
}

// derive computes n bytes of derived material; charge runs once the
// request is valid, before the computation.
func derive(req DeriveRequest, params CryptographicParameters, base *Object, k *keyEntry, key, data []byte, n int, charge func() error) ([]byte, error) {
	keyAlg := base.Attrs.Algorithm()
	atMost := func(size int) error {
		if n > size {
			return errf(ErrInvalidField, "the %s method yields at most %d bits here; %d were asked", req.Method, 8*size, 8*n)
		}
		return nil
	}
	switch req.Method {
	case DerivePBKDF2:
		if req.Salt == nil {
			return nil, errf(ErrMissingData, "PBKDF2 needs a Salt")
		}
		if req.IterationCount == nil {
			return nil, errf(ErrMissingData, "PBKDF2 needs an Iteration Count")
		}
		iter := *req.IterationCount
		if iter < 1 {
			return nil, errf(ErrInvalidField, "Iteration Count must be positive, not %d", iter)
		}
		if iter > MaxPBKDF2Iterations {
			return nil, errf(ErrLimit, "Iteration Count %d exceeds the %d this server runs", iter, MaxPBKDF2Iterations)
		}
		h := params.HashingAlgorithm
		if h == 0 {
			h = HashSHA1 // the PKCS #5 default PRF, HMAC-SHA-1
			if mh, ok := macHash[params.CryptographicAlgorithm]; ok {
				h = mh
			}
		}
		newHash, err := hashConstructor(h)
		if err != nil {
			return nil, err
		}
		if err := charge(); err != nil {
			return nil, err
		}
		out, err := pbkdf2.Key(newHash, string(key), req.Salt, int(iter), n)
		if err != nil {
			return nil, errf(ErrCryptoFailure, "PBKDF2 failed: %v", err)
		}
		return out, nil

	case DeriveHash:
		if params.HashingAlgorithm == 0 {
			return nil, errf(ErrMissingData, "the HASH method needs a Hashing Algorithm in the Cryptographic Parameters")
		}
		newHash, err := hashConstructor(params.HashingAlgorithm)
		if err != nil {
			return nil, err
		}
		h := newHash()
		if err := atMost(h.Size()); err != nil {
			return nil, err
		}
		if err := charge(); err != nil {
			return nil, err
		}
		h.Write(key)
		sum := h.Sum(nil)
		defer clear(sum)
		return slices.Clone(sum[:n]), nil

	case DeriveHMAC:
		h := params.HashingAlgorithm
		if h == 0 {
			mh, ok := macHash[params.CryptographicAlgorithm]
			if !ok {
				mh, ok = macHash[keyAlg]
			}
			if !ok {
				return nil, errf(ErrMissingData, "the HMAC method needs a Hashing Algorithm (or an HMAC Cryptographic Algorithm) in the Cryptographic Parameters")
			}
			h = mh
		}
		newHash, err := hashConstructor(h)
		if err != nil {
			return nil, err
		}
		if data == nil {
			return nil, errf(ErrMissingData, "the HMAC method needs Derivation Data")
		}
		if err := atMost(newHash().Size()); err != nil {
			return nil, err
		}
		if err := charge(); err != nil {
			return nil, err
		}
		sum := hmacSum(newHash, key, data)
		defer clear(sum)
		return slices.Clone(sum[:n]), nil

	case DeriveEncrypt:
		return deriveByEncryption(req, params, base, k, data, n, charge)

	case DeriveNIST800108C:
		if data == nil {
			return nil, errf(ErrMissingData, "NIST800-108-C needs Derivation Data (the fixed input data)")
		}
		prf, size, err := kdfPRF(params, base, k, key)
		if err != nil {
			return nil, err
		}
		r := params.CounterLength
		if r == 0 {
			r = 32
		}
		if r != 8 && r != 16 && r != 24 && r != 32 {
			return nil, errf(ErrInvalidField, "Counter Length must be 8, 16, 24 or 32 bits, not %d", r)
		}
		blocks := (n + size - 1) / size
		if uint64(blocks) > 1<<uint(r)-1 {
			return nil, errf(ErrInvalidField, "%d bits need more PRF blocks than a %d-bit counter counts", 8*n, r)
		}
		if err := charge(); err != nil {
			return nil, err
		}
		out := make([]byte, 0, blocks*size)
		in := make([]byte, r/8, int(r/8)+len(data))
		in = append(in, data...)
		var ctr [4]byte
		for i := 1; i <= blocks; i++ {
			binary.BigEndian.PutUint32(ctr[:], uint32(i))
			copy(in, ctr[4-r/8:])
			blk, err := prf(in)
			if err != nil {
				clear(out)
				return nil, err
			}
			out = append(out, blk...)
			clear(blk)
		}
		clear(out[n:])
		return out[:n], nil
	}
	return nil, errf(ErrNotSupported, "derivation method %s is not supported", req.Method)
}

// kdfPRF is the pseudorandom function of an SP 800-108 KDF: HMAC when the
// parameters name a hash or an HMAC algorithm (or the key is an HMAC
// key), CMAC when they name AES or triple DES (or the key is one).
func kdfPRF(params CryptographicParameters, base *Object, k *keyEntry, key []byte) (func([]byte) ([]byte, error), int, error) {
	keyAlg := base.Attrs.Algorithm()
	h := params.HashingAlgorithm
	alg := params.CryptographicAlgorithm
	if h == 0 {
		if mh, ok := macHash[alg]; ok {
			h = mh
		} else if alg == 0 {
			if mh, ok := macHash[keyAlg]; ok {
				h = mh
			} else if keyAlg == AlgAES || keyAlg == Alg3DES {
				alg = keyAlg
			}
		}
	}
	if h != 0 {
		newHash, err := hashConstructor(h)
		if err != nil {
			return nil, 0, err
		}
		return func(in []byte) ([]byte, error) { return hmacSum(newHash, key, in), nil }, newHash().Size(), nil
	}
	switch alg {
	case AlgAES, Alg3DES:
		if base.Type != TypeSymmetricKey || keyAlg != alg {
			return nil, 0, errf(ErrInvalidField, "a CMAC PRF with algorithm 0x%X needs a base key of that algorithm", uint32(alg))
		}
		block, _, err := k.cipher(alg)
		if err != nil {
			return nil, 0, err
		}
		return func(in []byte) ([]byte, error) { return cmac(block, in) }, block.BlockSize(), nil
	case 0:
		return nil, 0, errf(ErrMissingData, "NIST800-108-C needs a PRF: a Hashing Algorithm or an HMAC, AES or triple-DES Cryptographic Algorithm in the Cryptographic Parameters")
	}
	return nil, 0, errf(ErrNotSupported, "a PRF with cryptographic algorithm 0x%X is not supported (HMAC and CMAC are)", uint32(alg))
}

// deriveByEncryption encrypts the Derivation Data under the base key; the
// derived value is the first n bytes of the ciphertext.
func deriveByEncryption(req DeriveRequest, params CryptographicParameters, base *Object, k *keyEntry, data []byte, n int, charge func() error) ([]byte, error) {
	alg := base.Attrs.Algorithm()
	if base.Type != TypeSymmetricKey || (alg != AlgAES && alg != Alg3DES) {
		return nil, errf(ErrInvalidField, "the ENCRYPT method needs an AES or triple-DES base key")
	}
	if params.CryptographicAlgorithm != 0 && params.CryptographicAlgorithm != alg {
		return nil, errf(ErrInvalidField, "Cryptographic Parameters name another algorithm than the base key's")
	}
	if data == nil {
		return nil, errf(ErrMissingData, "the ENCRYPT method needs Derivation Data")
	}
	if params.BlockCipherMode == 0 {
		return nil, errf(ErrMissingData, "the ENCRYPT method needs a Block Cipher Mode in the Cryptographic Parameters")
	}
	block, stdGCM, err := k.cipher(alg)
	if err != nil {
		return nil, err
	}
	bs := block.BlockSize()
	iv := req.IV
	needIV := func() error {
		if iv == nil {
			return errf(ErrMissingData, "the ENCRYPT method in this mode needs an Initialization Vector (the derived value must be reproducible)")
		}
		if len(iv) != bs {
			return errf(ErrInvalidField, "the Initialization Vector must be %d bytes, got %d", bs, len(iv))
		}
		return nil
	}
	var out []byte
	switch params.BlockCipherMode {
	case ModeECB, ModeCBC:
		pt, err := pad(data, params.PaddingMethod, bs)
		if err != nil {
			return nil, err
		}
		if params.BlockCipherMode == ModeCBC {
			if err := needIV(); err != nil {
				return nil, err
			}
		} else if iv != nil {
			return nil, errf(ErrInvalidField, "ECB takes no Initialization Vector")
		}
		if len(pt) < n {
			return nil, errf(ErrInvalidField, "encrypting %d bytes yields %d bits; %d were asked", len(data), 8*len(pt), 8*n)
		}
		if err := charge(); err != nil {
			return nil, err
		}
		out = make([]byte, len(pt))
		if params.BlockCipherMode == ModeECB {
			for i := 0; i < len(pt); i += bs {
				block.Encrypt(out[i:i+bs], pt[i:i+bs])
			}
		} else {
			cipher.NewCBCEncrypter(block, iv).CryptBlocks(out, pt)
		}
	case ModeCTR:
		if err := needIV(); err != nil {
			return nil, err
		}
		if len(data) < n {
			return nil, errf(ErrInvalidField, "encrypting %d bytes yields %d bits; %d were asked", len(data), 8*len(data), 8*n)
		}
		if err := charge(); err != nil {
			return nil, err
		}
		out = make([]byte, len(data))
		cipher.NewCTR(block, iv).XORKeyStream(out, data)
	case ModeGCM:
		if stdGCM == nil {
			return nil, errf(ErrInvalidField, "GCM needs a 128-bit block cipher (AES)")
		}
		if iv == nil {
			return nil, errf(ErrMissingData, "the ENCRYPT method in GCM mode needs an Initialization Vector (the derived value must be reproducible)")
		}
		aead, _, err := gcmFor(block, stdGCM, params, iv)
		if err != nil {
			return nil, err
		}
		if len(data) < n {
			return nil, errf(ErrInvalidField, "encrypting %d bytes yields %d bits; %d were asked", len(data), 8*len(data), 8*n)
		}
		if err := charge(); err != nil {
			return nil, err
		}
		out = aead.Seal(nil, iv, data, nil)[:len(data)]
	default:
		return nil, errf(ErrNotSupported, "block cipher mode 0x%X is not supported for ENCRYPT derivation (ECB, CBC, CTR, GCM are)", uint32(params.BlockCipherMode))
	}
	clear(out[n:])
	return out[:n], nil
}
