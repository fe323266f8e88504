package main

import (
	"bufio"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/minikms/minikms/audit"
	"github.com/minikms/minikms/store/sqlite"
)

func TestAuditCommands(t *testing.T) {
	os.Unsetenv(envRootKey)
	os.Unsetenv(envDBURL)
	dir := t.TempDir()
	if err := runDevFor(t, dir); err != nil {
		t.Fatal(err)
	}
	dd := "--data-dir=" + dir
	mustRun(t, "tenant", "create", dd, "initech")
	if _, err := run(t, "tenant", "create", dd, "initech"); err == nil {
		t.Fatal("a second create succeeded")
	}

	out := mustRun(t, "audit", "verify", dd)
	if !strings.Contains(out, "audit chain intact") || !strings.Contains(out, "opened with the root key") {
		t.Fatalf("verify:\n%s", out)
	}
	keyID := regexp.MustCompile(`key ([0-9a-f]{64})`).FindStringSubmatch(out)
	if keyID == nil {
		t.Fatalf("verify names no key:\n%s", out)
	}
	mustRun(t, "audit", "verify", dd, "--key-id="+keyID[1])
	if _, err := run(t, "audit", "verify", dd, "--key-id="+strings.Repeat("ab", 32)); err == nil || !strings.Contains(err.Error(), "not the pinned") {
		t.Fatalf("a wrong pinned key: %v", err)
	}

	// Administrative actions are recorded with the operating-system user,
	// the failed one too.
	out = mustRun(t, "audit", "query", dd, "--action=admin.tenant.create")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 3 || !strings.Contains(lines[1], "cli:") || !strings.Contains(lines[1], "success") || !strings.Contains(lines[2], "already exists") {
		t.Fatalf("admin records:\n%s", out)
	}
	out = mustRun(t, "audit", "query", dd, "--server-wide", "--json")
	var actions []string
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		var j audit.JSONRecord
		if err := json.Unmarshal([]byte(l), &j); err != nil {
			t.Fatalf("query --json line %q: %v", l, err)
		}
		if j.Tenant != "" {
			t.Fatalf("--server-wide returned tenant %q", j.Tenant)
		}
		actions = append(actions, j.Action)
	}
	if actions[0] != "server.start" || actions[len(actions)-1] != "server.stop" {
		t.Fatalf("server-wide actions %v, want server.start first and server.stop last", actions)
	}

	// Export: every record, as JSON lines that convert back and verify.
	exp := filepath.Join(t.TempDir(), "audit.jsonl")
	mustRun(t, "audit", "export", dd, "--out="+exp)
	f, err := os.Open(exp)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var n int64
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var j audit.JSONRecord
		if err := json.Unmarshal(sc.Bytes(), &j); err != nil {
			t.Fatal(err)
		}
		r, err := audit.FromJSON(j)
		if err != nil {
			t.Fatal(err)
		}
		n++
		if r.Seq != n || !equalBytes(audit.Hash(&r), r.Hash) {
			t.Fatalf("exported record %d does not hash to its entry hash", r.Seq)
		}
	}
	if n < 4 {
		t.Fatalf("exported %d records", n)
	}
	if _, err := run(t, "audit", "export", dd, "--out="+exp); err == nil {
		t.Fatal("export overwrote an existing file")
	}

	// Without the root key, the checkpoint key is taken as stored.
	db := filepath.Join(dir, "minikms.db")
	out = mustRun(t, "audit", "verify", "--db-url="+db)
	if !strings.Contains(out, "pin it with --key-id") {
		t.Fatalf("verify without the root key:\n%s", out)
	}

	// Tampering is named, and the exit status says so.
	st, err := sqlite.Open(context.Background(), db)
	if err != nil {
		t.Fatal(err)
	}
	err = st.Write(context.Background(), func(ctx context.Context, tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `UPDATE kms_audit_log SET object = 'forged' WHERE seq = 2`)
		return err
	})
	st.Close()
	if err != nil {
		t.Fatal(err)
	}
	_, err = run(t, "audit", "verify", dd)
	if err == nil || !strings.Contains(err.Error(), "DAMAGED at record 2: modified") {
		t.Fatalf("verify of a modified chain: %v", err)
	}

	for _, args := range [][]string{
		{"audit"}, {"audit", "bogus"}, {"audit", "query", dd, "--limit=0"}, {"audit", "query", dd, "--from=yesterday"},
		{"audit", "query", dd, "--tenant=acme", "--server-wide"}, {"audit", "verify", "--server=http://127.0.0.1:1"},
		{"audit", "verify", "--server=https://127.0.0.1:1", dd}, {"audit", "verify", "extra"},
	} {
		if _, err := run(t, args...); !errors.Is(err, errUsage) {
			t.Errorf("minikms %s: %v, want a usage error", strings.Join(args, " "), err)
		}
	}
	if _, err := run(t, "audit", "verify", "--db-url="+filepath.Join(dir, "missing.db")); err == nil || errors.Is(err, errUsage) {
		t.Errorf("verify of a missing store: %v", err)
	}
}

func equalBytes(a, b []byte) bool { return string(a) == string(b) }

// TestAuditorVerifiesOverHTTPS: a tenant auditor verifies the chain over
// the HTTPS API with its member certificate, seeing only its tenant.
func TestAuditorVerifiesOverHTTPS(t *testing.T) {
	os.Unsetenv(envRootKey)
	os.Unsetenv(envDBURL)
	dir := t.TempDir()
	if err := runDevFor(t, dir); err != nil {
		t.Fatal(err)
	}
	certDir := t.TempDir()
	mustRun(t, "member", "issue", "--data-dir="+dir, "--tenant=acme", "--member=eve", "--role=auditor", "--out="+certDir)
	mustRun(t, "member", "issue", "--data-dir="+dir, "--tenant=acme", "--member=ann", "--role=app", "--out="+certDir)

	httpAddr := freePort(t)
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() {
		errc <- runDev(ctx, []string{"--data-dir", dir, "--kmip-addr", "127.0.0.1:0", "--http-addr", httpAddr})
	}()
	defer func() { cancel(); <-errc }()

	// Wait until it serves (and has printed its banner: run below swaps
	// os.Stdout).
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := http.Get("http://" + httpAddr + "/healthz")
		if err == nil {
			resp.Body.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the dev server did not start")
		}
		time.Sleep(50 * time.Millisecond)
	}
	ca := filepath.Join(dir, "certs", "ca.crt")
	args := []string{"audit", "verify", "--server=https://" + httpAddr, "--ca=" + ca,
		"--cert=" + filepath.Join(certDir, "eve.crt"), "--key=" + filepath.Join(certDir, "eve.key")}
	out, err := run(t, args...)
	if err != nil || !strings.Contains(out, "audit chain intact") || !strings.Contains(out, "pin it with --key-id") {
		t.Fatalf("auditor verify: %v\n%s", err, out)
	}
	// A member without the auditor role is refused.
	args[4], args[5] = "--cert="+filepath.Join(certDir, "ann.crt"), "--key="+filepath.Join(certDir, "ann.key")
	if _, err := run(t, args...); err == nil || !strings.Contains(err.Error(), "forbidden") {
		t.Fatalf("an app member read the audit log: %v", err)
	}
}
