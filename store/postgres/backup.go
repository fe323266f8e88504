package postgres

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/minikms/minikms/engine"
)

var _ engine.BackupStore = (*Store)(nil)

// backupPage is how many objects or audit records one read of a backup
// takes (all in the same snapshot).
const backupPage = 500

// Backup and Restore are bounded by ctx only, not by the store's per-call
// timeout: copying a large store takes longer than one call may.

// Backup implements engine.BackupStore: every item is read in one
// REPEATABLE READ, READ ONLY transaction, so from one snapshot, whatever
// other nodes commit meanwhile.
func (s *Store) Backup(ctx context.Context, fn func(engine.BackupItem) error) error {
	if s.closed.Load() {
		return ErrClosed
	}
	tx, err := s.pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return s.mapErr(err)
	}
	defer rollback(ctx, tx)
	var sum engine.BackupSummary
	err = tx.QueryRow(ctx, `SELECT
		(SELECT count(*) FROM meta), (SELECT count(*) FROM pki_certificates), (SELECT count(*) FROM pki_revocations),
		(SELECT count(*) FROM pki_clients), (SELECT count(*) FROM objects), (SELECT count(*) FROM kms_audit_log),
		(SELECT count(*) FROM kms_audit_checkpoints), (SELECT gen FROM pki_generation WHERE id = 1),
		greatest(coalesce(pg_sequence_last_value(pg_get_serial_sequence('objects', 'seq')::regclass), 0),
			coalesce((SELECT max(seq) FROM objects), 0))`).
		Scan(&sum.Meta, &sum.Certificates, &sum.Revocations, &sum.Clients, &sum.Objects, &sum.AuditRecords, &sum.Checkpoints, &sum.Generation, &sum.LastSeq)
	if err != nil {
		return fmt.Errorf("postgres: backup: %w", s.mapErr(err))
	}
	if err := fn(engine.BackupItem{Summary: &sum}); err != nil {
		return err
	}
	for _, step := range []func(context.Context, pgx.Tx, func(engine.BackupItem) error) error{
		backupMeta, backupCertificates, backupRevocations, backupClients, backupObjects, backupAudit, backupCheckpoints,
	} {
		if err := step(ctx, tx, fn); err != nil {
			return s.mapErr(err)
		}
	}
	return nil
}

// eachRow runs query and calls scan on every row.
func eachRow(ctx context.Context, tx pgx.Tx, query string, scan func(pgx.Rows) error, args ...any) error {
	rows, err := tx.Query(ctx, query, args...)
	if err != nil {
		return fmt.Errorf("postgres: backup: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		if err := scan(rows); err != nil {
			return err
		}
	}
	return rows.Err()
}

func backupMeta(ctx context.Context, tx pgx.Tx, fn func(engine.BackupItem) error) error {
	return eachRow(ctx, tx, `SELECT key, value FROM meta ORDER BY key`, func(rows pgx.Rows) error {
		var m engine.MetaEntry
		if err := rows.Scan(&m.Key, &m.Value); err != nil {
			return err
		}
		m.Value = nonNil(m.Value)
		return fn(engine.BackupItem{Meta: &m})
	})
}

func backupCertificates(ctx context.Context, tx pgx.Tx, fn func(engine.BackupItem) error) error {
	return eachRow(ctx, tx, sqlCertificates+` ORDER BY serial`, func(rows pgx.Rows) error {
		var c engine.CertRecord
		var role string
		var nb, na, at int64
		if err := rows.Scan(&c.Serial, &c.Tenant, &c.Member, &role, &c.Kind, &nb, &na, &c.DER, &at); err != nil {
			return err
		}
		c.Role = engine.Role(role)
		c.NotBefore, c.NotAfter, c.IssuedAt = time.Unix(nb, 0).UTC(), time.Unix(na, 0).UTC(), time.Unix(at, 0).UTC()
		return fn(engine.BackupItem{Certificate: &c})
	})
}

func backupRevocations(ctx context.Context, tx pgx.Tx, fn func(engine.BackupItem) error) error {
	return eachRow(ctx, tx, `SELECT tenant, serial, reason, revoked_at FROM pki_revocations ORDER BY tenant, serial`, func(rows pgx.Rows) error {
		var r engine.Revocation
		var reason, at int64
		if err := rows.Scan(&r.Tenant, &r.Serial, &reason, &at); err != nil {
			return err
		}
		r.Reason = int(reason)
		r.RevokedAt = time.Unix(at, 0).UTC()
		return fn(engine.BackupItem{Revocation: &r})
	})
}

func backupClients(ctx context.Context, tx pgx.Tx, fn func(engine.BackupItem) error) error {
	return eachRow(ctx, tx, `SELECT spki_hash, tenant, member, role, subject, registered_at FROM pki_clients ORDER BY spki_hash`, func(rows pgx.Rows) error {
		var c engine.ExternalClient
		var role string
		var at int64
		if err := rows.Scan(&c.SPKIHash, &c.Tenant, &c.Member, &role, &c.Subject, &at); err != nil {
			return err
		}
		c.Role = engine.Role(role)
		c.RegisteredAt = time.Unix(at, 0).UTC()
		return fn(engine.BackupItem{Client: &c})
	})
}

// backupObjects pages through the objects by Seq; each row carries its
// labels (objectColumns).
func backupObjects(ctx context.Context, tx pgx.Tx, fn func(engine.BackupItem) error) error {
	var after int64
	for {
		n := 0
		err := eachRow(ctx, tx, `SELECT `+objectColumns+` FROM objects AS o WHERE o.seq > $1 ORDER BY o.seq LIMIT $2`, func(rows pgx.Rows) error {
			o, err := scanObject(rows)
			if err != nil {
				return err
			}
			n++
			after = o.Seq
			return fn(engine.BackupItem{Object: o})
		}, after, backupPage)
		if err != nil || n == 0 {
			return err
		}
	}
}

func backupAudit(ctx context.Context, tx pgx.Tx, fn func(engine.BackupItem) error) error {
	var after int64
	for {
		rows, err := tx.Query(ctx, sqlAuditRecords, after, backupPage)
		if err != nil {
			return fmt.Errorf("postgres: backup: %w", err)
		}
		recs, err := scanAudit(rows)
		if err != nil {
			return fmt.Errorf("postgres: backup: %w", err)
		}
		if len(recs) == 0 {
			return nil
		}
		for i := range recs {
			if err := fn(engine.BackupItem{Audit: &recs[i]}); err != nil {
				return err
			}
		}
		after = recs[len(recs)-1].Seq
	}
}

func backupCheckpoints(ctx context.Context, tx pgx.Tx, fn func(engine.BackupItem) error) error {
	return eachRow(ctx, tx, sqlAuditCheckpoint, func(rows pgx.Rows) error {
		var c engine.AuditCheckpoint
		var t int64
		if err := rows.Scan(&c.Seq, &c.Hash, &t, &c.KeyID, &c.Signature); err != nil {
			return err
		}
		c.Time = time.Unix(0, t).UTC()
		return fn(engine.BackupItem{Checkpoint: &c})
	})
}

const (
	// sqlRestoreLock keeps every other writer (another node, a command)
	// out of the tables a restore fills, from the emptiness check to the
	// commit; readers are not blocked.
	sqlRestoreLock = `LOCK TABLE meta, objects, object_names, object_groups, pki_certificates, pki_revocations, pki_clients,
		pki_generation, kms_audit_log, kms_audit_checkpoints IN EXCLUSIVE MODE`
	sqlStoreEmpty = `SELECT NOT (EXISTS (SELECT 1 FROM meta) OR EXISTS (SELECT 1 FROM objects) OR EXISTS (SELECT 1 FROM pki_certificates)
		OR EXISTS (SELECT 1 FROM pki_revocations) OR EXISTS (SELECT 1 FROM pki_clients) OR EXISTS (SELECT 1 FROM kms_audit_log)
		OR EXISTS (SELECT 1 FROM kms_audit_checkpoints))`

	// sqlRestoreObject is sqlCreateObject with the object's own seq ($16).
	sqlRestoreObject = `WITH o AS (
		INSERT INTO objects (seq, id, tenant, type, state, created, rev, attrs, wrapped, root_version) OVERRIDING SYSTEM VALUE
		VALUES ($16, $1, $2, $3, $4, $5, $6, $7, $8, $9)
		RETURNING seq
	), n AS (
		INSERT INTO object_names (seq, pos, tenant, value, lookup, first)
		SELECT o.seq, l.pos - 1, $2, l.value, l.lookup, l.first
		FROM o, unnest($10::bytea[], $11::bytea[], $12::boolean[]) WITH ORDINALITY AS l (value, lookup, first, pos)
	), g AS (
		INSERT INTO object_groups (seq, pos, tenant, value, lookup, first)
		SELECT o.seq, l.pos - 1, $2, l.value, l.lookup, l.first
		FROM o, unnest($13::bytea[], $14::bytea[], $15::boolean[]) WITH ORDINALITY AS l (value, lookup, first, pos)
	)
	SELECT seq FROM o`
	sqlRestoreMeta       = `INSERT INTO meta (key, value) VALUES ($1, $2)`
	sqlRestoreRevocation = `INSERT INTO pki_revocations (tenant, serial, reason, revoked_at) VALUES ($1, $2, $3, $4)`
	sqlRestoreClient     = `INSERT INTO pki_clients (spki_hash, tenant, member, role, subject, registered_at) VALUES ($1, $2, $3, $4, $5, $6)`
	sqlRestoreCheckpoint = `INSERT INTO kms_audit_checkpoints (seq, hash, time, key_id, signature) VALUES ($1, $2, $3, $4, $5)`
	sqlRestoreGeneration = `UPDATE pki_generation SET gen = $1 WHERE id = 1`
	sqlRestoreSeq        = `SELECT setval(pg_get_serial_sequence('objects', 'seq'), $1)`
)

// restoreBatch is how many statements one round trip of a restore sends,
// and how many audit records one insert writes.
const restoreBatch = 256

// Restore implements engine.BackupStore: one transaction that locks the
// tables against other writers (EXCLUSIVE: reads go on), checks that they
// are empty, and inserts every item, in batches of statements. An error
// anywhere rolls the whole restore back.
func (s *Store) Restore(ctx context.Context, items iter.Seq2[engine.BackupItem, error]) error {
	if s.closed.Load() {
		return ErrClosed
	}
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return s.mapErr(err)
	}
	defer rollback(ctx, tx)
	var empty bool
	if _, err := tx.Exec(ctx, sqlRestoreLock); err != nil {
		return s.mapErr(err)
	}
	if _, err := tx.Exec(ctx, sqlAuditLock, auditLockKey); err != nil {
		return s.mapErr(err)
	}
	if err := tx.QueryRow(ctx, sqlStoreEmpty).Scan(&empty); err != nil {
		return s.mapErr(err)
	}
	if !empty {
		return engine.ErrNotEmpty
	}
	r := restorer{tx: tx, batch: &pgx.Batch{}}
	for it, err := range items {
		if err != nil {
			return err
		}
		if err := r.add(ctx, it); err != nil {
			return err
		}
	}
	if err := r.flush(ctx); err != nil {
		return err
	}
	if r.lastSeq > 0 {
		if _, err := tx.Exec(ctx, sqlRestoreSeq, r.lastSeq); err != nil {
			return s.mapErr(err)
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return s.mapErr(err)
	}
	s.stats.commits.Add(1)
	return nil
}

// restorer queues a restore's statements and audit records.
type restorer struct {
	tx      pgx.Tx
	batch   *pgx.Batch
	audit   []engine.AuditRecord
	lastSeq int64
}

func (r *restorer) add(ctx context.Context, it engine.BackupItem) error {
	b := r.batch
	switch {
	case it.Summary != nil:
		r.lastSeq = max(r.lastSeq, it.Summary.LastSeq)
		b.Queue(sqlRestoreGeneration, it.Summary.Generation)
	case it.Meta != nil:
		if it.Meta.Key == "" {
			return fmt.Errorf("%w: metadata key is empty", engine.ErrMissingData)
		}
		b.Queue(sqlRestoreMeta, it.Meta.Key, nonNil(it.Meta.Value))
	case it.Certificate != nil:
		c := it.Certificate
		b.Queue(sqlRecordCertificate, c.Serial, c.Tenant, c.Member, string(c.Role), c.Kind, c.NotBefore.Unix(), c.NotAfter.Unix(), nonNil(c.DER), c.IssuedAt.Unix())
	case it.Revocation != nil:
		v := it.Revocation
		b.Queue(sqlRestoreRevocation, v.Tenant, v.Serial, int64(v.Reason), v.RevokedAt.Unix())
	case it.Client != nil:
		c := it.Client
		b.Queue(sqlRestoreClient, c.SPKIHash, c.Tenant, c.Member, string(c.Role), c.Subject, c.RegisteredAt.Unix())
	case it.Object != nil:
		o := it.Object
		if err := validateObject(o); err != nil {
			return err
		}
		if o.Seq < 1 {
			return fmt.Errorf("%w: object %s has no Seq", engine.ErrInvalidField, o.ID)
		}
		names, namesLookup, namesFirst := labelArgs(o.Names)
		groups, groupsLookup, groupsFirst := labelArgs(o.Groups)
		b.Queue(sqlRestoreObject,
			o.ID, o.Tenant, int64(o.Type), int64(o.State), o.Created.Unix(), o.Rev, nonNil(o.Attrs), o.Wrapped, int64(o.RootVersion),
			names, namesLookup, namesFirst, groups, groupsLookup, groupsFirst, o.Seq)
		r.lastSeq = max(r.lastSeq, o.Seq)
	case it.Audit != nil:
		if it.Audit.Redacted {
			return fmt.Errorf("%w: audit record %d is redacted", engine.ErrInvalidField, it.Audit.Seq)
		}
		r.audit = append(r.audit, *it.Audit)
		if len(r.audit) >= restoreBatch {
			return r.flushAudit(ctx)
		}
		return nil
	case it.Checkpoint != nil:
		c := it.Checkpoint
		b.Queue(sqlRestoreCheckpoint, c.Seq, nonNil(c.Hash), c.Time.UTC().UnixNano(), c.KeyID, nonNil(c.Signature))
	default:
		return errors.New("postgres: restore: empty backup item")
	}
	if b.Len() >= restoreBatch {
		return r.flushBatch(ctx)
	}
	return nil
}

func (r *restorer) flushBatch(ctx context.Context) error {
	if r.batch.Len() == 0 {
		return nil
	}
	err := r.tx.SendBatch(ctx, r.batch).Close()
	r.batch = &pgx.Batch{}
	if err != nil {
		return fmt.Errorf("restore: %w", mapErr(err))
	}
	return nil
}

func (r *restorer) flushAudit(ctx context.Context) error {
	if len(r.audit) == 0 {
		return nil
	}
	args, err := auditArrays(r.audit)
	if err != nil {
		return err
	}
	r.audit = r.audit[:0]
	if _, err := r.tx.Exec(ctx, sqlInsertAudit, args...); err != nil {
		return fmt.Errorf("restore audit records: %w", mapErr(err))
	}
	return nil
}

func (r *restorer) flush(ctx context.Context) error {
	if err := r.flushBatch(ctx); err != nil {
		return err
	}
	return r.flushAudit(ctx)
}
