package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/minikms/minikms/engine"
)

// blockWriter occupies the writer with a job that waits until release is
// called, so that the jobs submitted meanwhile queue up and form the next
// group. It returns once the writer runs the blocking job.
func blockWriter(t *testing.T, s *Store) (release func()) {
	t.Helper()
	running, unblock := make(chan struct{}), make(chan struct{})
	done := make(chan error, 1)
	go func() {
		done <- s.Write(context.Background(), func(context.Context, *sql.Tx) error {
			close(running)
			<-unblock
			return nil
		})
	}()
	<-running
	var once sync.Once
	release = func() {
		once.Do(func() {
			close(unblock)
			require.NoError(t, <-done)
		})
	}
	t.Cleanup(release)
	return release
}

// waitQueued waits until n jobs wait in the writer's queue.
func waitQueued(t *testing.T, s *Store, n int) {
	t.Helper()
	require.Eventually(t, func() bool { return len(s.queue) == n }, 10*time.Second, time.Millisecond,
		"want %d queued jobs", n)
}

func TestGroupCommitGroups(t *testing.T) {
	s, _ := openTest(t)
	ctx := t.Context()
	const creates = 64

	release := blockWriter(t, s)
	before := s.stats.commits.Load()
	errs := make(chan error, creates)
	for i := range creates {
		go func() { errs <- s.CreateObject(ctx, testObject("acme", fmt.Sprintf("obj-%02d", i))) }()
	}
	waitQueued(t, s, creates)
	release()
	for range creates {
		require.NoError(t, <-errs)
	}
	commits := s.stats.commits.Load() - before
	// One commit for the blocking job, one for the 64 creates.
	assert.Equal(t, int64(2), commits, "64 queued creates must commit together")
	all, err := s.ListObjects(ctx, engine.ObjectQuery{Tenant: "acme"})
	require.NoError(t, err)
	assert.Len(t, all, creates)
}

func TestGroupCommitGroupsUnderLoad(t *testing.T) {
	s, _ := openTest(t)
	ctx := t.Context()
	const creates = 64
	before := s.stats.commits.Load()
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range creates {
		wg.Go(func() {
			<-start
			assert.NoError(t, s.CreateObject(ctx, testObject("acme", fmt.Sprintf("obj-%02d", i))))
		})
	}
	close(start)
	wg.Wait()
	commits := s.stats.commits.Load() - before
	t.Logf("%d concurrent creates: %d commits", creates, commits)
	assert.Less(t, commits, int64(creates/2), "concurrent creates should share commits")
}

func TestGroupSizeIsCapped(t *testing.T) {
	s, _ := openTest(t)
	const jobs = maxGroupSize + 10
	release := blockWriter(t, s)
	before := s.stats.commits.Load()
	errs := make(chan error, jobs)
	for range jobs {
		go func() { errs <- s.Write(t.Context(), func(context.Context, *sql.Tx) error { return nil }) }()
	}
	waitQueued(t, s, jobs)
	release()
	for range jobs {
		require.NoError(t, <-errs)
	}
	assert.Equal(t, int64(3), s.stats.commits.Load()-before, "blocking job, a full group, the rest")
}

func TestFailingJobDoesNotAffectItsGroup(t *testing.T) {
	s, _ := openTest(t)
	ctx := t.Context()
	existing := testObject("acme", "existing")
	require.NoError(t, s.CreateObject(ctx, existing))
	errBoom := errors.New("boom")

	type outcome struct {
		name string
		err  error
	}
	jobs := []struct {
		name string
		run  func() error
		want error
	}{
		{"create ok 1", func() error { return s.CreateObject(ctx, testObject("acme", "ok-1")) }, nil},
		{"duplicate id", func() error { return s.CreateObject(ctx, testObject("globex", "existing")) }, engine.ErrExists},
		{"create ok 2", func() error { return s.CreateObject(ctx, testObject("acme", "ok-2")) }, nil},
		{"stale update", func() error {
			o := *existing
			o.Rev, o.Attrs = 6, []byte(`{"stale":true}`)
			return s.UpdateObject(ctx, &o, 5)
		}, engine.ErrConflict},
		{"update missing", func() error { return s.UpdateObject(ctx, &engine.StoredObject{Tenant: "acme", ID: "nope", Rev: 2}, 1) }, engine.ErrNotFound},
		{"job that writes and then fails", func() error {
			return s.Write(ctx, func(ctx context.Context, tx *sql.Tx) error {
				if _, err := tx.ExecContext(ctx, `INSERT INTO meta (key, value) VALUES ('partial', x'00')`); err != nil {
					return err
				}
				if _, err := tx.ExecContext(ctx, `UPDATE objects SET state = 5 WHERE id = 'existing'`); err != nil {
					return err
				}
				return errBoom
			})
		}, errBoom},
		{"create ok 3", func() error { return s.CreateObject(ctx, testObject("acme", "ok-3")) }, nil},
		{"meta ok", func() error { _, err := s.InitMeta(ctx, "after", []byte("v")); return err }, nil},
	}

	release := blockWriter(t, s)
	before := s.stats.commits.Load()
	results := make(chan outcome, len(jobs))
	for i, j := range jobs {
		go func() { results <- outcome{j.name, j.run()} }()
		waitQueued(t, s, i+1) // queue them in this order
	}
	release()
	got := map[string]error{}
	for range jobs {
		r := <-results
		got[r.name] = r.err
	}
	assert.Equal(t, int64(2), s.stats.commits.Load()-before, "the blocking job's group and one more")
	for _, j := range jobs {
		if j.want == nil {
			assert.NoError(t, got[j.name], j.name)
		} else {
			assert.ErrorIs(t, got[j.name], j.want, j.name)
		}
	}
	for _, id := range []string{"ok-1", "ok-2", "ok-3"} {
		_, err := s.GetObject(ctx, "acme", id)
		assert.NoError(t, err, id)
	}
	_, err := s.GetObject(ctx, "globex", "existing")
	assert.ErrorIs(t, err, engine.ErrNotFound)
	cur, err := s.GetObject(ctx, "acme", "existing")
	require.NoError(t, err)
	assert.Equal(t, existing, cur, "the failed jobs' changes must be rolled back")
	_, err = s.GetMeta(ctx, "partial")
	assert.ErrorIs(t, err, engine.ErrNotFound)
	v, err := s.GetMeta(ctx, "after")
	require.NoError(t, err)
	assert.Equal(t, []byte("v"), v)
}

func TestCancelWhileQueuedWithdrawsTheJob(t *testing.T) {
	s, _ := openTest(t)
	release := blockWriter(t, s)
	ctx, cancel := context.WithCancel(t.Context())
	ranFlag := make(chan struct{}, 1)
	result := make(chan error, 1)
	go func() {
		result <- s.Write(ctx, func(context.Context, *sql.Tx) error {
			ranFlag <- struct{}{}
			return nil
		})
	}()
	waitQueued(t, s, 1)
	cancel()
	assert.ErrorIs(t, <-result, context.Canceled)
	release()
	// A later job runs after the withdrawn one would have.
	require.NoError(t, s.Write(t.Context(), func(context.Context, *sql.Tx) error { return nil }))
	assert.Empty(t, ranFlag, "a withdrawn job must never run")
}

func TestCancelAfterTakenWaitsForTheRealResult(t *testing.T) {
	s, _ := openTest(t)
	ctx, cancel := context.WithCancel(t.Context())
	running, finish := make(chan struct{}), make(chan struct{})
	result := make(chan error, 1)
	go func() {
		result <- s.Write(ctx, func(ctx context.Context, tx *sql.Tx) error {
			close(running)
			<-finish
			_, err := tx.ExecContext(ctx, `INSERT INTO meta (key, value) VALUES ('taken', x'01')`)
			return err
		})
	}()
	<-running
	cancel()
	select {
	case err := <-result:
		t.Fatalf("Write returned %v before its taken job finished", err)
	case <-time.After(50 * time.Millisecond):
	}
	close(finish)
	require.NoError(t, <-result, "a taken job reports its real result")
	v, err := s.GetMeta(t.Context(), "taken")
	require.NoError(t, err)
	assert.Equal(t, []byte{1}, v)
}

func TestCloseDrainsQueuedJobs(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "minikms.db")
	s, err := Open(ctx, path)
	require.NoError(t, err)
	const jobs = 100
	release := blockWriter(t, s)
	errs := make(chan error, jobs)
	for i := range jobs {
		go func() { errs <- s.CreateObject(ctx, testObject("acme", fmt.Sprintf("obj-%03d", i))) }()
	}
	waitQueued(t, s, jobs)
	closed := make(chan error, 1)
	go func() { closed <- s.Close() }()
	require.Eventually(t, s.closed.Load, 5*time.Second, time.Millisecond)
	assert.ErrorIs(t, s.Write(ctx, func(context.Context, *sql.Tx) error { return nil }), ErrClosed, "no new job after Close")
	release()
	require.NoError(t, <-closed)
	for range jobs {
		require.NoError(t, <-errs, "a job queued before Close must complete")
	}
	assert.NoError(t, s.Close(), "second Close")

	s, err = Open(ctx, path)
	require.NoError(t, err)
	defer s.Close()
	q := engine.ObjectQuery{Tenant: "acme"}
	all, err := s.ListObjects(ctx, q)
	require.NoError(t, err)
	assert.Len(t, all, jobs)
}
