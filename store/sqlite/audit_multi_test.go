package sqlite

import (
	"fmt"
	"testing"
	"time"

	"github.com/minikms/minikms/engine"
)

// TestAppendAuditBatchSizes: batches of every size from 1 to 40 (which the
// multi-row INSERTs split as 16, 8, 4, 2 and 1) store every record once,
// in order, with every column intact.
func TestAppendAuditBatchSizes(t *testing.T) {
	s, _ := openTest(t)
	ctx := t.Context()
	var want []engine.AuditRecord
	base := time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC)
	for n := 1; n <= 40; n++ {
		err := s.AppendAudit(ctx, func(head engine.AuditHead) ([]engine.AuditRecord, error) {
			if head.Seq != int64(len(want)) {
				return nil, fmt.Errorf("head %d, want %d", head.Seq, len(want))
			}
			var out []engine.AuditRecord
			for i := range n {
				seq := head.Seq + int64(i) + 1
				r := engine.AuditRecord{Seq: seq, Node: "n", AuditEvent: engine.AuditEvent{
					Time: base.Add(time.Duration(seq)), Tenant: "acme", Member: fmt.Sprint("m", seq), CertHash: "c", Role: "app",
					Remote: "r", Action: "kmip.Encrypt", Object: fmt.Sprint("obj", seq), Status: "success", Reason: fmt.Sprint("reason", n)},
					PrevHash: []byte{byte(seq - 1)}, Hash: []byte{byte(seq), byte(seq >> 8)}}
				if seq%3 == 0 {
					r.Details = map[string]string{"request_id": fmt.Sprint(seq)}
				}
				out = append(out, r)
			}
			want = append(want, out...)
			return out, nil
		})
		if err != nil {
			t.Fatalf("batch of %d: %v", n, err)
		}
	}
	got, err := s.AuditRecords(ctx, 0, 10000)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want) {
		t.Fatalf("%d records stored, want %d", len(got), len(want))
	}
	for i := range want {
		w, g := want[i], got[i]
		if g.Seq != w.Seq || !g.Time.Equal(w.Time) || g.Member != w.Member || g.Object != w.Object || g.Reason != w.Reason ||
			string(g.PrevHash) != string(w.PrevHash) || string(g.Hash) != string(w.Hash) || fmt.Sprint(g.Details) != fmt.Sprint(w.Details) {
			t.Fatalf("record %d: got %+v, want %+v", i, g, w)
		}
	}
	// A failing batch stores nothing of itself.
	err = s.AppendAudit(ctx, func(head engine.AuditHead) ([]engine.AuditRecord, error) {
		r := want[0]
		r.Seq = head.Seq + 1
		dup := want[len(want)-1] // an existing Seq: the primary key refuses it
		return []engine.AuditRecord{r, r, dup}, nil
	})
	if err == nil {
		t.Fatal("a batch repeating a sequence number was stored")
	}
	if got, _ := s.AuditRecords(ctx, 0, 10000); len(got) != len(want) {
		t.Fatalf("%d records after a failed batch, want %d", len(got), len(want))
	}
}
