package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"iter"
	"time"

	"github.com/minikms/minikms/engine"
)

var _ engine.BackupStore = (*Store)(nil)

// backupPage is how many objects or audit records one read of a backup
// takes (all in the same read transaction).
const backupPage = 500

// Backup implements engine.BackupStore: every item is read in one read
// transaction, which in WAL mode sees one snapshot from its first read to
// its end, whatever the writer commits meanwhile.
func (s *Store) Backup(ctx context.Context, fn func(engine.BackupItem) error) error {
	if s.closed.Load() {
		return ErrClosed
	}
	return s.read(ctx, func(tx *sql.Tx) error {
		var sum engine.BackupSummary
		err := tx.QueryRowContext(ctx, `SELECT
			(SELECT count(*) FROM meta), (SELECT count(*) FROM pki_certificates), (SELECT count(*) FROM pki_revocations),
			(SELECT count(*) FROM pki_clients), (SELECT count(*) FROM objects), (SELECT count(*) FROM kms_audit_log),
			(SELECT count(*) FROM kms_audit_checkpoints), (SELECT gen FROM pki_generation WHERE id = 1),
			max(coalesce((SELECT seq FROM sqlite_sequence WHERE name = 'objects'), 0), coalesce((SELECT max(seq) FROM objects), 0))`).
			Scan(&sum.Meta, &sum.Certificates, &sum.Revocations, &sum.Clients, &sum.Objects, &sum.AuditRecords, &sum.Checkpoints, &sum.Generation, &sum.LastSeq)
		if err != nil {
			return fmt.Errorf("sqlite: backup: %w", err)
		}
		if err := fn(engine.BackupItem{Summary: &sum}); err != nil {
			return err
		}
		for _, step := range []func(context.Context, *sql.Tx, func(engine.BackupItem) error) error{
			backupMeta, backupCertificates, backupRevocations, backupClients, s.backupObjects, backupAudit, backupCheckpoints,
		} {
			if err := step(ctx, tx, fn); err != nil {
				return err
			}
		}
		return nil
	})
}

// eachRow runs query and calls scan on every row.
func eachRow(ctx context.Context, tx *sql.Tx, query string, scan func(*sql.Rows) error, args ...any) error {
	rows, err := tx.QueryContext(ctx, query, args...)
	if err != nil {
		return fmt.Errorf("sqlite: backup: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		if err := scan(rows); err != nil {
			return err
		}
	}
	return rows.Err()
}

func backupMeta(ctx context.Context, tx *sql.Tx, fn func(engine.BackupItem) error) error {
	return eachRow(ctx, tx, `SELECT key, value FROM meta ORDER BY key`, func(rows *sql.Rows) error {
		var m engine.MetaEntry
		if err := rows.Scan(&m.Key, &m.Value); err != nil {
			return err
		}
		if m.Value == nil {
			m.Value = []byte{}
		}
		return fn(engine.BackupItem{Meta: &m})
	})
}

func backupCertificates(ctx context.Context, tx *sql.Tx, fn func(engine.BackupItem) error) error {
	return eachRow(ctx, tx, `SELECT serial, tenant, member, role, kind, not_before, not_after, der, issued_at FROM pki_certificates ORDER BY serial`,
		func(rows *sql.Rows) error {
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

func backupRevocations(ctx context.Context, tx *sql.Tx, fn func(engine.BackupItem) error) error {
	return eachRow(ctx, tx, `SELECT tenant, serial, reason, revoked_at FROM pki_revocations ORDER BY tenant, serial`, func(rows *sql.Rows) error {
		var r engine.Revocation
		var at int64
		if err := rows.Scan(&r.Tenant, &r.Serial, &r.Reason, &at); err != nil {
			return err
		}
		r.RevokedAt = time.Unix(at, 0).UTC()
		return fn(engine.BackupItem{Revocation: &r})
	})
}

func backupClients(ctx context.Context, tx *sql.Tx, fn func(engine.BackupItem) error) error {
	return eachRow(ctx, tx, `SELECT spki_hash, tenant, member, role, subject, registered_at FROM pki_clients ORDER BY spki_hash`, func(rows *sql.Rows) error {
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

// backupObjects pages through the objects by Seq, reading each page's
// labels in the same transaction.
func (s *Store) backupObjects(ctx context.Context, tx *sql.Tx, fn func(engine.BackupItem) error) error {
	var after int64
	for {
		var page []*engine.StoredObject
		err := eachRow(ctx, tx, `SELECT `+objectColumns+` FROM objects AS o WHERE o.seq > ? ORDER BY o.seq LIMIT ?`, func(rows *sql.Rows) error {
			o, err := scanObject(rows)
			if err != nil {
				return err
			}
			page = append(page, o)
			return nil
		}, after, backupPage)
		if err != nil {
			return err
		}
		if len(page) == 0 {
			return nil
		}
		if err := s.readLabels(ctx, tx, page); err != nil {
			return fmt.Errorf("sqlite: backup: %w", err)
		}
		for _, o := range page {
			if err := fn(engine.BackupItem{Object: o}); err != nil {
				return err
			}
		}
		after = page[len(page)-1].Seq
	}
}

func backupAudit(ctx context.Context, tx *sql.Tx, fn func(engine.BackupItem) error) error {
	var after int64
	for {
		rows, err := tx.QueryContext(ctx, `SELECT `+auditColumns+` FROM kms_audit_log WHERE seq > ? ORDER BY seq LIMIT ?`, after, backupPage)
		if err != nil {
			return fmt.Errorf("sqlite: backup: %w", err)
		}
		recs, err := scanAudit(rows)
		if err != nil {
			return fmt.Errorf("sqlite: backup: %w", err)
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

func backupCheckpoints(ctx context.Context, tx *sql.Tx, fn func(engine.BackupItem) error) error {
	return eachRow(ctx, tx, `SELECT seq, hash, time, key_id, signature FROM kms_audit_checkpoints ORDER BY seq, key_id`, func(rows *sql.Rows) error {
		var c engine.AuditCheckpoint
		var t int64
		if err := rows.Scan(&c.Seq, &c.Hash, &t, &c.KeyID, &c.Signature); err != nil {
			return err
		}
		c.Time = time.Unix(0, t).UTC()
		return fn(engine.BackupItem{Checkpoint: &c})
	})
}

// sqlStoreEmpty is 1 when the store holds nothing a restore could clash
// with. (pki_generation always has its one row.)
const sqlStoreEmpty = `SELECT NOT (EXISTS (SELECT 1 FROM meta) OR EXISTS (SELECT 1 FROM objects) OR EXISTS (SELECT 1 FROM pki_certificates)
	OR EXISTS (SELECT 1 FROM pki_revocations) OR EXISTS (SELECT 1 FROM pki_clients) OR EXISTS (SELECT 1 FROM kms_audit_log)
	OR EXISTS (SELECT 1 FROM kms_audit_checkpoints))`

// Restore statements.
const (
	sqlRestoreObject = `INSERT INTO objects (seq, id, tenant, type, state, created, rev, attrs, wrapped, root_version)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`
	sqlRestoreCert = `INSERT INTO pki_certificates (serial, tenant, member, role, kind, not_before, not_after, der, issued_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`
	sqlRestoreRevocation = `INSERT INTO pki_revocations (tenant, serial, reason, revoked_at) VALUES (?, ?, ?, ?)`
	sqlRestoreClient     = `INSERT INTO pki_clients (spki_hash, tenant, member, role, subject, registered_at) VALUES (?, ?, ?, ?, ?, ?)`
	sqlRestoreCheckpoint = `INSERT INTO kms_audit_checkpoints (seq, hash, time, key_id, signature) VALUES (?, ?, ?, ?, ?)`
	// The AUTOINCREMENT counter: never below the highest Seq the backed-up
	// store handed out.
	sqlRestoreSeqUpdate = `UPDATE sqlite_sequence SET seq = max(seq, ?1) WHERE name = 'objects'`
	sqlRestoreSeqInsert = `INSERT INTO sqlite_sequence (name, seq) SELECT 'objects', ?1 WHERE NOT EXISTS (SELECT 1 FROM sqlite_sequence WHERE name = 'objects')`
)

// Restore implements engine.BackupStore. The whole restore is one write
// job: one transaction, which holds SQLite's write lock throughout, so the
// emptiness check and the writes see no other writer, and an error
// anywhere (of items or of the database) leaves the store as it was.
func (s *Store) Restore(ctx context.Context, items iter.Seq2[engine.BackupItem, error]) error {
	return s.Write(ctx, func(wctx context.Context, tx *sql.Tx) error {
		var empty bool
		if err := tx.QueryRowContext(wctx, sqlStoreEmpty).Scan(&empty); err != nil {
			return mapErr(err)
		}
		if !empty {
			return engine.ErrNotEmpty
		}
		// The job runs to the end once started (the writer's context): the
		// caller's cancellation is honoured between items.
		lastSeq := int64(0)
		for it, err := range items {
			if err != nil {
				return err
			}
			if err := ctx.Err(); err != nil {
				return err
			}
			if err := s.restoreItem(wctx, tx, it, &lastSeq); err != nil {
				return err
			}
		}
		if lastSeq > 0 {
			if _, err := tx.ExecContext(wctx, sqlRestoreSeqUpdate, lastSeq); err != nil {
				return mapErr(err)
			}
			if _, err := tx.ExecContext(wctx, sqlRestoreSeqInsert, lastSeq); err != nil {
				return mapErr(err)
			}
		}
		return nil
	})
}

// restoreItem writes one item; lastSeq collects the Seq high water mark.
func (s *Store) restoreItem(ctx context.Context, tx *sql.Tx, it engine.BackupItem, lastSeq *int64) error {
	switch {
	case it.Summary != nil:
		*lastSeq = max(*lastSeq, it.Summary.LastSeq)
		_, err := tx.ExecContext(ctx, `UPDATE pki_generation SET gen = ? WHERE id = 1`, it.Summary.Generation)
		return mapErr(err)
	case it.Meta != nil:
		if it.Meta.Key == "" {
			return fmt.Errorf("%w: metadata key is empty", engine.ErrMissingData)
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO meta (key, value) VALUES (?, ?)`, it.Meta.Key, attrsValue(it.Meta.Value))
		return restoreErr("meta "+it.Meta.Key, err)
	case it.Certificate != nil:
		c := it.Certificate
		_, err := tx.ExecContext(ctx, sqlRestoreCert,
			c.Serial, c.Tenant, c.Member, string(c.Role), c.Kind, c.NotBefore.Unix(), c.NotAfter.Unix(), attrsValue(c.DER), c.IssuedAt.Unix())
		return restoreErr("certificate "+c.Serial, err)
	case it.Revocation != nil:
		r := it.Revocation
		_, err := tx.ExecContext(ctx, sqlRestoreRevocation, r.Tenant, r.Serial, r.Reason, r.RevokedAt.Unix())
		return restoreErr("revocation "+r.Serial, err)
	case it.Client != nil:
		c := it.Client
		_, err := tx.ExecContext(ctx, sqlRestoreClient, c.SPKIHash, c.Tenant, c.Member, string(c.Role), c.Subject, c.RegisteredAt.Unix())
		return restoreErr("client "+c.SPKIHash, err)
	case it.Object != nil:
		o := it.Object
		if err := validateObject(o); err != nil {
			return err
		}
		if o.Seq < 1 {
			return fmt.Errorf("%w: object %s has no Seq", engine.ErrInvalidField, o.ID)
		}
		if _, err := tx.ExecContext(ctx, sqlRestoreObject,
			o.Seq, o.ID, o.Tenant, int64(o.Type), int64(o.State), o.Created.Unix(), o.Rev, attrsValue(o.Attrs), o.Wrapped, int64(o.RootVersion)); err != nil {
			return restoreErr("object "+o.ID, err)
		}
		*lastSeq = max(*lastSeq, o.Seq)
		return s.writeLabels(ctx, tx, o.Seq, o)
	case it.Audit != nil:
		r := it.Audit
		if r.Redacted {
			return fmt.Errorf("%w: audit record %d is redacted", engine.ErrInvalidField, r.Seq)
		}
		details := []byte("{}")
		if len(r.Details) > 0 {
			var err error
			if details, err = json.Marshal(r.Details); err != nil {
				return err
			}
		}
		_, err := s.wstmts.exec(ctx, tx, sqlInsertAudit,
			r.Seq, r.Time.UTC().UnixNano(), r.Node, r.Tenant, r.Member, r.CertHash, r.Role, r.Remote, r.Action, r.Object, r.Status, r.Reason,
			string(details), attrsValue(r.PrevHash), attrsValue(r.Hash))
		return restoreErr(fmt.Sprintf("audit record %d", r.Seq), err)
	case it.Checkpoint != nil:
		c := it.Checkpoint
		_, err := tx.ExecContext(ctx, sqlRestoreCheckpoint, c.Seq, attrsValue(c.Hash), c.Time.UTC().UnixNano(), c.KeyID, attrsValue(c.Signature))
		return restoreErr(fmt.Sprintf("audit checkpoint %d", c.Seq), err)
	}
	return errors.New("sqlite: restore: empty backup item")
}

// restoreErr names the item a write failed for (a duplicate in the backup).
func restoreErr(what string, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("restore %s: %w", what, mapErr(err))
}
