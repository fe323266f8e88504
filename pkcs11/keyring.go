package pkcs11

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/minikms/minikms/engine"
)

// Keyring is an engine.Keyring whose root keys stay in the token: each
// version is a CKK_GENERIC_SECRET key labelled <prefix>root-v<N>
// (CKA_SENSITIVE, not extractable, CKA_SIGN only), and Derive computes
// HMAC-SHA256(root, info || 0x01) inside the token with CKM_SHA256_HMAC:
// the HKDF-Expand-SHA256 output with L=32 that engine.SoftKeyring computes
// in software, byte for byte.
type Keyring struct {
	h      *HSM
	prefix string
	cache  *keyCache // nil: no cache

	mu       sync.RWMutex
	versions []uint32 // sorted
}

var _ engine.Keyring = (*Keyring)(nil)

// probeInfo is the HKDF info of the readiness probe (its output is
// discarded). It has no second separator, so it collides with no tenant
// info.
var probeInfo = []byte("minikms/v1|hsm-readiness-probe")

// Keyring returns the keyring of the root keys in the token. It fails with
// ErrKeyNotFound when the token holds no root key (run Init or ImportRoot
// first). The keyring adds a readiness check to h: the current root key
// must answer an HMAC.
func (h *HSM) Keyring(ctx context.Context) (*Keyring, error) {
	vs, err := h.rootVersions(ctx)
	if err != nil {
		return nil, err
	}
	if len(vs) == 0 {
		return nil, fmt.Errorf("%w: no root key labelled %s in token %q: run `minikms hsm init` for a new deployment or `minikms hsm import-root` to keep existing data",
			ErrKeyNotFound, rootLabel(h.cfg.LabelPrefix, 1), h.cfg.TokenLabel)
	}
	k := &Keyring{h: h, prefix: h.cfg.LabelPrefix, versions: vs}
	if h.cfg.CacheEntries > 0 {
		k.cache = newKeyCache(h.cfg.CacheEntries, h.cfg.CacheTTL, h.now)
		h.onLossHook(k.cache.purge)
	}
	h.readyCheck(func(t token) error {
		out, err := t.hmacSHA256(rootLabel(k.prefix, k.Current()), append(append([]byte(nil), probeInfo...), 1))
		clear(out)
		return err
	})
	return k, nil
}

// rootVersions lists the root key versions in the token.
func (h *HSM) rootVersions(ctx context.Context) ([]uint32, error) {
	var vs []uint32
	err := h.do(ctx, "list root keys", true, func(t token) error {
		objs, err := t.objects(h.cfg.LabelPrefix + "root-v")
		if err != nil {
			return err
		}
		vs = vs[:0]
		for _, o := range objs {
			if v, ok := parseRootLabel(h.cfg.LabelPrefix, o.Label); ok && o.Class == "secret-key" && !slices.Contains(vs, v) {
				vs = append(vs, v)
			}
		}
		return nil
	})
	slices.Sort(vs)
	return vs, err
}

// Derive implements engine.Keyring: HMAC-SHA256(root[version], info||0x01)
// computed in the token.
func (k *Keyring) Derive(ctx context.Context, version uint32, info []byte) ([]byte, error) {
	if !k.has(version) {
		return nil, fmt.Errorf("%w: root key version %d (%s) is not in the token", ErrKeyNotFound, version, rootLabel(k.prefix, version))
	}
	var ck string
	if k.cache != nil {
		ck = cacheKey(version, info)
		if b, ok := k.cache.get(ck); ok {
			return b, nil
		}
	}
	msg := make([]byte, len(info)+1)
	copy(msg, info)
	msg[len(info)] = 0x01
	label := rootLabel(k.prefix, version)
	var out []byte
	err := k.h.do(ctx, "derive with "+label, true, func(t token) error {
		var err error
		out, err = t.hmacSHA256(label, msg)
		return err
	})
	if err != nil {
		return nil, err
	}
	if len(out) != engine.RootKeySize {
		clear(out)
		return nil, newErr(kindFailure, "derive with "+label, fmt.Errorf("token returned %d bytes, want %d", len(out), engine.RootKeySize))
	}
	if k.cache != nil {
		k.cache.put(ck, out)
	}
	return out, nil
}

// Current implements engine.Keyring: the highest root version in the
// token when the keyring was made (or last refreshed).
func (k *Keyring) Current() uint32 {
	k.mu.RLock()
	defer k.mu.RUnlock()
	return k.versions[len(k.versions)-1]
}

// Versions lists the root versions the keyring derives from.
func (k *Keyring) Versions() []uint32 {
	k.mu.RLock()
	defer k.mu.RUnlock()
	return slices.Clone(k.versions)
}

// Refresh re-reads the root versions in the token (after a rotation made
// a new version).
func (k *Keyring) Refresh(ctx context.Context) error {
	vs, err := k.h.rootVersions(ctx)
	if err != nil {
		return err
	}
	if len(vs) == 0 {
		return fmt.Errorf("%w: no root key left in the token", ErrKeyNotFound)
	}
	k.mu.Lock()
	k.versions = vs
	k.mu.Unlock()
	return nil
}

func (k *Keyring) has(v uint32) bool {
	k.mu.RLock()
	defer k.mu.RUnlock()
	return slices.Contains(k.versions, v)
}

// Ready reports whether the token answers and the current root key works.
func (k *Keyring) Ready(ctx context.Context) error { return k.h.Ready(ctx) }

// Healthy is HSM.Healthy: the last known state, without I/O.
func (k *Keyring) Healthy() error { return k.h.Healthy() }

// CachedKeys returns how many derived keys the cache holds.
func (k *Keyring) CachedKeys() int {
	if k.cache == nil {
		return 0
	}
	return k.cache.len()
}

// Close zeroizes the cache of derived keys. It does not close the HSM,
// which the KeySource may share: close that with HSM.Close.
func (k *Keyring) Close() {
	if k.cache != nil {
		k.cache.purge()
	}
}

// String describes the keyring without secrets.
func (k *Keyring) String() string {
	vs := k.Versions()
	parts := make([]string, len(vs))
	for i, v := range vs {
		parts[i] = rootLabel(k.prefix, v)
	}
	return fmt.Sprintf("HSM keyring (token %q, root keys %s)", k.h.cfg.TokenLabel, strings.Join(parts, ", "))
}
