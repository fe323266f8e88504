package main

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/minikms/minikms/engine"
	"github.com/minikms/minikms/internal/testkms"
)

// TestBenchCertify: --op certify takes the dev bundle's admin member
// unless --member says otherwise (Certify is an administrator's
// operation), and says what it sent.
func TestBenchCertify(t *testing.T) {
	env := testkms.Start(t, testkms.Options{})
	dir := t.TempDir()
	writeBundle(t, env, dir) // ca.crt and acme/app
	c := env.ClientCertificate(t, "acme", "admin", engine.RoleAdmin)
	var chain []byte
	for _, der := range c.Certificate {
		chain = append(chain, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})...)
	}
	key, err := x509.MarshalPKCS8PrivateKey(c.PrivateKey)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "certs/acme/admin.crt"), chain, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "certs/acme/admin.key"), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: key}), 0o600); err != nil {
		t.Fatal(err)
	}
	short := []string{"--data-dir", dir, "--addr", env.Addr, "--op", "certify", "--conns", "2", "--duration", "300ms", "--warmup", "0s"}

	var out bytes.Buffer
	if err := bench(context.Background(), short, &out, &bytes.Buffer{}); err != nil {
		t.Fatalf("bench --op certify: %v", err)
	}
	for _, want := range []string{"certify against " + env.Addr, "PKCS#10 CSR of a new P-256 key", "ops/s", "0 errors"} {
		if !strings.Contains(out.String(), want) {
			t.Fatalf("report lacks %q:\n%s", want, out.String())
		}
	}
	if strings.Contains(out.String(), "payload") {
		t.Fatalf("certify has no payload size:\n%s", out.String())
	}

	out.Reset()
	if err := bench(context.Background(), append(short, "--json"), &out, &bytes.Buffer{}); err != nil {
		t.Fatal(err)
	}
	var res struct {
		Op   string `json:"op"`
		Size int    `json:"size"`
		Ops  int64  `json:"ops"`
	}
	if err := json.Unmarshal(out.Bytes(), &res); err != nil || res.Op != "certify" || res.Size != 0 || res.Ops == 0 {
		t.Fatalf("JSON %s: %+v %v", out.String(), res, err)
	}

	// An app member is refused at setup, with the way out.
	err = bench(context.Background(), append(short, "--member", "app"), &bytes.Buffer{}, &bytes.Buffer{})
	if err == nil || !strings.Contains(err.Error(), "PermissionDenied") || !strings.Contains(err.Error(), "--member admin") {
		t.Fatalf("certify as app: %v", err)
	}
}
