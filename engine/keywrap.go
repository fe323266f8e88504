package engine

import (
	"context"
	"crypto/aes"
	"crypto/rand"
	"crypto/rsa"
	"errors"
	"fmt"
	"slices"
	"time"
)

// Key wrapping (KMIP 1.1+ Get with a Key Wrapping Specification, and
// Register of a Key Block carrying Key Wrapping Data). The engine wraps
// and unwraps bytes; what is wrapped (the raw Key Material, or the TTLV
// encoding of a Key Value with its attributes) is the protocol layer's
// business, handed over as callbacks.
//
// Wrapping methods: Encrypt only. Keys: an AES key encryption key with
// Block Cipher Mode NIST Key Wrap (RFC 3394) or AES Key Wrap with Padding
// (RFC 5649); an RSA public key with OAEP (wrapping) and its private key
// (unwrapping).

// WrappingMethod is the KMIP Wrapping Method.
type WrappingMethod uint32

// Wrapping methods.
const (
	WrapEncrypt            WrappingMethod = 0x01
	WrapMACSign            WrappingMethod = 0x02
	WrapEncryptThenMACSign WrappingMethod = 0x03
	WrapMACSignThenEncrypt WrappingMethod = 0x04
	WrapTR31               WrappingMethod = 0x05
)

// Block cipher modes of key wrapping.
const (
	ModeAESKeyWrapPadding BlockCipherMode = 0x0C // RFC 5649
	ModeNISTKeyWrap       BlockCipherMode = 0x0D // RFC 3394
)

// KeyWrapSpec is a Key Wrapping Specification (Get) or the Key Wrapping
// Data of a registered Key Block.
type KeyWrapSpec struct {
	Method WrappingMethod
	// EncryptionKeyID and EncryptionParams are the Encryption Key
	// Information. Without parameters, those of the key's Cryptographic
	// Parameters attribute that name a key wrap mode apply, else the
	// defaults (NIST Key Wrap, or with Padding for lengths it cannot
	// take; OAEP with SHA-1 for RSA).
	EncryptionKeyID  string
	EncryptionParams *CryptographicParameters
	// MACSignKeyID is the MAC/Signature Key Information: not supported.
	MACSignKeyID string
	// IV is the IV/Counter/Nonce of Key Wrapping Data; the modes this
	// server implements take none.
	IV []byte
}

// WrappedKey is the result of wrapping a key.
type WrappedKey struct {
	Bytes []byte
	// Params are the parameters used, resolved.
	Params CryptographicParameters
}

// errWrappedOnly refuses every use of an object that holds only the
// wrapped form it was registered in.
func errWrappedOnly(id string) error {
	return errf(ErrPermissionDenied, "object %s holds only the wrapped key it was registered with (its wrapping key does not allow Unwrap Key, so the server cannot unwrap it); Get it with Key Wrap Type As Registered", id)
}

func checkMethod(spec KeyWrapSpec) error {
	switch spec.Method {
	case WrapEncrypt:
	case WrapMACSign, WrapEncryptThenMACSign, WrapMACSignThenEncrypt:
		return errf(ErrNotSupported, "the MAC/sign key wrapping methods are not supported (Encrypt is)")
	case WrapTR31:
		return errf(ErrNotSupported, "the TR-31 key wrapping method is not supported (Encrypt is)")
	case 0:
		return errf(ErrMissingData, "the Wrapping Method is required")
	default:
		return errf(ErrInvalidField, "wrapping method 0x%X is not defined", uint32(spec.Method))
	}
	if spec.MACSignKeyID != "" {
		return errf(ErrInvalidField, "MAC/Signature Key Information does not apply to the Encrypt wrapping method")
	}
	if spec.EncryptionKeyID == "" {
		return errf(ErrMissingData, "the Encrypt wrapping method needs Encryption Key Information naming the wrapping key")
	}
	return nil
}

// usageMaskError is the refusal of a key encryption key whose usage mask
// does not allow the use.
type usageMaskError struct{ error }

func (e usageMaskError) Unwrap() error { return e.error }

// wrapper is a loaded key encryption key with its resolved parameters.
type wrapper struct {
	obj    *Object
	params CryptographicParameters
	aes    []byte          // AES key material (caller clears)
	pub    *rsa.PublicKey  // RSA wrapping
	priv   *rsa.PrivateKey // RSA unwrapping
	oaep   *rsa.OAEPOptions
}

func (w *wrapper) clear() {
	clear(w.aes)
	w.priv = nil
}

// keyWrapParams picks the parameters of an AES key wrap: the request's,
// else a Cryptographic Parameters instance of the key naming a key wrap
// mode, else none (the default mode).
func keyWrapParams(kek *Object, req *CryptographicParameters) CryptographicParameters {
	if req != nil {
		return *req
	}
	for _, in := range kek.Attrs.Get(AttrCryptographicParameters) {
		if p, ok := in.Value.(CryptographicParameters); ok && (p.BlockCipherMode == ModeNISTKeyWrap || p.BlockCipherMode == ModeAESKeyWrapPadding) {
			return p
		}
	}
	return CryptographicParameters{}
}

// loadWrapper loads the key encryption key id for use (UsageWrapKey or
// UsageUnwrapKey): its type, state, dates and usage mask are checked.
// wrapped is the object being wrapped (nil when unwrapping).
func (e *Engine) loadWrapper(ctx context.Context, p Principal, id string, params *CryptographicParameters, use UsageMask) (*wrapper, error) {
	c, err := e.load(ctx, p.Tenant, id)
	if errors.Is(err, ErrNotFound) {
		return nil, errf(ErrNotFound, "the wrapping key %s does not exist", id)
	}
	if err != nil {
		return nil, err
	}
	o := c.obj
	if use == UsageUnwrapKey && o.Type == TypePublicKey {
		// A key wrapped under a public key is unwrapped with its private
		// key: follow the Private Key Link.
		priv := ""
		for _, l := range o.Attrs.Links() {
			if l.LinkType == LinkPrivateKey {
				priv = l.LinkedObjectIdentifier
			}
		}
		if priv == "" {
			return nil, errf(ErrIllegalOperation, "the wrapping key %s is a public key without a linked private key on this server: it cannot unwrap", id)
		}
		if c, err = e.load(ctx, p.Tenant, priv); err != nil {
			return nil, errf(ErrNotFound, "the private key %s of wrapping key %s does not exist", priv, id)
		}
		o = c.obj
	}
	verb := "wrap"
	if use == UsageUnwrapKey {
		verb = "unwrap"
	}
	switch o.Type {
	case TypeSymmetricKey:
		if a := o.Attrs.Algorithm(); a != AlgAES {
			return nil, errf(ErrNotSupported, "key wrapping with a symmetric key of algorithm 0x%X is not supported (AES key wrap is)", uint32(a))
		}
	case TypePublicKey:
		if use != UsageWrapKey {
			return nil, errf(ErrIllegalOperation, "a public key wraps; its private key unwraps")
		}
	case TypePrivateKey:
		if use != UsageUnwrapKey {
			return nil, errf(ErrIllegalOperation, "keys are wrapped with the public key of a pair, not the private key")
		}
	default:
		return nil, errf(ErrIllegalOperation, "%s objects cannot %s keys; an AES key or an RSA key can", o.Type, verb)
	}
	now := e.now()
	st := o.EffectiveState(now)
	if use == UsageWrapKey {
		if st != StateActive {
			return nil, errf(ErrWrongState, "the wrapping key is %s; only an Active key wraps", st)
		}
		if ps := o.Attrs.Time(AttrProtectStopDate); !ps.IsZero() && !now.Before(ps) {
			return nil, errf(ErrWrongState, "the wrapping key's Protect Stop Date has passed")
		}
	} else {
		// Unwrapping to register a key: a Compromised key encryption key
		// no longer protects what it wrapped.
		if st != StateActive && st != StateDeactivated {
			return nil, errf(ErrWrongState, "the wrapping key is %s; only an Active or Deactivated key unwraps", st)
		}
		if ps := o.Attrs.Time(AttrProcessStartDate); !ps.IsZero() && now.Before(ps) {
			return nil, errf(ErrWrongState, "the wrapping key's Process Start Date has not come")
		}
	}
	if o.Attrs.UsageMask()&use == 0 {
		return nil, usageMaskError{errf(ErrPermissionDenied, "the wrapping key's Cryptographic Usage Mask does not allow %s Key", map[UsageMask]string{UsageWrapKey: "Wrap", UsageUnwrapKey: "Unwrap"}[use])}
	}
	w := &wrapper{obj: o}
	switch o.Type {
	case TypeSymmetricKey:
		w.params = keyWrapParams(o, params)
		if err := checkKeyWrapParams(w.params); err != nil {
			return nil, err
		}
	default:
		w.params = e.params(o, params)
		if w.oaep, err = oaepOptions(o, w.params); err != nil {
			return nil, err
		}
	}
	k, err := e.key(ctx, c)
	if err != nil {
		return nil, err
	}
	m, err := k.copyMaterial()
	if err != nil {
		return nil, err
	}
	switch o.Type {
	case TypeSymmetricKey:
		w.aes = m.Bytes
		return w, nil
	case TypePublicKey:
		pub, err := ParsePKIXPublicKey(m.Bytes)
		if err != nil {
			return nil, fmt.Errorf("wrapping key %s: %w", o.ID, err)
		}
		rp, ok := pub.(*rsa.PublicKey)
		if !ok {
			return nil, errf(ErrNotSupported, "key wrapping with elliptic-curve keys is not supported (RSA-OAEP is)")
		}
		w.pub = rp
	case TypePrivateKey:
		priv, err := ParsePKCS8PrivateKey(m.Bytes)
		clear(m.Bytes)
		if err != nil {
			return nil, fmt.Errorf("wrapping key %s: %w", o.ID, err)
		}
		rp, ok := priv.(*rsa.PrivateKey)
		if !ok {
			return nil, errf(ErrNotSupported, "key unwrapping with elliptic-curve keys is not supported (RSA-OAEP is)")
		}
		w.priv = rp
	}
	return w, nil
}

// checkKeyWrapParams refuses parameters an AES key wrap cannot honour.
func checkKeyWrapParams(p CryptographicParameters) error {
	if err := validateCryptoParams(p); err != nil {
		return err
	}
	if a := p.CryptographicAlgorithm; a != 0 && a != AlgAES {
		return errf(ErrInvalidField, "Cryptographic Parameters name algorithm 0x%X, which is not the wrapping key's (AES)", uint32(a))
	}
	switch p.BlockCipherMode {
	case 0, ModeNISTKeyWrap, ModeAESKeyWrapPadding:
	default:
		return errf(ErrNotSupported, "key wrapping with block cipher mode 0x%X is not supported (NIST Key Wrap and AES Key Wrap with Padding are)", uint32(p.BlockCipherMode))
	}
	if p.PaddingMethod != 0 && p.PaddingMethod != PadNone {
		return errf(ErrInvalidField, "AES key wrap takes no padding method (AES Key Wrap with Padding pads by itself)")
	}
	if p.RandomIV != nil && *p.RandomIV || p.IVLength != 0 || p.TagLength != 0 {
		return errf(ErrInvalidField, "AES key wrap takes no IV and no tag")
	}
	return nil
}

// wrap wraps plaintext. The mode of an AES key without one is NIST Key
// Wrap when the length allows (a multiple of 8 bytes, at least 16),
// otherwise AES Key Wrap with Padding.
func (w *wrapper) wrap(plaintext []byte) ([]byte, error) {
	if w.pub != nil {
		if limit := w.pub.Size() - 2*w.oaep.Hash.Size() - 2; len(plaintext) > limit {
			return nil, errf(ErrInvalidField, "the key to wrap (%d bytes) is too long for RSA-OAEP with this key and hash (at most %d bytes)", len(plaintext), max(limit, 0))
		}
		out, err := rsa.EncryptOAEPWithOptions(rand.Reader, w.pub, plaintext, w.oaep)
		if err != nil {
			return nil, fmt.Errorf("RSA-OAEP wrapping with object %s: %w", w.obj.ID, err)
		}
		return out, nil
	}
	block, err := aes.NewCipher(w.aes)
	if err != nil {
		return nil, err
	}
	mode := w.params.BlockCipherMode
	if mode == 0 {
		mode = ModeNISTKeyWrap
		if len(plaintext) < kwMinPlain || len(plaintext)%8 != 0 {
			mode = ModeAESKeyWrapPadding
		}
		w.params.BlockCipherMode = mode
	}
	var out []byte
	if mode == ModeNISTKeyWrap {
		out, err = aesKeyWrap(block, plaintext)
	} else {
		out, err = aesKeyWrapPad(block, plaintext)
	}
	if errors.Is(err, errWrapLength) {
		if mode == ModeNISTKeyWrap {
			return nil, errf(ErrInvalidField, "NIST Key Wrap (RFC 3394) wraps a multiple of 8 bytes, at least 16; this key is %d bytes: use AES Key Wrap with Padding", len(plaintext))
		}
		return nil, errf(ErrInvalidField, "the key to wrap is %d bytes, too long to wrap", len(plaintext))
	}
	return out, err
}

// unwrap reverses wrap; a failed integrity check is a Cryptographic
// Failure.
func (w *wrapper) unwrap(wrapped []byte) ([]byte, error) {
	if w.priv != nil {
		if len(wrapped) != w.priv.Size() {
			return nil, errf(ErrCryptoFailure, "an RSA-OAEP wrapped key under this key is %d bytes, not %d", w.priv.Size(), len(wrapped))
		}
		pt, err := w.priv.Decrypt(nil, wrapped, w.oaep)
		if err != nil {
			return nil, errf(ErrCryptoFailure, "the wrapped key does not decrypt under wrapping key %s (wrong key, parameters or data)", w.obj.ID)
		}
		return pt, nil
	}
	block, err := aes.NewCipher(w.aes)
	if err != nil {
		return nil, err
	}
	var pt []byte
	if w.params.BlockCipherMode == ModeAESKeyWrapPadding {
		pt, err = aesKeyUnwrapPad(block, wrapped)
	} else {
		w.params.BlockCipherMode = ModeNISTKeyWrap
		pt, err = aesKeyUnwrap(block, wrapped)
	}
	switch {
	case errors.Is(err, errWrapLength):
		return nil, errf(ErrCryptoFailure, "a wrapped key of %d bytes cannot come from this key wrap mode", len(wrapped))
	case errors.Is(err, errUnwrap):
		return nil, errf(ErrCryptoFailure, "the wrapped key fails the integrity check under wrapping key %s (wrong key, mode or data)", w.obj.ID)
	}
	return pt, err
}

// GetWrapped is Get with a Key Wrapping Specification: it returns the
// object and its key wrapped under the key the specification names. The
// bytes wrapped are what encode makes of the object's material (the raw
// key, or an encoded Key Value); the plaintext never leaves unwrapped. A
// Sensitive object may be wrapped; a non-Extractable one may not.
func (e *Engine) GetWrapped(ctx context.Context, p Principal, id string, spec KeyWrapSpec, encode func(o *Object, m Material) ([]byte, error)) (*Object, WrappedKey, error) {
	var res WrappedKey
	if err := authorize(p, OpGet); err != nil {
		return nil, res, err
	}
	if err := checkMethod(spec); err != nil {
		return nil, res, err
	}
	if spec.IV != nil {
		return nil, res, errf(ErrInvalidField, "key wrapping takes no IV/Counter/Nonce")
	}
	c, err := e.load(ctx, p.Tenant, id)
	if err != nil {
		return nil, res, err
	}
	o := c.obj
	switch o.Type {
	case TypeSymmetricKey, TypeSecretData, TypePrivateKey, TypePublicKey:
	case TypeTemplate:
		return nil, res, errf(ErrIllegalOperation, "a template has no key to wrap")
	default:
		return nil, res, errf(ErrIllegalOperation, "%s objects have no Key Block to wrap", o.Type)
	}
	if o.EffectiveState(e.now()).Destroyed() {
		return nil, res, errf(ErrNotFound, "object %s was destroyed; only its attributes remain", o.ID)
	}
	if !o.HasMaterial() {
		return nil, res, errf(ErrKeyValueNotPresent, "object %s has no key material", o.ID)
	}
	if v, ok := o.Attrs.First(AttrExtractable); ok && v == false {
		return nil, res, errf(ErrNotExtractable, "object %s is not extractable, not even wrapped", o.ID)
	}
	if spec.EncryptionKeyID == o.ID {
		return nil, res, errf(ErrInvalidField, "a key cannot be wrapped under itself")
	}
	w, err := e.loadWrapper(ctx, p, spec.EncryptionKeyID, spec.EncryptionParams, UsageWrapKey)
	if err != nil {
		return nil, res, err
	}
	defer w.clear()
	k, err := e.key(ctx, c)
	if err != nil {
		return nil, res, err
	}
	m, err := k.copyMaterial()
	if err != nil {
		return nil, res, err
	}
	defer clear(m.Bytes)
	pt, err := encode(o.clone(), m)
	if err != nil {
		return nil, res, err
	}
	defer clear(pt)
	if res.Bytes, err = w.wrap(pt); err != nil {
		return nil, res, err
	}
	res.Params = w.params
	if w.pub != nil {
		// Name the OAEP defaults applied, for the receiver.
		if res.Params.PaddingMethod == 0 {
			res.Params.PaddingMethod = PadOAEP
		}
		if res.Params.HashingAlgorithm == 0 {
			res.Params.HashingAlgorithm = HashSHA1
		}
	}
	o, err = e.served(ctx, p, o)
	if err != nil {
		return nil, WrappedKey{}, err
	}
	return o, res, nil
}

// served turns Fresh false once the object's value has been served, and
// returns the object as it now is.
func (e *Engine) served(ctx context.Context, p Principal, o *Object) (*Object, error) {
	if !boolAttr(o.Attrs, AttrFresh) {
		return o.clone(), nil
	}
	return e.update(ctx, p.Tenant, o.ID, func(o *Object, _ time.Time) error {
		if !boolAttr(o.Attrs, AttrFresh) {
			return errNoChange
		}
		o.Attrs.Set(AttrFresh, false)
		return nil
	})
}

// GetAsRegistered is Get with Key Wrap Type As Registered: it returns the
// key block a client registered wrapped, exactly as registered (opaque to
// the engine), or nil when the object was not registered wrapped (it is
// then served as any Get serves it).
func (e *Engine) GetAsRegistered(ctx context.Context, p Principal, id string) (*Object, []byte, error) {
	if err := authorize(p, OpGet); err != nil {
		return nil, nil, err
	}
	c, err := e.load(ctx, p.Tenant, id)
	if err != nil {
		return nil, nil, err
	}
	o := c.obj
	if o.EffectiveState(e.now()).Destroyed() {
		return nil, nil, errf(ErrNotFound, "object %s was destroyed; only its attributes remain", o.ID)
	}
	if !o.HasMaterial() {
		return o.clone(), nil, nil
	}
	if v, ok := o.Attrs.First(AttrExtractable); ok && v == false {
		return nil, nil, errf(ErrNotExtractable, "object %s is not extractable", o.ID)
	}
	raw, err := e.unwrap(ctx, o)
	if err != nil {
		return nil, nil, fmt.Errorf("unwrap object %s: %w", o.ID, err)
	}
	defer clear(raw)
	dm, err := decodeMaterial(raw)
	if err != nil {
		return nil, nil, fmt.Errorf("object %s: %w", o.ID, err)
	}
	if len(dm.Registered) == 0 {
		return o.clone(), nil, nil
	}
	reg := slices.Clone(dm.Registered)
	if o, err = e.served(ctx, p, o); err != nil {
		return nil, nil, err
	}
	return o, reg, nil
}

// RegisterWrapped registers a key that arrives wrapped. wrapped are the
// wrapped bytes; req.Material.Registered is the key block as registered
// (kept for Get As Registered). When the wrapping key allows Unwrap Key,
// the key is unwrapped (a failed integrity check is a Cryptographic
// Failure) and decode turns the plaintext into req's material, algorithm
// and length; the object is then an ordinary key that can also be served
// as registered. When the wrapping key is on this server but does not
// allow Unwrap Key, a symmetric key is stored as registered, never
// unwrapped: it can only be served As Registered.
func (e *Engine) RegisterWrapped(ctx context.Context, p Principal, req RegisterRequest, spec KeyWrapSpec, wrapped []byte, decode func(plain []byte, req *RegisterRequest) error) (*Object, error) {
	if err := authorize(p, OpRegister); err != nil {
		return nil, err
	}
	if err := checkMethod(spec); err != nil {
		return nil, err
	}
	if spec.IV != nil {
		return nil, errf(ErrInvalidField, "the key wrap modes take no IV/Counter/Nonce")
	}
	if len(wrapped) == 0 {
		return nil, errf(ErrMissingData, "the key block has no wrapped Key Value")
	}
	if len(req.Material.Registered) == 0 {
		return nil, errors.New("RegisterWrapped: the registered key block is missing")
	}
	w, err := e.loadWrapper(ctx, p, spec.EncryptionKeyID, spec.EncryptionParams, UsageUnwrapKey)
	if um := (usageMaskError{}); errors.As(err, &um) && req.Type == TypeSymmetricKey {
		return e.registerWrappedOnly(ctx, p, req, spec, wrapped)
	}
	if err != nil {
		return nil, err
	}
	defer w.clear()
	pt, err := w.unwrap(wrapped)
	if err != nil {
		return nil, err
	}
	defer clear(pt)
	reg := req.Material.Registered
	if err := decode(pt, &req); err != nil {
		return nil, err
	}
	defer clear(req.Material.Bytes)
	req.Material.Registered = reg
	return e.Register(ctx, p, req)
}

// registerWrappedOnly stores a symmetric key as registered, wrapped under
// a key that may not unwrap it. Its algorithm and length come from the
// key block (or the template); its Digest is that of the wrapped bytes.
func (e *Engine) registerWrappedOnly(ctx context.Context, p Principal, req RegisterRequest, spec KeyWrapSpec, wrapped []byte) (*Object, error) {
	attrs, err := e.resolveTemplates(ctx, p.Tenant, req.Templates, req.Attrs)
	if err != nil {
		return nil, err
	}
	now := e.now().UTC().Truncate(time.Second)
	o := e.newObject(p, req.Type, now)
	if err := applyTemplate(o, attrs, now); err != nil {
		return nil, err
	}
	alg, bits := req.Algorithm, req.Length
	if ta := o.Attrs.Algorithm(); ta != 0 {
		if alg != 0 && alg != ta {
			return nil, errf(ErrInvalidField, "Cryptographic Algorithm of the template differs from the key block")
		}
		alg = ta
	}
	if tl := o.Attrs.Length(); tl != 0 {
		if bits != 0 && bits != tl {
			return nil, errf(ErrInvalidField, "Cryptographic Length of the template (%d) differs from the key block (%d)", tl, bits)
		}
		bits = tl
	}
	if alg == 0 || bits == 0 {
		return nil, errf(ErrMissingData, "a wrapped symmetric key the server cannot unwrap needs its Cryptographic Algorithm and Length in the key block")
	}
	n, err := symmetricKeyBytes(alg, bits, false)
	if err != nil {
		return nil, err
	}
	if spec.EncryptionParams != nil {
		mode := spec.EncryptionParams.BlockCipherMode
		// Only the raw key can have been wrapped when the sizes say so; a
		// TTLV-encoded Key Value is longer.
		if mode == ModeNISTKeyWrap && len(wrapped) < n+8 || mode == ModeAESKeyWrapPadding && len(wrapped) < (n+7)&^7+8 {
			return nil, errf(ErrInvalidField, "%d wrapped bytes cannot hold a %d-bit key", len(wrapped), bits)
		}
	}
	o.Attrs.Set(AttrCryptographicAlgorithm, alg)
	o.Attrs.Set(AttrCryptographicLength, bits)
	o.Attrs.Add(AttrDigest, digestOf(wrapped, defaultKeyFormat(o.Type, Material{Format: FormatRaw})))
	e.log.Info("wrapped key registered without unwrapping: its wrapping key does not allow Unwrap Key", "tenant", p.Tenant, "wrapping_key", spec.EncryptionKeyID)
	return e.store0(ctx, o, Material{Format: FormatWrappedOnly, Registered: req.Material.Registered}, now)
}
