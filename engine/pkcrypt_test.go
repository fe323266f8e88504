package engine_test

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/minikms/minikms/engine"
)

func oaep(h, mgf engine.HashAlgorithm, label []byte) *engine.CryptographicParameters {
	return &engine.CryptographicParameters{PaddingMethod: engine.PadOAEP, HashingAlgorithm: h, MaskGenerator: 1, MaskGeneratorHashingAlgorithm: mgf, PSource: label}
}

func TestRSAOAEP(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	require.NoError(t, err)
	priv, pub := e.registerRSAPair(t, k)
	msg := []byte("a data encryption key, 32 bytes")

	t.Run("defaults: OAEP with SHA-1 and MGF1-SHA-1", func(t *testing.T) {
		res, err := e.eng.Encrypt(ctx, acmeApp, engine.EncryptRequest{ID: pub.ID, Data: msg})
		require.NoError(t, err)
		assert.Equal(t, pub.ID, res.Object.ID)
		assert.Len(t, res.Ciphertext, 256)
		assert.Nil(t, res.IV)
		assert.Nil(t, res.Tag)
		pt, err := rsa.DecryptOAEP(sha1.New(), nil, k, res.Ciphertext, nil)
		require.NoError(t, err, "the standard library decrypts it as OAEP-SHA-1")
		assert.Equal(t, msg, pt)
		o, pt, err := e.eng.Decrypt(ctx, acmeApp, engine.DecryptRequest{ID: priv.ID, Data: res.Ciphertext})
		require.NoError(t, err)
		assert.Equal(t, priv.ID, o.ID)
		assert.Equal(t, msg, pt)
	})
	t.Run("hash, MGF hash and label", func(t *testing.T) {
		p := oaep(engine.HashSHA384, engine.HashSHA256, []byte("Kilroy was here"))
		res, err := e.eng.Encrypt(ctx, acmeApp, engine.EncryptRequest{ID: pub.ID, Params: p, Data: msg})
		require.NoError(t, err)
		pt, err := k.Decrypt(nil, res.Ciphertext, &rsa.OAEPOptions{Hash: crypto.SHA384, MGFHash: crypto.SHA256, Label: []byte("Kilroy was here")})
		require.NoError(t, err)
		assert.Equal(t, msg, pt)
		_, pt, err = e.eng.Decrypt(ctx, acmeApp, engine.DecryptRequest{ID: priv.ID, Params: p, Data: res.Ciphertext})
		require.NoError(t, err)
		assert.Equal(t, msg, pt)
		for _, wrong := range []*engine.CryptographicParameters{
			oaep(engine.HashSHA384, engine.HashSHA256, []byte("another label")),
			oaep(engine.HashSHA384, engine.HashSHA384, []byte("Kilroy was here")),
			oaep(engine.HashSHA256, engine.HashSHA256, []byte("Kilroy was here")),
		} {
			_, pt, err := e.eng.Decrypt(ctx, acmeApp, engine.DecryptRequest{ID: priv.ID, Params: wrong, Data: res.Ciphertext})
			require.ErrorIs(t, err, engine.ErrBadCiphertext)
			assert.Equal(t, "invalid ciphertext: RSA-OAEP decryption failed", err.Error(), "one message for every failure")
			assert.Nil(t, pt)
		}
	})
	t.Run("a ciphertext made elsewhere", func(t *testing.T) {
		ct, err := rsa.EncryptOAEP(sha256.New(), rand.Reader, &k.PublicKey, msg, nil)
		require.NoError(t, err)
		_, pt, err := e.eng.Decrypt(ctx, acmeApp, engine.DecryptRequest{ID: priv.ID, Params: oaep(engine.HashSHA256, engine.HashSHA256, nil), Data: ct})
		require.NoError(t, err)
		assert.Equal(t, msg, pt)
	})
	t.Run("parameters of the key", func(t *testing.T) {
		p := *oaep(engine.HashSHA512, engine.HashSHA512, nil)
		kp, kpub := e.registerRSAPair(t, k, attr(engine.AttrCryptographicParameters, p))
		res, err := e.eng.Encrypt(ctx, acmeApp, engine.EncryptRequest{ID: kpub.ID, Data: msg})
		require.NoError(t, err)
		pt, err := k.Decrypt(nil, res.Ciphertext, &rsa.OAEPOptions{Hash: crypto.SHA512})
		require.NoError(t, err)
		assert.Equal(t, msg, pt)
		_, pt, err = e.eng.Decrypt(ctx, acmeApp, engine.DecryptRequest{ID: kp.ID, Data: res.Ciphertext})
		require.NoError(t, err)
		assert.Equal(t, msg, pt)
	})
	t.Run("longest message", func(t *testing.T) {
		long := make([]byte, 256-2*32-2)
		res, err := e.eng.Encrypt(ctx, acmeApp, engine.EncryptRequest{ID: pub.ID, Params: oaep(engine.HashSHA256, 0, nil), Data: long})
		require.NoError(t, err)
		_, pt, err := e.eng.Decrypt(ctx, acmeApp, engine.DecryptRequest{ID: priv.ID, Params: oaep(engine.HashSHA256, 0, nil), Data: res.Ciphertext})
		require.NoError(t, err)
		assert.Equal(t, long, pt)
		_, err = e.eng.Encrypt(ctx, acmeApp, engine.EncryptRequest{ID: pub.ID, Params: oaep(engine.HashSHA256, 0, nil), Data: append(long, 0)})
		require.ErrorIs(t, err, engine.ErrInvalidField)
		assert.Contains(t, err.Error(), "too long")
	})
	t.Run("a created pair", func(t *testing.T) {
		req := rsaPair(2048, "oaep")
		req.Private = []engine.Attribute{attr(engine.AttrCryptographicUsageMask, engine.UsageDecrypt)}
		req.Public = []engine.Attribute{attr(engine.AttrCryptographicUsageMask, engine.UsageEncrypt)}
		kp := e.activePair(t, acmeApp, req)
		res, err := e.eng.Encrypt(ctx, acmeApp, engine.EncryptRequest{ID: kp.Public.ID, Data: msg})
		require.NoError(t, err)
		_, pt, err := e.eng.Decrypt(ctx, acmeApp, engine.DecryptRequest{ID: kp.Private.ID, Data: res.Ciphertext})
		require.NoError(t, err)
		assert.Equal(t, msg, pt)
	})
}

func TestRSAOAEPRefusals(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	require.NoError(t, err)
	priv, pub := e.registerRSAPair(t, k)
	ec := e.activePair(t, acmeApp, ecPair(engine.AlgECDSA, engine.CurveP256, attr(engine.AttrCryptographicUsageMask, engine.UsageEncrypt|engine.UsageDecrypt)))
	noUsage := e.activePair(t, acmeApp, rsaPair(2048, "no-encrypt"))
	preActive := e.createPair(t, acmeApp, engine.CreateKeyPairRequest{Common: append(algLen(engine.AlgRSA, 2048), attr(engine.AttrCryptographicUsageMask, engine.UsageEncrypt|engine.UsageDecrypt))})
	ct, err := rsa.EncryptOAEP(sha1.New(), rand.Reader, &k.PublicKey, []byte("m"), nil)
	require.NoError(t, err)

	encCases := []struct {
		name string
		p    engine.Principal
		req  engine.EncryptRequest
		want error
		msg  string
	}{
		{"auditor", acmeAuditor, engine.EncryptRequest{ID: pub.ID, Data: []byte("m")}, engine.ErrPermissionDenied, "auditor"},
		{"another tenant", globexAdmin, engine.EncryptRequest{ID: pub.ID, Data: []byte("m")}, engine.ErrNotFound, ""},
		{"the private key", acmeApp, engine.EncryptRequest{ID: priv.ID, Data: []byte("m")}, engine.ErrIllegalOperation, "public key"},
		{"an EC key", acmeApp, engine.EncryptRequest{ID: ec.Public.ID, Data: []byte("m")}, engine.ErrNotSupported, "elliptic-curve"},
		{"usage mask", acmeApp, engine.EncryptRequest{ID: noUsage.Public.ID, Data: []byte("m")}, engine.ErrPermissionDenied, "Usage Mask"},
		{"pre-active", acmeApp, engine.EncryptRequest{ID: preActive.Public.ID, Data: []byte("m")}, engine.ErrWrongState, "PreActive"},
		{"PKCS#1 v1.5", acmeApp, engine.EncryptRequest{ID: pub.ID, Params: &engine.CryptographicParameters{PaddingMethod: engine.PadPKCS1}, Data: []byte("m")}, engine.ErrNotSupported, "PKCS#1 v1.5"},
		{"raw RSA", acmeApp, engine.EncryptRequest{ID: pub.ID, Params: &engine.CryptographicParameters{PaddingMethod: engine.PadNone}, Data: []byte("m")}, engine.ErrNotSupported, "raw RSA"},
		{"other padding", acmeApp, engine.EncryptRequest{ID: pub.ID, Params: &engine.CryptographicParameters{PaddingMethod: engine.PadPKCS5}, Data: []byte("m")}, engine.ErrNotSupported, "padding method"},
		{"block cipher mode", acmeApp, engine.EncryptRequest{ID: pub.ID, Params: &engine.CryptographicParameters{BlockCipherMode: engine.ModeGCM}, Data: []byte("m")}, engine.ErrInvalidField, "Block Cipher Mode"},
		{"another algorithm", acmeApp, engine.EncryptRequest{ID: pub.ID, Params: &engine.CryptographicParameters{CryptographicAlgorithm: engine.AlgAES}, Data: []byte("m")}, engine.ErrInvalidField, "not the key's"},
		{"unsupported hash", acmeApp, engine.EncryptRequest{ID: pub.ID, Params: oaep(0x03, 0, nil), Data: []byte("m")}, engine.ErrNotSupported, "hashing algorithm"},
		{"unsupported MGF hash", acmeApp, engine.EncryptRequest{ID: pub.ID, Params: oaep(engine.HashSHA256, 0x03, nil), Data: []byte("m")}, engine.ErrNotSupported, "mask generator hashing"},
		{"unsupported mask generator", acmeApp, engine.EncryptRequest{ID: pub.ID, Params: &engine.CryptographicParameters{PaddingMethod: engine.PadOAEP, MaskGenerator: 2}, Data: []byte("m")}, engine.ErrNotSupported, "mask generator"},
		{"an IV", acmeApp, engine.EncryptRequest{ID: pub.ID, Data: []byte("m"), IV: make([]byte, 12)}, engine.ErrInvalidField, "no IV"},
		{"AAD", acmeApp, engine.EncryptRequest{ID: pub.ID, Data: []byte("m"), AAD: []byte("a")}, engine.ErrInvalidField, "no IV"},
	}
	for _, c := range encCases {
		t.Run("Encrypt "+c.name, func(t *testing.T) {
			res, err := e.eng.Encrypt(ctx, c.p, c.req)
			require.ErrorIs(t, err, c.want)
			assert.Contains(t, err.Error(), c.msg)
			assert.Nil(t, res.Ciphertext)
		})
	}
	decCases := []struct {
		name string
		p    engine.Principal
		req  engine.DecryptRequest
		want error
		msg  string
	}{
		{"auditor", acmeAuditor, engine.DecryptRequest{ID: priv.ID, Data: ct}, engine.ErrPermissionDenied, "auditor"},
		{"another tenant", globexAdmin, engine.DecryptRequest{ID: priv.ID, Data: ct}, engine.ErrNotFound, ""},
		{"the public key", acmeApp, engine.DecryptRequest{ID: pub.ID, Data: ct}, engine.ErrIllegalOperation, "private key"},
		{"an EC key", acmeApp, engine.DecryptRequest{ID: ec.Private.ID, Data: ct}, engine.ErrNotSupported, "elliptic-curve"},
		{"usage mask", acmeApp, engine.DecryptRequest{ID: noUsage.Private.ID, Data: ct}, engine.ErrPermissionDenied, "Usage Mask"},
		{"pre-active", acmeApp, engine.DecryptRequest{ID: preActive.Private.ID, Data: ct}, engine.ErrWrongState, "PreActive"},
		{"PKCS#1 v1.5", acmeApp, engine.DecryptRequest{ID: priv.ID, Params: &engine.CryptographicParameters{PaddingMethod: engine.PadPKCS1}, Data: ct}, engine.ErrNotSupported, "padding oracle"},
		{"a tag", acmeApp, engine.DecryptRequest{ID: priv.ID, Data: ct, Tag: make([]byte, 16)}, engine.ErrInvalidField, "tag"},
		{"short ciphertext", acmeApp, engine.DecryptRequest{ID: priv.ID, Data: ct[:255]}, engine.ErrBadCiphertext, "256 bytes"},
		{"altered ciphertext", acmeApp, engine.DecryptRequest{ID: priv.ID, Data: append([]byte{ct[0] ^ 1}, ct[1:]...)}, engine.ErrBadCiphertext, "decryption failed"},
	}
	for _, c := range decCases {
		t.Run("Decrypt "+c.name, func(t *testing.T) {
			_, pt, err := e.eng.Decrypt(ctx, c.p, c.req)
			require.ErrorIs(t, err, c.want)
			assert.Contains(t, err.Error(), c.msg)
			assert.Nil(t, pt)
		})
	}
	t.Run("a Deactivated or Compromised private key still decrypts", func(t *testing.T) {
		_, err := e.eng.Revoke(ctx, acmeApp, priv.ID, engine.RevokeRequest{Reason: engine.RevocationReason{RevocationReasonCode: engine.RevokeSuperseded}})
		require.NoError(t, err)
		_, pt, err := e.eng.Decrypt(ctx, acmeApp, engine.DecryptRequest{ID: priv.ID, Data: ct})
		require.NoError(t, err)
		assert.Equal(t, []byte("m"), pt)
		_, err = e.eng.Revoke(ctx, acmeApp, priv.ID, engine.RevokeRequest{Reason: engine.RevocationReason{RevocationReasonCode: engine.RevokeKeyCompromise}})
		require.NoError(t, err)
		_, _, err = e.eng.Decrypt(ctx, acmeApp, engine.DecryptRequest{ID: priv.ID, Data: ct})
		require.NoError(t, err)
		_, err = e.eng.Revoke(ctx, acmeApp, pub.ID, engine.RevokeRequest{Reason: engine.RevocationReason{RevocationReasonCode: engine.RevokeSuperseded}})
		require.NoError(t, err)
		_, err = e.eng.Encrypt(ctx, acmeApp, engine.EncryptRequest{ID: pub.ID, Data: []byte("m")})
		require.ErrorIs(t, err, engine.ErrWrongState, "a Deactivated public key does not encrypt")
	})
	t.Run("symmetric keys keep their path", func(t *testing.T) {
		aes := e.activeAES(t, acmeApp, 256)
		res := e.encrypt(t, acmeApp, aes.ID, []byte("m"))
		pt, err := e.decrypt(t, acmeApp, aes.ID, res)
		require.NoError(t, err)
		assert.Equal(t, []byte("m"), pt)
		_, err = e.eng.Encrypt(ctx, acmeApp, engine.EncryptRequest{ID: "missing", Data: []byte("m")})
		require.ErrorIs(t, err, engine.ErrNotFound)
	})
}
