package engine_test

import (
	"bytes"
	"encoding/hex"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/minikms/minikms/engine"
)

// hx decodes a hex test vector.
func hexv(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	require.NoError(t, err)
	return b
}

const macUses = engine.UsageMACGenerate | engine.UsageMACVerify

// macKey registers key material of alg, Active, usable for MACs.
func (e *env) macTestKey(t testing.TB, p engine.Principal, alg engine.Algorithm, key []byte, extra ...engine.Attribute) *engine.Object {
	t.Helper()
	return e.regMACKey(t, p, engine.TypeSymmetricKey, alg, key, macUses, extra...)
}

// regKey registers key material (a symmetric key, or secret data of type
// Seed) with a usage mask, Active at once.
func (e *env) regMACKey(t testing.TB, p engine.Principal, typ engine.ObjectType, alg engine.Algorithm, key []byte, mask engine.UsageMask, extra ...engine.Attribute) *engine.Object {
	t.Helper()
	attrs := append([]engine.Attribute{
		attr(engine.AttrActivationDate, e.clock.Now()),
		attr(engine.AttrCryptographicUsageMask, mask),
	}, extra...)
	m := engine.Material{Format: engine.FormatRaw, Bytes: bytes.Clone(key)}
	if typ == engine.TypeSecretData {
		m.DataType = uint32(engine.SecretSeed)
	}
	o, err := e.eng.Register(t.Context(), p, engine.RegisterRequest{Type: typ, Attrs: attrs, Algorithm: alg, Material: m})
	require.NoError(t, err)
	require.Equal(t, engine.StateActive, o.State)
	return o
}

func (e *env) macOf(t testing.TB, p engine.Principal, id string, params *engine.CryptographicParameters, data []byte) []byte {
	t.Helper()
	res, err := e.eng.MAC(t.Context(), p, engine.MACRequest{ID: id, Params: params, Data: data})
	require.NoError(t, err)
	require.Equal(t, id, res.Object.ID)
	return res.MAC
}

func (e *env) macCheck(t testing.TB, p engine.Principal, id string, data, mac []byte) bool {
	t.Helper()
	o, valid, err := e.eng.MACVerify(t.Context(), p, engine.MACRequest{ID: id, Data: data, MAC: mac})
	require.NoError(t, err)
	require.Equal(t, id, o.ID)
	return valid
}

func TestHMACKnownAnswers(t *testing.T) {
	// RFC 4231 test cases 1 and 6; RFC 2202 test case 1 for SHA-1.
	e := newEnv(t)
	key1 := bytes.Repeat([]byte{0x0b}, 20)
	hiThere := []byte("Hi There")
	key6 := bytes.Repeat([]byte{0xaa}, 131)
	bigKey := []byte("Test Using Larger Than Block-Size Key - Hash Key First")
	cases := []struct {
		name      string
		alg       engine.Algorithm
		key, data []byte
		want      string
	}{
		{"SHA-1", engine.AlgHMACSHA1, key1, hiThere, "b617318655057264e28bc0b6fb378c8ef146be00"},
		{"SHA-224", engine.AlgHMACSHA224, key1, hiThere, "896fb1128abbdf196832107cd49df33f47b4b1169912ba4f53684b22"},
		{"SHA-256", engine.AlgHMACSHA256, key1, hiThere, "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"},
		{"SHA-384", engine.AlgHMACSHA384, key1, hiThere, "afd03944d84895626b0825f4ab46907f15f9dadbe4101ec682aa034c7cebc59cfaea9ea9076ede7f4af152e8b2fa9cb6"},
		{"SHA-512", engine.AlgHMACSHA512, key1, hiThere, "87aa7cdea5ef619d4ff0b4241a1d6cb02379f4e2ce4ec2787ad0b30545e17cdedaa833b7d6b8a702038b274eaea3f4e4be9d914eeb61f1702e696c203a126854"},
		{"SHA-256 long key", engine.AlgHMACSHA256, key6, bigKey, "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"},
		{"SHA3-256", engine.AlgHMACSHA3256, key1, hiThere, "ba85192310dffa96e2a3a40e69774351140bb7185e1202cdcc917589f95e16bb"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			k := e.macTestKey(t, acmeApp, tc.alg, tc.key)
			want := hexv(t, tc.want)
			assert.Equal(t, want, e.macOf(t, acmeApp, k.ID, nil, tc.data))
			assert.True(t, e.macCheck(t, acmeApp, k.ID, tc.data, want))
			bad := bytes.Clone(want)
			bad[len(bad)-1] ^= 1
			assert.False(t, e.macCheck(t, acmeApp, k.ID, tc.data, bad), "a flipped bit verifies")
			assert.False(t, e.macCheck(t, acmeApp, k.ID, tc.data, want[:len(want)-1]), "a truncated MAC verifies")
			assert.False(t, e.macCheck(t, acmeApp, k.ID, append(bytes.Clone(tc.data), 0), want), "other data verifies")
		})
	}
}

func TestCMACKnownAnswers(t *testing.T) {
	e := newEnv(t)
	// RFC 4493 section 4.
	aes := e.macTestKey(t, acmeApp, engine.AlgAES, hexv(t, "2b7e151628aed2a6abf7158809cf4f3c"))
	msg := hexv(t, "6bc1bee22e409f96e93d7e117393172aae2d8a571e03ac9c9eb76fac45af8e5130c81c46a35ce411e5fbc1191a0a52eff69f2445df4f9b17ad2b417be66c3710")
	for n, want := range map[int]string{
		0: "bb1d6929e95937287fa37d129b756746", 16: "070a16b46b4d4144f79bdd9dd04a287c",
		40: "dfa66747de9ae63030ca32611497c827", 64: "51f0bebf7e3b9d92fc49741779363cfe",
	} {
		assert.Equal(t, hexv(t, want), e.macOf(t, acmeApp, aes.ID, nil, msg[:n]), "AES-CMAC of %d bytes", n)
		assert.True(t, e.macCheck(t, acmeApp, aes.ID, msg[:n], hexv(t, want)))
	}
	// NIST SP 800-38B appendix D.4, three-key TDEA.
	tdea := e.macTestKey(t, acmeApp, engine.Alg3DES, hexv(t, "8aa83bf8cbda10620bc1bf19fbb6cd58bc313d4a371ca8b5"))
	assert.Equal(t, hexv(t, "b7a688e122ffaf95"), e.macOf(t, acmeApp, tdea.ID, nil, nil))
	assert.Equal(t, hexv(t, "8e8f293136283797"), e.macOf(t, acmeApp, tdea.ID, nil, msg[:8]))
}

func TestMACAlgorithmFromParameters(t *testing.T) {
	// OASIS CS-AC-M-4: an AES-typed key whose Cryptographic Parameters
	// name HMAC-SHA-256 computes HMAC-SHA-256 with its bytes.
	e := newEnv(t)
	hmacParams := engine.CryptographicParameters{CryptographicAlgorithm: engine.AlgHMACSHA256}
	k := e.macTestKey(t, acmeApp, engine.AlgAES, hexv(t, "0123456789abcdef0123456789abcdef"), attr(engine.AttrCryptographicParameters, hmacParams))
	data := hexv(t, "01020304050607080910111213141516")
	want := hexv(t, "c911e78196d64c30f631bb079ea37b97a95936d4da764d6a171df030c895ecf9")
	assert.Equal(t, want, e.macOf(t, acmeApp, k.ID, nil, data))
	assert.True(t, e.macCheck(t, acmeApp, k.ID, data, want))
	// Request parameters take precedence over the attribute: AES-CMAC.
	cmacOut := e.macOf(t, acmeApp, k.ID, &engine.CryptographicParameters{CryptographicAlgorithm: engine.AlgAES}, data)
	assert.Len(t, cmacOut, 16)
	assert.NotEqual(t, want[:16], cmacOut)
}

func TestMACRefusals(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	key := bytes.Repeat([]byte{7}, 32)
	k := e.macTestKey(t, acmeApp, engine.AlgHMACSHA256, key)
	data := []byte("data")
	good := e.macOf(t, acmeApp, k.ID, nil, data)
	mac := func(p engine.Principal, id string, params *engine.CryptographicParameters, d []byte) error {
		_, err := e.eng.MAC(ctx, p, engine.MACRequest{ID: id, Params: params, Data: d})
		return err
	}
	verify := func(p engine.Principal, id string) error {
		_, _, err := e.eng.MACVerify(ctx, p, engine.MACRequest{ID: id, Data: data, MAC: good})
		return err
	}

	t.Run("usage mask", func(t *testing.T) {
		genOnly := e.regMACKey(t, acmeApp, engine.TypeSymmetricKey, engine.AlgHMACSHA256, key, engine.UsageMACGenerate)
		require.NoError(t, mac(acmeApp, genOnly.ID, nil, data))
		assert.ErrorIs(t, verify(acmeApp, genOnly.ID), engine.ErrPermissionDenied)
		encOnly := e.registerKey(t, acmeApp, engine.AlgHMACSHA256, key)
		assert.ErrorIs(t, mac(acmeApp, encOnly.ID, nil, data), engine.ErrPermissionDenied)
		assert.ErrorIs(t, verify(acmeApp, encOnly.ID), engine.ErrPermissionDenied)
	})
	t.Run("pre-active", func(t *testing.T) {
		o, err := e.eng.Register(ctx, acmeApp, engine.RegisterRequest{Type: engine.TypeSymmetricKey, Algorithm: engine.AlgHMACSHA256,
			Attrs:    []engine.Attribute{attr(engine.AttrCryptographicUsageMask, macUses)},
			Material: engine.Material{Format: engine.FormatRaw, Bytes: bytes.Clone(key)}})
		require.NoError(t, err)
		assert.ErrorIs(t, mac(acmeApp, o.ID, nil, data), engine.ErrWrongState)
		assert.ErrorIs(t, verify(acmeApp, o.ID), engine.ErrWrongState)
	})
	t.Run("compromised verifies, does not generate", func(t *testing.T) {
		o := e.macTestKey(t, acmeApp, engine.AlgHMACSHA256, key)
		_, err := e.eng.Revoke(ctx, acmeAdmin, o.ID, engine.RevokeRequest{Reason: engine.RevocationReason{RevocationReasonCode: engine.RevokeKeyCompromise}})
		require.NoError(t, err)
		assert.ErrorIs(t, mac(acmeApp, o.ID, nil, data), engine.ErrWrongState)
		require.NoError(t, verify(acmeApp, o.ID))
	})
	t.Run("deactivated verifies, does not generate", func(t *testing.T) {
		o := e.macTestKey(t, acmeApp, engine.AlgHMACSHA256, key, attr(engine.AttrDeactivationDate, e.clock.Now().Add(time.Hour)))
		e.clock.Advance(2 * time.Hour)
		assert.ErrorIs(t, mac(acmeApp, o.ID, nil, data), engine.ErrWrongState)
		require.NoError(t, verify(acmeApp, o.ID))
	})
	t.Run("dates", func(t *testing.T) {
		now := e.clock.Now()
		o := e.macTestKey(t, acmeApp, engine.AlgHMACSHA256, key,
			attr(engine.AttrProtectStopDate, now), attr(engine.AttrProcessStartDate, now.Add(time.Hour)))
		assert.ErrorIs(t, mac(acmeApp, o.ID, nil, data), engine.ErrWrongState)
		assert.ErrorIs(t, verify(acmeApp, o.ID), engine.ErrWrongState)
	})
	t.Run("not a symmetric key", func(t *testing.T) {
		sd := e.regMACKey(t, acmeApp, engine.TypeSecretData, 0, key, macUses)
		assert.ErrorIs(t, mac(acmeApp, sd.ID, nil, data), engine.ErrIllegalOperation)
	})
	t.Run("algorithms", func(t *testing.T) {
		assert.ErrorIs(t, mac(acmeApp, k.ID, &engine.CryptographicParameters{CryptographicAlgorithm: engine.AlgRSA}, data), engine.ErrNotSupported)
		assert.ErrorIs(t, mac(acmeApp, k.ID, &engine.CryptographicParameters{CryptographicAlgorithm: 0x0C /* HMAC-MD5 */}, data), engine.ErrNotSupported)
		assert.ErrorIs(t, mac(acmeApp, k.ID, &engine.CryptographicParameters{CryptographicAlgorithm: engine.AlgHMACSHA512}, data), engine.ErrInvalidField)
		assert.ErrorIs(t, mac(acmeApp, k.ID, &engine.CryptographicParameters{CryptographicAlgorithm: engine.AlgAES}, data), engine.ErrInvalidField)
		sk := e.macTestKey(t, acmeApp, engine.AlgSKIPJACK, bytes.Repeat([]byte{1}, 10))
		assert.ErrorIs(t, mac(acmeApp, sk.ID, nil, data), engine.ErrNotSupported)
	})
	t.Run("tenants and roles", func(t *testing.T) {
		assert.ErrorIs(t, mac(globexAdmin, k.ID, nil, data), engine.ErrNotFound)
		assert.ErrorIs(t, verify(globexAdmin, k.ID), engine.ErrNotFound)
		assert.ErrorIs(t, mac(acmeAuditor, k.ID, nil, data), engine.ErrPermissionDenied)
		assert.ErrorIs(t, verify(acmeAuditor, k.ID), engine.ErrPermissionDenied)
		assert.ErrorIs(t, mac(acmeApp, "no-such-key", nil, data), engine.ErrNotFound)
	})
	t.Run("sizes and fields", func(t *testing.T) {
		assert.ErrorIs(t, mac(acmeApp, k.ID, nil, make([]byte, engine.MaxDataSize+1)), engine.ErrLimit)
		_, _, err := e.eng.MACVerify(ctx, acmeApp, engine.MACRequest{ID: k.ID, Data: data})
		assert.ErrorIs(t, err, engine.ErrMissingData)
	})
	assertNoSecret(t, e.logs.String(), key, "engine log")
}

func TestMACUsageLimits(t *testing.T) {
	e := newEnv(t)
	k := e.macTestKey(t, acmeApp, engine.AlgHMACSHA256, bytes.Repeat([]byte{7}, 32),
		attr(engine.AttrUsageLimits, engine.UsageLimits{UsageLimitsTotal: 2, UsageLimitsUnit: 2}))
	m := e.macOf(t, acmeApp, k.ID, nil, []byte("a"))
	e.macOf(t, acmeApp, k.ID, nil, []byte("b"))
	_, err := e.eng.MAC(t.Context(), acmeApp, engine.MACRequest{ID: k.ID, Data: []byte("c")})
	assert.ErrorIs(t, err, engine.ErrPermissionDenied, "a third MAC exceeds the limit")
	// Verification processes protected data: never charged.
	for range 3 {
		assert.True(t, e.macCheck(t, acmeApp, k.ID, []byte("a"), m))
	}
}
