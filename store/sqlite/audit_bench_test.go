package sqlite

import (
	"fmt"
	"sync"
	"testing"

	"github.com/minikms/minikms/audit"
	"github.com/minikms/minikms/engine"
)

// BenchmarkAuditAppend measures durable audit appends from 16 concurrent
// writers (as 16 KMIP connections make them): "grouped" is the store's
// group commit, "serial" forces one transaction and one fsync per append
// (what a store without group commit does). Compare ns/op.
func BenchmarkAuditAppend(b *testing.B) {
	for _, mode := range []string{"serial", "grouped"} {
		b.Run(mode, func(b *testing.B) {
			s, _ := openTest(b)
			l := audit.NewLog(s, "bench")
			var mu sync.Mutex
			ev := engine.AuditEvent{Tenant: "acme", Member: "app", CertHash: "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
				Role: "app", Remote: "127.0.0.1:50000", Action: "kmip.Encrypt", Object: "6f1c1c1e-8a53-4d5e-9c36-0d5b3c1f2a77", Status: "success"}
			b.SetParallelism(8) // 16 writers on 2 CPUs
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if mode == "serial" {
						mu.Lock()
					}
					err := l.Record(b.Context(), []engine.AuditEvent{ev})
					if mode == "serial" {
						mu.Unlock()
					}
					if err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.StopTimer()
			b.ReportMetric(float64(s.stats.commits.Load())/float64(b.N), "commits/op")
			rep, err := audit.Verify(b.Context(), s, audit.VerifyOptions{})
			if err != nil || rep.Problem != nil {
				b.Fatal(fmt.Sprint(err, rep.Problem))
			}
		})
	}
}
