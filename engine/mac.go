package engine

import (
	"context"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/subtle"
	"hash"
	"time"
)

// Operations of this file.
const (
	OpMAC       Op = "MAC"
	OpMACVerify Op = "MACVerify"
)

// KMIP 1.4 HMAC algorithms over SHA-3 (the SHA-2 ones are in types.go).
const (
	AlgHMACSHA3224 Algorithm = 0x23
	AlgHMACSHA3256 Algorithm = 0x24
	AlgHMACSHA3384 Algorithm = 0x25
	AlgHMACSHA3512 Algorithm = 0x26
)

// macHash maps an HMAC Cryptographic Algorithm to its hash.
var macHash = map[Algorithm]HashAlgorithm{
	AlgHMACSHA1: HashSHA1, AlgHMACSHA224: HashSHA224, AlgHMACSHA256: HashSHA256,
	AlgHMACSHA384: HashSHA384, AlgHMACSHA512: HashSHA512,
	AlgHMACSHA3224: HashSHA3224, AlgHMACSHA3256: HashSHA3256, AlgHMACSHA3384: HashSHA3384, AlgHMACSHA3512: HashSHA3512,
}

// isHMACAlgorithm reports the HMAC Cryptographic Algorithms.
func isHMACAlgorithm(a Algorithm) bool { _, ok := macHash[a]; return ok }

// MACRequest is a KMIP MAC (or, with MAC set, MAC Verify).
type MACRequest struct {
	ID string
	// Params from the request; nil falls back to the key's Cryptographic
	// Parameters attribute, then to the key's own algorithm.
	Params *CryptographicParameters
	Data   []byte
	// MAC is the value to verify (MAC Verify only).
	MAC []byte
}

// MACResult is the answer of MAC.
type MACResult struct {
	// Object identifies the key used (identity fields only).
	Object *Object
	MAC    []byte
}

// MAC computes a message authentication code with a symmetric key of the
// caller's tenant: HMAC (SHA-1, SHA-2, SHA-3) or CMAC (AES, triple DES).
// The MAC algorithm is the Cryptographic Algorithm of the parameters when
// they name one (an AES-typed key may be used for HMAC, as in the OASIS
// CS-AC cases), else the key's algorithm.
func (e *Engine) MAC(ctx context.Context, p Principal, req MACRequest) (MACResult, error) {
	var res MACResult
	if err := authorize(p, OpMAC); err != nil {
		return res, err
	}
	c, alg, err := e.macKey(ctx, p, req, UsageMACGenerate)
	if err != nil {
		return res, err
	}
	res.Object = c.obj.ref()
	// Generating a MAC applies protection: it is charged to Usage Limits.
	if err := e.consumeUsage(ctx, c.obj, len(req.Data)); err != nil {
		return res, err
	}
	mac, err := e.computeMAC(ctx, c, alg, req.Data)
	if err != nil {
		return res, err
	}
	res.MAC = mac
	return res, nil
}

// MACVerify verifies a message authentication code; valid is false when the
// MAC does not match (that is a successful verification with a negative
// answer, not an error).
func (e *Engine) MACVerify(ctx context.Context, p Principal, req MACRequest) (obj *Object, valid bool, err error) {
	if err := authorize(p, OpMACVerify); err != nil {
		return nil, false, err
	}
	if req.MAC == nil {
		return nil, false, errf(ErrMissingData, "MAC Verify needs the MAC Data to verify")
	}
	c, alg, err := e.macKey(ctx, p, req, UsageMACVerify)
	if err != nil {
		return nil, false, err
	}
	mac, err := e.computeMAC(ctx, c, alg, req.Data)
	if err != nil {
		return nil, false, err
	}
	return c.obj.ref(), subtle.ConstantTimeCompare(mac, req.MAC) == 1, nil
}

// macKey loads the key, checks its type, state, dates and usage mask for
// use, and resolves the MAC algorithm.
func (e *Engine) macKey(ctx context.Context, p Principal, req MACRequest, use UsageMask) (*cachedObject, Algorithm, error) {
	if len(req.Data) > MaxDataSize {
		return nil, 0, errf(ErrLimit, "data larger than %d bytes", MaxDataSize)
	}
	c, err := e.load(ctx, p.Tenant, req.ID)
	if err != nil {
		return nil, 0, err
	}
	o := c.obj
	if o.Type != TypeSymmetricKey {
		return nil, 0, errf(ErrIllegalOperation, "%s objects cannot compute MACs; a symmetric key can", o.Type)
	}
	if err := checkUse(o, e.now(), use); err != nil {
		return nil, 0, err
	}
	var params CryptographicParameters
	if req.Params != nil {
		params = *req.Params
	} else if v, ok := o.Attrs.First(AttrCryptographicParameters); ok {
		params = v.(CryptographicParameters)
	}
	if err := validateCryptoParams(params); err != nil {
		return nil, 0, err
	}
	keyAlg := o.Attrs.Algorithm()
	alg := params.CryptographicAlgorithm
	if alg == 0 {
		alg = keyAlg
	}
	switch {
	case isHMACAlgorithm(alg):
		if isHMACAlgorithm(keyAlg) && keyAlg != alg {
			return nil, 0, errf(ErrInvalidField, "the Cryptographic Parameters name HMAC algorithm 0x%X, the key is for 0x%X", uint32(alg), uint32(keyAlg))
		}
	case alg == AlgAES || alg == Alg3DES:
		if keyAlg != alg {
			return nil, 0, errf(ErrInvalidField, "CMAC with algorithm 0x%X needs a key of that algorithm; the key is 0x%X", uint32(alg), uint32(keyAlg))
		}
	default:
		return nil, 0, errf(ErrNotSupported, "MAC with cryptographic algorithm 0x%X is not supported (HMAC-SHA-1, HMAC-SHA-2, HMAC-SHA-3, AES-CMAC and triple-DES CMAC are)", uint32(alg))
	}
	return c, alg, nil
}

// computeMAC runs the MAC algorithm with the object's key.
func (e *Engine) computeMAC(ctx context.Context, c *cachedObject, alg Algorithm, data []byte) ([]byte, error) {
	k, err := e.key(ctx, c)
	if err != nil {
		return nil, err
	}
	if h, ok := macHash[alg]; ok {
		newHash, err := hashConstructor(h)
		if err != nil {
			return nil, err
		}
		m, err := k.copyMaterial()
		if err != nil {
			return nil, err
		}
		defer clear(m.Bytes)
		return hmacSum(newHash, m.Bytes, data), nil
	}
	block, _, err := k.cipher(alg)
	if err != nil {
		return nil, err
	}
	return cmac(block, data)
}

func hmacSum(h func() hash.Hash, key, data []byte) []byte {
	mac := hmac.New(h, key)
	mac.Write(data)
	return mac.Sum(nil)
}

// cmac is the CMAC of NIST SP 800-38B (RFC 4493 for AES) over a 64- or
// 128-bit block cipher.
func cmac(b cipher.Block, msg []byte) ([]byte, error) {
	bs := b.BlockSize()
	var rb byte
	switch bs {
	case 16:
		rb = 0x87
	case 8:
		rb = 0x1B
	default:
		return nil, errf(ErrNotSupported, "CMAC needs a 64- or 128-bit block cipher")
	}
	// Subkeys: L = E(K, 0); K1 = L·x; K2 = K1·x in GF(2^n).
	k1 := make([]byte, bs)
	b.Encrypt(k1, k1)
	double := func(d []byte) {
		carry := d[0] >> 7
		for i := 0; i < len(d)-1; i++ {
			d[i] = d[i]<<1 | d[i+1]>>7
		}
		d[len(d)-1] = d[len(d)-1]<<1 ^ byte(subtle.ConstantTimeSelect(int(carry), int(rb), 0))
	}
	double(k1)
	k2 := append([]byte(nil), k1...)
	double(k2)

	n := (len(msg) + bs - 1) / bs
	complete := n > 0 && len(msg)%bs == 0
	if n == 0 {
		n = 1
	}
	last := make([]byte, bs)
	tail := msg[(n-1)*bs:]
	if complete {
		subtle.XORBytes(last, tail, k1)
	} else {
		copy(last, tail)
		last[len(tail)] = 0x80
		subtle.XORBytes(last, last, k2)
	}
	x := make([]byte, bs)
	for i := 0; i < n-1; i++ {
		subtle.XORBytes(x, x, msg[i*bs:(i+1)*bs])
		b.Encrypt(x, x)
	}
	subtle.XORBytes(x, x, last)
	b.Encrypt(x, x)
	clear(k1)
	clear(k2)
	return x, nil
}

// checkUse checks state, dates and usage mask for one use. Uses that apply
// protection (encrypt, sign, MAC generate, wrap, derive) need an Active
// object before its Protect Stop Date; uses that process protected data
// (decrypt, verify, MAC verify, unwrap) also accept Deactivated and
// Compromised objects, once the Process Start Date has come. KMIP 1.x
// answers every such refusal with Permission Denied.
func checkUse(o *Object, now time.Time, use UsageMask) error {
	st := o.EffectiveState(now)
	name := useName(use)
	if processingUse(use) {
		if st != StateActive && st != StateDeactivated && st != StateCompromised {
			return errf(ErrWrongState, "the object is %s; it cannot be used to %s", st, name)
		}
		if ps := o.Attrs.Time(AttrProcessStartDate); !ps.IsZero() && now.Before(ps) {
			return errf(ErrWrongState, "the object's Process Start Date has not come")
		}
	} else {
		if st != StateActive {
			return errf(ErrWrongState, "the object is %s; only an Active object can be used to %s", st, name)
		}
		if ps := o.Attrs.Time(AttrProtectStopDate); !ps.IsZero() && !now.Before(ps) {
			return errf(ErrWrongState, "the object's Protect Stop Date has passed")
		}
	}
	if o.Attrs.UsageMask()&use != use {
		return errf(ErrPermissionDenied, "the object's Cryptographic Usage Mask does not allow it to %s", name)
	}
	return nil
}

// processingUse reports the uses that process already protected data.
func processingUse(use UsageMask) bool {
	switch use {
	case UsageDecrypt, UsageVerify, UsageMACVerify, UsageUnwrapKey:
		return true
	}
	return false
}

var useNames = map[UsageMask]string{
	UsageSign: "sign", UsageVerify: "verify signatures", UsageEncrypt: "encrypt", UsageDecrypt: "decrypt",
	UsageWrapKey: "wrap keys", UsageUnwrapKey: "unwrap keys", UsageExport: "export", UsageMACGenerate: "generate MACs",
	UsageMACVerify: "verify MACs", UsageDeriveKey: "derive keys",
}

func useName(use UsageMask) string {
	if n, ok := useNames[use]; ok {
		return n
	}
	return "do this"
}
