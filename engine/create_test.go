package engine_test

import (
	"crypto/sha256"
	"math/bits"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/minikms/minikms/engine"
)

func TestCreateSymmetricKeys(t *testing.T) {
	e := newEnv(t)
	cases := []struct {
		name   string
		alg    engine.Algorithm
		length int32
		bytes  int
	}{
		{"AES-128", engine.AlgAES, 128, 16},
		{"AES-192", engine.AlgAES, 192, 24},
		{"AES-256", engine.AlgAES, 256, 32},
		{"3DES two-key", engine.Alg3DES, 112, 16},
		{"3DES three-key", engine.Alg3DES, 168, 24},
		{"HMAC-SHA1 160", engine.AlgHMACSHA1, 160, 20},
		{"HMAC-SHA256 256", engine.AlgHMACSHA256, 256, 32},
		{"HMAC-SHA512 512", engine.AlgHMACSHA512, 512, 64},
		{"HMAC-SHA256 minimum", engine.AlgHMACSHA256, 112, 14},
		{"SKIPJACK", engine.AlgSKIPJACK, 80, 10},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			o := e.create(t, acmeAdmin,
				attr(engine.AttrCryptographicAlgorithm, tc.alg),
				attr(engine.AttrCryptographicLength, tc.length))
			assert.Equal(t, engine.TypeSymmetricKey, o.Type)
			assert.Equal(t, engine.StatePreActive, o.State)
			assert.Equal(t, tc.alg, o.Attrs.Algorithm())
			assert.Equal(t, tc.length, o.Attrs.Length())
			assert.Equal(t, engine.UsageEncrypt|engine.UsageDecrypt, o.Attrs.UsageMask(), "default usage mask")

			_, m, err := e.eng.Get(t.Context(), acmeAdmin, o.ID)
			require.NoError(t, err)
			assert.Equal(t, engine.FormatRaw, m.Format)
			require.Len(t, m.Bytes, tc.bytes)
			assert.NotEqual(t, make([]byte, tc.bytes), m.Bytes, "all-zero key")
			if tc.alg == engine.Alg3DES {
				for i, b := range m.Bytes {
					assert.Equal(t, 1, bits.OnesCount8(b)%2, "byte %d (%08b) has even parity", i, b)
				}
			}
			// The digest is SHA-256 over the raw key.
			d, ok := e.value(t, acmeAdmin, o.ID, engine.AttrDigest)
			require.True(t, ok)
			sum := sha256.Sum256(m.Bytes)
			assert.Equal(t, engine.Digest{HashingAlgorithm: engine.HashSHA256, DigestValue: sum[:], KeyFormatType: 0x01}, d)
		})
	}
}

func TestCreateServerAttributes(t *testing.T) {
	e := newEnv(t)
	o := e.create(t, acmeApp, aesAttrs(256)...)
	now := e.clock.Now()
	for name, want := range map[string]any{
		engine.AttrInitialDate:          now,
		engine.AttrLastChangeDate:       now,
		engine.AttrOriginalCreationDate: now,
		engine.AttrObjectGroup:          "default",
		engine.AttrFresh:                true,
		engine.AttrKeyValuePresent:      true,
		engine.AttrSensitive:            false,
		engine.AttrAlwaysSensitive:      false,
		engine.AttrExtractable:          true,
		engine.AttrNeverExtractable:     false,
		engine.AttrState:                engine.StatePreActive,
		engine.AttrObjectType:           engine.TypeSymmetricKey,
		engine.AttrUniqueIdentifier:     o.ID,
	} {
		v, ok := e.value(t, acmeApp, o.ID, name)
		if assert.True(t, ok, "%s missing", name) {
			assert.Equal(t, want, v, name)
		}
	}
	for _, absent := range []string{engine.AttrActivationDate, engine.AttrDeactivationDate, engine.AttrName, engine.AttrDestroyDate} {
		_, ok := e.value(t, acmeApp, o.ID, absent)
		assert.False(t, ok, "%s set on a new key", absent)
	}
	assert.Equal(t, "default", o.Scope())

	g := e.create(t, acmeApp, aesAttrs(128, attr(engine.AttrObjectGroup, "payments"))...)
	v, _ := e.value(t, acmeApp, g.ID, engine.AttrObjectGroup)
	assert.Equal(t, "payments", v)
	assert.Equal(t, "payments", g.Scope())
}

var uuidV4 = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)

func TestUniqueIdentifiersAreRandomUUIDv4(t *testing.T) {
	e := newEnv(t)
	seen := map[string]bool{}
	for range 50 {
		o := e.create(t, acmeAdmin, aesAttrs(128)...)
		assert.Regexp(t, uuidV4, o.ID)
		assert.False(t, seen[o.ID], "identifier %s handed out twice", o.ID)
		seen[o.ID] = true
	}
	// Identifiers do not count up: no two share their first 32 bits.
	prefixes := map[string]bool{}
	for id := range seen {
		assert.False(t, prefixes[id[:8]], "identifiers share the prefix %s", id[:8])
		prefixes[id[:8]] = true
	}
}

func TestCreateRejects(t *testing.T) {
	e := newEnv(t)
	cases := []struct {
		name  string
		typ   engine.ObjectType
		attrs []engine.Attribute
		want  error
	}{
		{"AES-100", engine.TypeSymmetricKey, aesAttrs(100), engine.ErrInvalidField},
		{"AES-512", engine.TypeSymmetricKey, aesAttrs(512), engine.ErrInvalidField},
		{"AES-64", engine.TypeSymmetricKey, aesAttrs(64), engine.ErrInvalidField},
		{"AES negative length", engine.TypeSymmetricKey, aesAttrs(-128), engine.ErrInvalidField},
		{"3DES-56", engine.TypeSymmetricKey, algLen(engine.Alg3DES, 56), engine.ErrInvalidField},
		{"3DES-256", engine.TypeSymmetricKey, algLen(engine.Alg3DES, 256), engine.ErrInvalidField},
		{"HMAC too short", engine.TypeSymmetricKey, algLen(engine.AlgHMACSHA256, 104), engine.ErrInvalidField},
		{"HMAC not whole bytes", engine.TypeSymmetricKey, algLen(engine.AlgHMACSHA256, 260), engine.ErrInvalidField},
		{"HMAC too long", engine.TypeSymmetricKey, algLen(engine.AlgHMACSHA256, 4104), engine.ErrInvalidField},
		{"SKIPJACK-128", engine.TypeSymmetricKey, algLen(engine.AlgSKIPJACK, 128), engine.ErrInvalidField},
		{"single DES", engine.TypeSymmetricKey, algLen(engine.AlgDES, 56), engine.ErrNotSupported},
		{"RSA", engine.TypeSymmetricKey, algLen(engine.AlgRSA, 2048), engine.ErrNotSupported},
		{"EC", engine.TypeSymmetricKey, algLen(engine.AlgEC, 256), engine.ErrNotSupported},
		{"undefined algorithm", engine.TypeSymmetricKey, algLen(engine.Algorithm(0x99), 128), engine.ErrInvalidField},
		{"no algorithm", engine.TypeSymmetricKey, []engine.Attribute{attr(engine.AttrCryptographicLength, int32(128))}, engine.ErrMissingData},
		{"no length", engine.TypeSymmetricKey, []engine.Attribute{attr(engine.AttrCryptographicAlgorithm, engine.AlgAES)}, engine.ErrMissingData},
		{"nothing", engine.TypeSymmetricKey, nil, engine.ErrMissingData},
		{"secret data", engine.TypeSecretData, aesAttrs(128), engine.ErrInvalidField},
		{"undefined type", engine.ObjectType(0x42), aesAttrs(128), engine.ErrInvalidField},
		{"algorithm twice", engine.TypeSymmetricKey, aesAttrs(128, attr(engine.AttrCryptographicAlgorithm, engine.AlgAES)), engine.ErrInvalidField},
		{"value of wrong type", engine.TypeSymmetricKey, []engine.Attribute{
			attr(engine.AttrCryptographicAlgorithm, engine.AlgAES), attr(engine.AttrCryptographicLength, 128)}, engine.ErrInvalidField},
		{"nil value", engine.TypeSymmetricKey, aesAttrs(128, attr(engine.AttrContactInformation, nil)), engine.ErrInvalidField},
		{"deactivation before activation", engine.TypeSymmetricKey, aesAttrs(128,
			attr(engine.AttrActivationDate, t0.Add(time.Hour)), attr(engine.AttrDeactivationDate, t0)), engine.ErrInvalidField},
		{"undefined usage mask bits", engine.TypeSymmetricKey, aesAttrs(128,
			attr(engine.AttrCryptographicUsageMask, engine.UsageMask(0x0010_0000))), engine.ErrInvalidField},
		{"zero date", engine.TypeSymmetricKey, aesAttrs(128, attr(engine.AttrActivationDate, time.Time{})), engine.ErrInvalidField},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			o, err := e.eng.Create(t.Context(), acmeAdmin, engine.CreateRequest{Type: tc.typ, Attrs: tc.attrs})
			require.ErrorIs(t, err, tc.want)
			assert.Nil(t, o)
		})
	}
	assert.Empty(t, e.locate(t, acmeAdmin), "a refused Create stored an object")
}

func algLen(alg engine.Algorithm, length int32) []engine.Attribute {
	return []engine.Attribute{attr(engine.AttrCryptographicAlgorithm, alg), attr(engine.AttrCryptographicLength, length)}
}

func TestTemplateAttributeRules(t *testing.T) {
	e := newEnv(t)
	cases := []struct {
		name string
		a    engine.Attribute
		want error // nil: accepted
	}{
		{"Unique Identifier", attr(engine.AttrUniqueIdentifier, "mine"), engine.ErrInvalidField},
		{"Object Type", attr(engine.AttrObjectType, engine.TypeSymmetricKey), engine.ErrInvalidField},
		{"State", attr(engine.AttrState, engine.StateActive), engine.ErrInvalidField},
		{"Initial Date", attr(engine.AttrInitialDate, t0), engine.ErrInvalidField},
		{"Last Change Date", attr(engine.AttrLastChangeDate, t0), engine.ErrInvalidField},
		{"Destroy Date", attr(engine.AttrDestroyDate, t0), engine.ErrInvalidField},
		{"Compromise Date", attr(engine.AttrCompromiseDate, t0), engine.ErrInvalidField},
		{"Digest", attr(engine.AttrDigest, engine.Digest{HashingAlgorithm: engine.HashSHA256, DigestValue: []byte{1}}), engine.ErrInvalidField},
		{"Revocation Reason", attr(engine.AttrRevocationReason, engine.RevocationReason{RevocationReasonCode: engine.RevokeUnspecified}), engine.ErrInvalidField},
		{"Key Value Present", attr(engine.AttrKeyValuePresent, false), engine.ErrInvalidField},
		{"Always Sensitive", attr(engine.AttrAlwaysSensitive, true), engine.ErrInvalidField},
		{"Never Extractable", attr(engine.AttrNeverExtractable, true), engine.ErrInvalidField},
		{"Lease Time", attr(engine.AttrLeaseTime, time.Hour), engine.ErrInvalidField},
		{"unknown name", attr("Colour", "blue"), engine.ErrInvalidField},
		{"lower-case standard name", attr("cryptographic usage mask", engine.UsageEncrypt), engine.ErrInvalidField},
		{"server custom y-", attr("y-server-note", textItem("mine")), engine.ErrInvalidField},
		{"client custom x-", attr("x-owner", textItem("team-a")), nil},
		{"client custom x- structure", attr("x-meta", engine.Item{Kind: engine.KindStructure, Fields: []engine.Item{
			{Kind: engine.KindInteger, Int: 7}, textItem("seven")}}), nil},
		{"custom of wrong type", attr("x-owner", "team-a"), engine.ErrInvalidField},
		{"Contact Information", attr(engine.AttrContactInformation, "ops@acme.test"), nil},
		{"Name", attr(engine.AttrName, name("k1")), nil},
		{"URI Name", attr(engine.AttrName, engine.Name{NameValue: "urn:k", NameType: engine.NameURI}), nil},
		{"empty Name", attr(engine.AttrName, engine.Name{}), engine.ErrInvalidField},
		{"Name of undefined type", attr(engine.AttrName, engine.Name{NameValue: "k", NameType: 9}), engine.ErrInvalidField},
		{"Link of undefined type", attr(engine.AttrLink, engine.Link{LinkType: 0x1FF, LinkedObjectIdentifier: "x"}), engine.ErrInvalidField},
		{"Link without target", attr(engine.AttrLink, engine.Link{LinkType: engine.LinkParent}), engine.ErrInvalidField},
		{"Usage Limits without total", attr(engine.AttrUsageLimits, engine.UsageLimits{UsageLimitsUnit: 2}), engine.ErrInvalidField},
		{"Usage Limits of undefined unit", attr(engine.AttrUsageLimits, engine.UsageLimits{UsageLimitsTotal: 5, UsageLimitsUnit: 3}), engine.ErrInvalidField},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			o, err := e.eng.Create(t.Context(), acmeAdmin, engine.CreateRequest{Type: engine.TypeSymmetricKey, Attrs: aesAttrs(128, tc.a)})
			if tc.want != nil {
				require.ErrorIs(t, err, tc.want)
				assert.Nil(t, o)
				return
			}
			require.NoError(t, err)
			v, ok := e.value(t, acmeAdmin, o.ID, tc.a.Name)
			require.True(t, ok)
			assert.Equal(t, tc.a.Value, v)
		})
	}
}

func TestActivationDateAtCreate(t *testing.T) {
	e := newEnv(t)
	now := e.clock.Now()
	cases := []struct {
		name string
		date time.Time
		want engine.State
	}{
		{"in the past", now.Add(-time.Hour), engine.StateActive},
		{"now", now, engine.StateActive},
		{"in the future", now.Add(time.Second), engine.StatePreActive},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			o := e.create(t, acmeAdmin, aesAttrs(128, attr(engine.AttrActivationDate, tc.date))...)
			assert.Equal(t, tc.want, o.State)
			assert.Equal(t, tc.want, e.stored(t, "acme", o.ID).State, "stored state")
			assert.Equal(t, tc.want, e.state(t, acmeAdmin, o.ID))
			v, _ := e.value(t, acmeAdmin, o.ID, engine.AttrActivationDate)
			assert.Equal(t, tc.date, v, "the client's Activation Date is kept")
		})
	}
}

func TestRegisterSymmetricKey(t *testing.T) {
	e := newEnv(t)
	cases := []struct {
		name    string
		alg     engine.Algorithm
		length  int32 // in the key block; 0: from the material
		attrs   []engine.Attribute
		size    int
		want    error
		wantLen int32
	}{
		{name: "AES-128 from material", alg: engine.AlgAES, size: 16, wantLen: 128},
		{name: "AES-192 from material", alg: engine.AlgAES, size: 24, wantLen: 192},
		{name: "AES-256 stated", alg: engine.AlgAES, length: 256, size: 32, wantLen: 256},
		{name: "3DES two-key", alg: engine.Alg3DES, size: 16, wantLen: 112},
		{name: "3DES three-key", alg: engine.Alg3DES, size: 24, wantLen: 168},
		{name: "DES", alg: engine.AlgDES, size: 8, wantLen: 56},
		{name: "HMAC-SHA256", alg: engine.AlgHMACSHA256, size: 48, wantLen: 384},
		{name: "SKIPJACK", alg: engine.AlgSKIPJACK, size: 10, wantLen: 80},
		{name: "algorithm from attributes", attrs: algLen(engine.AlgAES, 256), size: 32, wantLen: 256},
		{name: "length disagrees with material", alg: engine.AlgAES, length: 256, size: 16, want: engine.ErrInvalidField},
		{name: "AES of 20 bytes", alg: engine.AlgAES, size: 20, want: engine.ErrInvalidField},
		{name: "3DES of 8 bytes", alg: engine.Alg3DES, size: 8, want: engine.ErrInvalidField},
		{name: "attribute length disagrees with key block", alg: engine.AlgAES, length: 128, size: 16,
			attrs: []engine.Attribute{attr(engine.AttrCryptographicLength, int32(256))}, want: engine.ErrInvalidField},
		{name: "attribute algorithm disagrees with key block", alg: engine.AlgAES, size: 16,
			attrs: []engine.Attribute{attr(engine.AttrCryptographicAlgorithm, engine.Alg3DES)}, want: engine.ErrInvalidField},
		{name: "no algorithm", size: 16, want: engine.ErrMissingData},
		{name: "no material", alg: engine.AlgAES, size: 0, want: engine.ErrMissingData},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			key := randomBytes(t, max(tc.size, 0))
			o, err := e.eng.Register(t.Context(), acmeAdmin, engine.RegisterRequest{
				Type: engine.TypeSymmetricKey, Attrs: tc.attrs, Algorithm: tc.alg, Length: tc.length,
				Material: engine.Material{Format: engine.FormatRaw, Bytes: key},
			})
			if tc.want != nil {
				require.ErrorIs(t, err, tc.want)
				assert.Nil(t, o)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.wantLen, o.Attrs.Length())
			assert.NotZero(t, o.Attrs.Algorithm())
			_, m, err := e.eng.Get(t.Context(), acmeAdmin, o.ID)
			require.NoError(t, err)
			assert.Equal(t, key, m.Bytes)
			assert.Equal(t, engine.FormatRaw, m.Format)
			_, ok := e.value(t, acmeAdmin, o.ID, engine.AttrDigest)
			assert.True(t, ok, "a registered key has a Digest")
		})
	}

	t.Run("PKCS#8 format", func(t *testing.T) {
		_, err := e.eng.Register(t.Context(), acmeAdmin, engine.RegisterRequest{Type: engine.TypeSymmetricKey,
			Algorithm: engine.AlgAES, Material: engine.Material{Format: engine.FormatPKCS8, Bytes: randomBytes(t, 16)}})
		require.ErrorIs(t, err, engine.ErrKeyFormatNotSupported)
	})
	t.Run("material too large", func(t *testing.T) {
		_, err := e.eng.Register(t.Context(), acmeAdmin, engine.RegisterRequest{Type: engine.TypeSecretData,
			Material: engine.Material{Format: engine.FormatRaw, DataType: uint32(engine.SecretSeed), Bytes: make([]byte, engine.MaxMaterialSize)}})
		require.ErrorIs(t, err, engine.ErrLimit)
	})
	t.Run("private key that does not parse", func(t *testing.T) {
		_, err := e.eng.Register(t.Context(), acmeAdmin, engine.RegisterRequest{Type: engine.TypePrivateKey,
			Material: engine.Material{Format: engine.FormatPKCS8, Bytes: []byte{0x30, 0}}})
		require.ErrorIs(t, err, engine.ErrInvalidField)
	})
	t.Run("split key", func(t *testing.T) {
		_, err := e.eng.Register(t.Context(), acmeAdmin, engine.RegisterRequest{Type: engine.TypeSplitKey,
			Material: engine.Material{Format: engine.FormatRaw, Bytes: []byte{1}}})
		require.ErrorIs(t, err, engine.ErrNotSupported)
	})
	t.Run("undefined type", func(t *testing.T) {
		_, err := e.eng.Register(t.Context(), acmeAdmin, engine.RegisterRequest{Type: 0x77,
			Material: engine.Material{Format: engine.FormatRaw, Bytes: []byte{1}}})
		require.ErrorIs(t, err, engine.ErrInvalidField)
	})
}

func TestRegisterSecretDataAndOpaque(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()

	password := []byte("correct horse battery staple")
	pw, err := e.eng.Register(ctx, acmeApp, engine.RegisterRequest{Type: engine.TypeSecretData,
		Material: engine.Material{Format: engine.FormatRaw, DataType: uint32(engine.SecretPassword), Bytes: password}})
	require.NoError(t, err)
	_, ok := e.value(t, acmeApp, pw.ID, engine.AttrDigest)
	assert.False(t, ok, "a password must get no Digest (offline guessing oracle)")
	sum := sha256.Sum256(password)
	assertNoSecret(t, string(e.stored(t, "acme", pw.ID).Attrs), sum[:], "a password's stored attributes")

	seedBytes := randomBytes(t, 48)
	seed, err := e.eng.Register(ctx, acmeApp, engine.RegisterRequest{Type: engine.TypeSecretData,
		Material: engine.Material{Format: engine.FormatRaw, DataType: uint32(engine.SecretSeed), Bytes: seedBytes}})
	require.NoError(t, err)
	d, ok := e.value(t, acmeApp, seed.ID, engine.AttrDigest)
	require.True(t, ok, "a seed gets a Digest")
	sum = sha256.Sum256(seedBytes)
	assert.Equal(t, sum[:], d.(engine.Digest).DigestValue)

	for _, o := range []*engine.Object{pw, seed} {
		assert.Equal(t, engine.TypeSecretData, o.Type)
		assert.Equal(t, engine.StatePreActive, e.state(t, acmeApp, o.ID))
		mask, ok := e.value(t, acmeApp, o.ID, engine.AttrCryptographicUsageMask)
		assert.True(t, ok)
		assert.Equal(t, engine.UsageMask(0), mask)
	}
	_, m, err := e.eng.Get(ctx, acmeApp, pw.ID)
	require.NoError(t, err)
	assert.Equal(t, engine.Material{Format: engine.FormatRaw, DataType: uint32(engine.SecretPassword), Bytes: password}, m)

	blob := []byte("opaque \x00 blob")
	op, err := e.eng.Register(ctx, acmeApp, engine.RegisterRequest{Type: engine.TypeOpaqueObject,
		Attrs:    []engine.Attribute{attr(engine.AttrName, name("blob"))},
		Material: engine.Material{Format: engine.FormatOpaque, DataType: 0x80000010, Bytes: blob}})
	require.NoError(t, err)
	assert.Equal(t, engine.TypeOpaqueObject, op.Type)
	_, m, err = e.eng.Get(ctx, acmeApp, op.ID)
	require.NoError(t, err)
	assert.Equal(t, blob, m.Bytes)
	assert.Equal(t, uint32(0x80000010), m.DataType)
	names := map[string]bool{}
	for _, a := range e.attrs(t, acmeApp, op.ID) {
		names[a.Name] = true
	}
	assert.False(t, names[engine.AttrState], "an Opaque Object has no State")
	assert.False(t, names[engine.AttrCryptographicUsageMask], "an Opaque Object has no usage mask")
	assert.True(t, names[engine.AttrDigest])
	v, _ := e.value(t, acmeApp, op.ID, engine.AttrObjectGroup)
	assert.Equal(t, "default", v)

	// Lifecycle attributes do not apply to Opaque Objects.
	_, err = e.eng.Register(ctx, acmeApp, engine.RegisterRequest{Type: engine.TypeOpaqueObject,
		Attrs:    []engine.Attribute{attr(engine.AttrActivationDate, t0)},
		Material: engine.Material{Format: engine.FormatOpaque, Bytes: blob}})
	require.ErrorIs(t, err, engine.ErrInvalidField)
	// Key attributes do not apply to Secret Data.
	_, err = e.eng.Register(ctx, acmeApp, engine.RegisterRequest{Type: engine.TypeSecretData,
		Attrs:    algLen(engine.AlgAES, 128),
		Material: engine.Material{Format: engine.FormatRaw, DataType: uint32(engine.SecretSeed), Bytes: seedBytes}})
	require.ErrorIs(t, err, engine.ErrInvalidField)
}

func TestRegisterIgnoresClientServerAttributes(t *testing.T) {
	e := newEnv(t)
	// Fresh may be given by a client but a new object is always fresh;
	// Original Creation Date of a Create is the server's.
	o := e.create(t, acmeAdmin, aesAttrs(128,
		attr(engine.AttrFresh, false),
		attr(engine.AttrOriginalCreationDate, t0.Add(-48*time.Hour)))...)
	v, _ := e.value(t, acmeAdmin, o.ID, engine.AttrFresh)
	assert.Equal(t, true, v)
	v, _ = e.value(t, acmeAdmin, o.ID, engine.AttrOriginalCreationDate)
	assert.Equal(t, e.clock.Now(), v)
}

func TestSensitiveAndExtractable(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	sens := e.activeAES(t, acmeAdmin, 256, attr(engine.AttrSensitive, true))
	_, m, err := e.eng.Get(ctx, acmeAdmin, sens.ID)
	require.ErrorIs(t, err, engine.ErrSensitive)
	assert.Empty(t, m.Bytes)
	v, _ := e.value(t, acmeAdmin, sens.ID, engine.AttrAlwaysSensitive)
	assert.Equal(t, true, v)

	noex := e.activeAES(t, acmeAdmin, 256, attr(engine.AttrExtractable, false))
	_, m, err = e.eng.Get(ctx, acmeAdmin, noex.ID)
	require.ErrorIs(t, err, engine.ErrNotExtractable)
	assert.Empty(t, m.Bytes)
	v, _ = e.value(t, acmeAdmin, noex.ID, engine.AttrNeverExtractable)
	assert.Equal(t, true, v)

	// Both still encrypt inside the server.
	for _, id := range []string{sens.ID, noex.ID} {
		res := e.encrypt(t, acmeApp, id, []byte("inside"))
		pt, err := e.decrypt(t, acmeApp, id, res)
		require.NoError(t, err)
		assert.Equal(t, "inside", string(pt))
	}
}

func TestGetClearsFresh(t *testing.T) {
	e := newEnv(t)
	o := e.activeAES(t, acmeAdmin, 128)
	v, _ := e.value(t, acmeAdmin, o.ID, engine.AttrFresh)
	require.Equal(t, true, v)
	_, _, err := e.eng.Get(t.Context(), acmeAdmin, o.ID)
	require.NoError(t, err)
	v, _ = e.value(t, acmeAdmin, o.ID, engine.AttrFresh)
	assert.Equal(t, false, v)
	e.reopen(t)
	v, _ = e.value(t, acmeAdmin, o.ID, engine.AttrFresh)
	assert.Equal(t, false, v, "Fresh=false is durable")
}

func TestGetUnknownAndOverlongIdentifiers(t *testing.T) {
	e := newEnv(t)
	for _, id := range []string{"00000000-0000-4000-8000-000000000000", strings.Repeat("a", 129), "x"} {
		_, _, err := e.eng.Get(t.Context(), acmeAdmin, id)
		assert.ErrorIs(t, err, engine.ErrNotFound, "%q", id)
	}
	_, _, err := e.eng.Get(t.Context(), acmeAdmin, "")
	assert.ErrorIs(t, err, engine.ErrMissingData)
}
