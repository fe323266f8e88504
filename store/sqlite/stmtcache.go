package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync"
)

// maxCachedStmts caps the prepared statements one pool keeps. The package
// uses a few dozen statement texts (ListObjects builds one per filter
// shape); past the cap a statement is parsed on every use instead.
const maxCachedStmts = 256

// stmtCache keeps prepared statements of one pool by text. With the
// transpiled SQLite, parsing costs more than running the small statements
// of this package, so each text is prepared once and reused; database/sql
// then prepares a *sql.Stmt once on each connection that runs it.
//
// Preparing takes a connection of the pool. Code holding one (inside a
// transaction) must therefore never prepare: it only looks statements up
// (stmt), and statements are prepared before (prepare, at Open, or get,
// before a read transaction begins). Otherwise a pool whose connections
// are all inside transactions would wait for itself.
type stmtCache struct {
	db *sql.DB
	mu sync.Mutex
	m  map[string]*sql.Stmt
}

func newStmtCache(db *sql.DB) *stmtCache {
	return &stmtCache{db: db, m: make(map[string]*sql.Stmt)}
}

// prepare caches each of queries. Call it while no transaction of the pool
// is open.
func (c *stmtCache) prepare(ctx context.Context, queries ...string) error {
	for _, q := range queries {
		if _, err := c.get(ctx, q); err != nil {
			return fmt.Errorf("prepare %.40q...: %w", q, err)
		}
	}
	return nil
}

// get returns the prepared statement for query, preparing it if needed,
// or nil if the cache is full. The caller must not hold a connection of
// the pool.
func (c *stmtCache) get(ctx context.Context, query string) (*sql.Stmt, error) {
	c.mu.Lock()
	st, ok := c.m[query]
	full := len(c.m) >= maxCachedStmts
	c.mu.Unlock()
	if ok || full {
		return st, nil
	}
	// Prepare without holding mu: preparing waits for a free connection,
	// and the holders of connections look statements up under mu.
	st, err := c.db.PrepareContext(ctx, query)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if other, ok := c.m[query]; ok {
		// Prepared concurrently by another caller: keep one.
		return other, st.Close()
	}
	if len(c.m) >= maxCachedStmts {
		return nil, st.Close()
	}
	c.m[query] = st
	return st, nil
}

// stmt returns the cached statement for query bound to tx, or nil if it is
// not cached. It never prepares.
func (c *stmtCache) stmt(ctx context.Context, tx *sql.Tx, query string) *sql.Stmt {
	c.mu.Lock()
	st := c.m[query]
	c.mu.Unlock()
	if st == nil {
		return nil
	}
	return tx.StmtContext(ctx, st)
}

// exec runs query in tx, prepared if it is cached.
func (c *stmtCache) exec(ctx context.Context, tx *sql.Tx, query string, args ...any) (sql.Result, error) {
	if st := c.stmt(ctx, tx, query); st != nil {
		return st.ExecContext(ctx, args...)
	}
	return tx.ExecContext(ctx, query, args...)
}

// query runs query in tx, prepared if it is cached.
func (c *stmtCache) query(ctx context.Context, tx *sql.Tx, query string, args ...any) (*sql.Rows, error) {
	if st := c.stmt(ctx, tx, query); st != nil {
		return st.QueryContext(ctx, args...)
	}
	return tx.QueryContext(ctx, query, args...)
}

// queryRow runs query in tx, prepared if it is cached.
func (c *stmtCache) queryRow(ctx context.Context, tx *sql.Tx, query string, args ...any) *sql.Row {
	if st := c.stmt(ctx, tx, query); st != nil {
		return st.QueryRowContext(ctx, args...)
	}
	return tx.QueryRowContext(ctx, query, args...)
}

// close closes every cached statement.
func (c *stmtCache) close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	var errs []error
	for q, st := range c.m {
		errs = append(errs, st.Close())
		delete(c.m, q)
	}
	return errors.Join(errs...)
}
