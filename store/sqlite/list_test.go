package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/minikms/minikms/engine"
)

func TestListPlansUseIndexes(t *testing.T) {
	t.Run("fresh database", func(t *testing.T) {
		s, _ := openTest(t)
		assertListPlans(t, s)
	})
	// With statistics (an operator ran ANALYZE or PRAGMA optimize) on
	// one big tenant, one small one, few types and many names, the
	// planner must still walk the same indexes.
	t.Run("after ANALYZE", func(t *testing.T) {
		s, path := openTest(t)
		types := []engine.ObjectType{engine.TypeSymmetricKey, engine.TypePrivateKey, engine.TypeSecretData}
		err := s.Write(t.Context(), func(ctx context.Context, tx *sql.Tx) error {
			for i := range 20_000 {
				o := testObject("a", fmt.Sprint("a-", i))
				o.Type = types[i%len(types)]
				o.Names = []string{fmt.Sprint("n", i%100)}
				o.Groups = []string{fmt.Sprint("g", i%5)}
				if _, err := s.insertObject(ctx, tx, o); err != nil {
					return err
				}
			}
			for i := range 200 {
				if _, err := s.insertObject(ctx, tx, testObject("b", fmt.Sprint("b-", i))); err != nil {
					return err
				}
			}
			_, err := tx.ExecContext(ctx, "ANALYZE")
			return err
		})
		require.NoError(t, err)
		// New connections load the statistics.
		require.NoError(t, s.Close())
		s, err = Open(t.Context(), path)
		require.NoError(t, err)
		defer s.Close()
		var stats int
		require.NoError(t, s.rdb.QueryRowContext(t.Context(), "SELECT count(*) FROM sqlite_stat1").Scan(&stats))
		require.Positive(t, stats)
		assertListPlans(t, s)
	})
}

// assertListPlans checks with EXPLAIN QUERY PLAN that ListObjects
// searches an index in seq order for every filter shape: no scan of the
// objects table and no sort.
func assertListPlans(t *testing.T, s *Store) {
	t.Helper()
	sym, priv := engine.TypeSymmetricKey, engine.TypePrivateKey
	active := engine.StateActive
	cases := []struct {
		name  string
		q     engine.ObjectQuery
		index string // the index the plan must search
	}{
		{"tenant", engine.ObjectQuery{Tenant: "a"}, "objects_by_tenant "},
		{"tenant paged", engine.ObjectQuery{Tenant: "a", BeforeSeq: 10}, "objects_by_tenant "},
		{"tenant+type", engine.ObjectQuery{Tenant: "a", Types: []engine.ObjectType{sym}}, "objects_by_tenant_type "},
		{"tenant+types", engine.ObjectQuery{Tenant: "a", Types: []engine.ObjectType{sym, priv}}, "objects_by_tenant "},
		{"tenant+state", engine.ObjectQuery{Tenant: "a", States: []engine.State{active}}, "objects_by_tenant_state "},
		{"tenant+type+states", engine.ObjectQuery{Tenant: "a", Types: []engine.ObjectType{sym}, States: []engine.State{active, engine.StatePreActive}}, "objects_by_tenant_type "},
		{"tenant+types+state", engine.ObjectQuery{Tenant: "a", Types: []engine.ObjectType{sym, priv}, States: []engine.State{active}}, "objects_by_tenant_state "},
		{"tenant+types+states", engine.ObjectQuery{Tenant: "a", Types: []engine.ObjectType{sym, priv}, States: []engine.State{active, engine.StatePreActive}}, "objects_by_tenant "},
		{"tenant+type+state", engine.ObjectQuery{Tenant: "a", Types: []engine.ObjectType{sym}, States: []engine.State{active}}, "objects_by_tenant_type_state "},
		{"tenant+name", engine.ObjectQuery{Tenant: "a", Name: "n1"}, "object_names_lookup "},
		{"tenant+name paged", engine.ObjectQuery{Tenant: "a", Name: "n1", BeforeSeq: 10, Types: []engine.ObjectType{sym}}, "object_names_lookup "},
		{"tenant+group", engine.ObjectQuery{Tenant: "a", Group: "g1"}, "object_groups_lookup "},
		{"tenant+group+type", engine.ObjectQuery{Tenant: "a", Group: "g1", Types: []engine.ObjectType{sym}}, "object_groups_lookup "},
		{"tenant+name+group", engine.ObjectQuery{Tenant: "a", Name: "n1", Group: "g1"}, "object_names_lookup "},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			query, args, err := listQuery(tc.q)
			require.NoError(t, err)
			rows, err := s.rdb.QueryContext(t.Context(), "EXPLAIN QUERY PLAN "+query, args...)
			require.NoError(t, err)
			defer rows.Close()
			var plan []string
			for rows.Next() {
				var id, parent, unused int
				var detail string
				require.NoError(t, rows.Scan(&id, &parent, &unused, &detail))
				plan = append(plan, detail)
			}
			require.NoError(t, rows.Err())
			text := strings.Join(plan, "\n")
			assert.NotRegexp(t, `(?m)^SCAN `, text, "full scan")
			assert.NotContains(t, text, "TEMP B-TREE", "sort instead of index order")
			assert.Contains(t, text, "INDEX "+tc.index)
		})
	}
}

func TestListLimitIsCapped(t *testing.T) {
	for _, limit := range []int{0, -1, maxListLimit + 1, 1 << 40} {
		_, args, err := listQuery(engine.ObjectQuery{Tenant: "a", Limit: limit})
		require.NoError(t, err)
		assert.Equal(t, maxListLimit, args[len(args)-1], "limit %d", limit)
	}
	many := make([]engine.ObjectType, maxFilterValues+1)
	for i := range many {
		many[i] = engine.ObjectType(i)
	}
	_, _, err := listQuery(engine.ObjectQuery{Tenant: "a", Types: many})
	assert.ErrorIs(t, err, engine.ErrLimit)
}

// A read pool of one connection serves concurrent reads of many statement
// shapes: preparing a new ListObjects statement must not wait for the
// connection while holding what the connection's holder needs.
func TestOneReadConnectionServesConcurrentReads(t *testing.T) {
	path := filepath.Join(t.TempDir(), "minikms.db")
	s, err := Open(t.Context(), path, WithReadConns(1))
	require.NoError(t, err)
	defer s.Close()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	require.NoError(t, s.CreateObject(ctx, testObject("acme", "obj")))

	all := []engine.ObjectType{engine.TypeCertificate, engine.TypeSymmetricKey, engine.TypePublicKey, engine.TypePrivateKey,
		engine.TypeSplitKey, engine.TypeTemplate, engine.TypeSecretData, engine.TypeOpaqueObject, engine.TypePGPKey}
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 40 {
				// Up to 9 types x 2 paging x 3 drivers: new shapes all along.
				q := engine.ObjectQuery{Tenant: "acme", Types: all[:(g+i)%len(all)], BeforeSeq: int64(i % 2 * 100)}
				switch i % 3 {
				case 1:
					q.Name = "n-obj"
				case 2:
					q.Group = "default"
				}
				if _, err := s.ListObjects(ctx, q); !assert.NoError(t, err) {
					return
				}
				if _, err := s.GetObject(ctx, "acme", "obj"); !assert.NoError(t, err) {
					return
				}
			}
		})
	}
	wg.Wait()
}
