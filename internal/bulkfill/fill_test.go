// Package bulkfill_test fills a miniKMS SQLite store with many real
// objects, for the 1M-object measurements of BENCHMARKS.md. It is a test
// that skips unless MINIKMS_FILL_DIR is set, so `make test` never runs it:
//
//	bin/minikms dev --data-dir D ...   # once, to create D (then stop it)
//	MINIKMS_FILL_DIR=D MINIKMS_FILL_COUNT=1000000 \
//	    go test -count=1 -timeout 2h -run TestFill -v ./internal/bulkfill/
//
// (scripts/bench-1m.sh does all of it.) Each object is a real AES-256 key
// of tenant acme made by engine.Create: generated, wrapped under the
// tenant's key derived from the dev root key, and committed durably through
// the store's group commit (up to 256 creates per commit), exactly as a
// KMIP Create makes it, minus TLS, TTLV and the audit record.
package bulkfill_test

import (
	"context"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/minikms/minikms/certs"
	"github.com/minikms/minikms/engine"
	"github.com/minikms/minikms/store/sqlite"
	"github.com/ovh/kmip-go/kmipclient"
)

func TestFill(t *testing.T) {
	dir := os.Getenv("MINIKMS_FILL_DIR")
	if dir == "" {
		t.Skip("MINIKMS_FILL_DIR is not set: this fills a store for benchmarks, see the package comment")
	}
	count := 1_000_000
	if s := os.Getenv("MINIKMS_FILL_COUNT"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			t.Fatalf("MINIKMS_FILL_COUNT=%q: want a positive number", s)
		}
		count = n
	}
	workers := 256
	ctx := context.Background()
	hexKey, err := os.ReadFile(filepath.Join(dir, "dev-root.key"))
	if err != nil {
		t.Fatalf("%v (start `minikms dev --data-dir %s` once first)", err, dir)
	}
	root, err := engine.ParseRootKeyHex(string(hexKey))
	if err != nil {
		t.Fatal(err)
	}
	st, err := sqlite.Open(ctx, filepath.Join(dir, "minikms.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	kr, err := engine.NewSoftKeyringWithPrevious(root)
	if err != nil {
		t.Fatal(err)
	}
	eng, err := engine.Open(ctx, engine.Config{Store: st, Keyring: kr, Salt: os.Getenv("MINIKMS_SALT")})
	if err != nil {
		t.Fatal(err)
	}
	p := engine.Principal{Tenant: "acme", Member: "bulkfill", Role: engine.RoleAdmin}
	req := engine.CreateRequest{Type: engine.TypeSymmetricKey, Attrs: []engine.Attribute{
		{Name: engine.AttrCryptographicAlgorithm, Value: engine.AlgAES},
		{Name: engine.AttrCryptographicLength, Value: int32(256)},
		{Name: engine.AttrObjectGroup, Value: "minikms-bulkfill"},
	}}
	// A sample of the identifiers (about 1,000), for TestColdGets.
	step := int64(max(1, count/1000))
	var sampleMu sync.Mutex
	var sample []string
	var next, done atomic.Int64
	start := time.Now()
	var wg sync.WaitGroup
	var firstErr error
	var once sync.Once
	for range workers {
		wg.Go(func() {
			for next.Add(1) <= int64(count) {
				o, err := eng.Create(ctx, p, req)
				if err != nil {
					once.Do(func() { firstErr = err })
					return
				}
				n := done.Add(1)
				if n%step == 0 {
					sampleMu.Lock()
					sample = append(sample, o.ID)
					sampleMu.Unlock()
				}
				if n%100_000 == 0 {
					t.Logf("%d objects, %.0f/s", n, float64(n)/time.Since(start).Seconds())
				}
			}
		})
	}
	wg.Wait()
	if firstErr != nil {
		t.Fatalf("after %d objects: %v", done.Load(), firstErr)
	}
	el := time.Since(start)
	if err := os.WriteFile(filepath.Join(dir, sampleFile), []byte(strings.Join(sample, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Logf("created %d objects in %v (%.0f/s)", done.Load(), el.Round(time.Millisecond), float64(done.Load())/el.Seconds())
}

// sampleFile, in the data directory, lists about 1,000 of the filled
// objects' identifiers, spread over the fill.
const sampleFile = "bulkfill-ids.txt"

// TestColdGets times KMIP Gets of 200 random filled objects against a
// running server (MINIKMS_COLD_ADDR) over one connection as acme/app: each
// one misses the engine's cache on a fresh server (a store read, an
// unwrap, a cache insert). Skipped unless MINIKMS_COLD_ADDR and
// MINIKMS_COLD_DIR (the filled data directory) are set.
func TestColdGets(t *testing.T) {
	addr, dir := os.Getenv("MINIKMS_COLD_ADDR"), os.Getenv("MINIKMS_COLD_DIR")
	if addr == "" || dir == "" {
		t.Skip("MINIKMS_COLD_ADDR and MINIKMS_COLD_DIR are not set: see scripts/bench-1m.sh")
	}
	b, err := os.ReadFile(filepath.Join(dir, sampleFile))
	if err != nil {
		t.Fatal(err)
	}
	ids := strings.Fields(string(b))
	rand.Shuffle(len(ids), func(i, j int) { ids[i], ids[j] = ids[j], ids[i] })
	ids = ids[:min(200, len(ids))]
	bundle := certs.Bundle{Dir: filepath.Join(dir, "certs")}
	certFile, keyFile := bundle.MemberFiles("acme", "app")
	c, err := kmipclient.Dial(addr, kmipclient.WithRootCAFile(bundle.CAFile()), kmipclient.WithClientCertFiles(certFile, keyFile),
		kmipclient.WithServerName("127.0.0.1"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	lat := make([]time.Duration, 0, len(ids))
	for _, id := range ids {
		t0 := time.Now()
		resp, err := c.Get(id).Exec()
		if err != nil {
			t.Fatalf("Get %s: %v", id, err)
		}
		lat = append(lat, time.Since(t0))
		if resp.UniqueIdentifier != id {
			t.Fatalf("Get %s answered for %s", id, resp.UniqueIdentifier)
		}
	}
	slices.Sort(lat)
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	t.Logf("cold Get p50 %.2f ms, p99 %.2f ms (%d objects)", ms(lat[len(lat)/2]), ms(lat[len(lat)*99/100]), len(lat))
}
