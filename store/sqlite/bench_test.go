package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"runtime"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/minikms/minikms/engine"
)

// benchObject is an object of realistic size: ~600 bytes of attribute
// JSON and a wrapped 256-bit key (nonce + ciphertext + tag).
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

// loadObjects inserts n objects of tenant in batches of one transaction
// each, bypassing per-object commits; object i is named names(i).
func loadObjects(b *testing.B, s *Store, tenant string, n int, name func(i int) string) []string {
	b.Helper()
	const batch = 5000
	ids := make([]string, n)
	for start := 0; start < n; start += batch {
		err := s.Write(b.Context(), func(ctx context.Context, tx *sql.Tx) error {
			for i := start; i < min(start+batch, n); i++ {
				ids[i] = fmt.Sprintf("%s-%08d", tenant, i)
				if _, err := s.insertObject(ctx, tx, benchObject(tenant, ids[i], name(i))); err != nil {
					return err
				}
			}
			return nil
		})
		require.NoError(b, err)
	}
	return ids
}

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

func BenchmarkCreateObjectParallel(b *testing.B) {
	s, _ := openTest(b)
	ctx := b.Context()
	var n atomic.Int64
	procs := runtime.GOMAXPROCS(0)
	b.SetParallelism((benchWriters + procs - 1) / procs)
	commits := s.stats.commits.Load()
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
	b.StopTimer()
	if c := s.stats.commits.Load() - commits; c > 0 {
		b.ReportMetric(float64(b.N)/float64(c), "objects/commit")
	}
}

func BenchmarkGetObject(b *testing.B) {
	s, _ := openTest(b)
	ids := loadObjects(b, s, "acme", 10_000, func(i int) string { return fmt.Sprint("name-", i) })
	ctx := b.Context()
	i := 0
	for b.Loop() {
		i++
		if _, err := s.GetObject(ctx, "acme", ids[(i*7919)%len(ids)]); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkGetObjectParallel(b *testing.B) {
	s, _ := openTest(b)
	ids := loadObjects(b, s, "acme", 10_000, func(i int) string { return fmt.Sprint("name-", i) })
	ctx := b.Context()
	var n atomic.Int64
	procs := runtime.GOMAXPROCS(0)
	b.SetParallelism((benchWriters + procs - 1) / procs)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := s.GetObject(ctx, "acme", ids[(n.Add(1)*7919)%int64(len(ids))]); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkListObjectsByName lists by Name among 100,000 objects of one
// tenant (plus 100,000 of another with the same names): a unique name
// (one match), and a name shared by 100 objects (one page of 100).
func BenchmarkListObjectsByName(b *testing.B) {
	s, _ := openTest(b)
	const objects = 100_000
	loadObjects(b, s, "acme", objects, func(i int) string { return fmt.Sprint("name-", i%1000) })
	loadObjects(b, s, "globex", objects, func(i int) string { return fmt.Sprint("name-", i%1000) })
	// The newest object has a name of its own.
	ctx := b.Context()
	require.NoError(b, s.Write(ctx, func(ctx context.Context, tx *sql.Tx) error {
		_, err := s.insertObject(ctx, tx, benchObject("acme", "the-one", "unique-name"))
		return err
	}))

	cases := []struct {
		name  string
		q     engine.ObjectQuery
		match int
	}{
		{"unique", engine.ObjectQuery{Tenant: "acme", Name: "unique-name"}, 1},
		{"100 matches", engine.ObjectQuery{Tenant: "acme", Name: "name-421"}, 100},
		{"100 matches of type", engine.ObjectQuery{Tenant: "acme", Name: "name-421", Types: []engine.ObjectType{engine.TypeSymmetricKey}}, 100},
		{"tenant page of 512", engine.ObjectQuery{Tenant: "acme", Limit: 512}, 512},
	}
	for _, tc := range cases {
		b.Run(tc.name, func(b *testing.B) {
			for b.Loop() {
				got, err := s.ListObjects(ctx, tc.q)
				if err != nil {
					b.Fatal(err)
				}
				if len(got) != tc.match {
					b.Fatalf("got %d objects, want %d", len(got), tc.match)
				}
			}
		})
	}
}
