package postgres

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgconn/ctxwatch"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/minikms/minikms/engine"
)

var (
	_ engine.Store         = (*Store)(nil)
	_ engine.IdentityStore = (*Store)(nil)
	_ engine.AuditStore    = (*Store)(nil)
	_ engine.ObjectDeleter = (*Store)(nil)
)

// ErrClosed is returned by every method called after Close.
var ErrClosed = fmt.Errorf("%w: postgres store is closed", engine.ErrUnavailable)

const (
	// defaultTimeout bounds one store call whose context has no deadline,
	// so that an unreachable server fails calls instead of hanging them.
	defaultTimeout = 30 * time.Second
	// defaultConnectTimeout bounds establishing one connection, unless the
	// URL sets connect_timeout.
	defaultConnectTimeout = 10 * time.Second
	// maxDefaultConns caps the default pool size (pool_max_conns in the URL
	// overrides it): each server connection is a process.
	maxDefaultConns = 32
)

// Store is an engine.Store (and engine.IdentityStore, engine.AuditStore)
// over one PostgreSQL database. It is safe for concurrent use, and several
// Stores, in one process or on several nodes, may share one database.
type Store struct {
	pool    *pgxpool.Pool
	timeout time.Duration

	closed    atomic.Bool
	closeOnce sync.Once

	stats stats

	// The change feed (changes.go).
	feedMu       sync.Mutex
	changePoll   time.Duration
	log          *slog.Logger
	identityKick chan struct{}
	followers    []func()
}

// stats counts committed write transactions, for tests and benchmarks.
type stats struct {
	commits atomic.Int64
}

type config struct {
	timeout time.Duration
}

// Option configures Open.
type Option func(*config)

// WithTimeout sets how long one store call may take when its context has
// no deadline of its own (default 30s). Zero means no bound but the
// caller's context.
func WithTimeout(d time.Duration) Option {
	return func(c *config) { c.timeout = d }
}

// Open connects to the database at url (postgres://... or
// postgresql://...), checks that commits are durable, applies any pending
// migrations under a lock that serializes nodes starting together, and
// returns the store. It refuses a database whose schema version is newer
// than this binary knows (ErrSchemaTooNew).
//
// The URL takes libpq's parameters (sslmode, connect_timeout, ...) and
// pgxpool's (pool_max_conns, pool_min_conns, pool_max_conn_lifetime,
// pool_max_conn_idle_time, pool_health_check_period). Without
// pool_max_conns the pool holds up to max(8, 4 × CPUs) connections, at
// most 32.
func Open(ctx context.Context, rawURL string, opts ...Option) (*Store, error) {
	cfg := config{timeout: defaultTimeout}
	for _, o := range opts {
		o(&cfg)
	}
	if cfg.timeout < 0 {
		return nil, fmt.Errorf("postgres: timeout cannot be negative (%s)", cfg.timeout)
	}
	pcfg, err := poolConfig(rawURL)
	if err != nil {
		return nil, err
	}
	ms, err := loadMigrations(migrationFiles)
	if err != nil {
		return nil, fmt.Errorf("postgres: %w", err)
	}
	if cfg.timeout > 0 {
		if _, ok := ctx.Deadline(); !ok {
			var cancel context.CancelFunc
			ctx, cancel = context.WithTimeout(ctx, max(cfg.timeout, time.Minute))
			defer cancel()
		}
	}
	if err := migrate(ctx, pcfg.ConnConfig, ms); err != nil {
		return nil, openErr(rawURL, err)
	}
	pool, err := pgxpool.NewWithConfig(ctx, pcfg)
	if err != nil {
		return nil, fmt.Errorf("postgres: %w", err)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, openErr(rawURL, err)
	}
	return &Store{pool: pool, timeout: cfg.timeout}, nil
}

// poolConfig parses the URL and sets this package's defaults.
func poolConfig(rawURL string) (*pgxpool.Config, error) {
	u, err := url.Parse(rawURL)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		return nil, errors.New("postgres: the database must be a postgres:// or postgresql:// URL")
	}
	pcfg, err := pgxpool.ParseConfig(rawURL)
	if err != nil {
		// pgx's parse errors may quote the connection string, password included.
		return nil, fmt.Errorf("postgres: invalid database URL %s", redactURL(rawURL))
	}
	q := u.Query()
	if !q.Has("pool_max_conns") {
		pcfg.MaxConns = int32(min(maxDefaultConns, max(8, 4*runtime.NumCPU())))
	}
	if !q.Has("pool_max_conn_idle_time") {
		pcfg.MaxConnIdleTime = 5 * time.Minute
	}
	cc := pcfg.ConnConfig
	if cc.ConnectTimeout == 0 {
		cc.ConnectTimeout = defaultConnectTimeout
	}
	// A canceled context cancels the statement on the server (a wait for a
	// lock ends at once) and keeps the connection, instead of only closing
	// the socket under a server that goes on working.
	cc.BuildContextWatcherHandler = func(c *pgconn.PgConn) ctxwatch.Handler {
		return &pgconn.CancelRequestContextWatcherHandler{Conn: c, DeadlineDelay: 2 * time.Second}
	}
	if _, ok := cc.RuntimeParams["application_name"]; !ok {
		cc.RuntimeParams["application_name"] = "minikms"
	}
	// Statements are prepared once per connection and cached by text (the
	// package uses a bounded set of texts: ListObjects and QueryAudit build
	// one per filter shape). Explicit, in case a URL asks for another mode.
	cc.DefaultQueryExecMode = pgx.QueryExecModeCacheStatement
	if cc.StatementCacheCapacity < 256 {
		cc.StatementCacheCapacity = 256
	}
	return pcfg, nil
}

// openErr is an error of Open, in full (the operator reads it, not a
// client), marked engine.ErrUnavailable if the server could not be reached.
func openErr(rawURL string, err error) error {
	if errors.Is(mapErr(err), engine.ErrUnavailable) {
		return fmt.Errorf("%w: postgres: %s: %w", engine.ErrUnavailable, redactURL(rawURL), err)
	}
	return fmt.Errorf("postgres: %s: %w", redactURL(rawURL), err)
}

// redactURL returns rawURL without its password, for messages.
func redactURL(rawURL string) string {
	u, err := url.Parse(rawURL)
	if err != nil {
		return "(unparsable URL)"
	}
	return u.Redacted()
}

// op returns the context for one store call: ctx, bounded by the store's
// timeout if it has no deadline. It fails once the store is closed.
func (s *Store) op(ctx context.Context) (context.Context, context.CancelFunc, error) {
	if s.closed.Load() {
		return nil, nil, ErrClosed
	}
	if err := ctx.Err(); err != nil {
		return nil, nil, err
	}
	if _, ok := ctx.Deadline(); ok || s.timeout == 0 {
		return ctx, func() {}, nil
	}
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	return ctx, cancel, nil
}

// Ping reports whether the database is reachable.
func (s *Store) Ping(ctx context.Context) error {
	ctx, cancel, err := s.op(ctx)
	if err != nil {
		return err
	}
	defer cancel()
	if err := s.pool.Ping(ctx); err != nil {
		return fmt.Errorf("%w: postgres: %w", engine.ErrUnavailable, err)
	}
	return nil
}

// Close closes every connection, after waiting for the calls in progress.
// Calling it again does nothing and returns nil.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		s.closed.Store(true)
		s.stopFollowers()
		s.pool.Close()
	})
	return nil
}

// mapErr is the package's mapErr, but ErrClosed for a call that failed
// because Close closed the pool under it.
func (s *Store) mapErr(err error) error {
	if err != nil && s.closed.Load() {
		return ErrClosed
	}
	return mapErr(err)
}

// cleanupTimeout bounds a rollback or a close done on the way out, which
// must not hang on an unresponsive server even when the caller's context
// has ended.
const cleanupTimeout = 5 * time.Second

// rollback ends tx unless it was committed (then it does nothing).
func rollback(ctx context.Context, tx pgx.Tx) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
	defer cancel()
	_ = tx.Rollback(ctx)
}

// nonNil returns b, or an empty slice for nil (for NOT NULL bytea).
func nonNil(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}
