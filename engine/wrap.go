package engine

import (
	"crypto/cipher"
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"regexp"
)

// Wrapped material format, version 1:
//
//	0x01 | nonce (12) | AES-256-GCM ciphertext | tag (16)
//
// AAD = "minikms/wrap/v1" | u16 len(tenant) | tenant | u16 len(id) | id | u32 root version
//
// so a row copied to another tenant, another object, or relabelled with
// another root version fails to unwrap.
const (
	wrapFormatV1  = 0x01
	wrapNonceSize = 12
	wrapTagSize   = 16
	wrapOverhead  = 1 + wrapNonceSize + wrapTagSize
	// MaxMaterialSize bounds the plaintext key material of one object.
	MaxMaterialSize = 64 << 10
)

var wrapAADPrefix = []byte("minikms/wrap/v1")

func wrapAAD(tenant, id string, rootVersion uint32) []byte {
	aad := make([]byte, 0, len(wrapAADPrefix)+4+len(tenant)+len(id)+4)
	aad = append(aad, wrapAADPrefix...)
	aad = binary.BigEndian.AppendUint16(aad, uint16(len(tenant)))
	aad = append(aad, tenant...)
	aad = binary.BigEndian.AppendUint16(aad, uint16(len(id)))
	aad = append(aad, id...)
	return binary.BigEndian.AppendUint32(aad, rootVersion)
}

// wrapMaterial seals material under the tenant key's AEAD.
func wrapMaterial(aead cipher.AEAD, tenant, id string, rootVersion uint32, material []byte) ([]byte, error) {
	if len(material) > MaxMaterialSize {
		return nil, errf(ErrLimit, "key material larger than %d bytes", MaxMaterialSize)
	}
	out := make([]byte, 1+wrapNonceSize, wrapOverhead+len(material))
	out[0] = wrapFormatV1
	if _, err := rand.Read(out[1 : 1+wrapNonceSize]); err != nil {
		return nil, err
	}
	return aead.Seal(out, out[1:1+wrapNonceSize], material, wrapAAD(tenant, id, rootVersion)), nil
}

// unwrapMaterial opens wrapped material. Any mismatch (tenant, object,
// version, tampering) is an error that names none of the inputs' contents.
func unwrapMaterial(aead cipher.AEAD, tenant, id string, rootVersion uint32, wrapped []byte) ([]byte, error) {
	if len(wrapped) < wrapOverhead || len(wrapped) > wrapOverhead+MaxMaterialSize {
		return nil, fmt.Errorf("wrapped material of object has invalid length %d", len(wrapped))
	}
	if wrapped[0] != wrapFormatV1 {
		return nil, fmt.Errorf("wrapped material has unknown format 0x%02x", wrapped[0])
	}
	nonce := wrapped[1 : 1+wrapNonceSize]
	pt, err := aead.Open(nil, nonce, wrapped[1+wrapNonceSize:], wrapAAD(tenant, id, rootVersion))
	if err != nil {
		return nil, fmt.Errorf("wrapped material does not authenticate for this tenant, object and root version")
	}
	return pt, nil
}

var tenantRe = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,62}$`)

// ValidTenantID reports whether s can name a tenant: 1–63 characters of
// lower-case letters, digits and '-', not starting with '-'.
func ValidTenantID(s string) bool { return tenantRe.MatchString(s) }
