// Package sqlite is miniKMS's embedded default store: an engine.Store kept
// in one SQLite file, through the pure-Go driver modernc.org/sqlite (no
// cgo).
//
// # What it owns
//
// The database file and its schema: the embedded, forward-only migrations
// (migrations/NNNN_*.sql, recorded in schema_migrations and applied in one
// transaction at Open), the meta table, the objects table, and the
// object_names / object_groups index tables that make Locate by Name or
// Object Group an index lookup. It also owns the only writer of the file:
// one goroutine that commits writes in groups (see Write), which other
// packages keeping tables in the same file (the audit log) use too.
//
// # Durability
//
// The file runs in WAL mode with synchronous=FULL: a commit returns only
// after the WAL is fsynced. Every method that writes returns only after
// the group transaction holding its write has committed, so an
// acknowledged write survives a crash or power loss; an error means the
// write is not in the database. Group commit makes one fsync cover every
// write queued meanwhile (up to maxGroupSize), and each write runs in its
// own savepoint, so one write failing (a duplicate identifier, a lost
// compare-and-swap) undoes only itself. Reads use a pool of read-only
// connections that WAL lets run alongside the writer; each read sees one
// committed snapshot.
//
// One file has one server. A second process on the same file stays
// correct (SQLite's locks serialize the two writers, and the revision
// check and AUTOINCREMENT hold across them) but waits on busy timeouts and
// loses the benefit of group commit; scale out with store/postgres.
//
// Seq is the objects table's AUTOINCREMENT rowid: strictly increasing in
// commit order and never handed out twice. Created is kept in whole
// seconds (unix, UTC).
//
// # What it must never do
//
//   - hold key material in the clear: it stores only what the engine hands
//     it (wrapped material, attribute JSON) and never interprets it;
//   - put attribute blobs, wrapped material or other bound values into an
//     error message or a log;
//   - return another tenant's object: every object read is keyed by
//     (tenant, id) or filtered by tenant, and a foreign object answers
//     exactly like a missing one (engine.ErrNotFound);
//   - write outside the writer goroutine, or open a database whose schema
//     is newer than it knows (ErrSchemaTooNew);
//   - report success for a write that is not yet durable.
package sqlite
