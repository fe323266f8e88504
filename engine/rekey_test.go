package engine_test

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/minikms/minikms/engine"
)

func rekey(t testing.TB, e *env, p engine.Principal, req engine.ReKeyRequest) *engine.Object {
	t.Helper()
	o, err := e.eng.ReKey(t.Context(), p, req)
	require.NoError(t, err)
	return o
}

func offset(d time.Duration) *time.Duration { return &d }

// material returns the key bytes of id.
func (e *env) material(t testing.TB, id string) []byte {
	t.Helper()
	_, m, err := e.eng.Get(t.Context(), acmeAdmin, id)
	require.NoError(t, err)
	return m.Bytes
}

// links returns the object's links of type lt.
func (e *env) links(t testing.TB, id string, lt engine.LinkType) []string {
	t.Helper()
	var out []string
	for _, a := range e.attrs(t, acmeAdmin, id, engine.AttrLink) {
		if l := a.Value.(engine.Link); l.LinkType == lt {
			out = append(out, l.LinkedObjectIdentifier)
		}
	}
	return out
}

// names returns the Name values of id with their indices.
func (e *env) names(t testing.TB, id string) map[int32]string {
	t.Helper()
	out := map[int32]string{}
	for _, a := range e.attrs(t, acmeAdmin, id, engine.AttrName) {
		out[*a.Index] = a.Value.(engine.Name).NameValue
	}
	return out
}

func TestReKeyReplacesTheKey(t *testing.T) {
	e := newEnv(t)
	params := engine.CryptographicParameters{BlockCipherMode: engine.ModeCBC, PaddingMethod: engine.PadPKCS5}
	old := e.create(t, acmeApp, aesAttrs(128,
		attr(engine.AttrName, name("payroll")),
		attr(engine.AttrName, name("payroll-alias")),
		attr(engine.AttrCryptographicUsageMask, engine.UsageEncrypt|engine.UsageDecrypt|engine.UsageWrapKey),
		attr(engine.AttrCryptographicParameters, params),
		attr(engine.AttrObjectGroup, "finance"),
		attr(engine.AttrContactInformation, "ops@example.com"),
		attr(engine.AttrSensitive, false),
		attr("x-team", textItem("blue")),
	)...)
	oldKey := e.material(t, old.ID)
	oldDigest, _ := e.value(t, acmeAdmin, old.ID, engine.AttrDigest)
	e.clock.Advance(time.Hour)

	nw := rekey(t, e, acmeApp, engine.ReKeyRequest{ID: old.ID})
	require.NotEqual(t, old.ID, nw.ID)
	fresh, _ := e.value(t, acmeAdmin, nw.ID, engine.AttrFresh)
	assert.Equal(t, true, fresh)

	// New material, same algorithm and length.
	newKey := e.material(t, nw.ID)
	assert.Len(t, newKey, 16)
	assert.NotEqual(t, oldKey, newKey)
	assert.Equal(t, oldKey, e.material(t, old.ID), "the existing key's material changed")
	v, _ := e.value(t, acmeAdmin, nw.ID, engine.AttrCryptographicAlgorithm)
	assert.Equal(t, engine.AlgAES, v)
	v, _ = e.value(t, acmeAdmin, nw.ID, engine.AttrCryptographicLength)
	assert.Equal(t, int32(128), v)

	// Names move, with their indices; links point both ways.
	assert.Equal(t, map[int32]string{0: "payroll", 1: "payroll-alias"}, e.names(t, nw.ID))
	assert.Empty(t, e.names(t, old.ID))
	assert.Equal(t, []string{nw.ID}, e.links(t, old.ID, engine.LinkReplacementObject))
	assert.Equal(t, []string{old.ID}, e.links(t, nw.ID, engine.LinkReplacedObject))
	assert.Empty(t, e.links(t, nw.ID, engine.LinkReplacementObject))
	assert.Equal(t, []string{nw.ID}, e.locate(t, acmeApp, attr(engine.AttrName, name("payroll"))))

	// Copied attributes.
	for n, want := range map[string]any{
		engine.AttrCryptographicUsageMask:  engine.UsageEncrypt | engine.UsageDecrypt | engine.UsageWrapKey,
		engine.AttrCryptographicParameters: params,
		engine.AttrObjectGroup:             "finance",
		engine.AttrContactInformation:      "ops@example.com",
		"x-team":                           textItem("blue"),
	} {
		got, ok := e.value(t, acmeAdmin, nw.ID, n)
		assert.True(t, ok, "%s not carried over", n)
		assert.Equal(t, want, got, n)
	}
	// Set anew.
	now := e.clock.Now()
	for _, n := range []string{engine.AttrInitialDate, engine.AttrLastChangeDate, engine.AttrOriginalCreationDate} {
		got, _ := e.value(t, acmeAdmin, nw.ID, n)
		assert.Equal(t, now, got, n)
	}
	newDigest, _ := e.value(t, acmeAdmin, nw.ID, engine.AttrDigest)
	assert.NotEqual(t, oldDigest, newDigest, "the Digest was copied, not recomputed")
	assert.Len(t, e.attrs(t, acmeAdmin, nw.ID, engine.AttrDigest), 1)
	// No dates: the replacement is Pre-Active, the existing key unchanged.
	assert.Equal(t, engine.StatePreActive, e.state(t, acmeAdmin, nw.ID))
	assert.Equal(t, engine.StatePreActive, e.state(t, acmeAdmin, old.ID))
	_, has := e.value(t, acmeAdmin, nw.ID, engine.AttrActivationDate)
	assert.False(t, has)
}

// A key that was used, revoked and compromised: none of its history is
// carried, and the replacement follows its own dates.
func TestReKeyDoesNotCarryHistory(t *testing.T) {
	e := newEnv(t)
	old := e.activeAES(t, acmeApp, 256, attr(engine.AttrName, name("leaked")))
	e.encrypt(t, acmeApp, old.ID, []byte("x")) // reserves AES-GCM invocations
	_, err := e.eng.Revoke(t.Context(), acmeAdmin, old.ID, compromise)
	require.NoError(t, err)
	require.Equal(t, engine.StateCompromised, e.state(t, acmeAdmin, old.ID))
	e.clock.Advance(time.Minute)

	nw := rekey(t, e, acmeAdmin, engine.ReKeyRequest{ID: old.ID})
	for _, n := range []string{
		engine.AttrCompromiseDate, engine.AttrCompromiseOccurrenceDate, engine.AttrRevocationReason,
		engine.AttrDestroyDate, engine.AttrGCMInvocations,
	} {
		_, has := e.value(t, acmeAdmin, nw.ID, n)
		assert.False(t, has, "%s was carried over", n)
	}
	_, has := e.value(t, acmeAdmin, old.ID, engine.AttrGCMInvocations)
	assert.True(t, has)
	// The Activation Date (set by Activate) is copied: the new key is
	// Active at once, the existing one stays Compromised (TC-93).
	assert.Equal(t, engine.StateActive, e.state(t, acmeAdmin, nw.ID))
	assert.Equal(t, engine.StateCompromised, e.state(t, acmeAdmin, old.ID))
	res := e.encrypt(t, acmeApp, nw.ID, []byte("with the replacement"))
	pt, err := e.decrypt(t, acmeApp, nw.ID, res)
	require.NoError(t, err)
	assert.Equal(t, "with the replacement", string(pt))
}

func TestReKeyOffsetMovesTheDates(t *testing.T) {
	e := newEnv(t)
	at1 := t0.Add(-time.Hour)
	old := e.create(t, acmeApp, aesAttrs(128,
		attr(engine.AttrActivationDate, at1),
		attr(engine.AttrProcessStartDate, at1.Add(10*time.Minute)),
		attr(engine.AttrProtectStopDate, at1.Add(24*time.Hour)),
		attr(engine.AttrDeactivationDate, at1.Add(48*time.Hour)),
	)...)
	e.clock.Advance(30 * time.Minute)
	now := e.clock.Now()

	later := rekey(t, e, acmeApp, engine.ReKeyRequest{ID: old.ID, Offset: offset(2 * time.Hour)})
	at2 := now.Add(2 * time.Hour)
	for n, want := range map[string]time.Time{
		engine.AttrInitialDate:      now,
		engine.AttrActivationDate:   at2,
		engine.AttrProcessStartDate: at2.Add(10 * time.Minute),
		engine.AttrProtectStopDate:  at2.Add(24 * time.Hour),
		engine.AttrDeactivationDate: at2.Add(48 * time.Hour),
	} {
		got, _ := e.value(t, acmeAdmin, later.ID, n)
		assert.Equal(t, want, got, n)
	}
	assert.Equal(t, engine.StatePreActive, e.state(t, acmeAdmin, later.ID))
	e.clock.Advance(2 * time.Hour)
	assert.Equal(t, engine.StateActive, e.state(t, acmeAdmin, later.ID), "the replacement activates at its Activation Date")

	// Offset zero: active at once (TC-92).
	now = e.clock.Now()
	at0 := rekey(t, e, acmeApp, engine.ReKeyRequest{ID: later.ID, Offset: offset(0)})
	got, _ := e.value(t, acmeAdmin, at0.ID, engine.AttrActivationDate)
	assert.Equal(t, now, got)
	got, _ = e.value(t, acmeAdmin, at0.ID, engine.AttrDeactivationDate)
	assert.Equal(t, now.Add(48*time.Hour), got)
	assert.Equal(t, engine.StateActive, e.state(t, acmeAdmin, at0.ID))

	// Without an Offset the dates are copied as they are.
	copied := rekey(t, e, acmeApp, engine.ReKeyRequest{ID: at0.ID})
	for _, n := range []string{engine.AttrActivationDate, engine.AttrProcessStartDate, engine.AttrProtectStopDate, engine.AttrDeactivationDate} {
		want, _ := e.value(t, acmeAdmin, at0.ID, n)
		got, _ := e.value(t, acmeAdmin, copied.ID, n)
		assert.Equal(t, want, got, n)
	}
}

// An expired key (Deactivation Date passed) re-keyed with Offset 0 gets
// a replacement that is Active, with the old key's validity period.
func TestReKeyExpiredKeyWithOffsetZero(t *testing.T) {
	e := newEnv(t)
	old := e.create(t, acmeApp, aesAttrs(128,
		attr(engine.AttrActivationDate, t0),
		attr(engine.AttrDeactivationDate, t0.Add(2*time.Minute)),
	)...)
	require.Equal(t, engine.StateActive, e.state(t, acmeAdmin, old.ID))
	e.clock.Advance(3 * time.Minute)
	require.Equal(t, engine.StateDeactivated, e.state(t, acmeAdmin, old.ID))

	nw := rekey(t, e, acmeApp, engine.ReKeyRequest{ID: old.ID, Offset: offset(0)})
	now := e.clock.Now()
	got, _ := e.value(t, acmeAdmin, nw.ID, engine.AttrActivationDate)
	assert.Equal(t, now, got)
	got, _ = e.value(t, acmeAdmin, nw.ID, engine.AttrDeactivationDate)
	assert.Equal(t, now.Add(2*time.Minute), got)
	assert.Equal(t, engine.StateActive, e.state(t, acmeAdmin, nw.ID))
	assert.Equal(t, engine.StateDeactivated, e.state(t, acmeAdmin, old.ID))
}

func TestReKeyTemplateAttributes(t *testing.T) {
	e := newEnv(t)
	old := e.activeAES(t, acmeApp, 128, attr(engine.AttrName, name("original")))
	newDates := []engine.Attribute{
		attr(engine.AttrActivationDate, t0.Add(-365*24*time.Hour)),
		attr(engine.AttrProcessStartDate, t0.Add(-365*24*time.Hour)),
		attr(engine.AttrProtectStopDate, t0.Add(365*24*time.Hour)),
		attr(engine.AttrDeactivationDate, t0.Add(365*24*time.Hour)),
	}
	nw := rekey(t, e, acmeApp, engine.ReKeyRequest{ID: old.ID, Attrs: append(newDates, attr(engine.AttrName, name("first-rekey")))})
	for _, a := range newDates {
		got, _ := e.value(t, acmeAdmin, nw.ID, a.Name)
		assert.Equal(t, a.Value, got, a.Name)
	}
	assert.Equal(t, map[int32]string{0: "original", 1: "first-rekey"}, e.names(t, nw.ID))

	// Chained (TC-REKEY-1-10): every replacement collects the names.
	second := rekey(t, e, acmeApp, engine.ReKeyRequest{ID: nw.ID, Attrs: []engine.Attribute{attr(engine.AttrName, name("second-rekey"))}})
	assert.Equal(t, map[int32]string{0: "original", 1: "first-rekey", 2: "second-rekey"}, e.names(t, second.ID))
	assert.Empty(t, e.names(t, nw.ID))
	assert.Equal(t, engine.StateActive, e.state(t, acmeAdmin, second.ID))
	assert.Equal(t, engine.StateActive, e.state(t, acmeAdmin, nw.ID), "the existing key's state changed")
}

func TestReKeyUsageLimits(t *testing.T) {
	e := newEnv(t)
	old := e.activeAES(t, acmeApp, 256, attr(engine.AttrUsageLimits, engine.UsageLimits{UsageLimitsTotal: 3, UsageLimitsUnit: 2}))
	for range 3 {
		e.encrypt(t, acmeApp, old.ID, []byte("x"))
	}
	_, err := e.eng.Encrypt(t.Context(), acmeApp, engine.EncryptRequest{ID: old.ID, Data: []byte("x")})
	require.ErrorIs(t, err, engine.ErrPermissionDenied)
	assert.Contains(t, err.Error(), "Usage Limits are exhausted")

	nw := rekey(t, e, acmeApp, engine.ReKeyRequest{ID: old.ID})
	v, _ := e.value(t, acmeAdmin, nw.ID, engine.AttrUsageLimits)
	ul := v.(engine.UsageLimits)
	assert.Equal(t, int64(3), ul.UsageLimitsTotal)
	assert.Equal(t, int64(3), *ul.UsageLimitsCount, "the replacement's count starts at the total")
	assert.Equal(t, uint32(2), ul.UsageLimitsUnit)
	v, _ = e.value(t, acmeAdmin, old.ID, engine.AttrUsageLimits)
	assert.Equal(t, int64(0), *v.(engine.UsageLimits).UsageLimitsCount, "the existing key's count was reset")
	e.encrypt(t, acmeApp, nw.ID, []byte("rotated"))

	// New limits can be given for the replacement.
	nw2 := rekey(t, e, acmeApp, engine.ReKeyRequest{ID: nw.ID, Attrs: []engine.Attribute{
		attr(engine.AttrUsageLimits, engine.UsageLimits{UsageLimitsTotal: 1000, UsageLimitsUnit: 1}),
	}})
	v, _ = e.value(t, acmeAdmin, nw2.ID, engine.AttrUsageLimits)
	ul = v.(engine.UsageLimits)
	assert.Equal(t, int64(1000), ul.UsageLimitsTotal)
	assert.Equal(t, int64(1000), *ul.UsageLimitsCount)
}

// Rotation by age: once the Protect Stop Date passes, Encrypt says so;
// the replacement (dates moved by the Offset) encrypts, and the old key
// still decrypts what it protected.
func TestReKeyRotationByAge(t *testing.T) {
	e := newEnv(t)
	old := e.create(t, acmeApp, aesAttrs(256,
		attr(engine.AttrActivationDate, t0),
		attr(engine.AttrProtectStopDate, t0.Add(24*time.Hour)),
	)...)
	res := e.encrypt(t, acmeApp, old.ID, []byte("before rotation"))
	e.clock.Advance(25 * time.Hour)
	_, err := e.eng.Encrypt(t.Context(), acmeApp, engine.EncryptRequest{ID: old.ID, Data: []byte("x")})
	require.ErrorIs(t, err, engine.ErrWrongState)
	assert.Contains(t, err.Error(), "Protect Stop Date has passed")

	nw := rekey(t, e, acmeApp, engine.ReKeyRequest{ID: old.ID, Offset: offset(0)})
	ps, _ := e.value(t, acmeAdmin, nw.ID, engine.AttrProtectStopDate)
	assert.Equal(t, e.clock.Now().Add(24*time.Hour), ps)
	e.encrypt(t, acmeApp, nw.ID, []byte("after rotation"))
	pt, err := e.decrypt(t, acmeApp, old.ID, res)
	require.NoError(t, err)
	assert.Equal(t, "before rotation", string(pt))
}

func TestReKeyRefusals(t *testing.T) {
	e := newEnv(t)
	k := e.create(t, acmeApp, aesAttrs(128, attr(engine.AttrName, name("kept")))...)
	ctx := t.Context()
	secret, err := e.eng.Register(ctx, acmeApp, engine.RegisterRequest{Type: engine.TypeSecretData,
		Material: engine.Material{Format: engine.FormatRaw, DataType: uint32(engine.SecretSeed), Bytes: []byte("0123456789abcdef")}})
	require.NoError(t, err)
	des, err := e.eng.Register(ctx, acmeApp, engine.RegisterRequest{Type: engine.TypeSymmetricKey, Algorithm: engine.AlgDES,
		Material: engine.Material{Format: engine.FormatRaw, Bytes: []byte("8bytes!!")}})
	require.NoError(t, err)
	destroyed := e.create(t, acmeApp, aesAttrs(128)...)
	_, err = e.eng.Destroy(ctx, acmeAdmin, destroyed.ID)
	require.NoError(t, err)

	for _, c := range []struct {
		name string
		p    engine.Principal
		req  engine.ReKeyRequest
		want error
		msg  string
	}{
		{"auditor", acmeAuditor, engine.ReKeyRequest{ID: k.ID}, engine.ErrPermissionDenied, "auditor"},
		{"other tenant", globexAdmin, engine.ReKeyRequest{ID: k.ID}, engine.ErrNotFound, ""},
		{"no such key", acmeApp, engine.ReKeyRequest{ID: "no-such-key"}, engine.ErrNotFound, ""},
		{"no identifier", acmeApp, engine.ReKeyRequest{}, engine.ErrMissingData, ""},
		{"secret data", acmeApp, engine.ReKeyRequest{ID: secret.ID}, engine.ErrIllegalOperation, "symmetric keys"},
		{"destroyed", acmeApp, engine.ReKeyRequest{ID: destroyed.ID}, engine.ErrWrongState, "destroyed"},
		{"DES", acmeApp, engine.ReKeyRequest{ID: des.ID}, engine.ErrNotSupported, "DES"},
		{"negative offset", acmeApp, engine.ReKeyRequest{ID: k.ID, Offset: offset(-time.Second)}, engine.ErrInvalidField, "negative"},
		{"other length", acmeApp, engine.ReKeyRequest{ID: k.ID, Attrs: []engine.Attribute{attr(engine.AttrCryptographicLength, int32(256))}}, engine.ErrInvalidField, "cannot be changed"},
		{"other algorithm", acmeApp, engine.ReKeyRequest{ID: k.ID, Attrs: []engine.Attribute{attr(engine.AttrCryptographicAlgorithm, engine.Alg3DES)}}, engine.ErrInvalidField, "cannot be changed"},
		{"server attribute", acmeApp, engine.ReKeyRequest{ID: k.ID, Attrs: []engine.Attribute{attr(engine.AttrInitialDate, t0)}}, engine.ErrInvalidField, "set by the server"},
		{"unknown attribute", acmeApp, engine.ReKeyRequest{ID: k.ID, Attrs: []engine.Attribute{attr("Colour", "red")}}, engine.ErrInvalidField, "unknown"},
		{"dates out of order", acmeApp, engine.ReKeyRequest{ID: k.ID, Attrs: []engine.Attribute{
			attr(engine.AttrActivationDate, t0), attr(engine.AttrDeactivationDate, t0.Add(-time.Hour))}}, engine.ErrInvalidField, "Deactivation Date"},
		{"unknown template", acmeApp, engine.ReKeyRequest{ID: k.ID, Templates: []string{"nope"}}, engine.ErrNotFound, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := e.eng.ReKey(ctx, c.p, c.req)
			require.ErrorIs(t, err, c.want)
			assert.Contains(t, err.Error(), c.msg)
		})
	}
	// Nothing changed on the key the refused requests named.
	assert.Equal(t, map[int32]string{0: "kept"}, e.names(t, k.ID))
	assert.Empty(t, e.links(t, k.ID, engine.LinkReplacementObject))
}

// Concurrent ReKeys of one key: each makes a replacement, but the names
// end up on exactly one of them.
func TestReKeyConcurrentNamesMoveOnce(t *testing.T) {
	e := newEnv(t)
	old := e.create(t, acmeApp, aesAttrs(128, attr(engine.AttrName, name("contended")))...)
	var wg sync.WaitGroup
	ids := make([]string, 6)
	for i := range ids {
		wg.Go(func() {
			o, err := e.eng.ReKey(context.Background(), acmeApp, engine.ReKeyRequest{ID: old.ID})
			if assert.NoError(t, err) {
				ids[i] = o.ID
			}
		})
	}
	wg.Wait()
	named := 0
	for _, id := range ids {
		if len(e.names(t, id)) > 0 {
			named++
		}
	}
	assert.Equal(t, 1, named)
	assert.Len(t, e.links(t, old.ID, engine.LinkReplacementObject), len(ids))
	assert.Len(t, e.locate(t, acmeApp, attr(engine.AttrName, name("contended"))), 1)
}

// failingCreates fails CreateObject while armed.
type failingCreates struct {
	engine.Store
	armed bool
}

func (s *failingCreates) CreateObject(ctx context.Context, o *engine.StoredObject) error {
	if s.armed {
		return errInjected
	}
	return s.Store.CreateObject(ctx, o)
}

// A replacement that cannot be stored leaves the existing key as it was.
func TestReKeyRollsBackWhenTheReplacementCannotBeStored(t *testing.T) {
	fs := &failingCreates{}
	e := newEnv(t, withStoreWrapper(func(s engine.Store) engine.Store { fs.Store = s; return fs }))
	old := e.create(t, acmeApp, aesAttrs(128, attr(engine.AttrName, name("a")), attr(engine.AttrName, name("b")))...)
	fs.armed = true
	_, err := e.eng.ReKey(t.Context(), acmeApp, engine.ReKeyRequest{ID: old.ID})
	require.ErrorIs(t, err, errInjected)
	fs.armed = false
	assert.Equal(t, map[int32]string{0: "a", 1: "b"}, e.names(t, old.ID))
	assert.Empty(t, e.links(t, old.ID, engine.LinkReplacementObject))
	assert.Equal(t, []string{old.ID}, e.locate(t, acmeApp, attr(engine.AttrName, name("a"))))
	// And a later ReKey works.
	nw := rekey(t, e, acmeApp, engine.ReKeyRequest{ID: old.ID})
	assert.Equal(t, map[int32]string{0: "a", 1: "b"}, e.names(t, nw.ID))
}

// The replacement's material never reaches the log.
func TestReKeyLogsNoMaterial(t *testing.T) {
	e := newEnv(t)
	old := e.create(t, acmeApp, aesAttrs(256)...)
	nw := rekey(t, e, acmeApp, engine.ReKeyRequest{ID: old.ID})
	assertNoSecret(t, e.logs.String(), e.material(t, nw.ID), "the log")
}

// ---- AES-GCM invocation bound ----

func gcmBound(t *testing.T, limit, block int64) {
	t.Helper()
	t.Cleanup(engine.SetGCMBoundForTest(limit, block))
}

// countingUpdates counts UpdateObject calls.
type countingUpdates struct {
	engine.Store
	mu      sync.Mutex
	updates int
}

func (s *countingUpdates) UpdateObject(ctx context.Context, o *engine.StoredObject, prevRev int64) error {
	s.mu.Lock()
	s.updates++
	s.mu.Unlock()
	return s.Store.UpdateObject(ctx, o, prevRev)
}

func (s *countingUpdates) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.updates
}

func TestGCMBoundRefusesOnceSpent(t *testing.T) {
	gcmBound(t, 10, 4)
	cs := &countingUpdates{}
	e := newEnv(t, withStoreWrapper(func(s engine.Store) engine.Store { cs.Store = s; return cs }))
	k := e.activeAES(t, acmeApp, 256)
	before := cs.count()
	var last engine.EncryptResult
	for i := range 10 {
		last = e.encrypt(t, acmeApp, k.ID, []byte{byte(i)})
	}
	// 10 invocations in blocks of 4: three writes (4, 8, 10).
	assert.Equal(t, 3, cs.count()-before, "one durable write per block")
	_, err := e.eng.Encrypt(t.Context(), acmeApp, engine.EncryptRequest{ID: k.ID, Data: []byte("one too many")})
	require.ErrorIs(t, err, engine.ErrPermissionDenied)
	assert.Contains(t, err.Error(), "ReKey")
	assert.Contains(t, err.Error(), "SP 800-38D")
	o, _, err := e.eng.GetAttributes(t.Context(), acmeAdmin, k.ID, nil)
	require.NoError(t, err)
	assert.Equal(t, int64(10), engine.GCMReservedForTest(o))

	// Decryption, other modes and client-supplied IVs are not counted.
	pt, err := e.decrypt(t, acmeApp, k.ID, last)
	require.NoError(t, err)
	assert.Equal(t, []byte{9}, pt)
	_, err = e.eng.Encrypt(t.Context(), acmeApp, engine.EncryptRequest{ID: k.ID, Data: []byte("client IV"), IV: bytes.Repeat([]byte{7}, 12)})
	require.NoError(t, err)
	_, err = e.eng.Encrypt(t.Context(), acmeApp, engine.EncryptRequest{ID: k.ID, Data: make([]byte, 16), Params: params(engine.ModeCBC, engine.PadNone)})
	require.NoError(t, err)

	// A restart does not forget it.
	e.reopen(t)
	_, err = e.eng.Encrypt(t.Context(), acmeApp, engine.EncryptRequest{ID: k.ID, Data: []byte("after restart")})
	require.ErrorIs(t, err, engine.ErrPermissionDenied)

	// The replacement starts afresh.
	nw := rekey(t, e, acmeApp, engine.ReKeyRequest{ID: k.ID})
	e.encrypt(t, acmeApp, nw.ID, []byte("rotated"))
}

// A crash loses the unspent part of a block: the count only goes up, so
// the limit holds across any number of restarts.
func TestGCMBoundNeverUnderCountsAcrossRestarts(t *testing.T) {
	gcmBound(t, 20, 8)
	e := newEnv(t)
	k := e.activeAES(t, acmeApp, 256)
	done := 0
	for round := 0; round < 10; round++ {
		for range 3 {
			if _, err := e.eng.Encrypt(t.Context(), acmeApp, engine.EncryptRequest{ID: k.ID, Data: []byte("x")}); err == nil {
				done++
			} else {
				require.ErrorIs(t, err, engine.ErrPermissionDenied)
			}
		}
		e.reopen(t)
	}
	assert.LessOrEqual(t, done, 20)
	// 3 per round from a fresh block of 8: rounds 1-2 reserve 8 each,
	// round 3 the last 4; then nothing.
	assert.Equal(t, 9, done)
}

// Concurrent encryptions on two engines sharing one store (two server
// processes) never exceed the limit, and one engine alone uses it all.
func TestGCMBoundConcurrentAndMultiProcess(t *testing.T) {
	gcmBound(t, 200, 16)
	e := newEnv(t)
	k := e.activeAES(t, acmeApp, 256)
	other, err := engine.Open(t.Context(), engine.Config{Store: e.store, Keyring: e.kr, Salt: e.salt, Now: e.clock.Now})
	require.NoError(t, err)
	t.Cleanup(other.Close)

	var mu sync.Mutex
	ok, refused := 0, 0
	var wg sync.WaitGroup
	for i := range 8 {
		eng := e.eng
		if i%2 == 1 {
			eng = other
		}
		wg.Go(func() {
			for range 40 {
				_, err := eng.Encrypt(context.Background(), acmeApp, engine.EncryptRequest{ID: k.ID, Data: []byte("x")})
				mu.Lock()
				switch {
				case err == nil:
					ok++
				case errors.Is(err, engine.ErrPermissionDenied) && strings.Contains(err.Error(), "ReKey"):
					refused++
				default:
					t.Errorf("unexpected error: %v", err)
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	assert.Equal(t, 320, ok+refused)
	assert.LessOrEqual(t, ok, 200)
	// At most one partly spent block per engine is lost.
	assert.GreaterOrEqual(t, ok, 200-2*16)
}

// BenchmarkEncryptAESGCM32ClientIV encrypts with a client-supplied IV,
// which skips the AES-GCM invocation accounting; compare it with
// BenchmarkEncryptAESGCM32 (server-drawn IV, counted) in the same run to
// see what the accounting costs per call.
func BenchmarkEncryptAESGCM32ClientIV(b *testing.B) {
	e, id := benchKey(b)
	ctx := context.Background()
	req := engine.EncryptRequest{ID: id, Data: make([]byte, 32), IV: make([]byte, 12)}
	b.SetBytes(32)
	for b.Loop() {
		if _, err := e.eng.Encrypt(ctx, acmeApp, req); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkReKey(b *testing.B) {
	e := newEnv(b)
	id := e.create(b, acmeApp, aesAttrs(256, attr(engine.AttrName, name("bench")))...).ID
	ctx := context.Background()
	for b.Loop() {
		o, err := e.eng.ReKey(ctx, acmeApp, engine.ReKeyRequest{ID: id})
		if err != nil {
			b.Fatal(err)
		}
		id = o.ID
	}
}
