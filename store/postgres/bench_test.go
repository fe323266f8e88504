package postgres

import (
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/minikms/minikms/audit"
	"github.com/minikms/minikms/engine"
)

// benchObject is an object of realistic size: ~600 bytes of attribute
// JSON and a wrapped 256-bit key (nonce + ciphertext + tag), as in
// store/sqlite's benchmarks.
func benchObject(tenant, id, name string) *engine.StoredObject {
	o := testObject(tenant, id)
	o.Names = []string{name}
	o.Attrs = []byte(fmt.Sprintf(`{"Unique Identifier":%q,"Name":[{"NameValue":%q,"NameType":1}],"Cryptographic Algorithm":3,`+
		`"Cryptographic Length":256,"Cryptographic Usage Mask":12,"Object Group":"default","State":2,"Initial Date":"2025-01-02T03:04:05Z",`+
		`"Activation Date":"2025-01-02T03:04:05Z","Last Change Date":"2025-01-02T03:04:05Z","Digest":{"HashingAlgorithm":6,`+
		`"DigestValue":"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef","KeyFormatType":1},"Fresh":true,`+
		`"Key Value Present":true,"Sensitive":false,"Extractable":true,"Always Sensitive":false,"Never Extractable":false}`, id, name))
	o.Wrapped = make([]byte, 12+32+16)
	return o
}

// BenchmarkCreateObject: one durable create at a time (one commit, one
// WAL flush each).
func BenchmarkCreateObject(b *testing.B) {
	s, _ := openTest(b)
	ctx := b.Context()
	i := 0
	for b.Loop() {
		i++
		if err := s.CreateObject(ctx, benchObject("acme", fmt.Sprintf("obj-%d", i), "bench")); err != nil {
			b.Fatal(err)
		}
	}
}

// benchWriters is the number of goroutines of the parallel benchmarks.
const benchWriters = 16

// BenchmarkCreateObjectParallel: 16 concurrent creators; PostgreSQL's own
// group commit lets one WAL flush cover the commits waiting meanwhile.
func BenchmarkCreateObjectParallel(b *testing.B) {
	s, _ := openTest(b)
	ctx := b.Context()
	var n atomic.Int64
	procs := runtime.GOMAXPROCS(0)
	b.SetParallelism((benchWriters + procs - 1) / procs)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			id := fmt.Sprintf("obj-%d", n.Add(1))
			if err := s.CreateObject(ctx, benchObject("acme", id, "bench")); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkAuditAppend measures durable audit appends from 16 concurrent
// writers (as 16 KMIP connections make them), as store/sqlite's benchmark
// of the same name: "serial" forces one append (one transaction, one
// commit) at a time; "grouped" lets audit.Log batch the events queued
// while an append is in flight into the next one. commits/op is the
// store's committed transactions per event.
func BenchmarkAuditAppend(b *testing.B) {
	for _, mode := range []string{"serial", "grouped"} {
		b.Run(mode, func(b *testing.B) {
			s, _ := openTest(b)
			l := audit.NewLog(s, "bench")
			var mu sync.Mutex
			ev := engine.AuditEvent{Tenant: "acme", Member: "app", CertHash: "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
				Role: "app", Remote: "127.0.0.1:50000", Action: "kmip.Encrypt", Object: "6f1c1c1e-8a53-4d5e-9c36-0d5b3c1f2a77", Status: "success"}
			procs := runtime.GOMAXPROCS(0)
			b.SetParallelism((benchWriters + procs - 1) / procs)
			commits := s.stats.commits.Load()
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
			b.ReportMetric(float64(s.stats.commits.Load()-commits)/float64(b.N), "commits/op")
			rep, err := audit.Verify(b.Context(), s, audit.VerifyOptions{})
			if err != nil || rep.Problem != nil {
				b.Fatal(fmt.Sprint(err, rep.Problem))
			}
		})
	}
}

// BenchmarkAuditAppendTwoNodes: the grouped benchmark split over two
// stores (two nodes) on one database: each node batches its own events,
// and the advisory lock orders the two nodes' appends.
func BenchmarkAuditAppendTwoNodes(b *testing.B) {
	s, dbURL := openTest(b)
	s2, err := Open(b.Context(), dbURL)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s2.Close() })
	logs := []*audit.Log{audit.NewLog(s, "a"), audit.NewLog(s2, "b")}
	ev := engine.AuditEvent{Tenant: "acme", Member: "app", Action: "kmip.Encrypt", Object: "k", Status: "success"}
	var n atomic.Int64
	procs := runtime.GOMAXPROCS(0)
	b.SetParallelism((benchWriters + procs - 1) / procs)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		l := logs[n.Add(1)%2]
		for pb.Next() {
			if err := l.Record(b.Context(), []engine.AuditEvent{ev}); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.StopTimer()
	rep, err := audit.Verify(b.Context(), s, audit.VerifyOptions{})
	if err != nil || rep.Problem != nil {
		b.Fatal(fmt.Sprint(err, rep.Problem))
	}
}
