package loadgen

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"testing"
)

func TestChainCache(t *testing.T) {
	good := selfSigned(t) // valid for 127.0.0.1, server auth
	other := selfSigned(t)
	roots := x509.NewCertPool()
	roots.AddCert(good.Leaf)
	cfg := &tls.Config{RootCAs: roots}
	cacheChainVerification(cfg, "127.0.0.1:5696")
	if !cfg.InsecureSkipVerify || cfg.VerifyConnection == nil || cfg.ServerName != "127.0.0.1" {
		t.Fatalf("cache not installed: %+v", cfg)
	}
	state := func(c tls.Certificate) tls.ConnectionState {
		return tls.ConnectionState{PeerCertificates: []*x509.Certificate{c.Leaf}}
	}
	for i := range 3 {
		if err := cfg.VerifyConnection(state(good)); err != nil {
			t.Fatalf("trusted chain, attempt %d: %v", i, err)
		}
	}
	for i := range 2 {
		// A chain that is not the cached one is verified, and refused.
		var ve *tls.CertificateVerificationError
		if err := cfg.VerifyConnection(state(other)); !errors.As(err, &ve) {
			t.Fatalf("untrusted chain, attempt %d: %v", i, err)
		}
	}
	if err := cfg.VerifyConnection(tls.ConnectionState{}); err == nil {
		t.Fatal("no certificate accepted")
	}

	// Named hosts are checked too; caller callbacks are left alone.
	named := &tls.Config{RootCAs: roots, ServerName: "kms.example"}
	cacheChainVerification(named, "127.0.0.1:5696")
	if err := named.VerifyConnection(state(good)); err == nil {
		t.Fatal("a certificate for 127.0.0.1 accepted for kms.example")
	}
	own := &tls.Config{VerifyConnection: func(tls.ConnectionState) error { return nil }}
	cacheChainVerification(own, "127.0.0.1:5696")
	if own.InsecureSkipVerify {
		t.Fatal("the caller's verification was replaced")
	}
}
