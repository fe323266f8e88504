package engine_test

import (
	"bytes"
	"encoding/hex"
	"math/big"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/minikms/minikms/engine"
)

func mustHex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	require.NoError(t, err)
	return b
}

// registerPart registers one split key part.
func (e *env) registerPart(t testing.TB, in engine.SplitKeyInfo, share []byte) (*engine.Object, error) {
	t.Helper()
	return e.eng.RegisterSplitKey(t.Context(), acmeAdmin, engine.RegisterRequest{Type: engine.TypeSplitKey}, in, bytes.Clone(share))
}

func (e *env) join(t testing.TB, ids ...string) (*engine.Object, []byte, error) {
	t.Helper()
	o, err := e.eng.JoinSplitKey(t.Context(), acmeAdmin, engine.JoinSplitKeyRequest{
		Type: engine.TypeSymmetricKey, IDs: ids, Attrs: aesAttrs(128),
	})
	if err != nil {
		return nil, nil, err
	}
	_, m, err := e.eng.Get(t.Context(), acmeAdmin, o.ID)
	require.NoError(t, err)
	return o, m.Bytes, nil
}

// The shares of the OASIS vectors TC-SJ-2-12 / TC-SJ-3-12: a 2-of-4
// GF(2^8) split of 0102…10 (the AES field, Key Part Identifier as x).
func TestJoinSplitKeyOASISShares(t *testing.T) {
	e := newEnv(t)
	shares := []string{"66C46A7754F94DE420C7B1A7FFF5EC56", "CF93D1E2A7E593CD5B8D6247F4E5D49C", "A855B891F61AD9217240D8EC061E37DA", "803DBAD55CDD329FAD19D99AE2C5A415"}
	var ids []string
	for i, s := range shares {
		o, err := e.registerPart(t, engine.SplitKeyInfo{Parts: 4, PartID: int32(i + 1), Threshold: 2, Method: engine.SplitGF28}, mustHex(t, s))
		require.NoError(t, err)
		ids = append(ids, o.ID)
	}
	want := mustHex(t, "0102030405060708090a0b0c0d0e0f10")
	for _, pair := range [][]string{{ids[0], ids[2]}, {ids[1], ids[3]}, {ids[3], ids[0]}, ids} {
		o, key, err := e.join(t, pair...)
		require.NoError(t, err)
		assert.Equal(t, want, key)
		assert.Equal(t, engine.AlgAES, o.Attrs.Algorithm())
		assert.Len(t, o.Attrs.Get(engine.AttrLink), len(pair))
	}
	_, _, err := e.join(t, ids[1])
	assert.ErrorIs(t, err, engine.ErrCryptoFailure)
	_, _, err = e.join(t, ids[1], ids[1])
	assert.ErrorIs(t, err, engine.ErrInvalidField)

	// The part's Get returns the share and its description.
	_, m, err := e.eng.Get(t.Context(), acmeAdmin, ids[2])
	require.NoError(t, err)
	in, share, err := engine.DecodeSplitKey(m)
	require.NoError(t, err)
	assert.Equal(t, engine.SplitKeyInfo{Parts: 4, PartID: 3, Threshold: 2, Method: engine.SplitGF28}, in)
	assert.Equal(t, mustHex(t, shares[2]), share)
}

func TestSplitJoinRoundTrip(t *testing.T) {
	e := newEnv(t)
	key := randomBytes(t, 32)
	base := e.registerKey(t, acmeAdmin, engine.AlgAES, key)
	prime, ok := new(big.Int).SetString("115792089237316195423570985008687907853269984665640564039457584007913129640233", 10) // 2^256+297
	require.True(t, ok)
	for _, tc := range []struct {
		method          engine.SplitKeyMethod
		parts, thresh   int32
		prime           *big.Int
		subset          []int
		tooFew          []int
		shareLen        int
		distinctFromKey bool
	}{
		{engine.SplitXOR, 4, 4, nil, []int{3, 1, 0, 2}, []int{0, 1, 2}, 32, true},
		{engine.SplitGF28, 5, 3, nil, []int{4, 0, 2}, []int{1, 3}, 32, true},
		{engine.SplitGF216, 7, 4, nil, []int{6, 5, 1, 0}, []int{0, 1, 2}, 32, true},
		{engine.SplitPrimeField, 5, 2, prime, []int{3, 4}, []int{2}, 33, true},
		{engine.SplitGF28, 200, 200, nil, nil, []int{0}, 32, true},
	} {
		t.Run(tc.method.String(), func(t *testing.T) {
			parts, err := e.eng.CreateSplitKey(t.Context(), acmeAdmin, engine.CreateSplitKeyRequest{
				Type: engine.TypeSplitKey, BaseID: base.ID, Parts: tc.parts, Threshold: tc.thresh, Method: tc.method, PrimeFieldSize: tc.prime,
			})
			require.NoError(t, err)
			require.Len(t, parts, int(tc.parts))
			ids := make([]string, len(parts))
			for i, p := range parts {
				ids[i] = p.ID
				assert.Equal(t, engine.TypeSplitKey, p.Type)
				assert.Equal(t, engine.AlgAES, p.Attrs.Algorithm())
				assert.Equal(t, int32(256), p.Attrs.Length())
				_, m, err := e.eng.Get(t.Context(), acmeAdmin, p.ID)
				require.NoError(t, err)
				in, share, err := engine.DecodeSplitKey(m)
				require.NoError(t, err)
				assert.Equal(t, int32(i+1), in.PartID)
				assert.Len(t, share, tc.shareLen)
				assert.NotEqual(t, key, share, "a share must not be the key")
			}
			subset := tc.subset
			if subset == nil {
				for i := range ids {
					subset = append(subset, i)
				}
			}
			var pick []string
			for _, i := range subset {
				pick = append(pick, ids[i])
			}
			o, err := e.eng.JoinSplitKey(t.Context(), acmeAdmin, engine.JoinSplitKeyRequest{Type: engine.TypeSymmetricKey, IDs: pick})
			require.NoError(t, err)
			_, m, err := e.eng.Get(t.Context(), acmeAdmin, o.ID)
			require.NoError(t, err)
			assert.Equal(t, key, m.Bytes)
			assert.Equal(t, int32(256), o.Attrs.Length())

			var few []string
			for _, i := range tc.tooFew {
				few = append(few, ids[i])
			}
			_, err = e.eng.JoinSplitKey(t.Context(), acmeAdmin, engine.JoinSplitKeyRequest{Type: engine.TypeSymmetricKey, IDs: few})
			assert.ErrorIs(t, err, engine.ErrCryptoFailure)
		})
	}
	// The base links to every part it was split into.
	n := 0
	for _, l := range e.attrs(t, acmeAdmin, base.ID, engine.AttrLink) {
		if l.Value.(engine.Link).LinkType == engine.LinkChild {
			n++
		}
	}
	assert.Equal(t, 4+5+7+5+200, n)
}

func TestCreateSplitKeyGeneratesKey(t *testing.T) {
	e := newEnv(t)
	parts, err := e.eng.CreateSplitKey(t.Context(), acmeAdmin, engine.CreateSplitKeyRequest{
		Type: engine.TypeSplitKey, Parts: 3, Threshold: 2, Method: engine.SplitGF28, Attrs: aesAttrs(192),
	})
	require.NoError(t, err)
	require.Len(t, parts, 3)
	o, err := e.eng.JoinSplitKey(t.Context(), acmeAdmin, engine.JoinSplitKeyRequest{Type: engine.TypeSecretData, IDs: []string{parts[2].ID, parts[0].ID}})
	require.NoError(t, err)
	assert.Equal(t, engine.TypeSecretData, o.Type)
	_, m, err := e.eng.Get(t.Context(), acmeAdmin, o.ID)
	require.NoError(t, err)
	assert.Len(t, m.Bytes, 24)

	_, err = e.eng.CreateSplitKey(t.Context(), acmeAdmin, engine.CreateSplitKeyRequest{Type: engine.TypeSplitKey, Parts: 3, Threshold: 2, Method: engine.SplitGF28})
	assert.ErrorIs(t, err, engine.ErrMissingData)
}

func TestSplitKeyRefusals(t *testing.T) {
	e := newEnv(t)
	key := e.registerKey(t, acmeAdmin, engine.AlgAES, randomBytes(t, 16))
	sensitive := e.registerKey(t, acmeAdmin, engine.AlgAES, randomBytes(t, 16), attr(engine.AttrSensitive, true))
	req := func(mut func(*engine.CreateSplitKeyRequest)) error {
		r := engine.CreateSplitKeyRequest{Type: engine.TypeSplitKey, BaseID: key.ID, Parts: 3, Threshold: 2, Method: engine.SplitGF28}
		mut(&r)
		_, err := e.eng.CreateSplitKey(t.Context(), acmeAdmin, r)
		return err
	}
	small := big.NewInt(65537)
	for name, tc := range map[string]struct {
		mut  func(*engine.CreateSplitKeyRequest)
		want error
	}{
		"threshold above parts": {func(r *engine.CreateSplitKeyRequest) { r.Threshold = 4 }, engine.ErrInvalidField},
		"too many parts":        {func(r *engine.CreateSplitKeyRequest) { r.Parts = 256 }, engine.ErrInvalidField},
		"negative parts":        {func(r *engine.CreateSplitKeyRequest) { r.Parts = -1 }, engine.ErrInvalidField},
		"no method":             {func(r *engine.CreateSplitKeyRequest) { r.Method = 0 }, engine.ErrMissingData},
		"undefined method":      {func(r *engine.CreateSplitKeyRequest) { r.Method = 9 }, engine.ErrInvalidField},
		"xor below parts":       {func(r *engine.CreateSplitKeyRequest) { r.Method = engine.SplitXOR }, engine.ErrInvalidField},
		"prime missing":         {func(r *engine.CreateSplitKeyRequest) { r.Method = engine.SplitPrimeField }, engine.ErrMissingData},
		"prime not prime": {func(r *engine.CreateSplitKeyRequest) {
			r.Method, r.PrimeFieldSize = engine.SplitPrimeField, big.NewInt(65536*65536)
		}, engine.ErrInvalidField},
		"prime too small":         {func(r *engine.CreateSplitKeyRequest) { r.Method, r.PrimeFieldSize = engine.SplitPrimeField, small }, engine.ErrInvalidField},
		"prime with gf":           {func(r *engine.CreateSplitKeyRequest) { r.PrimeFieldSize = small }, engine.ErrInvalidField},
		"wrong object type":       {func(r *engine.CreateSplitKeyRequest) { r.Type = engine.TypeSymmetricKey }, engine.ErrInvalidField},
		"sensitive key":           {func(r *engine.CreateSplitKeyRequest) { r.BaseID = sensitive.ID }, engine.ErrSensitive},
		"unknown key":             {func(r *engine.CreateSplitKeyRequest) { r.BaseID = "nope" }, engine.ErrNotFound},
		"template length differs": {func(r *engine.CreateSplitKeyRequest) { r.Attrs = aesAttrs(256) }, engine.ErrInvalidField},
	} {
		t.Run(name, func(t *testing.T) { assert.ErrorIs(t, req(tc.mut), tc.want) })
	}
	_, err := e.eng.CreateSplitKey(t.Context(), acmeAuditor, engine.CreateSplitKeyRequest{Type: engine.TypeSplitKey, BaseID: key.ID, Parts: 3, Threshold: 2, Method: engine.SplitGF28})
	assert.ErrorIs(t, err, engine.ErrPermissionDenied)

	// Registration checks the part's fields.
	for name, in := range map[string]engine.SplitKeyInfo{
		"id above parts": {Parts: 2, PartID: 3, Threshold: 2, Method: engine.SplitGF28},
		"id zero":        {Parts: 2, PartID: 0, Threshold: 2, Method: engine.SplitGF28},
		"odd gf16 share": {Parts: 2, PartID: 1, Threshold: 2, Method: engine.SplitGF216},
	} {
		_, err := e.registerPart(t, in, []byte{1, 2, 3})
		assert.ErrorIs(t, err, engine.ErrInvalidField, name)
	}
	// Parts of different splits do not join; a key is not a part.
	a, err := e.registerPart(t, engine.SplitKeyInfo{Parts: 2, PartID: 1, Threshold: 2, Method: engine.SplitGF28}, randomBytes(t, 16))
	require.NoError(t, err)
	b, err := e.registerPart(t, engine.SplitKeyInfo{Parts: 3, PartID: 2, Threshold: 2, Method: engine.SplitGF28}, randomBytes(t, 16))
	require.NoError(t, err)
	_, _, err = e.join(t, a.ID, b.ID)
	assert.ErrorIs(t, err, engine.ErrInvalidField)
	_, _, err = e.join(t, a.ID, key.ID)
	assert.ErrorIs(t, err, engine.ErrIllegalOperation)
	_, err = e.eng.JoinSplitKey(t.Context(), acmeAdmin, engine.JoinSplitKeyRequest{Type: engine.TypePrivateKey, IDs: []string{a.ID}})
	assert.ErrorIs(t, err, engine.ErrNotSupported)
}
