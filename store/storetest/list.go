package storetest

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/minikms/minikms/engine"
)

// matches is the reference semantics of engine.ObjectQuery, without
// paging: what every store must return, newest first.
func matches(q engine.ObjectQuery, o *engine.StoredObject) bool {
	if o.Tenant != q.Tenant {
		return false
	}
	if len(q.Types) > 0 && !slices.Contains(q.Types, o.Type) {
		return false
	}
	if len(q.States) > 0 && !slices.Contains(q.States, o.State) {
		return false
	}
	if q.Name != "" && !slices.Contains(o.Names, q.Name) {
		return false
	}
	if q.Group != "" && !slices.Contains(o.Groups, q.Group) {
		return false
	}
	return q.BeforeSeq <= 0 || o.Seq < q.BeforeSeq
}

// expect returns the identifiers of the objects in all that match q,
// newest first, cut at limit if limit > 0.
func expect(all []*engine.StoredObject, q engine.ObjectQuery, limit int) []string {
	var want []*engine.StoredObject
	for _, o := range all {
		if matches(q, o) {
			want = append(want, o)
		}
	}
	slices.SortFunc(want, func(a, b *engine.StoredObject) int { return cmp.Compare(b.Seq, a.Seq) })
	if limit > 0 && len(want) > limit {
		want = want[:limit]
	}
	return ids(want)
}

// listFixture creates, for tenants acme and globex, objects of every
// combination of a few types, states, names and groups; globex mirrors
// acme so that every filter has a foreign twin to leak.
func listFixture(t *testing.T, ctx context.Context, s engine.Store) []*engine.StoredObject {
	t.Helper()
	types := []engine.ObjectType{engine.TypeSymmetricKey, engine.TypePrivateKey, engine.TypeSecretData}
	states := []engine.State{engine.StatePreActive, engine.StateActive, engine.StateDestroyed}
	var all []*engine.StoredObject
	for i := range 54 {
		for _, tenant := range []string{"acme", "globex"} {
			o := newObject(tenant)
			o.Type = types[i%3]
			o.State = states[(i/3)%3]
			o.Names = []string{fmt.Sprintf("name-%d", i%6)}
			if i%9 == 0 {
				// A repeated value still lists the object once.
				o.Names = append(o.Names, "special", "special")
			}
			o.Groups = []string{fmt.Sprintf("scope-%d", i%2)}
			if i%4 == 0 {
				o.Groups = append(o.Groups, "shared")
			}
			all = append(all, mustCreate(t, ctx, s, o))
		}
	}
	return all
}

func testList(t *testing.T, open func(t *testing.T) engine.Store) {
	s, ctx := open(t), testContext(t)
	all := listFixture(t, ctx, s)
	mid := all[len(all)/2].Seq

	sym, priv, secret := engine.TypeSymmetricKey, engine.TypePrivateKey, engine.TypeSecretData
	pre, active, destroyed := engine.StatePreActive, engine.StateActive, engine.StateDestroyed
	cases := []struct {
		name  string
		q     engine.ObjectQuery
		empty bool // the case is meant to match nothing
	}{
		{name: "whole tenant", q: engine.ObjectQuery{Tenant: "acme"}},
		{name: "other tenant", q: engine.ObjectQuery{Tenant: "globex"}},
		{name: "unknown tenant", q: engine.ObjectQuery{Tenant: "initech"}, empty: true},
		{name: "empty tenant", q: engine.ObjectQuery{}, empty: true},
		{name: "empty tenant with name", q: engine.ObjectQuery{Name: "name-1"}, empty: true},
		{name: "empty tenant with group", q: engine.ObjectQuery{Group: "shared"}, empty: true},
		{name: "one type", q: engine.ObjectQuery{Tenant: "acme", Types: []engine.ObjectType{priv}}},
		{name: "two types", q: engine.ObjectQuery{Tenant: "acme", Types: []engine.ObjectType{sym, secret}}},
		{name: "repeated type", q: engine.ObjectQuery{Tenant: "acme", Types: []engine.ObjectType{sym, sym}}},
		{name: "absent type", q: engine.ObjectQuery{Tenant: "acme", Types: []engine.ObjectType{engine.TypeCertificate}}, empty: true},
		{name: "one state", q: engine.ObjectQuery{Tenant: "acme", States: []engine.State{active}}},
		{name: "two states", q: engine.ObjectQuery{Tenant: "acme", States: []engine.State{pre, destroyed}}},
		{name: "type and state", q: engine.ObjectQuery{Tenant: "acme", Types: []engine.ObjectType{sym}, States: []engine.State{active}}},
		{name: "types and states", q: engine.ObjectQuery{Tenant: "globex", Types: []engine.ObjectType{sym, priv}, States: []engine.State{pre, active}}},
		{name: "name", q: engine.ObjectQuery{Tenant: "acme", Name: "name-2"}},
		{name: "repeated name value", q: engine.ObjectQuery{Tenant: "acme", Name: "special"}},
		{name: "unknown name", q: engine.ObjectQuery{Tenant: "acme", Name: "name-99"}, empty: true},
		{name: "name is exact", q: engine.ObjectQuery{Tenant: "acme", Name: "name-"}, empty: true},
		{name: "name with type", q: engine.ObjectQuery{Tenant: "acme", Name: "name-1", Types: []engine.ObjectType{priv}}},
		{name: "name with state", q: engine.ObjectQuery{Tenant: "acme", Name: "name-0", States: []engine.State{destroyed}}},
		{name: "group", q: engine.ObjectQuery{Tenant: "acme", Group: "scope-1"}},
		{name: "second group value", q: engine.ObjectQuery{Tenant: "acme", Group: "shared"}},
		{name: "unknown group", q: engine.ObjectQuery{Tenant: "acme", Group: "scope-9"}, empty: true},
		{name: "group with type and state", q: engine.ObjectQuery{Tenant: "globex", Group: "scope-0", Types: []engine.ObjectType{sym}, States: []engine.State{pre}}},
		{name: "name and group", q: engine.ObjectQuery{Tenant: "acme", Name: "name-0", Group: "shared"}},
		{name: "name and group that never meet", q: engine.ObjectQuery{Tenant: "acme", Name: "name-1", Group: "scope-0"}, empty: true},
		{name: "everything", q: engine.ObjectQuery{Tenant: "acme", Name: "special", Group: "shared", Types: []engine.ObjectType{sym}, States: []engine.State{pre}}},
		{name: "before seq", q: engine.ObjectQuery{Tenant: "acme", BeforeSeq: mid}},
		{name: "before seq with name", q: engine.ObjectQuery{Tenant: "acme", Name: "name-3", BeforeSeq: mid}},
		{name: "before seq with group", q: engine.ObjectQuery{Tenant: "acme", Group: "shared", BeforeSeq: mid}},
		{name: "before seq with type", q: engine.ObjectQuery{Tenant: "acme", Types: []engine.ObjectType{priv}, BeforeSeq: mid}},
		{name: "before the first seq", q: engine.ObjectQuery{Tenant: "acme", BeforeSeq: all[0].Seq}, empty: true},
		{name: "limit", q: engine.ObjectQuery{Tenant: "acme", Limit: 7}},
		{name: "limit with name", q: engine.ObjectQuery{Tenant: "acme", Name: "name-4", Limit: 2}},
		{name: "limit with group", q: engine.ObjectQuery{Tenant: "acme", Group: "scope-0", Limit: 5}},
		{name: "limit with type and state", q: engine.ObjectQuery{Tenant: "acme", Types: []engine.ObjectType{secret}, States: []engine.State{active, destroyed}, Limit: 3}},
		{name: "limit one", q: engine.ObjectQuery{Tenant: "globex", Limit: 1}},
		{name: "limit above matches", q: engine.ObjectQuery{Tenant: "acme", Name: "name-5", Limit: 500}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			want := expect(all, tc.q, tc.q.Limit)
			if tc.empty {
				require.Empty(t, want, "bad test case: the reference matches something")
			} else {
				require.NotEmpty(t, want, "bad test case: the reference matches nothing")
			}
			got, err := s.ListObjects(ctx, tc.q)
			require.NoError(t, err)
			assertIDs(t, want, got)
			for _, o := range got {
				assert.Equal(t, tc.q.Tenant, o.Tenant, "object of another tenant returned")
			}
		})
	}

	t.Run("objects are complete", func(t *testing.T) {
		got, err := s.ListObjects(ctx, engine.ObjectQuery{Tenant: "acme", Name: "special"})
		require.NoError(t, err)
		require.NotEmpty(t, got)
		for _, o := range got {
			assertSameObject(t, mustGet(t, ctx, s, "acme", o.ID), o)
		}
	})
}

// pagingObjects is how many objects the paging test walks: more than two
// pages of any store's own cap on Limit is not required, but more than a
// few pages of the engine's Locate page (512) is.
const pagingObjects = 2500

func testListPaging(t *testing.T, open func(t *testing.T) engine.Store) {
	s, ctx := open(t), testContext(t)
	all := make([]*engine.StoredObject, pagingObjects)
	for i := range all {
		o := newObject("acme")
		if i%2 == 0 {
			o.Names = append(o.Names, "even")
		}
		if i%3 == 0 {
			o.Groups = []string{"third"}
		}
		if i%5 == 0 {
			o.Type = engine.TypeSecretData
		}
		all[i] = o
	}
	createAll(t, ctx, s, all)
	// Noise in another tenant, interleaved in Seq.
	for range 50 {
		o := newObject("globex")
		o.Names = append(o.Names, "even")
		o.Groups = []string{"third"}
		mustCreate(t, ctx, s, o)
	}

	cases := []struct {
		name  string
		q     engine.ObjectQuery
		limit int
	}{
		{"whole tenant by 100", engine.ObjectQuery{Tenant: "acme"}, 100},
		{"whole tenant by 512", engine.ObjectQuery{Tenant: "acme"}, 512},
		{"whole tenant by the store's cap", engine.ObjectQuery{Tenant: "acme"}, 0},
		{"name by 97", engine.ObjectQuery{Tenant: "acme", Name: "even"}, 97},
		{"group by 64", engine.ObjectQuery{Tenant: "acme", Group: "third"}, 64},
		{"type by 33", engine.ObjectQuery{Tenant: "acme", Types: []engine.ObjectType{engine.TypeSecretData}}, 33},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			want := expect(all, tc.q, 0)
			require.NotEmpty(t, want)
			var got []string
			q := tc.q
			q.Limit = tc.limit
			for pages := 0; ; pages++ {
				require.LessOrEqual(t, pages, len(want)+1, "paging does not end")
				page, err := s.ListObjects(ctx, q)
				require.NoError(t, err)
				if tc.limit > 0 {
					require.LessOrEqual(t, len(page), tc.limit, "Limit not respected")
				}
				if len(page) == 0 {
					break
				}
				for _, o := range page {
					require.Equal(t, "acme", o.Tenant)
					if q.BeforeSeq > 0 {
						require.Less(t, o.Seq, q.BeforeSeq)
					}
				}
				got = append(got, ids(page)...)
				q.BeforeSeq = page[len(page)-1].Seq
			}
			assert.Equal(t, want, got, "every object exactly once, newest first")
		})
	}
}

// creators is how many goroutines createAll uses.
const creators = 16

// createAll creates objs concurrently; each gets its Seq.
func createAll(t *testing.T, ctx context.Context, s engine.Store, objs []*engine.StoredObject) {
	t.Helper()
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
	)
	next := make(chan *engine.StoredObject)
	for range creators {
		wg.Go(func() {
			for o := range next {
				if err := s.CreateObject(ctx, o); err != nil {
					mu.Lock()
					errs = append(errs, fmt.Errorf("create %s: %w", o.ID, err))
					mu.Unlock()
				}
			}
		})
	}
	for _, o := range objs {
		next <- o
	}
	close(next)
	wg.Wait()
	require.Empty(t, errs)
}
