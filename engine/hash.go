package engine

import (
	"context"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha3"
	"crypto/sha512"
	"hash"
)

// OpHash is the KMIP Hash operation.
const OpHash Op = "Hash"

// Hashing algorithms beyond SHA-1 and SHA-2 (KMIP 1.2 to 1.4).
const (
	HashSHA512224 HashAlgorithm = 0x0C
	HashSHA512256 HashAlgorithm = 0x0D
	HashSHA3224   HashAlgorithm = 0x0E
	HashSHA3256   HashAlgorithm = 0x0F
	HashSHA3384   HashAlgorithm = 0x10
	HashSHA3512   HashAlgorithm = 0x11
)

// hashConstructor returns the hash of a KMIP Hashing Algorithm; MD2, MD4,
// MD5, RIPEMD-160, Tiger and Whirlpool are not supported.
func hashConstructor(h HashAlgorithm) (func() hash.Hash, error) {
	switch h {
	case HashSHA1:
		return sha1.New, nil
	case HashSHA224:
		return sha256.New224, nil
	case HashSHA256:
		return sha256.New, nil
	case HashSHA384:
		return sha512.New384, nil
	case HashSHA512:
		return sha512.New, nil
	case HashSHA512224:
		return sha512.New512_224, nil
	case HashSHA512256:
		return sha512.New512_256, nil
	case HashSHA3224:
		return func() hash.Hash { return sha3.New224() }, nil
	case HashSHA3256:
		return func() hash.Hash { return sha3.New256() }, nil
	case HashSHA3384:
		return func() hash.Hash { return sha3.New384() }, nil
	case HashSHA3512:
		return func() hash.Hash { return sha3.New512() }, nil
	case 0:
		return nil, errf(ErrMissingData, "a Hashing Algorithm is required")
	}
	return nil, errf(ErrNotSupported, "hashing algorithm 0x%X is not supported (SHA-1, SHA-224, SHA-256, SHA-384, SHA-512, SHA-512/224, SHA-512/256 and SHA3-224 to SHA3-512 are)", uint32(h))
}

// Hash digests data with the Hashing Algorithm of the parameters. It uses
// no managed object; the role must still allow cryptographic operations.
func (e *Engine) Hash(_ context.Context, p Principal, params *CryptographicParameters, data []byte) ([]byte, error) {
	if err := authorize(p, OpHash); err != nil {
		return nil, err
	}
	if params == nil || params.HashingAlgorithm == 0 {
		return nil, errf(ErrMissingData, "Hash needs Cryptographic Parameters with a Hashing Algorithm")
	}
	if len(data) > MaxDataSize {
		return nil, errf(ErrLimit, "data larger than %d bytes", MaxDataSize)
	}
	newHash, err := hashConstructor(params.HashingAlgorithm)
	if err != nil {
		return nil, err
	}
	h := newHash()
	h.Write(data)
	return h.Sum(nil), nil
}
