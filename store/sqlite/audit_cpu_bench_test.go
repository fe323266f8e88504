package sqlite

import (
	"fmt"
	"syscall"
	"testing"
	"time"

	"github.com/minikms/minikms/engine"
)

// BenchmarkAuditAppendBatch appends batches of N chained records in one
// durable AppendAudit each (what the audit log does for N concurrent
// requests in one group), from one goroutine, and reports the process CPU
// per record (cpu-µs/record, from getrusage: steadier than wall time on a
// shared machine, where the fsync dominates the wall clock).
//
//	go test -run '^$' -bench BenchmarkAuditAppendBatch -benchtime 2000x -count 3 ./store/sqlite/
func BenchmarkAuditAppendBatch(b *testing.B) {
	for _, n := range []int{1, 8, 16} {
		b.Run(fmt.Sprintf("records=%d", n), func(b *testing.B) {
			s, _ := openTest(b)
			ctx := b.Context()
			rec := engine.AuditRecord{Node: "bench", AuditEvent: engine.AuditEvent{Tenant: "acme", Member: "app",
				CertHash: "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
				Role:     "app", Remote: "127.0.0.1:50000", Action: "kmip.Encrypt",
				Object: "6f1c1c1e-8a53-4d5e-9c36-0d5b3c1f2a77", Status: "success",
				Details: map[string]string{"request_id": "0123456789abcdef"}}}
			build := func(head engine.AuditHead) ([]engine.AuditRecord, error) {
				out := make([]engine.AuditRecord, n)
				prev := head.Hash
				if prev == nil {
					prev = make([]byte, 32)
				}
				for i := range out {
					r := rec
					r.Seq, r.Time, r.PrevHash = head.Seq+int64(i)+1, time.Now(), prev
					r.Hash = []byte(fmt.Sprintf("%032x", r.Seq))
					prev = r.Hash
					out[i] = r
				}
				return out, nil
			}
			cpu0 := cpuTime()
			b.ResetTimer()
			for b.Loop() {
				if err := s.AppendAudit(ctx, build); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			b.ReportMetric(float64(cpuTime()-cpu0)/float64(time.Microsecond)/float64(b.N*n), "cpu-µs/record")
			var count int
			if err := s.rdb.QueryRowContext(ctx, `SELECT count(*) FROM kms_audit_log`).Scan(&count); err != nil || count != b.N*n {
				b.Fatalf("%d records stored, want %d (%v)", count, b.N*n, err)
			}
		})
	}
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
