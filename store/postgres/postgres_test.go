package postgres

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"testing/fstest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/minikms/minikms/engine"
	"github.com/minikms/minikms/store/storetest"
)

func TestConformance(t *testing.T) {
	t.Parallel()
	serverURL(t) // skip (or fail) once, not in every subtest
	storetest.Run(t, func(t *testing.T) engine.Store {
		s, _ := openTest(t)
		return s
	})
	t.Run("Backup", func(t *testing.T) {
		storetest.RunBackup(t, func(t *testing.T) engine.Store { s, _ := openTest(t); return s })
	})
	storetest.RunRotation(t, func(t *testing.T) engine.Store { s, _ := openTest(t); return s })
}

func testObject(tenant, id string) *engine.StoredObject {
	return &engine.StoredObject{
		Tenant: tenant, ID: id, Type: engine.TypeSymmetricKey, State: engine.StateActive,
		Names: []string{"n-" + id}, Groups: []string{"default"},
		Created: time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC), Rev: 1,
		Attrs: []byte(`{"k":"` + id + `"}`), Wrapped: []byte("wrapped-" + id), RootVersion: 1,
	}
}

func TestReopenKeepsEverything(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	dbURL := newDatabase(t)
	s, err := Open(ctx, dbURL)
	require.NoError(t, err)

	_, err = s.InitMeta(ctx, "kcv/1", []byte("check"))
	require.NoError(t, err)
	var want []*engine.StoredObject
	for i := range 20 {
		o := testObject("acme", fmt.Sprintf("obj-%d", i))
		if i%7 == 0 {
			o.Wrapped = nil
		}
		require.NoError(t, s.CreateObject(ctx, o))
		want = append(want, o)
	}
	upd := *want[3]
	upd.Rev, upd.State, upd.Names, upd.Wrapped = 2, engine.StateDeactivated, []string{"renamed"}, []byte{}
	require.NoError(t, s.UpdateObject(ctx, &upd, 1))
	want[3] = &upd
	require.NoError(t, s.Close())

	s, err = Open(ctx, dbURL)
	require.NoError(t, err)
	defer s.Close()
	v, err := s.GetMeta(ctx, "kcv/1")
	require.NoError(t, err)
	assert.Equal(t, []byte("check"), v)
	for _, w := range want {
		got, err := s.GetObject(ctx, "acme", w.ID)
		require.NoError(t, err)
		assert.Equal(t, w, got)
	}
	// Seq keeps growing after a reopen.
	o := testObject("acme", "after-reopen")
	require.NoError(t, s.CreateObject(ctx, o))
	assert.Greater(t, o.Seq, want[len(want)-1].Seq)
}

// TestLongAndOddLabels: Names up to the engine's text limit (4096 bytes,
// more than a btree entry holds), values sharing the indexed prefix, and
// bytes PostgreSQL's text refuses (NUL) are stored and found exactly, as
// with SQLite.
func TestLongAndOddLabels(t *testing.T) {
	t.Parallel()
	s, _ := openTest(t)
	ctx := t.Context()
	random := make([]byte, engine.MaxTextLength)
	for i := range random {
		random[i] = byte('!' + (i*7919+i/13)%90)
	}
	long := string(random)
	prefix := strings.Repeat("p", 300)
	values := []string{long, prefix + "-a", prefix + "-b", "nul\x00inside", "ünïcödé ✓"}
	var objs []*engine.StoredObject
	for i, v := range values {
		o := testObject("acme", fmt.Sprintf("odd-%d", i))
		o.Names = []string{v}
		o.Groups = []string{v, "g"}
		require.NoError(t, s.CreateObject(ctx, o))
		objs = append(objs, o)
	}
	for i, v := range values {
		got, err := s.GetObject(ctx, "acme", objs[i].ID)
		require.NoError(t, err)
		assert.Equal(t, []string{v}, got.Names)
		for _, q := range []engine.ObjectQuery{{Tenant: "acme", Name: v}, {Tenant: "acme", Group: v}, {Tenant: "acme", Name: v, Group: v}} {
			list, err := s.ListObjects(ctx, q)
			require.NoError(t, err)
			if assert.Len(t, list, 1, "query %d", i) {
				assert.Equal(t, objs[i].ID, list[0].ID)
			}
		}
	}
}

func TestUpdateMissOrConflict(t *testing.T) {
	t.Parallel()
	s, _ := openTest(t)
	ctx := t.Context()
	o := testObject("acme", "cas")
	o.Names = []string{"a", "b"}
	require.NoError(t, s.CreateObject(ctx, o))
	n := *o
	n.Rev, n.Names = 2, []string{"b", "a", "c"}
	require.NoError(t, s.UpdateObject(ctx, &n, 1))
	// A loser whose new revision equals the winner's: its label statement
	// meets the winner's labels, and still nothing changes.
	lose := *o
	lose.Rev, lose.Names = 2, []string{"x"}
	assert.ErrorIs(t, s.UpdateObject(ctx, &lose, 1), engine.ErrConflict)
	got, err := s.GetObject(ctx, "acme", "cas")
	require.NoError(t, err)
	assert.Equal(t, []string{"b", "a", "c"}, got.Names)
	assert.Equal(t, int64(2), got.Rev)
	gone := *o
	gone.ID, gone.Rev = "absent", 2
	assert.ErrorIs(t, s.UpdateObject(ctx, &gone, 1), engine.ErrNotFound)
}

func TestConcurrentOpenMigratesOnce(t *testing.T) {
	t.Parallel()
	dbURL := newDatabase(t)
	const nodes = 4
	var (
		wg     sync.WaitGroup
		stores [nodes]*Store
		errs   [nodes]error
	)
	start := make(chan struct{})
	for i := range nodes {
		wg.Go(func() {
			<-start
			stores[i], errs[i] = Open(t.Context(), dbURL)
		})
	}
	close(start)
	wg.Wait()
	for i := range nodes {
		require.NoError(t, errs[i], "node %d", i)
		t.Cleanup(func() { stores[i].Close() })
	}
	var versions []int
	rows, err := stores[0].pool.Query(t.Context(), `SELECT version FROM schema_migrations ORDER BY version`)
	require.NoError(t, err)
	for rows.Next() {
		var v int
		require.NoError(t, rows.Scan(&v))
		versions = append(versions, v)
	}
	require.NoError(t, rows.Err())
	ms, err := loadMigrations(migrationFiles)
	require.NoError(t, err)
	want := make([]int, len(ms))
	for i := range ms {
		want[i] = i + 1
	}
	assert.Equal(t, want, versions, "every migration applied once")
	// Every node works on the one schema.
	for i, s := range stores {
		require.NoError(t, s.CreateObject(t.Context(), testObject("acme", fmt.Sprint("node-", i))))
	}
}

func TestRefusesNewerSchema(t *testing.T) {
	t.Parallel()
	s, dbURL := openTest(t)
	require.NoError(t, s.Close())
	exec(t, dbURL, `INSERT INTO schema_migrations (version, name) VALUES (99, '0099_future.sql')`)
	_, err := Open(t.Context(), dbURL)
	require.Error(t, err)
	assert.ErrorIs(t, err, ErrSchemaTooNew)
	ms, _ := loadMigrations(migrationFiles)
	assert.Contains(t, err.Error(), fmt.Sprintf("database schema version 99 is newer than this miniKMS (%d)", len(ms)))
}

func TestRefusesNonDurableSettings(t *testing.T) {
	t.Parallel()
	dbURL := newDatabase(t)
	name := dbURL[strings.LastIndex(dbURL, "/")+1:]
	name, _, _ = strings.Cut(name, "?")
	exec(t, dbURL, `ALTER DATABASE `+name+` SET synchronous_commit = off`)
	_, err := Open(t.Context(), dbURL)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "synchronous_commit is off")
}

func TestLoadMigrations(t *testing.T) {
	ms, err := loadMigrations(migrationFiles)
	require.NoError(t, err)
	// 0001-0003 are the twins of store/sqlite's; 0004 (the change feed)
	// is PostgreSQL's own.
	require.Len(t, ms, 4, "keep the PostgreSQL schema in step with store/sqlite's migrations")
	assert.Equal(t, "0004_changes.sql", ms[3].name)
	for _, bad := range []fstest.MapFS{
		{"migrations/0001_a.sql": {}, "migrations/0003_c.sql": {}},
		{"migrations/0001_a.sql": {}, "migrations/0001_b.sql": {}},
		{"migrations/x_a.sql": {}},
		{"migrations/0001.sql": {}},
		{},
	} {
		_, err := loadMigrations(bad)
		assert.Error(t, err)
	}
}

func TestOpenRejectsBadURLs(t *testing.T) {
	for _, u := range []string{"", "/var/lib/minikms.db", "mysql://h/db", "host=localhost dbname=x"} {
		_, err := Open(t.Context(), u)
		assert.Error(t, err, "%q", u)
	}
	_, err := Open(t.Context(), "postgres://user:secret@127.0.0.1:1/db?sslmode=disable&connect_timeout=1")
	require.Error(t, err)
	assert.NotContains(t, err.Error(), "secret", "an error never shows the password")
	assert.ErrorIs(t, err, engine.ErrUnavailable)
}

func TestClosedStore(t *testing.T) {
	t.Parallel()
	s, _ := openTest(t)
	require.NoError(t, s.Close())
	require.NoError(t, s.Close())
	_, err := s.GetMeta(t.Context(), "x")
	assert.ErrorIs(t, err, ErrClosed)
	assert.ErrorIs(t, s.AppendAudit(t.Context(), nil), ErrClosed)
	_, err = s.IdentityGeneration(t.Context())
	assert.ErrorIs(t, err, engine.ErrUnavailable)
}

func TestErrorsKeepValuesOut(t *testing.T) {
	t.Parallel()
	s, _ := openTest(t)
	ctx := t.Context()
	o := testObject("acme", "secret-id-123")
	require.NoError(t, s.CreateObject(ctx, o))
	dup := testObject("globex", "secret-id-123")
	dup.Attrs = []byte("attribute-blob")
	err := s.CreateObject(ctx, dup)
	require.ErrorIs(t, err, engine.ErrExists)
	assert.Equal(t, engine.ErrExists.Error(), err.Error())
	assert.Zero(t, dup.Seq)
	assert.False(t, bytes.Contains([]byte(err.Error()), []byte("secret-id")))
}

// TestCanceledAppendReleasesTheLock: an appender whose context ends while
// it waits for the audit lock gives up, and the chain goes on.
func TestCanceledAppendReleasesTheLock(t *testing.T) {
	t.Parallel()
	s, _ := openTest(t)
	ctx := t.Context()
	held := make(chan struct{})
	release := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		done <- s.AppendAudit(ctx, func(head engine.AuditHead) ([]engine.AuditRecord, error) {
			close(held)
			<-release
			return nil, nil
		})
	}()
	<-held
	short, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancel()
	err := s.AppendAudit(short, func(engine.AuditHead) ([]engine.AuditRecord, error) {
		t.Error("build ran without the lock")
		return nil, nil
	})
	assert.True(t, errors.Is(err, context.DeadlineExceeded) || errors.Is(err, engine.ErrUnavailable), "%v", err)
	close(release)
	require.NoError(t, <-done)
	require.NoError(t, s.AppendAudit(ctx, func(head engine.AuditHead) ([]engine.AuditRecord, error) { return nil, nil }))
}

func TestLabelLookup(t *testing.T) {
	short := bytes.Repeat([]byte("a"), maxShortLabel)
	assert.Equal(t, short, labelLookup(short), "a short value is its own lookup")
	long := bytes.Repeat([]byte("a"), maxShortLabel+1)
	l := labelLookup(long)
	assert.Len(t, l, 256)
	assert.Equal(t, long[:longLabelPrefix], l[:longLabelPrefix])
	other := bytes.Clone(long)
	other[len(other)-1] = 'b'
	assert.NotEqual(t, l, labelLookup(other), "long values differing past the prefix differ")
	assert.Equal(t, bytes.Repeat([]byte("a"), maxShortLabel+1), long, "the value is not changed")
}
