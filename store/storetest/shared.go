package storetest

import (
	"encoding/json"
	"fmt"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/minikms/minikms/engine"
)

// RunShared checks two stores opened on one backend (two processes, or two
// nodes on one PostgreSQL database): what one writes the other reads at
// once, identifiers stay unique across both, their Seqs never collide,
// their compare-and-swap updates of one object never lose one, and an
// identity change made through one advances the generation the other
// sees. open returns the first store and a function that opens another on
// the same backend (closed by the caller's cleanup).
func RunShared(t *testing.T, open func(t *testing.T) (engine.Store, func(t *testing.T) engine.Store)) {
	t.Run("ReadsOtherWrites", func(t *testing.T) { testSharedReads(t, open) })
	t.Run("ConcurrentCreates", func(t *testing.T) { testSharedCreates(t, open) })
	t.Run("ConcurrentUpdates", func(t *testing.T) { testSharedUpdates(t, open) })
	t.Run("Identity", func(t *testing.T) { testSharedIdentity(t, open) })
}

func testSharedReads(t *testing.T, open func(t *testing.T) (engine.Store, func(t *testing.T) engine.Store)) {
	a, another := open(t)
	b, ctx := another(t), testContext(t)
	o := mustCreate(t, ctx, a, newObject("acme"))
	assertSameObject(t, o, mustGet(t, ctx, b, "acme", o.ID))

	n := clone(o)
	n.State, n.Rev, n.Names = engine.StateActive, 2, []string{"renamed"}
	require.NoError(t, b.UpdateObject(ctx, n, 1))
	assertSameObject(t, n, mustGet(t, ctx, a, "acme", o.ID))
	// The other store's stale revision loses.
	stale := clone(o)
	stale.Rev = 2
	require.ErrorIs(t, a.UpdateObject(ctx, stale, 1), engine.ErrConflict)
	got, err := a.ListObjects(ctx, engine.ObjectQuery{Tenant: "acme", Name: "renamed"})
	require.NoError(t, err)
	assertSameList(t, []string{o.ID}, ids(got), "list through the other store")

	// Meta: the first InitMeta wins on both.
	v, err := a.InitMeta(ctx, "shared.k", []byte("a"))
	require.NoError(t, err)
	require.Equal(t, "a", string(v))
	v, err = b.InitMeta(ctx, "shared.k", []byte("b"))
	require.NoError(t, err)
	require.Equal(t, "a", string(v))
}

func testSharedCreates(t *testing.T, open func(t *testing.T) (engine.Store, func(t *testing.T) engine.Store)) {
	a, another := open(t)
	stores := []engine.Store{a, another(t)}
	ctx := testContext(t)
	const perWriter = 40
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		seqs = map[int64]string{}
		errs []error
	)
	// Both stores try the same identifiers too: exactly one wins each.
	dup := make([]string, perWriter)
	for i := range dup {
		dup[i] = newID("dup")
	}
	wins := make([]int, perWriter)
	start := make(chan struct{})
	for w := range 8 {
		s := stores[w%2]
		wg.Go(func() {
			<-start
			for i := range perWriter {
				o := newObject("acme")
				if w < 2 {
					o.ID = dup[i]
				}
				err := s.CreateObject(ctx, o)
				mu.Lock()
				switch {
				case err == nil:
					if prev, ok := seqs[o.Seq]; ok {
						errs = append(errs, fmt.Errorf("seq %d given to %s and %s", o.Seq, prev, o.ID))
					}
					seqs[o.Seq] = o.ID
					if w < 2 {
						wins[i]++
					}
				case w < 2 && assert.ErrorIs(t, err, engine.ErrExists):
				default:
					errs = append(errs, err)
				}
				mu.Unlock()
			}
		})
	}
	close(start)
	wg.Wait()
	require.Empty(t, errs)
	for i, n := range wins {
		assert.Equal(t, 1, n, "identifier %s created %d times", dup[i], n)
	}
	assert.Len(t, seqs, 6*perWriter+perWriter)
	// Both stores list the same, in Seq order.
	la, err := stores[0].ListObjects(ctx, engine.ObjectQuery{Tenant: "acme", Limit: 10000})
	require.NoError(t, err)
	lb, err := stores[1].ListObjects(ctx, engine.ObjectQuery{Tenant: "acme", Limit: 10000})
	require.NoError(t, err)
	require.Equal(t, ids(la), ids(lb))
	for i := 1; i < len(la); i++ {
		require.Greater(t, la[i-1].Seq, la[i].Seq, "list not in descending Seq order")
	}
}

func testSharedUpdates(t *testing.T, open func(t *testing.T) (engine.Store, func(t *testing.T) engine.Store)) {
	a, another := open(t)
	stores := []engine.Store{a, another(t)}
	ctx := testContext(t)
	o := newObject("acme")
	o.Attrs = []byte(`[]`)
	mustCreate(t, ctx, a, o)
	const perWriter = 15
	var (
		wg        sync.WaitGroup
		conflicts [6]int
		errs      [6]error
	)
	start := make(chan struct{})
	for w := range 6 {
		s := stores[w%2]
		wg.Go(func() {
			<-start
			for i := range perWriter {
				if _, err := casAppend(ctx, s, o.Tenant, o.ID, fmt.Sprintf("w%d-%d", w, i), &conflicts[w]); err != nil {
					errs[w] = err
					return
				}
			}
		})
	}
	close(start)
	wg.Wait()
	for _, err := range errs {
		require.NoError(t, err)
	}
	got := mustGet(t, ctx, stores[1], o.Tenant, o.ID)
	var marks []string
	require.NoError(t, json.Unmarshal(got.Attrs, &marks))
	assert.Len(t, marks, 6*perWriter, "an update was lost between the stores")
	assert.Equal(t, int64(1+6*perWriter), got.Rev)
}

func testSharedIdentity(t *testing.T, open func(t *testing.T) (engine.Store, func(t *testing.T) engine.Store)) {
	first, another := open(t)
	a, okA := first.(engine.IdentityStore)
	b, okB := another(t).(engine.IdentityStore)
	if !okA || !okB {
		t.Skip("not an identity store")
	}
	ctx := testContext(t)
	g0, err := b.IdentityGeneration(ctx)
	require.NoError(t, err)
	added, err := a.Revoke(ctx, engine.Revocation{Tenant: "acme", Serial: "abc1", Reason: 1, RevokedAt: created})
	require.NoError(t, err)
	require.True(t, added)
	g1, err := b.IdentityGeneration(ctx)
	require.NoError(t, err)
	assert.Greater(t, g1, g0, "a revocation through one store does not advance the other's generation")
	added, err = b.Revoke(ctx, engine.Revocation{Tenant: "acme", Serial: "abc1", Reason: 4, RevokedAt: created})
	require.NoError(t, err)
	assert.False(t, added, "revoked twice through two stores")
	rs, err := b.Revocations(ctx, "acme")
	require.NoError(t, err)
	require.Len(t, rs, 1)
	assert.Equal(t, 1, rs[0].Reason)
}
