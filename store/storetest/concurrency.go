package storetest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/minikms/minikms/engine"
)

const (
	// writers is how many goroutines race in the concurrency tests.
	writers = 16
	// createsPerWriter is how many objects each writer creates.
	createsPerWriter = 100
	// updatesPerWriter is how many successful updates each writer makes
	// to the one shared object.
	updatesPerWriter = 10
	// maxCASAttempts bounds one writer's retries, so a store that never
	// lets an update through fails instead of spinning.
	maxCASAttempts = 10_000
)

func testConcurrentCreates(t *testing.T, open func(t *testing.T) engine.Store) {
	s, ctx := open(t), testContext(t)
	var (
		wg   sync.WaitGroup
		objs [writers][]*engine.StoredObject
		errs [writers]error
	)
	start := make(chan struct{})
	for w := range writers {
		wg.Go(func() {
			<-start
			for range createsPerWriter {
				o := newObject(fmt.Sprintf("tenant-%d", w%4))
				if err := s.CreateObject(ctx, o); err != nil {
					errs[w] = fmt.Errorf("create %s: %w", o.ID, err)
					return
				}
				objs[w] = append(objs[w], o)
			}
		})
	}
	close(start)
	wg.Wait()
	for w := range writers {
		require.NoError(t, errs[w], "writer %d", w)
	}

	seqs := make(map[int64]string, writers*createsPerWriter)
	for w := range writers {
		var last int64
		for _, o := range objs[w] {
			require.Positive(t, o.Seq)
			if other, dup := seqs[o.Seq]; dup {
				t.Fatalf("Seq %d given to both %s and %s", o.Seq, other, o.ID)
			}
			seqs[o.Seq] = o.ID
			assert.Greater(t, o.Seq, last, "one writer's creates must get increasing Seqs")
			last = o.Seq
			got := mustGet(t, ctx, s, o.Tenant, o.ID)
			assert.Equal(t, o.Seq, got.Seq, "stored Seq differs from the one reported")
		}
	}
	// Every object is listed in its tenant, once.
	total := 0
	for tenant := range 4 {
		q := engine.ObjectQuery{Tenant: fmt.Sprintf("tenant-%d", tenant)}
		seen := map[string]bool{}
		for {
			page, err := s.ListObjects(ctx, q)
			require.NoError(t, err)
			if len(page) == 0 {
				break
			}
			for _, o := range page {
				require.False(t, seen[o.ID], "%s listed twice", o.ID)
				seen[o.ID] = true
			}
			q.BeforeSeq = page[len(page)-1].Seq
		}
		total += len(seen)
	}
	assert.Equal(t, writers*createsPerWriter, total)
}

func testConcurrentUpdates(t *testing.T, open func(t *testing.T) engine.Store) {
	s, ctx := open(t), testContext(t)
	o := newObject("acme")
	o.Attrs = []byte(`[]`)
	mustCreate(t, ctx, s, o)

	var (
		wg        sync.WaitGroup
		successes [writers]int
		conflicts [writers]int
		errs      [writers]error
	)
	start := make(chan struct{})
	for w := range writers {
		wg.Go(func() {
			<-start
			for i := range updatesPerWriter {
				mark := fmt.Sprintf("w%02d-%02d", w, i)
				n, err := casAppend(ctx, s, o.Tenant, o.ID, mark, &conflicts[w])
				if err != nil {
					errs[w] = fmt.Errorf("update %s: %w", mark, err)
					return
				}
				successes[w] += n
			}
		})
	}
	close(start)
	wg.Wait()

	total := 0
	for w := range writers {
		require.NoError(t, errs[w], "writer %d", w)
		total += successes[w]
	}
	require.Equal(t, writers*updatesPerWriter, total)
	got := mustGet(t, ctx, s, o.Tenant, o.ID)
	assert.Equal(t, int64(1+total), got.Rev, "final Rev must be 1 + successful updates")
	var marks []string
	require.NoError(t, json.Unmarshal(got.Attrs, &marks))
	assert.Len(t, marks, total, "an update was lost")
	seen := map[string]bool{}
	for _, m := range marks {
		assert.False(t, seen[m], "mark %s applied twice", m)
		seen[m] = true
	}
	conflictsSeen := 0
	for _, c := range conflicts {
		conflictsSeen += c
	}
	t.Logf("%d updates, %d conflicts retried", total, conflictsSeen)
}

// casAppend appends mark to the object's attributes (a JSON list) with
// the engine's read-modify-write loop, retrying on ErrConflict. It returns
// the number of successful updates (1).
func casAppend(ctx context.Context, s engine.Store, tenant, id, mark string, conflicts *int) (int, error) {
	for range maxCASAttempts {
		cur, err := s.GetObject(ctx, tenant, id)
		if err != nil {
			return 0, err
		}
		var marks []string
		if err := json.Unmarshal(cur.Attrs, &marks); err != nil {
			return 0, err
		}
		n := clone(cur)
		n.Attrs, _ = json.Marshal(append(marks, mark))
		n.Rev = cur.Rev + 1
		err = s.UpdateObject(ctx, n, cur.Rev)
		if errors.Is(err, engine.ErrConflict) {
			*conflicts++
			continue
		}
		if err != nil {
			return 0, err
		}
		return 1, nil
	}
	return 0, fmt.Errorf("no update succeeded in %d attempts", maxCASAttempts)
}

func testCanceledContext(t *testing.T, open func(t *testing.T) engine.Store) {
	s, ctx := open(t), testContext(t)
	existing := mustCreate(t, ctx, s, newObject("acme"))
	canceled, cancel := context.WithCancel(ctx)
	cancel()

	o := newObject("acme")
	assert.Error(t, s.CreateObject(canceled, o), "CreateObject with a canceled context")
	n := clone(existing)
	n.Rev, n.State = 2, engine.StateActive
	assert.Error(t, s.UpdateObject(canceled, n, 1), "UpdateObject with a canceled context")
	_, err := s.InitMeta(canceled, "canceled", []byte("x"))
	assert.Error(t, err, "InitMeta with a canceled context")

	// None of them happened.
	_, err = s.GetObject(ctx, "acme", o.ID)
	assert.ErrorIs(t, err, engine.ErrNotFound)
	assertSameObject(t, existing, mustGet(t, ctx, s, "acme", existing.ID))
	_, err = s.GetMeta(ctx, "canceled")
	assert.ErrorIs(t, err, engine.ErrNotFound)
}

func testPingClose(t *testing.T, open func(t *testing.T) engine.Store) {
	s, ctx := open(t), testContext(t)
	require.NoError(t, s.Ping(ctx))
	o := mustCreate(t, ctx, s, newObject("acme"))

	require.NoError(t, s.Close())
	assert.NotPanics(t, func() { assert.NoError(t, s.Close(), "second Close") })
	assert.Error(t, s.Ping(ctx), "Ping after Close")
	_, err := s.GetObject(ctx, "acme", o.ID)
	assert.Error(t, err, "GetObject after Close")
	assert.Error(t, s.CreateObject(ctx, newObject("acme")), "CreateObject after Close")
	_, err = s.ListObjects(ctx, engine.ObjectQuery{Tenant: "acme"})
	assert.Error(t, err, "ListObjects after Close")
}
