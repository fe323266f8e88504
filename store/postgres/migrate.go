package postgres

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
)

// migrationFiles are the schema migrations, named NNNN_description.sql.
// They are forward-only: a released file is never edited, a change is a new
// file with the next number. They mirror store/sqlite's migrations, version
// for version.
//
//go:embed migrations/*.sql
var migrationFiles embed.FS

// ErrSchemaTooNew is returned (wrapped) by Open for a database whose schema
// was written by a newer miniKMS than this binary.
var ErrSchemaTooNew = errors.New("database schema is newer than this miniKMS")

// schemaTooNewError says which versions; errors.Is finds ErrSchemaTooNew.
type schemaTooNewError struct{ have, known int }

func (e *schemaTooNewError) Error() string {
	return fmt.Sprintf("database schema version %d is newer than this miniKMS (%d); run a newer miniKMS", e.have, e.known)
}

func (e *schemaTooNewError) Is(target error) bool { return target == ErrSchemaTooNew }

// Advisory lock keys of this package. Advisory locks are per database, so
// only miniKMS nodes sharing a database contend for them. The values spell
// "minikms" and a number, to stay clear of other applications' keys.
const (
	// migrateLockKey is held (session level) while one node checks and
	// applies migrations.
	migrateLockKey int64 = 0x6d696e696b6d7301
	// auditLockKey is held (transaction level) by every audit append from
	// the head read to the commit.
	auditLockKey int64 = 0x6d696e696b6d7302
)

// migration is one embedded schema step.
type migration struct {
	version int
	name    string
	sql     string
}

// loadMigrations returns the embedded migrations in order. The versions
// must run 1, 2, 3, ... without gaps or duplicates.
func loadMigrations(fsys fs.FS) ([]migration, error) {
	paths, err := fs.Glob(fsys, "migrations/*.sql")
	if err != nil {
		return nil, err
	}
	ms := make([]migration, 0, len(paths))
	for _, p := range paths {
		name := path.Base(p)
		num, _, ok := strings.Cut(name, "_")
		if !ok {
			return nil, fmt.Errorf("migration %s: name is not NNNN_description.sql", name)
		}
		v, err := strconv.Atoi(num)
		if err != nil || v <= 0 {
			return nil, fmt.Errorf("migration %s: version %q is not a positive number", name, num)
		}
		body, err := fs.ReadFile(fsys, p)
		if err != nil {
			return nil, err
		}
		ms = append(ms, migration{version: v, name: name, sql: string(body)})
	}
	for i, m := range ms {
		if m.version != i+1 {
			return nil, fmt.Errorf("migration %s: expected version %d (versions must be 1, 2, 3, ... without gaps)", m.name, i+1)
		}
	}
	if len(ms) == 0 {
		return nil, errors.New("no embedded migrations")
	}
	return ms, nil
}

const createMigrationsTable = `CREATE TABLE IF NOT EXISTS schema_migrations (
    version integer     NOT NULL PRIMARY KEY,
    name    text        NOT NULL,
    applied timestamptz NOT NULL DEFAULT now()
)`

// migrate checks the server's durability settings and brings the schema
// up to the newest embedded version, or refuses a database written by a
// newer binary. It works on a connection of its own that holds a session
// advisory lock throughout, so nodes starting together apply each step
// once: the others wait, then find nothing left to do. The steps run in
// one transaction (PostgreSQL's DDL is transactional): a failure leaves
// the schema as it was.
func migrate(ctx context.Context, cc *pgx.ConnConfig, ms []migration) (err error) {
	conn, err := pgx.ConnectConfig(ctx, cc.Copy())
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	// Closing the session also releases its advisory lock, whatever
	// happened.
	defer func() {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
		defer cancel()
		conn.Close(ctx)
	}()

	if err := checkDurable(ctx, conn); err != nil {
		return err
	}
	if _, err := conn.Exec(ctx, `SELECT pg_advisory_lock($1)`, migrateLockKey); err != nil {
		return fmt.Errorf("take the migration lock: %w", err)
	}
	tx, err := conn.Begin(ctx)
	if err != nil {
		return fmt.Errorf("begin migration: %w", err)
	}
	defer rollback(ctx, tx)
	if _, err := tx.Exec(ctx, createMigrationsTable); err != nil {
		return fmt.Errorf("create schema_migrations: %w", err)
	}
	var current int
	if err := tx.QueryRow(ctx, `SELECT coalesce(max(version), 0) FROM schema_migrations`).Scan(&current); err != nil {
		return fmt.Errorf("read schema version: %w", err)
	}
	known := ms[len(ms)-1].version
	if current > known {
		return &schemaTooNewError{have: current, known: known}
	}
	for _, m := range ms[current:] {
		// Without arguments pgx sends the text as one simple query, so a
		// file may hold several statements.
		if _, err := tx.Exec(ctx, m.sql); err != nil {
			return fmt.Errorf("apply migration %s: %w", m.name, err)
		}
		if _, err := tx.Exec(ctx, `INSERT INTO schema_migrations (version, name) VALUES ($1, $2)`, m.version, m.name); err != nil {
			return fmt.Errorf("record migration %s: %w", m.name, err)
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("commit migrations: %w", err)
	}
	unlockCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
	defer cancel()
	_, _ = conn.Exec(unlockCtx, `SELECT pg_advisory_unlock($1)`, migrateLockKey)
	return nil
}

// checkDurable refuses a server or session on which a commit can return
// before it is on disk: every write of the store must be durable once it
// returns. Any synchronous_commit but off (on, local, remote_write,
// remote_apply) flushes the local WAL before a commit returns.
func checkDurable(ctx context.Context, conn *pgx.Conn) error {
	var fsync, syncCommit string
	if err := conn.QueryRow(ctx, `SELECT current_setting('fsync'), current_setting('synchronous_commit')`).Scan(&fsync, &syncCommit); err != nil {
		return fmt.Errorf("read durability settings: %w", err)
	}
	if fsync != "on" {
		return fmt.Errorf("the server runs with fsync=%s: commits would not survive a crash", fsync)
	}
	if syncCommit == "off" {
		return errors.New("synchronous_commit is off for this role or database: commits would return before they are durable")
	}
	return nil
}
