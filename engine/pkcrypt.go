package engine

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"fmt"
)

// RSA encryption (KMIP Encrypt with a public key, Decrypt with a private
// key): RSA-OAEP only. The parameters come from the request, else from the
// key's Cryptographic Parameters attribute; OAEP is the default padding and
// SHA-1 the default Hashing Algorithm and Mask Generator Hashing Algorithm,
// as KMIP 1.4 specifies. P Source is the OAEP label.
//
// PKCS#1 v1.5 encryption is refused (Feature Not Supported): its decryption
// is a padding oracle (Bleichenbacher) that a server decrypting for clients
// cannot close. Raw RSA (padding None) is refused likewise. Elliptic-curve
// keys do not encrypt.

// asymmetricTarget reports whether id names a public or private key of the
// caller's tenant: Encrypt and Decrypt then take the RSA path. Any load
// error is left for the symmetric path to report.
func (e *Engine) asymmetricTarget(ctx context.Context, p Principal, id string) bool {
	c, err := e.load(ctx, p.Tenant, id)
	return err == nil && (c.obj.Type == TypePublicKey || c.obj.Type == TypePrivateKey)
}

// oaepHashes are the hashes OAEP takes (KMIP values).
var oaepHashes = map[HashAlgorithm]crypto.Hash{
	HashSHA1: crypto.SHA1, HashSHA224: crypto.SHA224, HashSHA256: crypto.SHA256,
	HashSHA384: crypto.SHA384, HashSHA512: crypto.SHA512,
}

// oaepOptions resolves the OAEP parameters of an RSA Encrypt or Decrypt.
func oaepOptions(o *Object, p CryptographicParameters) (*rsa.OAEPOptions, error) {
	if a := o.Attrs.Algorithm(); a != AlgRSA {
		return nil, errf(ErrNotSupported, "encryption with cryptographic algorithm 0x%X keys is not supported (RSA-OAEP and symmetric keys are)", uint32(a))
	}
	if a := p.CryptographicAlgorithm; a != 0 && a != AlgRSA {
		return nil, errf(ErrInvalidField, "Cryptographic Parameters name algorithm 0x%X, which is not the key's (RSA)", uint32(a))
	}
	if p.BlockCipherMode != 0 {
		return nil, errf(ErrInvalidField, "Block Cipher Mode does not apply to RSA")
	}
	switch p.PaddingMethod {
	case 0, PadOAEP:
	case PadPKCS1:
		return nil, errf(ErrNotSupported, "RSA PKCS#1 v1.5 encryption is not supported: its decryption is a padding oracle; use OAEP")
	case PadNone:
		return nil, errf(ErrNotSupported, "raw RSA (padding None) is not supported; use OAEP")
	default:
		return nil, errf(ErrNotSupported, "padding method 0x%X is not supported for RSA encryption (OAEP is)", uint32(p.PaddingMethod))
	}
	if p.MaskGenerator != 0 && p.MaskGenerator != maskGeneratorMGF1 {
		return nil, errf(ErrNotSupported, "mask generator 0x%X is not supported (MGF1 is)", p.MaskGenerator)
	}
	hash := func(h HashAlgorithm, what string) (crypto.Hash, error) {
		if h == 0 {
			return crypto.SHA1, nil // the KMIP default for OAEP
		}
		ch, ok := oaepHashes[h]
		if !ok {
			return 0, errf(ErrNotSupported, "%s 0x%X is not supported for OAEP (SHA-1, SHA-224, SHA-256, SHA-384, SHA-512 are)", what, uint32(h))
		}
		return ch, nil
	}
	h, err := hash(p.HashingAlgorithm, "hashing algorithm")
	if err != nil {
		return nil, err
	}
	mh, err := hash(p.MaskGeneratorHashingAlgorithm, "mask generator hashing algorithm")
	if err != nil {
		return nil, err
	}
	return &rsa.OAEPOptions{Hash: h, MGFHash: mh, Label: p.PSource}, nil
}

// encryptRSA is Encrypt with an RSA public key.
func (e *Engine) encryptRSA(ctx context.Context, p Principal, req EncryptRequest) (EncryptResult, error) {
	var res EncryptResult
	c, key, err := e.asymmetricKey(ctx, p, req.ID, UsageEncrypt)
	if err != nil {
		return res, err
	}
	res.Object = c.obj.ref()
	pub, ok := key.(*rsa.PublicKey)
	if !ok {
		return res, errf(ErrNotSupported, "encryption with elliptic-curve keys is not supported (RSA-OAEP is)")
	}
	opts, err := oaepOptions(c.obj, e.params(c.obj, req.Params))
	if err != nil {
		return res, err
	}
	if req.IV != nil || req.AAD != nil {
		return res, errf(ErrInvalidField, "RSA-OAEP takes no IV and no additional authenticated data")
	}
	if limit := pub.Size() - 2*opts.Hash.Size() - 2; len(req.Data) > limit {
		return res, errf(ErrInvalidField, "data of %d bytes is too long for RSA-OAEP with this key and hash (at most %d)", len(req.Data), max(limit, 0))
	}
	if err := e.consumeUsage(ctx, c.obj, len(req.Data)); err != nil {
		return res, err
	}
	ct, err := rsa.EncryptOAEPWithOptions(rand.Reader, pub, req.Data, opts)
	if err != nil {
		return res, fmt.Errorf("RSA-OAEP encryption with object %s: %w", c.obj.ID, err)
	}
	res.Ciphertext = ct
	return res, nil
}

// decryptRSA is Decrypt with an RSA private key.
func (e *Engine) decryptRSA(ctx context.Context, p Principal, req DecryptRequest) (*Object, []byte, error) {
	c, key, err := e.asymmetricKey(ctx, p, req.ID, UsageDecrypt)
	if err != nil {
		return nil, nil, err
	}
	priv, ok := key.(*rsa.PrivateKey)
	if !ok {
		return nil, nil, errf(ErrNotSupported, "decryption with elliptic-curve keys is not supported (RSA-OAEP is)")
	}
	opts, err := oaepOptions(c.obj, e.params(c.obj, req.Params))
	if err != nil {
		return nil, nil, err
	}
	if req.IV != nil || req.AAD != nil || req.Tag != nil {
		return nil, nil, errf(ErrInvalidField, "RSA-OAEP takes no IV, additional authenticated data or tag")
	}
	if len(req.Data) != priv.Size() {
		return nil, nil, errf(ErrBadCiphertext, "an RSA-OAEP ciphertext under this key is %d bytes, not %d", priv.Size(), len(req.Data))
	}
	pt, err := priv.Decrypt(nil, req.Data, opts)
	if err != nil {
		// One answer for every failure: no oracle.
		return nil, nil, errf(ErrBadCiphertext, "RSA-OAEP decryption failed")
	}
	return c.obj.ref(), pt, nil
}
