package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"testing"

	"github.com/minikms/minikms/engine"
	"github.com/minikms/minikms/store/storetest"
)

// tamperer edits the audit tables directly, as an attacker with write
// access to the database file would.
type tamperer struct{ s *Store }

func (tt tamperer) exec(ctx context.Context, query string, args ...any) error {
	return tt.s.Write(ctx, func(ctx context.Context, tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, query, args...)
		return err
	})
}

var auditColumnNames = map[string]bool{"time": true, "node": true, "tenant": true, "member": true, "cert_hash": true, "role": true,
	"remote": true, "action": true, "object": true, "status": true, "reason": true, "details": true, "prev_hash": true, "entry_hash": true}

func (tt tamperer) SetColumn(ctx context.Context, seq int64, column string, value any) error {
	if !auditColumnNames[column] {
		return fmt.Errorf("no column %q", column)
	}
	return tt.exec(ctx, `UPDATE kms_audit_log SET `+column+` = ? WHERE seq = ?`, value, seq)
}

func (tt tamperer) Delete(ctx context.Context, from, to int64) error {
	return tt.exec(ctx, `DELETE FROM kms_audit_log WHERE seq BETWEEN ? AND ?`, from, to)
}

func (tt tamperer) Renumber(ctx context.Context, from, delta int64) error {
	// Through negative numbers, so the primary key never collides.
	return tt.s.Write(ctx, func(ctx context.Context, tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `UPDATE kms_audit_log SET seq = -(seq + ?) WHERE seq >= ?`, delta, from); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `UPDATE kms_audit_log SET seq = -seq WHERE seq < 0`)
		return err
	})
}

func (tt tamperer) Insert(ctx context.Context, r engine.AuditRecord) error {
	d, _ := json.Marshal(r.Details)
	if r.Details == nil {
		d = []byte("{}")
	}
	return tt.exec(ctx, `INSERT INTO kms_audit_log (`+auditColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		r.Seq, r.Time.UnixNano(), r.Node, r.Tenant, r.Member, r.CertHash, r.Role, r.Remote, r.Action, r.Object, r.Status, r.Reason, string(d), r.PrevHash, r.Hash)
}

func (tt tamperer) Swap(ctx context.Context, a, b int64) error {
	// Swapping the sequence numbers swaps everything else.
	return tt.s.Write(ctx, func(ctx context.Context, tx *sql.Tx) error {
		steps := []struct {
			to, from int64
		}{{-1, a}, {a, b}, {b, -1}}
		for _, st := range steps {
			if _, err := tx.ExecContext(ctx, `UPDATE kms_audit_log SET seq = ? WHERE seq = ?`, st.to, st.from); err != nil {
				return err
			}
		}
		return nil
	})
}

func (tt tamperer) DeleteCheckpoints(ctx context.Context) error {
	return tt.exec(ctx, `DELETE FROM kms_audit_checkpoints`)
}

func TestAuditTamper(t *testing.T) {
	storetest.RunAuditTamper(t, func(t *testing.T) (engine.AuditStore, storetest.Tamperer) {
		s, _ := openTest(t)
		return s, tamperer{s}
	})
}
