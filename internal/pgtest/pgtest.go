// Package pgtest gives tests outside store/postgres a private PostgreSQL
// database on the test server (MINIKMS_TEST_DB_URL, started by
// scripts/pg.sh; `make test` starts one). Without the variable the tests
// skip, unless MINIKMS_REQUIRE_PG=1 (CI): then they fail, so they can never
// silently not run.
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// Environment variables.
const (
	EnvTestDB  = "MINIKMS_TEST_DB_URL"
	EnvRequire = "MINIKMS_REQUIRE_PG"
)

// ServerURL returns the test server's URL, or skips (or fails) t.
func ServerURL(t testing.TB) string {
	t.Helper()
	u := os.Getenv(EnvTestDB)
	if u == "" {
		if os.Getenv(EnvRequire) == "1" {
			t.Fatalf("%s is not set but %s=1: the PostgreSQL tests must run (start a server with scripts/pg.sh start DIR)", EnvTestDB, EnvRequire)
		}
		t.Skipf("%s is not set: skipping the PostgreSQL tests (scripts/pg.sh start DIR starts a server; set %s=1 to make this a failure)", EnvTestDB, EnvRequire)
	}
	return u
}

// NewDatabase creates an empty database on the test server, dropped when
// t ends, and returns its URL.
func NewDatabase(t testing.TB) string {
	t.Helper()
	admin := ServerURL(t)
	u, err := url.Parse(admin)
	if err != nil {
		t.Fatalf("%s: %v", EnvTestDB, err)
	}
	var rnd [8]byte
	_, _ = rand.Read(rnd[:])
	name := "minikms_test_" + hex.EncodeToString(rnd[:])
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	conn, err := pgx.Connect(ctx, admin)
	if err != nil {
		t.Fatalf("connect to the test server: %v", err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatalf("create test database: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		conn, err := pgx.Connect(ctx, admin)
		if err != nil {
			t.Errorf("drop test database %s: %v", name, err)
			return
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			t.Errorf("drop test database %s: %v", name, err)
		}
	})
	u.Path = "/" + name
	return u.String()
}

// Exec runs a statement on the database directly, as an operator would.
func Exec(t testing.TB, dbURL, query string, args ...any) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, query, args...); err != nil {
		t.Fatalf("exec: %v", err)
	}
}
