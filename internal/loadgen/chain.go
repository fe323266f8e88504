package loadgen

import (
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/binary"
	"errors"
	"net"
	"sync"
	"time"
)

// Verifying the server's chain is the client's largest cost of a new
// connection (a P-384 signature with the dev PKI). A load generator sees
// the same chain thousands of times a second, so chainCache verifies each
// distinct chain once and remembers the outcome for chainCacheTTL (never
// past a certificate's expiry). The handshake's CertificateVerify
// signature, which proves the server holds the leaf's key, is still
// checked by crypto/tls on every handshake.
const (
	chainCacheTTL     = time.Minute
	chainCacheEntries = 64
)

type chainCache struct {
	roots *x509.CertPool // nil: the system roots
	name  string

	mu    sync.Mutex
	until map[[sha256.Size]byte]time.Time
}

// cacheChainVerification makes cfg verify server chains through a
// chainCache. It leaves cfg alone when the caller verifies on its own
// (custom callbacks, or verification disabled).
func cacheChainVerification(cfg *tls.Config, addr string) {
	if cfg.InsecureSkipVerify || cfg.VerifyConnection != nil || cfg.VerifyPeerCertificate != nil {
		return
	}
	name := cfg.ServerName
	if name == "" {
		host, _, err := net.SplitHostPort(addr)
		if err != nil {
			return // let crypto/tls report the address
		}
		name = host
	}
	c := &chainCache{roots: cfg.RootCAs, name: name, until: map[[sha256.Size]byte]time.Time{}}
	cfg.ServerName = name
	cfg.InsecureSkipVerify = true // replaced by VerifyConnection below
	cfg.VerifyConnection = c.verify
}

func (c *chainCache) verify(cs tls.ConnectionState) error {
	certs := cs.PeerCertificates
	if len(certs) == 0 {
		return errors.New("tls: the server sent no certificate")
	}
	h := sha256.New()
	for _, cert := range certs {
		h.Write(binary.BigEndian.AppendUint32(nil, uint32(len(cert.Raw))))
		h.Write(cert.Raw)
	}
	var key [sha256.Size]byte
	h.Sum(key[:0])
	now := time.Now()
	c.mu.Lock()
	until, hit := c.until[key]
	c.mu.Unlock()
	if hit && now.Before(until) {
		return nil
	}
	opts := x509.VerifyOptions{Roots: c.roots, DNSName: c.name, Intermediates: x509.NewCertPool(), CurrentTime: now,
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	for _, ic := range certs[1:] {
		opts.Intermediates.AddCert(ic)
	}
	if _, err := certs[0].Verify(opts); err != nil {
		return &tls.CertificateVerificationError{UnverifiedCertificates: certs, Err: err}
	}
	until = now.Add(chainCacheTTL)
	for _, cert := range certs {
		if cert.NotAfter.Before(until) {
			until = cert.NotAfter
		}
	}
	c.mu.Lock()
	if len(c.until) >= chainCacheEntries {
		clear(c.until)
	}
	c.until[key] = until
	c.mu.Unlock()
	return nil
}
