package engine

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"sync"
)

// Keyring holds the root key (one or more versions) and derives from it. It
// never hands the root key out: implementations keep it in process memory
// (SoftKeyring) or inside an HSM (package pkcs11).
type Keyring interface {
	// Derive returns HKDF-Expand-SHA256(PRK=root[version], info, L=32), which
	// is HMAC-SHA256(root[version], info || 0x01).
	Derive(ctx context.Context, version uint32, info []byte) ([]byte, error)
	// Current is the root version new material is wrapped under.
	Current() uint32
}

// RootKeySize is the size of a root key in bytes.
const RootKeySize = 32

// SoftKeyring keeps root keys in process memory.
type SoftKeyring struct {
	mu      sync.RWMutex
	keys    map[uint32][]byte
	current uint32
	// previous holds root keys not yet numbered (rotate_keyring.go).
	previous [][]byte
}

var _ Keyring = (*SoftKeyring)(nil)

// NewSoftKeyring returns a keyring holding root as version 1.
func NewSoftKeyring(root []byte) (*SoftKeyring, error) {
	if len(root) != RootKeySize {
		return nil, fmt.Errorf("root key must be %d bytes, got %d", RootKeySize, len(root))
	}
	k := &SoftKeyring{keys: map[uint32][]byte{}, current: 1}
	k.keys[1] = secureCopy(root) // mlock.go
	return k, nil
}

// ParseRootKeyHex decodes a hex root key (as in MINIKMS_ROOT_KEY).
func ParseRootKeyHex(s string) ([]byte, error) {
	s = strings.TrimSpace(s)
	b, err := hex.DecodeString(s)
	if err != nil {
		return nil, errors.New("root key is not valid hex")
	}
	if len(b) != RootKeySize {
		return nil, fmt.Errorf("root key must be %d bytes (%d hex characters), got %d bytes", RootKeySize, 2*RootKeySize, len(b))
	}
	return b, nil
}

// Derive implements Keyring.
func (k *SoftKeyring) Derive(_ context.Context, version uint32, info []byte) ([]byte, error) {
	k.mu.RLock()
	root, ok := k.keys[version]
	k.mu.RUnlock()
	if !ok {
		return nil, fmt.Errorf("root key version %d is not loaded", version)
	}
	return hkdfExpand32(root, info), nil
}

// Current implements Keyring.
func (k *SoftKeyring) Current() uint32 {
	k.mu.RLock()
	defer k.mu.RUnlock()
	return k.current
}

// Close zeroizes the root keys.
func (k *SoftKeyring) Close() {
	k.mu.Lock()
	defer k.mu.Unlock()
	for v, b := range k.keys {
		releaseKeyBytes(b) // mlock.go: zeroizes
		delete(k.keys, v)
	}
	for _, b := range k.previous {
		releaseKeyBytes(b)
	}
	k.previous = nil
}

// hkdfExpand32 is HKDF-Expand(PRK, info, 32) = T(1) = HMAC(PRK, info || 0x01).
func hkdfExpand32(prk, info []byte) []byte {
	m := hmac.New(sha256.New, prk)
	m.Write(info)
	m.Write([]byte{0x01})
	return m.Sum(nil)
}

const derivationPrefix = "minikms/v1|"

// TenantInfo is the HKDF info for a tenant's master key:
// "minikms/v1|" + salt + "|" + tenant.
func TenantInfo(salt, tenant string) []byte {
	return []byte(derivationPrefix + salt + "|" + tenant)
}

// kcvInfo is the HKDF info of the key check value. It cannot collide with a
// tenant info because it has no second separator.
var kcvInfo = []byte(derivationPrefix + "key-check-value")

// KeyCheckValue returns the check value of a root version: the first 8 bytes
// of a derivation nothing else uses, hex-encoded. It identifies the root key
// without revealing it.
func KeyCheckValue(ctx context.Context, k Keyring, version uint32) (string, error) {
	b, err := k.Derive(ctx, version, kcvInfo)
	if err != nil {
		return "", err
	}
	defer clear(b)
	return hex.EncodeToString(b[:8]), nil
}
