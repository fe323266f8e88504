package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/minikms/minikms/engine"
)

var _ engine.AuditStore = (*Store)(nil)

// maxAuditPage caps one read of audit records.
const maxAuditPage = 10_000

const auditColumns = `seq, time, node, tenant, member, cert_hash, role, remote, action, object, status, reason, details, prev_hash, entry_hash`

const (
	sqlAuditHead   = `SELECT seq, entry_hash FROM kms_audit_log ORDER BY seq DESC LIMIT 1`
	sqlInsertAudit = `INSERT INTO kms_audit_log (` + auditColumns + `) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`
)

// AppendAudit implements engine.AuditStore. The head is read inside the
// group transaction, after every job queued before this one, so the chain
// stays one chain across the writer's groups and across processes (the
// write transaction holds SQLite's write lock).
func (s *Store) AppendAudit(ctx context.Context, build func(head engine.AuditHead) ([]engine.AuditRecord, error)) error {
	return s.Write(ctx, func(ctx context.Context, tx *sql.Tx) error {
		var head engine.AuditHead
		err := s.wstmts.queryRow(ctx, tx, sqlAuditHead).Scan(&head.Seq, &head.Hash)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return mapErr(err)
		}
		recs, err := build(head)
		if err != nil {
			return err
		}
		return s.insertAudit(ctx, tx, recs) // audit_multi.go: multi-row INSERTs
	})
}

func scanAudit(rows *sql.Rows) ([]engine.AuditRecord, error) {
	defer rows.Close()
	var out []engine.AuditRecord
	for rows.Next() {
		var r engine.AuditRecord
		var t int64
		var details string
		if err := rows.Scan(&r.Seq, &t, &r.Node, &r.Tenant, &r.Member, &r.CertHash, &r.Role, &r.Remote, &r.Action, &r.Object, &r.Status, &r.Reason,
			&details, &r.PrevHash, &r.Hash); err != nil {
			return nil, err
		}
		r.Time = time.Unix(0, t).UTC()
		if err := json.Unmarshal([]byte(details), &r.Details); err != nil {
			return nil, fmt.Errorf("audit record %d: details: %w", r.Seq, err)
		}
		if len(r.Details) == 0 {
			r.Details = nil
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// AuditRecords implements engine.AuditStore.
func (s *Store) AuditRecords(ctx context.Context, afterSeq int64, limit int) ([]engine.AuditRecord, error) {
	if limit <= 0 || limit > maxAuditPage {
		limit = maxAuditPage
	}
	var out []engine.AuditRecord
	err := s.read(ctx, func(tx *sql.Tx) error {
		rows, err := tx.QueryContext(ctx, `SELECT `+auditColumns+` FROM kms_audit_log WHERE seq > ? ORDER BY seq LIMIT ?`, afterSeq, limit)
		if err != nil {
			return err
		}
		out, err = scanAudit(rows)
		return err
	})
	return out, err
}

// QueryAudit implements engine.AuditStore.
func (s *Store) QueryAudit(ctx context.Context, q engine.AuditQuery) ([]engine.AuditRecord, error) {
	var where []string
	var args []any
	if q.Tenant != "" || !q.AnyTenant {
		where, args = append(where, "tenant = ?"), append(args, q.Tenant)
	}
	if !q.From.IsZero() {
		where, args = append(where, "time >= ?"), append(args, q.From.UTC().UnixNano())
	}
	if !q.To.IsZero() {
		where, args = append(where, "time < ?"), append(args, q.To.UTC().UnixNano())
	}
	if q.Action != "" {
		where, args = append(where, "action = ?"), append(args, q.Action)
	}
	if q.Object != "" {
		where, args = append(where, "object = ?"), append(args, q.Object)
	}
	if q.Member != "" {
		where, args = append(where, "member = ?"), append(args, q.Member)
	}
	if q.AfterSeq > 0 {
		where, args = append(where, "seq > ?"), append(args, q.AfterSeq)
	}
	limit := q.Limit
	if limit <= 0 || limit > maxAuditPage {
		limit = maxAuditPage
	}
	query := `SELECT ` + auditColumns + ` FROM kms_audit_log`
	if len(where) > 0 {
		query += " WHERE " + strings.Join(where, " AND ")
	}
	query += " ORDER BY seq LIMIT ?"
	args = append(args, limit)
	var out []engine.AuditRecord
	err := s.read(ctx, func(tx *sql.Tx) error {
		rows, err := tx.QueryContext(ctx, query, args...)
		if err != nil {
			return err
		}
		out, err = scanAudit(rows)
		return err
	})
	return out, err
}

// AuditHead implements engine.AuditStore.
func (s *Store) AuditHead(ctx context.Context) (engine.AuditHead, error) {
	var head engine.AuditHead
	err := s.read(ctx, func(tx *sql.Tx) error {
		err := tx.QueryRowContext(ctx, sqlAuditHead).Scan(&head.Seq, &head.Hash)
		if errors.Is(err, sql.ErrNoRows) {
			return nil
		}
		return err
	})
	return head, err
}

// PutAuditCheckpoint implements engine.AuditStore.
func (s *Store) PutAuditCheckpoint(ctx context.Context, c engine.AuditCheckpoint) error {
	return s.Write(ctx, func(ctx context.Context, tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO kms_audit_checkpoints (seq, hash, time, key_id, signature) VALUES (?, ?, ?, ?, ?)
			ON CONFLICT (seq, key_id) DO NOTHING`, c.Seq, c.Hash, c.Time.UTC().UnixNano(), c.KeyID, c.Signature)
		return mapErr(err)
	})
}

// AuditCheckpoints implements engine.AuditStore, oldest first.
func (s *Store) AuditCheckpoints(ctx context.Context) ([]engine.AuditCheckpoint, error) {
	var out []engine.AuditCheckpoint
	err := s.read(ctx, func(tx *sql.Tx) error {
		rows, err := tx.QueryContext(ctx, `SELECT seq, hash, time, key_id, signature FROM kms_audit_checkpoints ORDER BY seq, key_id`)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var c engine.AuditCheckpoint
			var t int64
			if err := rows.Scan(&c.Seq, &c.Hash, &t, &c.KeyID, &c.Signature); err != nil {
				return err
			}
			c.Time = time.Unix(0, t).UTC()
			out = append(out, c)
		}
		return rows.Err()
	})
	return out, err
}
