package engine_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/minikms/minikms/engine"
)

// rsaPair is a Create Key Pair request for an RSA key of bits with the
// usual split of usages and a name per key.
func rsaPair(bits int32, prefix string) engine.CreateKeyPairRequest {
	return engine.CreateKeyPairRequest{
		Common: []engine.Attribute{
			attr(engine.AttrCryptographicAlgorithm, engine.AlgRSA),
			attr(engine.AttrCryptographicLength, bits),
		},
		Private: []engine.Attribute{attr(engine.AttrName, name(prefix+"-private")), attr(engine.AttrCryptographicUsageMask, engine.UsageSign)},
		Public:  []engine.Attribute{attr(engine.AttrName, name(prefix+"-public")), attr(engine.AttrCryptographicUsageMask, engine.UsageVerify)},
	}
}

// ecPair is a Create Key Pair request for an elliptic-curve key of alg on
// curve, with common extra attributes.
func ecPair(alg engine.Algorithm, curve uint32, extra ...engine.Attribute) engine.CreateKeyPairRequest {
	return engine.CreateKeyPairRequest{Common: append([]engine.Attribute{
		attr(engine.AttrCryptographicAlgorithm, alg),
		attr(engine.AttrCryptographicDomainParameters, engine.CryptographicDomainParameters{RecommendedCurve: curve}),
	}, extra...)}
}

// createPair makes a key pair and fails the test on error.
func (e *env) createPair(t testing.TB, p engine.Principal, req engine.CreateKeyPairRequest) *engine.KeyPair {
	t.Helper()
	kp, err := e.eng.CreateKeyPair(t.Context(), p, req)
	require.NoError(t, err)
	return kp
}

// activePair makes a key pair that is Active at once.
func (e *env) activePair(t testing.TB, p engine.Principal, req engine.CreateKeyPairRequest) *engine.KeyPair {
	t.Helper()
	req.Common = append(req.Common, attr(engine.AttrActivationDate, e.clock.Now()))
	kp := e.createPair(t, p, req)
	require.Equal(t, engine.StateActive, kp.Private.State)
	require.Equal(t, engine.StateActive, kp.Public.State)
	return kp
}

// links returns the Link values of an object.
func (e *env) kpLinks(t testing.TB, p engine.Principal, id string) []engine.Link {
	t.Helper()
	var out []engine.Link
	for _, a := range e.attrs(t, p, id, engine.AttrLink) {
		out = append(out, a.Value.(engine.Link))
	}
	return out
}

// names returns the Name values of an object.
func (e *env) kpNames(t testing.TB, p engine.Principal, id string) []string {
	t.Helper()
	var out []string
	for _, a := range e.attrs(t, p, id, engine.AttrName) {
		out = append(out, a.Value.(engine.Name).NameValue)
	}
	return out
}

// material returns a copy of the object's material via Get.
func (e *env) kpMaterial(t testing.TB, p engine.Principal, id string) engine.Material {
	t.Helper()
	_, m, err := e.eng.Get(t.Context(), p, id)
	require.NoError(t, err)
	return m
}

// pairKeys parses both halves of a pair as Get returns them.
func (e *env) pairKeys(t testing.TB, p engine.Principal, kp *engine.KeyPair) (any, any) {
	t.Helper()
	pm, um := e.kpMaterial(t, p, kp.Private.ID), e.kpMaterial(t, p, kp.Public.ID)
	require.Equal(t, engine.FormatPKCS8, pm.Format)
	require.Equal(t, engine.FormatSPKI, um.Format)
	priv, err := engine.ParsePKCS8PrivateKey(pm.Bytes)
	require.NoError(t, err)
	pub, err := engine.ParsePKIXPublicKey(um.Bytes)
	require.NoError(t, err)
	return priv, pub
}

func TestCreateKeyPairRSA(t *testing.T) {
	e := newEnv(t)
	kp := e.createPair(t, acmeApp, rsaPair(2048, "rsa"))
	priv, pub := kp.Private, kp.Public
	assert.Equal(t, engine.TypePrivateKey, priv.Type)
	assert.Equal(t, engine.TypePublicKey, pub.Type)
	assert.NotEqual(t, priv.ID, pub.ID)
	for _, o := range []*engine.Object{priv, pub} {
		assert.Equal(t, engine.StatePreActive, e.state(t, acmeApp, o.ID))
		assert.Equal(t, engine.AlgRSA, o.Attrs.Algorithm())
		assert.Equal(t, int32(2048), o.Attrs.Length())
		assert.Equal(t, t0, o.Attrs.Time(engine.AttrOriginalCreationDate))
		assert.Equal(t, []string{engine.DefaultScope}, o.Attrs.Strings(engine.AttrObjectGroup))
		_, hasDP := e.value(t, acmeApp, o.ID, engine.AttrCryptographicDomainParameters)
		assert.False(t, hasDP, "RSA keys have no domain parameters")
	}
	assert.Equal(t, engine.UsageSign, priv.Attrs.UsageMask())
	assert.Equal(t, engine.UsageVerify, pub.Attrs.UsageMask())
	assert.Equal(t, []string{"rsa-private"}, e.kpNames(t, acmeApp, priv.ID))
	assert.Equal(t, []string{"rsa-public"}, e.kpNames(t, acmeApp, pub.ID))
	assert.Equal(t, []engine.Link{{LinkType: engine.LinkPublicKey, LinkedObjectIdentifier: pub.ID}}, e.kpLinks(t, acmeApp, priv.ID))
	assert.Equal(t, []engine.Link{{LinkType: engine.LinkPrivateKey, LinkedObjectIdentifier: priv.ID}}, e.kpLinks(t, acmeApp, pub.ID))

	k, u := e.pairKeys(t, acmeApp, kp)
	rk, ok := k.(*rsa.PrivateKey)
	require.True(t, ok, "private key is %T", k)
	require.NoError(t, rk.Validate())
	assert.Equal(t, 2048, rk.N.BitLen())
	assert.True(t, rk.PublicKey.Equal(u), "the public key is the private key's half")

	// RSA keys are served as PKCS#1 by default; the Digest covers that
	// encoding.
	pm := e.kpMaterial(t, acmeApp, priv.ID)
	assert.Equal(t, uint32(0x03), pm.DataType)
	d, _ := e.value(t, acmeApp, priv.ID, engine.AttrDigest)
	want := sha256.Sum256(x509.MarshalPKCS1PrivateKey(rk))
	assert.Equal(t, engine.Digest{HashingAlgorithm: engine.HashSHA256, DigestValue: want[:], KeyFormatType: 0x03}, d)
	d, _ = e.value(t, acmeApp, pub.ID, engine.AttrDigest)
	want = sha256.Sum256(x509.MarshalPKCS1PublicKey(&rk.PublicKey))
	assert.Equal(t, engine.Digest{HashingAlgorithm: engine.HashSHA256, DigestValue: want[:], KeyFormatType: 0x03}, d)

	t.Run("a second pair is another key", func(t *testing.T) {
		kp2 := e.createPair(t, acmeApp, rsaPair(2048, "rsa2"))
		k2, _ := e.pairKeys(t, acmeApp, kp2)
		assert.False(t, rk.Equal(k2))
	})
	t.Run("3072 bits", func(t *testing.T) {
		if testing.Short() {
			t.Skip("RSA-3072 generation is slow")
		}
		kp := e.createPair(t, acmeApp, rsaPair(3072, "rsa3072"))
		k, _ := e.pairKeys(t, acmeApp, kp)
		assert.Equal(t, 3072, k.(*rsa.PrivateKey).N.BitLen())
	})
}

func TestCreateKeyPairEC(t *testing.T) {
	e := newEnv(t)
	cases := []struct {
		name  string
		req   engine.CreateKeyPairRequest
		alg   engine.Algorithm
		curve elliptic.Curve
		usage [2]engine.UsageMask
	}{
		{"ECDSA P-256 by curve", ecPair(engine.AlgECDSA, engine.CurveP256), engine.AlgECDSA, elliptic.P256(), [2]engine.UsageMask{engine.UsageSign, engine.UsageVerify}},
		{"ECDSA P-384 by length", engine.CreateKeyPairRequest{Common: algLen(engine.AlgECDSA, 384)}, engine.AlgECDSA, elliptic.P384(), [2]engine.UsageMask{engine.UsageSign, engine.UsageVerify}},
		{"ECDH P-521", ecPair(engine.AlgECDH, engine.CurveP521), engine.AlgECDH, elliptic.P521(), [2]engine.UsageMask{engine.UsageKeyAgreement, engine.UsageKeyAgreement}},
		{"EC P-256 with both", ecPair(engine.AlgEC, engine.CurveP256, attr(engine.AttrCryptographicLength, int32(256))), engine.AlgEC, elliptic.P256(), [2]engine.UsageMask{engine.UsageSign, engine.UsageVerify}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			kp := e.createPair(t, acmeApp, c.req)
			bits := int32(c.curve.Params().BitSize)
			for i, o := range []*engine.Object{kp.Private, kp.Public} {
				assert.Equal(t, c.alg, o.Attrs.Algorithm())
				assert.Equal(t, bits, o.Attrs.Length())
				dp, _ := e.value(t, acmeApp, o.ID, engine.AttrCryptographicDomainParameters)
				assert.Equal(t, engine.CryptographicDomainParameters{RecommendedCurve: engine.CurveValue(c.curve)}, dp)
				assert.Equal(t, c.usage[i], o.Attrs.UsageMask(), "default usage mask")
			}
			k, u := e.pairKeys(t, acmeApp, kp)
			ek, ok := k.(*ecdsa.PrivateKey)
			require.True(t, ok, "private key is %T", k)
			assert.Equal(t, c.curve, ek.Curve)
			assert.True(t, ek.PublicKey.Equal(u))
			assert.Equal(t, uint32(0x04), e.kpMaterial(t, acmeApp, kp.Private.ID).DataType, "EC private keys are served as PKCS#8")
			assert.Equal(t, uint32(0x05), e.kpMaterial(t, acmeApp, kp.Public.ID).DataType, "EC public keys are served as X.509")
		})
	}
}

func TestCreateKeyPairAttributes(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	e.registerTemplate(t, acmeAdmin, "pair-common", attr(engine.AttrContactInformation, "from-template"), attr(engine.AttrObjectGroup, "tpl-group"))
	e.registerTemplate(t, acmeAdmin, "priv-tpl", attr(engine.AttrCryptographicUsageMask, engine.UsageSign|engine.UsageCertificateSign), attr(engine.AttrContactInformation, "private-template"))
	req := rsaPair(2048, "attrs")
	req.CommonTemplates = []string{"pair-common"}
	req.PrivateTemplates = []string{"priv-tpl"}
	req.Common = append(req.Common,
		attr(engine.AttrObjectGroup, "common-group"),
		attr(engine.AttrCryptographicUsageMask, engine.UsageDecrypt), // overridden by both
		attr("x-owner", textItem("team-a")),
		attr(engine.AttrActivationDate, t0.Add(-time.Hour)))
	req.Private = []engine.Attribute{attr(engine.AttrName, name("attrs-private")), attr(engine.AttrObjectGroup, "private-group")}
	req.Public = append(req.Public, attr(engine.AttrContactInformation, "public-explicit"))
	kp := e.createPair(t, acmeApp, req)
	priv, pub := kp.Private, kp.Public

	assert.Equal(t, engine.StateActive, priv.State, "an Activation Date in the past activates both keys")
	assert.Equal(t, engine.StateActive, pub.State)
	assert.Equal(t, engine.UsageSign|engine.UsageCertificateSign, priv.Attrs.UsageMask(), "private template beats the common attribute")
	assert.Equal(t, engine.UsageVerify, pub.Attrs.UsageMask(), "public explicit beats the common attribute")
	assert.Equal(t, "private-template", priv.Attrs.Text(engine.AttrContactInformation), "specific template beats common")
	assert.Equal(t, "public-explicit", pub.Attrs.Text(engine.AttrContactInformation))
	assert.ElementsMatch(t, []string{"tpl-group", "common-group", "private-group"}, priv.Attrs.Strings(engine.AttrObjectGroup), "multi-instance attributes add up")
	assert.ElementsMatch(t, []string{"tpl-group", "common-group"}, pub.Attrs.Strings(engine.AttrObjectGroup))
	for _, o := range []*engine.Object{priv, pub} {
		v, ok := e.value(t, acmeApp, o.ID, "x-owner")
		assert.True(t, ok)
		assert.Equal(t, textItem("team-a"), v)
	}
	found := e.locate(t, acmeApp, attr(engine.AttrName, name("attrs-private")))
	assert.Equal(t, []string{priv.ID}, found)

	t.Run("the private key signs, the public key verifies", func(t *testing.T) {
		_, sig, err := e.eng.Sign(ctx, acmeApp, engine.SignRequest{ID: priv.ID, Data: []byte("m")})
		require.NoError(t, err)
		_, valid, err := e.eng.SignatureVerify(ctx, acmeApp, engine.VerifyRequest{ID: pub.ID, Data: []byte("m"), Signature: sig})
		require.NoError(t, err)
		assert.True(t, valid)
	})
}

func TestCreateKeyPairRefusals(t *testing.T) {
	e := newEnv(t)
	rsa := func(extra ...engine.Attribute) engine.CreateKeyPairRequest {
		r := rsaPair(2048, "refused")
		r.Common = append(r.Common, extra...)
		return r
	}
	cases := []struct {
		name string
		p    engine.Principal
		req  engine.CreateKeyPairRequest
		want error
		msg  string
	}{
		{"auditor", acmeAuditor, rsaPair(2048, "a"), engine.ErrPermissionDenied, "auditor"},
		{"no algorithm", acmeApp, engine.CreateKeyPairRequest{Common: []engine.Attribute{attr(engine.AttrCryptographicLength, int32(2048))}}, engine.ErrMissingData, "Cryptographic Algorithm"},
		{"RSA without length", acmeApp, engine.CreateKeyPairRequest{Common: []engine.Attribute{attr(engine.AttrCryptographicAlgorithm, engine.AlgRSA)}}, engine.ErrMissingData, "Cryptographic Length"},
		{"RSA 1024", acmeApp, rsaPair(1024, "weak"), engine.ErrNotSupported, "shorter than 2048"},
		{"RSA 2050", acmeApp, rsaPair(2050, "odd"), engine.ErrNotSupported, "2048, 3072 and 4096"},
		{"RSA 8192", acmeApp, rsaPair(8192, "huge"), engine.ErrNotSupported, "2048, 3072 and 4096"},
		{"RSA with a curve", acmeApp, rsa(attr(engine.AttrCryptographicDomainParameters, engine.CryptographicDomainParameters{RecommendedCurve: engine.CurveP256})), engine.ErrInvalidField, "do not apply to RSA"},
		{"symmetric algorithm", acmeApp, engine.CreateKeyPairRequest{Common: algLen(engine.AlgAES, 256)}, engine.ErrInvalidField, "not an asymmetric algorithm"},
		{"DSA", acmeApp, engine.CreateKeyPairRequest{Common: algLen(engine.AlgDSA, 2048)}, engine.ErrNotSupported, "not supported"},
		{"ECMQV", acmeApp, ecPair(engine.AlgECMQV, engine.CurveP256), engine.ErrNotSupported, "not supported"},
		{"P-224", acmeApp, ecPair(engine.AlgECDSA, engine.CurveP224), engine.ErrNotSupported, "P-256, P-384, P-521 and SECP256K1"},
		{"unknown curve", acmeApp, ecPair(engine.AlgECDSA, 0x01), engine.ErrNotSupported, "P-256, P-384, P-521 and SECP256K1"},
		{"EC length without a curve", acmeApp, engine.CreateKeyPairRequest{Common: algLen(engine.AlgECDSA, 255)}, engine.ErrNotSupported, "no supported curve"},
		{"EC without curve or length", acmeApp, engine.CreateKeyPairRequest{Common: []engine.Attribute{attr(engine.AttrCryptographicAlgorithm, engine.AlgECDSA)}}, engine.ErrMissingData, "Recommended Curve"},
		{"curve and length disagree", acmeApp, ecPair(engine.AlgECDSA, engine.CurveP384, attr(engine.AttrCryptographicLength, int32(256))), engine.ErrInvalidField, "does not match"},
		{"Qlength on EC", acmeApp, engine.CreateKeyPairRequest{Common: []engine.Attribute{attr(engine.AttrCryptographicAlgorithm, engine.AlgECDSA),
			attr(engine.AttrCryptographicDomainParameters, engine.CryptographicDomainParameters{Qlength: 256, RecommendedCurve: engine.CurveP256})}}, engine.ErrInvalidField, "Qlength"},
		{"Name in common", acmeApp, rsa(attr(engine.AttrName, name("both"))), engine.ErrInvalidField, "Common Template-Attribute"},
		{"halves of different algorithms", acmeApp, engine.CreateKeyPairRequest{
			Private: algLen(engine.AlgRSA, 2048), Public: algLen(engine.AlgECDSA, 256)}, engine.ErrInvalidField, "different values"},
		{"attribute of certificates", acmeApp, rsa(attr(engine.AttrCertificateType, engine.Enum(1))), engine.ErrInvalidField, "does not apply"},
		{"server-set attribute", acmeApp, rsa(attr(engine.AttrDigest, engine.Digest{HashingAlgorithm: engine.HashSHA256, DigestValue: make([]byte, 32)})), engine.ErrInvalidField, "set by the server"},
		{"unknown template", acmeApp, engine.CreateKeyPairRequest{Common: algLen(engine.AlgRSA, 2048), PublicTemplates: []string{"no-such-template"}}, engine.ErrNotFound, "template"},
		{"deactivation before activation", acmeApp, rsa(attr(engine.AttrActivationDate, t0), attr(engine.AttrDeactivationDate, t0.Add(-time.Hour))), engine.ErrInvalidField, "Deactivation Date"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := e.eng.CreateKeyPair(t.Context(), c.p, c.req)
			require.ErrorIs(t, err, c.want)
			assert.Contains(t, err.Error(), c.msg)
		})
	}
	// Nothing was stored by any refused request.
	res, err := e.eng.Locate(t.Context(), acmeAdmin, engine.LocateRequest{})
	require.NoError(t, err)
	assert.Empty(t, res.IDs)
}

func TestCreateKeyPairTenants(t *testing.T) {
	e := newEnv(t)
	kp := e.createPair(t, acmeApp, ecPair(engine.AlgECDSA, engine.CurveP256))
	for _, id := range []string{kp.Private.ID, kp.Public.ID} {
		_, _, err := e.eng.Get(t.Context(), globexAdmin, id)
		require.ErrorIs(t, err, engine.ErrNotFound)
	}
	// The material at rest is wrapped: the store never sees the key.
	k, _ := e.pairKeys(t, acmeApp, kp)
	der, err := x509.MarshalPKCS8PrivateKey(k)
	require.NoError(t, err)
	so := e.stored(t, "acme", kp.Private.ID)
	assert.NotContains(t, string(so.Wrapped), string(der))
	assertNoSecret(t, e.logs.String(), der, "the log")
}
