// Package conformance runs miniKMS against independent references: the
// OASIS KMIP XML test vectors (this file) and the PyKMIP client suite
// (conformance/pykmip, run by scripts/conformance.sh).
package conformance

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/minikms/minikms/conformance/oasis"
	"github.com/minikms/minikms/engine"
	"github.com/minikms/minikms/internal/testkms"
)

// MINIKMS_OASIS_REPORT names a file to write the replay report (Markdown)
// to; `make test` writes conformance/REPORT.md. MINIKMS_OASIS_ONLY replays
// only the vectors whose name contains its value.
var (
	reportPath = os.Getenv("MINIKMS_OASIS_REPORT")
	only       = os.Getenv("MINIKMS_OASIS_ONLY")
)

// vectorDir is where ovh/kmip-go ships the OASIS KMIP 1.0–1.4 vectors.
func vectorDir(t *testing.T) string {
	t.Helper()
	out, err := goEnv("GOMODCACHE")
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(out, "github.com", "ovh", "kmip-go@v0.9.2", "kmiptest", "testdata")
	if _, err := os.Stat(dir); err != nil {
		t.Fatalf("OASIS vectors not found at %s (run: go mod download github.com/ovh/kmip-go): %v", dir, err)
	}
	return dir
}

// sequences are vector families whose files build on each other (a storage
// array or tape library configured in -1, writing in -2, reading in -3):
// they run in order, in one tenant.
var sequences = []string{"SASED-M", "SASED_M", "TL-M", "TL_M"}

// vectorGroups groups the applicable vectors: one group per sequence family
// and version, a group of one for every other file.
func vectorGroups(vectors []*oasis.Vector) [][]*oasis.Vector {
	var groups [][]*oasis.Vector
	seq := map[string]int{}
	for _, v := range vectors {
		name := v.Version + "/" + v.File
		if _, na := oasis.NotApplicable[name]; na || !strings.Contains(name, only) {
			continue
		}
		key := ""
		for _, p := range sequences {
			if strings.HasPrefix(v.File, p) {
				key = v.Version + "/" + p
			}
		}
		if i, ok := seq[key]; ok && key != "" {
			groups[i] = append(groups[i], v)
			continue
		}
		if key != "" {
			seq[key] = len(groups)
		}
		groups = append(groups, []*oasis.Vector{v})
	}
	for _, g := range groups {
		sort.Slice(g, func(i, j int) bool { return g[i].File < g[j].File })
	}
	return groups
}

// replayOptions is the server configuration of the replay: the vectors
// were recorded in 2009-2017 and create 1024-bit RSA key pairs, which this
// server generates only when the operator allows it (MINIKMS_RSA_MIN_BITS,
// default 2048). Everything else is the default configuration.
var replayOptions = testkms.Options{Engine: func(c *engine.Config) { c.MinRSABits = 1024 }}

// replayGroups replays the groups of vectors against env, each group in a
// tenant of its own over one mTLS connection, in parallel subtests of a
// "replay" subtest; it returns one result per file, in no set order.
// TestOASISVectors and TestOASISVectorsHSM (hsm_test.go) share it.
func replayGroups(t *testing.T, env *testkms.Env, groups [][]*oasis.Vector) []oasis.Result {
	var (
		mu      sync.Mutex
		results []oasis.Result
	)
	t.Run("replay", func(t *testing.T) {
		for i, group := range groups {
			tenant := fmt.Sprintf("oasis-%d", i)
			t.Run(group[0].Version+"/"+group[0].File, func(t *testing.T) {
				t.Parallel()
				conn := env.Dial(t, tenant, "admin", engine.RoleAdmin)
				session := oasis.NewSession()
				for _, v := range group {
					ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
					r := v.RunWith(ctx, &oasis.TTLVConn{Conn: conn}, oasis.Options{Session: session})
					cancel()
					mu.Lock()
					results = append(results, r)
					mu.Unlock()
				}
			})
		}
	})
	return results
}

// TestOASISVectors replays every applicable OASIS vector, each in a tenant
// of its own over one mTLS connection, and reports per file.
func TestOASISVectors(t *testing.T) {
	if testing.Short() {
		t.Skip("replay takes minutes")
	}
	env := testkms.Start(t, replayOptions)
	vectors, err := oasis.LoadDir(vectorDir(t))
	if err != nil {
		t.Fatal(err)
	}
	results := replayGroups(t, env, vectorGroups(vectors))
	recordSoftware(results)
	// Files judged not applicable are not run; they are listed, counted
	// apart, in the report.
	for _, v := range vectors {
		if _, na := oasis.NotApplicable[v.Version+"/"+v.File]; na && strings.Contains(v.Version+"/"+v.File, only) {
			results = append(results, oasis.Result{Version: v.Version, File: v.File, Profile: v.Profile, Total: len(v.Pairs), FirstFail: -1})
		}
	}
	sort.Slice(results, func(i, j int) bool { return results[i].Name() < results[j].Name() })
	passed, run := 0, 0
	for _, r := range results {
		if _, na := oasis.NotApplicable[r.Name()]; na {
			continue
		}
		run++
		if r.Passed() {
			passed++
			continue
		}
		var sb strings.Builder
		sb.WriteString("FAIL " + r.Name() + ": " + r.Failure())
		if r.FirstFail >= 0 && r.FirstFail < len(r.Steps) {
			for _, d := range r.Steps[r.FirstFail].Diffs[min(1, len(r.Steps[r.FirstFail].Diffs)):] {
				sb.WriteString("\n      " + d.String())
			}
		}
		t.Log(sb.String())
	}
	t.Logf("OASIS vectors: %d of %d applicable files pass (%d not applicable)", passed, run, len(results)-run)
	if reportPath != "" {
		var buf bytes.Buffer
		if err := oasis.WriteReport(&buf, results, oasis.NotApplicable); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(reportPath, buf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
