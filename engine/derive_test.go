package engine_test

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/sha256"
	"slices"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/minikms/minikms/engine"
)

// password registers Secret Data of type Password usable for derivation.
func (e *env) dkPassword(t testing.TB, p engine.Principal, pw string) *engine.Object {
	t.Helper()
	o, err := e.eng.Register(t.Context(), p, engine.RegisterRequest{Type: engine.TypeSecretData,
		Attrs: []engine.Attribute{
			attr(engine.AttrActivationDate, e.clock.Now()),
			attr(engine.AttrCryptographicUsageMask, engine.UsageDeriveKey),
		},
		Material: engine.Material{Format: engine.FormatRaw, DataType: uint32(engine.SecretPassword), Bytes: []byte(pw)}})
	require.NoError(t, err)
	return o
}

// secretOf asks for Secret Data of bits.
func dkSecret(bits int32) []engine.Attribute {
	return []engine.Attribute{attr(engine.AttrCryptographicLength, bits), attr(engine.AttrCryptographicUsageMask, engine.UsageDeriveKey)}
}

// derive runs Derive Key and returns the new object and its value.
func (e *env) dkDerive(t testing.TB, p engine.Principal, req engine.DeriveRequest) (*engine.Object, []byte) {
	t.Helper()
	o, err := e.eng.DeriveKey(t.Context(), p, req)
	require.NoError(t, err)
	got, m, err := e.eng.Get(t.Context(), p, o.ID)
	require.NoError(t, err)
	require.Equal(t, req.Type, got.Type)
	return o, m.Bytes
}

func dkIters(n int32) *int32 { return &n }

func TestDerivePBKDF2KnownAnswers(t *testing.T) {
	e := newEnv(t)
	sha1 := &engine.CryptographicParameters{HashingAlgorithm: engine.HashSHA1}
	cases := []struct {
		name, pw, salt string
		iter           int32
		params         *engine.CryptographicParameters
		want           string
	}{
		// RFC 6070 (PBKDF2-HMAC-SHA1); SHA-1 is also the default PRF.
		{"rfc6070 c=1", "password", "salt", 1, nil, "0c60c80f961f0e71f3a9b524af6012062fe037a6"},
		{"rfc6070 c=2", "password", "salt", 2, sha1, "ea6c014dc72d6f8ccd1ed92ace1d41f0d8de8957"},
		{"rfc6070 c=4096", "password", "salt", 4096, sha1, "4b007901b765489abead49d926f721d065a429c1"},
		{"rfc6070 long", "passwordPASSWORDpassword", "saltSALTsaltSALTsaltSALTsaltSALTsalt", 4096, sha1, "3d2eec4fe41c849b80c8d83662c0e44a8b291a964cf2f07038"},
		{"rfc6070 NUL", "pass\x00word", "sa\x00lt", 4096, sha1, "56fa6aa75548099dcc37d7f03425e0c3"},
		// RFC 7914 section 11 (PBKDF2-HMAC-SHA256).
		{"rfc7914 sha256", "passwd", "salt", 1, &engine.CryptographicParameters{HashingAlgorithm: engine.HashSHA256},
			"55ac046e56e3089fec1691c22544b605f94185216dde0465e68b9d57c20dacbc49ca9cccf179b645991664b39d77ef317c71b845b1e30bd509112041d3a19783"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			pw := e.dkPassword(t, acmeApp, tc.pw)
			want := hexv(t, tc.want)
			_, got := e.dkDerive(t, acmeApp, engine.DeriveRequest{Type: engine.TypeSecretData, BaseIDs: []string{pw.ID},
				Method: engine.DerivePBKDF2, Params: tc.params, Salt: []byte(tc.salt), IterationCount: dkIters(tc.iter),
				Attrs: dkSecret(int32(8 * len(want)))})
			assert.Equal(t, want, got)
		})
	}
	// A symmetric key of 128 bits from a password.
	pw := e.dkPassword(t, acmeApp, "password")
	o, got := e.dkDerive(t, acmeApp, engine.DeriveRequest{Type: engine.TypeSymmetricKey, BaseIDs: []string{pw.ID},
		Method: engine.DerivePBKDF2, Salt: []byte("salt"), IterationCount: dkIters(1), Attrs: aesAttrs(128)})
	assert.Equal(t, hexv(t, "0c60c80f961f0e71f3a9b524af601206"), got)
	assert.Equal(t, engine.AlgAES, e.dkAttr(t, o.ID, engine.AttrCryptographicAlgorithm))
	assert.Equal(t, engine.UsageEncrypt|engine.UsageDecrypt, e.dkAttr(t, o.ID, engine.AttrCryptographicUsageMask))
}

func (e *env) dkAttr(t testing.TB, id, name string) any {
	t.Helper()
	v, ok := e.value(t, acmeAdmin, id, name)
	require.True(t, ok, "no %s", name)
	return v
}

func (e *env) dkLinks(t testing.TB, id string) []engine.Link {
	t.Helper()
	var out []engine.Link
	for _, a := range e.attrs(t, acmeAdmin, id, engine.AttrLink) {
		out = append(out, a.Value.(engine.Link))
	}
	return out
}

func TestDeriveHashAndLinks(t *testing.T) {
	// OASIS TC-DERIVEKEY-1-10: the first 128 bits of SHA-256 of the key.
	e := newEnv(t)
	base := e.regMACKey(t, acmeApp, engine.TypeSymmetricKey, engine.AlgAES, hexv(t, "00112233445566778899aabbccddeeff"), engine.UsageEncrypt|engine.UsageDeriveKey)
	o, got := e.dkDerive(t, acmeApp, engine.DeriveRequest{Type: engine.TypeSymmetricKey, BaseIDs: []string{base.ID},
		Method: engine.DeriveHash, Params: &engine.CryptographicParameters{HashingAlgorithm: engine.HashSHA256},
		Attrs: aesAttrs(128, attr(engine.AttrCryptographicUsageMask, engine.UsageEncrypt))})
	assert.Equal(t, hexv(t, "a8faed6abbf35c12a4b26e40f6feb19d"), got)
	assert.Equal(t, engine.StatePreActive, e.state(t, acmeApp, o.ID))
	assert.Equal(t, []engine.Link{{LinkType: engine.LinkDerivationBaseObject, LinkedObjectIdentifier: base.ID}}, e.dkLinks(t, o.ID))
	assert.Equal(t, []engine.Link{{LinkType: engine.LinkDerivedKey, LinkedObjectIdentifier: o.ID}}, e.dkLinks(t, base.ID))
	// A second derivation adds a second Derived Key link.
	o2, _ := e.dkDerive(t, acmeApp, engine.DeriveRequest{Type: engine.TypeSymmetricKey, BaseIDs: []string{base.ID},
		Method: engine.DeriveHash, Params: &engine.CryptographicParameters{HashingAlgorithm: engine.HashSHA512}, Attrs: aesAttrs(256)})
	assert.Len(t, e.dkLinks(t, base.ID), 2)
	assert.Contains(t, e.dkLinks(t, base.ID), engine.Link{LinkType: engine.LinkDerivedKey, LinkedObjectIdentifier: o2.ID})
	// SHA-256 yields 256 bits at most.
	_, err := e.eng.DeriveKey(t.Context(), acmeApp, engine.DeriveRequest{Type: engine.TypeSecretData, BaseIDs: []string{base.ID},
		Method: engine.DeriveHash, Params: &engine.CryptographicParameters{HashingAlgorithm: engine.HashSHA256}, Attrs: dkSecret(264)})
	assert.ErrorIs(t, err, engine.ErrInvalidField)
}

func TestDeriveHMAC(t *testing.T) {
	e := newEnv(t)
	key := bytes.Repeat([]byte{0x0b}, 20)
	base := e.regMACKey(t, acmeApp, engine.TypeSymmetricKey, engine.AlgHMACSHA256, key, engine.UsageDeriveKey)
	// The key's own algorithm gives the hash: RFC 4231 test case 1.
	_, got := e.dkDerive(t, acmeApp, engine.DeriveRequest{Type: engine.TypeSymmetricKey, BaseIDs: []string{base.ID},
		Method: engine.DeriveHMAC, Data: []byte("Hi There"), Attrs: aesAttrs(256)})
	assert.Equal(t, hexv(t, "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"), got)
	// The parameters' hash wins.
	_, got = e.dkDerive(t, acmeApp, engine.DeriveRequest{Type: engine.TypeSecretData, BaseIDs: []string{base.ID},
		Method: engine.DeriveHMAC, Params: &engine.CryptographicParameters{HashingAlgorithm: engine.HashSHA512}, Data: []byte("Hi There"), Attrs: dkSecret(512)})
	assert.Equal(t, hexv(t, "87aa7cdea5ef619d4ff0b4241a1d6cb02379f4e2ce4ec2787ad0b30545e17cdedaa833b7d6b8a702038b274eaea3f4e4be9d914eeb61f1702e696c203a126854"), got)

	// Two bases: the Secret Data supplies the Derivation Data.
	seed := e.regMACKey(t, acmeApp, engine.TypeSecretData, 0, []byte("Hi There"), engine.UsageDeriveKey)
	o, got := e.dkDerive(t, acmeApp, engine.DeriveRequest{Type: engine.TypeSymmetricKey, BaseIDs: []string{seed.ID, base.ID},
		Method: engine.DeriveHMAC, Attrs: aesAttrs(128)})
	assert.Equal(t, hexv(t, "b0344c61d8db38535ca8afceaf0bf12b"), got)
	assert.ElementsMatch(t, []engine.Link{
		{LinkType: engine.LinkDerivationBaseObject, LinkedObjectIdentifier: base.ID},
		{LinkType: engine.LinkDerivationBaseObject, LinkedObjectIdentifier: seed.ID},
	}, e.dkLinks(t, o.ID))
	assert.Contains(t, e.dkLinks(t, seed.ID), engine.Link{LinkType: engine.LinkDerivedKey, LinkedObjectIdentifier: o.ID})
	_, err := e.eng.DeriveKey(t.Context(), acmeApp, engine.DeriveRequest{Type: engine.TypeSymmetricKey, BaseIDs: []string{seed.ID, base.ID},
		Method: engine.DeriveHMAC, Data: []byte("x"), Attrs: aesAttrs(128)})
	assert.ErrorIs(t, err, engine.ErrInvalidField, "Derivation Data from both the request and a Secret Data")
}

func TestDeriveNIST800108Counter(t *testing.T) {
	// NIST CAVP KDFCTR_gen.txt, counter before the fixed input data.
	e := newEnv(t)
	cases := []struct {
		name          string
		alg           engine.Algorithm
		params        *engine.CryptographicParameters
		ki, fixed, ko string
	}{
		{"CMAC-AES128 r=8", engine.AlgAES, &engine.CryptographicParameters{CounterLength: 8},
			"dff1e50ac0b69dc40f1051d46c2b069c", "c16e6e02c5a3dcc8d78b9ac1306877761310455b4e41469951d9e6c2245a064b33fd8c3b01203a7824485bf0a64060c4648b707d2607935699316ea5", "8be8f0869b3c0ba97b71863d1b9f7813"},
		{"CMAC-AES128 r=16", engine.AlgAES, &engine.CryptographicParameters{CryptographicAlgorithm: engine.AlgAES, CounterLength: 16},
			"30ec5f6fa1def33cff008178c4454211", "c95e7b1d4f2570259abfc05bb00730f0284c3bb9a61d07259848a1cb57c81d8a6c3382c500bf801dfc8f70726b082cf4c3fa34386c1e7bf0e5471438", "00018fff9574994f5c4457f461c7a67e"},
		{"CMAC-AES128 r=24 L=320", engine.AlgAES, &engine.CryptographicParameters{CounterLength: 24},
			"26fa0e32e7e08f9b157ebae9f579710f", "ceab805efbe0c50a8aef62e59d95e7a54daa74ed86aa9b1ae8abf68b985b5af4b0ee150e83e6c063b59c7bf813ede9826af149237aed85b415898fa8", "f1d9138afcc3db6001eb54c4da567a5db3659fc0ed48e664a0408946bcee0742127c17cabf348c7a"},
		{"CMAC-AES128 r=32 (default)", engine.AlgAES, nil,
			"c10b152e8c97b77e18704e0f0bd38305", "98cd4cbbbebe15d17dc86e6dbad800a2dcbd64f7c7ad0e78e9cf94ffdba89d03e97eadf6c4f7b806caf52aa38f09d0eb71d71f497bcc6906b48d36c4", "26faf61908ad9ee881b8305c221db53f"},
		{"CMAC-AES256 r=8", engine.AlgAES, &engine.CryptographicParameters{CounterLength: 8},
			"aeb7201d055f754212b3e497bd0b25789a49e51da9f363df414a0f80e6f4e42c", "11ec30761780d4c44acb1f26ca1eb770f87c0e74505e15b7e456b019ce0c38103c4d14afa1de71d340db51410596627512cf199fffa20ef8c5f4841e", "2a9e2fe078bd4f5d3076d14d46f39fb2"},
		{"HMAC-SHA256 r=32 L=128", engine.AlgHMACSHA256, nil,
			"dd1d91b7d90b2bd3138533ce92b272fbf8a369316aefe242e659cc0ae238afe0", "01322b96b30acd197979444e468e1c5c6859bf1b1cf951b7e725303e237e46b864a145fab25e517b08f8683d0315bb2911d80a0e8aba17f3b413faac", "10621342bfb0fd40046c0e29f2cfdbf0"},
		{"HMAC-SHA256 r=32 L=256", engine.AlgAES, &engine.CryptographicParameters{HashingAlgorithm: engine.HashSHA256},
			"e204d6d466aad507ffaf6d6dab0a5b26152c9e21e764370464e360c8fbc765c6", "7b03b98d9f94b899e591f3ef264b71b193fba7043c7e953cde23bc5384bc1a6293580115fae3495fd845dadbd02bd6455cf48d0f62b33e62364a3a80", "770dfab6a6a4a4bee0257ff335213f78d8287b4fd537d5c1fffa956910e7c779"},
		{"HMAC-SHA256 r=32 L=320", engine.AlgHMACSHA256, &engine.CryptographicParameters{CryptographicAlgorithm: engine.AlgHMACSHA256},
			"c4bedbddb66493e7c7259a3bbbc25f8c7e0ca7fe284d92d431d9cd99a0d214ac", "1c69c54766791e315c2cc5c47ecd3ffab87d0d273dd920e70955814c220eacace6a5946542da3dfe24ff626b4897898cafb7db83bdff3c14fa46fd4b", "1da47638d6c9c4d04d74d4640bbd42ab814d9e8cc22f4326695239f96b0693f12d0dd1152cf44430"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			base := e.regMACKey(t, acmeApp, engine.TypeSymmetricKey, tc.alg, hexv(t, tc.ki), engine.UsageDeriveKey)
			want := hexv(t, tc.ko)
			_, got := e.dkDerive(t, acmeApp, engine.DeriveRequest{Type: engine.TypeSecretData, BaseIDs: []string{base.ID},
				Method: engine.DeriveNIST800108C, Params: tc.params, Data: hexv(t, tc.fixed), Attrs: dkSecret(int32(8 * len(want)))})
			assert.Equal(t, want, got)
		})
	}
	base := e.regMACKey(t, acmeApp, engine.TypeSymmetricKey, engine.AlgAES, hexv(t, "dff1e50ac0b69dc40f1051d46c2b069c"), engine.UsageDeriveKey)
	_, err := e.eng.DeriveKey(t.Context(), acmeApp, engine.DeriveRequest{Type: engine.TypeSecretData, BaseIDs: []string{base.ID},
		Method: engine.DeriveNIST800108C, Params: &engine.CryptographicParameters{CounterLength: 12}, Data: []byte("x"), Attrs: dkSecret(128)})
	assert.ErrorIs(t, err, engine.ErrInvalidField, "a 12-bit counter")
	_, err = e.eng.DeriveKey(t.Context(), acmeApp, engine.DeriveRequest{Type: engine.TypeSecretData, BaseIDs: []string{base.ID},
		Method: engine.DeriveNIST800108C, Params: &engine.CryptographicParameters{CounterLength: 8}, Data: []byte("x"), Attrs: dkSecret(8 * 16 * 256)})
	assert.ErrorIs(t, err, engine.ErrInvalidField, "more blocks than an 8-bit counter counts")
	_, err = e.eng.DeriveKey(t.Context(), acmeApp, engine.DeriveRequest{Type: engine.TypeSecretData, BaseIDs: []string{base.ID},
		Method: engine.DeriveNIST800108C, Attrs: dkSecret(128)})
	assert.ErrorIs(t, err, engine.ErrMissingData, "no fixed input data")
}

func TestDeriveEncrypt(t *testing.T) {
	e := newEnv(t)
	key := hexv(t, "000102030405060708090a0b0c0d0e0f")
	base := e.regMACKey(t, acmeApp, engine.TypeSymmetricKey, engine.AlgAES, key, engine.UsageDeriveKey)
	data := hexv(t, "00112233445566778899aabbccddeeff")
	iv := bytes.Repeat([]byte{9}, 16)
	block, err := aes.NewCipher(key)
	require.NoError(t, err)

	// FIPS 197 appendix C.1.
	_, got := e.dkDerive(t, acmeApp, engine.DeriveRequest{Type: engine.TypeSymmetricKey, BaseIDs: []string{base.ID},
		Method: engine.DeriveEncrypt, Params: params(engine.ModeECB, engine.PadNone), Data: data, Attrs: aesAttrs(128)})
	assert.Equal(t, hexv(t, "69c4e0d86a7b0430d8cdb78070b4c55a"), got)

	two := append(bytes.Clone(data), data...)
	want := make([]byte, 32)
	cipher.NewCBCEncrypter(block, iv).CryptBlocks(want, two)
	_, got = e.dkDerive(t, acmeApp, engine.DeriveRequest{Type: engine.TypeSymmetricKey, BaseIDs: []string{base.ID},
		Method: engine.DeriveEncrypt, Params: params(engine.ModeCBC, engine.PadNone), IV: iv, Data: two, Attrs: aesAttrs(256)})
	assert.Equal(t, want, got)

	cipher.NewCTR(block, iv).XORKeyStream(want, two)
	_, got = e.dkDerive(t, acmeApp, engine.DeriveRequest{Type: engine.TypeSecretData, BaseIDs: []string{base.ID},
		Method: engine.DeriveEncrypt, Params: params(engine.ModeCTR, 0), IV: iv, Data: two, Attrs: dkSecret(200)})
	assert.Equal(t, want[:25], got)

	refuse := func(req engine.DeriveRequest, sentinel error, why string) {
		t.Helper()
		req.Type, req.BaseIDs, req.Method = engine.TypeSymmetricKey, []string{base.ID}, engine.DeriveEncrypt
		if req.Attrs == nil {
			req.Attrs = aesAttrs(128)
		}
		_, err := e.eng.DeriveKey(t.Context(), acmeApp, req)
		assert.ErrorIs(t, err, sentinel, why)
	}
	refuse(engine.DeriveRequest{Params: params(engine.ModeCBC, engine.PadNone), Data: data}, engine.ErrMissingData, "CBC without IV")
	refuse(engine.DeriveRequest{Params: params(engine.ModeECB, engine.PadNone), IV: iv, Data: data}, engine.ErrInvalidField, "ECB with IV")
	refuse(engine.DeriveRequest{Data: data}, engine.ErrMissingData, "no mode")
	refuse(engine.DeriveRequest{Params: params(engine.ModeECB, engine.PadNone)}, engine.ErrMissingData, "no data")
	refuse(engine.DeriveRequest{Params: params(engine.ModeECB, engine.PadNone), Data: data, Attrs: aesAttrs(256)}, engine.ErrInvalidField, "more than the ciphertext")
	refuse(engine.DeriveRequest{Params: params(engine.ModeOFB, 0), IV: iv, Data: data}, engine.ErrNotSupported, "OFB")
	hk := e.regMACKey(t, acmeApp, engine.TypeSymmetricKey, engine.AlgHMACSHA256, bytes.Repeat([]byte{1}, 32), engine.UsageDeriveKey)
	_, err = e.eng.DeriveKey(t.Context(), acmeApp, engine.DeriveRequest{Type: engine.TypeSymmetricKey, BaseIDs: []string{hk.ID},
		Method: engine.DeriveEncrypt, Params: params(engine.ModeECB, engine.PadNone), Data: data, Attrs: aesAttrs(128)})
	assert.ErrorIs(t, err, engine.ErrInvalidField, "ENCRYPT with an HMAC key")
}

func TestDeriveRefusals(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	base := e.regMACKey(t, acmeApp, engine.TypeSymmetricKey, engine.AlgAES, bytes.Repeat([]byte{3}, 16), engine.UsageDeriveKey)
	sha := &engine.CryptographicParameters{HashingAlgorithm: engine.HashSHA256}
	ok := engine.DeriveRequest{Type: engine.TypeSymmetricKey, BaseIDs: []string{base.ID}, Method: engine.DeriveHash, Params: sha, Attrs: aesAttrs(128)}
	_, err := e.eng.DeriveKey(ctx, acmeApp, ok)
	require.NoError(t, err)
	with := func(f func(r *engine.DeriveRequest)) engine.DeriveRequest {
		r := ok
		r.BaseIDs = slices.Clone(ok.BaseIDs)
		f(&r)
		return r
	}
	noMask := e.regMACKey(t, acmeApp, engine.TypeSymmetricKey, engine.AlgAES, bytes.Repeat([]byte{3}, 16), engine.UsageEncrypt)
	preActive, err := e.eng.Register(ctx, acmeApp, engine.RegisterRequest{Type: engine.TypeSymmetricKey, Algorithm: engine.AlgAES,
		Attrs:    []engine.Attribute{attr(engine.AttrCryptographicUsageMask, engine.UsageDeriveKey)},
		Material: engine.Material{Format: engine.FormatRaw, Bytes: bytes.Repeat([]byte{3}, 16)}})
	require.NoError(t, err)
	opaque, err := e.eng.Register(ctx, acmeApp, engine.RegisterRequest{Type: engine.TypeOpaqueObject,
		Material: engine.Material{Format: engine.FormatRaw, Bytes: []byte("opaque")}})
	require.NoError(t, err)
	pw := e.dkPassword(t, acmeApp, "pw")
	base2 := e.regMACKey(t, acmeApp, engine.TypeSymmetricKey, engine.AlgAES, bytes.Repeat([]byte{4}, 16), engine.UsageDeriveKey)

	cases := []struct {
		name     string
		p        engine.Principal
		req      engine.DeriveRequest
		sentinel error
	}{
		{"auditor", acmeAuditor, ok, engine.ErrPermissionDenied},
		{"other tenant", globexAdmin, ok, engine.ErrNotFound},
		{"no base", acmeApp, with(func(r *engine.DeriveRequest) { r.BaseIDs = nil }), engine.ErrMissingData},
		{"three bases", acmeApp, with(func(r *engine.DeriveRequest) { r.BaseIDs = []string{base.ID, pw.ID, noMask.ID} }), engine.ErrInvalidField},
		{"same base twice", acmeApp, with(func(r *engine.DeriveRequest) { r.BaseIDs = []string{base.ID, base.ID} }), engine.ErrInvalidField},
		{"two keys", acmeApp, with(func(r *engine.DeriveRequest) {
			r.Method, r.BaseIDs, r.Params = engine.DeriveHMAC, []string{base.ID, base2.ID}, sha
		}), engine.ErrInvalidField},
		{"usage mask", acmeApp, with(func(r *engine.DeriveRequest) { r.BaseIDs = []string{noMask.ID} }), engine.ErrPermissionDenied},
		{"pre-active base", acmeApp, with(func(r *engine.DeriveRequest) { r.BaseIDs = []string{preActive.ID} }), engine.ErrWrongState},
		{"opaque base", acmeApp, with(func(r *engine.DeriveRequest) { r.BaseIDs = []string{opaque.ID} }), engine.ErrIllegalOperation},
		{"certificate out", acmeApp, with(func(r *engine.DeriveRequest) { r.Type = engine.TypeCertificate }), engine.ErrInvalidField},
		{"undefined type", acmeApp, with(func(r *engine.DeriveRequest) { r.Type = 0x77 }), engine.ErrInvalidField},
		{"no method", acmeApp, with(func(r *engine.DeriveRequest) { r.Method = 0 }), engine.ErrMissingData},
		{"undefined method", acmeApp, with(func(r *engine.DeriveRequest) { r.Method = 0x55 }), engine.ErrInvalidField},
		{"feedback mode", acmeApp, with(func(r *engine.DeriveRequest) { r.Method = engine.DeriveNIST800108F }), engine.ErrNotSupported},
		{"double pipeline", acmeApp, with(func(r *engine.DeriveRequest) { r.Method = engine.DeriveNIST800108DPI }), engine.ErrNotSupported},
		{"asymmetric", acmeApp, with(func(r *engine.DeriveRequest) { r.Method = engine.DeriveAsymmetricKey }), engine.ErrNotSupported},
		{"no length", acmeApp, with(func(r *engine.DeriveRequest) {
			r.Attrs = []engine.Attribute{attr(engine.AttrCryptographicAlgorithm, engine.AlgAES)}
		}), engine.ErrMissingData},
		{"no algorithm", acmeApp, with(func(r *engine.DeriveRequest) {
			r.Attrs = []engine.Attribute{attr(engine.AttrCryptographicLength, int32(128))}
		}), engine.ErrMissingData},
		{"bad AES length", acmeApp, with(func(r *engine.DeriveRequest) { r.Attrs = aesAttrs(100) }), engine.ErrInvalidField},
		{"secret data too long", acmeApp, with(func(r *engine.DeriveRequest) {
			r.Type, r.Attrs = engine.TypeSecretData, dkSecret(8*engine.MaxDerivedBytes+8)
		}), engine.ErrInvalidField},
		{"secret data odd bits", acmeApp, with(func(r *engine.DeriveRequest) { r.Type, r.Attrs = engine.TypeSecretData, dkSecret(12) }), engine.ErrInvalidField},
		{"HASH without hash", acmeApp, with(func(r *engine.DeriveRequest) { r.Params = nil }), engine.ErrMissingData},
		{"HASH with MD5", acmeApp, with(func(r *engine.DeriveRequest) { r.Params = &engine.CryptographicParameters{HashingAlgorithm: 0x03} }), engine.ErrNotSupported},
		{"HASH with data", acmeApp, with(func(r *engine.DeriveRequest) { r.Data = []byte("x") }), engine.ErrInvalidField},
		{"HASH with salt", acmeApp, with(func(r *engine.DeriveRequest) { r.Salt = []byte("x") }), engine.ErrInvalidField},
		{"HASH with IV", acmeApp, with(func(r *engine.DeriveRequest) { r.IV = []byte("x") }), engine.ErrInvalidField},
		{"HMAC without data", acmeApp, with(func(r *engine.DeriveRequest) { r.Method = engine.DeriveHMAC }), engine.ErrMissingData},
		{"HMAC without hash", acmeApp, with(func(r *engine.DeriveRequest) { r.Method, r.Params, r.Data = engine.DeriveHMAC, nil, []byte("x") }), engine.ErrMissingData},
		{"PBKDF2 without salt", acmeApp, with(func(r *engine.DeriveRequest) {
			r.Method, r.BaseIDs, r.IterationCount = engine.DerivePBKDF2, []string{pw.ID}, dkIters(1)
		}), engine.ErrMissingData},
		{"PBKDF2 without count", acmeApp, with(func(r *engine.DeriveRequest) {
			r.Method, r.BaseIDs, r.Salt = engine.DerivePBKDF2, []string{pw.ID}, []byte("salt")
		}), engine.ErrMissingData},
		{"PBKDF2 zero count", acmeApp, with(func(r *engine.DeriveRequest) {
			r.Method, r.BaseIDs, r.Salt, r.IterationCount = engine.DerivePBKDF2, []string{pw.ID}, []byte("salt"), dkIters(0)
		}), engine.ErrInvalidField},
		{"PBKDF2 too many iterations", acmeApp, with(func(r *engine.DeriveRequest) {
			r.Method, r.BaseIDs, r.Salt, r.IterationCount = engine.DerivePBKDF2, []string{pw.ID}, []byte("salt"), dkIters(engine.MaxPBKDF2Iterations+1)
		}), engine.ErrLimit},
		{"PBKDF2 with two bases", acmeApp, with(func(r *engine.DeriveRequest) {
			r.Method, r.BaseIDs, r.Salt, r.IterationCount = engine.DerivePBKDF2, []string{base.ID, pw.ID}, []byte("salt"), dkIters(1)
		}), engine.ErrInvalidField},
		{"missing base", acmeApp, with(func(r *engine.DeriveRequest) { r.BaseIDs = []string{"nope"} }), engine.ErrNotFound},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := len(e.locate(t, acmeAdmin))
			_, err := e.eng.DeriveKey(ctx, tc.p, tc.req)
			assert.ErrorIs(t, err, tc.sentinel)
			assert.Equal(t, before, len(e.locate(t, acmeAdmin)), "a refused derivation created an object")
		})
	}
	// The base's value never reaches the log.
	assertNoSecret(t, e.logs.String(), bytes.Repeat([]byte{3}, 16), "engine log")
}

func TestDeriveUsageLimits(t *testing.T) {
	e := newEnv(t)
	base := e.regMACKey(t, acmeApp, engine.TypeSymmetricKey, engine.AlgAES, bytes.Repeat([]byte{3}, 16), engine.UsageDeriveKey,
		attr(engine.AttrUsageLimits, engine.UsageLimits{UsageLimitsTotal: 1, UsageLimitsUnit: 2}))
	req := engine.DeriveRequest{Type: engine.TypeSymmetricKey, BaseIDs: []string{base.ID}, Method: engine.DeriveHMAC,
		Params: &engine.CryptographicParameters{HashingAlgorithm: engine.HashSHA256}, Data: []byte("x"), Attrs: aesAttrs(128)}
	_, got := e.dkDerive(t, acmeApp, req)
	mac := hmac.New(sha256.New, bytes.Repeat([]byte{3}, 16))
	mac.Write([]byte("x"))
	assert.Equal(t, mac.Sum(nil)[:16], got)
	_, err := e.eng.DeriveKey(t.Context(), acmeApp, req)
	assert.ErrorIs(t, err, engine.ErrPermissionDenied, "the second derivation exceeds the Usage Limits")
}
