package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/minikms/minikms/engine"
)

// maxAuditPage caps one read of audit records.
const maxAuditPage = 10_000

const auditColumns = `seq, time, node, tenant, member, cert_hash, role, remote, action, object, status, reason, details, prev_hash, entry_hash`

const (
	sqlAuditLock = `SELECT pg_advisory_xact_lock($1)`
	sqlAuditHead = `SELECT seq, entry_hash FROM kms_audit_log ORDER BY seq DESC LIMIT 1`
	// sqlInsertAudit inserts a batch of records from one array per column
	// (one statement, whatever the batch size).
	sqlInsertAudit = `INSERT INTO kms_audit_log (` + auditColumns + `)
		SELECT r.seq, r.time, r.node, r.tenant, r.member, r.cert_hash, r.role, r.remote, r.action, r.object, r.status, r.reason,
			r.details::jsonb, r.prev_hash, r.entry_hash
		FROM unnest($1::bigint[], $2::bigint[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[],
			$9::text[], $10::text[], $11::text[], $12::text[], $13::text[], $14::bytea[], $15::bytea[])
			AS r (seq, time, node, tenant, member, cert_hash, role, remote, action, object, status, reason, details, prev_hash, entry_hash)`
	sqlAuditRecords    = `SELECT ` + auditColumns + ` FROM kms_audit_log WHERE seq > $1 ORDER BY seq LIMIT $2`
	sqlPutCheckpoint   = `INSERT INTO kms_audit_checkpoints (seq, hash, time, key_id, signature) VALUES ($1, $2, $3, $4, $5) ON CONFLICT (seq, key_id) DO NOTHING`
	sqlAuditCheckpoint = `SELECT seq, hash, time, key_id, signature FROM kms_audit_checkpoints ORDER BY seq, key_id`
)

// AppendAudit implements engine.AuditStore. One transaction takes the
// audit advisory lock, reads the head, lets build make the records and
// inserts them: appenders on every node sharing the database serialize on
// the lock from the head read to the commit, so the chain stays one chain.
// (A row lock on the newest record would not do: on an empty table there
// is no row to lock, and two first appenders would both start a chain.)
// The lock is taken in its own statement before the head is read, so
// that the read's snapshot, taken after the lock is granted, includes the
// previous holder's commit. Lock and head read share one round trip with
// the BEGIN.
func (s *Store) AppendAudit(ctx context.Context, build func(head engine.AuditHead) ([]engine.AuditRecord, error)) error {
	ctx, cancel, err := s.op(ctx)
	if err != nil {
		return err
	}
	defer cancel()
	b := &pgx.Batch{}
	b.BeginTx(pgx.TxOptions{})
	b.Queue(sqlAuditLock, auditLockKey)
	b.Queue(sqlAuditHead)
	br := s.pool.SendBatch(ctx, b)
	tx := br.Tx()
	if tx != nil {
		defer rollback(ctx, tx)
	}
	var head engine.AuditHead
	_, err = br.Exec() // BEGIN
	if err == nil {
		_, err = br.Exec() // the lock
	}
	if err == nil {
		err = br.QueryRow().Scan(&head.Seq, &head.Hash)
		if errors.Is(err, pgx.ErrNoRows) {
			err = nil
		}
	}
	if cerr := br.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return s.mapErr(err)
	}
	if tx == nil {
		return errors.New("postgres: audit append: no transaction")
	}
	recs, err := build(head)
	if err != nil {
		return err
	}
	if len(recs) == 0 {
		return nil
	}
	args, err := auditArrays(recs)
	if err != nil {
		return err
	}
	if _, err := tx.Exec(ctx, sqlInsertAudit, args...); err != nil {
		return s.mapErr(err)
	}
	if err := tx.Commit(ctx); err != nil {
		return s.mapErr(err)
	}
	s.stats.commits.Add(1)
	return nil
}

// auditArrays returns the column arrays of sqlInsertAudit for recs.
func auditArrays(recs []engine.AuditRecord) ([]any, error) {
	n := len(recs)
	var (
		seqs, times                                    = make([]int64, n), make([]int64, n)
		nodes, tenants, members, certs, roles, remotes = make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n)
		actions, objects, statuses, reasons, details   = make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n)
		prevs, hashes                                  = make([][]byte, n), make([][]byte, n)
	)
	for i := range recs {
		r := &recs[i]
		d, err := encodeDetails(r.Details)
		if err != nil {
			return nil, err
		}
		seqs[i], times[i] = r.Seq, r.Time.UTC().UnixNano()
		nodes[i], tenants[i], members[i], certs[i], roles[i], remotes[i] = r.Node, r.Tenant, r.Member, r.CertHash, r.Role, r.Remote
		actions[i], objects[i], statuses[i], reasons[i], details[i] = r.Action, r.Object, r.Status, r.Reason, d
		prevs[i], hashes[i] = nonNil(r.PrevHash), nonNil(r.Hash)
	}
	return []any{seqs, times, nodes, tenants, members, certs, roles, remotes, actions, objects, statuses, reasons, details, prevs, hashes}, nil
}

// encodeDetails is the stored form of details: a JSON object of strings,
// {} for none.
func encodeDetails(d map[string]string) (string, error) {
	if len(d) == 0 {
		return "{}", nil
	}
	b, err := json.Marshal(d)
	if err != nil {
		return "", err
	}
	return string(b), nil
}

// scanAudit reads rows of auditColumns. Details read back exactly as
// written (jsonb keeps every key and string); none is nil.
func scanAudit(rows pgx.Rows) ([]engine.AuditRecord, error) {
	defer rows.Close()
	var out []engine.AuditRecord
	for rows.Next() {
		var r engine.AuditRecord
		var t int64
		var details []byte
		if err := rows.Scan(&r.Seq, &t, &r.Node, &r.Tenant, &r.Member, &r.CertHash, &r.Role, &r.Remote, &r.Action, &r.Object, &r.Status, &r.Reason,
			&details, &r.PrevHash, &r.Hash); err != nil {
			return nil, mapErr(err)
		}
		r.Time = time.Unix(0, t).UTC()
		if err := json.Unmarshal(details, &r.Details); err != nil {
			return nil, fmt.Errorf("audit record %d: details: %w", r.Seq, err)
		}
		if len(r.Details) == 0 {
			r.Details = nil
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, mapErr(err)
	}
	return out, nil
}

// AuditRecords implements engine.AuditStore.
func (s *Store) AuditRecords(ctx context.Context, afterSeq int64, limit int) ([]engine.AuditRecord, error) {
	if limit <= 0 || limit > maxAuditPage {
		limit = maxAuditPage
	}
	ctx, cancel, err := s.op(ctx)
	if err != nil {
		return nil, err
	}
	defer cancel()
	rows, err := s.pool.Query(ctx, sqlAuditRecords, afterSeq, limit)
	if err != nil {
		return nil, s.mapErr(err)
	}
	return scanAudit(rows)
}

// QueryAudit implements engine.AuditStore.
func (s *Store) QueryAudit(ctx context.Context, q engine.AuditQuery) ([]engine.AuditRecord, error) {
	var where []string
	var args []any
	add := func(cond string, v any) {
		args = append(args, v)
		where = append(where, cond+" $"+strconv.Itoa(len(args)))
	}
	if q.Tenant != "" || !q.AnyTenant {
		add("tenant =", q.Tenant)
	}
	if !q.From.IsZero() {
		add("time >=", q.From.UTC().UnixNano())
	}
	if !q.To.IsZero() {
		add("time <", q.To.UTC().UnixNano())
	}
	if q.Action != "" {
		add("action =", q.Action)
	}
	if q.Object != "" {
		add("object =", q.Object)
	}
	if q.Member != "" {
		add("member =", q.Member)
	}
	if q.AfterSeq > 0 {
		add("seq >", q.AfterSeq)
	}
	limit := q.Limit
	if limit <= 0 || limit > maxAuditPage {
		limit = maxAuditPage
	}
	query := `SELECT ` + auditColumns + ` FROM kms_audit_log`
	if len(where) > 0 {
		query += " WHERE " + strings.Join(where, " AND ")
	}
	args = append(args, limit)
	query += " ORDER BY seq LIMIT $" + strconv.Itoa(len(args))

	ctx, cancel, err := s.op(ctx)
	if err != nil {
		return nil, err
	}
	defer cancel()
	rows, err := s.pool.Query(ctx, query, args...)
	if err != nil {
		return nil, s.mapErr(err)
	}
	return scanAudit(rows)
}

// AuditHead implements engine.AuditStore.
func (s *Store) AuditHead(ctx context.Context) (engine.AuditHead, error) {
	var head engine.AuditHead
	ctx, cancel, err := s.op(ctx)
	if err != nil {
		return head, err
	}
	defer cancel()
	err = s.pool.QueryRow(ctx, sqlAuditHead).Scan(&head.Seq, &head.Hash)
	if errors.Is(err, pgx.ErrNoRows) {
		return engine.AuditHead{}, nil
	}
	if err != nil {
		return engine.AuditHead{}, s.mapErr(err)
	}
	return head, nil
}

// PutAuditCheckpoint implements engine.AuditStore. Storing a checkpoint
// again (same seq and key) does nothing: two nodes may sign the same head.
func (s *Store) PutAuditCheckpoint(ctx context.Context, c engine.AuditCheckpoint) error {
	ctx, cancel, err := s.op(ctx)
	if err != nil {
		return err
	}
	defer cancel()
	if _, err := s.pool.Exec(ctx, sqlPutCheckpoint, c.Seq, nonNil(c.Hash), c.Time.UTC().UnixNano(), c.KeyID, nonNil(c.Signature)); err != nil {
		return s.mapErr(err)
	}
	s.stats.commits.Add(1)
	return nil
}

// AuditCheckpoints implements engine.AuditStore, oldest first.
func (s *Store) AuditCheckpoints(ctx context.Context) ([]engine.AuditCheckpoint, error) {
	ctx, cancel, err := s.op(ctx)
	if err != nil {
		return nil, err
	}
	defer cancel()
	rows, err := s.pool.Query(ctx, sqlAuditCheckpoint)
	if err != nil {
		return nil, s.mapErr(err)
	}
	defer rows.Close()
	var out []engine.AuditCheckpoint
	for rows.Next() {
		var c engine.AuditCheckpoint
		var t int64
		if err := rows.Scan(&c.Seq, &c.Hash, &t, &c.KeyID, &c.Signature); err != nil {
			return nil, s.mapErr(err)
		}
		c.Time = time.Unix(0, t).UTC()
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, s.mapErr(err)
	}
	return out, nil
}
