package engine_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/minikms/minikms/engine"
)

func (e *env) rekeyPair(t testing.TB, p engine.Principal, req engine.ReKeyKeyPairRequest) *engine.KeyPair {
	t.Helper()
	kp, err := e.eng.ReKeyKeyPair(t.Context(), p, req)
	require.NoError(t, err)
	return kp
}

func TestReKeyKeyPair(t *testing.T) {
	e := newEnv(t)
	req := rsaPair(2048, "rk")
	req.Common = append(req.Common,
		attr(engine.AttrObjectGroup, "payments"),
		attr("x-owner", textItem("team-a")),
		attr(engine.AttrCryptographicParameters, engine.CryptographicParameters{PaddingMethod: engine.PadPSS, HashingAlgorithm: engine.HashSHA256}),
		attr(engine.AttrActivationDate, t0.Add(-time.Hour)),
		attr(engine.AttrDeactivationDate, t0.Add(24*time.Hour)),
		attr(engine.AttrUsageLimits, engine.UsageLimits{UsageLimitsTotal: 10, UsageLimitsUnit: 2}))
	old := e.createPair(t, acmeApp, req)
	e.sign(t, acmeApp, old.Private.ID, nil, []byte("spend one use"))
	e.clock.Advance(time.Minute)

	kp := e.rekeyPair(t, acmeApp, engine.ReKeyKeyPairRequest{PrivateKeyID: old.Private.ID})
	now := t0.Add(time.Minute)
	assert.NotEqual(t, old.Private.ID, kp.Private.ID)
	assert.NotEqual(t, old.Public.ID, kp.Public.ID)

	t.Run("links", func(t *testing.T) {
		assert.ElementsMatch(t, []engine.Link{{LinkType: engine.LinkPublicKey, LinkedObjectIdentifier: kp.Public.ID}, {LinkType: engine.LinkReplacedObject, LinkedObjectIdentifier: old.Private.ID}}, e.kpLinks(t, acmeApp, kp.Private.ID))
		assert.ElementsMatch(t, []engine.Link{{LinkType: engine.LinkPrivateKey, LinkedObjectIdentifier: kp.Private.ID}, {LinkType: engine.LinkReplacedObject, LinkedObjectIdentifier: old.Public.ID}}, e.kpLinks(t, acmeApp, kp.Public.ID))
		assert.ElementsMatch(t, []engine.Link{{LinkType: engine.LinkPublicKey, LinkedObjectIdentifier: old.Public.ID}, {LinkType: engine.LinkReplacementObject, LinkedObjectIdentifier: kp.Private.ID}}, e.kpLinks(t, acmeApp, old.Private.ID))
		assert.ElementsMatch(t, []engine.Link{{LinkType: engine.LinkPrivateKey, LinkedObjectIdentifier: old.Private.ID}, {LinkType: engine.LinkReplacementObject, LinkedObjectIdentifier: kp.Public.ID}}, e.kpLinks(t, acmeApp, old.Public.ID))
	})
	t.Run("names move to the new keys", func(t *testing.T) {
		assert.Equal(t, []string{"rk-private"}, e.kpNames(t, acmeApp, kp.Private.ID))
		assert.Equal(t, []string{"rk-public"}, e.kpNames(t, acmeApp, kp.Public.ID))
		assert.Empty(t, e.kpNames(t, acmeApp, old.Private.ID))
		assert.Empty(t, e.kpNames(t, acmeApp, old.Public.ID))
		assert.Equal(t, []string{kp.Private.ID}, e.locate(t, acmeApp, attr(engine.AttrName, name("rk-private"))))
	})
	t.Run("attributes carried over", func(t *testing.T) {
		for i, pair := range [][2]*engine.Object{{old.Private, kp.Private}, {old.Public, kp.Public}} {
			o, n := pair[0], pair[1]
			assert.Equal(t, o.Attrs.Algorithm(), n.Attrs.Algorithm())
			assert.Equal(t, o.Attrs.Length(), n.Attrs.Length())
			assert.Equal(t, o.Attrs.UsageMask(), n.Attrs.UsageMask(), "pair half %d", i)
			assert.ElementsMatch(t, []string{"payments"}, n.Attrs.Strings(engine.AttrObjectGroup))
			v, _ := e.value(t, acmeApp, n.ID, "x-owner")
			assert.Equal(t, textItem("team-a"), v)
			cp, _ := e.value(t, acmeApp, n.ID, engine.AttrCryptographicParameters)
			assert.Equal(t, engine.CryptographicParameters{PaddingMethod: engine.PadPSS, HashingAlgorithm: engine.HashSHA256}, cp)
			assert.Equal(t, t0.Add(-time.Hour), n.Attrs.Time(engine.AttrActivationDate), "no Offset: dates copied")
			assert.Equal(t, t0.Add(24*time.Hour), n.Attrs.Time(engine.AttrDeactivationDate))
			assert.Equal(t, now, n.Attrs.Time(engine.AttrInitialDate))
			assert.Equal(t, now, n.Attrs.Time(engine.AttrOriginalCreationDate))
			assert.Equal(t, engine.StateActive, n.State, "the copied Activation Date has passed")
			d1, _ := e.value(t, acmeApp, o.ID, engine.AttrDigest)
			d2, _ := e.value(t, acmeApp, n.ID, engine.AttrDigest)
			assert.NotEqual(t, d1, d2, "new material, new digest")
			ul, _ := e.value(t, acmeApp, n.ID, engine.AttrUsageLimits)
			assert.Equal(t, int64(10), *ul.(engine.UsageLimits).UsageLimitsCount, "the replacement starts with the whole allowance")
		}
		ul, _ := e.value(t, acmeApp, old.Private.ID, engine.AttrUsageLimits)
		assert.Equal(t, int64(9), *ul.(engine.UsageLimits).UsageLimitsCount)
	})
	t.Run("the old pair keeps its state and its key", func(t *testing.T) {
		assert.Equal(t, engine.StateActive, e.state(t, acmeApp, old.Private.ID))
		assert.Equal(t, engine.StateActive, e.state(t, acmeApp, old.Public.ID))
		ok, _ := e.pairKeys(t, acmeApp, old)
		nk, npub := e.pairKeys(t, acmeApp, kp)
		assert.False(t, ok.(*rsa.PrivateKey).Equal(nk))
		assert.True(t, nk.(*rsa.PrivateKey).PublicKey.Equal(npub))
		sig := e.sign(t, acmeApp, kp.Private.ID, nil, []byte("m"))
		assert.True(t, e.verify(t, acmeApp, kp.Public.ID, nil, []byte("m"), sig))
		assert.False(t, e.verify(t, acmeApp, old.Public.ID, nil, []byte("m"), sig))
	})
	t.Run("re-keying again moves the replacement link", func(t *testing.T) {
		kp2 := e.rekeyPair(t, acmeApp, engine.ReKeyKeyPairRequest{PrivateKeyID: old.Private.ID})
		assert.ElementsMatch(t, []engine.Link{{LinkType: engine.LinkPublicKey, LinkedObjectIdentifier: old.Public.ID}, {LinkType: engine.LinkReplacementObject, LinkedObjectIdentifier: kp2.Private.ID}}, e.kpLinks(t, acmeApp, old.Private.ID))
		assert.Empty(t, e.kpNames(t, acmeApp, kp2.Private.ID), "the old key had no names left to give")
	})
}

func TestReKeyKeyPairOffset(t *testing.T) {
	e := newEnv(t)
	a1, p1, s1, d1 := t0.Add(-2*time.Hour), t0.Add(-time.Hour), t0.Add(time.Hour), t0.Add(10*time.Hour)
	old := e.createPair(t, acmeApp, ecPair(engine.AlgECDSA, engine.CurveP256,
		attr(engine.AttrActivationDate, a1), attr(engine.AttrProcessStartDate, p1),
		attr(engine.AttrProtectStopDate, s1), attr(engine.AttrDeactivationDate, d1)))
	offset := 30 * time.Minute
	kp := e.rekeyPair(t, acmeApp, engine.ReKeyKeyPairRequest{PrivateKeyID: old.Private.ID, Offset: &offset})
	a2 := t0.Add(offset)
	shift := a2.Sub(a1)
	for _, o := range []*engine.Object{kp.Private, kp.Public} {
		assert.Equal(t, a2, o.Attrs.Time(engine.AttrActivationDate))
		assert.Equal(t, p1.Add(shift), o.Attrs.Time(engine.AttrProcessStartDate))
		assert.Equal(t, s1.Add(shift), o.Attrs.Time(engine.AttrProtectStopDate))
		assert.Equal(t, d1.Add(shift), o.Attrs.Time(engine.AttrDeactivationDate))
		assert.Equal(t, engine.StatePreActive, e.state(t, acmeApp, o.ID), "activates at now+Offset")
	}
	e.clock.Advance(offset)
	assert.Equal(t, engine.StateActive, e.state(t, acmeApp, kp.Private.ID))

	t.Run("without old dates the Offset sets the activation", func(t *testing.T) {
		old := e.createPair(t, acmeApp, ecPair(engine.AlgECDSA, engine.CurveP256))
		zero := time.Duration(0)
		kp := e.rekeyPair(t, acmeApp, engine.ReKeyKeyPairRequest{PrivateKeyID: old.Private.ID, Offset: &zero})
		assert.Equal(t, engine.StateActive, kp.Private.State)
		assert.True(t, kp.Private.Attrs.Time(engine.AttrDeactivationDate).IsZero())
	})
}

func TestReKeyKeyPairTemplates(t *testing.T) {
	e := newEnv(t)
	old := e.createPair(t, acmeApp, ecPair(engine.AlgECDSA, engine.CurveP256, attr(engine.AttrContactInformation, "old")))
	kp := e.rekeyPair(t, acmeApp, engine.ReKeyKeyPairRequest{PrivateKeyID: old.Private.ID, Templates: engine.CreateKeyPairRequest{
		Common:  []engine.Attribute{attr(engine.AttrCryptographicDomainParameters, engine.CryptographicDomainParameters{RecommendedCurve: engine.CurveP384})},
		Private: []engine.Attribute{attr(engine.AttrContactInformation, "new"), attr(engine.AttrName, name("upgraded"))},
	}})
	for _, o := range []*engine.Object{kp.Private, kp.Public} {
		assert.Equal(t, int32(384), o.Attrs.Length(), "a P-384 replacement of a P-256 key")
		assert.Equal(t, engine.AlgECDSA, o.Attrs.Algorithm())
	}
	k, _ := e.pairKeys(t, acmeApp, kp)
	assert.Equal(t, elliptic.P384(), k.(*ecdsa.PrivateKey).Curve)
	assert.Equal(t, "new", kp.Private.Attrs.Text(engine.AttrContactInformation))
	assert.Equal(t, "old", kp.Public.Attrs.Text(engine.AttrContactInformation))
	assert.Equal(t, []string{"upgraded"}, e.kpNames(t, acmeApp, kp.Private.ID))
}

func TestReKeyKeyPairRefusals(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	kp := e.createPair(t, acmeApp, ecPair(engine.AlgECDSA, engine.CurveP256))
	aes := e.create(t, acmeApp, aesAttrs(128)...)
	small, err := rsa.GenerateKey(rand.Reader, 1024)
	require.NoError(t, err)
	lonePriv, lonePub := e.registerRSAPair(t, small)
	linked, _, err := e.eng.AddAttribute(ctx, acmeApp, lonePriv.ID, attr(engine.AttrLink, engine.Link{LinkType: engine.LinkPublicKey, LinkedObjectIdentifier: lonePub.ID}))
	require.NoError(t, err)
	dangling := e.createPair(t, acmeApp, ecPair(engine.AlgECDSA, engine.CurveP256))
	_, _, err = e.eng.ModifyAttribute(ctx, acmeApp, dangling.Private.ID, attr(engine.AttrLink, engine.Link{LinkType: engine.LinkPublicKey, LinkedObjectIdentifier: aes.ID}))
	require.NoError(t, err)
	destroyed := e.createPair(t, acmeApp, ecPair(engine.AlgECDSA, engine.CurveP256))
	_, err = e.eng.Destroy(ctx, acmeAdmin, destroyed.Private.ID)
	require.NoError(t, err)
	offset := time.Hour
	negative := -time.Hour

	cases := []struct {
		name string
		p    engine.Principal
		req  engine.ReKeyKeyPairRequest
		want error
		msg  string
	}{
		{"auditor", acmeAuditor, engine.ReKeyKeyPairRequest{PrivateKeyID: kp.Private.ID}, engine.ErrPermissionDenied, "auditor"},
		{"another tenant", globexAdmin, engine.ReKeyKeyPairRequest{PrivateKeyID: kp.Private.ID}, engine.ErrNotFound, ""},
		{"a public key", acmeApp, engine.ReKeyKeyPairRequest{PrivateKeyID: kp.Public.ID}, engine.ErrIllegalOperation, "private key"},
		{"a symmetric key", acmeApp, engine.ReKeyKeyPairRequest{PrivateKeyID: aes.ID}, engine.ErrIllegalOperation, "private key"},
		{"no public key link", acmeApp, engine.ReKeyKeyPairRequest{PrivateKeyID: e.registerLonePriv(t)}, engine.ErrIllegalOperation, "Public Key Link"},
		{"link to something else", acmeApp, engine.ReKeyKeyPairRequest{PrivateKeyID: dangling.Private.ID}, engine.ErrIllegalOperation, "SymmetricKey"},
		{"destroyed", acmeApp, engine.ReKeyKeyPairRequest{PrivateKeyID: destroyed.Private.ID}, engine.ErrWrongState, "destroyed"},
		{"a 1024-bit pair", acmeApp, engine.ReKeyKeyPairRequest{PrivateKeyID: linked.ID}, engine.ErrNotSupported, "shorter than 2048"},
		{"negative offset", acmeApp, engine.ReKeyKeyPairRequest{PrivateKeyID: kp.Private.ID, Offset: &negative}, engine.ErrInvalidField, "negative"},
		{"offset and a date", acmeApp, engine.ReKeyKeyPairRequest{PrivateKeyID: kp.Private.ID, Offset: &offset,
			Templates: engine.CreateKeyPairRequest{Public: []engine.Attribute{attr(engine.AttrDeactivationDate, t0.Add(48*time.Hour))}}}, engine.ErrInvalidMessage, "Offset"},
		{"name in common", acmeApp, engine.ReKeyKeyPairRequest{PrivateKeyID: kp.Private.ID,
			Templates: engine.CreateKeyPairRequest{Common: []engine.Attribute{attr(engine.AttrName, name("x"))}}}, engine.ErrInvalidField, "Common"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := e.eng.ReKeyKeyPair(ctx, c.p, c.req)
			require.ErrorIs(t, err, c.want)
			assert.Contains(t, err.Error(), c.msg)
		})
	}
	t.Run("the 1024-bit pair can be upgraded", func(t *testing.T) {
		kp := e.rekeyPair(t, acmeApp, engine.ReKeyKeyPairRequest{PrivateKeyID: linked.ID, Templates: engine.CreateKeyPairRequest{
			Common: []engine.Attribute{attr(engine.AttrCryptographicLength, int32(2048))}}})
		assert.Equal(t, int32(2048), kp.Private.Attrs.Length())
	})
	t.Run("refusals left the pair as it was", func(t *testing.T) {
		assert.Len(t, e.kpLinks(t, acmeApp, kp.Private.ID), 1)
	})
}

// registerLonePriv registers a private key with no link to a public key.
func (e *env) registerLonePriv(t testing.TB) string {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	der, err := x509.MarshalPKCS8PrivateKey(k)
	require.NoError(t, err)
	o, err := e.eng.Register(t.Context(), acmeApp, engine.RegisterRequest{Type: engine.TypePrivateKey, Material: engine.Material{Format: engine.FormatPKCS8, Bytes: der}})
	require.NoError(t, err)
	return o.ID
}
