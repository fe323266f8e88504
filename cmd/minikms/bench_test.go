package main

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/minikms/minikms/engine"
	"github.com/minikms/minikms/internal/testkms"
)

// writeBundle writes a dev-bundle layout for acme/app of env under dir:
// certs/ca.crt and certs/acme/app.crt|.key.
func writeBundle(t *testing.T, env *testkms.Env, dir string) {
	t.Helper()
	root, err := env.Auth.Root(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	c := env.ClientCertificate(t, "acme", "app", engine.RoleApp)
	var chain []byte
	for _, der := range c.Certificate {
		chain = append(chain, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})...)
	}
	key, err := x509.MarshalPKCS8PrivateKey(c.PrivateKey)
	if err != nil {
		t.Fatal(err)
	}
	files := map[string][]byte{
		"certs/ca.crt":       pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: root.Cert.Raw}),
		"certs/acme/app.crt": chain,
		"certs/acme/app.key": pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: key}),
	}
	for name, b := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

func TestBenchCommand(t *testing.T) {
	env := testkms.Start(t, testkms.Options{})
	dir := t.TempDir()
	writeBundle(t, env, dir)
	short := []string{"--addr", env.Addr, "--conns", "2", "--duration", "300ms", "--warmup", "0s"}

	t.Run("JSON from a dev bundle", func(t *testing.T) {
		var out, errOut bytes.Buffer
		args := append([]string{"--data-dir", dir, "--tenant", "acme", "--member", "app", "--op", "mix", "--json"}, short...)
		if err := bench(context.Background(), args, &out, &errOut); err != nil {
			t.Fatalf("bench: %v", err)
		}
		var res struct {
			Op        string           `json:"op"`
			Conns     int              `json:"conns"`
			Size      int              `json:"size"`
			Ops       int64            `json:"ops"`
			OpsPerS   float64          `json:"ops_per_s"`
			Errors    map[string]int64 `json:"errors"`
			LatencyMS map[string]float64
			Version   string `json:"kmip_version"`
		}
		if err := json.Unmarshal(out.Bytes(), &res); err != nil {
			t.Fatalf("output is not one JSON object: %v\n%s", err, out.String())
		}
		if res.Op != "mix" || res.Conns != 2 || res.Size != 32 || res.Ops == 0 || res.OpsPerS <= 0 || len(res.Errors) != 0 || res.Version != "1.4" {
			t.Fatalf("result %+v", res)
		}
		if errOut.Len() != 0 {
			t.Fatalf("stderr is not a terminal but got %q", errOut.String())
		}
	})

	t.Run("text from explicit files", func(t *testing.T) {
		var out bytes.Buffer
		args := append([]string{"--ca", filepath.Join(dir, "certs/ca.crt"), "--cert", filepath.Join(dir, "certs/acme/app.crt"),
			"--key", filepath.Join(dir, "certs/acme/app.key"), "--op", "connect-resume"}, short...)
		if err := bench(context.Background(), args, &out, &bytes.Buffer{}); err != nil {
			t.Fatalf("bench: %v", err)
		}
		for _, want := range []string{"connect-resume against " + env.Addr, "ops/s", "p50", "p99", "client CPU", "resumed"} {
			if !strings.Contains(out.String(), want) {
				t.Fatalf("report lacks %q:\n%s", want, out.String())
			}
		}
	})

	usage := []struct {
		name string
		args []string
		want string
	}{
		{"no credentials", []string{"--op", "get"}, "give --ca, --cert and --key"},
		{"unknown op", []string{"--data-dir", dir, "--op", "dance"}, "--op"},
		{"bad version", []string{"--data-dir", dir, "--version", "two"}, "--version"},
		{"zero conns", []string{"--data-dir", dir, "--conns", "0"}, "--conns"},
		{"tenant without bundle", []string{"--tenant", "globex", "--ca", "x", "--cert", "y", "--key", "z"}, "--data-dir"},
		{"pipelined connect", []string{"--data-dir", dir, "--op", "connect", "--pipeline", "4"}, "--pipeline"},
		{"stray argument", []string{"--data-dir", dir, "now"}, "unexpected argument"},
	}
	for _, c := range usage {
		t.Run(c.name, func(t *testing.T) {
			err := bench(context.Background(), append(c.args, "--addr", env.Addr), &bytes.Buffer{}, &bytes.Buffer{})
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("got %v, want an error naming %q", err, c.want)
			}
		})
	}

	t.Run("missing bundle member", func(t *testing.T) {
		err := bench(context.Background(), []string{"--data-dir", dir, "--member", "ghost", "--addr", env.Addr}, &bytes.Buffer{}, &bytes.Buffer{})
		if err == nil || !strings.Contains(err.Error(), "ghost.crt") || errors.Is(err, errUsage) {
			t.Fatalf("got %v, want a file error naming ghost.crt", err)
		}
	})
}
