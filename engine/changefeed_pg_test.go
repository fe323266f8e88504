package engine_test

// Several engines (nodes) over one PostgreSQL database: their caches stay
// coherent through the store's change feed, and the usage counts they
// charge through the store never under-count. These tests need the test
// server (MINIKMS_TEST_DB_URL; `make test` starts one) and skip without it
// unless MINIKMS_REQUIRE_PG=1.

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/minikms/minikms/engine"
	"github.com/minikms/minikms/internal/pgtest"
	"github.com/minikms/minikms/store/postgres"
)

// pgNode is one engine over its own store on the shared database.
type pgNode struct {
	dbURL string
	store *postgres.Store
	eng   *engine.Engine
	logs  *syncBuffer
}

// pgNodes opens n engines on one new database, with one root key.
func pgNodes(t *testing.T, n int, poll time.Duration) []*pgNode {
	t.Helper()
	dbURL := pgtest.NewDatabase(t)
	root := randomBytes(t, engine.RootKeySize)
	var nodes []*pgNode
	for range n {
		st, err := postgres.Open(t.Context(), dbURL)
		require.NoError(t, err)
		if poll > 0 {
			st.SetChangePoll(poll)
		}
		logs := &syncBuffer{}
		st.SetLogger(slog.New(slog.NewTextHandler(logs, nil)))
		kr, err := engine.NewSoftKeyring(root)
		require.NoError(t, err)
		eng, err := engine.Open(t.Context(), engine.Config{Store: st, Keyring: kr, Salt: "s", Logger: slog.New(slog.NewTextHandler(logs, nil))})
		require.NoError(t, err)
		t.Cleanup(func() {
			eng.Close()
			st.Close()
			kr.Close()
		})
		nodes = append(nodes, &pgNode{dbURL: dbURL, store: st, eng: eng, logs: logs})
	}
	return nodes
}

// activeKey creates and activates an AES-256 key on node a.
func (n *pgNode) activeKey(t *testing.T, extra ...engine.Attribute) *engine.Object {
	t.Helper()
	o, err := n.eng.Create(t.Context(), acmeApp, engine.CreateRequest{Type: engine.TypeSymmetricKey, Attrs: aesAttrs(256, extra...)})
	require.NoError(t, err)
	o, err = n.eng.Activate(t.Context(), acmeApp, o.ID)
	require.NoError(t, err)
	return o
}

func (n *pgNode) encrypt(t *testing.T, id string) error {
	_, err := n.eng.Encrypt(t.Context(), acmeApp, engine.EncryptRequest{ID: id, Data: []byte("x")})
	return err
}

// within polls cond until it holds or d passes, and returns how long it
// took; it fails the test on timeout.
func within(t *testing.T, d time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > d {
			t.Fatalf("%s: not within %s", what, d)
		}
		time.Sleep(time.Millisecond)
	}
	return time.Since(start)
}

// TestPGChangesReachOtherNodes: Revoke, Destroy, attribute changes and
// ReKey made on node A reach node B's cache well within a second, with a
// poll interval far longer than that (so the notification did it).
func TestPGChangesReachOtherNodes(t *testing.T) {
	nodes := pgNodes(t, 2, time.Hour)
	a, b := nodes[0], nodes[1]
	ctx := t.Context()

	// Revoke on A: B, with the key cached, refuses it.
	k := a.activeKey(t)
	require.NoError(t, b.encrypt(t, k.ID))
	require.True(t, engine.IsCachedForTest(b.eng, "acme", k.ID))
	_, err := a.eng.Revoke(ctx, acmeAdmin, k.ID, superseded)
	require.NoError(t, err)
	d := within(t, time.Second, "revocation reaches B", func() bool { return !engine.IsCachedForTest(b.eng, "acme", k.ID) })
	require.ErrorIs(t, b.encrypt(t, k.ID), engine.ErrWrongState)
	t.Logf("revocation reached the other node's cache in %s", d)

	// Attribute change.
	k2 := a.activeKey(t)
	_, _, err = b.eng.GetAttributes(ctx, acmeApp, k2.ID, nil)
	require.NoError(t, err)
	_, _, err = a.eng.AddAttribute(ctx, acmeApp, k2.ID, attr(engine.AttrName, name("renamed")))
	require.NoError(t, err)
	within(t, time.Second, "a new Name reaches B", func() bool {
		_, as, err := b.eng.GetAttributes(ctx, acmeApp, k2.ID, []string{engine.AttrName})
		require.NoError(t, err)
		return len(as) == 1
	})

	// ReKey: B sees the Replacement Object link on the old key.
	require.NoError(t, b.encrypt(t, k2.ID))
	nk, err := a.eng.ReKey(ctx, acmeApp, engine.ReKeyRequest{ID: k2.ID})
	require.NoError(t, err)
	within(t, time.Second, "the ReKey link reaches B", func() bool {
		_, as, err := b.eng.GetAttributes(ctx, acmeApp, k2.ID, []string{engine.AttrLink})
		require.NoError(t, err)
		for _, l := range as {
			if lk, ok := l.Value.(engine.Link); ok && lk.LinkedObjectIdentifier == nk.ID {
				return true
			}
		}
		return false
	})

	// Destroy on A: B cannot encrypt (after a Revoke, as Destroy needs).
	require.NoError(t, b.encrypt(t, nk.ID))
	_, err = a.eng.Revoke(ctx, acmeAdmin, nk.ID, superseded)
	require.NoError(t, err)
	_, err = a.eng.Destroy(ctx, acmeAdmin, nk.ID)
	require.NoError(t, err)
	within(t, time.Second, "the destruction reaches B", func() bool {
		_, _, err := b.eng.Get(ctx, acmeApp, nk.ID)
		return err != nil
	})
	assert.Error(t, b.encrypt(t, nk.ID))
	notices, losses := b.eng.ChangeFeedStats()
	assert.Positive(t, notices)
	assert.Zero(t, losses)
}

// TestPGChangeFeedLatency measures the propagation delay of a revocation
// from one node to another's cache (the number quoted in the README).
func TestPGChangeFeedLatency(t *testing.T) {
	nodes := pgNodes(t, 2, time.Hour)
	a, b := nodes[0], nodes[1]
	const rounds = 20
	var ds []time.Duration
	for range rounds {
		k := a.activeKey(t)
		require.NoError(t, b.encrypt(t, k.ID))
		start := time.Now()
		_, err := a.eng.Revoke(t.Context(), acmeAdmin, k.ID, superseded)
		require.NoError(t, err)
		within(t, time.Second, "revocation reaches B", func() bool { return !engine.IsCachedForTest(b.eng, "acme", k.ID) })
		ds = append(ds, time.Since(start))
	}
	var sum, worst time.Duration
	for _, d := range ds {
		sum += d
		worst = max(worst, d)
	}
	t.Logf("revoke on A until dropped from B's cache (commit included), %d rounds: mean %s, worst %s", rounds, sum/rounds, worst)
	assert.Less(t, worst, time.Second)
}

// TestPGChangeFeedReplaysAfterReconnect: the listening connections are
// killed and a change is made while they are down; the followers replay
// it from object_changes once back, without purging their caches.
func TestPGChangeFeedReplaysAfterReconnect(t *testing.T) {
	nodes := pgNodes(t, 2, 200*time.Millisecond)
	a, b := nodes[0], nodes[1]
	k := a.activeKey(t)
	other := a.activeKey(t)
	require.NoError(t, b.encrypt(t, k.ID))
	require.NoError(t, b.encrypt(t, other.ID))

	terminateFeeds(t, a.dbURL)
	_, err := a.eng.Revoke(t.Context(), acmeAdmin, k.ID, superseded)
	require.NoError(t, err)
	d := within(t, 3*time.Second, "the missed revocation is replayed on B", func() bool { return !engine.IsCachedForTest(b.eng, "acme", k.ID) })
	t.Logf("replayed after reconnect in %s", d)
	require.ErrorIs(t, b.encrypt(t, k.ID), engine.ErrWrongState)
	assert.True(t, engine.IsCachedForTest(b.eng, "acme", other.ID), "an unchanged object was dropped: replay should be precise")
	_, losses := b.eng.ChangeFeedStats()
	assert.Zero(t, losses)
	assert.Contains(t, b.logs.String(), "reconnected")
}

// terminateFeeds ends the change feed connections of every node on the
// database (as a failover or a network cut would).
func terminateFeeds(t *testing.T, dbURL string) {
	t.Helper()
	pgtest.Exec(t, dbURL, `SELECT pg_terminate_backend(pid) FROM pg_stat_activity
		WHERE application_name = 'minikms-changes' AND datname = current_database()`)
}

// TestPGUsageLimitsAcrossNodes: two nodes charge one key's Usage Limits
// concurrently; exactly the limit is spent, never more.
func TestPGUsageLimitsAcrossNodes(t *testing.T) {
	nodes := pgNodes(t, 2, 0)
	const limit = 120
	k := nodes[0].activeKey(t, attr(engine.AttrUsageLimits, engine.UsageLimits{UsageLimitsTotal: limit, UsageLimitsUnit: 2}))
	var ok, conflicts atomic.Int64
	var wg sync.WaitGroup
	for i := range 8 {
		n := nodes[i%2]
		wg.Go(func() {
			for {
				err := n.encrypt(t, k.ID)
				switch {
				case err == nil:
					ok.Add(1)
				case errors.Is(err, engine.ErrConflict):
					// Contention between the nodes: refused, retried.
					conflicts.Add(1)
				case errors.Is(err, engine.ErrPermissionDenied):
					return
				default:
					t.Errorf("encrypt: %v", err)
					return
				}
			}
		})
	}
	wg.Wait()
	assert.EqualValues(t, limit, ok.Load(), "uses allowed across two nodes")
	t.Logf("%d uses, %d refused for contention (ErrConflict, retried)", ok.Load(), conflicts.Load())
	v, ok2 := firstAttr(t, nodes[1].eng, k.ID, engine.AttrUsageLimits)
	require.True(t, ok2)
	assert.EqualValues(t, 0, *v.(engine.UsageLimits).UsageLimitsCount)
}

// TestPGGCMLeasesAcrossNodes: two nodes reserve AES-GCM invocation blocks
// of one key concurrently: the durable count always covers the uses, and
// the bound is never exceeded.
func TestPGGCMLeasesAcrossNodes(t *testing.T) {
	const limit, block = 400, 7
	t.Cleanup(engine.SetGCMBoundForTest(limit, block))
	nodes := pgNodes(t, 2, 0)
	k := nodes[0].activeKey(t)
	var used atomic.Int64
	var wg sync.WaitGroup
	for i := range 8 {
		n := nodes[i%2]
		wg.Go(func() {
			for {
				err := n.encrypt(t, k.ID)
				switch {
				case err == nil:
					used.Add(1)
				case errors.Is(err, engine.ErrConflict):
					// Contention between the nodes: refused, retried.
				case errors.Is(err, engine.ErrPermissionDenied):
					return
				default:
					t.Errorf("encrypt: %v", err)
					return
				}
			}
		})
	}
	wg.Wait()
	o, _, err := nodes[1].eng.GetAttributes(t.Context(), acmeApp, k.ID, nil)
	require.NoError(t, err)
	reserved := engine.GCMReservedForTest(o)
	assert.LessOrEqual(t, used.Load(), int64(limit))
	assert.GreaterOrEqual(t, reserved, used.Load(), "the reservations under-count the uses")
	assert.EqualValues(t, limit, reserved)
	t.Logf("%d encryptions, %d invocations reserved (unspent remainders are lost, never reused)", used.Load(), reserved)
}

func firstAttr(t *testing.T, e *engine.Engine, id, name string) (any, bool) {
	t.Helper()
	_, as, err := e.GetAttributes(t.Context(), acmeApp, id, []string{name})
	require.NoError(t, err)
	if len(as) == 0 {
		return nil, false
	}
	return as[0].Value, true
}

// ---- The engine's side, driven by a fake feed over SQLite ----

// fakeFeed is a store whose change feed the test drives by hand.
type fakeFeed struct {
	engine.Store
	mu sync.Mutex
	h  engine.ChangeHandler
}

func (f *fakeFeed) FollowChanges(_ context.Context, h engine.ChangeHandler) (func(), error) {
	f.mu.Lock()
	f.h = h
	f.mu.Unlock()
	return func() {
		f.mu.Lock()
		f.h = nil
		f.mu.Unlock()
	}, nil
}

func (f *fakeFeed) handler() engine.ChangeHandler {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.h
}

func TestChangeNoticesKeepTheCacheFresh(t *testing.T) {
	var feed *fakeFeed
	e := newEnv(t, withStoreWrapper(func(s engine.Store) engine.Store {
		feed = &fakeFeed{Store: s}
		return feed
	}))
	h := feed.handler()
	require.NotNil(t, h, "the engine does not follow a store's change feed")
	k := e.activeAES(t, acmeApp, 256)
	e.encrypt(t, acmeApp, k.ID, []byte("x"))
	rev := e.stored(t, "acme", k.ID).Rev
	mat, cleared := cachedKey(t, e, k.ID)

	// A notice of the revision the cache holds (this node's own change)
	// keeps the entry.
	h.ObjectChanged("acme", k.ID, rev)
	assert.True(t, engine.IsCachedForTest(e.eng, "acme", k.ID))
	h.ObjectChanged("globex", k.ID, rev+1)
	assert.True(t, engine.IsCachedForTest(e.eng, "acme", k.ID), "a notice for another tenant's object dropped this one")

	// A newer revision drops it and zeroizes the key.
	h.ObjectChanged("acme", k.ID, rev+1)
	assert.False(t, engine.IsCachedForTest(e.eng, "acme", k.ID))
	assert.True(t, cleared())
	assert.Equal(t, make([]byte, 32), mat)

	// The store still has rev (the notice ran ahead of what this node can
	// read, as when a load raced the change): it is used, never cached.
	e.encrypt(t, acmeApp, k.ID, []byte("x"))
	assert.False(t, engine.IsCachedForTest(e.eng, "acme", k.ID), "a revision older than a notice was cached")

	// Once the store has the new revision, it is cached again.
	_, _, err := e.eng.AddAttribute(t.Context(), acmeApp, k.ID, attr(engine.AttrName, name("n")))
	require.NoError(t, err)
	require.Equal(t, rev+1, e.stored(t, "acme", k.ID).Rev)
	e.encrypt(t, acmeApp, k.ID, []byte("x"))
	assert.True(t, engine.IsCachedForTest(e.eng, "acme", k.ID))

	// Deleted: never cached again.
	h.ObjectChanged("acme", k.ID, 0)
	assert.False(t, engine.IsCachedForTest(e.eng, "acme", k.ID))
	e.encrypt(t, acmeApp, k.ID, []byte("x"))
	assert.False(t, engine.IsCachedForTest(e.eng, "acme", k.ID))

	// Lost changes: everything goes, and nothing is cached for a while.
	k2 := e.activeAES(t, acmeApp, 256)
	e.encrypt(t, acmeApp, k2.ID, []byte("x"))
	require.True(t, engine.IsCachedForTest(e.eng, "acme", k2.ID))
	h.ChangesLost()
	assert.Zero(t, e.eng.CachedObjects())
	e.encrypt(t, acmeApp, k2.ID, []byte("x"))
	assert.False(t, engine.IsCachedForTest(e.eng, "acme", k2.ID))
	notices, losses := e.eng.ChangeFeedStats()
	assert.EqualValues(t, 4, notices)
	assert.EqualValues(t, 1, losses)

	// Close stops following.
	e.close()
	assert.Nil(t, feed.handler())
}

// TestChangeNoticesRaceLoads: notices and loads of one object run
// concurrently; once the last notice is handled, the cache never holds
// a revision older than it (run with -race).
func TestChangeNoticesRaceLoads(t *testing.T) {
	var feed *fakeFeed
	e := newEnv(t, withStoreWrapper(func(s engine.Store) engine.Store {
		feed = &fakeFeed{Store: s}
		return feed
	}))
	h := feed.handler()
	k := e.activeAES(t, acmeApp, 256)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				e.encrypt(t, acmeApp, k.ID, []byte("x"))
			}
		})
	}
	for i := range 60 {
		_, _, err := e.eng.AddAttribute(t.Context(), acmeApp, k.ID, attr(engine.AttrObjectGroup, "g"+string(rune('a'+i%26))))
		if err != nil {
			// Too many instances: drop them and go on.
			continue
		}
		h.ObjectChanged("acme", k.ID, e.stored(t, "acme", k.ID).Rev)
	}
	// A notice of a revision the store will never hold: nothing may be
	// cached from now on, whatever the loads in flight do.
	h.ObjectChanged("acme", k.ID, 1<<40)
	time.Sleep(20 * time.Millisecond)
	assert.False(t, engine.IsCachedForTest(e.eng, "acme", k.ID))
	close(stop)
	wg.Wait()
	assert.False(t, engine.IsCachedForTest(e.eng, "acme", k.ID), "a stale revision settled in the cache after its notice")
}
