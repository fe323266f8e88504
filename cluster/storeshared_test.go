package cluster

import (
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/minikms/minikms/engine"
	"github.com/minikms/minikms/internal/pgtest"
	"github.com/minikms/minikms/store/postgres"
	"github.com/minikms/minikms/store/sqlite"
	"github.com/minikms/minikms/store/storetest"
)

// Two stores on one backend, for both backends: two processes on one
// SQLite file, two nodes on one PostgreSQL database.

func TestSharedSQLite(t *testing.T) {
	storetest.RunShared(t, func(t *testing.T) (engine.Store, func(t *testing.T) engine.Store) {
		path := filepath.Join(t.TempDir(), "shared.db")
		openOne := func(t *testing.T) engine.Store {
			s, err := sqlite.Open(t.Context(), path)
			require.NoError(t, err)
			t.Cleanup(func() { s.Close() })
			return s
		}
		return openOne(t), openOne
	})
}

func TestSharedPostgres(t *testing.T) {
	storetest.RunShared(t, func(t *testing.T) (engine.Store, func(t *testing.T) engine.Store) {
		dbURL := pgtest.NewDatabase(t)
		openOne := func(t *testing.T) engine.Store {
			s, err := postgres.Open(t.Context(), dbURL)
			require.NoError(t, err)
			t.Cleanup(func() { s.Close() })
			return s
		}
		return openOne(t), openOne
	})
}
