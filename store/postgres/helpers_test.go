package postgres

import (
	"testing"

	"github.com/minikms/minikms/internal/pgtest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The tests run against the PostgreSQL server named by MINIKMS_TEST_DB_URL
// (internal/pgtest: each test gets a database of its own, dropped at
// cleanup; without the variable they skip, unless MINIKMS_REQUIRE_PG=1).

// serverURL returns the test server's URL, or skips (or fails) t.
func serverURL(t testing.TB) string { return pgtest.ServerURL(t) }

// newDatabase creates an empty database on the test server, dropped when
// t ends, and returns its URL.
func newDatabase(t testing.TB) string { return pgtest.NewDatabase(t) }

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
	pgtest.Exec(t, dbURL, query, args...)
}
