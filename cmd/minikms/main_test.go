package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// runDevFor runs `minikms dev` on free ports until ready, then stops it.
func runDevFor(t *testing.T, dir string) error {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() {
		errc <- runDev(ctx, []string{"--data-dir", dir, "--kmip-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0"})
	}()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case err := <-errc:
			cancel()
			return err
		default:
		}
		if _, err := os.Stat(filepath.Join(dir, "certs", "pykmip.conf")); err == nil {
			time.Sleep(300 * time.Millisecond)
			cancel()
			err := <-errc
			if errors.Is(err, context.Canceled) {
				// Stopped before it finished starting (slow machine): the
				// files checked by the tests are written by then.
				err = nil
			}
			return err
		}
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	t.Fatal("dev server did not start")
	return nil
}

func TestDevSecondStartReusesEverything(t *testing.T) {
	t.Setenv(envRootKey, "")
	os.Unsetenv(envRootKey)
	dir := t.TempDir()
	if err := runDevFor(t, dir); err != nil {
		t.Fatal(err)
	}
	files := []string{"dev-root.key", "certs/ca.crt", "certs/acme/admin.crt", "certs/acme/admin.key",
		"certs/acme/app.crt", "certs/globex/admin.crt", "certs/globex/app.key", "certs/server.crt", "certs/server.key", "minikms.db"}
	before := map[string][]byte{}
	for _, f := range files {
		b, err := os.ReadFile(filepath.Join(dir, f))
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		before[f] = b
	}
	for _, f := range []string{"dev-root.key", "certs/acme/admin.key", "certs/server.key", "minikms.db"} {
		st, _ := os.Stat(filepath.Join(dir, f))
		if st.Mode().Perm() != 0o600 {
			t.Errorf("%s has mode %v, want 0600", f, st.Mode().Perm())
		}
	}
	if err := runDevFor(t, dir); err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		if f == "minikms.db" {
			continue
		}
		after, _ := os.ReadFile(filepath.Join(dir, f))
		if !bytes.Equal(before[f], after) {
			t.Errorf("%s changed on the second start", f)
		}
	}
}

func TestDevRefusesAnotherRootKey(t *testing.T) {
	os.Unsetenv(envRootKey)
	dir := t.TempDir()
	if err := runDevFor(t, dir); err != nil {
		t.Fatal(err)
	}
	other := make([]byte, 32)
	rand.Read(other)
	t.Setenv(envRootKey, hex.EncodeToString(other))
	err := runDevFor(t, dir)
	if err == nil || !strings.Contains(err.Error(), "refusing to start") || !strings.Contains(err.Error(), "key check value") {
		t.Fatalf("start with another root key: got %v, want a refusal naming the key check value", err)
	}
}

func TestServeConfigValidation(t *testing.T) {
	good := strings.Repeat("ab", 32)
	cases := []struct {
		name string
		env  map[string]string
		want string
	}{
		{"no root key", map[string]string{envDBURL: "x.db"}, envRootKey + " is required"},
		{"root key not hex", map[string]string{envRootKey: "zz", envDBURL: "x.db"}, "not valid hex"},
		{"root key short", map[string]string{envRootKey: "abcd", envDBURL: "x.db"}, "32 bytes"},
		{"no db", map[string]string{envRootKey: good}, envDBURL + " is required"},
		{"postgres without host", map[string]string{envRootKey: good, envDBURL: "postgres:///db"}, "not a PostgreSQL URL with a host"},
		{"postgres unreachable", map[string]string{envRootKey: good, envDBURL: "postgres://u:hunter2@127.0.0.1:1/db?connect_timeout=2"}, "postgres://u:xxxxx@127.0.0.1:1/db"},
		{"bad kmip addr", map[string]string{envRootKey: good, envDBURL: "x.db", envKMIPAddr: "nocolon"}, envKMIPAddr},
		{"cert without key", map[string]string{envRootKey: good, envDBURL: "x.db", envTLSCert: "c.pem"}, "must be set together"},
		{"rsa min bits", map[string]string{envRootKey: good, envDBURL: "x.db", envMinRSABits: "1536"}, envMinRSABits},
		{"lease not a duration", map[string]string{envRootKey: good, envDBURL: "x.db", envLease: "forever"}, envLease},
		{"lease too short", map[string]string{envRootKey: good, envDBURL: "x.db", envLease: "10ms"}, envLease},
		{"idle timeout", map[string]string{envRootKey: good, envDBURL: "x.db", envIdleTimeout: "forever"}, envIdleTimeout},
		{"message size too small", map[string]string{envRootKey: good, envDBURL: "x.db", envMaxMessageSize: "100"}, envMaxMessageSize},
		{"per-client above global", map[string]string{envRootKey: good, envDBURL: "x.db", envMaxConns: "10", envMaxConnsPerClient: "20"}, envMaxConnsPerClient},
		{"hsm asked", map[string]string{envRootKey: good, envDBURL: "x.db", envPKCS11Mod: "/usr/lib/softhsm/libsofthsm2.so"}, envRootKey + " must not be set when an HSM is configured"},
	}
	all := []string{envRootKey, envDBURL, envSalt, envKMIPAddr, envHTTPAddr, envTLSCert, envTLSKey, envPKCS11Mod, envPKCS11Token, envPKCS11PIN, envMinRSABits, envLease, envIdleTimeout, envMaxMessageSize, envMaxConns, envMaxConnsPerClient}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			for _, k := range all {
				t.Setenv(k, "")
				os.Unsetenv(k)
			}
			for k, v := range c.env {
				t.Setenv(k, v)
			}
			err := runServe(context.Background(), nil)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("got %v, want an error containing %q", err, c.want)
			}
		})
	}
}
