package engine_test

import (
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/minikms/minikms/engine"
)

// locateFixture is a tenant with one object of every kind Locate tells
// apart, created one second apart (newest last), and a second tenant whose
// objects share names and groups with the first.
type locateFixture struct {
	e                         *env
	k1, k2, k3, k4, k5        *engine.Object
	seed, blob, gone, revoked *engine.Object
	created                   map[string]time.Time
	globex                    []string
}

func newLocateFixture(t *testing.T) *locateFixture {
	t.Helper()
	ctx := t.Context()
	e := newEnv(t)
	f := &locateFixture{e: e, created: map[string]time.Time{}}
	next := func(o *engine.Object) *engine.Object {
		f.created[o.ID] = e.clock.Now()
		e.clock.Advance(time.Second)
		return o
	}
	f.k1 = next(e.activeAES(t, acmeAdmin, 128,
		attr(engine.AttrName, name("alpha")), attr(engine.AttrObjectGroup, "g1"),
		attr("x-app", textItem("one"))))
	f.k2 = next(e.create(t, acmeAdmin, aesAttrs(256,
		attr(engine.AttrName, name("beta")), attr(engine.AttrObjectGroup, "g2"),
		attr(engine.AttrCryptographicUsageMask, engine.UsageEncrypt|engine.UsageDecrypt|engine.UsageWrapKey),
		attr(engine.AttrApplicationSpecificInformation, engine.ApplicationSpecificInformation{ApplicationNamespace: "ssl", ApplicationData: "host1"}))...))
	f.k3 = next(e.create(t, acmeAdmin,
		attr(engine.AttrCryptographicAlgorithm, engine.Alg3DES), attr(engine.AttrCryptographicLength, int32(168)),
		attr(engine.AttrName, name("gamma")), attr(engine.AttrObjectGroup, "g1"),
		attr(engine.AttrCryptographicUsageMask, engine.UsageDecrypt),
		attr(engine.AttrLink, engine.Link{LinkType: engine.LinkReplacedObject, LinkedObjectIdentifier: f.k1.ID})))
	seed, err := e.eng.Register(ctx, acmeAdmin, engine.RegisterRequest{Type: engine.TypeSecretData,
		Attrs:    []engine.Attribute{attr(engine.AttrName, name("delta"))},
		Material: engine.Material{Format: engine.FormatRaw, DataType: uint32(engine.SecretSeed), Bytes: []byte("seed")}})
	require.NoError(t, err)
	f.seed = next(seed)
	blob, err := e.eng.Register(ctx, acmeAdmin, engine.RegisterRequest{Type: engine.TypeOpaqueObject,
		Attrs:    []engine.Attribute{attr(engine.AttrName, name("epsilon"))},
		Material: engine.Material{Format: engine.FormatOpaque, Bytes: []byte("blob")}})
	require.NoError(t, err)
	f.blob = next(blob)
	f.gone = next(e.create(t, acmeAdmin, aesAttrs(256, attr(engine.AttrName, name("omega")))...))
	_, err = e.eng.Destroy(ctx, acmeAdmin, f.gone.ID)
	require.NoError(t, err)
	f.revoked = next(e.activeAES(t, acmeAdmin, 256, attr(engine.AttrName, name("zeta"))))
	_, err = e.eng.Revoke(ctx, acmeAdmin, f.revoked.ID, compromise)
	require.NoError(t, err)
	f.k4 = next(e.create(t, acmeAdmin, aesAttrs(256, attr(engine.AttrName, name("future")),
		attr(engine.AttrActivationDate, e.clock.Now().Add(time.Hour)))...))
	f.k5 = next(e.create(t, acmeAdmin, aesAttrs(128, attr(engine.AttrName, name("alpha")))...))

	for _, n := range []string{"alpha", "beta", "gamma"} {
		g := e.activeAES(t, globexAdmin, 256, attr(engine.AttrName, name(n)), attr(engine.AttrObjectGroup, "g1"),
			attr("x-app", textItem("one")))
		f.globex = append(f.globex, g.ID)
	}
	return f
}

func ids(objs ...*engine.Object) []string {
	var out []string
	for _, o := range objs {
		out = append(out, o.ID)
	}
	return out
}

func TestLocateFilters(t *testing.T) {
	f := newLocateFixture(t)
	e := f.e
	live := []*engine.Object{f.k5, f.k4, f.revoked, f.blob, f.seed, f.k3, f.k2, f.k1}
	cases := []struct {
		name  string
		attrs []engine.Attribute
		want  []*engine.Object
	}{
		{"no filter: every live object, newest first", nil, live},
		{"type symmetric key", []engine.Attribute{attr(engine.AttrObjectType, engine.TypeSymmetricKey)},
			[]*engine.Object{f.k5, f.k4, f.revoked, f.k3, f.k2, f.k1}},
		{"type secret data", []engine.Attribute{attr(engine.AttrObjectType, engine.TypeSecretData)}, []*engine.Object{f.seed}},
		{"type opaque", []engine.Attribute{attr(engine.AttrObjectType, engine.TypeOpaqueObject)}, []*engine.Object{f.blob}},
		{"two types match nothing", []engine.Attribute{attr(engine.AttrObjectType, engine.TypeSymmetricKey),
			attr(engine.AttrObjectType, engine.TypeSecretData)}, nil},
		{"state active", []engine.Attribute{attr(engine.AttrState, engine.StateActive)}, []*engine.Object{f.k1}},
		{"state pre-active (no opaque)", []engine.Attribute{attr(engine.AttrState, engine.StatePreActive)},
			[]*engine.Object{f.k5, f.k4, f.seed, f.k3, f.k2}},
		{"state compromised", []engine.Attribute{attr(engine.AttrState, engine.StateCompromised)}, []*engine.Object{f.revoked}},
		{"state destroyed", []engine.Attribute{attr(engine.AttrState, engine.StateDestroyed)}, []*engine.Object{f.gone}},
		{"destroyed by name", []engine.Attribute{attr(engine.AttrState, engine.StateDestroyed), attr(engine.AttrName, name("omega"))},
			[]*engine.Object{f.gone}},
		{"destroyed not found without a destroyed state", []engine.Attribute{attr(engine.AttrName, name("omega"))}, nil},
		{"name", []engine.Attribute{attr(engine.AttrName, name("alpha"))}, []*engine.Object{f.k5, f.k1}},
		{"name of another type", []engine.Attribute{attr(engine.AttrName, engine.Name{NameValue: "alpha", NameType: engine.NameURI})}, nil},
		{"name without type", []engine.Attribute{attr(engine.AttrName, engine.Name{NameValue: "beta"})}, []*engine.Object{f.k2}},
		{"unknown name", []engine.Attribute{attr(engine.AttrName, name("nobody"))}, nil},
		{"group", []engine.Attribute{attr(engine.AttrObjectGroup, "g1")}, []*engine.Object{f.k3, f.k1}},
		{"default group", []engine.Attribute{attr(engine.AttrObjectGroup, "default")}, []*engine.Object{f.k5, f.k4, f.revoked, f.blob, f.seed}},
		{"algorithm", []engine.Attribute{attr(engine.AttrCryptographicAlgorithm, engine.Alg3DES)}, []*engine.Object{f.k3}},
		{"length", []engine.Attribute{attr(engine.AttrCryptographicLength, int32(128))}, []*engine.Object{f.k5, f.k1}},
		{"usage encrypt", []engine.Attribute{attr(engine.AttrCryptographicUsageMask, engine.UsageEncrypt)},
			[]*engine.Object{f.k5, f.k4, f.revoked, f.k2, f.k1}},
		{"usage decrypt", []engine.Attribute{attr(engine.AttrCryptographicUsageMask, engine.UsageDecrypt)},
			[]*engine.Object{f.k5, f.k4, f.revoked, f.k3, f.k2, f.k1}},
		{"usage superset", []engine.Attribute{attr(engine.AttrCryptographicUsageMask, engine.UsageEncrypt|engine.UsageWrapKey)},
			[]*engine.Object{f.k2}},
		{"usage none matches", []engine.Attribute{attr(engine.AttrCryptographicUsageMask, engine.UsageSign)}, nil},
		{"initial date equals", []engine.Attribute{attr(engine.AttrInitialDate, f.created[f.k3.ID])}, []*engine.Object{f.k3}},
		{"initial date range", []engine.Attribute{attr(engine.AttrInitialDate, f.created[f.k2.ID]),
			attr(engine.AttrInitialDate, f.created[f.seed.ID])}, []*engine.Object{f.seed, f.k3, f.k2}},
		{"initial date range reversed", []engine.Attribute{attr(engine.AttrInitialDate, f.created[f.seed.ID]),
			attr(engine.AttrInitialDate, f.created[f.k2.ID])}, []*engine.Object{f.seed, f.k3, f.k2}},
		{"activation date equals", []engine.Attribute{attr(engine.AttrActivationDate, f.created[f.k1.ID])}, []*engine.Object{f.k1}},
		{"date nobody has", []engine.Attribute{attr(engine.AttrInitialDate, t0.Add(-time.Hour))}, nil},
		{"link", []engine.Attribute{attr(engine.AttrLink, engine.Link{LinkType: engine.LinkReplacedObject, LinkedObjectIdentifier: f.k1.ID})},
			[]*engine.Object{f.k3}},
		{"link of other type", []engine.Attribute{attr(engine.AttrLink, engine.Link{LinkType: engine.LinkParent, LinkedObjectIdentifier: f.k1.ID})}, nil},
		{"application info", []engine.Attribute{attr(engine.AttrApplicationSpecificInformation,
			engine.ApplicationSpecificInformation{ApplicationNamespace: "ssl", ApplicationData: "host1"})}, []*engine.Object{f.k2}},
		{"application namespace only", []engine.Attribute{attr(engine.AttrApplicationSpecificInformation,
			engine.ApplicationSpecificInformation{ApplicationNamespace: "ssl"})}, []*engine.Object{f.k2}},
		{"application data differs", []engine.Attribute{attr(engine.AttrApplicationSpecificInformation,
			engine.ApplicationSpecificInformation{ApplicationNamespace: "ssl", ApplicationData: "host2"})}, nil},
		{"custom attribute", []engine.Attribute{attr("x-app", textItem("one"))}, []*engine.Object{f.k1}},
		{"custom attribute other value", []engine.Attribute{attr("x-app", textItem("two"))}, nil},
		{"unique identifier", []engine.Attribute{attr(engine.AttrUniqueIdentifier, f.k2.ID)}, []*engine.Object{f.k2}},
		{"and: type and group", []engine.Attribute{attr(engine.AttrObjectType, engine.TypeSymmetricKey),
			attr(engine.AttrObjectGroup, "g1"), attr(engine.AttrCryptographicAlgorithm, engine.AlgAES)}, []*engine.Object{f.k1}},
		{"and: name and group disagree", []engine.Attribute{attr(engine.AttrName, name("alpha")), attr(engine.AttrObjectGroup, "g2")}, nil},
		{"and: name and state", []engine.Attribute{attr(engine.AttrName, name("alpha")), attr(engine.AttrState, engine.StatePreActive)},
			[]*engine.Object{f.k5}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			res, err := e.eng.Locate(t.Context(), acmeAuditor, engine.LocateRequest{Attrs: tc.attrs, WantTotal: true})
			require.NoError(t, err)
			assert.Equal(t, ids(tc.want...), res.IDs)
			assert.Equal(t, int32(len(tc.want)), res.Total)
			for _, id := range res.IDs {
				assert.NotContains(t, f.globex, id, "another tenant's object")
			}
		})
	}
}

func TestLocateDateDrivenState(t *testing.T) {
	f := newLocateFixture(t)
	e := f.e
	active := e.locate(t, acmeAdmin, attr(engine.AttrState, engine.StateActive))
	require.Equal(t, ids(f.k1), active)
	e.clock.Advance(2 * time.Hour)
	assert.Equal(t, ids(f.k4, f.k1), e.locate(t, acmeAdmin, attr(engine.AttrState, engine.StateActive)),
		"a key whose Activation Date passed is Active")
	assert.Equal(t, ids(f.k5, f.seed, f.k3, f.k2), e.locate(t, acmeAdmin, attr(engine.AttrState, engine.StatePreActive)))
}

func TestLocateRejects(t *testing.T) {
	e := newEnv(t)
	cases := []struct {
		name string
		req  engine.LocateRequest
		want error
	}{
		{"unknown attribute", engine.LocateRequest{Attrs: []engine.Attribute{attr("Colour", "red")}}, engine.ErrInvalidField},
		{"wrong value type", engine.LocateRequest{Attrs: []engine.Attribute{attr(engine.AttrName, "alpha")}}, engine.ErrInvalidField},
		{"nil value", engine.LocateRequest{Attrs: []engine.Attribute{attr(engine.AttrObjectGroup, nil)}}, engine.ErrInvalidField},
		{"date three times", engine.LocateRequest{Attrs: []engine.Attribute{attr(engine.AttrInitialDate, t0),
			attr(engine.AttrInitialDate, t0), attr(engine.AttrInitialDate, t0)}}, engine.ErrInvalidField},
		{"negative maximum", engine.LocateRequest{MaxItems: -1}, engine.ErrInvalidField},
		{"negative offset", engine.LocateRequest{Offset: -1}, engine.ErrInvalidField},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := e.eng.Locate(t.Context(), acmeAdmin, tc.req)
			require.ErrorIs(t, err, tc.want)
		})
	}
}

func TestLocatePaging(t *testing.T) {
	e := newEnv(t)
	var all []string // newest first
	for i := range 10 {
		o := e.create(t, acmeAdmin, aesAttrs(128, attr(engine.AttrName, name("page")), attr(engine.AttrComment, fmt.Sprint(i)))...)
		all = append([]string{o.ID}, all...)
		if i%3 == 0 {
			e.create(t, acmeAdmin, aesAttrs(128, attr(engine.AttrName, name("other")))...)
		}
	}
	e.create(t, globexAdmin, aesAttrs(128, attr(engine.AttrName, name("page")))...)

	filter := []engine.Attribute{attr(engine.AttrName, name("page"))}
	cases := []struct {
		max, offset int32
		want        []string
	}{
		{0, 0, all},
		{3, 0, all[:3]},
		{3, 3, all[3:6]},
		{3, 9, all[9:]},
		{3, 10, nil},
		{0, 4, all[4:]},
		{20, 0, all},
		{1, 0, all[:1]},
	}
	for _, tc := range cases {
		for _, wantTotal := range []bool{false, true} {
			t.Run(fmt.Sprintf("max %d offset %d total %v", tc.max, tc.offset, wantTotal), func(t *testing.T) {
				res, err := e.eng.Locate(t.Context(), acmeAdmin, engine.LocateRequest{
					Attrs: filter, MaxItems: tc.max, Offset: tc.offset, WantTotal: wantTotal})
				require.NoError(t, err)
				assert.Equal(t, tc.want, res.IDs)
				if wantTotal {
					assert.Equal(t, int32(10), res.Total, "Located Items counts every match, in this tenant only")
				}
			})
		}
	}

	// Paging through with MaxItems visits every match once, in order.
	var got []string
	for off := int32(0); ; off += 4 {
		res, err := e.eng.Locate(t.Context(), acmeAdmin, engine.LocateRequest{Attrs: filter, MaxItems: 4, Offset: off})
		require.NoError(t, err)
		if len(res.IDs) == 0 {
			break
		}
		got = append(got, res.IDs...)
	}
	assert.Equal(t, all, got)
}

func TestLocateTenantIsolation(t *testing.T) {
	e := newEnv(t)
	a := e.create(t, acmeAdmin, aesAttrs(128, attr(engine.AttrName, name("shared")), attr(engine.AttrObjectGroup, "grp"))...)
	g := e.create(t, globexAdmin, aesAttrs(128, attr(engine.AttrName, name("shared")), attr(engine.AttrObjectGroup, "grp"))...)
	filters := [][]engine.Attribute{
		nil,
		{attr(engine.AttrName, name("shared"))},
		{attr(engine.AttrObjectGroup, "grp")},
		{attr(engine.AttrUniqueIdentifier, g.ID)},
		{attr(engine.AttrObjectType, engine.TypeSymmetricKey)},
		{attr(engine.AttrState, engine.StatePreActive)},
	}
	for i, fl := range filters {
		res, err := e.eng.Locate(t.Context(), acmeAdmin, engine.LocateRequest{Attrs: fl, WantTotal: true})
		require.NoError(t, err)
		assert.NotContains(t, res.IDs, g.ID, "filter %d", i)
		if i == 3 {
			assert.Empty(t, res.IDs)
			assert.Zero(t, res.Total, "another tenant's object is counted")
			continue
		}
		assert.Equal(t, []string{a.ID}, res.IDs, "filter %d", i)
		assert.Equal(t, int32(1), res.Total)
	}
	assert.Equal(t, []string{g.ID}, e.locate(t, globexAdmin, attr(engine.AttrName, name("shared"))))
	assert.Empty(t, e.locate(t, engine.Principal{Tenant: "initech", Role: engine.RoleAdmin}))
}

// TestLocateManyMatches pages through the store: more matches than one
// store page (512) of Locate.
func TestLocateManyMatches(t *testing.T) {
	if testing.Short() {
		t.Skip("creates 1,300 objects")
	}
	e := newEnv(t)
	const n, workers = 1200, 16
	seqs := make(map[string]int64, n)
	var mu sync.Mutex
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < n+100; i += workers {
				p, nm := acmeApp, "bulk"
				if i >= n {
					p = globexAdmin // interleaved objects of another tenant
				}
				o, err := e.eng.Create(t.Context(), p, engine.CreateRequest{Type: engine.TypeSymmetricKey,
					Attrs: aesAttrs(128, attr(engine.AttrName, name(nm)))})
				if err != nil {
					errs <- err
					return
				}
				if p == acmeApp {
					mu.Lock()
					seqs[o.ID] = o.Seq
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	require.Len(t, seqs, n)

	want := make([]string, 0, n)
	for id := range seqs {
		want = append(want, id)
	}
	slices.SortFunc(want, func(a, b string) int { return int(seqs[b] - seqs[a]) })

	for _, filter := range [][]engine.Attribute{nil, {attr(engine.AttrName, name("bulk"))}, {attr(engine.AttrState, engine.StatePreActive)}} {
		res, err := e.eng.Locate(t.Context(), acmeAdmin, engine.LocateRequest{Attrs: filter, WantTotal: true})
		require.NoError(t, err)
		assert.Equal(t, int32(n), res.Total)
		assert.Equal(t, want, res.IDs, "every match once, newest first")

		res, err = e.eng.Locate(t.Context(), acmeAdmin, engine.LocateRequest{Attrs: filter, Offset: 1000, MaxItems: 150, WantTotal: true})
		require.NoError(t, err)
		assert.Equal(t, want[1000:1150], res.IDs)
		assert.Equal(t, int32(n), res.Total)
	}
	res, err := e.eng.Locate(t.Context(), globexAdmin, engine.LocateRequest{WantTotal: true})
	require.NoError(t, err)
	assert.Equal(t, int32(100), res.Total)
}

// TestLocateObjectGroupMember: Fresh and Default hand out a group's
// members oldest first, one Get at a time (KMIP 1.4 §4.9).
func TestLocateObjectGroupMember(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	var pool []string // oldest first
	for range 3 {
		pool = append(pool, e.activeAES(t, acmeApp, 128, attr(engine.AttrObjectGroup, "pool")).ID)
	}
	e.activeAES(t, acmeApp, 128, attr(engine.AttrObjectGroup, "other"))
	e.activeAES(t, globexAdmin, 128, attr(engine.AttrObjectGroup, "pool"))
	group := []engine.Attribute{attr(engine.AttrObjectGroup, "pool")}
	member := func(gm uint32, maxItems int32) engine.LocateResult {
		t.Helper()
		res, err := e.eng.Locate(ctx, acmeApp, engine.LocateRequest{Attrs: group, GroupMember: gm, MaxItems: maxItems})
		require.NoError(t, err)
		return res
	}

	for i, want := range pool {
		for _, gm := range []uint32{1, 2} {
			res := member(gm, 1)
			assert.Equal(t, []string{want}, res.IDs, "member %d, group member %d", i, gm)
			assert.Equal(t, int32(len(pool)-i), res.Total)
		}
		_, m, err := e.eng.Get(ctx, acmeApp, want) // served: no longer fresh
		require.NoError(t, err)
		clear(m.Bytes)
	}
	assert.Empty(t, member(1, 0).IDs, "no fresh member left")
	res := member(2, 0)
	assert.Equal(t, pool, res.IDs, "Default falls back to every member, oldest first")
	assert.Equal(t, int32(3), res.Total)
	res, err := e.eng.Locate(ctx, acmeApp, engine.LocateRequest{Attrs: group, GroupMember: 2, Offset: 1, MaxItems: 1})
	require.NoError(t, err)
	assert.Equal(t, pool[1:2], res.IDs)
}
