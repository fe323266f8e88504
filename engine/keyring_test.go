package engine_test

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/minikms/minikms/engine"
)

// hkdfExpand is HKDF-Expand of RFC 5869 §2.3, written out in full (all
// T(i) blocks), as the reference the keyring's one-block shortcut must
// equal.
//
// golang.org/x/crypto/hkdf would be the natural reference, but
// golang.org/x/crypto is not a requirement of go.mod, and these tests do
// not change it; the RFC 5869 vector below pins this function.
func hkdfExpand(prk, info []byte, length int) []byte {
	var okm, prev []byte
	for i := byte(1); len(okm) < length; i++ {
		m := hmac.New(sha256.New, prk)
		m.Write(prev)
		m.Write(info)
		m.Write([]byte{i})
		prev = m.Sum(nil)
		okm = append(okm, prev...)
	}
	return okm[:length]
}

func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	require.NoError(t, err)
	return b
}

func TestHKDFReferenceMatchesRFC5869(t *testing.T) {
	// RFC 5869 Appendix A.1 (Test Case 1): PRK, info and the 42-byte OKM.
	prk := unhex(t, "077709362c2e32df0ddc3f0dc47bba6390b6c73bb50f9c3122ec844ad7c2b3e5")
	info := unhex(t, "f0f1f2f3f4f5f6f7f8f9")
	okm := "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865"
	assert.Equal(t, okm, hex.EncodeToString(hkdfExpand(prk, info, 42)))

	// The keyring with that PRK as root derives the first 32 bytes.
	kr, err := engine.NewSoftKeyring(prk)
	require.NoError(t, err)
	got, err := kr.Derive(t.Context(), 1, info)
	require.NoError(t, err)
	assert.Equal(t, okm[:64], hex.EncodeToString(got))
}

func TestSoftKeyringDeriveIsHKDFExpandSHA256(t *testing.T) {
	root := randomBytes(t, engine.RootKeySize)
	kr, err := engine.NewSoftKeyring(root)
	require.NoError(t, err)
	t.Cleanup(kr.Close)
	assert.Equal(t, uint32(1), kr.Current())

	cases := []struct {
		name string
		info []byte
	}{
		{"empty info", nil},
		{"tenant without salt", engine.TenantInfo("", "acme")},
		{"tenant with salt", engine.TenantInfo("pepper", "globex")},
		{"long info", bytes.Repeat([]byte("x"), 1000)},
		{"binary info", []byte{0, 1, 0xff, '|'}},
	}
	seen := map[string]string{}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := kr.Derive(t.Context(), 1, tc.info)
			require.NoError(t, err)
			require.Len(t, got, 32)
			assert.Equal(t, hkdfExpand(root, tc.info, 32), got)
			again, err := kr.Derive(t.Context(), 1, tc.info)
			require.NoError(t, err)
			assert.Equal(t, got, again, "derivation is deterministic")
			if other, dup := seen[string(got)]; dup {
				t.Errorf("infos %q and %q derive the same key", other, tc.name)
			}
			seen[string(got)] = tc.name
		})
	}

	t.Run("unknown version", func(t *testing.T) {
		_, err := kr.Derive(t.Context(), 2, []byte("x"))
		require.Error(t, err)
	})
	t.Run("closed keyring", func(t *testing.T) {
		k2, err := engine.NewSoftKeyring(root)
		require.NoError(t, err)
		k2.Close()
		_, err = k2.Derive(t.Context(), 1, []byte("x"))
		require.Error(t, err)
	})
}

func TestNewSoftKeyringRootSize(t *testing.T) {
	for _, n := range []int{0, 1, 16, 31, 33, 64} {
		_, err := engine.NewSoftKeyring(make([]byte, n))
		assert.Error(t, err, "%d-byte root", n)
	}
	root := randomBytes(t, engine.RootKeySize)
	kr, err := engine.NewSoftKeyring(root)
	require.NoError(t, err)
	before, err := kr.Derive(t.Context(), 1, []byte("i"))
	require.NoError(t, err)
	clear(root) // the keyring keeps its own copy
	after, err := kr.Derive(t.Context(), 1, []byte("i"))
	require.NoError(t, err)
	assert.Equal(t, before, after)
}

func TestParseRootKeyHex(t *testing.T) {
	valid := strings.Repeat("0123456789abcdef", 4)
	cases := []struct {
		name, in string
		ok       bool
	}{
		{"valid", valid, true},
		{"upper case", strings.ToUpper(valid), true},
		{"surrounding space", "  " + valid + "\n", true},
		{"not hex", strings.Repeat("zz", 32), false},
		{"too short", valid[:62], false},
		{"too long", valid + "00", false},
		{"empty", "", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b, err := engine.ParseRootKeyHex(tc.in)
			if !tc.ok {
				require.Error(t, err)
				if tc.in != "" {
					assert.NotContains(t, err.Error(), tc.in, "the error echoes the key")
				}
				return
			}
			require.NoError(t, err)
			assert.Equal(t, unhex(t, strings.ToLower(valid)), b)
		})
	}
}

func TestTenantInfo(t *testing.T) {
	cases := []struct {
		salt, tenant, want string
	}{
		{"", "acme", "minikms/v1||acme"},
		{"pepper", "acme", "minikms/v1|pepper|acme"},
		{"pepper", "globex-2", "minikms/v1|pepper|globex-2"},
	}
	for _, tc := range cases {
		assert.Equal(t, []byte(tc.want), engine.TenantInfo(tc.salt, tc.tenant))
	}
	// Tenant ids never contain '|', so salt and tenant cannot trade bytes.
	assert.NotEqual(t, engine.TenantInfo("a", "b-c"), engine.TenantInfo("a-b", "c"))
	assert.False(t, engine.ValidTenantID("a|b"))
}

func TestKeyCheckValue(t *testing.T) {
	ctx := t.Context()
	root := randomBytes(t, engine.RootKeySize)
	k1, err := engine.NewSoftKeyring(root)
	require.NoError(t, err)
	k2, err := engine.NewSoftKeyring(root)
	require.NoError(t, err)
	other, err := engine.NewSoftKeyring(randomBytes(t, engine.RootKeySize))
	require.NoError(t, err)

	kcv1, err := engine.KeyCheckValue(ctx, k1, 1)
	require.NoError(t, err)
	assert.Regexp(t, regexp.MustCompile(`^[0-9a-f]{16}$`), kcv1)
	// Pinned: stores record this value, so it must never change.
	assert.Equal(t, hex.EncodeToString(hkdfExpand(root, []byte("minikms/v1|key-check-value"), 32)[:8]), kcv1)
	assertNoSecret(t, kcv1, root, "key check value")

	again, err := engine.KeyCheckValue(ctx, k1, 1)
	require.NoError(t, err)
	same, err := engine.KeyCheckValue(ctx, k2, 1)
	require.NoError(t, err)
	diff, err := engine.KeyCheckValue(ctx, other, 1)
	require.NoError(t, err)
	assert.Equal(t, kcv1, again, "stable across calls")
	assert.Equal(t, kcv1, same, "stable across keyrings of one root")
	assert.NotEqual(t, kcv1, diff, "different roots have different check values")

	// It is no tenant key: its info has no second separator.
	for _, tenant := range []string{"acme", "key-check-value"} {
		tk, err := k1.Derive(ctx, 1, engine.TenantInfo("", tenant))
		require.NoError(t, err)
		assert.NotEqual(t, kcv1, hex.EncodeToString(tk[:8]))
	}

	_, err = engine.KeyCheckValue(ctx, k1, 9)
	assert.Error(t, err, "unknown version")

	e := newEnv(t, withRoot(root))
	got, err := e.eng.KeyCheckValue(ctx)
	require.NoError(t, err)
	assert.Equal(t, kcv1, got)
}

// storeSnapshot is everything a store holds that Open could write.
type storeSnapshot struct {
	meta    map[string][]byte
	objects []*engine.StoredObject
}

func snapshot(t testing.TB, s engine.Store, tenants ...string) storeSnapshot {
	t.Helper()
	meta, err := s.ListMeta(t.Context(), "")
	require.NoError(t, err)
	snap := storeSnapshot{meta: meta}
	for _, tenant := range tenants {
		objs, err := s.ListObjects(t.Context(), engine.ObjectQuery{Tenant: tenant})
		require.NoError(t, err)
		snap.objects = append(snap.objects, objs...)
	}
	return snap
}

func TestOpenRefusesWrongRootKey(t *testing.T) {
	ctx := t.Context()
	root := randomBytes(t, engine.RootKeySize)
	e := newEnv(t, withRoot(root))
	key := e.activeAES(t, acmeAdmin, 256)
	ct := e.encrypt(t, acmeAdmin, key.ID, []byte("hello"))
	e.eng.Close()

	before := snapshot(t, e.store, "acme")
	require.NotEmpty(t, before.meta, "Open records the check values")

	wrongRoot := randomBytes(t, engine.RootKeySize)
	wrong, err := engine.NewSoftKeyring(wrongRoot)
	require.NoError(t, err)
	eng, err := engine.Open(ctx, engine.Config{Store: e.store, Keyring: wrong, Salt: e.salt})
	require.ErrorIs(t, err, engine.ErrWrongRootKey)
	assert.Nil(t, eng)
	assertNoSecret(t, err.Error(), wrongRoot, "the error")
	assertNoSecret(t, err.Error(), root, "the error")
	assert.Equal(t, before, snapshot(t, e.store, "acme"), "a refused Open wrote to the store")

	// A different salt does not make a wrong root acceptable either.
	_, err = engine.Open(ctx, engine.Config{Store: e.store, Keyring: wrong, Salt: "other"})
	require.ErrorIs(t, err, engine.ErrWrongRootKey)
	assert.Equal(t, before, snapshot(t, e.store, "acme"))

	// The right key still opens it, and the data is readable.
	e.reopen(t)
	pt, err := e.decrypt(t, acmeAdmin, key.ID, ct)
	require.NoError(t, err)
	assert.Equal(t, []byte("hello"), pt)
}

func TestOpenRefusesChangedSalt(t *testing.T) {
	ctx := t.Context()
	e := newEnv(t, withSalt("salt-one"))
	key := e.activeAES(t, acmeAdmin, 128)
	e.eng.Close()
	before := snapshot(t, e.store, "acme")

	for _, salt := range []string{"salt-two", "", "salt-one "} {
		t.Run("salt "+salt, func(t *testing.T) {
			_, err := engine.Open(ctx, engine.Config{Store: e.store, Keyring: e.kr, Salt: salt})
			require.Error(t, err)
			assert.NotErrorIs(t, err, engine.ErrWrongRootKey, "the root key is right")
			assert.NotContains(t, err.Error(), "salt-one", "the error echoes the salt")
			assert.Equal(t, before, snapshot(t, e.store, "acme"))
		})
	}

	e.reopen(t)
	_, err := e.eng.Encrypt(ctx, acmeAdmin, engine.EncryptRequest{ID: key.ID, Data: []byte("x")})
	require.NoError(t, err)
}

func TestOpenRequiresStoreAndKeyring(t *testing.T) {
	e := newEnv(t)
	_, err := engine.Open(t.Context(), engine.Config{Keyring: e.kr})
	assert.Error(t, err)
	_, err = engine.Open(t.Context(), engine.Config{Store: e.store})
	assert.Error(t, err)
}

func TestOpenOnFreshStoreRecordsCheckValues(t *testing.T) {
	e := newEnv(t)
	kcv, err := e.eng.KeyCheckValue(t.Context())
	require.NoError(t, err)
	meta, err := e.store.ListMeta(t.Context(), "")
	require.NoError(t, err)
	var found bool
	for _, v := range meta {
		found = found || string(v) == kcv
		assertNoSecret(t, string(v), e.root, "store metadata")
	}
	assert.True(t, found, "the key check value is recorded: %v", meta)
	// A second Open with the same key and salt adds nothing.
	e.reopen(t)
	again, err := e.store.ListMeta(t.Context(), "")
	require.NoError(t, err)
	assert.Equal(t, meta, again)
}

// TestReopenReadsEverythingBack is durability across a restart: every
// object, attribute and piece of material comes back from the file.
func TestReopenReadsEverythingBack(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	aes := e.activeAES(t, acmeAdmin, 256, attr(engine.AttrName, name("payroll")))
	des := e.create(t, acmeAdmin,
		attr(engine.AttrCryptographicAlgorithm, engine.Alg3DES),
		attr(engine.AttrCryptographicLength, int32(168)),
		attr(engine.AttrActivationDate, e.clock.Now()))
	seed, err := e.eng.Register(ctx, acmeApp, engine.RegisterRequest{Type: engine.TypeSecretData,
		Material: engine.Material{Format: engine.FormatRaw, DataType: uint32(engine.SecretSeed), Bytes: []byte("seed material 123")}})
	require.NoError(t, err)
	opaque, err := e.eng.Register(ctx, globexAdmin, engine.RegisterRequest{Type: engine.TypeOpaqueObject,
		Material: engine.Material{Format: engine.FormatOpaque, DataType: 0x8000_0001, Bytes: []byte{1, 2, 3}}})
	require.NoError(t, err)
	_, _, err = e.eng.AddAttribute(ctx, acmeAdmin, aes.ID, attr("x-owner", textItem("team-a")))
	require.NoError(t, err)
	destroyed := e.create(t, acmeAdmin, aesAttrs(128)...)
	_, err = e.eng.Destroy(ctx, acmeAdmin, destroyed.ID)
	require.NoError(t, err)

	data := []byte("survives a restart")
	aesCT := e.encrypt(t, acmeApp, aes.ID, data)
	desCT := e.encrypt(t, acmeApp, des.ID, data)

	type snap struct {
		p     engine.Principal
		id    string
		attrs []engine.Attribute
		mat   engine.Material
	}
	var before []snap
	for _, x := range []struct {
		p  engine.Principal
		id string
	}{{acmeAdmin, aes.ID}, {acmeAdmin, des.ID}, {acmeAdmin, seed.ID}, {globexAdmin, opaque.ID}} {
		_, m, err := e.eng.Get(ctx, x.p, x.id)
		require.NoError(t, err)
		before = append(before, snap{x.p, x.id, e.attrs(t, x.p, x.id), m})
	}
	destroyedAttrs := e.attrs(t, acmeAdmin, destroyed.ID)

	e.reopen(t)
	assert.Zero(t, e.eng.CachedObjects(), "a new engine starts with an empty cache")

	for _, s := range before {
		_, m, err := e.eng.Get(ctx, s.p, s.id)
		require.NoError(t, err)
		assert.Equal(t, s.mat, m, "material of %s", s.id)
		assert.Equal(t, s.attrs, e.attrs(t, s.p, s.id), "attributes of %s", s.id)
	}
	assert.Equal(t, destroyedAttrs, e.attrs(t, acmeAdmin, destroyed.ID))
	_, m, err := e.eng.Get(ctx, acmeAdmin, destroyed.ID)
	assert.ErrorIs(t, err, engine.ErrNotFound, "a destroyed object's value is gone")
	assert.Empty(t, m.Bytes)

	for _, c := range []struct {
		id  string
		res engine.EncryptResult
	}{{aes.ID, aesCT}, {des.ID, desCT}} {
		pt, err := e.decrypt(t, acmeApp, c.id, c.res)
		require.NoError(t, err)
		assert.Equal(t, data, pt)
	}
	assert.Equal(t, []string{opaque.ID}, e.locate(t, globexAdmin))
}
