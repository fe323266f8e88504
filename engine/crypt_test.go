package engine_test

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/des"
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/minikms/minikms/engine"
)

func params(mode engine.BlockCipherMode, pad engine.PaddingMethod) *engine.CryptographicParameters {
	return &engine.CryptographicParameters{BlockCipherMode: mode, PaddingMethod: pad}
}

func gcmTag(n int32) *engine.CryptographicParameters {
	return &engine.CryptographicParameters{BlockCipherMode: engine.ModeGCM, TagLength: n}
}

func TestAESGCMKnownAnswer(t *testing.T) {
	// NIST GCM specification (McGrew & Viega), test cases 3 and 4.
	e := newEnv(t)
	key := e.registerKey(t, acmeApp, engine.AlgAES, unhex(t, "feffe9928665731c6d6a8f9467308308"))
	iv := unhex(t, "cafebabefacedbaddecaf888")
	pt := unhex(t, "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a72"+
		"1c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b391aafd255")
	ct := unhex(t, "42831ec2217774244b7221b784d0d49ce3aa212f2c02a4e035c17e2329aca12e"+
		"21d514b25466931c7d8f6a5aac84aa051ba30b396a0aac973d58e091473f5985")
	cases := []struct {
		name           string
		pt, aad, ct, t []byte
	}{
		{"test case 3", pt, nil, ct, unhex(t, "4d5c2af327cd64a62cf35abd2ba6fab4")},
		{"test case 4 (AAD)", pt[:60], unhex(t, "feedfacedeadbeeffeedfacedeadbeefabaddad2"), ct[:60], unhex(t, "5bc94fbc3221a5db94fae95ae7121a47")},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			res, err := e.eng.Encrypt(t.Context(), acmeApp, engine.EncryptRequest{ID: key.ID,
				Params: params(engine.ModeGCM, 0), Data: tc.pt, IV: iv, AAD: tc.aad})
			require.NoError(t, err)
			assert.Equal(t, tc.ct, res.Ciphertext)
			assert.Equal(t, tc.t, res.Tag)
			assert.Nil(t, res.IV, "the client's IV is not echoed")

			_, got, err := e.eng.Decrypt(t.Context(), acmeApp, engine.DecryptRequest{ID: key.ID,
				Params: params(engine.ModeGCM, 0), Data: tc.ct, IV: iv, AAD: tc.aad, Tag: tc.t})
			require.NoError(t, err)
			assert.Equal(t, tc.pt, got)

			// The tag may also trail the ciphertext.
			_, got, err = e.eng.Decrypt(t.Context(), acmeApp, engine.DecryptRequest{ID: key.ID,
				Params: params(engine.ModeGCM, 0), Data: append(bytes.Clone(tc.ct), tc.t...), IV: iv, AAD: tc.aad})
			require.NoError(t, err)
			assert.Equal(t, tc.pt, got)
		})
	}
}

func TestAESECBKnownAnswer(t *testing.T) {
	e := newEnv(t)
	key := e.registerKey(t, acmeApp, engine.AlgAES, unhex(t, "0123456789abcdef0123456789abcdef"))
	pt := unhex(t, "01020304050607080910111213141516")
	res, err := e.eng.Encrypt(t.Context(), acmeApp, engine.EncryptRequest{ID: key.ID, Params: params(engine.ModeECB, engine.PadNone), Data: pt})
	require.NoError(t, err)
	assert.Equal(t, unhex(t, "d9bcce11b0b437b90239552df3a360c9"), res.Ciphertext)
	assert.Nil(t, res.IV)
	assert.Nil(t, res.Tag)
	_, got, err := e.eng.Decrypt(t.Context(), acmeApp, engine.DecryptRequest{ID: key.ID, Params: params(engine.ModeECB, engine.PadNone), Data: res.Ciphertext})
	require.NoError(t, err)
	assert.Equal(t, pt, got)
}

func TestAESGCMRoundTrips(t *testing.T) {
	e := newEnv(t)
	key := e.activeAES(t, acmeApp, 256)
	data := []byte("attack at dawn, bring snacks")
	cases := []struct {
		name      string
		params    *engine.CryptographicParameters
		iv, aad   []byte
		ivLen     int // of a server-made IV; 0 when the client gives one
		tagLen    int
		ctEqualsN bool
	}{
		{name: "server IV, defaults", params: params(engine.ModeGCM, 0), ivLen: 12, tagLen: 16},
		{name: "server IV, no parameters", ivLen: 12, tagLen: 16},
		{name: "server IV of IV Length 64 bits", params: &engine.CryptographicParameters{BlockCipherMode: engine.ModeGCM, IVLength: 64}, ivLen: 8, tagLen: 16},
		{name: "client IV 12", params: params(engine.ModeGCM, 0), iv: bytes.Repeat([]byte{1}, 12), tagLen: 16},
		{name: "client IV 8", params: params(engine.ModeGCM, 0), iv: bytes.Repeat([]byte{2}, 8), tagLen: 16},
		{name: "client IV 16", params: params(engine.ModeGCM, 0), iv: bytes.Repeat([]byte{3}, 16), tagLen: 16},
		{name: "AAD", params: params(engine.ModeGCM, 0), aad: []byte("header"), ivLen: 12, tagLen: 16},
		{name: "tag 12", params: gcmTag(12), ivLen: 12, tagLen: 12},
		{name: "tag 13", params: gcmTag(13), ivLen: 12, tagLen: 13},
		{name: "tag 14", params: gcmTag(14), ivLen: 12, tagLen: 14},
		{name: "tag 15", params: gcmTag(15), ivLen: 12, tagLen: 15},
		{name: "tag 16", params: gcmTag(16), ivLen: 12, tagLen: 16},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			res, err := e.eng.Encrypt(t.Context(), acmeApp, engine.EncryptRequest{ID: key.ID, Params: tc.params, Data: data, IV: tc.iv, AAD: tc.aad})
			require.NoError(t, err)
			assert.Len(t, res.Ciphertext, len(data), "GCM does not expand")
			assert.Len(t, res.Tag, tc.tagLen)
			iv := tc.iv
			if tc.ivLen > 0 {
				require.Len(t, res.IV, tc.ivLen)
				iv = res.IV
			} else {
				assert.Nil(t, res.IV)
			}
			assert.NotEqual(t, data, res.Ciphertext)
			_, pt, err := e.eng.Decrypt(t.Context(), acmeApp, engine.DecryptRequest{ID: key.ID, Params: tc.params,
				Data: res.Ciphertext, IV: iv, AAD: tc.aad, Tag: res.Tag})
			require.NoError(t, err)
			assert.Equal(t, data, pt)
		})
	}

	t.Run("server IVs are fresh", func(t *testing.T) {
		a := e.encrypt(t, acmeApp, key.ID, data)
		b := e.encrypt(t, acmeApp, key.ID, data)
		assert.NotEqual(t, a.IV, b.IV)
		assert.NotEqual(t, a.Ciphertext, b.Ciphertext)
	})
	t.Run("empty data", func(t *testing.T) {
		res := e.encrypt(t, acmeApp, key.ID, nil)
		assert.Empty(t, res.Ciphertext)
		assert.Len(t, res.Tag, 16)
		pt, err := e.decrypt(t, acmeApp, key.ID, res)
		require.NoError(t, err)
		assert.Empty(t, pt)
	})
}

func TestAESGCMRejects(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	key := e.activeAES(t, acmeApp, 128)
	data := []byte("some plaintext, longer than a tag")
	aad := []byte("aad")
	res, err := e.eng.Encrypt(ctx, acmeApp, engine.EncryptRequest{ID: key.ID, Data: data, AAD: aad})
	require.NoError(t, err)
	flip := func(b []byte, i int) []byte { c := bytes.Clone(b); c[i] ^= 1; return c }

	for _, n := range []int32{4, 8} {
		_, err := e.eng.Encrypt(ctx, acmeApp, engine.EncryptRequest{ID: key.ID, Params: gcmTag(n), Data: data})
		assert.ErrorIs(t, err, engine.ErrNotSupported, "tag length %d", n)
	}
	for _, n := range []int32{1, 3, 11, 17, 32} {
		_, err := e.eng.Encrypt(ctx, acmeApp, engine.EncryptRequest{ID: key.ID, Params: gcmTag(n), Data: data})
		assert.ErrorIs(t, err, engine.ErrInvalidField, "tag length %d", n)
		_, _, err = e.eng.Decrypt(ctx, acmeApp, engine.DecryptRequest{ID: key.ID, Params: gcmTag(n), Data: res.Ciphertext, IV: res.IV, Tag: res.Tag})
		assert.ErrorIs(t, err, engine.ErrInvalidField, "decrypt with tag length %d", n)
	}

	cases := []struct {
		name string
		req  engine.DecryptRequest
		want error
	}{
		{"wrong AAD", engine.DecryptRequest{Data: res.Ciphertext, IV: res.IV, AAD: []byte("aae"), Tag: res.Tag}, engine.ErrCryptoFailure},
		{"missing AAD", engine.DecryptRequest{Data: res.Ciphertext, IV: res.IV, Tag: res.Tag}, engine.ErrCryptoFailure},
		{"wrong tag", engine.DecryptRequest{Data: res.Ciphertext, IV: res.IV, AAD: aad, Tag: flip(res.Tag, 15)}, engine.ErrCryptoFailure},
		{"wrong IV", engine.DecryptRequest{Data: res.Ciphertext, IV: flip(res.IV, 0), AAD: aad, Tag: res.Tag}, engine.ErrCryptoFailure},
		{"wrong ciphertext", engine.DecryptRequest{Data: flip(res.Ciphertext, 3), IV: res.IV, AAD: aad, Tag: res.Tag}, engine.ErrCryptoFailure},
		{"short IV", engine.DecryptRequest{Data: res.Ciphertext, IV: res.IV[:8], AAD: aad, Tag: res.Tag}, engine.ErrCryptoFailure},
		{"missing IV", engine.DecryptRequest{Data: res.Ciphertext, AAD: aad, Tag: res.Tag}, engine.ErrInvalidMessage},
		{"truncated tag", engine.DecryptRequest{Data: res.Ciphertext, IV: res.IV, AAD: aad, Tag: res.Tag[:12]}, engine.ErrInvalidField},
		{"no tag, data shorter than one", engine.DecryptRequest{Data: res.Ciphertext[:10], IV: res.IV, AAD: aad}, engine.ErrInvalidField},
		{"no tag at all", engine.DecryptRequest{Data: res.Ciphertext, IV: res.IV, AAD: aad}, engine.ErrCryptoFailure},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tc.req.ID = key.ID
			_, pt, err := e.eng.Decrypt(ctx, acmeApp, tc.req)
			require.ErrorIs(t, err, tc.want)
			assert.Nil(t, pt, "plaintext released")
			assert.NotContains(t, err.Error(), string(data))
		})
	}
}

func TestAESBlockModes(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	raw := randomBytes(t, 32)
	key := e.registerKey(t, acmeApp, engine.AlgAES, raw)
	block, err := aes.NewCipher(raw)
	require.NoError(t, err)

	t.Run("CBC PKCS5 lengths", func(t *testing.T) {
		for _, n := range []int{0, 1, 15, 16, 17, 31, 32, 100} {
			data := randomBytes(t, n)
			res, err := e.eng.Encrypt(ctx, acmeApp, engine.EncryptRequest{ID: key.ID, Params: params(engine.ModeCBC, engine.PadPKCS5), Data: data})
			require.NoError(t, err)
			assert.Len(t, res.Ciphertext, (n/16+1)*16, "%d bytes", n)
			require.Len(t, res.IV, 16)
			assert.Nil(t, res.Tag)
			// Independent check with the standard library.
			want := make([]byte, len(res.Ciphertext))
			cipher.NewCBCDecrypter(block, res.IV).CryptBlocks(want, res.Ciphertext)
			pad := int(want[len(want)-1])
			assert.Equal(t, data, want[:len(want)-pad])
			assert.Equal(t, bytes.Repeat([]byte{byte(pad)}, pad), want[len(want)-pad:])

			_, pt, err := e.eng.Decrypt(ctx, acmeApp, engine.DecryptRequest{ID: key.ID, Params: params(engine.ModeCBC, engine.PadPKCS5), Data: res.Ciphertext, IV: res.IV})
			require.NoError(t, err)
			assert.Equal(t, data, pt[:len(pt):len(pt)], "%d bytes", n)
			assert.Len(t, pt, n)
		}
	})
	t.Run("CBC no padding, client IV", func(t *testing.T) {
		data, iv := randomBytes(t, 48), randomBytes(t, 16)
		for _, pad := range []engine.PaddingMethod{engine.PadNone, 0} {
			res, err := e.eng.Encrypt(ctx, acmeApp, engine.EncryptRequest{ID: key.ID, Params: params(engine.ModeCBC, pad), Data: data, IV: iv})
			require.NoError(t, err)
			want := make([]byte, 48)
			cipher.NewCBCEncrypter(block, iv).CryptBlocks(want, data)
			assert.Equal(t, want, res.Ciphertext)
			assert.Nil(t, res.IV)
		}
	})
	t.Run("ECB", func(t *testing.T) {
		data := randomBytes(t, 32)
		res, err := e.eng.Encrypt(ctx, acmeApp, engine.EncryptRequest{ID: key.ID, Params: params(engine.ModeECB, engine.PadNone), Data: data})
		require.NoError(t, err)
		want := make([]byte, 32)
		block.Encrypt(want[:16], data[:16])
		block.Encrypt(want[16:], data[16:])
		assert.Equal(t, want, res.Ciphertext)
		res, err = e.eng.Encrypt(ctx, acmeApp, engine.EncryptRequest{ID: key.ID, Params: params(engine.ModeECB, engine.PadPKCS5), Data: data[:5]})
		require.NoError(t, err)
		require.Len(t, res.Ciphertext, 16)
		_, pt, err := e.eng.Decrypt(ctx, acmeApp, engine.DecryptRequest{ID: key.ID, Params: params(engine.ModeECB, engine.PadPKCS5), Data: res.Ciphertext})
		require.NoError(t, err)
		assert.Equal(t, data[:5], pt)
	})
	t.Run("CTR", func(t *testing.T) {
		data := randomBytes(t, 37)
		res, err := e.eng.Encrypt(ctx, acmeApp, engine.EncryptRequest{ID: key.ID, Params: params(engine.ModeCTR, 0), Data: data})
		require.NoError(t, err)
		require.Len(t, res.IV, 16)
		assert.Len(t, res.Ciphertext, 37, "CTR does not pad")
		want := make([]byte, 37)
		cipher.NewCTR(block, res.IV).XORKeyStream(want, data)
		assert.Equal(t, want, res.Ciphertext)
		_, pt, err := e.eng.Decrypt(ctx, acmeApp, engine.DecryptRequest{ID: key.ID, Params: params(engine.ModeCTR, 0), Data: res.Ciphertext, IV: res.IV})
		require.NoError(t, err)
		assert.Equal(t, data, pt)
	})

	// Deterministic bad paddings: blocks encrypted without padding whose
	// last bytes are no valid PKCS#5 padding.
	badPad := map[string][]byte{
		"pad byte zero":         append(bytes.Repeat([]byte{'a'}, 15), 0x00),
		"pad byte too big":      append(bytes.Repeat([]byte{'a'}, 15), 0x11),
		"pad bytes disagree":    append(bytes.Repeat([]byte{'a'}, 13), 0x02, 0x03, 0x03),
		"full block pad broken": append([]byte{0x0f}, bytes.Repeat([]byte{0x10}, 15)...),
	}
	for name, block := range badPad {
		t.Run("bad padding: "+name, func(t *testing.T) {
			iv := make([]byte, 16)
			res, err := e.eng.Encrypt(ctx, acmeApp, engine.EncryptRequest{ID: key.ID, Params: params(engine.ModeCBC, engine.PadNone), Data: block, IV: iv})
			require.NoError(t, err)
			_, pt, err := e.eng.Decrypt(ctx, acmeApp, engine.DecryptRequest{ID: key.ID, Params: params(engine.ModeCBC, engine.PadPKCS5), Data: res.Ciphertext, IV: iv})
			require.ErrorIs(t, err, engine.ErrBadCiphertext)
			assert.Nil(t, pt)
		})
	}

	rejects := []struct {
		name    string
		encrypt bool
		params  *engine.CryptographicParameters
		data    []byte
		iv      []byte
		want    error
	}{
		{"CBC no padding, partial block", true, params(engine.ModeCBC, engine.PadNone), make([]byte, 15), nil, engine.ErrInvalidField},
		{"ECB no padding, partial block", true, params(engine.ModeECB, engine.PadNone), make([]byte, 17), nil, engine.ErrInvalidField},
		{"CBC IV of 8 bytes", true, params(engine.ModeCBC, engine.PadPKCS5), []byte("x"), make([]byte, 8), engine.ErrInvalidField},
		{"CTR IV of 12 bytes", true, params(engine.ModeCTR, 0), []byte("x"), make([]byte, 12), engine.ErrInvalidField},
		{"ECB with an IV", true, params(engine.ModeECB, engine.PadPKCS5), []byte("x"), make([]byte, 16), engine.ErrInvalidField},
		{"CFB", true, params(engine.ModeCFB, 0), []byte("x"), nil, engine.ErrNotSupported},
		{"OAEP padding", true, params(engine.ModeCBC, engine.PadOAEP), []byte("x"), nil, engine.ErrNotSupported},
		{"CBC Random IV false without IV", true, &engine.CryptographicParameters{BlockCipherMode: engine.ModeCBC, PaddingMethod: engine.PadPKCS5, RandomIV: new(bool)}, []byte("x"), nil, engine.ErrMissingData},
		{"GCM Random IV false without IV", true, &engine.CryptographicParameters{BlockCipherMode: engine.ModeGCM, RandomIV: new(bool)}, []byte("x"), nil, engine.ErrMissingData},
		{"other algorithm in parameters", true, &engine.CryptographicParameters{BlockCipherMode: engine.ModeCBC, CryptographicAlgorithm: engine.Alg3DES}, []byte("x"), nil, engine.ErrInvalidField},
		{"negative IV length", true, &engine.CryptographicParameters{BlockCipherMode: engine.ModeGCM, IVLength: -8}, []byte("x"), nil, engine.ErrInvalidField},
		{"data over the limit", true, params(engine.ModeGCM, 0), make([]byte, engine.MaxDataSize+1), nil, engine.ErrLimit},
		{"CBC decrypt without IV", false, params(engine.ModeCBC, engine.PadPKCS5), make([]byte, 16), nil, engine.ErrInvalidMessage},
		{"CTR decrypt without IV", false, params(engine.ModeCTR, 0), make([]byte, 16), nil, engine.ErrInvalidMessage},
		{"CBC decrypt, partial block", false, params(engine.ModeCBC, engine.PadPKCS5), make([]byte, 17), make([]byte, 16), engine.ErrBadCiphertext},
		{"CBC decrypt, empty with padding", false, params(engine.ModeCBC, engine.PadPKCS5), nil, make([]byte, 16), engine.ErrBadCiphertext},
		{"CBC decrypt, IV of 12", false, params(engine.ModeCBC, engine.PadPKCS5), make([]byte, 16), make([]byte, 12), engine.ErrInvalidField},
		{"ECB decrypt, partial block", false, params(engine.ModeECB, engine.PadNone), make([]byte, 8), nil, engine.ErrBadCiphertext},
		{"decrypt CFB", false, params(engine.ModeCFB, 0), make([]byte, 16), make([]byte, 16), engine.ErrNotSupported},
		{"decrypt data over the limit", false, params(engine.ModeCTR, 0), make([]byte, engine.MaxDataSize+1), make([]byte, 16), engine.ErrLimit},
	}
	for _, tc := range rejects {
		t.Run(tc.name, func(t *testing.T) {
			var err error
			if tc.encrypt {
				var res engine.EncryptResult
				res, err = e.eng.Encrypt(ctx, acmeApp, engine.EncryptRequest{ID: key.ID, Params: tc.params, Data: tc.data, IV: tc.iv})
				assert.Nil(t, res.Ciphertext)
			} else {
				var pt []byte
				_, pt, err = e.eng.Decrypt(ctx, acmeApp, engine.DecryptRequest{ID: key.ID, Params: tc.params, Data: tc.data, IV: tc.iv})
				assert.Nil(t, pt)
			}
			require.ErrorIs(t, err, tc.want)
		})
	}
}

func TestTripleDES(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	for _, bits := range []int32{112, 168} {
		t.Run(map[int32]string{112: "two-key", 168: "three-key"}[bits], func(t *testing.T) {
			o := e.create(t, acmeApp, attr(engine.AttrCryptographicAlgorithm, engine.Alg3DES),
				attr(engine.AttrCryptographicLength, bits), attr(engine.AttrActivationDate, e.clock.Now()))
			_, m, err := e.eng.Get(ctx, acmeApp, o.ID)
			require.NoError(t, err)
			k := m.Bytes
			if len(k) == 16 {
				k = append(bytes.Clone(k), k[:8]...) // K1 K2 K1
			}
			block, err := des.NewTripleDESCipher(k)
			require.NoError(t, err)

			// Default: CBC with PKCS#5 padding, 8-byte IV.
			data := []byte("nine char")
			res := e.encrypt(t, acmeApp, o.ID, data)
			require.Len(t, res.IV, 8)
			require.Len(t, res.Ciphertext, 16)
			assert.Nil(t, res.Tag)
			want := make([]byte, 16)
			cipher.NewCBCDecrypter(block, res.IV).CryptBlocks(want, res.Ciphertext)
			assert.Equal(t, append(bytes.Clone(data), 7, 7, 7, 7, 7, 7, 7), want)
			pt, err := e.decrypt(t, acmeApp, o.ID, res)
			require.NoError(t, err)
			assert.Equal(t, data, pt)

			// ECB, one 8-byte block at a time.
			blk := []byte("8 bytes!")
			er, err := e.eng.Encrypt(ctx, acmeApp, engine.EncryptRequest{ID: o.ID, Params: params(engine.ModeECB, engine.PadNone), Data: blk})
			require.NoError(t, err)
			want = make([]byte, 8)
			block.Encrypt(want, blk)
			assert.Equal(t, want, er.Ciphertext)

			// CBC wants an 8-byte IV.
			_, err = e.eng.Encrypt(ctx, acmeApp, engine.EncryptRequest{ID: o.ID, Params: params(engine.ModeCBC, engine.PadPKCS5), Data: blk, IV: make([]byte, 16)})
			assert.ErrorIs(t, err, engine.ErrInvalidField)
			_, err = e.eng.Encrypt(ctx, acmeApp, engine.EncryptRequest{ID: o.ID, Params: params(engine.ModeCBC, engine.PadNone), Data: make([]byte, 12)})
			assert.ErrorIs(t, err, engine.ErrInvalidField, "12 bytes are no whole 8-byte blocks")

			// GCM needs a 128-bit block.
			_, err = e.eng.Encrypt(ctx, acmeApp, engine.EncryptRequest{ID: o.ID, Params: params(engine.ModeGCM, 0), Data: blk})
			assert.ErrorIs(t, err, engine.ErrInvalidField)
			_, _, err = e.eng.Decrypt(ctx, acmeApp, engine.DecryptRequest{ID: o.ID, Params: params(engine.ModeGCM, 0), Data: blk, IV: make([]byte, 12), Tag: make([]byte, 16)})
			assert.ErrorIs(t, err, engine.ErrInvalidField)
		})
	}
}

func TestDefaultModeAndKeyParameters(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	data := []byte("hello")

	gcm := e.activeAES(t, acmeApp, 128)
	res := e.encrypt(t, acmeApp, gcm.ID, data)
	assert.Len(t, res.IV, 12, "AES defaults to GCM")
	assert.Len(t, res.Tag, 16)
	assert.Len(t, res.Ciphertext, 5)

	cbc := e.activeAES(t, acmeApp, 128, attr(engine.AttrCryptographicParameters,
		engine.CryptographicParameters{BlockCipherMode: engine.ModeCBC, PaddingMethod: engine.PadPKCS5}))
	res = e.encrypt(t, acmeApp, cbc.ID, data)
	assert.Len(t, res.IV, 16, "the key's Cryptographic Parameters apply")
	assert.Nil(t, res.Tag)
	assert.Len(t, res.Ciphertext, 16)
	pt, err := e.decrypt(t, acmeApp, cbc.ID, res)
	require.NoError(t, err)
	assert.Equal(t, data, pt)

	// Parameters in the request win over the key's.
	res, err = e.eng.Encrypt(ctx, acmeApp, engine.EncryptRequest{ID: cbc.ID, Params: params(engine.ModeCTR, 0), Data: data})
	require.NoError(t, err)
	assert.Len(t, res.Ciphertext, 5)
	_, pt, err = e.eng.Decrypt(ctx, acmeApp, engine.DecryptRequest{ID: cbc.ID, Params: params(engine.ModeCTR, 0), Data: res.Ciphertext, IV: res.IV})
	require.NoError(t, err)
	assert.Equal(t, data, pt)

	// The key's parameters can be changed by Modify Attribute.
	_, _, err = e.eng.ModifyAttribute(ctx, acmeApp, cbc.ID, attr(engine.AttrCryptographicParameters,
		engine.CryptographicParameters{BlockCipherMode: engine.ModeECB, PaddingMethod: engine.PadPKCS5}))
	require.NoError(t, err)
	res = e.encrypt(t, acmeApp, cbc.ID, data)
	assert.Nil(t, res.IV, "ECB now")
	assert.Len(t, res.Ciphertext, 16)
}

func TestCryptoUsageAndState(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	data := []byte("data")

	encOnly := e.activeAES(t, acmeApp, 128, attr(engine.AttrCryptographicUsageMask, engine.UsageEncrypt))
	res := e.encrypt(t, acmeApp, encOnly.ID, data)
	_, err := e.decrypt(t, acmeApp, encOnly.ID, res)
	require.ErrorIs(t, err, engine.ErrPermissionDenied)

	decOnly := e.activeAES(t, acmeApp, 128, attr(engine.AttrCryptographicUsageMask, engine.UsageDecrypt))
	_, err = e.eng.Encrypt(ctx, acmeApp, engine.EncryptRequest{ID: decOnly.ID, Data: data})
	require.ErrorIs(t, err, engine.ErrPermissionDenied)

	none := e.activeAES(t, acmeApp, 128, attr(engine.AttrCryptographicUsageMask, engine.UsageMask(0)))
	_, err = e.eng.Encrypt(ctx, acmeApp, engine.EncryptRequest{ID: none.ID, Data: data})
	require.ErrorIs(t, err, engine.ErrPermissionDenied)

	signOnly := e.activeAES(t, acmeApp, 128, attr(engine.AttrCryptographicUsageMask, engine.UsageSign|engine.UsageWrapKey))
	_, err = e.eng.Encrypt(ctx, acmeApp, engine.EncryptRequest{ID: signOnly.ID, Data: data})
	require.ErrorIs(t, err, engine.ErrPermissionDenied)

	pre := e.create(t, acmeApp, aesAttrs(128)...)
	_, err = e.eng.Encrypt(ctx, acmeApp, engine.EncryptRequest{ID: pre.ID, Data: data})
	require.ErrorIs(t, err, engine.ErrWrongState, "Pre-Active key")
	_, _, err = e.eng.Decrypt(ctx, acmeApp, engine.DecryptRequest{ID: pre.ID, Data: make([]byte, 16), IV: make([]byte, 12)})
	require.ErrorIs(t, err, engine.ErrWrongState)

	// Deactivated and Compromised keys decrypt, but encrypt no more.
	for _, r := range []engine.RevokeRequest{superseded, compromise} {
		k := e.activeAES(t, acmeApp, 256)
		res := e.encrypt(t, acmeApp, k.ID, data)
		_, err := e.eng.Revoke(ctx, acmeAdmin, k.ID, r)
		require.NoError(t, err)
		_, err = e.eng.Encrypt(ctx, acmeApp, engine.EncryptRequest{ID: k.ID, Data: data})
		require.ErrorIs(t, err, engine.ErrWrongState, "reason %d", r.Reason.RevocationReasonCode)
		pt, err := e.decrypt(t, acmeApp, k.ID, res)
		require.NoError(t, err, "reason %d", r.Reason.RevocationReasonCode)
		assert.Equal(t, data, pt)

		_, err = e.eng.Destroy(ctx, acmeAdmin, k.ID)
		require.NoError(t, err)
		_, err = e.decrypt(t, acmeApp, k.ID, res)
		require.ErrorIs(t, err, engine.ErrWrongState, "a destroyed key decrypts nothing")
	}

	// Only AES and triple-DES symmetric keys encrypt.
	for _, c := range []struct {
		alg  engine.Algorithm
		bits int32
	}{{engine.AlgHMACSHA256, 256}, {engine.AlgSKIPJACK, 80}} {
		k := e.create(t, acmeApp, attr(engine.AttrCryptographicAlgorithm, c.alg), attr(engine.AttrCryptographicLength, c.bits),
			attr(engine.AttrActivationDate, e.clock.Now()))
		_, err := e.eng.Encrypt(ctx, acmeApp, engine.EncryptRequest{ID: k.ID, Data: data})
		assert.ErrorIs(t, err, engine.ErrNotSupported, "algorithm %d", c.alg)
	}
	seed, err := e.eng.Register(ctx, acmeApp, engine.RegisterRequest{Type: engine.TypeSecretData,
		Attrs:    []engine.Attribute{attr(engine.AttrActivationDate, e.clock.Now()), attr(engine.AttrCryptographicUsageMask, engine.UsageEncrypt)},
		Material: engine.Material{Format: engine.FormatRaw, DataType: uint32(engine.SecretSeed), Bytes: randomBytes(t, 16)}})
	require.NoError(t, err)
	_, err = e.eng.Encrypt(ctx, acmeApp, engine.EncryptRequest{ID: seed.ID, Data: data})
	assert.ErrorIs(t, err, engine.ErrIllegalOperation)
}

func TestUsageLimits(t *testing.T) {
	ctx := t.Context()
	limits := func(total int64, unit uint32) engine.Attribute {
		return attr(engine.AttrUsageLimits, engine.UsageLimits{UsageLimitsTotal: total, UsageLimitsUnit: unit})
	}
	remaining := func(e *env, id string) int64 {
		v, ok := e.value(t, acmeAdmin, id, engine.AttrUsageLimits)
		require.True(t, ok)
		ul := v.(engine.UsageLimits)
		require.NotNil(t, ul.UsageLimitsCount)
		return *ul.UsageLimitsCount
	}

	t.Run("object unit", func(t *testing.T) {
		e := newEnv(t)
		k := e.activeAES(t, acmeApp, 256, limits(3, 2))
		assert.Equal(t, int64(3), remaining(e, k.ID), "count starts at the total")
		res := e.encrypt(t, acmeApp, k.ID, []byte("one"))
		e.encrypt(t, acmeApp, k.ID, []byte("two"))
		assert.Equal(t, int64(1), remaining(e, k.ID))

		e.reopen(t)
		assert.Equal(t, int64(1), remaining(e, k.ID), "the count is durable")
		e.encrypt(t, acmeApp, k.ID, []byte("three"))
		_, err := e.eng.Encrypt(ctx, acmeApp, engine.EncryptRequest{ID: k.ID, Data: []byte("four")})
		require.ErrorIs(t, err, engine.ErrPermissionDenied)
		assert.Equal(t, int64(0), remaining(e, k.ID))

		e.reopen(t)
		_, err = e.eng.Encrypt(ctx, acmeApp, engine.EncryptRequest{ID: k.ID, Data: []byte("four")})
		require.ErrorIs(t, err, engine.ErrPermissionDenied, "still exhausted after a restart")
		pt, err := e.decrypt(t, acmeApp, k.ID, res)
		require.NoError(t, err, "decryption is not limited")
		assert.Equal(t, "one", string(pt))
	})
	t.Run("byte unit", func(t *testing.T) {
		e := newEnv(t)
		k := e.activeAES(t, acmeApp, 256, limits(100, 1))
		e.encrypt(t, acmeApp, k.ID, make([]byte, 60))
		_, err := e.eng.Encrypt(ctx, acmeApp, engine.EncryptRequest{ID: k.ID, Data: make([]byte, 41)})
		require.ErrorIs(t, err, engine.ErrPermissionDenied, "41 bytes with 40 left")
		assert.Equal(t, int64(40), remaining(e, k.ID), "a refused use costs nothing")
		e.encrypt(t, acmeApp, k.ID, make([]byte, 40))
		assert.Equal(t, int64(0), remaining(e, k.ID))
		_, err = e.eng.Encrypt(ctx, acmeApp, engine.EncryptRequest{ID: k.ID, Data: make([]byte, 1)})
		require.ErrorIs(t, err, engine.ErrPermissionDenied)
	})
	t.Run("client count below total", func(t *testing.T) {
		e := newEnv(t)
		two := int64(2)
		k := e.activeAES(t, acmeApp, 256, attr(engine.AttrUsageLimits, engine.UsageLimits{UsageLimitsTotal: 10, UsageLimitsCount: &two, UsageLimitsUnit: 2}))
		assert.Equal(t, int64(2), remaining(e, k.ID))
		e.encrypt(t, acmeApp, k.ID, []byte("a"))
		e.encrypt(t, acmeApp, k.ID, []byte("b"))
		_, err := e.eng.Encrypt(ctx, acmeApp, engine.EncryptRequest{ID: k.ID, Data: []byte("c")})
		require.ErrorIs(t, err, engine.ErrPermissionDenied)
	})
}

// failingUpdates is the real store with every UpdateObject failing after
// armed is set: a store that cannot record a use.
type failingUpdates struct {
	engine.Store
	armed bool
}

var errInjected = errors.New("injected store failure")

func (s *failingUpdates) UpdateObject(ctx context.Context, o *engine.StoredObject, prevRev int64) error {
	if s.armed {
		return errInjected
	}
	return s.Store.UpdateObject(ctx, o, prevRev)
}

func TestUsageLimitsFailClosed(t *testing.T) {
	fs := &failingUpdates{}
	e := newEnv(t, withStoreWrapper(func(s engine.Store) engine.Store { fs.Store = s; return fs }))
	limited := e.activeAES(t, acmeApp, 256, attr(engine.AttrUsageLimits, engine.UsageLimits{UsageLimitsTotal: 100, UsageLimitsUnit: 2}))
	free := e.activeAES(t, acmeApp, 256)
	e.encrypt(t, acmeApp, limited.ID, []byte("warm the cache"))
	// The first AES-GCM encryption reserves a block of invocations
	// (rekey.go); later ones need no write.
	e.encrypt(t, acmeApp, free.ID, []byte("reserve a block"))

	fs.armed = true
	res, err := e.eng.Encrypt(t.Context(), acmeApp, engine.EncryptRequest{ID: limited.ID, Data: []byte("secret")})
	require.ErrorIs(t, err, errInjected, "a use that cannot be counted must not happen")
	assert.Nil(t, res.Ciphertext)
	e.encrypt(t, acmeApp, free.ID, []byte("unlimited keys need no write"))
}

// TestUsageLimitsNotChargedForRefusedRequests: a request the engine
// refuses for its parameters, before any cryptography, must not use up
// the key's Usage Limits (a client with a bad request could otherwise
// exhaust any limited key it may use).
func TestUsageLimitsNotChargedForRefusedRequests(t *testing.T) {
	cases := []struct {
		name   string
		params *engine.CryptographicParameters
		want   error
	}{
		{"GCM tag of 4 bytes", gcmTag(4), engine.ErrNotSupported},
		{"CFB mode", params(engine.ModeCFB, 0), engine.ErrNotSupported},
		{"CBC without padding, partial block", params(engine.ModeCBC, engine.PadNone), engine.ErrInvalidField},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			k := e.activeAES(t, acmeApp, 256, attr(engine.AttrUsageLimits, engine.UsageLimits{UsageLimitsTotal: 1, UsageLimitsUnit: 2}))
			_, err := e.eng.Encrypt(t.Context(), acmeApp, engine.EncryptRequest{ID: k.ID, Params: tc.params, Data: []byte("odd length")})
			require.ErrorIs(t, err, tc.want)

			v, _ := e.value(t, acmeApp, k.ID, engine.AttrUsageLimits)
			assert.Equal(t, int64(1), *v.(engine.UsageLimits).UsageLimitsCount, "the refused request was charged")
			_, err = e.eng.Encrypt(t.Context(), acmeApp, engine.EncryptRequest{ID: k.ID, Data: []byte("the one real use")})
			assert.NoError(t, err, "the refused request used up the key's only use")
		})
	}
}
