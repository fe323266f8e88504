package engine_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/minikms/minikms/engine"
)

// instances returns index → value of every instance of name.
func (e *env) instances(t testing.TB, p engine.Principal, id, name string) map[int32]any {
	t.Helper()
	out := map[int32]any{}
	for _, a := range e.attrs(t, p, id, name) {
		require.NotNil(t, a.Index)
		out[*a.Index] = a.Value
	}
	return out
}

func TestAddAttribute(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	key := e.create(t, acmeAdmin, aesAttrs(128)...)
	secret, err := e.eng.Register(ctx, acmeAdmin, engine.RegisterRequest{Type: engine.TypeSecretData,
		Material: engine.Material{Format: engine.FormatRaw, DataType: uint32(engine.SecretSeed), Bytes: []byte("seed")}})
	require.NoError(t, err)

	cases := []struct {
		name string
		id   string
		a    engine.Attribute
		want error
	}{
		{"Initial Date is the server's", key.ID, attr(engine.AttrInitialDate, t0), engine.ErrAttributeReadOnly},
		{"Last Change Date", key.ID, attr(engine.AttrLastChangeDate, t0), engine.ErrAttributeReadOnly},
		{"Unique Identifier", key.ID, attr(engine.AttrUniqueIdentifier, "x"), engine.ErrAttributeReadOnly},
		{"State", key.ID, attr(engine.AttrState, engine.StateActive), engine.ErrAttributeReadOnly},
		{"Object Type", key.ID, attr(engine.AttrObjectType, engine.TypeSecretData), engine.ErrAttributeReadOnly},
		{"Digest", key.ID, attr(engine.AttrDigest, engine.Digest{HashingAlgorithm: engine.HashSHA1}), engine.ErrAttributeReadOnly},
		{"Compromise Date", key.ID, attr(engine.AttrCompromiseDate, t0), engine.ErrAttributeReadOnly},
		{"server custom", key.ID, attr("y-note", textItem("n")), engine.ErrAttributeReadOnly},
		{"single-instance present", key.ID, attr(engine.AttrCryptographicAlgorithm, engine.Alg3DES), engine.ErrIllegalOperation},
		{"usage mask present", key.ID, attr(engine.AttrCryptographicUsageMask, engine.UsageSign), engine.ErrIllegalOperation},
		{"Sensitive present", key.ID, attr(engine.AttrSensitive, true), engine.ErrIllegalOperation},
		{"unknown name", key.ID, attr("Colour", "red"), engine.ErrInvalidField},
		{"wrong value type", key.ID, attr(engine.AttrName, "plain string"), engine.ErrInvalidField},
		{"not for secret data", secret.ID, attr(engine.AttrCryptographicLength, int32(128)), engine.ErrInvalidField},
		{"Deactivation Date on a Pre-Active key", key.ID, attr(engine.AttrDeactivationDate, t0.Add(-time.Hour)), nil},
		{"Contact Information", key.ID, attr(engine.AttrContactInformation, "ops"), nil},
		{"custom", key.ID, attr("x-cost-centre", textItem("42")), nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := e.stored(t, "acme", tc.id).Rev
			o, got, err := e.eng.AddAttribute(ctx, acmeAdmin, tc.id, tc.a)
			if tc.want != nil {
				require.ErrorIs(t, err, tc.want)
				assert.Nil(t, o)
				assert.Equal(t, before, e.stored(t, "acme", tc.id).Rev, "a refused Add wrote")
				return
			}
			require.NoError(t, err)
			require.NotNil(t, got.Index)
			assert.Equal(t, int32(0), *got.Index)
			assert.Equal(t, tc.a.Value, got.Value)
			assert.Equal(t, before+1, o.Rev)
			v, ok := e.value(t, acmeAdmin, tc.id, tc.a.Name)
			require.True(t, ok)
			assert.Equal(t, tc.a.Value, v)
		})
	}

	_, _, err = e.eng.AddAttribute(ctx, acmeAdmin, key.ID, attr(engine.AttrContactInformation, "again"))
	assert.ErrorIs(t, err, engine.ErrIllegalOperation, "second Contact Information")
}

func TestAttributeIndices(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	o := e.create(t, acmeAdmin, aesAttrs(128, attr(engine.AttrName, name("n0")))...)
	add := func(v string) int32 {
		t.Helper()
		_, a, err := e.eng.AddAttribute(ctx, acmeAdmin, o.ID, attr(engine.AttrName, name(v)))
		require.NoError(t, err)
		return *a.Index
	}
	assert.Equal(t, int32(1), add("n1"))
	assert.Equal(t, int32(2), add("n2"))
	assert.Equal(t, int32(3), add("n3"))

	_, old, err := e.eng.DeleteAttribute(ctx, acmeAdmin, o.ID, engine.AttrName, index(1))
	require.NoError(t, err)
	assert.Equal(t, name("n1"), old.Value)
	assert.Equal(t, map[int32]any{0: name("n0"), 2: name("n2"), 3: name("n3")}, e.instances(t, acmeAdmin, o.ID, engine.AttrName),
		"indices of the others do not move")

	assert.Equal(t, int32(4), add("n4"), "index 1 is not reused while higher ones live")

	_, _, err = e.eng.ModifyAttribute(ctx, acmeAdmin, o.ID, engine.Attribute{Name: engine.AttrName, Index: index(1), Value: name("x")})
	assert.ErrorIs(t, err, engine.ErrIndexOutOfBounds, "modify a deleted index")
	_, _, err = e.eng.DeleteAttribute(ctx, acmeAdmin, o.ID, engine.AttrName, index(1))
	assert.ErrorIs(t, err, engine.ErrIndexOutOfBounds, "delete a deleted index")
	_, _, err = e.eng.DeleteAttribute(ctx, acmeAdmin, o.ID, engine.AttrName, index(99))
	assert.ErrorIs(t, err, engine.ErrIndexOutOfBounds)
	_, _, err = e.eng.ModifyAttribute(ctx, acmeAdmin, o.ID, engine.Attribute{Name: engine.AttrName, Index: index(-1), Value: name("x")})
	assert.ErrorIs(t, err, engine.ErrIndexOutOfBounds)

	_, got, err := e.eng.ModifyAttribute(ctx, acmeAdmin, o.ID, engine.Attribute{Name: engine.AttrName, Index: index(3), Value: name("n3b")})
	require.NoError(t, err)
	assert.Equal(t, int32(3), *got.Index)
	_, got, err = e.eng.ModifyAttribute(ctx, acmeAdmin, o.ID, attr(engine.AttrName, name("n0b")))
	require.NoError(t, err)
	assert.Equal(t, int32(0), *got.Index, "no index means index 0")
	_, old, err = e.eng.DeleteAttribute(ctx, acmeAdmin, o.ID, engine.AttrName, nil)
	require.NoError(t, err)
	assert.Equal(t, name("n0b"), old.Value, "no index deletes index 0")

	assert.Equal(t, map[int32]any{2: name("n2"), 3: name("n3b"), 4: name("n4")}, e.instances(t, acmeAdmin, o.ID, engine.AttrName))
	// Indices survive a restart.
	e.reopen(t)
	assert.Equal(t, map[int32]any{2: name("n2"), 3: name("n3b"), 4: name("n4")}, e.instances(t, acmeAdmin, o.ID, engine.AttrName))
	assert.Equal(t, int32(5), add("n5"))
	// Locate sees the renames.
	assert.Empty(t, e.locate(t, acmeAdmin, attr(engine.AttrName, name("n1"))))
	assert.Equal(t, []string{o.ID}, e.locate(t, acmeAdmin, attr(engine.AttrName, name("n3b"))))
}

func TestModifyAttribute(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	o := e.create(t, acmeAdmin, aesAttrs(128,
		attr(engine.AttrContactInformation, "ops"),
		attr(engine.AttrActivationDate, t0.Add(time.Hour)))...)
	cases := []struct {
		name string
		a    engine.Attribute
		want error
	}{
		{"missing attribute", attr(engine.AttrDescription, "d"), engine.ErrAttributeNotFound},
		{"missing custom attribute", attr("x-none", textItem("v")), engine.ErrAttributeNotFound},
		{"Initial Date", attr(engine.AttrInitialDate, t0), engine.ErrAttributeReadOnly},
		{"Cryptographic Algorithm", attr(engine.AttrCryptographicAlgorithm, engine.Alg3DES), engine.ErrAttributeReadOnly},
		{"Cryptographic Length", attr(engine.AttrCryptographicLength, int32(256)), engine.ErrAttributeReadOnly},
		{"Cryptographic Usage Mask", attr(engine.AttrCryptographicUsageMask, engine.UsageSign), engine.ErrAttributeReadOnly},
		{"Digest", attr(engine.AttrDigest, engine.Digest{}), engine.ErrAttributeReadOnly},
		{"State", attr(engine.AttrState, engine.StateActive), engine.ErrAttributeReadOnly},
		{"Unique Identifier", attr(engine.AttrUniqueIdentifier, "x"), engine.ErrAttributeReadOnly},
		{"Object Type", attr(engine.AttrObjectType, engine.TypeSecretData), engine.ErrAttributeReadOnly},
		{"unknown", attr("Colour", "red"), engine.ErrInvalidField},
		{"wrong type", attr(engine.AttrContactInformation, 7), engine.ErrInvalidField},
		{"index out of bounds", engine.Attribute{Name: engine.AttrContactInformation, Index: index(1), Value: "x"}, engine.ErrIndexOutOfBounds},
		{"Contact Information", attr(engine.AttrContactInformation, "security"), nil},
		{"Activation Date while Pre-Active", attr(engine.AttrActivationDate, t0.Add(2*time.Hour)), nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := e.stored(t, "acme", o.ID).Rev
			_, got, err := e.eng.ModifyAttribute(ctx, acmeAdmin, o.ID, tc.a)
			if tc.want != nil {
				require.ErrorIs(t, err, tc.want)
				assert.Equal(t, before, e.stored(t, "acme", o.ID).Rev, "a refused Modify wrote")
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.a.Value, got.Value)
			v, _ := e.value(t, acmeAdmin, o.ID, tc.a.Name)
			assert.Equal(t, tc.a.Value, v)
		})
	}
}

func TestDeleteAttribute(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	o := e.create(t, acmeAdmin, aesAttrs(128,
		attr(engine.AttrActivationDate, t0.Add(time.Hour)),
		attr(engine.AttrDescription, "temporary"),
		attr("x-tag", textItem("a")))...)
	cases := []struct {
		name string
		attr string
		want error
	}{
		{"Activation Date", engine.AttrActivationDate, engine.ErrAttributeReadOnly},
		{"Initial Date", engine.AttrInitialDate, engine.ErrAttributeReadOnly},
		{"Cryptographic Algorithm", engine.AttrCryptographicAlgorithm, engine.ErrAttributeReadOnly},
		{"Sensitive", engine.AttrSensitive, engine.ErrAttributeReadOnly},
		{"State", engine.AttrState, engine.ErrAttributeReadOnly},
		{"Unique Identifier", engine.AttrUniqueIdentifier, engine.ErrAttributeReadOnly},
		{"absent Contact Information", engine.AttrContactInformation, engine.ErrAttributeNotFound},
		{"absent Name", engine.AttrName, engine.ErrAttributeNotFound},
		{"unknown", "Colour", engine.ErrInvalidField},
		{"Description", engine.AttrDescription, nil},
		{"custom", "x-tag", nil},
		{"Object Group", engine.AttrObjectGroup, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, old, err := e.eng.DeleteAttribute(ctx, acmeAdmin, o.ID, tc.attr, nil)
			if tc.want != nil {
				require.ErrorIs(t, err, tc.want)
				return
			}
			require.NoError(t, err)
			assert.NotNil(t, old.Value)
			_, ok := e.value(t, acmeAdmin, o.ID, tc.attr)
			assert.False(t, ok, "%s still there", tc.attr)
			_, _, err = e.eng.DeleteAttribute(ctx, acmeAdmin, o.ID, tc.attr, nil)
			assert.ErrorIs(t, err, engine.ErrAttributeNotFound, "deleting again")
		})
	}
	assert.Empty(t, e.locate(t, acmeAdmin, attr(engine.AttrObjectGroup, "default")), "Locate still sees the deleted group")
}

func TestDateAttributeStateRules(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	later := e.clock.Now().Add(time.Hour)

	pre := e.create(t, acmeAdmin, aesAttrs(128)...)
	_, _, err := e.eng.AddAttribute(ctx, acmeAdmin, pre.ID, attr(engine.AttrActivationDate, later))
	require.NoError(t, err, "Activation Date may be added while Pre-Active")
	_, _, err = e.eng.ModifyAttribute(ctx, acmeAdmin, pre.ID, attr(engine.AttrActivationDate, e.clock.Now()))
	require.NoError(t, err, "and changed")
	assert.Equal(t, engine.StateActive, e.state(t, acmeAdmin, pre.ID), "a reached Activation Date activates")
	assert.Equal(t, engine.StateActive, e.stored(t, "acme", pre.ID).State)
	_, _, err = e.eng.ModifyAttribute(ctx, acmeAdmin, pre.ID, attr(engine.AttrActivationDate, later))
	assert.ErrorIs(t, err, engine.ErrWrongState, "Activation Date of an Active key")

	act := e.activeAES(t, acmeAdmin, 128)
	_, _, err = e.eng.ModifyAttribute(ctx, acmeAdmin, act.ID, attr(engine.AttrActivationDate, later))
	assert.ErrorIs(t, err, engine.ErrWrongState)
	_, _, err = e.eng.AddAttribute(ctx, acmeAdmin, act.ID, attr(engine.AttrDeactivationDate, later))
	require.NoError(t, err, "Deactivation Date of an Active key")
	_, _, err = e.eng.ModifyAttribute(ctx, acmeAdmin, act.ID, attr(engine.AttrDeactivationDate, e.clock.Now()))
	require.NoError(t, err)
	assert.Equal(t, engine.StateDeactivated, e.state(t, acmeAdmin, act.ID), "a reached Deactivation Date deactivates")
	_, _, err = e.eng.ModifyAttribute(ctx, acmeAdmin, act.ID, attr(engine.AttrDeactivationDate, later))
	assert.ErrorIs(t, err, engine.ErrWrongState, "Deactivation Date of a Deactivated key")
	_, _, err = e.eng.AddAttribute(ctx, acmeAdmin, act.ID, attr(engine.AttrProtectStopDate, later))
	assert.ErrorIs(t, err, engine.ErrWrongState, "Protect Stop Date of a Deactivated key")

	comp := e.inState(t, engine.StateCompromised)
	_, _, err = e.eng.AddAttribute(ctx, acmeAdmin, comp.ID, attr(engine.AttrProcessStartDate, later))
	assert.ErrorIs(t, err, engine.ErrWrongState)

	// Ordering is checked on every change.
	dd := e.create(t, acmeAdmin, aesAttrs(128, attr(engine.AttrActivationDate, later), attr(engine.AttrDeactivationDate, later.Add(time.Hour)))...)
	_, _, err = e.eng.ModifyAttribute(ctx, acmeAdmin, dd.ID, attr(engine.AttrDeactivationDate, later.Add(-time.Minute)))
	assert.ErrorIs(t, err, engine.ErrInvalidField)
	_, _, err = e.eng.ModifyAttribute(ctx, acmeAdmin, dd.ID, attr(engine.AttrActivationDate, later.Add(2*time.Hour)))
	assert.ErrorIs(t, err, engine.ErrInvalidField)
}

func TestAttributeLimits(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	o := e.create(t, acmeAdmin, aesAttrs(128)...)

	long := strings.Repeat("a", engine.MaxTextLength)
	cases := []struct {
		name string
		a    engine.Attribute
		want error
	}{
		{"text at the limit", attr(engine.AttrDescription, long), nil},
		{"text over the limit", attr(engine.AttrComment, long+"a"), engine.ErrLimit},
		{"multi-byte text over the limit", attr(engine.AttrComment, strings.Repeat("é", engine.MaxTextLength/2+1)), engine.ErrLimit},
		{"Name over the limit", attr(engine.AttrName, name(long+"a")), engine.ErrLimit},
		{"custom text over the limit", attr("x-t", textItem(long+"a")), engine.ErrLimit},
		{"custom bytes over the limit", attr("x-b", engine.Item{Kind: engine.KindByteString, Bytes: make([]byte, engine.MaxBytesLength+1)}), engine.ErrLimit},
		{"custom nested too deep", attr("x-deep", deepItem(engine.MaxItemDepth+2)), engine.ErrLimit},
		{"custom nested at the limit", attr("x-deep-ok", deepItem(engine.MaxItemDepth)), nil},
		{"custom of unknown kind", attr("x-k", engine.Item{Kind: 0x42}), engine.ErrInvalidField},
		{"invalid UTF-8 text", attr(engine.AttrComment, "bad \xff"), engine.ErrInvalidField},
		{"invalid UTF-8 Name", attr(engine.AttrName, name("\xc3\x28")), engine.ErrInvalidField},
		{"invalid UTF-8 custom", attr("x-u", textItem("\xed\xa0\x80")), engine.ErrInvalidField},
		{"invalid UTF-8 application data", attr(engine.AttrApplicationSpecificInformation,
			engine.ApplicationSpecificInformation{ApplicationNamespace: "ns", ApplicationData: "\xff"}), engine.ErrInvalidField},
		{"invalid UTF-8 link", attr(engine.AttrLink, engine.Link{LinkType: engine.LinkParent, LinkedObjectIdentifier: "\xff"}), engine.ErrInvalidField},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := e.eng.AddAttribute(ctx, acmeAdmin, o.ID, tc.a)
			if tc.want == nil {
				require.NoError(t, err)
				return
			}
			require.ErrorIs(t, err, tc.want)
			_, err = e.eng.Create(ctx, acmeAdmin, engine.CreateRequest{Type: engine.TypeSymmetricKey, Attrs: aesAttrs(128, tc.a)})
			require.ErrorIs(t, err, tc.want, "the same value in a Create")
		})
	}
}

func deepItem(depth int) engine.Item {
	it := engine.Item{Kind: engine.KindInteger, Int: 1}
	for range depth {
		it = engine.Item{Kind: engine.KindStructure, Fields: []engine.Item{it}}
	}
	return it
}

func TestMaxAttributeInstances(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	base := e.create(t, acmeAdmin, aesAttrs(128)...)
	// GetAttributes adds the three attributes kept on the object.
	serverSet := len(e.attrs(t, acmeAdmin, base.ID)) - 3
	room := engine.MaxAttributeInstances - serverSet

	custom := func(n int) []engine.Attribute {
		var out []engine.Attribute
		for i := range n {
			out = append(out, attr(fmt.Sprintf("x-a%03d", i), textItem("v")))
		}
		return out
	}
	_, err := e.eng.Create(ctx, acmeAdmin, engine.CreateRequest{Type: engine.TypeSymmetricKey, Attrs: aesAttrs(128, custom(room+1)...)})
	require.ErrorIs(t, err, engine.ErrLimit, "one instance over the limit")

	full, err := e.eng.Create(ctx, acmeAdmin, engine.CreateRequest{Type: engine.TypeSymmetricKey, Attrs: aesAttrs(128, custom(room)...)})
	require.NoError(t, err, "exactly at the limit")
	assert.Equal(t, engine.MaxAttributeInstances, full.Attrs.Count())

	_, _, err = e.eng.AddAttribute(ctx, acmeAdmin, full.ID, attr("x-one-more", textItem("v")))
	require.ErrorIs(t, err, engine.ErrLimit)
	_, _, err = e.eng.DeleteAttribute(ctx, acmeAdmin, full.ID, "x-a000", nil)
	require.NoError(t, err)
	_, _, err = e.eng.AddAttribute(ctx, acmeAdmin, full.ID, attr("x-one-more", textItem("v")))
	require.NoError(t, err, "room again after a delete")

	_, err = e.eng.Create(ctx, acmeAdmin, engine.CreateRequest{Type: engine.TypeSymmetricKey,
		Attrs: custom(engine.MaxAttributeInstances + 1)})
	require.ErrorIs(t, err, engine.ErrLimit, "request with more attributes than the limit")
	_, err = e.eng.Locate(ctx, acmeAdmin, engine.LocateRequest{Attrs: custom(engine.MaxAttributeInstances + 1)})
	require.ErrorIs(t, err, engine.ErrLimit)
}

func TestGetAttributes(t *testing.T) {
	e := newEnv(t)
	o := e.create(t, acmeAdmin, aesAttrs(256,
		attr(engine.AttrName, name("first")),
		attr(engine.AttrName, name("second")),
		attr(engine.AttrContactInformation, "ops"))...)

	all := e.attrs(t, acmeAdmin, o.ID)
	require.GreaterOrEqual(t, len(all), 3)
	assert.Equal(t, []string{engine.AttrUniqueIdentifier, engine.AttrObjectType, engine.AttrState},
		[]string{all[0].Name, all[1].Name, all[2].Name}, "the object's own attributes come first")
	var names []string
	for _, a := range all {
		require.NotNil(t, a.Index, a.Name)
		names = append(names, a.Name)
	}
	for _, want := range []string{engine.AttrCryptographicAlgorithm, engine.AttrCryptographicLength, engine.AttrCryptographicUsageMask,
		engine.AttrInitialDate, engine.AttrLastChangeDate, engine.AttrObjectGroup, engine.AttrDigest, engine.AttrName,
		engine.AttrContactInformation, engine.AttrFresh} {
		assert.Contains(t, names, want)
	}
	assert.NotContains(t, names, engine.AttrActivationDate)

	some := e.attrs(t, acmeAdmin, o.ID, engine.AttrName, engine.AttrCryptographicLength, engine.AttrActivationDate, "x-unset")
	assert.Equal(t, []engine.Attribute{
		{Name: engine.AttrName, Index: index(0), Value: name("first")},
		{Name: engine.AttrName, Index: index(1), Value: name("second")},
		{Name: engine.AttrCryptographicLength, Index: index(0), Value: int32(256)},
	}, some, "requested order, every instance, absent names left out")

	_, list, err := e.eng.GetAttributeList(t.Context(), acmeAdmin, o.ID)
	require.NoError(t, err)
	var distinct []string
	for _, n := range names {
		if !slices.Contains(distinct, n) {
			distinct = append(distinct, n)
		}
	}
	assert.Equal(t, distinct, list, "each name once, in GetAttributes order")

	_, _, err = e.eng.GetAttributes(t.Context(), acmeAdmin, o.ID, []string{engine.AttrName, engine.AttrName})
	assert.ErrorIs(t, err, engine.ErrInvalidMessage, "a name given twice")
}

func TestLastChangeDate(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	o := e.create(t, acmeAdmin, aesAttrs(128)...)
	lcd := func() time.Time {
		v, ok := e.value(t, acmeAdmin, o.ID, engine.AttrLastChangeDate)
		require.True(t, ok)
		return v.(time.Time)
	}
	assert.Equal(t, t0, lcd())

	steps := []struct {
		name string
		do   func() error
	}{
		{"AddAttribute", func() error {
			_, _, err := e.eng.AddAttribute(ctx, acmeAdmin, o.ID, attr(engine.AttrName, name("a")))
			return err
		}},
		{"ModifyAttribute", func() error {
			_, _, err := e.eng.ModifyAttribute(ctx, acmeAdmin, o.ID, attr(engine.AttrName, name("b")))
			return err
		}},
		{"DeleteAttribute", func() error {
			_, _, err := e.eng.DeleteAttribute(ctx, acmeAdmin, o.ID, engine.AttrName, nil)
			return err
		}},
		{"Activate", func() error { _, err := e.eng.Activate(ctx, acmeAdmin, o.ID); return err }},
		{"Revoke", func() error { _, err := e.eng.Revoke(ctx, acmeAdmin, o.ID, superseded); return err }},
	}
	for _, s := range steps {
		now := e.clock.Advance(time.Minute)
		require.NoError(t, s.do(), s.name)
		assert.Equal(t, now, lcd(), "after %s", s.name)
	}

	// Reads and refused changes leave it alone.
	last := lcd()
	e.clock.Advance(time.Minute)
	_, _, err := e.eng.GetAttributeList(ctx, acmeAdmin, o.ID)
	require.NoError(t, err)
	_, _, err = e.eng.AddAttribute(ctx, acmeAdmin, o.ID, attr(engine.AttrInitialDate, t0))
	require.Error(t, err)
	_, err = e.eng.Activate(ctx, acmeAdmin, o.ID)
	require.Error(t, err)
	assert.Equal(t, last, lcd())
	_, err = e.eng.Locate(ctx, acmeAdmin, engine.LocateRequest{})
	require.NoError(t, err)
	assert.Equal(t, last, lcd())
}
