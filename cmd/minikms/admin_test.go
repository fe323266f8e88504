package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/minikms/minikms/engine"
	"github.com/minikms/minikms/pki"
	okmip "github.com/ovh/kmip-go"
	"github.com/ovh/kmip-go/payloads"
	"github.com/ovh/kmip-go/ttlv"
)

// run runs a command line and returns what it printed on standard output.
func run(t *testing.T, args ...string) (string, error) {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	old := os.Stdout
	os.Stdout = w
	done := make(chan string)
	go func() {
		b, _ := io.ReadAll(r)
		done <- string(b)
	}()
	var runErr error
	func() {
		defer func() { os.Stdout = old; w.Close() }()
		for _, c := range commands() {
			if c.name == args[0] {
				runErr = c.run(context.Background(), args[1:])
				return
			}
		}
		t.Fatalf("no command %q", args[0])
	}()
	return <-done, runErr
}

func mustRun(t *testing.T, args ...string) string {
	t.Helper()
	out, err := run(t, args...)
	if err != nil {
		t.Fatalf("minikms %s: %v", strings.Join(args, " "), err)
	}
	return out
}

func TestAdminCommands(t *testing.T) {
	os.Unsetenv(envRootKey)
	dir := t.TempDir()
	if err := runDevFor(t, dir); err != nil {
		t.Fatal(err)
	}
	dd := "--data-dir=" + dir

	// Tenants.
	mustRun(t, "tenant", "create", dd, "initech")
	if out := mustRun(t, "tenant", "list", dd); out != "acme\nglobex\ninitech\n" {
		t.Fatalf("tenant list:\n%s", out)
	}
	if _, err := run(t, "tenant", "create", dd, "initech"); err == nil || !strings.Contains(err.Error(), "already exists") {
		t.Fatalf("creating a tenant twice: %v", err)
	}
	if _, err := run(t, "tenant", "create", dd, "Bad_Name"); err == nil {
		t.Fatal("an invalid tenant id was accepted")
	}

	// Members: a new key, then a CSR.
	out := t.TempDir()
	mustRun(t, "member", "issue", dd, "--tenant=initech", "--member=bob", "--role=admin", "--out="+out)
	chain := readChain(t, filepath.Join(out, "bob.crt"))
	if len(chain) != 2 {
		t.Fatalf("bob.crt holds %d certificates, want leaf and tenant CA", len(chain))
	}
	if st, _ := os.Stat(filepath.Join(out, "bob.key")); st == nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("bob.key mode %v, want 0600", st)
	}
	if p, err := pki.Identify(append(chain, rootOf(t, dir))); err != nil || p.Tenant != "initech" || p.Member != "bob" || p.Role != engine.RoleAdmin {
		t.Fatalf("bob's identity %+v (%v)", p, err)
	}
	csrKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	csr, _ := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "carol"}}, csrKey)
	csrFile := filepath.Join(out, "carol.csr")
	os.WriteFile(csrFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: csr}), 0o644)
	mustRun(t, "member", "issue", dd, "--tenant=initech", "--member=carol", "--csr="+csrFile, "--out="+out)
	if _, err := os.Stat(filepath.Join(out, "carol.key")); err == nil {
		t.Fatal("a key was written for a CSR-based certificate")
	}
	carol := readChain(t, filepath.Join(out, "carol.crt"))[0]
	if !carol.PublicKey.(*ecdsa.PublicKey).Equal(csrKey.Public()) {
		t.Fatal("carol's certificate is not for the CSR's key")
	}
	if _, err := run(t, "member", "issue", dd, "--tenant=nope", "--member=x", "--out="+out); err == nil {
		t.Fatal("issued for a tenant that does not exist")
	}

	list := mustRun(t, "member", "list", dd, "--tenant=initech")
	if !strings.Contains(list, "bob") || !strings.Contains(list, "carol") || strings.Contains(list, "revoked") {
		t.Fatalf("member list:\n%s", list)
	}
	// The dev bundle's members are recorded too.
	if all := mustRun(t, "member", "list", dd); !strings.Contains(all, "acme") || !strings.Contains(all, "globex") {
		t.Fatalf("member list of every tenant:\n%s", all)
	}

	// Revocation, and the CRL that lists it.
	mustRun(t, "member", "revoke", dd, "--tenant=initech", "--member=bob", "--reason=keyCompromise")
	if again := mustRun(t, "member", "revoke", dd, "--tenant=initech", "--member=bob"); !strings.Contains(again, "already revoked") {
		t.Fatalf("second revocation: %s", again)
	}
	if list := mustRun(t, "member", "list", dd, "--tenant=initech"); !strings.Contains(list, "revoked") {
		t.Fatalf("member list after revocation:\n%s", list)
	}
	crlFile := filepath.Join(out, "initech.crl")
	mustRun(t, "crl", dd, "--tenant=initech", "--out="+crlFile)
	der, _ := os.ReadFile(crlFile)
	crl, err := x509.ParseRevocationList(der)
	if err != nil {
		t.Fatal(err)
	}
	if len(crl.RevokedCertificateEntries) != 1 || crl.RevokedCertificateEntries[0].SerialNumber.Cmp(chain[0].SerialNumber) != 0 ||
		crl.RevokedCertificateEntries[0].ReasonCode != pki.ReasonKeyCompromise {
		t.Fatalf("CRL entries %+v", crl.RevokedCertificateEntries)
	}
	if err := crl.CheckSignatureFrom(chain[1]); err != nil {
		t.Fatalf("CRL not signed by the tenant CA: %v", err)
	}
	if _, err := run(t, "member", "revoke", dd, "--tenant=initech", "--member=nobody"); err == nil {
		t.Fatal("revoking an unknown member succeeded")
	}

	// External clients.
	extKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(3), Subject: pkix.Name{CommonName: "array-7"}, NotBefore: time.Now(), NotAfter: time.Now().Add(time.Hour)}
	extDER, _ := x509.CreateCertificate(rand.Reader, tmpl, tmpl, extKey.Public(), extKey)
	extFile := filepath.Join(out, "array.pem")
	os.WriteFile(extFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: extDER}), 0o644)
	mustRun(t, "client", "register", dd, "--tenant=initech", "--member=array-7", "--role=app", "--cert="+extFile)
	ext, _ := x509.ParseCertificate(extDER)
	if l := mustRun(t, "client", "list", dd); !strings.Contains(l, pki.SPKIHash(ext)) || !strings.Contains(l, "array-7") {
		t.Fatalf("client list:\n%s", l)
	}
	mustRun(t, "client", "remove", dd, "--cert="+extFile)
	if l := mustRun(t, "client", "list", dd); strings.Contains(l, "array-7") {
		t.Fatalf("client list after removal:\n%s", l)
	}
	if _, err := run(t, "client", "remove", dd, "--spki="+pki.SPKIHash(ext)); err == nil {
		t.Fatal("removing an unregistered client succeeded")
	}
	if _, err := run(t, "client", "register", dd, "--tenant=nope", "--member=x", "--cert="+extFile); err == nil {
		t.Fatal("registered a client in a tenant that does not exist")
	}
}

func readChain(t *testing.T, path string) []*x509.Certificate {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []*x509.Certificate
	for {
		var blk *pem.Block
		blk, b = pem.Decode(b)
		if blk == nil {
			return out
		}
		c, err := x509.ParseCertificate(blk.Bytes)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, c)
	}
}

func rootOf(t *testing.T, dir string) *x509.Certificate {
	t.Helper()
	return readChain(t, filepath.Join(dir, "certs", "ca.crt"))[0]
}

func freePort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// TestRevocationReachesRunningServer revokes a member from the command line
// while a server runs: the server refuses it within the poll interval.
func TestRevocationReachesRunningServer(t *testing.T) {
	os.Unsetenv(envRootKey)
	dir := t.TempDir()
	kmipAddr := freePort(t)
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() {
		errc <- runDev(ctx, []string{"--data-dir", dir, "--kmip-addr", kmipAddr, "--http-addr", "127.0.0.1:0"})
	}()
	defer func() { cancel(); <-errc }()

	bundle := filepath.Join(dir, "certs")
	dial := func() error {
		pair, err := tls.LoadX509KeyPair(filepath.Join(bundle, "acme", "app.crt"), filepath.Join(bundle, "acme", "app.key"))
		if err != nil {
			return err
		}
		pool := x509.NewCertPool()
		pool.AddCert(rootOf(t, dir))
		c, err := tls.DialWithDialer(&net.Dialer{Timeout: 2 * time.Second}, "tcp", kmipAddr, &tls.Config{RootCAs: pool, ServerName: "127.0.0.1", Certificates: []tls.Certificate{pair}})
		if err != nil {
			return err
		}
		defer c.Close()
		// A Discover Versions round trip: TLS 1.3 reports a refused client
		// certificate only when the client reads.
		req := ttlv.MarshalTTLV(&okmip.RequestMessage{Header: okmip.RequestHeader{ProtocolVersion: okmip.V1_4, BatchCount: 1},
			BatchItem: []okmip.RequestBatchItem{{Operation: okmip.OperationDiscoverVersions, RequestPayload: &payloads.DiscoverVersionsRequestPayload{}}}})
		c.SetDeadline(time.Now().Add(3 * time.Second))
		if _, err := c.Write(req); err != nil {
			return err
		}
		_, err = io.ReadFull(c, make([]byte, 8))
		return err
	}
	deadline := time.Now().Add(20 * time.Second)
	for dial() != nil {
		if time.Now().After(deadline) {
			t.Fatal("the dev server did not serve acme/app")
		}
		time.Sleep(50 * time.Millisecond)
	}
	mustRun(t, "member", "revoke", "--data-dir="+dir, "--tenant=acme", "--member=app")
	revokedAt := time.Now()
	for dial() == nil {
		if time.Since(revokedAt) > 3*time.Second {
			t.Fatal("the running server still accepts acme/app 3 s after its revocation")
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Logf("refused %v after the revocation", time.Since(revokedAt).Round(10*time.Millisecond))
}
