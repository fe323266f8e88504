package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"sync"
	"testing"

	"github.com/minikms/minikms/audit"
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

// TestAuditTwoProcessesOneChain: two stores on one file (a server and the
// command line, or two servers on one host) append concurrently; the head
// is read under SQLite's write lock, so the chain stays one chain.
func TestAuditTwoProcessesOneChain(t *testing.T) {
	a, path := openTest(t)
	b, err := Open(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	logs := []*audit.Log{audit.NewLog(a, "node-a"), audit.NewLog(b, "node-b")}
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			for j := range 20 {
				ev := engine.AuditEvent{Tenant: "acme", Action: "kmip.Get", Object: fmt.Sprintf("%d-%d", i, j), Status: "success"}
				if err := logs[i%2].Record(t.Context(), []engine.AuditEvent{ev}); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	rep, err := audit.Verify(t.Context(), a, audit.VerifyOptions{})
	if err != nil || rep.Problem != nil || rep.Records != 160 {
		t.Fatalf("verify: %v %v, %d records", err, rep.Problem, rep.Records)
	}
	recs, _ := a.AuditRecords(t.Context(), 0, 0)
	nodes := map[string]int{}
	for _, r := range recs {
		nodes[r.Node]++
	}
	if nodes["node-a"] != 80 || nodes["node-b"] != 80 {
		t.Fatalf("records by node %v", nodes)
	}
}
