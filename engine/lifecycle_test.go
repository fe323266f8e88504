package engine_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/minikms/minikms/engine"
)

var (
	compromise    = engine.RevokeRequest{Reason: engine.RevocationReason{RevocationReasonCode: engine.RevokeKeyCompromise, RevocationMessage: "leaked"}}
	caCompromise  = engine.RevokeRequest{Reason: engine.RevocationReason{RevocationReasonCode: engine.RevokeCACompromise}}
	superseded    = engine.RevokeRequest{Reason: engine.RevocationReason{RevocationReasonCode: engine.RevokeSuperseded, RevocationMessage: "rotated"}}
	cessation     = engine.RevokeRequest{Reason: engine.RevocationReason{RevocationReasonCode: engine.RevokeCessationOfOperation}}
	unspecifiedRR = engine.RevokeRequest{Reason: engine.RevocationReason{RevocationReasonCode: engine.RevokeUnspecified}}
)

// inState makes an AES key in the given state through the KMIP
// transitions.
func (e *env) inState(t testing.TB, s engine.State) *engine.Object {
	t.Helper()
	ctx := t.Context()
	o := e.create(t, acmeAdmin, aesAttrs(128)...)
	var err error
	switch s {
	case engine.StatePreActive:
	case engine.StateActive:
		_, err = e.eng.Activate(ctx, acmeAdmin, o.ID)
	case engine.StateDeactivated:
		_, err = e.eng.Activate(ctx, acmeAdmin, o.ID)
		require.NoError(t, err)
		_, err = e.eng.Revoke(ctx, acmeAdmin, o.ID, superseded)
	case engine.StateCompromised:
		_, err = e.eng.Revoke(ctx, acmeAdmin, o.ID, compromise)
	case engine.StateDestroyed:
		_, err = e.eng.Destroy(ctx, acmeAdmin, o.ID)
	case engine.StateDestroyedCompromised:
		_, err = e.eng.Destroy(ctx, acmeAdmin, o.ID)
		require.NoError(t, err)
		_, err = e.eng.Revoke(ctx, acmeAdmin, o.ID, compromise)
	}
	require.NoError(t, err)
	require.Equal(t, s, e.state(t, acmeAdmin, o.ID))
	return o
}

var allStates = []engine.State{
	engine.StatePreActive, engine.StateActive, engine.StateDeactivated,
	engine.StateCompromised, engine.StateDestroyed, engine.StateDestroyedCompromised,
}

// TestLifecycleTransitions runs every operation from every state: the
// KMIP 1.4 state machine (§3.22, transitions 1–9).
func TestLifecycleTransitions(t *testing.T) {
	type op struct {
		name string
		do   func(e *env, t *testing.T, id string) (*engine.Object, error)
	}
	activate := op{"Activate", func(e *env, t *testing.T, id string) (*engine.Object, error) {
		return e.eng.Activate(t.Context(), acmeAdmin, id)
	}}
	revoke := func(name string, r engine.RevokeRequest) op {
		return op{name, func(e *env, t *testing.T, id string) (*engine.Object, error) {
			return e.eng.Revoke(t.Context(), acmeAdmin, id, r)
		}}
	}
	destroy := op{"Destroy", func(e *env, t *testing.T, id string) (*engine.Object, error) {
		return e.eng.Destroy(t.Context(), acmeAdmin, id)
	}}
	const wrong = engine.State(0) // ErrWrongState expected
	table := []struct {
		op   op
		want map[engine.State]engine.State
	}{
		{activate, map[engine.State]engine.State{
			engine.StatePreActive: engine.StateActive, engine.StateActive: wrong, engine.StateDeactivated: wrong,
			engine.StateCompromised: wrong, engine.StateDestroyed: wrong, engine.StateDestroyedCompromised: wrong}},
		{revoke("Revoke key compromise", compromise), map[engine.State]engine.State{
			engine.StatePreActive: engine.StateCompromised, engine.StateActive: engine.StateCompromised,
			engine.StateDeactivated: engine.StateCompromised, engine.StateCompromised: wrong,
			engine.StateDestroyed: engine.StateDestroyedCompromised, engine.StateDestroyedCompromised: wrong}},
		{revoke("Revoke CA compromise", caCompromise), map[engine.State]engine.State{
			engine.StatePreActive: engine.StateCompromised, engine.StateActive: engine.StateCompromised,
			engine.StateDeactivated: engine.StateCompromised, engine.StateCompromised: wrong,
			engine.StateDestroyed: engine.StateDestroyedCompromised, engine.StateDestroyedCompromised: wrong}},
		{revoke("Revoke superseded", superseded), map[engine.State]engine.State{
			engine.StatePreActive: engine.StateDeactivated, engine.StateActive: engine.StateDeactivated,
			engine.StateDeactivated: wrong, engine.StateCompromised: wrong, engine.StateDestroyed: wrong,
			engine.StateDestroyedCompromised: wrong}},
		{revoke("Revoke cessation of operation", cessation), map[engine.State]engine.State{
			engine.StatePreActive: engine.StateDeactivated, engine.StateActive: engine.StateDeactivated,
			engine.StateDeactivated: wrong, engine.StateCompromised: wrong, engine.StateDestroyed: wrong,
			engine.StateDestroyedCompromised: wrong}},
		{revoke("Revoke unspecified", unspecifiedRR), map[engine.State]engine.State{
			engine.StatePreActive: engine.StateDeactivated, engine.StateActive: engine.StateDeactivated,
			engine.StateDeactivated: wrong, engine.StateCompromised: wrong, engine.StateDestroyed: wrong,
			engine.StateDestroyedCompromised: wrong}},
		{destroy, map[engine.State]engine.State{
			engine.StatePreActive: engine.StateDestroyed, engine.StateActive: wrong,
			engine.StateDeactivated: engine.StateDestroyed, engine.StateCompromised: engine.StateDestroyedCompromised,
			engine.StateDestroyed: wrong, engine.StateDestroyedCompromised: wrong}},
	}
	e := newEnv(t)
	for _, row := range table {
		for _, from := range allStates {
			want := row.want[from]
			t.Run(row.op.name+" from "+from.String(), func(t *testing.T) {
				o := e.inState(t, from)
				before := e.stored(t, "acme", o.ID)
				got, err := row.op.do(e, t, o.ID)
				if want == wrong {
					require.ErrorIs(t, err, engine.ErrWrongState)
					assert.Nil(t, got)
					after := e.stored(t, "acme", o.ID)
					assert.Equal(t, before.Rev, after.Rev, "a refused transition wrote")
					assert.Equal(t, from, e.state(t, acmeAdmin, o.ID))
					return
				}
				require.NoError(t, err)
				assert.Equal(t, want, got.State)
				assert.Equal(t, want, e.state(t, acmeAdmin, o.ID))
				assert.Equal(t, want, e.stored(t, "acme", o.ID).State, "stored state")
			})
		}
	}
}

func TestLifecycleDates(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	dateOf := func(id, name string) time.Time {
		v, ok := e.value(t, acmeAdmin, id, name)
		require.True(t, ok, "%s not set", name)
		return v.(time.Time)
	}

	o := e.create(t, acmeAdmin, aesAttrs(256)...)
	tAct := e.clock.Advance(time.Minute)
	_, err := e.eng.Activate(ctx, acmeAdmin, o.ID)
	require.NoError(t, err)
	assert.Equal(t, tAct, dateOf(o.ID, engine.AttrActivationDate))

	tDeact := e.clock.Advance(time.Minute)
	_, err = e.eng.Revoke(ctx, acmeAdmin, o.ID, superseded)
	require.NoError(t, err)
	assert.Equal(t, tDeact, dateOf(o.ID, engine.AttrDeactivationDate))
	rr, _ := e.value(t, acmeAdmin, o.ID, engine.AttrRevocationReason)
	assert.Equal(t, superseded.Reason, rr)

	occurred := tDeact.Add(-24 * time.Hour)
	tComp := e.clock.Advance(time.Minute)
	_, err = e.eng.Revoke(ctx, acmeAdmin, o.ID, engine.RevokeRequest{Reason: compromise.Reason, CompromiseOccurrence: &occurred})
	require.NoError(t, err)
	assert.Equal(t, tComp, dateOf(o.ID, engine.AttrCompromiseDate))
	assert.Equal(t, occurred, dateOf(o.ID, engine.AttrCompromiseOccurrenceDate))
	rr, _ = e.value(t, acmeAdmin, o.ID, engine.AttrRevocationReason)
	assert.Equal(t, compromise.Reason, rr)
	assert.Equal(t, tDeact, dateOf(o.ID, engine.AttrDeactivationDate), "compromise keeps the Deactivation Date")

	tDestroy := e.clock.Advance(time.Minute)
	_, err = e.eng.Destroy(ctx, acmeAdmin, o.ID)
	require.NoError(t, err)
	assert.Equal(t, tDestroy, dateOf(o.ID, engine.AttrDestroyDate))
	v, _ := e.value(t, acmeAdmin, o.ID, engine.AttrKeyValuePresent)
	assert.Equal(t, false, v)
	assert.Equal(t, engine.StateDestroyedCompromised, e.state(t, acmeAdmin, o.ID))
	assert.Nil(t, e.stored(t, "acme", o.ID).Wrapped, "destroyed material is still stored")
	assert.Equal(t, tDestroy, dateOf(o.ID, engine.AttrLastChangeDate))

	// Compromise without an occurrence date: now.
	p := e.create(t, acmeAdmin, aesAttrs(128)...)
	tc := e.clock.Advance(time.Minute)
	_, err = e.eng.Revoke(ctx, acmeAdmin, p.ID, caCompromise)
	require.NoError(t, err)
	assert.Equal(t, tc, dateOf(p.ID, engine.AttrCompromiseOccurrenceDate))
	assert.Equal(t, tc, dateOf(p.ID, engine.AttrCompromiseDate))

	// A future Deactivation Date is brought forward by a revocation; a
	// past one is kept.
	q := e.activeAES(t, acmeAdmin, 128, attr(engine.AttrDeactivationDate, e.clock.Now().Add(time.Hour)))
	tr := e.clock.Advance(time.Minute)
	_, err = e.eng.Revoke(ctx, acmeAdmin, q.ID, cessation)
	require.NoError(t, err)
	assert.Equal(t, tr, dateOf(q.ID, engine.AttrDeactivationDate))
}

func TestRevokeRejects(t *testing.T) {
	e := newEnv(t)
	o := e.activeAES(t, acmeAdmin, 128)
	for _, code := range []engine.RevocationReasonCode{0, 8, 0xFF} {
		_, err := e.eng.Revoke(t.Context(), acmeAdmin, o.ID, engine.RevokeRequest{Reason: engine.RevocationReason{RevocationReasonCode: code}})
		assert.ErrorIs(t, err, engine.ErrInvalidField, "code %d", code)
	}
	_, err := e.eng.Revoke(t.Context(), acmeAdmin, o.ID, engine.RevokeRequest{Reason: engine.RevocationReason{
		RevocationReasonCode: engine.RevokeSuperseded, RevocationMessage: "\xff\xfe"}})
	assert.ErrorIs(t, err, engine.ErrInvalidField)
	assert.Equal(t, engine.StateActive, e.state(t, acmeAdmin, o.ID))
}

func TestOpaqueObjectLifecycle(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	op, err := e.eng.Register(ctx, acmeAdmin, engine.RegisterRequest{Type: engine.TypeOpaqueObject,
		Material: engine.Material{Format: engine.FormatOpaque, Bytes: []byte("blob")}})
	require.NoError(t, err)
	_, err = e.eng.Activate(ctx, acmeAdmin, op.ID)
	assert.ErrorIs(t, err, engine.ErrIllegalOperation)
	_, err = e.eng.Revoke(ctx, acmeAdmin, op.ID, compromise)
	assert.ErrorIs(t, err, engine.ErrIllegalOperation)
	_, err = e.eng.Destroy(ctx, acmeAdmin, op.ID)
	require.NoError(t, err)
	_, err = e.eng.Destroy(ctx, acmeAdmin, op.ID)
	assert.ErrorIs(t, err, engine.ErrWrongState)
	_, _, err = e.eng.Get(ctx, acmeAdmin, op.ID)
	assert.Error(t, err)
	assert.Nil(t, e.stored(t, "acme", op.ID).Wrapped)
}

func TestDateDrivenActivation(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	start := e.clock.Now()
	o := e.create(t, acmeAdmin, aesAttrs(256, attr(engine.AttrActivationDate, start.Add(time.Hour)))...)
	require.Equal(t, engine.StatePreActive, o.State)

	_, err := e.eng.Encrypt(ctx, acmeApp, engine.EncryptRequest{ID: o.ID, Data: []byte("early")})
	require.ErrorIs(t, err, engine.ErrWrongState)
	assert.Equal(t, []string{o.ID}, e.locate(t, acmeAdmin, attr(engine.AttrState, engine.StatePreActive)))
	assert.Empty(t, e.locate(t, acmeAdmin, attr(engine.AttrState, engine.StateActive)))

	e.clock.Advance(time.Hour - time.Second)
	assert.Equal(t, engine.StatePreActive, o.EffectiveState(e.clock.Now()))
	assert.Equal(t, engine.StatePreActive, e.state(t, acmeAdmin, o.ID))

	now := e.clock.Advance(time.Second)
	assert.Equal(t, engine.StateActive, o.EffectiveState(now), "EffectiveState at the Activation Date")
	assert.Equal(t, engine.StateActive, e.state(t, acmeAdmin, o.ID), "GetAttributes State")
	assert.Equal(t, engine.StatePreActive, e.stored(t, "acme", o.ID).State, "no write needed for the date to take effect")
	res := e.encrypt(t, acmeApp, o.ID, []byte("on time"))
	pt, err := e.decrypt(t, acmeApp, o.ID, res)
	require.NoError(t, err)
	assert.Equal(t, "on time", string(pt))
	assert.Equal(t, []string{o.ID}, e.locate(t, acmeAdmin, attr(engine.AttrState, engine.StateActive)))
	assert.Empty(t, e.locate(t, acmeAdmin, attr(engine.AttrState, engine.StatePreActive)))

	// It became Active by date: Activate has nothing to do, and an Active
	// key cannot be destroyed.
	_, err = e.eng.Activate(ctx, acmeAdmin, o.ID)
	assert.ErrorIs(t, err, engine.ErrWrongState)
	_, err = e.eng.Destroy(ctx, acmeAdmin, o.ID)
	assert.ErrorIs(t, err, engine.ErrWrongState)
}

func TestDateDrivenDeactivation(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	start := e.clock.Now()
	o := e.activeAES(t, acmeAdmin, 256, attr(engine.AttrDeactivationDate, start.Add(2*time.Hour)))
	res := e.encrypt(t, acmeApp, o.ID, []byte("before"))

	e.clock.Advance(2 * time.Hour)
	assert.Equal(t, engine.StateDeactivated, e.state(t, acmeAdmin, o.ID))
	_, err := e.eng.Encrypt(ctx, acmeApp, engine.EncryptRequest{ID: o.ID, Data: []byte("after")})
	require.ErrorIs(t, err, engine.ErrWrongState)
	pt, err := e.decrypt(t, acmeApp, o.ID, res)
	require.NoError(t, err, "a Deactivated key still decrypts")
	assert.Equal(t, "before", string(pt))
	assert.Equal(t, []string{o.ID}, e.locate(t, acmeAdmin, attr(engine.AttrState, engine.StateDeactivated)))

	// Date-deactivated keys can be destroyed without a Revoke.
	_, err = e.eng.Destroy(ctx, acmeAdmin, o.ID)
	require.NoError(t, err)
	assert.Equal(t, engine.StateDestroyed, e.state(t, acmeAdmin, o.ID))

	// Activation and Deactivation both passed while nobody looked.
	p := e.create(t, acmeAdmin, aesAttrs(128,
		attr(engine.AttrActivationDate, e.clock.Now().Add(time.Minute)),
		attr(engine.AttrDeactivationDate, e.clock.Now().Add(2*time.Minute)))...)
	e.clock.Advance(time.Hour)
	assert.Equal(t, engine.StateDeactivated, e.state(t, acmeAdmin, p.ID))

	// A Pre-Active key whose Deactivation Date passed cannot be activated.
	q := e.create(t, acmeAdmin, aesAttrs(128, attr(engine.AttrDeactivationDate, e.clock.Now().Add(time.Minute)))...)
	e.clock.Advance(2 * time.Minute)
	_, err = e.eng.Activate(ctx, acmeAdmin, q.ID)
	assert.ErrorIs(t, err, engine.ErrWrongState)
}

func TestProcessStartAndProtectStopDates(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	now := e.clock.Now()
	o := e.activeAES(t, acmeAdmin, 256,
		attr(engine.AttrProcessStartDate, now.Add(time.Hour)),
		attr(engine.AttrProtectStopDate, now.Add(2*time.Hour)))

	res := e.encrypt(t, acmeApp, o.ID, []byte("protect before process start"))
	_, err := e.decrypt(t, acmeApp, o.ID, res)
	require.ErrorIs(t, err, engine.ErrWrongState, "decrypt before the Process Start Date")

	e.clock.Advance(time.Hour)
	pt, err := e.decrypt(t, acmeApp, o.ID, res)
	require.NoError(t, err)
	assert.Equal(t, "protect before process start", string(pt))
	res2 := e.encrypt(t, acmeApp, o.ID, []byte("still protecting"))

	e.clock.Advance(time.Hour)
	_, err = e.eng.Encrypt(ctx, acmeApp, engine.EncryptRequest{ID: o.ID, Data: []byte("too late")})
	require.ErrorIs(t, err, engine.ErrWrongState, "encrypt at the Protect Stop Date")
	pt, err = e.decrypt(t, acmeApp, o.ID, res2)
	require.NoError(t, err, "processing continues after Protect Stop")
	assert.Equal(t, "still protecting", string(pt))
	assert.Equal(t, engine.StateActive, e.state(t, acmeAdmin, o.ID), "Protect Stop does not deactivate")
}
