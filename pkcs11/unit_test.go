package pkcs11

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/sha512"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/minikms/minikms/engine"
)

// Unit tests: the logic above the token (derivation, cache, error mapping,
// panic recovery, reconnection, readiness, key source, administration)
// against the stub token of stub_test.go. They need neither cgo nor SoftHSM.

var ctx = context.Background()

func testRoot() []byte {
	r := make([]byte, 32)
	for i := range r {
		r[i] = byte(0xA0 + i)
	}
	return r
}

func importedKeyring(t *testing.T, cfg Config) (*Keyring, *HSM, *stubDevice) {
	t.Helper()
	h, d := stubHSM(t, cfg)
	_, err := h.ImportRoot(ctx, testRoot())
	require.NoError(t, err)
	k, err := h.Keyring(ctx)
	require.NoError(t, err)
	return k, h, d
}

func TestDeriveEqualsSoftKeyring(t *testing.T) {
	k, _, _ := importedKeyring(t, Config{})
	soft, err := engine.NewSoftKeyring(testRoot())
	require.NoError(t, err)
	for _, info := range [][]byte{nil, []byte("x"), engine.TenantInfo("salt", "acme"), bytes.Repeat([]byte{0xff}, 300)} {
		want, err := soft.Derive(ctx, 1, info)
		require.NoError(t, err)
		got, err := k.Derive(ctx, 1, info)
		require.NoError(t, err)
		assert.Equal(t, want, got)
	}
	a, _ := engine.KeyCheckValue(ctx, soft, 1)
	b, _ := engine.KeyCheckValue(ctx, k, 1)
	assert.Equal(t, a, b)
	assert.Equal(t, uint32(1), k.Current())
	_, err = k.Derive(ctx, 2, []byte("x"))
	assert.ErrorIs(t, err, ErrKeyNotFound)
}

func TestKeyringNeedsRoot(t *testing.T) {
	h, _ := stubHSM(t, Config{})
	_, err := h.Keyring(ctx)
	assert.ErrorIs(t, err, ErrKeyNotFound)
	assert.Contains(t, err.Error(), "minikms hsm init")
}

func TestKeyringVersions(t *testing.T) {
	h, d := stubHSM(t, Config{})
	d.putSecret("minikms-root-v1", secretRoot, testRoot())
	d.putSecret("minikms-root-v3", secretRoot, bytes.Repeat([]byte{3}, 32))
	d.putSecret("minikms-root-v03", secretRoot, bytes.Repeat([]byte{4}, 32)) // not a version label
	d.putSecret("other-root-v9", secretRoot, bytes.Repeat([]byte{5}, 32))
	k, err := h.Keyring(ctx)
	require.NoError(t, err)
	assert.Equal(t, []uint32{1, 3}, k.Versions())
	assert.Equal(t, uint32(3), k.Current())
	d.putSecret("minikms-root-v4", secretRoot, bytes.Repeat([]byte{6}, 32))
	require.NoError(t, k.Refresh(ctx))
	assert.Equal(t, uint32(4), k.Current())
	assert.Contains(t, k.String(), "minikms-root-v4")
}

func TestCache(t *testing.T) {
	now := time.Unix(1000, 0)
	k, h, d := importedKeyring(t, Config{CacheEntries: 2, CacheTTL: time.Minute})
	h.now = func() time.Time { return now }
	k.cache.now = h.now
	base := d.hmacs.Load()

	a1, err := k.Derive(ctx, 1, []byte("a"))
	require.NoError(t, err)
	a2, err := k.Derive(ctx, 1, []byte("a"))
	require.NoError(t, err)
	assert.Equal(t, a1, a2)
	assert.Equal(t, base+1, d.hmacs.Load(), "second derivation comes from the cache")
	clear(a2) // callers may wipe what they get: the cache keeps its own copy
	a3, _ := k.Derive(ctx, 1, []byte("a"))
	assert.Equal(t, a1, a3)

	// Eviction zeroizes.
	entry := k.cache.items[cacheKey(1, []byte("a"))].Value.(*cacheEntry)
	k.Derive(ctx, 1, []byte("b"))
	k.Derive(ctx, 1, []byte("c")) // evicts a (least recently used)
	assert.Equal(t, 2, k.CachedKeys())
	assert.Equal(t, make([]byte, 32), entry.val, "evicted entry zeroized")

	// Expiry zeroizes.
	entry = k.cache.items[cacheKey(1, []byte("c"))].Value.(*cacheEntry)
	now = now.Add(2 * time.Minute)
	n := d.hmacs.Load()
	k.Derive(ctx, 1, []byte("c"))
	assert.Equal(t, n+1, d.hmacs.Load(), "expired entry derived again")
	assert.Equal(t, make([]byte, 32), entry.val)

	// Close zeroizes.
	entry = k.cache.items[cacheKey(1, []byte("c"))].Value.(*cacheEntry)
	k.Close()
	assert.Equal(t, 0, k.CachedKeys())
	assert.Equal(t, make([]byte, 32), entry.val)
}

func TestCacheOffByDefault(t *testing.T) {
	k, _, d := importedKeyring(t, Config{})
	n := d.hmacs.Load()
	k.Derive(ctx, 1, []byte("a"))
	k.Derive(ctx, 1, []byte("a"))
	assert.Equal(t, n+2, d.hmacs.Load())
	assert.Equal(t, 0, k.CachedKeys())
}

func TestCacheFlushedOnTokenLoss(t *testing.T) {
	k, _, d := importedKeyring(t, Config{CacheEntries: 8, ReconnectInterval: time.Hour})
	_, err := k.Derive(ctx, 1, []byte("a"))
	require.NoError(t, err)
	entry := k.cache.items[cacheKey(1, []byte("a"))].Value.(*cacheEntry)
	d.setPresent(false)
	_, err = k.Derive(ctx, 1, []byte("b"))
	assert.ErrorIs(t, err, ErrTokenUnavailable)
	assert.Equal(t, 0, k.CachedKeys())
	assert.Equal(t, make([]byte, 32), entry.val)
	// The cached tenant key is gone too: nothing is derived without the token.
	_, err = k.Derive(ctx, 1, []byte("a"))
	assert.ErrorIs(t, err, ErrTokenUnavailable)
}

func TestRecoverAfterReset(t *testing.T) {
	k, h, d := importedKeyring(t, Config{})
	want, err := k.Derive(ctx, 1, []byte("a"))
	require.NoError(t, err)
	d.reset() // sessions and login gone, token still there
	got, err := k.Derive(ctx, 1, []byte("a"))
	require.NoError(t, err, "a lost session is retried once on a new connection")
	assert.Equal(t, want, got)
	assert.Equal(t, int32(2), d.opens.Load())
	assert.NoError(t, h.Healthy())
	assert.Eventually(t, func() bool { return d.closes.Load() == 1 }, time.Second, time.Millisecond, "old connection closed")
}

func TestTokenRemovedAndBack(t *testing.T) {
	now := time.Unix(1000, 0)
	var mu sync.Mutex
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	advance := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }
	k, h, d := importedKeyring(t, Config{ReconnectInterval: 5 * time.Second})
	h.now = clock
	require.NoError(t, h.Ready(ctx))

	d.setPresent(false)
	_, err := k.Derive(ctx, 1, []byte("a"))
	assert.ErrorIs(t, err, ErrTokenUnavailable)
	assert.ErrorIs(t, h.Healthy(), ErrTokenUnavailable)
	assert.ErrorIs(t, k.Ready(ctx), ErrTokenUnavailable)
	opens := d.opens.Load()

	// No reopen attempt before the interval.
	_, err = k.Derive(ctx, 1, []byte("a"))
	assert.ErrorIs(t, err, ErrTokenUnavailable)
	assert.Equal(t, opens, d.opens.Load())

	d.setPresent(true)
	assert.ErrorIs(t, k.Ready(ctx), ErrTokenUnavailable, "still waiting for the interval")
	advance(6 * time.Second)
	require.NoError(t, k.Ready(ctx))
	assert.NoError(t, h.Healthy())
	_, err = k.Derive(ctx, 1, []byte("a"))
	assert.NoError(t, err)
}

func TestWrongPINAtReopenIsFatal(t *testing.T) {
	k, h, d := importedKeyring(t, Config{ReconnectInterval: time.Nanosecond})
	d.mu.Lock()
	d.pin = "changed" // the PIN was changed on the token
	d.mu.Unlock()
	d.reset()
	_, err := k.Derive(ctx, 1, []byte("a"))
	assert.ErrorIs(t, err, ErrTokenUnavailable)
	assert.ErrorIs(t, err, ErrPINIncorrect)
	opens := d.opens.Load()
	for range 3 {
		_, err = k.Derive(ctx, 1, []byte("a"))
		assert.ErrorIs(t, err, ErrPINIncorrect)
		assert.ErrorIs(t, h.Ready(ctx), ErrPINIncorrect)
	}
	assert.Equal(t, opens, d.opens.Load(), "a refused PIN is never tried again (it could lock the token)")
}

func TestOpenErrors(t *testing.T) {
	d := newStubDevice()
	_, err := d.hsm(Config{}, "wrong")
	assert.ErrorIs(t, err, ErrPINIncorrect)
	d.setPresent(false)
	_, err = d.hsm(Config{}, "1234")
	assert.ErrorIs(t, err, ErrTokenNotFound)
	d.setPresent(true)
	d.panicOnce("open", "boom")
	_, err = d.hsm(Config{}, "1234")
	assert.ErrorIs(t, err, ErrTokenFailure)
	assert.Contains(t, err.Error(), "boom")
}

func TestErrorMapping(t *testing.T) {
	k, h, d := importedKeyring(t, Config{})
	for _, c := range []struct {
		kind errKind
		want error
		lost bool
	}{
		{kindFailure, ErrTokenFailure, false},
		{kindPool, ErrSessionsExhausted, false},
		{kindNotFound, ErrKeyNotFound, false},
		{kindLost, ErrTokenUnavailable, true},
	} {
		opens := d.opens.Load()
		d.failOnce("hmac", newErr(c.kind, "hmac", errors.New("CKR_SOMETHING")))
		_, err := k.Derive(ctx, 1, []byte("a"))
		if c.lost {
			// Lost: dropped, reopened, retried, succeeded.
			assert.NoError(t, err)
			assert.Equal(t, opens+1, d.opens.Load())
			continue
		}
		assert.ErrorIs(t, err, c.want)
		assert.Contains(t, err.Error(), "CKR_SOMETHING")
		assert.Equal(t, opens, d.opens.Load(), "%v keeps the connection", c.want)
		assert.NoError(t, h.Healthy())
	}
	// Lost twice in a row: reported, not retried forever.
	d.failOnce("hmac", newErr(kindLost, "hmac", errors.New("CKR_DEVICE_ERROR")))
	d.failOnce("open", newErr(kindTokenNotFound, "find token", errors.New("gone")))
	_, err := k.Derive(ctx, 1, []byte("a"))
	assert.ErrorIs(t, err, ErrTokenUnavailable)
	assert.ErrorIs(t, err, ErrTokenNotFound)
}

func TestPanicsAreRecovered(t *testing.T) {
	k, h, d := importedKeyring(t, Config{})
	d.panicOnce("hmac", errors.New("pkcs11: 0x6: CKR_FUNCTION_FAILED"))
	_, err := k.Derive(ctx, 1, []byte("a"))
	assert.ErrorIs(t, err, ErrTokenFailure)

	s, _, err := h.KeySource().Generate(ctx, "root")
	require.NoError(t, err)
	d.panicOnce("sign", "nil map")
	digest := sha512.Sum384([]byte("m"))
	_, err = s.Sign(nil, digest[:], crypto.SHA384)
	assert.ErrorIs(t, err, ErrTokenFailure)
	d.panicOnce("ping", 42)
	assert.ErrorIs(t, h.Ready(ctx), ErrTokenFailure)
	// Everything works afterwards.
	_, err = k.Derive(ctx, 1, []byte("a"))
	assert.NoError(t, err)
	_, err = s.Sign(nil, digest[:], crypto.SHA384)
	assert.NoError(t, err)
}

func TestReadyHonoursContextAndSharesProbe(t *testing.T) {
	h, d := stubHSM(t, Config{})
	block := make(chan struct{})
	d.mu.Lock()
	d.block = block
	d.mu.Unlock()
	var wg sync.WaitGroup
	for range 5 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
			defer cancel()
			err := h.Ready(c)
			assert.ErrorIs(t, err, ErrTokenUnavailable)
			assert.ErrorIs(t, err, context.DeadlineExceeded)
		}()
	}
	wg.Wait()
	assert.Equal(t, int32(1), d.pings.Load(), "one probe in flight at a time")
	d.mu.Lock()
	d.block = nil
	d.mu.Unlock()
	close(block)
	assert.Eventually(t, func() bool { return h.Ready(ctx) == nil }, time.Second, time.Millisecond)
}

func TestReadyChecksRootKey(t *testing.T) {
	k, h, d := importedKeyring(t, Config{})
	require.NoError(t, k.Ready(ctx))
	d.mu.Lock()
	delete(d.secrets, "minikms-root-v1")
	d.mu.Unlock()
	assert.ErrorIs(t, h.Ready(ctx), ErrKeyNotFound)
}

func TestKeySource(t *testing.T) {
	h, d := stubHSM(t, Config{})
	ks := h.KeySource()
	s, ref, err := ks.Generate(ctx, "tenant/acme")
	require.NoError(t, err)
	assert.Equal(t, "pkcs11:object=minikms-pki-tenant%2Facme;id=", string(ref[:len("pkcs11:object=minikms-pki-tenant%2Facme;id=")]))
	digest := sha512.Sum384([]byte("m"))
	sig, err := s.Sign(nil, digest[:], crypto.SHA384)
	require.NoError(t, err)
	assert.True(t, ecdsa.VerifyASN1(s.Public().(*ecdsa.PublicKey), digest[:], sig))

	// The signer survives a reconnect: it finds its key again.
	d.reset()
	sig, err = s.Sign(nil, digest[:], crypto.SHA384)
	require.NoError(t, err)
	assert.True(t, ecdsa.VerifyASN1(s.Public().(*ecdsa.PublicKey), digest[:], sig))

	l, err := ks.Load(ctx, "tenant/acme", ref)
	require.NoError(t, err)
	assert.True(t, s.Public().(*ecdsa.PublicKey).Equal(l.Public()))

	_, err = ks.Load(ctx, "tenant/other", ref)
	assert.ErrorContains(t, err, "expected")
	_, err = ks.Load(ctx, "root", []byte("sealed-bytes-from-SealedKeys"))
	assert.ErrorContains(t, err, "software key source")
	_, err = ks.Load(ctx, "tenant/acme", makeRef("minikms-pki-tenant/acme", []byte("nope")))
	assert.ErrorIs(t, err, ErrKeyNotFound)
	_, err = s.Sign(nil, digest[:10], crypto.SHA384)
	assert.Error(t, err)
	_, _, err = ks.Generate(ctx, "")
	assert.Error(t, err)

	d.setPresent(false)
	_, err = s.Sign(nil, digest[:], crypto.SHA384)
	assert.ErrorIs(t, err, ErrTokenUnavailable)
}

func TestRefs(t *testing.T) {
	for _, c := range []struct {
		label string
		id    []byte
	}{{"minikms-pki-root", []byte{1, 2}}, {"minikms-pki-tenant/a b;c=d%", []byte("\x00;=%")}} {
		ref := makeRef(c.label, c.id)
		l, id, err := parseRef(ref)
		require.NoError(t, err)
		assert.Equal(t, c.label, l)
		assert.Equal(t, c.id, id)
	}
	for _, bad := range []string{"", "pkcs11:", "pkcs11:object=a", "pkcs11:object=a;id=%01;type=public", "pkcs11:object=a;id=%01;x=y", "pkcs11:object=a;id=%zz;type=private", "pkcs11:object=a;id=1;type=private"} {
		_, _, err := parseRef([]byte(bad))
		assert.Error(t, err, bad)
	}
}

func TestInit(t *testing.T) {
	h, _ := stubHSM(t, Config{})
	r, err := h.Init(ctx, InitOptions{})
	require.NoError(t, err)
	assert.True(t, r.Created)
	assert.Equal(t, "minikms-root-v1", r.Label)
	assert.Len(t, r.KeyCheckValue, 16)
	assert.True(t, r.Key.Protected() && r.Key.NeverExtractable)

	_, err = h.Init(ctx, InitOptions{})
	assert.ErrorIs(t, err, ErrRootExists)
	again, err := h.Init(ctx, InitOptions{ExistingOK: true})
	require.NoError(t, err)
	assert.False(t, again.Created)
	assert.Equal(t, r.KeyCheckValue, again.KeyCheckValue)
	_, err = h.ImportRoot(ctx, testRoot())
	assert.ErrorIs(t, err, ErrRootExists, "a different key is there")
}

func TestImportRoot(t *testing.T) {
	h, d := stubHSM(t, Config{})
	_, err := h.ImportRoot(ctx, make([]byte, 16))
	assert.Error(t, err)
	r, err := h.ImportRoot(ctx, testRoot())
	require.NoError(t, err)
	soft, _ := engine.NewSoftKeyring(testRoot())
	kcv, _ := engine.KeyCheckValue(ctx, soft, 1)
	assert.Equal(t, kcv, r.KeyCheckValue)
	assert.True(t, r.Created)
	assert.False(t, r.Key.NeverExtractable, "an imported key was extractable once")

	again, err := h.ImportRoot(ctx, testRoot())
	require.NoError(t, err, "importing the same key again is a no-op")
	assert.False(t, again.Created)
	_, err = h.ImportRoot(ctx, bytes.Repeat([]byte{1}, 32))
	assert.ErrorIs(t, err, ErrRootExists)

	// A token that stores something else: the import is undone.
	h2, d2 := stubHSM(t, Config{})
	d2.corrupt = true
	_, err = h2.ImportRoot(ctx, testRoot())
	assert.ErrorIs(t, err, ErrTokenFailure)
	assert.ErrorContains(t, err, "deleted")
	assert.Empty(t, d2.secrets)
	_ = d
}

func TestStatus(t *testing.T) {
	h, d := stubHSM(t, Config{})
	st, err := h.Status(ctx)
	require.NoError(t, err)
	assert.Empty(t, st.RootVersions)
	assert.Contains(t, st.String(), "root key:     none")
	_, err = h.Init(ctx, InitOptions{})
	require.NoError(t, err)
	_, _, err = h.KeySource().Generate(ctx, "root")
	require.NoError(t, err)
	d.putSecret("unrelated", secretRoot, testRoot())
	st, err = h.Status(ctx)
	require.NoError(t, err)
	assert.Equal(t, []uint32{1}, st.RootVersions)
	assert.Len(t, st.Objects, 2)
	assert.Equal(t, "minikms-pki-root", st.Objects[0].Label)
	assert.Equal(t, "minikms-root-v1", st.Objects[1].Label)
	assert.Contains(t, st.String(), "never-extractable=true")
	assert.NotContains(t, st.String(), "unrelated")
}

func TestUnseal(t *testing.T) {
	h, d := stubHSM(t, Config{})
	sealed, err := h.SealRoot(ctx, testRoot())
	require.NoError(t, err)
	assert.True(t, strings.HasPrefix(sealed, "minikms-sealed-root:v1:minikms-wrap-v1:"))
	assert.NotContains(t, sealed, string(testRoot()))
	kr, err := h.UnsealRoot(ctx, sealed+"\n")
	require.NoError(t, err)
	defer kr.Close()
	soft, _ := engine.NewSoftKeyring(testRoot())
	a, _ := engine.KeyCheckValue(ctx, kr, 1)
	b, _ := engine.KeyCheckValue(ctx, soft, 1)
	assert.Equal(t, b, a)

	// A second seal reuses the wrapping key.
	_, err = h.SealRoot(ctx, testRoot())
	require.NoError(t, err)
	assert.Len(t, d.secrets, 1)

	// Tampering, other labels and garbage fail.
	raw := []byte(sealed)
	raw[len(raw)-2] ^= 1
	_, err = h.UnsealRoot(ctx, string(raw))
	assert.Error(t, err)
	_, err = h.UnsealRoot(ctx, strings.Replace(sealed, "minikms-wrap-v1", "x-wrap-v1", 1))
	assert.ErrorIs(t, err, ErrConfig)
	_, err = h.UnsealRoot(ctx, "0011")
	assert.ErrorIs(t, err, ErrConfig)
	_, err = h.SealRoot(ctx, []byte("short"))
	assert.Error(t, err)

	// GCM panics (crypto11 Seal) are recovered.
	d.panicOnce("gcmSeal", errors.New("C_Encrypt: CKR_FUNCTION_FAILED"))
	_, err = h.SealRoot(ctx, testRoot())
	assert.ErrorIs(t, err, ErrTokenFailure)
}

func TestClose(t *testing.T) {
	k, h, d := importedKeyring(t, Config{CacheEntries: 4})
	s, _, err := h.KeySource().Generate(ctx, "root")
	require.NoError(t, err)
	_, err = k.Derive(ctx, 1, []byte("a"))
	require.NoError(t, err)
	require.NoError(t, h.Close())
	assert.Equal(t, 0, k.CachedKeys())
	_, err = k.Derive(ctx, 1, []byte("a"))
	assert.ErrorIs(t, err, ErrClosed)
	digest := sha512.Sum384([]byte("m"))
	_, err = s.Sign(nil, digest[:], crypto.SHA384)
	assert.ErrorIs(t, err, ErrClosed)
	assert.ErrorIs(t, h.Healthy(), ErrClosed)
	assert.ErrorIs(t, h.Ready(ctx), ErrClosed)
	assert.NoError(t, h.Close())
	assert.Equal(t, int32(1), d.closes.Load())
}

func TestConcurrentUse(t *testing.T) {
	k, h, d := importedKeyring(t, Config{CacheEntries: 4, ReconnectInterval: time.Nanosecond})
	s, _, err := h.KeySource().Generate(ctx, "root")
	require.NoError(t, err)
	digest := sha512.Sum384([]byte("m"))
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range 50 {
				if j == 25 && i == 0 {
					d.reset()
				}
				k.Derive(ctx, 1, []byte{byte(j % 6)})
				s.Sign(nil, digest[:], crypto.SHA384)
				h.Healthy()
			}
		}()
	}
	wg.Wait()
	_, err = k.Derive(ctx, 1, []byte("a"))
	assert.NoError(t, err)
}

func TestConfig(t *testing.T) {
	ok := Config{Module: "/m.so", TokenLabel: "t", PIN: "1"}
	c, err := ok.withDefaults()
	require.NoError(t, err)
	assert.Equal(t, DefaultMaxSessions, c.MaxSessions)
	assert.Equal(t, DefaultSessionWait, c.SessionWait)
	assert.Equal(t, DefaultLabelPrefix, c.LabelPrefix)
	for name, mod := range map[string]func(*Config){
		"no module":   func(c *Config) { c.Module = "" },
		"no label":    func(c *Config) { c.TokenLabel = "" },
		"long label":  func(c *Config) { c.TokenLabel = strings.Repeat("x", 33) },
		"no pin":      func(c *Config) { c.PIN = "" },
		"both pins":   func(c *Config) { c.PINFile = "/p" },
		"1 session":   func(c *Config) { c.MaxSessions = 1 },
		"neg cache":   func(c *Config) { c.CacheEntries = -1 },
		"neg waiting": func(c *Config) { c.SessionWait = -1 },
	} {
		c := ok
		mod(&c)
		_, err := c.withDefaults()
		assert.ErrorIs(t, err, ErrConfig, name)
	}
	dir := t.TempDir()
	pf := filepath.Join(dir, "pin")
	require.NoError(t, os.WriteFile(pf, []byte("s3cret\n"), 0o600))
	pin, err := Config{PINFile: pf}.pin()
	require.NoError(t, err)
	assert.Equal(t, "s3cret", pin)
	_, err = Config{PINFile: filepath.Join(dir, "missing")}.pin()
	assert.ErrorIs(t, err, ErrConfig)
	require.NoError(t, os.WriteFile(pf, []byte("\n"), 0o600))
	_, err = Config{PINFile: pf}.pin()
	assert.ErrorIs(t, err, ErrConfig)
	assert.Empty(t, (&HSM{cfg: ok}).Config().PIN, "Config() hides the PIN")
}

func TestRootLabels(t *testing.T) {
	assert.Equal(t, "minikms-root-v12", rootLabel("minikms-", 12))
	for label, want := range map[string]uint32{"minikms-root-v1": 1, "minikms-root-v42": 42, "minikms-root-v0": 0, "minikms-root-v01": 0, "minikms-root-v": 0, "minikms-root-vx": 0, "minikms-root-v99999999999": 0} {
		v, ok := parseRootLabel("minikms-", label)
		assert.Equal(t, want, v, label)
		assert.Equal(t, want != 0, ok, label)
	}
}
