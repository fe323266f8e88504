package engine

import (
	"context"
	"encoding/hex"
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// Root key versions (root rotation, rotate.go).
//
// The store records the key check value of every root version it knows
// ("root.kcv.<version>"). A software keyring is given its keys without
// version numbers (MINIKMS_ROOT_KEY, MINIKMS_ROOT_KEY_PREVIOUS): when the
// engine opens, each key is matched by its check value to the version the
// store recorded for it. So a server started with the new root as
// MINIKMS_ROOT_KEY and the old one as MINIKMS_ROOT_KEY_PREVIOUS writes
// under the new version and still reads the old one while a rotation
// re-wraps the objects.

// NewSoftKeyringWithPrevious returns a keyring whose current root is root
// and that also holds previous roots, to read what is still wrapped under
// them. Versions are assigned when the engine opens (by key check value).
func NewSoftKeyringWithPrevious(root []byte, previous ...[]byte) (*SoftKeyring, error) {
	k, err := NewSoftKeyring(root)
	if err != nil {
		return nil, err
	}
	for i, p := range previous {
		if len(p) != RootKeySize {
			k.Close()
			return nil, fmt.Errorf("previous root key %d must be %d bytes, got %d", i+1, RootKeySize, len(p))
		}
		k.previous = append(k.previous, secureCopy(p)) // mlock.go
	}
	return k, nil
}

// Versions lists the root versions the keyring holds, ascending.
func (k *SoftKeyring) Versions() []uint32 {
	k.mu.RLock()
	defer k.mu.RUnlock()
	vs := make([]uint32, 0, len(k.keys))
	for v := range k.keys {
		vs = append(vs, v)
	}
	slices.Sort(vs)
	return vs
}

// kcvOf is the key check value of a raw root key (KeyCheckValue).
func kcvOf(root []byte) string {
	b := hkdfExpand32(root, kcvInfo)
	defer clear(b)
	return hex.EncodeToString(b[:8])
}

// KeyCheckValueOf returns the key check value of a raw root key, the one
// the store records for it (for recovery tools that hold the key itself).
func KeyCheckValueOf(root []byte) string { return kcvOf(root) }

const rootKCVPrefix = "root.kcv."

// RootVersions returns the root versions a store records, with their key
// check values.
func RootVersions(ctx context.Context, st Store) (map[uint32]string, error) {
	m, err := st.ListMeta(ctx, rootKCVPrefix)
	if err != nil {
		return nil, err
	}
	out := make(map[uint32]string, len(m))
	for key, val := range m {
		v, err := strconv.ParseUint(strings.TrimPrefix(key, rootKCVPrefix), 10, 32)
		if err != nil || v == 0 {
			continue
		}
		out[uint32(v)] = string(val)
	}
	return out, nil
}

// saltCheckKeyFor names the salt check value recorded under a root
// version (version 1 keeps the original key name).
func saltCheckKeyFor(v uint32) string {
	if v == 1 {
		return saltCheckKey
	}
	return saltCheckKey + "." + strconv.FormatUint(uint64(v), 10)
}

// resolveRootVersions numbers a software keyring's keys after the store's
// records (see above). A current key the store does not know is refused
// when the store knows other versions (it would otherwise be recorded as
// a fresh version 1 after the old one was dropped); previous keys the
// store no longer knows (rotation finished) are dropped with a warning.
func (e *Engine) resolveRootVersions(ctx context.Context) error {
	k, ok := e.keyring.(*SoftKeyring)
	recorded, err := RootVersions(ctx, e.store)
	if err != nil {
		return fmt.Errorf("read root versions: %w", err)
	}
	if !ok {
		return nil
	}
	byKCV := make(map[string]uint32, len(recorded))
	for v, kcv := range recorded {
		byKCV[kcv] = v
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	cur := k.keys[k.current]
	if cur != nil {
		kcv := kcvOf(cur)
		v, known := byKCV[kcv]
		switch {
		case known && v != k.current:
			delete(k.keys, k.current)
			k.keys[v], k.current = cur, v
		case !known && len(recorded) > 0 && recorded[k.current] == "":
			return fmt.Errorf("%w (this key has %s; the store knows root versions %s)", ErrWrongRootKey, kcv, describeVersions(recorded))
		}
	}
	for _, p := range k.previous {
		v, known := byKCV[kcvOf(p)]
		if !known || k.keys[v] != nil {
			if !known {
				e.log.Warn("a previous root key (MINIKMS_ROOT_KEY_PREVIOUS) matches no root version of the store: ignored (rotation finished?)", "kcv", kcvOf(p))
			}
			releaseKeyBytes(p)
			continue
		}
		k.keys[v] = p
	}
	k.previous = nil
	return nil
}

func describeVersions(m map[uint32]string) string {
	vs := make([]uint32, 0, len(m))
	for v := range m {
		vs = append(vs, v)
	}
	slices.Sort(vs)
	parts := make([]string, len(vs))
	for i, v := range vs {
		parts[i] = fmt.Sprintf("%d (%s)", v, m[v])
	}
	return strings.Join(parts, ", ")
}
