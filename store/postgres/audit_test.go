package postgres

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/minikms/minikms/audit"
	"github.com/minikms/minikms/engine"
	"github.com/minikms/minikms/store/storetest"
)

// tamperer edits the audit tables directly, as an attacker with write
// access to the database would: its own connections, plain SQL.
type tamperer struct{ pool *pgxpool.Pool }

func newTamperer(t *testing.T, dbURL string) tamperer {
	pool, err := pgxpool.New(t.Context(), dbURL)
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	return tamperer{pool}
}

func (tt tamperer) tx(ctx context.Context, fn func(tx pgx.Tx) error) error {
	return pgx.BeginFunc(ctx, tt.pool, fn)
}

var auditColumnNames = map[string]bool{"time": true, "node": true, "tenant": true, "member": true, "cert_hash": true, "role": true,
	"remote": true, "action": true, "object": true, "status": true, "reason": true, "details": true, "prev_hash": true, "entry_hash": true}

func (tt tamperer) SetColumn(ctx context.Context, seq int64, column string, value any) error {
	if !auditColumnNames[column] {
		return fmt.Errorf("no column %q", column)
	}
	_, err := tt.pool.Exec(ctx, `UPDATE kms_audit_log SET `+column+` = $1 WHERE seq = $2`, value, seq)
	return err
}

func (tt tamperer) Delete(ctx context.Context, from, to int64) error {
	_, err := tt.pool.Exec(ctx, `DELETE FROM kms_audit_log WHERE seq BETWEEN $1 AND $2`, from, to)
	return err
}

func (tt tamperer) Renumber(ctx context.Context, from, delta int64) error {
	// Through negative numbers: the primary key is checked row by row.
	return tt.tx(ctx, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `UPDATE kms_audit_log SET seq = -(seq + $1) WHERE seq >= $2`, delta, from); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `UPDATE kms_audit_log SET seq = -seq WHERE seq < 0`)
		return err
	})
}

func (tt tamperer) Insert(ctx context.Context, r engine.AuditRecord) error {
	d, _ := json.Marshal(r.Details)
	if r.Details == nil {
		d = []byte("{}")
	}
	_, err := tt.pool.Exec(ctx, `INSERT INTO kms_audit_log (`+auditColumns+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13::text::jsonb, $14, $15)`,
		r.Seq, r.Time.UnixNano(), r.Node, r.Tenant, r.Member, r.CertHash, r.Role, r.Remote, r.Action, r.Object, r.Status, r.Reason, string(d), r.PrevHash, r.Hash)
	return err
}

func (tt tamperer) Swap(ctx context.Context, a, b int64) error {
	// Swapping the sequence numbers swaps everything else.
	return tt.tx(ctx, func(tx pgx.Tx) error {
		for _, st := range []struct{ to, from int64 }{{-1, a}, {a, b}, {b, -1}} {
			if _, err := tx.Exec(ctx, `UPDATE kms_audit_log SET seq = $1 WHERE seq = $2`, st.to, st.from); err != nil {
				return err
			}
		}
		return nil
	})
}

func (tt tamperer) DeleteCheckpoints(ctx context.Context) error {
	_, err := tt.pool.Exec(ctx, `DELETE FROM kms_audit_checkpoints`)
	return err
}

func TestAuditTamper(t *testing.T) {
	t.Parallel()
	serverURL(t) // skip (or fail) once, not in every subtest
	storetest.RunAuditTamper(t, func(t *testing.T) (engine.AuditStore, storetest.Tamperer) {
		s, dbURL := openTest(t)
		return s, newTamperer(t, dbURL)
	})
}

// TestAuditTwoProcessesOneChain: two stores on one database (two nodes)
// append concurrently; the advisory lock serializes them across
// connections, so the chain stays one chain.
func TestAuditTwoProcessesOneChain(t *testing.T) {
	t.Parallel()
	a, dbURL := openTest(t)
	b, err := Open(t.Context(), dbURL)
	require.NoError(t, err)
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
	recs, err := b.AuditRecords(t.Context(), 0, 0)
	require.NoError(t, err)
	nodes := map[string]int{}
	for _, r := range recs {
		nodes[r.Node]++
	}
	if nodes["node-a"] != 80 || nodes["node-b"] != 80 {
		t.Fatalf("records by node %v", nodes)
	}
}

// TestAuditFirstAppendersRace: many stores (nodes) append the very first
// records of an empty chain at once, where there is no row to lock: the
// advisory lock still makes one chain starting at 1.
func TestAuditFirstAppendersRace(t *testing.T) {
	t.Parallel()
	first, dbURL := openTest(t)
	const nodes = 6
	stores := []*Store{first}
	for range nodes - 1 {
		s, err := Open(t.Context(), dbURL)
		require.NoError(t, err)
		t.Cleanup(func() { s.Close() })
		stores = append(stores, s)
	}
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i, s := range stores {
		wg.Go(func() {
			<-start
			l := audit.NewLog(s, fmt.Sprint("node-", i))
			if err := l.Record(t.Context(), []engine.AuditEvent{{Action: "first", Status: "success", Details: map[string]string{"node": fmt.Sprint(i)}}}); err != nil {
				t.Error(err)
			}
		})
	}
	close(start)
	wg.Wait()
	rep, err := audit.Verify(t.Context(), first, audit.VerifyOptions{})
	require.NoError(t, err)
	require.Nil(t, rep.Problem)
	require.Equal(t, int64(nodes), rep.Records)
}

// TestAuditDetailsRoundTrip: details come back exactly as the hash saw
// them (jsonb keeps every key and string); nil and empty read back nil.
func TestAuditDetailsRoundTrip(t *testing.T) {
	t.Parallel()
	s, _ := openTest(t)
	l := audit.NewLog(s, "n")
	details := []map[string]string{
		nil,
		{},
		{"a": "1", "b": ""},
		{"<html>&": "\"quoted\" \\ back\nslash\ttab", "ünï": "✓ 鍵 🔑", "": "empty key"},
	}
	for _, d := range details {
		require.NoError(t, l.Record(t.Context(), []engine.AuditEvent{{Action: "x", Status: "success", Details: d}}))
	}
	recs, err := s.AuditRecords(t.Context(), 0, 0)
	require.NoError(t, err)
	require.Len(t, recs, len(details))
	for i, r := range recs {
		if len(details[i]) == 0 {
			require.Nil(t, r.Details, "record %d", r.Seq)
		} else {
			require.Equal(t, details[i], r.Details, "record %d", r.Seq)
		}
		require.Equal(t, audit.Hash(&r), r.Hash, "record %d hashes back", r.Seq)
	}
	rep, err := audit.Verify(t.Context(), s, audit.VerifyOptions{})
	require.NoError(t, err)
	require.Nil(t, rep.Problem)
}
