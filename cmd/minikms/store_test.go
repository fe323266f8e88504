package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/minikms/minikms/internal/pgtest"
)

func TestStoreName(t *testing.T) {
	for in, want := range map[string]string{
		"/var/lib/minikms/minikms.db":                    "/var/lib/minikms/minikms.db",
		"postgres://kms:s3cret@db:5432/kms?sslmode=none": "postgres://kms:xxxxx@db:5432/kms?sslmode=none",
		"postgresql://db/kms":                            "postgresql://db/kms",
	} {
		if got := storeName(in); got != want {
			t.Errorf("storeName(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestAdminCommandsOnPostgres: the commands that open the store (tenant,
// member, client, crl, audit) work on a PostgreSQL database as on SQLite.
func TestAdminCommandsOnPostgres(t *testing.T) {
	dbURL := pgtest.NewDatabase(t)
	t.Setenv(envRootKey, strings.Repeat("5a", 32))
	t.Setenv(envDBURL, dbURL)
	dir := t.TempDir()

	mustRun(t, "tenant", "create", "acme")
	mustRun(t, "tenant", "create", "globex")
	if out := mustRun(t, "tenant", "list"); out != "acme\nglobex\n" {
		t.Fatalf("tenant list:\n%s", out)
	}
	if _, err := run(t, "tenant", "create", "acme"); err == nil || !strings.Contains(err.Error(), "already exists") {
		t.Fatalf("creating a tenant twice: %v", err)
	}
	out := filepath.Join(dir, "bob")
	mustRun(t, "member", "issue", "--tenant=acme", "--member=bob", "--role=admin", "--out="+out)
	if l := mustRun(t, "member", "list", "--tenant=acme"); !strings.Contains(l, "bob") {
		t.Fatalf("member list:\n%s", l)
	}
	crlFile := filepath.Join(dir, "acme.crl")
	mustRun(t, "crl", "--tenant=acme", "--out="+crlFile)
	if fi, err := os.Stat(crlFile); err != nil || fi.Size() == 0 {
		t.Fatalf("CRL not written: %v", err)
	}
	if v := mustRun(t, "audit", "verify"); !strings.Contains(v, "audit chain intact") {
		t.Fatalf("audit verify:\n%s", v)
	}
	if q := mustRun(t, "audit", "query", "--action=admin.tenant.create"); strings.Count(q, "admin.tenant.create") < 2 {
		t.Fatalf("audit query:\n%s", q)
	}
	if e := mustRun(t, "audit", "export"); !strings.Contains(e, "admin.member.issue") {
		t.Fatalf("audit export:\n%s", e)
	}
	// Without the root key, the audit commands read the store as it is.
	os.Unsetenv(envRootKey)
	mustRun(t, "audit", "verify", "--db-url="+dbURL)
}
