package storetest

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/minikms/minikms/engine"
)

func testCreate(t *testing.T, open func(t *testing.T) engine.Store) {
	t.Run("sets strictly increasing Seq", func(t *testing.T) {
		s, ctx := open(t), testContext(t)
		var last int64
		for i := range 20 {
			o := mustCreate(t, ctx, s, newObject("acme"))
			assert.Greater(t, o.Seq, last, "create %d", i)
			last = o.Seq
		}
		// Other tenants share the one sequence.
		o := mustCreate(t, ctx, s, newObject("globex"))
		assert.Greater(t, o.Seq, last)
	})

	t.Run("duplicate identifier", func(t *testing.T) {
		cases := []struct {
			name   string
			tenant string
		}{
			{"same tenant", "acme"},
			{"another tenant", "globex"},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				s, ctx := open(t), testContext(t)
				orig := mustCreate(t, ctx, s, newObject("acme"))
				want := clone(orig)

				dup := newObject(tc.tenant)
				dup.ID = orig.ID
				dup.Attrs = []byte(`{"dup":true}`)
				err := s.CreateObject(ctx, dup)
				require.ErrorIs(t, err, engine.ErrExists)
				assert.Zero(t, dup.Seq, "a failed create must not set Seq")

				assertSameObject(t, want, mustGet(t, ctx, s, "acme", orig.ID))
				if tc.tenant != "acme" {
					_, err := s.GetObject(ctx, tc.tenant, orig.ID)
					assert.ErrorIs(t, err, engine.ErrNotFound, "the rejected duplicate must not be stored")
				}
				// The store still works after the failure, and Seq still grows.
				next := mustCreate(t, ctx, s, newObject("acme"))
				assert.Greater(t, next.Seq, orig.Seq)
			})
		}
	})
}

func testGet(t *testing.T, open func(t *testing.T) engine.Store) {
	t.Run("round-trips every field", func(t *testing.T) {
		cases := []struct {
			name   string
			modify func(o *engine.StoredObject)
		}{
			{"typical", func(o *engine.StoredObject) {}},
			{"nil wrapped", func(o *engine.StoredObject) { o.Wrapped = nil }},
			{"empty wrapped", func(o *engine.StoredObject) { o.Wrapped = []byte{} }},
			{"binary wrapped", func(o *engine.StoredObject) {
				o.Wrapped = make([]byte, 4096)
				for i := range o.Wrapped {
					o.Wrapped[i] = byte(i * 7)
				}
			}},
			{"names and groups keep order", func(o *engine.StoredObject) {
				o.Names = []string{"zeta", "alpha", "mu", "alpha"}
				o.Groups = []string{"scope-b", "scope-a", "", "scope-c"}
			}},
			{"no names or groups", func(o *engine.StoredObject) { o.Names, o.Groups = nil, nil }},
			{"unicode and odd text", func(o *engine.StoredObject) {
				o.Names = []string{"clé de données ключ 鍵", "with 'quotes' and \"double\"", "50% _ wildcard\\", " padded "}
				o.Groups = []string{"🔑", "tab\there"}
			}},
			{"every type and state field", func(o *engine.StoredObject) {
				o.Type = engine.TypePrivateKey
				o.State = engine.StateDestroyedCompromised
				o.Rev = 42
				o.RootVersion = 0xFFFFFFFF
				o.Created = created.AddDate(-30, 0, 0)
				o.Attrs = []byte(`{"Name":[{"NameValue":"x","NameType":1}],"State":6}`)
			}},
			{"empty attrs", func(o *engine.StoredObject) { o.Attrs = []byte{} }},
		}
		s, ctx := open(t), testContext(t)
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				o := newObject("acme")
				tc.modify(o)
				want := clone(o)
				mustCreate(t, ctx, s, o)
				want.Seq = o.Seq
				assertSameObject(t, want, o) // CreateObject changes nothing but Seq

				got := mustGet(t, ctx, s, "acme", o.ID)
				assertSameObject(t, want, got)

				// The result is the caller's copy: changing it changes nothing stored.
				if len(got.Attrs) > 0 {
					got.Attrs[0] ^= 0xff
				}
				if len(got.Wrapped) > 0 {
					got.Wrapped[0] ^= 0xff
				}
				if len(got.Names) > 0 {
					got.Names[0] = "changed"
				}
				assertSameObject(t, want, mustGet(t, ctx, s, "acme", o.ID))
			})
		}
	})

	t.Run("not found", func(t *testing.T) {
		s, ctx := open(t), testContext(t)
		o := mustCreate(t, ctx, s, newObject("acme"))
		cases := []struct {
			name, tenant, id string
		}{
			{"missing id", "acme", "no-such-object"},
			{"another tenant's object", "globex", o.ID},
			{"empty tenant", "", o.ID},
			{"tenant differs in case", "ACME", o.ID},
			{"id differs in case", "acme", "OBJ" + o.ID[3:]},
			{"empty id", "acme", ""},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				got, err := s.GetObject(ctx, tc.tenant, tc.id)
				assert.ErrorIs(t, err, engine.ErrNotFound)
				assert.Nil(t, got)
			})
		}
	})
}

func testUpdate(t *testing.T, open func(t *testing.T) engine.Store) {
	// update returns a copy of cur changed as an update of the engine would.
	update := func(cur *engine.StoredObject) *engine.StoredObject {
		n := clone(cur)
		n.Rev = cur.Rev + 1
		n.State = engine.StateActive
		n.Attrs = []byte(`{"updated":true}`)
		n.RootVersion = cur.RootVersion + 1
		return n
	}

	t.Run("replaces the object when prevRev matches", func(t *testing.T) {
		s, ctx := open(t), testContext(t)
		orig := mustCreate(t, ctx, s, newObject("acme"))
		n := update(orig)
		n.Wrapped = nil // destroyed material
		n.Names = []string{"renamed", "second"}
		n.Groups = []string{"scope-2"}
		n.Type = engine.TypeSecretData
		require.NoError(t, s.UpdateObject(ctx, n, 1))
		got := mustGet(t, ctx, s, "acme", orig.ID)
		assertSameObject(t, n, got)
		assert.Equal(t, orig.Seq, got.Seq, "Seq never changes")

		n2 := update(got)
		n2.Wrapped = []byte{}
		require.NoError(t, s.UpdateObject(ctx, n2, 2))
		assertSameObject(t, n2, mustGet(t, ctx, s, "acme", orig.ID))
	})

	t.Run("conflict when prevRev is stale", func(t *testing.T) {
		s, ctx := open(t), testContext(t)
		orig := mustCreate(t, ctx, s, newObject("acme"))
		winner := update(orig)
		require.NoError(t, s.UpdateObject(ctx, winner, 1))

		for _, prev := range []int64{1, 3, 10} {
			loser := update(orig)
			loser.Rev = prev + 1
			loser.Attrs = []byte(`{"loser":true}`)
			err := s.UpdateObject(ctx, loser, prev)
			assert.ErrorIs(t, err, engine.ErrConflict, "prevRev %d", prev)
		}
		assertSameObject(t, winner, mustGet(t, ctx, s, "acme", orig.ID))
	})

	t.Run("not found", func(t *testing.T) {
		s, ctx := open(t), testContext(t)
		orig := mustCreate(t, ctx, s, newObject("acme"))
		want := clone(orig)
		cases := []struct {
			name, tenant, id string
		}{
			{"missing id", "acme", "no-such-object"},
			{"another tenant's object", "globex", orig.ID},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				n := update(orig)
				n.Tenant, n.ID = tc.tenant, tc.id
				assert.ErrorIs(t, s.UpdateObject(ctx, n, 1), engine.ErrNotFound)
				assertSameObject(t, want, mustGet(t, ctx, s, "acme", orig.ID))
				_, err := s.GetObject(ctx, tc.tenant, tc.id)
				assert.ErrorIs(t, err, engine.ErrNotFound, "an update must not create")
			})
		}
	})

	t.Run("revision must follow prevRev", func(t *testing.T) {
		s, ctx := open(t), testContext(t)
		orig := mustCreate(t, ctx, s, newObject("acme"))
		want := clone(orig)
		for _, rev := range []int64{1, 3} {
			n := update(orig)
			n.Rev = rev
			assert.Error(t, s.UpdateObject(ctx, n, 1), "Rev %d after prevRev 1", rev)
		}
		assertSameObject(t, want, mustGet(t, ctx, s, "acme", orig.ID))
	})

	t.Run("name and group indexes follow", func(t *testing.T) {
		s, ctx := open(t), testContext(t)
		o := newObject("acme")
		o.Names = []string{"old-name", "kept-name"}
		o.Groups = []string{"old-group"}
		mustCreate(t, ctx, s, o)
		other := mustCreate(t, ctx, s, newObject("acme"))

		n := update(o)
		n.Names = []string{"kept-name", "new-name"}
		n.Groups = []string{"new-group", "default"}
		require.NoError(t, s.UpdateObject(ctx, n, 1))

		cases := []struct {
			name string
			q    engine.ObjectQuery
			want []string
		}{
			{"old name", engine.ObjectQuery{Tenant: "acme", Name: "old-name"}, nil},
			{"kept name", engine.ObjectQuery{Tenant: "acme", Name: "kept-name"}, []string{o.ID}},
			{"new name", engine.ObjectQuery{Tenant: "acme", Name: "new-name"}, []string{o.ID}},
			{"old group", engine.ObjectQuery{Tenant: "acme", Group: "old-group"}, nil},
			{"new group", engine.ObjectQuery{Tenant: "acme", Group: "new-group"}, []string{o.ID}},
			{"added group shared with another object", engine.ObjectQuery{Tenant: "acme", Group: "default"}, []string{other.ID, o.ID}},
			{"new state", engine.ObjectQuery{Tenant: "acme", States: []engine.State{engine.StateActive}}, []string{o.ID}},
			{"old state", engine.ObjectQuery{Tenant: "acme", States: []engine.State{engine.StatePreActive}}, []string{other.ID}},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				got, err := s.ListObjects(ctx, tc.q)
				require.NoError(t, err)
				assertIDs(t, tc.want, got)
			})
		}
	})
}

// assertIDs checks the identifiers of got, in order.
func assertIDs(t *testing.T, want []string, got []*engine.StoredObject) {
	t.Helper()
	if len(want) == 0 {
		assert.Empty(t, ids(got))
		return
	}
	assert.Equal(t, want, ids(got))
}
