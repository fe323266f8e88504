package engine

import (
	"context"
	"crypto/cipher"
	"crypto/rand"
	"crypto/subtle"
	"time"
)

// MaxDataSize bounds the data of one Encrypt or Decrypt.
const MaxDataSize = 1 << 20

// EncryptRequest is a KMIP Encrypt with a symmetric key.
type EncryptRequest struct {
	ID string
	// Params from the request; nil falls back to the object's Cryptographic
	// Parameters attribute, then to AES-GCM.
	Params *CryptographicParameters
	Data   []byte
	IV     []byte
	AAD    []byte
}

// EncryptResult carries what the client needs to decrypt.
type EncryptResult struct {
	// Object identifies the key used (identity fields only; its
	// attribute set is empty).
	Object     *Object
	Ciphertext []byte
	// IV is set when the server generated it.
	IV []byte
	// Tag is the authentication tag of AEAD modes.
	Tag []byte
}

// DecryptRequest is a KMIP Decrypt with a symmetric key.
type DecryptRequest struct {
	ID     string
	Params *CryptographicParameters
	Data   []byte
	IV     []byte
	AAD    []byte
	Tag    []byte
}

// Defaults of AES-GCM.
const (
	gcmNonceSize = 12
	gcmTagSize   = 16
)

// Encrypt encrypts with a symmetric key of the caller's tenant.
func (e *Engine) Encrypt(ctx context.Context, p Principal, req EncryptRequest) (EncryptResult, error) {
	var res EncryptResult
	if err := authorize(p, OpEncrypt); err != nil {
		return res, err
	}
	if e.asymmetricTarget(ctx, p, req.ID) {
		return e.encryptRSA(ctx, p, req) // pkcrypt.go
	}
	c, k, params, err := e.cryptoKey(ctx, p, req.ID, req.Params, UsageEncrypt)
	if err != nil {
		return res, err
	}
	res.Object = c.obj.ref()
	if len(req.Data) > MaxDataSize {
		return res, errf(ErrLimit, "data larger than %d bytes", MaxDataSize)
	}
	block, stdGCM, err := k.cipher(c.obj.Attrs.Algorithm())
	if err != nil {
		return res, err
	}
	// Usage Limits are charged once the request is known to be valid,
	// right before the cipher runs: a refused request costs nothing.
	charge := func() error { return e.consumeUsage(ctx, c.obj, len(req.Data)) }
	bs := block.BlockSize()
	switch params.BlockCipherMode {
	case ModeGCM:
		if stdGCM == nil {
			return res, errf(ErrInvalidField, "GCM needs a 128-bit block cipher (AES)")
		}
		aead, nonceSize, err := gcmFor(block, stdGCM, params, req.IV)
		if err != nil {
			return res, err
		}
		iv := req.IV
		if iv == nil {
			if params.RandomIV != nil && !*params.RandomIV {
				return res, errf(ErrMissingData, "an IV is required when Random IV is false")
			}
			iv = make([]byte, nonceSize)
			if _, err := rand.Read(iv); err != nil {
				return res, err
			}
			res.IV = iv
			// NIST SP 800-38D §8.3 bound on random IVs (rekey.go).
			if err := e.reserveGCM(ctx, c.obj, k); err != nil {
				return res, err
			}
		}
		if err := charge(); err != nil {
			return res, err
		}
		sealed := aead.Seal(nil, iv, req.Data, req.AAD)
		n := len(sealed) - aead.Overhead()
		res.Ciphertext, res.Tag = sealed[:n], sealed[n:]
	case ModeCBC, ModeECB:
		pt, err := pad(req.Data, params.PaddingMethod, bs)
		if err != nil {
			return res, err
		}
		out := make([]byte, len(pt))
		if params.BlockCipherMode == ModeECB {
			if req.IV != nil {
				return res, errf(ErrInvalidField, "ECB takes no IV")
			}
			if err := charge(); err != nil {
				return res, err
			}
			for i := 0; i < len(pt); i += bs {
				block.Encrypt(out[i:i+bs], pt[i:i+bs])
			}
		} else {
			iv, gen, err := blockIV(req.IV, params, bs)
			if err != nil {
				return res, err
			}
			if gen {
				res.IV = iv
			}
			if err := charge(); err != nil {
				return res, err
			}
			cipher.NewCBCEncrypter(block, iv).CryptBlocks(out, pt)
		}
		res.Ciphertext = out
	case ModeCTR:
		iv, gen, err := blockIV(req.IV, params, bs)
		if err != nil {
			return res, err
		}
		if gen {
			res.IV = iv
		}
		if err := charge(); err != nil {
			return res, err
		}
		out := make([]byte, len(req.Data))
		cipher.NewCTR(block, iv).XORKeyStream(out, req.Data)
		res.Ciphertext = out
	default:
		return res, errf(ErrNotSupported, "block cipher mode 0x%X is not supported (GCM, CBC, ECB, CTR are)", uint32(params.BlockCipherMode))
	}
	return res, nil
}

// Decrypt decrypts with a symmetric key of the caller's tenant.
func (e *Engine) Decrypt(ctx context.Context, p Principal, req DecryptRequest) (*Object, []byte, error) {
	if err := authorize(p, OpDecrypt); err != nil {
		return nil, nil, err
	}
	if e.asymmetricTarget(ctx, p, req.ID) {
		return e.decryptRSA(ctx, p, req) // pkcrypt.go
	}
	c, k, params, err := e.cryptoKey(ctx, p, req.ID, req.Params, UsageDecrypt)
	if err != nil {
		return nil, nil, err
	}
	if len(req.Data) > MaxDataSize {
		return nil, nil, errf(ErrLimit, "data larger than %d bytes", MaxDataSize)
	}
	block, stdGCM, err := k.cipher(c.obj.Attrs.Algorithm())
	if err != nil {
		return nil, nil, err
	}
	bs := block.BlockSize()
	switch params.BlockCipherMode {
	case ModeGCM:
		if stdGCM == nil {
			return nil, nil, errf(ErrInvalidField, "GCM needs a 128-bit block cipher (AES)")
		}
		if req.IV == nil {
			return nil, nil, errf(ErrInvalidMessage, "GCM decryption needs the IV")
		}
		aead, _, err := gcmFor(block, stdGCM, params, req.IV)
		if err != nil {
			return nil, nil, err
		}
		data := req.Data
		if req.Tag != nil {
			if len(req.Tag) != aead.Overhead() {
				return nil, nil, errf(ErrInvalidField, "authentication tag is %d bytes, expected %d", len(req.Tag), aead.Overhead())
			}
			data = append(append(make([]byte, 0, len(data)+len(req.Tag)), data...), req.Tag...)
		} else if len(data) < aead.Overhead() {
			return nil, nil, errf(ErrInvalidField, "data is shorter than the authentication tag")
		}
		pt, err := aead.Open(nil, req.IV, data, req.AAD)
		if err != nil {
			return nil, nil, errf(ErrCryptoFailure, "authentication tag does not verify")
		}
		return c.obj.ref(), pt, nil
	case ModeCBC, ModeECB:
		if len(req.Data)%bs != 0 || (len(req.Data) == 0 && params.PaddingMethod == PadPKCS5) {
			return nil, nil, errf(ErrBadCiphertext, "ciphertext length %d is not a multiple of the %d-byte block", len(req.Data), bs)
		}
		out := make([]byte, len(req.Data))
		if params.BlockCipherMode == ModeECB {
			for i := 0; i < len(out); i += bs {
				block.Decrypt(out[i:i+bs], req.Data[i:i+bs])
			}
		} else {
			if req.IV == nil {
				return nil, nil, errf(ErrInvalidMessage, "CBC decryption needs the IV")
			}
			if len(req.IV) != bs {
				return nil, nil, errf(ErrInvalidField, "CBC needs a %d-byte IV, got %d bytes", bs, len(req.IV))
			}
			cipher.NewCBCDecrypter(block, req.IV).CryptBlocks(out, req.Data)
		}
		pt, err := unpad(out, params.PaddingMethod, bs)
		if err != nil {
			clear(out)
			return nil, nil, err
		}
		return c.obj.ref(), pt, nil
	case ModeCTR:
		if req.IV == nil {
			return nil, nil, errf(ErrInvalidMessage, "CTR decryption needs the initial counter block")
		}
		if len(req.IV) != bs {
			return nil, nil, errf(ErrInvalidField, "CTR needs a %d-byte IV (initial counter block), got %d bytes", bs, len(req.IV))
		}
		out := make([]byte, len(req.Data))
		cipher.NewCTR(block, req.IV).XORKeyStream(out, req.Data)
		return c.obj.ref(), out, nil
	}
	return nil, nil, errf(ErrNotSupported, "block cipher mode 0x%X is not supported (GCM, CBC, ECB, CTR are)", uint32(params.BlockCipherMode))
}

// cryptoKey loads the key, checks state, dates and usage, and resolves the
// parameters.
func (e *Engine) cryptoKey(ctx context.Context, p Principal, id string, reqParams *CryptographicParameters, use UsageMask) (*cachedObject, *keyEntry, CryptographicParameters, error) {
	var params CryptographicParameters
	c, err := e.load(ctx, p.Tenant, id)
	if err != nil {
		return nil, nil, params, err
	}
	o := c.obj
	if o.Type != TypeSymmetricKey {
		return nil, nil, params, errf(ErrIllegalOperation, "%s objects cannot %s here; a symmetric key can", o.Type, opVerb(use))
	}
	now := e.now()
	if err := usable(o, now, use); err != nil {
		return nil, nil, params, err
	}
	alg := o.Attrs.Algorithm()
	if alg != AlgAES && alg != Alg3DES {
		return nil, nil, params, errf(ErrNotSupported, "encryption with cryptographic algorithm 0x%X is not supported (AES and triple DES are)", uint32(alg))
	}
	switch {
	case reqParams != nil:
		params = *reqParams
	default:
		if v, ok := o.Attrs.First(AttrCryptographicParameters); ok {
			params = v.(CryptographicParameters)
		}
	}
	if err := validateCryptoParams(params); err != nil {
		return nil, nil, params, err
	}
	if params.CryptographicAlgorithm != 0 && params.CryptographicAlgorithm != alg {
		return nil, nil, params, errf(ErrInvalidField, "Cryptographic Parameters name another algorithm than the key's")
	}
	if params.BlockCipherMode == 0 {
		// No mode asked and none on the key: authenticated encryption for
		// AES; triple DES has no AEAD mode, so CBC with PKCS#5 padding.
		params.BlockCipherMode = ModeGCM
		if alg == Alg3DES {
			params.BlockCipherMode, params.PaddingMethod = ModeCBC, PadPKCS5
		}
	}
	k, err := e.key(ctx, c)
	if err != nil {
		return nil, nil, params, err
	}
	return c, k, params, nil
}

func opVerb(use UsageMask) string {
	if use == UsageEncrypt {
		return "encrypt"
	}
	return "decrypt"
}

// usable checks state, process/protect dates and usage mask for one use.
// KMIP 1.x answers every such refusal with Permission Denied.
func usable(o *Object, now time.Time, use UsageMask) error {
	st := o.EffectiveState(now)
	switch use {
	case UsageEncrypt:
		if st != StateActive {
			return errf(ErrWrongState, "the key is %s; only an Active key encrypts", st)
		}
		if ps := o.Attrs.Time(AttrProtectStopDate); !ps.IsZero() && !now.Before(ps) {
			return errf(ErrWrongState, "the key's Protect Stop Date has passed")
		}
	case UsageDecrypt:
		if st != StateActive && st != StateDeactivated && st != StateCompromised {
			return errf(ErrWrongState, "the key is %s; it cannot decrypt", st)
		}
		if ps := o.Attrs.Time(AttrProcessStartDate); !ps.IsZero() && now.Before(ps) {
			return errf(ErrWrongState, "the key's Process Start Date has not come")
		}
	}
	if o.Attrs.UsageMask()&use == 0 {
		return errf(ErrPermissionDenied, "the key's Cryptographic Usage Mask does not allow %s", opVerb(use))
	}
	return nil
}

// gcmFor returns the AEAD for the parameters: the cached standard one
// (12-byte nonce, 16-byte tag) or a specific one.
func gcmFor(block cipher.Block, std cipher.AEAD, p CryptographicParameters, iv []byte) (cipher.AEAD, int, error) {
	nonce := gcmNonceSize
	if iv != nil {
		nonce = len(iv)
	} else if p.IVLength > 0 {
		if p.IVLength%8 != 0 {
			return nil, 0, errf(ErrInvalidField, "IV Length is in bits and must be whole bytes")
		}
		nonce = int(p.IVLength / 8)
	}
	tag := gcmTagSize
	if p.TagLength > 0 {
		tag = int(p.TagLength)
	}
	if nonce < 1 || nonce > 128 {
		return nil, 0, errf(ErrInvalidField, "GCM IV of %d bytes is not allowed", nonce)
	}
	switch {
	case tag == 4 || tag == 8:
		return nil, 0, errf(ErrNotSupported, "GCM tags of %d bytes are not supported (12 to 16 are)", tag)
	case tag < 12 || tag > 16:
		return nil, 0, errf(ErrInvalidField, "%d bytes is not a GCM tag length (SP 800-38D allows 4, 8 and 12 to 16)", tag)
	}
	switch {
	case nonce == gcmNonceSize && tag == gcmTagSize:
		return std, nonce, nil
	case tag == gcmTagSize:
		a, err := cipher.NewGCMWithNonceSize(block, nonce)
		return a, nonce, err
	case nonce == gcmNonceSize:
		a, err := cipher.NewGCMWithTagSize(block, tag)
		return a, nonce, err
	}
	return nil, 0, errf(ErrNotSupported, "GCM with both a %d-byte IV and a %d-byte tag is not supported", nonce, tag)
}

// blockIV returns the client's IV (one block) or a fresh random one.
func blockIV(iv []byte, p CryptographicParameters, bs int) ([]byte, bool, error) {
	if iv != nil {
		if len(iv) != bs {
			return nil, false, errf(ErrInvalidField, "the IV must be %d bytes, got %d", bs, len(iv))
		}
		return iv, false, nil
	}
	if p.RandomIV != nil && !*p.RandomIV {
		return nil, false, errf(ErrMissingData, "an IV is required when Random IV is false")
	}
	iv = make([]byte, bs)
	if _, err := rand.Read(iv); err != nil {
		return nil, false, err
	}
	return iv, true, nil
}

func pad(data []byte, m PaddingMethod, bs int) ([]byte, error) {
	switch m {
	case PadPKCS5:
		n := bs - len(data)%bs
		out := make([]byte, len(data)+n)
		copy(out, data)
		for i := len(data); i < len(out); i++ {
			out[i] = byte(n)
		}
		return out, nil
	case 0, PadNone:
		if len(data)%bs != 0 {
			return nil, errf(ErrInvalidField, "data length %d is not a multiple of the block size and no padding was asked", len(data))
		}
		return data, nil
	}
	return nil, errf(ErrNotSupported, "padding method 0x%X is not supported for block ciphers (None, PKCS5 are)", uint32(m))
}

func unpad(data []byte, m PaddingMethod, bs int) ([]byte, error) {
	switch m {
	case PadPKCS5:
		n := int(data[len(data)-1])
		// Constant-time check of the padding bytes.
		good := subtle.ConstantTimeLessOrEq(1, n) & subtle.ConstantTimeLessOrEq(n, bs)
		for i := 1; i <= bs; i++ {
			inPad := subtle.ConstantTimeLessOrEq(i, n)
			match := subtle.ConstantTimeByteEq(data[len(data)-i], byte(n))
			good &= subtle.ConstantTimeSelect(inPad, match, 1)
		}
		if good != 1 {
			return nil, errf(ErrBadCiphertext, "padding is invalid")
		}
		return data[:len(data)-n], nil
	case 0, PadNone:
		return data, nil
	}
	return nil, errf(ErrNotSupported, "padding method 0x%X is not supported for block ciphers (None, PKCS5 are)", uint32(m))
}
