package engine_test

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/minikms/minikms/engine"
)

func sigParams(pad engine.PaddingMethod, h engine.HashAlgorithm) *engine.CryptographicParameters {
	return &engine.CryptographicParameters{PaddingMethod: pad, HashingAlgorithm: h}
}

func salt(n int32) *int32 { return &n }

// sign signs data and fails the test on error.
func (e *env) sign(t testing.TB, p engine.Principal, id string, params *engine.CryptographicParameters, data []byte) []byte {
	t.Helper()
	o, sig, err := e.eng.Sign(t.Context(), p, engine.SignRequest{ID: id, Params: params, Data: data})
	require.NoError(t, err)
	require.Equal(t, id, o.ID)
	return sig
}

// verify checks a signature and fails the test on error.
func (e *env) verify(t testing.TB, p engine.Principal, id string, params *engine.CryptographicParameters, data, sig []byte) bool {
	t.Helper()
	o, valid, err := e.eng.SignatureVerify(t.Context(), p, engine.VerifyRequest{ID: id, Params: params, Data: data, Signature: sig})
	require.NoError(t, err)
	require.Equal(t, id, o.ID)
	return valid
}

func TestSignVerifyRoundTrips(t *testing.T) {
	e := newEnv(t)
	rsaKP := e.activePair(t, acmeApp, rsaPair(2048, "sig-rsa"))
	_, rsaPubAny := e.pairKeys(t, acmeApp, rsaKP)
	rsaPub := rsaPubAny.(*rsa.PublicKey)
	msg := []byte("the message to sign")
	cases := []struct {
		name   string
		params *engine.CryptographicParameters
		check  func(t *testing.T, sig []byte) // independent verification with the standard library
	}{
		{"default is PKCS#1 v1.5 SHA-256", nil, func(t *testing.T, sig []byte) {
			d := sha256.Sum256(msg)
			require.NoError(t, rsa.VerifyPKCS1v15(rsaPub, crypto.SHA256, d[:], sig))
		}},
		{"PKCS#1 v1.5 SHA-384", sigParams(engine.PadPKCS1, engine.HashSHA384), func(t *testing.T, sig []byte) {
			h := crypto.SHA384.New()
			h.Write(msg)
			require.NoError(t, rsa.VerifyPKCS1v15(rsaPub, crypto.SHA384, h.Sum(nil), sig))
		}},
		{"PKCS#1 v1.5 SHA-224", sigParams(engine.PadPKCS1, engine.HashSHA224), nil},
		{"PKCS#1 v1.5 SHA-512", sigParams(engine.PadPKCS1, engine.HashSHA512), nil},
		{"PSS SHA-256 salt = hash", sigParams(engine.PadPSS, engine.HashSHA256), func(t *testing.T, sig []byte) {
			d := sha256.Sum256(msg)
			require.NoError(t, rsa.VerifyPSS(rsaPub, crypto.SHA256, d[:], sig, &rsa.PSSOptions{SaltLength: 32}))
		}},
		{"PSS SHA-256 salt 222 (the maximum)", &engine.CryptographicParameters{PaddingMethod: engine.PadPSS, HashingAlgorithm: engine.HashSHA256, SaltLength: salt(222)}, func(t *testing.T, sig []byte) {
			d := sha256.Sum256(msg)
			require.NoError(t, rsa.VerifyPSS(rsaPub, crypto.SHA256, d[:], sig, &rsa.PSSOptions{SaltLength: 222}))
		}},
		{"PSS by Digital Signature Algorithm", &engine.CryptographicParameters{DigitalSignatureAlgorithm: 0x08, HashingAlgorithm: engine.HashSHA512}, nil},
		{"SHA384WithRSAEncryption", &engine.CryptographicParameters{DigitalSignatureAlgorithm: 0x06, CryptographicAlgorithm: engine.AlgRSA}, func(t *testing.T, sig []byte) {
			h := crypto.SHA384.New()
			h.Write(msg)
			require.NoError(t, rsa.VerifyPKCS1v15(rsaPub, crypto.SHA384, h.Sum(nil), sig))
		}},
		{"PSS with explicit MGF1 of the same hash", &engine.CryptographicParameters{PaddingMethod: engine.PadPSS, HashingAlgorithm: engine.HashSHA384, MaskGenerator: 1, MaskGeneratorHashingAlgorithm: engine.HashSHA384}, nil},
	}
	for _, c := range cases {
		t.Run("RSA "+c.name, func(t *testing.T) {
			sig := e.sign(t, acmeApp, rsaKP.Private.ID, c.params, msg)
			assert.Len(t, sig, 256)
			assert.True(t, e.verify(t, acmeApp, rsaKP.Public.ID, c.params, msg, sig))
			assert.False(t, e.verify(t, acmeApp, rsaKP.Public.ID, c.params, []byte("another message"), sig), "another message")
			bad := append([]byte(nil), sig...)
			bad[10] ^= 1
			assert.False(t, e.verify(t, acmeApp, rsaKP.Public.ID, c.params, msg, bad), "altered signature")
			assert.False(t, e.verify(t, acmeApp, rsaKP.Public.ID, c.params, msg, sig[:100]), "truncated signature")
			if c.check != nil {
				c.check(t, sig)
			}
		})
	}
	t.Run("a PSS signature is not a PKCS#1 v1.5 one", func(t *testing.T) {
		sig := e.sign(t, acmeApp, rsaKP.Private.ID, sigParams(engine.PadPSS, engine.HashSHA256), msg)
		assert.False(t, e.verify(t, acmeApp, rsaKP.Public.ID, sigParams(engine.PadPKCS1, engine.HashSHA256), msg, sig))
		assert.False(t, e.verify(t, acmeApp, rsaKP.Public.ID, sigParams(engine.PadPSS, engine.HashSHA1), msg, sig), "verified under SHA-1: Invalid, not an error")
	})

	for _, c := range []struct {
		curve uint32
		std   elliptic.Curve
		hash  crypto.Hash
	}{{engine.CurveP256, elliptic.P256(), crypto.SHA256}, {engine.CurveP384, elliptic.P384(), crypto.SHA384}, {engine.CurveP521, elliptic.P521(), crypto.SHA512}} {
		t.Run("ECDSA "+c.std.Params().Name, func(t *testing.T) {
			kp := e.activePair(t, acmeApp, ecPair(engine.AlgECDSA, c.curve))
			_, pubAny := e.pairKeys(t, acmeApp, kp)
			pub := pubAny.(*ecdsa.PublicKey)
			sig := e.sign(t, acmeApp, kp.Private.ID, nil, msg)
			h := c.hash.New()
			h.Write(msg)
			assert.True(t, ecdsa.VerifyASN1(pub, h.Sum(nil), sig), "DER signature with the curve's default hash")
			assert.True(t, e.verify(t, acmeApp, kp.Public.ID, nil, msg, sig))
			assert.False(t, e.verify(t, acmeApp, kp.Public.ID, nil, []byte("x"), sig))
			assert.False(t, e.verify(t, acmeApp, kp.Public.ID, nil, msg, []byte{0x30, 0x00}), "malformed DER is Invalid")
			// Padding Method does not apply to ECDSA (as CS-AC-M-3-ECC).
			p := &engine.CryptographicParameters{PaddingMethod: engine.PadPSS, HashingAlgorithm: engine.HashSHA256, CryptographicAlgorithm: engine.AlgECDSA}
			sig = e.sign(t, acmeApp, kp.Private.ID, p, msg)
			d := sha256.Sum256(msg)
			assert.True(t, ecdsa.VerifyASN1(pub, d[:], sig))
			assert.True(t, e.verify(t, acmeApp, kp.Public.ID, &engine.CryptographicParameters{DigitalSignatureAlgorithm: 0x0E}, msg, sig))
		})
	}
}

func TestSignDigestedData(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	kp := e.activePair(t, acmeApp, ecPair(engine.AlgECDSA, engine.CurveP256))
	msg := []byte("digest me")
	d := sha256.Sum256(msg)
	_, sig, err := e.eng.Sign(ctx, acmeApp, engine.SignRequest{ID: kp.Private.ID, DigestedData: d[:]})
	require.NoError(t, err)
	assert.True(t, e.verify(t, acmeApp, kp.Public.ID, nil, msg, sig), "a signature of the digest is one of the message")
	_, valid, err := e.eng.SignatureVerify(ctx, acmeApp, engine.VerifyRequest{ID: kp.Public.ID, DigestedData: d[:], Signature: sig})
	require.NoError(t, err)
	assert.True(t, valid)

	_, _, err = e.eng.Sign(ctx, acmeApp, engine.SignRequest{ID: kp.Private.ID, DigestedData: d[:20]})
	require.ErrorIs(t, err, engine.ErrInvalidField, "digest of the wrong length")
	_, _, err = e.eng.Sign(ctx, acmeApp, engine.SignRequest{ID: kp.Private.ID, Data: msg, DigestedData: d[:]})
	require.ErrorIs(t, err, engine.ErrInvalidMessage, "both")
	_, _, err = e.eng.Sign(ctx, acmeApp, engine.SignRequest{ID: kp.Private.ID})
	require.ErrorIs(t, err, engine.ErrMissingData, "neither")
	_, _, err = e.eng.SignatureVerify(ctx, acmeApp, engine.VerifyRequest{ID: kp.Public.ID, Data: msg})
	require.ErrorIs(t, err, engine.ErrMissingData, "no signature")
	_, _, err = e.eng.Sign(ctx, acmeApp, engine.SignRequest{ID: kp.Private.ID, Data: make([]byte, engine.MaxDataSize+1)})
	require.ErrorIs(t, err, engine.ErrLimit)
	sig = e.sign(t, acmeApp, kp.Private.ID, nil, []byte{})
	assert.True(t, e.verify(t, acmeApp, kp.Public.ID, nil, []byte{}, sig), "an empty message can be signed")
}

// registerRSAPair registers a PKCS#8/SPKI pair made here, Active, with
// the given usage masks and extra attributes on both.
func (e *env) registerRSAPair(t testing.TB, k *rsa.PrivateKey, extra ...engine.Attribute) (priv, pub *engine.Object) {
	t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(k)
	require.NoError(t, err)
	spki, err := x509.MarshalPKIXPublicKey(&k.PublicKey)
	require.NoError(t, err)
	base := append([]engine.Attribute{attr(engine.AttrActivationDate, e.clock.Now())}, extra...)
	priv, err = e.eng.Register(t.Context(), acmeApp, engine.RegisterRequest{Type: engine.TypePrivateKey,
		Attrs: append(base, attr(engine.AttrCryptographicUsageMask, engine.UsageSign|engine.UsageDecrypt)), Material: engine.Material{Format: engine.FormatPKCS8, Bytes: der}})
	require.NoError(t, err)
	pub, err = e.eng.Register(t.Context(), acmeApp, engine.RegisterRequest{Type: engine.TypePublicKey,
		Attrs: append(base, attr(engine.AttrCryptographicUsageMask, engine.UsageVerify|engine.UsageEncrypt)), Material: engine.Material{Format: engine.FormatSPKI, Bytes: spki}})
	require.NoError(t, err)
	return priv, pub
}

func TestSignParametersOfTheKey(t *testing.T) {
	e := newEnv(t)
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	require.NoError(t, err)
	pss := engine.CryptographicParameters{PaddingMethod: engine.PadPSS, HashingAlgorithm: engine.HashSHA384, CryptographicAlgorithm: engine.AlgRSA, SaltLength: salt(20)}
	priv, pub := e.registerRSAPair(t, k, attr(engine.AttrCryptographicParameters, pss))
	msg := []byte("m")
	sig := e.sign(t, acmeApp, priv.ID, nil, msg)
	h := crypto.SHA384.New()
	h.Write(msg)
	require.NoError(t, rsa.VerifyPSS(&k.PublicKey, crypto.SHA384, h.Sum(nil), sig, &rsa.PSSOptions{SaltLength: 20}), "the key's parameters were used")
	assert.True(t, e.verify(t, acmeApp, pub.ID, nil, msg, sig), "the public key's parameters too")
	assert.False(t, e.verify(t, acmeApp, pub.ID, sigParams(engine.PadPKCS1, engine.HashSHA384), msg, sig), "request parameters replace the key's")

	t.Run("legacy SHA-1 signatures verify", func(t *testing.T) {
		d := sha1.Sum(msg)
		legacy, err := rsa.SignPKCS1v15(rand.Reader, k, crypto.SHA1, d[:])
		require.NoError(t, err)
		assert.True(t, e.verify(t, acmeApp, pub.ID, sigParams(engine.PadPKCS1, engine.HashSHA1), msg, legacy))
		assert.True(t, e.verify(t, acmeApp, pub.ID, &engine.CryptographicParameters{DigitalSignatureAlgorithm: 0x03}, msg, legacy))
		_, _, err = e.eng.Sign(t.Context(), acmeApp, engine.SignRequest{ID: priv.ID, Params: sigParams(engine.PadPKCS1, engine.HashSHA1), Data: msg})
		require.ErrorIs(t, err, engine.ErrNotSupported, "no new SHA-1 signatures")
		assert.Contains(t, err.Error(), "SHA-1")
	})
	t.Run("verify with a certificate", func(t *testing.T) {
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(7), Subject: pkix.Name{CommonName: "signer"},
			NotBefore: t0.Add(-time.Hour), NotAfter: t0.Add(time.Hour)}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
		require.NoError(t, err)
		cert, err := e.eng.Register(t.Context(), acmeApp, engine.RegisterRequest{Type: engine.TypeCertificate,
			Attrs:    []engine.Attribute{attr(engine.AttrActivationDate, e.clock.Now()), attr(engine.AttrCryptographicUsageMask, engine.UsageVerify)},
			Material: engine.Material{Format: engine.FormatX509, Bytes: der}})
		require.NoError(t, err)
		sig := e.sign(t, acmeApp, priv.ID, sigParams(engine.PadPKCS1, engine.HashSHA256), msg)
		assert.True(t, e.verify(t, acmeApp, cert.ID, sigParams(engine.PadPKCS1, engine.HashSHA256), msg, sig))
	})
	t.Run("a registered 1024-bit key still signs", func(t *testing.T) {
		small, err := rsa.GenerateKey(rand.Reader, 1024)
		require.NoError(t, err)
		priv, pub := e.registerRSAPair(t, small)
		sig := e.sign(t, acmeApp, priv.ID, nil, msg)
		assert.True(t, e.verify(t, acmeApp, pub.ID, nil, msg, sig))
		_, _, err = e.eng.Sign(t.Context(), acmeApp, engine.SignRequest{ID: priv.ID, Params: &engine.CryptographicParameters{PaddingMethod: engine.PadPSS, HashingAlgorithm: engine.HashSHA512, SaltLength: salt(100)}, Data: msg})
		require.ErrorIs(t, err, engine.ErrInvalidField, "salt too long for the key")
	})
}

func TestSignRefusals(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	rsaKP := e.activePair(t, acmeApp, rsaPair(2048, "refusals"))
	ecKP := e.activePair(t, acmeApp, ecPair(engine.AlgECDSA, engine.CurveP256))
	ecdh := e.activePair(t, acmeApp, ecPair(engine.AlgECDH, engine.CurveP256, attr(engine.AttrCryptographicUsageMask, engine.UsageSign|engine.UsageVerify|engine.UsageKeyAgreement)))
	preActive := e.createPair(t, acmeApp, rsaPair(2048, "preactive"))
	noUsage := e.activePair(t, acmeApp, ecPair(engine.AlgECDSA, engine.CurveP256, attr(engine.AttrCryptographicUsageMask, engine.UsageDecrypt)))
	protectStopped := e.activePair(t, acmeApp, ecPair(engine.AlgECDSA, engine.CurveP256, attr(engine.AttrProtectStopDate, t0)))
	notYet := e.activePair(t, acmeApp, ecPair(engine.AlgECDSA, engine.CurveP256, attr(engine.AttrProcessStartDate, t0.Add(time.Hour))))
	aes := e.activeAES(t, acmeApp, 256)
	msg := []byte("m")
	ecSig := e.sign(t, acmeApp, ecKP.Private.ID, nil, msg)

	signCases := []struct {
		name   string
		p      engine.Principal
		id     string
		params *engine.CryptographicParameters
		want   error
		msg    string
	}{
		{"auditor", acmeAuditor, ecKP.Private.ID, nil, engine.ErrPermissionDenied, "auditor"},
		{"another tenant's key", globexAdmin, ecKP.Private.ID, nil, engine.ErrNotFound, ""},
		{"no such key", acmeApp, "no-such-id", nil, engine.ErrNotFound, ""},
		{"a public key", acmeApp, ecKP.Public.ID, nil, engine.ErrIllegalOperation, "private key"},
		{"a symmetric key", acmeApp, aes.ID, nil, engine.ErrIllegalOperation, "private key"},
		{"pre-active", acmeApp, preActive.Private.ID, nil, engine.ErrWrongState, "PreActive"},
		{"usage mask", acmeApp, noUsage.Private.ID, nil, engine.ErrPermissionDenied, "Usage Mask"},
		{"protect stop date passed", acmeApp, protectStopped.Private.ID, nil, engine.ErrWrongState, "Protect Stop Date"},
		{"an ECDH key", acmeApp, ecdh.Private.ID, nil, engine.ErrIllegalOperation, "key agreement"},
		{"unsupported hash", acmeApp, rsaKP.Private.ID, sigParams(engine.PadPKCS1, 0x03 /* MD5 */), engine.ErrNotSupported, "hashing algorithm"},
		{"unsupported padding", acmeApp, rsaKP.Private.ID, sigParams(engine.PadOAEP, engine.HashSHA256), engine.ErrNotSupported, "padding method"},
		{"raw RSA", acmeApp, rsaKP.Private.ID, sigParams(engine.PadNone, engine.HashSHA256), engine.ErrNotSupported, "padding method"},
		{"another algorithm named", acmeApp, rsaKP.Private.ID, &engine.CryptographicParameters{CryptographicAlgorithm: engine.AlgECDSA}, engine.ErrInvalidField, "not the key's"},
		{"ECDSA algorithm for RSA", acmeApp, rsaKP.Private.ID, &engine.CryptographicParameters{DigitalSignatureAlgorithm: 0x0E}, engine.ErrInvalidField, "not for the key's algorithm"},
		{"DSA disagrees with hash", acmeApp, rsaKP.Private.ID, &engine.CryptographicParameters{DigitalSignatureAlgorithm: 0x05, HashingAlgorithm: engine.HashSHA512}, engine.ErrInvalidField, "disagree"},
		{"DSA disagrees with padding", acmeApp, rsaKP.Private.ID, &engine.CryptographicParameters{DigitalSignatureAlgorithm: 0x05, PaddingMethod: engine.PadPSS}, engine.ErrInvalidField, "disagree"},
		{"unsupported DSA", acmeApp, rsaKP.Private.ID, &engine.CryptographicParameters{DigitalSignatureAlgorithm: 0x02 /* MD5 */}, engine.ErrNotSupported, "Digital Signature Algorithm"},
		{"PSS with another MGF hash", acmeApp, rsaKP.Private.ID, &engine.CryptographicParameters{PaddingMethod: engine.PadPSS, HashingAlgorithm: engine.HashSHA256, MaskGeneratorHashingAlgorithm: engine.HashSHA1}, engine.ErrNotSupported, "MGF1"},
		{"PSS with another mask generator", acmeApp, rsaKP.Private.ID, &engine.CryptographicParameters{PaddingMethod: engine.PadPSS, MaskGenerator: 2}, engine.ErrNotSupported, "mask generator"},
		{"PSS with another trailer", acmeApp, rsaKP.Private.ID, &engine.CryptographicParameters{PaddingMethod: engine.PadPSS, TrailerField: salt(2)}, engine.ErrNotSupported, "trailer"},
		{"PSS empty salt", acmeApp, rsaKP.Private.ID, &engine.CryptographicParameters{PaddingMethod: engine.PadPSS, SaltLength: salt(0)}, engine.ErrNotSupported, "empty salt"},
		{"PSS negative salt", acmeApp, rsaKP.Private.ID, &engine.CryptographicParameters{PaddingMethod: engine.PadPSS, SaltLength: salt(-1)}, engine.ErrInvalidField, "negative"},
		{"PSS salt too long", acmeApp, rsaKP.Private.ID, &engine.CryptographicParameters{PaddingMethod: engine.PadPSS, HashingAlgorithm: engine.HashSHA256, SaltLength: salt(223)}, engine.ErrInvalidField, "exceeds"},
	}
	for _, c := range signCases {
		t.Run("Sign "+c.name, func(t *testing.T) {
			_, sig, err := e.eng.Sign(ctx, c.p, engine.SignRequest{ID: c.id, Params: c.params, Data: msg})
			require.ErrorIs(t, err, c.want)
			assert.Contains(t, err.Error(), c.msg)
			assert.Nil(t, sig)
		})
	}

	verifyCases := []struct {
		name string
		p    engine.Principal
		id   string
		want error
		msg  string
	}{
		{"auditor", acmeAuditor, ecKP.Public.ID, engine.ErrPermissionDenied, "auditor"},
		{"another tenant's key", globexAdmin, ecKP.Public.ID, engine.ErrNotFound, ""},
		{"the private key", acmeApp, ecKP.Private.ID, engine.ErrIllegalOperation, "public key"},
		{"a symmetric key", acmeApp, aes.ID, engine.ErrIllegalOperation, "public key"},
		{"pre-active", acmeApp, preActive.Public.ID, engine.ErrWrongState, "PreActive"},
		{"usage mask", acmeApp, noUsage.Public.ID, engine.ErrPermissionDenied, "Usage Mask"},
		{"process start date to come", acmeApp, notYet.Public.ID, engine.ErrWrongState, "Process Start Date"},
	}
	for _, c := range verifyCases {
		t.Run("Verify "+c.name, func(t *testing.T) {
			_, valid, err := e.eng.SignatureVerify(ctx, c.p, engine.VerifyRequest{ID: c.id, Data: msg, Signature: ecSig})
			require.ErrorIs(t, err, c.want)
			assert.Contains(t, err.Error(), c.msg)
			assert.False(t, valid)
		})
	}

	t.Run("lifecycle", func(t *testing.T) {
		kp := e.activePair(t, acmeApp, ecPair(engine.AlgECDSA, engine.CurveP384))
		sig := e.sign(t, acmeApp, kp.Private.ID, nil, msg)
		for _, id := range []string{kp.Private.ID, kp.Public.ID} {
			_, err := e.eng.Revoke(ctx, acmeApp, id, engine.RevokeRequest{Reason: engine.RevocationReason{RevocationReasonCode: engine.RevokeSuperseded}})
			require.NoError(t, err)
		}
		_, _, err := e.eng.Sign(ctx, acmeApp, engine.SignRequest{ID: kp.Private.ID, Data: msg})
		require.ErrorIs(t, err, engine.ErrWrongState, "a Deactivated key does not sign")
		assert.True(t, e.verify(t, acmeApp, kp.Public.ID, nil, msg, sig), "a Deactivated key verifies")
		_, err = e.eng.Revoke(ctx, acmeApp, kp.Public.ID, engine.RevokeRequest{Reason: engine.RevocationReason{RevocationReasonCode: engine.RevokeKeyCompromise}})
		require.NoError(t, err)
		assert.True(t, e.verify(t, acmeApp, kp.Public.ID, nil, msg, sig), "a Compromised key verifies")
		_, err = e.eng.Destroy(ctx, acmeAdmin, kp.Public.ID)
		require.NoError(t, err)
		_, _, err = e.eng.SignatureVerify(ctx, acmeApp, engine.VerifyRequest{ID: kp.Public.ID, Data: msg, Signature: sig})
		require.ErrorIs(t, err, engine.ErrWrongState, "a destroyed key verifies nothing")
	})
	t.Run("Deactivation Date reached", func(t *testing.T) {
		kp := e.activePair(t, acmeApp, ecPair(engine.AlgECDSA, engine.CurveP256, attr(engine.AttrDeactivationDate, t0.Add(time.Minute))))
		sig := e.sign(t, acmeApp, kp.Private.ID, nil, msg)
		e.clock.Advance(2 * time.Minute)
		_, _, err := e.eng.Sign(ctx, acmeApp, engine.SignRequest{ID: kp.Private.ID, Data: msg})
		require.ErrorIs(t, err, engine.ErrWrongState)
		assert.True(t, e.verify(t, acmeApp, kp.Public.ID, nil, msg, sig))
	})
}

func TestSignUsageLimits(t *testing.T) {
	e := newEnv(t)
	kp := e.activePair(t, acmeApp, ecPair(engine.AlgECDSA, engine.CurveP256,
		attr(engine.AttrUsageLimits, engine.UsageLimits{UsageLimitsTotal: 2, UsageLimitsUnit: 2})))
	e.sign(t, acmeApp, kp.Private.ID, nil, []byte("1"))
	e.sign(t, acmeApp, kp.Private.ID, nil, []byte("2"))
	_, _, err := e.eng.Sign(t.Context(), acmeApp, engine.SignRequest{ID: kp.Private.ID, Data: []byte("3")})
	require.ErrorIs(t, err, engine.ErrPermissionDenied)
	assert.Contains(t, err.Error(), "Usage Limits")
	// Verification is not charged: the public key, with the same limits,
	// verifies as often as asked.
	sig := e.sign(t, acmeApp, e.activePair(t, acmeApp, ecPair(engine.AlgECDSA, engine.CurveP256)).Private.ID, nil, []byte("x"))
	for range 4 {
		assert.False(t, e.verify(t, acmeApp, kp.Public.ID, nil, []byte("x"), sig))
	}
}

func benchSign(b *testing.B, req engine.CreateKeyPairRequest) {
	e := newEnv(b)
	kp := e.activePair(b, acmeApp, req)
	msg := []byte("benchmark message")
	b.ResetTimer()
	for b.Loop() {
		if _, _, err := e.eng.Sign(b.Context(), acmeApp, engine.SignRequest{ID: kp.Private.ID, Data: msg}); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkSignRSA2048(b *testing.B) { benchSign(b, rsaPair(2048, "bench")) }

func BenchmarkSignECDSAP256(b *testing.B) { benchSign(b, ecPair(engine.AlgECDSA, engine.CurveP256)) }
