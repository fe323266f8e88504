// Package postgres is miniKMS's shared store: an engine.Store (with
// engine.IdentityStore, engine.AuditStore and engine.ObjectDeleter) kept in
// one PostgreSQL database, through github.com/jackc/pgx/v5 (pgxpool). It
// behaves as store/sqlite does, method for method (store/storetest checks
// both), and lets several miniKMS nodes share one database.
//
// # What it stores
//
// The schema is the embedded, forward-only migrations (migrations/NNNN_*.sql;
// 0001-0003 are the twins of store/sqlite's, 0004 is the change feed of
// this store alone), recorded in
// schema_migrations: meta (root key check values and other write-once
// values), objects (one row per managed object: metadata in the clear,
// attribute JSON, wrapped key material only), object_names and
// object_groups (the Name and Object Group values, indexed per tenant for
// Locate), the PKI's records (pki_certificates, pki_revocations,
// pki_clients, pki_generation), and the audit chain (kms_audit_log,
// kms_audit_checkpoints). Text that is compared or ordered is COLLATE "C"
// (byte order, as SQLite). Created and the PKI's times are unix seconds,
// audit times unix nanoseconds, as in SQLite. Seq comes from an identity
// sequence: strictly increasing in insertion order and never handed out
// twice (with concurrent writers, commits may become visible slightly out
// of Seq order; Locate's paging by Seq tolerates that as it tolerates
// concurrent creates).
//
// # Durability
//
// Every method that writes returns only after its transaction committed,
// and PostgreSQL's commit returns after its WAL is flushed: Open refuses
// a server with fsync=off and a role or database with
// synchronous_commit=off (any other value flushes the local WAL). Each
// write is one transaction, mostly one statement and one round trip
// (CreateObject inserts the object and its labels in one statement); an
// error means it did not commit, except when the connection breaks (or the
// caller's context ends) during the commit itself, where no client can
// know. Concurrent commits share WAL flushes (PostgreSQL's own group
// commit). Reads are single statements, so each sees one snapshot (an
// object and its labels always agree).
//
// # Several nodes on one database
//
//   - Objects: UpdateObject's revision check is part of its UPDATE, so of
//     two nodes updating one object, the second waits for the first's row
//     lock and then matches nothing (engine.ErrConflict).
//   - Audit chain: AppendAudit takes a transaction-level advisory lock
//     (pg_advisory_xact_lock) before it reads the head, and holds it until
//     the records are committed, so appenders on every node extend one
//     chain. A row lock on the newest record would not do: an empty chain
//     has no row to lock.
//   - Identity: every identity change also bumps the one pki_generation
//     row, which servers poll to notice other nodes' revocations (and a
//     trigger notifies minikms_identity, so they reload at once).
//   - Caches: the Store is an engine.ChangeFeed (changes.go). A trigger
//     appends every object update or deletion to object_changes and
//     notifies minikms_changes in the writer's transaction; each engine's
//     follower LISTENs on a connection of its own, drops stale cache
//     entries within milliseconds of the commit, and polls the table every
//     second (by seq, remembering unseen seqs below the newest as gaps)
//     so that nothing a broken connection missed stays stale.
//   - Migrations: Open applies pending migrations in one transaction on a
//     connection of its own that holds a session advisory lock
//     (pg_advisory_lock), so nodes starting together apply each step once.
//     A database whose recorded version is newer than the binary is
//     refused (ErrSchemaTooNew: "database schema version N is newer than
//     this miniKMS (M)").
//
// Advisory locks are per database: nodes of different miniKMS deployments
// on one server never contend. Session-level locks and pgx's statement
// cache need a session (a direct connection, or PgBouncer in session mode;
// in transaction mode, PgBouncer 1.21 or later with prepared statement
// support, and migrations run against the server directly).
//
// # Connections
//
// Open takes a postgres:// or postgresql:// URL; libpq's parameters
// (sslmode, connect_timeout, ...) and pgxpool's (pool_max_conns, ...) go
// in its query. The pool holds at most max(8, 4 × CPUs) connections (32
// at most) unless pool_max_conns says otherwise. Every call uses the
// caller's context, bounded by the store's timeout (WithTimeout, 30s by
// default) when it has no deadline; a context that ends cancels the
// statement on the server. Prepared statements are cached per connection
// (pgx's statement cache); statement texts never contain values.
//
// # What it must never do
//
//   - hold key material in the clear: it stores only what the engine hands
//     it (wrapped material, attribute JSON) and never interprets it;
//   - put attribute blobs, wrapped material or other bound values into an
//     error message or a log (driver errors mapped to engine sentinels
//     carry the sentinel's message only);
//   - return another tenant's object: every object read is keyed by
//     (tenant, id) or filtered by tenant, and a foreign object answers
//     exactly like a missing one (engine.ErrNotFound);
//   - open a database whose schema is newer than it knows, or one that
//     does not make commits durable;
//   - report success for a write that is not yet durable.
package postgres
