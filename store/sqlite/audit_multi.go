package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"strings"

	"github.com/minikms/minikms/engine"
)

// auditInsertChunks are the row counts of the multi-row audit INSERTs,
// largest first. A batch of records (one group commit's worth: the audit
// log joins the records of concurrent requests) is inserted with as few
// statements as these sizes allow, then one row at a time: each statement
// costs a bind, a statement step and a VDBE program start, about a third
// of a record's insert cost (BenchmarkAuditAppendBatch).
var auditInsertChunks = []int{16, 8, 4, 2}

// sqlInsertAuditRows is the INSERT of n audit records.
func sqlInsertAuditRows(n int) string {
	if n == 1 {
		return sqlInsertAudit
	}
	row := `(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`
	return `INSERT INTO kms_audit_log (` + auditColumns + `) VALUES ` + strings.TrimSuffix(strings.Repeat(row+`, `, n), `, `)
}

// The multi-row INSERTs, prepared at Open with the other writer
// statements.
var sqlInsertAuditMulti = func() map[int]string {
	m := make(map[int]string, len(auditInsertChunks))
	for _, n := range auditInsertChunks {
		m[n] = sqlInsertAuditRows(n)
		writerStatements = append(writerStatements, m[n])
	}
	return m
}()

// auditArgs appends the column values of r in auditColumns order.
func auditArgs(args []any, r engine.AuditRecord) ([]any, error) {
	details := []byte("{}")
	if r.Details != nil {
		var err error
		if details, err = json.Marshal(r.Details); err != nil {
			return nil, err
		}
	}
	return append(args, r.Seq, r.Time.UTC().UnixNano(), r.Node, r.Tenant, r.Member, r.CertHash, r.Role, r.Remote, r.Action, r.Object, r.Status, r.Reason,
		string(details), r.PrevHash, r.Hash), nil
}

// insertAudit inserts recs, in order, inside tx.
func (s *Store) insertAudit(ctx context.Context, tx *sql.Tx, recs []engine.AuditRecord) error {
	var args []any
	for len(recs) > 0 {
		n := 1
		for _, c := range auditInsertChunks {
			if len(recs) >= c {
				n = c
				break
			}
		}
		args = args[:0]
		for _, r := range recs[:n] {
			var err error
			if args, err = auditArgs(args, r); err != nil {
				return err
			}
		}
		q := sqlInsertAudit
		if n > 1 {
			q = sqlInsertAuditMulti[n]
		}
		if _, err := s.wstmts.exec(ctx, tx, q, args...); err != nil {
			return mapErr(err)
		}
		recs = recs[n:]
	}
	return nil
}
