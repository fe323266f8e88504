package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	_ "modernc.org/sqlite" // registers the "sqlite" database/sql driver

	"github.com/minikms/minikms/engine"
)

var _ engine.Store = (*Store)(nil)

// ErrClosed is returned by every method called after Close.
var ErrClosed = fmt.Errorf("%w: sqlite store is closed", engine.ErrUnavailable)

// ErrSchemaTooNew is returned by Open for a database whose schema was
// written by a newer miniKMS than this binary.
var ErrSchemaTooNew = errors.New("database schema is newer than this binary")

const (
	// defaultBusyTimeout is how long a connection waits for a lock another
	// process holds (a backup tool, a second server on the same file by
	// mistake) before failing with SQLITE_BUSY.
	defaultBusyTimeout = 5 * time.Second
	// maxReadConns caps the read pool (WithReadConns): each connection
	// holds its own page cache.
	maxReadConns = 256
)

// Store is the embedded engine.Store over one SQLite file. It is safe for
// concurrent use.
type Store struct {
	wdb    *sql.DB // one connection; only the writer goroutine uses it after Open
	rdb    *sql.DB // read-only connections
	wstmts *stmtCache
	rstmts *stmtCache

	// mu orders Write's sends on queue before Close closes it: Write holds
	// it for reading while it sends, Close for writing while it closes.
	mu         sync.RWMutex
	closed     atomic.Bool
	queue      chan *job
	writerDone chan struct{}

	closeOnce sync.Once
	closeErr  error

	stats writeStats
}

type config struct {
	readConns   int
	busyTimeout time.Duration
}

// Option configures Open.
type Option func(*config)

// WithReadConns sets the size of the read connection pool (default: the
// number of CPUs, at least 4; at most 256).
func WithReadConns(n int) Option {
	return func(c *config) { c.readConns = n }
}

// WithBusyTimeout sets how long a statement waits for a lock held by
// another process before failing (default 5s).
func WithBusyTimeout(d time.Duration) Option {
	return func(c *config) { c.busyTimeout = d }
}

// Open opens (creating if needed) the database file at path, applies any
// pending migrations, and starts the writer. It refuses a database whose
// schema version is newer than this binary knows (ErrSchemaTooNew).
func Open(ctx context.Context, path string, opts ...Option) (*Store, error) {
	cfg := config{readConns: max(4, runtime.NumCPU()), busyTimeout: defaultBusyTimeout}
	for _, o := range opts {
		o(&cfg)
	}
	if cfg.readConns < 1 || cfg.readConns > maxReadConns {
		return nil, fmt.Errorf("sqlite: read connections must be between 1 and %d, not %d", maxReadConns, cfg.readConns)
	}
	if cfg.busyTimeout < 0 {
		return nil, fmt.Errorf("sqlite: busy timeout cannot be negative (%s)", cfg.busyTimeout)
	}
	if path == "" || path == ":memory:" || strings.HasPrefix(path, "file:") {
		return nil, fmt.Errorf("sqlite: a database file path is required, not %q", path)
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("sqlite: database path: %w", err)
	}
	ms, err := loadMigrations(migrationFiles)
	if err != nil {
		return nil, fmt.Errorf("sqlite: %w", err)
	}
	// The database holds wrapped key material and metadata: owner only.
	// SQLite gives its -wal and -shm files the database file's mode.
	if f, err := os.OpenFile(abs, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600); err == nil {
		f.Close()
	} else if !errors.Is(err, fs.ErrExist) {
		return nil, fmt.Errorf("sqlite: create %s: %w", abs, err)
	}

	wdb, err := openPool(abs, cfg, false)
	if err != nil {
		return nil, err
	}
	wdb.SetMaxOpenConns(1)
	wdb.SetMaxIdleConns(1)
	if err := checkWAL(ctx, wdb); err != nil {
		wdb.Close()
		return nil, err
	}
	if err := migrate(ctx, wdb, ms); err != nil {
		wdb.Close()
		return nil, fmt.Errorf("sqlite: %s: %w", abs, err)
	}

	rdb, err := openPool(abs, cfg, true)
	if err != nil {
		wdb.Close()
		return nil, err
	}
	rdb.SetMaxOpenConns(cfg.readConns)
	rdb.SetMaxIdleConns(cfg.readConns)
	if err := rdb.PingContext(ctx); err != nil {
		rdb.Close()
		wdb.Close()
		return nil, fmt.Errorf("sqlite: open read pool: %w", err)
	}

	s := &Store{
		wdb:        wdb,
		rdb:        rdb,
		wstmts:     newStmtCache(wdb),
		rstmts:     newStmtCache(rdb),
		queue:      make(chan *job, writeQueueSize),
		writerDone: make(chan struct{}),
	}
	if err := s.prepare(ctx); err != nil {
		s.closeDBs()
		return nil, fmt.Errorf("sqlite: %w", err)
	}
	go s.runWriter()
	return s, nil
}

// writerStatements run inside group transactions, where the writer's one
// connection is taken: they are all prepared at Open.
var writerStatements = []string{
	sqlSavepoint, sqlRollbackTo, sqlRelease,
	sqlInsertMeta, sqlGetMeta,
	sqlInsertObject, sqlObjectRev, sqlUpdateObject,
	sqlInsertName, sqlInsertGroup, sqlDeleteNames, sqlDeleteGroups,
	sqlAuditHead, sqlInsertAudit, sqlDeleteObject,
}

// readerStatements are the fixed statements of the read pool; ListObjects
// prepares its own on first use.
var readerStatements = []string{sqlGetMeta, sqlGetObject, sqlLabelsOf, sqlLabelsOfMany}

func (s *Store) prepare(ctx context.Context) error {
	if err := s.wstmts.prepare(ctx, writerStatements...); err != nil {
		return err
	}
	return s.rstmts.prepare(ctx, readerStatements...)
}

func (s *Store) closeDBs() error {
	return errors.Join(s.rstmts.close(), s.wstmts.close(), s.rdb.Close(), s.wdb.Close())
}

// openPool opens a connection pool on the file. Every connection gets the
// same pragmas: WAL, synchronous=FULL (a commit returns only after the WAL
// is fsynced), foreign keys, and the busy timeout. Read pools are also
// query_only, so a bug cannot write around the writer goroutine. Writer
// transactions BEGIN IMMEDIATE: they take the write lock at once instead of
// failing on upgrade.
func openPool(path string, cfg config, readOnly bool) (*sql.DB, error) {
	q := url.Values{}
	q.Add("_pragma", fmt.Sprintf("busy_timeout(%d)", cfg.busyTimeout.Milliseconds()))
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", "synchronous(FULL)")
	q.Add("_pragma", "foreign_keys(ON)")
	if readOnly {
		q.Add("_pragma", "query_only(1)")
	} else {
		q.Set("_txlock", "immediate")
	}
	dsn := "file:" + (&url.URL{Path: path}).EscapedPath() + "?" + q.Encode()
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	// Connections are cheap to keep and costly to reopen (pragmas, page
	// cache): never expire them.
	db.SetConnMaxLifetime(0)
	db.SetConnMaxIdleTime(0)
	return db, nil
}

// checkWAL fails unless the file really is in WAL mode: SQLite silently
// keeps the old journal mode where WAL is impossible (some network file
// systems), and concurrent readers depend on it.
func checkWAL(ctx context.Context, db *sql.DB) error {
	var mode string
	if err := db.QueryRowContext(ctx, "PRAGMA journal_mode").Scan(&mode); err != nil {
		return fmt.Errorf("sqlite: open: %w", err)
	}
	if !strings.EqualFold(mode, "wal") {
		return fmt.Errorf("sqlite: journal mode is %q, not WAL; the file system may not support WAL", mode)
	}
	var sync int
	if err := db.QueryRowContext(ctx, "PRAGMA synchronous").Scan(&sync); err != nil {
		return fmt.Errorf("sqlite: open: %w", err)
	}
	if sync < 2 { // 2 = FULL, 3 = EXTRA
		return fmt.Errorf("sqlite: synchronous is %d, not FULL", sync)
	}
	return nil
}

// Ping reports whether both pools can reach the database file.
func (s *Store) Ping(ctx context.Context) error {
	if s.closed.Load() {
		return ErrClosed
	}
	if err := s.rdb.PingContext(ctx); err != nil {
		return fmt.Errorf("%w: sqlite read pool: %w", engine.ErrUnavailable, err)
	}
	var one int
	err := s.Write(ctx, func(ctx context.Context, tx *sql.Tx) error {
		return tx.QueryRowContext(ctx, "SELECT 1").Scan(&one)
	})
	if err != nil {
		return fmt.Errorf("%w: sqlite writer: %w", engine.ErrUnavailable, err)
	}
	return nil
}

// Close stops accepting writes, lets the writer finish every job already
// queued, and closes the connections. Calling it again returns the result
// of the first call.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		s.mu.Lock()
		s.closed.Store(true)
		close(s.queue)
		s.mu.Unlock()
		<-s.writerDone
		s.closeErr = s.closeDBs()
	})
	return s.closeErr
}
