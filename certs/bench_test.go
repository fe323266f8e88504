package certs_test

import (
	"crypto/tls"
	"sync/atomic"
	"testing"
)

// benchServer serves f's TLSConfig on loopback and counts server-side
// failures.
func benchServer(b *testing.B, f *tlsFixture) (string, *atomic.Int64) {
	b.Helper()
	addr, results := listen(b, f.srv.TLSConfig())
	var failures atomic.Int64
	stop := make(chan struct{})
	b.Cleanup(func() { close(stop) })
	go func() {
		for {
			select {
			case r := <-results:
				if r.err != nil {
					failures.Add(1)
				}
			case <-stop:
				return
			}
		}
	}()
	return addr, &failures
}

// BenchmarkHandshakeFull measures one client connection with a full TLS 1.3
// handshake over loopback (ECDHE, server P-256 signature, client
// certificate and CertificateVerify, both sides verifying the other's
// chain), until the server has accepted the client and sent its first
// byte. "verifier-cached" is a reconnecting client whose chain pki has
// verified before; "verifier-cold" flushes pki's cache first.
func BenchmarkHandshakeFull(b *testing.B) {
	for _, mode := range []string{"verifier-cached", "verifier-cold"} {
		b.Run(mode, func(b *testing.B) {
			f := newTLSFixture(b)
			addr, failures := benchServer(b, f)
			cfg := f.clientConfig(f.acmeApp)
			cfg.MinVersion = tls.VersionTLS13
			b.ReportAllocs()
			for b.Loop() {
				if mode == "verifier-cold" {
					f.srv.Verifier.Flush()
				}
				state, err := dial(b, addr, cfg)
				if err != nil {
					b.Fatal(err)
				}
				if state.DidResume {
					b.Fatal("resumed: no session cache was configured")
				}
			}
			if n := failures.Load(); n != 0 {
				b.Fatalf("%d server-side failures", n)
			}
		})
	}
}

// BenchmarkHandshakeResumed measures a TLS 1.3 resumption (PSK with
// ECDHE) from a client that keeps a ClientSessionCache: no certificates
// are sent or verified.
func BenchmarkHandshakeResumed(b *testing.B) {
	f := newTLSFixture(b)
	addr, failures := benchServer(b, f)
	cfg := f.clientConfig(f.acmeApp)
	cfg.MinVersion = tls.VersionTLS13
	cfg.ClientSessionCache = tls.NewLRUClientSessionCache(8)
	if _, err := dial(b, addr, cfg); err != nil { // obtains the first ticket
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		state, err := dial(b, addr, cfg)
		if err != nil {
			b.Fatal(err)
		}
		if !state.DidResume {
			b.Fatal("the session was not resumed")
		}
	}
	if n := failures.Load(); n != 0 {
		b.Fatalf("%d server-side failures", n)
	}
}
