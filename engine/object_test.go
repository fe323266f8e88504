package engine_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/minikms/minikms/engine"
)

func TestEffectiveState(t *testing.T) {
	now := t0
	at := func(d time.Duration) time.Time { return now.Add(d) }
	cases := []struct {
		name       string
		stored     engine.State
		act, deact time.Time
		want       engine.State
	}{
		{"pre-active, no dates", engine.StatePreActive, time.Time{}, time.Time{}, engine.StatePreActive},
		{"pre-active, activation ahead", engine.StatePreActive, at(time.Second), time.Time{}, engine.StatePreActive},
		{"pre-active, activation now", engine.StatePreActive, now, time.Time{}, engine.StateActive},
		{"pre-active, activation passed", engine.StatePreActive, at(-time.Hour), time.Time{}, engine.StateActive},
		{"pre-active, both passed", engine.StatePreActive, at(-time.Hour), at(-time.Minute), engine.StateDeactivated},
		{"pre-active, only deactivation passed", engine.StatePreActive, time.Time{}, at(-time.Minute), engine.StatePreActive},
		{"active, deactivation ahead", engine.StateActive, at(-time.Hour), at(time.Second), engine.StateActive},
		{"active, deactivation now", engine.StateActive, at(-time.Hour), now, engine.StateDeactivated},
		{"compromised ignores dates", engine.StateCompromised, at(-time.Hour), at(-time.Minute), engine.StateCompromised},
		{"destroyed ignores dates", engine.StateDestroyed, at(-time.Hour), at(time.Hour), engine.StateDestroyed},
		{"deactivated stays", engine.StateDeactivated, at(-time.Hour), at(time.Hour), engine.StateDeactivated},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			o := &engine.Object{State: tc.stored, Attrs: engine.NewAttrSet()}
			if !tc.act.IsZero() {
				o.Attrs.Set(engine.AttrActivationDate, tc.act)
			}
			if !tc.deact.IsZero() {
				o.Attrs.Set(engine.AttrDeactivationDate, tc.deact)
			}
			assert.Equal(t, tc.want, o.EffectiveState(now))
		})
	}
}

// TestReturnedObjectsAreSnapshots: "Objects handed out by the engine are
// snapshots; changing one changes nothing stored" (object.go). A caller
// that edits a returned object must not change what the engine enforces
// or reports next.
func TestReturnedObjectsAreSnapshots(t *testing.T) {
	ctx := t.Context()
	decryptOnly := attr(engine.AttrCryptographicUsageMask, engine.UsageDecrypt)
	sources := []struct {
		name string
		// get returns an object the engine handed out for id; activated
		// is what Activate returned.
		get func(e *env, id string, activated *engine.Object) *engine.Object
	}{
		{"Activate", func(_ *env, _ string, activated *engine.Object) *engine.Object { return activated }},
		{"GetAttributes", func(e *env, id string, _ *engine.Object) *engine.Object {
			o, _, err := e.eng.GetAttributes(ctx, acmeApp, id, nil)
			require.NoError(t, err)
			return o
		}},
		{"GetAttributeList", func(e *env, id string, _ *engine.Object) *engine.Object {
			o, _, err := e.eng.GetAttributeList(ctx, acmeApp, id)
			require.NoError(t, err)
			return o
		}},
		{"AddAttribute", func(e *env, id string, _ *engine.Object) *engine.Object {
			o, _, err := e.eng.AddAttribute(ctx, acmeApp, id, attr(engine.AttrComment, "c"))
			require.NoError(t, err)
			return o
		}},
		{"Get", func(e *env, id string, _ *engine.Object) *engine.Object {
			o, m, err := e.eng.Get(ctx, acmeApp, id)
			require.NoError(t, err)
			clear(m.Bytes)
			return o
		}},
	}
	for _, src := range sources {
		t.Run(src.name, func(t *testing.T) {
			e := newEnv(t)
			k := e.create(t, acmeApp, aesAttrs(128, decryptOnly)...)
			act, err := e.eng.Activate(ctx, acmeApp, k.ID)
			require.NoError(t, err)
			o := src.get(e, k.ID, act)
			require.Equal(t, k.ID, o.ID)

			// The caller edits its copy.
			o.Attrs.Set(engine.AttrCryptographicUsageMask, engine.UsageEncrypt|engine.UsageDecrypt)
			o.Attrs.Set(engine.AttrContactInformation, "edited")

			mask, _ := e.value(t, acmeApp, k.ID, engine.AttrCryptographicUsageMask)
			assert.Equal(t, engine.UsageDecrypt, mask, "GetAttributes reports the caller's edit")
			_, ok := e.value(t, acmeApp, k.ID, engine.AttrContactInformation)
			assert.False(t, ok, "GetAttributes reports an attribute the caller added to its copy")
			_, err = e.eng.Encrypt(ctx, acmeApp, engine.EncryptRequest{ID: k.ID, Data: []byte("x")})
			assert.ErrorIs(t, err, engine.ErrPermissionDenied, "a decrypt-only key encrypted after a caller edited its copy")
		})
	}
}
