package sqlite

import (
	"bytes"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"testing/fstest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/minikms/minikms/engine"
	"github.com/minikms/minikms/store/storetest"
)

// openTest opens a store on a new file in t's temp dir, closed at cleanup.
func openTest(t testing.TB) (*Store, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "minikms.db")
	s, err := Open(t.Context(), path)
	require.NoError(t, err)
	t.Cleanup(func() { assert.NoError(t, s.Close()) })
	return s, path
}

func TestConformance(t *testing.T) {
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
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "minikms.db")
	s, err := Open(ctx, path)
	require.NoError(t, err)

	_, err = s.InitMeta(ctx, "kcv/1", []byte("check"))
	require.NoError(t, err)
	var want []*engine.StoredObject
	for i := range 50 {
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

	s, err = Open(ctx, path)
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
	byName, err := s.ListObjects(ctx, engine.ObjectQuery{Tenant: "acme", Name: "renamed"})
	require.NoError(t, err)
	require.Len(t, byName, 1)
	assert.Equal(t, upd.ID, byName[0].ID)

	// Seq keeps growing past every seq handed out before the restart.
	o := testObject("acme", "after-restart")
	require.NoError(t, s.CreateObject(ctx, o))
	assert.Greater(t, o.Seq, want[len(want)-1].Seq)
}

// schemaVersions reads schema_migrations straight from the file.
func schemaVersions(t *testing.T, path string) []int {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+path)
	require.NoError(t, err)
	defer db.Close()
	rows, err := db.Query(`SELECT version FROM schema_migrations ORDER BY version`)
	require.NoError(t, err)
	defer rows.Close()
	var vs []int
	for rows.Next() {
		var v int
		require.NoError(t, rows.Scan(&v))
		vs = append(vs, v)
	}
	require.NoError(t, rows.Err())
	return vs
}

func TestMigrationsIdempotentOnReopen(t *testing.T) {
	ctx := t.Context()
	ms, err := loadMigrations(migrationFiles)
	require.NoError(t, err)
	var all []int
	for _, m := range ms {
		all = append(all, m.version)
	}

	path := filepath.Join(t.TempDir(), "minikms.db")
	for i := range 3 {
		s, err := Open(ctx, path)
		require.NoError(t, err, "open %d", i)
		o := testObject("acme", fmt.Sprintf("obj-%d", i))
		require.NoError(t, s.CreateObject(ctx, o), "open %d", i)
		require.NoError(t, s.Close())
		assert.Equal(t, all, schemaVersions(t, path), "open %d", i)
	}
	s, err := Open(ctx, path)
	require.NoError(t, err)
	defer s.Close()
	got, err := s.ListObjects(ctx, engine.ObjectQuery{Tenant: "acme"})
	require.NoError(t, err)
	assert.Equal(t, []string{"obj-2", "obj-1", "obj-0"}, []string{got[0].ID, got[1].ID, got[2].ID})
}

func TestRefusesNewerSchema(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "minikms.db")
	s, err := Open(ctx, path)
	require.NoError(t, err)
	require.NoError(t, s.CreateObject(ctx, testObject("acme", "kept")))
	require.NoError(t, s.Close())

	ms, err := loadMigrations(migrationFiles)
	require.NoError(t, err)
	known := ms[len(ms)-1].version
	future := known + 7
	db, err := sql.Open("sqlite", "file:"+path)
	require.NoError(t, err)
	_, err = db.Exec(`INSERT INTO schema_migrations (version, name, applied) VALUES (?, 'from_the_future.sql', 0)`, future)
	require.NoError(t, err)
	require.NoError(t, db.Close())

	_, err = Open(ctx, path)
	require.ErrorIs(t, err, ErrSchemaTooNew)
	assert.Contains(t, err.Error(), fmt.Sprintf("version %d", future))
	assert.Contains(t, err.Error(), fmt.Sprintf("version %d", known))
	assert.Equal(t, append(versionsUpTo(known), future), schemaVersions(t, path), "a refused open must change nothing")
}

func versionsUpTo(n int) []int {
	vs := make([]int, n)
	for i := range vs {
		vs[i] = i + 1
	}
	return vs
}

func TestLoadMigrationsRejectsBadSets(t *testing.T) {
	cases := []struct {
		name  string
		files []string
		err   string
	}{
		{"gap", []string{"0001_a.sql", "0003_c.sql"}, "expected version 2"},
		{"duplicate", []string{"0001_a.sql", "0001_b.sql"}, "expected version 2"},
		{"not starting at 1", []string{"0002_b.sql"}, "expected version 1"},
		{"no number", []string{"init.sql"}, "NNNN_description"},
		{"bad number", []string{"00x1_a.sql"}, "not a positive number"},
		{"zero", []string{"0000_a.sql"}, "not a positive number"},
		{"empty", nil, "no embedded migrations"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			fsys := fstest.MapFS{"migrations/.keep": {}}
			for _, f := range tc.files {
				fsys["migrations/"+f] = &fstest.MapFile{Data: []byte("SELECT 1;")}
			}
			_, err := loadMigrations(fsys)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.err)
		})
	}
}

func TestOpenRejectsBadArguments(t *testing.T) {
	dir := t.TempDir()
	cases := []struct {
		name string
		path string
		opts []Option
	}{
		{"empty path", "", nil},
		{"memory", ":memory:", nil},
		{"uri", "file:x.db", nil},
		{"zero readers", filepath.Join(dir, "a.db"), []Option{WithReadConns(0)}},
		{"too many readers", filepath.Join(dir, "b.db"), []Option{WithReadConns(maxReadConns + 1)}},
		{"negative busy timeout", filepath.Join(dir, "c.db"), []Option{WithBusyTimeout(-time.Second)}},
		{"directory missing", filepath.Join(dir, "no", "such", "dir", "d.db"), nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s, err := Open(t.Context(), tc.path, tc.opts...)
			assert.Error(t, err)
			assert.Nil(t, s)
		})
	}
}

func TestOpenRefusesAFileThatIsNotADatabase(t *testing.T) {
	path := filepath.Join(t.TempDir(), "garbage.db")
	require.NoError(t, os.WriteFile(path, bytes.Repeat([]byte("not a database "), 512), 0o600))
	s, err := Open(t.Context(), path)
	assert.Error(t, err)
	assert.Nil(t, s)
}

func TestOpenPathWithURICharacters(t *testing.T) {
	path := filepath.Join(t.TempDir(), "odd ?name#with%chars&_txlock=x.db")
	s, err := Open(t.Context(), path)
	require.NoError(t, err)
	require.NoError(t, s.CreateObject(t.Context(), testObject("acme", "x")))
	require.NoError(t, s.Close())
	assert.FileExists(t, path)
}

func TestErrorsCarryNoSecrets(t *testing.T) {
	s, _ := openTest(t)
	ctx := t.Context()
	secretAttrs := []byte(`{"secret-attr":"SECRET-ATTR-VALUE"}`)
	secretKey := []byte("SECRET-WRAPPED-MATERIAL")
	o := testObject("acme", "x")
	o.Attrs, o.Wrapped = secretAttrs, secretKey
	require.NoError(t, s.CreateObject(ctx, o))

	dup := testObject("acme", "x")
	dup.Attrs, dup.Wrapped = secretAttrs, secretKey
	errs := []error{s.CreateObject(ctx, dup)}
	stale := *o
	stale.Rev = 9
	errs = append(errs, s.UpdateObject(ctx, &stale, 8))
	missing := *o
	missing.ID, missing.Rev = "missing", 2
	errs = append(errs, s.UpdateObject(ctx, &missing, 1))
	for _, err := range errs {
		require.Error(t, err)
		msg := err.Error()
		assert.NotContains(t, msg, "SECRET")
		assert.NotContains(t, msg, "objects.id", "sentinel messages may reach clients: no schema names")
	}
}

func TestRejectsInvalidObjects(t *testing.T) {
	s, _ := openTest(t)
	ctx := t.Context()
	tooMany := make([]string, maxLabels+1)
	for i := range tooMany {
		tooMany[i] = fmt.Sprint(i)
	}
	cases := []struct {
		name   string
		modify func(o *engine.StoredObject)
		want   error
	}{
		{"no tenant", func(o *engine.StoredObject) { o.Tenant = "" }, engine.ErrMissingData},
		{"no id", func(o *engine.StoredObject) { o.ID = "" }, engine.ErrMissingData},
		{"rev zero", func(o *engine.StoredObject) { o.Rev = 0 }, engine.ErrInvalidField},
		{"too many names", func(o *engine.StoredObject) { o.Names = tooMany }, engine.ErrLimit},
		{"too many groups", func(o *engine.StoredObject) { o.Groups = tooMany }, engine.ErrLimit},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			o := testObject("acme", "obj")
			tc.modify(o)
			assert.ErrorIs(t, s.CreateObject(ctx, o), tc.want)
		})
	}
	assert.ErrorIs(t, s.CreateObject(ctx, nil), engine.ErrMissingData)
	assert.ErrorIs(t, s.UpdateObject(ctx, nil, 1), engine.ErrMissingData)
	_, err := s.InitMeta(ctx, "", []byte("x"))
	assert.ErrorIs(t, err, engine.ErrMissingData)
	assert.Error(t, s.Write(ctx, nil))
}
