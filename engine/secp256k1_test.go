package engine_test

import (
	"crypto/ecdsa"
	"crypto/sha256"
	"encoding/hex"
	"testing"

	"github.com/minikms/minikms/engine"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A secp256k1 key made by OpenSSL 3 (openssl ecparam -name secp256k1
// -genkey; pkcs8 -topk8 -nocrypt; ec -pubout), DER: an encoding made
// independently of this code.
const (
	k1PKCS8 = "308184020100301006072a8648ce3d020106052b8104000a046d306b020101042032a2dfaf69b38d189529992c396edb90c95a2e39744443f701a9301fe259ba3aa14403420004cc6c45af5b92cb4b136302b73a0b6d38ffc8fac53993c6205b6b2332c6052ea2fa6dd5b0e68206ede8e2b98fdacbb38313f1cff310ec6970105881ae6b2e6092"
	k1SEC1  = "3074020101042032a2dfaf69b38d189529992c396edb90c95a2e39744443f701a9301fe259ba3aa00706052b8104000aa14403420004cc6c45af5b92cb4b136302b73a0b6d38ffc8fac53993c6205b6b2332c6052ea2fa6dd5b0e68206ede8e2b98fdacbb38313f1cff310ec6970105881ae6b2e6092"
	k1SPKI  = "3056301006072a8648ce3d020106052b8104000a03420004cc6c45af5b92cb4b136302b73a0b6d38ffc8fac53993c6205b6b2332c6052ea2fa6dd5b0e68206ede8e2b98fdacbb38313f1cff310ec6970105881ae6b2e6092"
)

func TestSecp256k1Encodings(t *testing.T) {
	pk8, err := engine.ParsePKCS8PrivateKey(unhex(t, k1PKCS8))
	require.NoError(t, err)
	priv := pk8.(*ecdsa.PrivateKey)
	assert.Equal(t, engine.CurveSECP256K1, engine.CurveValue(priv.Curve))
	assert.True(t, engine.ValidECPrivateKey(priv))

	sec1, err := engine.ParseECPrivateKey(unhex(t, k1SEC1))
	require.NoError(t, err)
	assert.True(t, priv.Equal(sec1), "PKCS#8 and SEC 1 forms hold the same key")
	pub, err := engine.ParsePKIXPublicKey(unhex(t, k1SPKI))
	require.NoError(t, err)
	assert.True(t, priv.PublicKey.Equal(pub))

	// Encoding gives back OpenSSL's bytes exactly.
	b, err := engine.MarshalPKCS8PrivateKey(priv)
	require.NoError(t, err)
	assert.Equal(t, k1PKCS8, hex.EncodeToString(b))
	b, err = engine.MarshalECPrivateKey(priv)
	require.NoError(t, err)
	assert.Equal(t, k1SEC1, hex.EncodeToString(b))
	b, err = engine.MarshalPKIXPublicKey(pub)
	require.NoError(t, err)
	assert.Equal(t, k1SPKI, hex.EncodeToString(b))
	q, err := engine.ECPoint(pub.(*ecdsa.PublicKey))
	require.NoError(t, err)
	assert.Equal(t, k1SPKI[len(k1SPKI)-130:], hex.EncodeToString(q))

	// Signatures interoperate with crypto/ecdsa over the same curve.
	d := sha256.Sum256([]byte("message"))
	sig, err := ecdsa.SignASN1(nil, priv, d[:])
	require.NoError(t, err)
	assert.True(t, ecdsa.VerifyASN1(pub.(*ecdsa.PublicKey), d[:], sig))
}

func TestSecp256k1Refusals(t *testing.T) {
	sec1 := unhex(t, k1SEC1)
	cases := map[string][]byte{
		"scalar zero": mutate(sec1, func(b []byte) { clear(b[7:39]) }),
		"scalar = order n": mutate(sec1, func(b []byte) {
			copy(b[7:39], unhex(t, "fffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141"))
		}),
		"public key mismatch": mutate(sec1, func(b []byte) { b[len(b)-1] ^= 1 }),
		"other curve OID":     mutate(sec1, func(b []byte) { b[47] = 0x0b }),
		"trailing bytes":      append(append([]byte(nil), sec1...), 0),
		"truncated":           sec1[:40],
	}
	for name, der := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := engine.ParseECPrivateKey(der)
			assert.Error(t, err)
		})
	}
	spki := unhex(t, k1SPKI)
	_, err := engine.ParsePKIXPublicKey(mutate(spki, func(b []byte) { b[len(b)-1] ^= 1 }))
	assert.Error(t, err, "a point off the curve")
	_, err = engine.Secp256k1PrivateKey(nil)
	assert.Error(t, err)
}

func mutate(b []byte, f func([]byte)) []byte {
	c := append([]byte(nil), b...)
	f(c)
	return c
}

func TestSignSecp256k1(t *testing.T) {
	e := newEnv(t)
	base := []engine.Attribute{attr(engine.AttrActivationDate, e.clock.Now())}
	priv, err := e.eng.Register(t.Context(), acmeApp, engine.RegisterRequest{Type: engine.TypePrivateKey,
		Attrs: append(base, attr(engine.AttrCryptographicUsageMask, engine.UsageSign)), Material: engine.Material{Format: engine.FormatPKCS8, Bytes: unhex(t, k1PKCS8)}})
	require.NoError(t, err)
	pub, err := e.eng.Register(t.Context(), acmeApp, engine.RegisterRequest{Type: engine.TypePublicKey,
		Attrs: append(base, attr(engine.AttrCryptographicUsageMask, engine.UsageVerify)), Material: engine.Material{Format: engine.FormatSPKI, Bytes: unhex(t, k1SPKI)}})
	require.NoError(t, err)
	assert.Equal(t, int32(256), pub.Attrs.Length())

	msg := []byte("secp256k1")
	params := &engine.CryptographicParameters{HashingAlgorithm: engine.HashSHA256, CryptographicAlgorithm: engine.AlgECDSA}
	sig := e.sign(t, acmeApp, priv.ID, params, msg)
	assert.True(t, e.verify(t, acmeApp, pub.ID, params, msg, sig))
	assert.False(t, e.verify(t, acmeApp, pub.ID, params, []byte("other"), sig))
	k, err := engine.ParsePKIXPublicKey(unhex(t, k1SPKI))
	require.NoError(t, err)
	d := sha256.Sum256(msg)
	assert.True(t, ecdsa.VerifyASN1(k.(*ecdsa.PublicKey), d[:], sig), "verifies outside the server")
}

func TestCreateKeyPairSecp256k1(t *testing.T) {
	e := newEnv(t)
	kp := e.activePair(t, acmeApp, ecPair(engine.AlgECDSA, engine.CurveSECP256K1))
	assert.Equal(t, int32(256), kp.Private.Attrs.Length())
	_, pubAny := e.pairKeys(t, acmeApp, kp)
	pub := pubAny.(*ecdsa.PublicKey)
	assert.Equal(t, engine.CurveSECP256K1, engine.CurveValue(pub.Curve))
	msg := []byte("on the curve of Bitcoin")
	params := &engine.CryptographicParameters{HashingAlgorithm: engine.HashSHA256}
	sig := e.sign(t, acmeApp, kp.Private.ID, params, msg)
	d := sha256.Sum256(msg)
	assert.True(t, ecdsa.VerifyASN1(pub, d[:], sig), "verifies outside the server")
	assert.True(t, e.verify(t, acmeApp, kp.Public.ID, params, msg, sig))
}
