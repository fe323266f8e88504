package certs

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"sync/atomic"

	"github.com/minikms/minikms/pki"
)

// Server holds the listener's certificate and the client verifier.
type Server struct {
	cert     atomic.Pointer[tls.Certificate]
	Verifier *pki.Verifier
}

// NewServer returns a Server presenting cert and verifying clients with v.
func NewServer(cert tls.Certificate, v *pki.Verifier) *Server {
	s := &Server{Verifier: v}
	s.cert.Store(&cert)
	return s
}

// LoadKeyPair reads a PEM certificate (chain) and key.
func LoadKeyPair(certFile, keyFile string) (tls.Certificate, error) {
	c, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("load TLS certificate %s: %w", certFile, err)
	}
	if c.Leaf == nil && len(c.Certificate) > 0 {
		c.Leaf, err = x509.ParseCertificate(c.Certificate[0])
		if err != nil {
			return tls.Certificate{}, err
		}
	}
	return c, nil
}

// SetCertificate replaces the certificate new handshakes present.
func (s *Server) SetCertificate(c tls.Certificate) { s.cert.Store(&c) }

// Certificate returns the current certificate.
func (s *Server) Certificate() *tls.Certificate { return s.cert.Load() }

// TLSConfig returns the listener configuration: TLS 1.2 or later, a client
// certificate required and verified by pki (the tenant CAs are known
// intermediates, so clients may present only their leaf), session tickets
// on so reconnecting clients resume cheaply.
func (s *Server) TLSConfig() *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		ClientAuth: tls.RequireAnyClientCert,
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
			c := s.cert.Load()
			if c == nil {
				return nil, errors.New("no server certificate loaded")
			}
			return c, nil
		},
		// VerifyConnection, unlike VerifyPeerCertificate, also runs when a
		// client resumes a session: a revocation or a trust change applies
		// to resumed sessions too. Cached verifications make it cheap.
		VerifyConnection: func(cs tls.ConnectionState) error {
			raw := make([][]byte, len(cs.PeerCertificates))
			for i, c := range cs.PeerCertificates {
				raw[i] = c.Raw
			}
			_, err := s.Verifier.Verify(raw)
			return err
		},
	}
}

// HTTPSConfig returns the configuration of the HTTPS side of the HTTP
// address: same certificate and verification, but a client certificate is
// optional, because health checks, metrics scrapers and CRL fetchers
// have none; the API handlers require one. A certificate that is
// presented must verify.
func (s *Server) HTTPSConfig() *tls.Config {
	c := s.TLSConfig()
	c.ClientAuth = tls.RequestClientCert
	verify := c.VerifyConnection
	c.VerifyConnection = func(cs tls.ConnectionState) error {
		if len(cs.PeerCertificates) == 0 {
			return nil
		}
		return verify(cs)
	}
	c.NextProtos = []string{"http/1.1"}
	return c
}
