package postgres

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The tests run against the PostgreSQL server named by envTestDB (a
// postgres:// URL of a role that may create databases; scripts/pg.sh
// starts a private one). Each test gets a database of its own, created
// with a random name and dropped at cleanup, so tests are independent and
// may run in parallel. Without the variable they skip, unless envRequire
// is 1 (as in CI): then they fail, so they can never silently not run.
const (
	envTestDB  = "MINIKMS_TEST_DB_URL"
	envRequire = "MINIKMS_REQUIRE_PG"
)

// serverURL returns the test server's URL, or skips (or fails) t.
func serverURL(t testing.TB) string {
	t.Helper()
	u := os.Getenv(envTestDB)
	if u == "" {
		if os.Getenv(envRequire) == "1" {
			t.Fatalf("%s is not set but %s=1: the PostgreSQL tests must run (start a server with scripts/pg.sh start DIR)", envTestDB, envRequire)
		}
		t.Skipf("%s is not set: skipping the PostgreSQL tests (scripts/pg.sh start DIR starts a server; set %s=1 to make this a failure)", envTestDB, envRequire)
	}
	return u
}

// newDatabase creates an empty database on the test server, dropped when
// t ends, and returns its URL.
func newDatabase(t testing.TB) string {
	t.Helper()
	admin := serverURL(t)
	u, err := url.Parse(admin)
	require.NoError(t, err, "%s", envTestDB)
	var rnd [8]byte
	_, _ = rand.Read(rnd[:])
	name := "minikms_test_" + hex.EncodeToString(rnd[:])

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	conn, err := pgx.Connect(ctx, admin)
	require.NoError(t, err, "connect to the test server")
	defer conn.Close(ctx)
	_, err = conn.Exec(ctx, "CREATE DATABASE "+name)
	require.NoError(t, err)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		conn, err := pgx.Connect(ctx, admin)
		if err != nil {
			t.Errorf("drop test database %s: %v", name, err)
			return
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			t.Errorf("drop test database %s: %v", name, err)
		}
	})
	u.Path = "/" + name
	return u.String()
}

// openTest opens a store on a new database, closed at cleanup.
func openTest(t testing.TB) (*Store, string) {
	t.Helper()
	dbURL := newDatabase(t)
	s, err := Open(t.Context(), dbURL)
	require.NoError(t, err)
	t.Cleanup(func() { assert.NoError(t, s.Close()) })
	return s, dbURL
}

// exec runs statements on the database directly, as an administrator or
// an attacker would.
func exec(t testing.TB, dbURL string, query string, args ...any) {
	t.Helper()
	ctx := t.Context()
	conn, err := pgx.Connect(ctx, dbURL)
	require.NoError(t, err)
	defer conn.Close(context.Background())
	_, err = conn.Exec(ctx, query, args...)
	require.NoError(t, err)
}
