package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

func writeServerCert(t *testing.T, certFile, keyFile, cn string) {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), DNSNames: []string{"localhost"},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, KeyUsage: x509.KeyUsageDigitalSignature}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, k.Public(), k)
	if err != nil {
		t.Fatal(err)
	}
	kd, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kd}), 0o600); err != nil {
		t.Fatal(err)
	}
}

// presentedCN is the common name of the certificate the server presents
// (the handshake itself fails: no client certificate is offered).
func presentedCN(t *testing.T, addr string) string {
	t.Helper()
	var cn string
	conn, err := tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true, VerifyPeerCertificate: func(raw [][]byte, _ [][]*x509.Certificate) error {
		c, err := x509.ParseCertificate(raw[0])
		if err == nil {
			cn = c.Subject.CommonName
		}
		return nil
	}})
	if err == nil {
		conn.Close()
	}
	return cn
}

func TestSIGHUPReloadsTheServerCertificate(t *testing.T) {
	for _, k := range []string{envPKCS11Mod, envPKCS11Token, envPKCS11PIN, envPKCS11PINFile, envPKCS11SealedRoot, envRootKeyFile} {
		t.Setenv(k, "")
		os.Unsetenv(k)
	}
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "server.crt"), filepath.Join(dir, "server.key")
	writeServerCert(t, certFile, keyFile, "first")
	t.Setenv(envRootKey, strings.Repeat("ab", 32))
	t.Setenv(envDBURL, filepath.Join(dir, "kms.db"))
	t.Setenv(envTLSCert, certFile)
	t.Setenv(envTLSKey, keyFile)
	s := startServe(t)
	if cn := presentedCN(t, s.kmipAddr); cn != "first" {
		t.Fatalf("server presents %q", cn)
	}

	writeServerCert(t, certFile, keyFile, "second")
	if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for presentedCN(t, s.kmipAddr) != "second" {
		if time.Now().After(deadline) {
			t.Fatal("SIGHUP did not reload the certificate")
		}
		time.Sleep(20 * time.Millisecond)
	}

	// A certificate that does not load leaves the current one.
	if err := os.WriteFile(certFile, []byte("not a certificate"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	if cn := presentedCN(t, s.kmipAddr); cn != "second" {
		t.Fatalf("after a broken reload the server presents %q", cn)
	}
	if err := s.stop(); err != nil {
		t.Fatal(err)
	}
}
