package engine

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/hex"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func testKey(t testing.TB) []byte {
	t.Helper()
	k := make([]byte, 32)
	_, err := rand.Read(k)
	require.NoError(t, err)
	return k
}

func TestWrapAADLayout(t *testing.T) {
	got := wrapAAD("ab", "c", 7)
	want := append([]byte("minikms/wrap/v1"), 0, 2, 'a', 'b', 0, 1, 'c', 0, 0, 0, 7)
	assert.Equal(t, want, got)
	// Length prefixes keep tenant and id from trading bytes.
	assert.NotEqual(t, wrapAAD("ab", "c", 1), wrapAAD("a", "bc", 1))
}

func TestWrapAADBindsTenantObjectAndVersion(t *testing.T) {
	key := testKey(t)
	material := []byte("0123456789abcdef0123456789abcdef")
	w, err := wrapMaterial(testGCM(t, key), "acme", "obj-1", 1, material)
	require.NoError(t, err)

	cases := []struct {
		name    string
		key     []byte
		tenant  string
		id      string
		version uint32
		ok      bool
	}{
		{"same inputs", key, "acme", "obj-1", 1, true},
		{"other tenant", key, "globex", "obj-1", 1, false},
		{"other object", key, "acme", "obj-2", 1, false},
		{"other root version", key, "acme", "obj-1", 2, false},
		{"tenant and id shifted", key, "acmeo", "bj-1", 1, false},
		{"other key", testKey(t), "acme", "obj-1", 1, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			pt, err := unwrapMaterial(testGCM(t, tc.key), tc.tenant, tc.id, tc.version, w)
			if tc.ok {
				require.NoError(t, err)
				assert.Equal(t, material, pt)
				return
			}
			require.Error(t, err)
			assert.Nil(t, pt)
			for _, s := range []string{tc.tenant, tc.id, string(material), hex.EncodeToString(material)} {
				assert.NotContains(t, err.Error(), s, "the error names an input")
			}
		})
	}
}

func TestWrapFormat(t *testing.T) {
	key := testKey(t)
	material := bytes.Repeat([]byte{0xAB}, 40)
	w1, err := wrapMaterial(testGCM(t, key), "acme", "id", 1, material)
	require.NoError(t, err)
	w2, err := wrapMaterial(testGCM(t, key), "acme", "id", 1, material)
	require.NoError(t, err)

	require.Len(t, w1, wrapOverhead+len(material))
	assert.Equal(t, byte(wrapFormatV1), w1[0])
	assert.NotEqual(t, w1[1:1+wrapNonceSize], w2[1:1+wrapNonceSize], "nonce reused")
	assert.False(t, bytes.Contains(w1, material[:8]), "plaintext visible in the wrapped form")

	// The layout is AES-256-GCM under the tenant key, nonce in front.
	aead := testGCM(t, key)
	pt, err := aead.Open(nil, w1[1:13], w1[13:], wrapAAD("acme", "id", 1))
	require.NoError(t, err)
	assert.Equal(t, material, pt)

	bad := map[string][]byte{
		"unknown format": append([]byte{0x02}, w1[1:]...),
		"too short":      w1[:wrapOverhead-1],
		"empty":          nil,
		"too long":       make([]byte, wrapOverhead+MaxMaterialSize+1),
	}
	for name, b := range bad {
		t.Run(name, func(t *testing.T) {
			_, err := unwrapMaterial(testGCM(t, key), "acme", "id", 1, b)
			require.Error(t, err)
		})
	}

	_, err = wrapMaterial(testGCM(t, key), "acme", "id", 1, make([]byte, MaxMaterialSize+1))
	require.ErrorIs(t, err, ErrLimit)
	w, err := wrapMaterial(testGCM(t, key), "acme", "id", 1, make([]byte, MaxMaterialSize))
	require.NoError(t, err)
	_, err = unwrapMaterial(testGCM(t, key), "acme", "id", 1, w)
	require.NoError(t, err)
}

func TestMaterialEncoding(t *testing.T) {
	m := Material{Format: FormatOpaque, DataType: 0x80000001, Bytes: []byte{9, 8, 7}}
	b := encodeMaterial(m)
	assert.Equal(t, []byte{0x01, byte(FormatOpaque), 0x80, 0, 0, 1, 9, 8, 7}, b)
	got, err := decodeMaterial(b)
	require.NoError(t, err)
	assert.Equal(t, m, got)

	for name, b := range map[string][]byte{"short": {1, 1, 0}, "unknown layout": {2, 1, 0, 0, 0, 0, 5}} {
		_, err := decodeMaterial(b)
		assert.Error(t, err, name)
	}
}

func TestValidTenantID(t *testing.T) {
	cases := map[string]bool{
		"acme": true, "a": true, "globex-2": true, "0day": true,
		"": false, "-acme": false, "Acme": false, "a_b": false, "a|b": false,
		"_system": false, "a.b": false, "acme ": false,
		string(bytes.Repeat([]byte("a"), 63)): true,
		string(bytes.Repeat([]byte("a"), 64)): false,
	}
	for id, want := range cases {
		assert.Equal(t, want, ValidTenantID(id), "%q", id)
	}
	// The system key domain can never be a tenant's.
	assert.False(t, ValidTenantID(systemTenant))
}

func BenchmarkWrap32(b *testing.B) {
	key, material := testKey(b), testKey(b)
	aead := testGCM(b, key)
	b.SetBytes(32)
	for b.Loop() {
		if _, err := wrapMaterial(aead, "acme", "3f1c2a9e-8b7d-4c6e-9f0a-1b2c3d4e5f60", 1, material); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkUnwrap32(b *testing.B) {
	key, material := testKey(b), testKey(b)
	const id = "3f1c2a9e-8b7d-4c6e-9f0a-1b2c3d4e5f60"
	aead := testGCM(b, key)
	w, err := wrapMaterial(aead, "acme", id, 1, material)
	require.NoError(b, err)
	b.SetBytes(32)
	for b.Loop() {
		pt, err := unwrapMaterial(aead, "acme", id, 1, w)
		if err != nil {
			b.Fatal(err)
		}
		clear(pt)
	}
}

// testGCM is AES-256-GCM under key, as the engine prepares tenant keys.
func testGCM(t testing.TB, key []byte) cipher.AEAD {
	t.Helper()
	block, err := aes.NewCipher(key)
	require.NoError(t, err)
	aead, err := cipher.NewGCM(block)
	require.NoError(t, err)
	return aead
}
