package main

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/minikms/minikms/internal/testkms"
)

// TestBenchTagLength: --tag-length (what scripts/bench-compare.sh passes
// so PyKMIP accepts the GCM requests) works against miniKMS, and is
// bounded.
func TestBenchTagLength(t *testing.T) {
	env := testkms.Start(t, testkms.Options{})
	dir := t.TempDir()
	writeBundle(t, env, dir)
	var out bytes.Buffer
	args := []string{"--addr", env.Addr, "--data-dir", dir, "--op", "decrypt", "--tag-length", "16", "--json",
		"--conns", "2", "--duration", "300ms", "--warmup", "0s"}
	if err := bench(context.Background(), args, &out, &bytes.Buffer{}); err != nil {
		t.Fatalf("bench: %v", err)
	}
	var res struct {
		Ops    int64            `json:"ops"`
		Errors map[string]int64 `json:"errors"`
	}
	if err := json.Unmarshal(out.Bytes(), &res); err != nil || res.Ops == 0 || len(res.Errors) != 0 {
		t.Fatalf("result %s (%v)", out.String(), err)
	}
	for _, bad := range []string{"8", "17", "-1"} {
		err := bench(context.Background(), []string{"--addr", env.Addr, "--data-dir", dir, "--tag-length", bad}, &bytes.Buffer{}, &bytes.Buffer{})
		if err == nil || !strings.Contains(err.Error(), "--tag-length") {
			t.Fatalf("--tag-length %s: %v, want an error naming the flag", bad, err)
		}
	}
}
