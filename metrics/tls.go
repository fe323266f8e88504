package metrics

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"os"
	"strings"

	"github.com/minikms/minikms/pki"
)

// Causes of TLS handshake failures.
const (
	CauseBadCert  = "bad_cert" // no, an unverifiable or a refused client certificate (or the client refused ours)
	CauseRevoked  = "revoked"  // a revoked certificate or issuing CA
	CauseTimeout  = "timeout"  // the handshake did not finish in time
	CauseProtocol = "protocol" // not TLS, or no common version or cipher suite
	CauseOther    = "other"
)

// HandshakeCauses are every value HandshakeCause returns.
var HandshakeCauses = []string{CauseBadCert, CauseRevoked, CauseTimeout, CauseProtocol, CauseOther}

// HandshakeCause classifies a TLS handshake error.
func HandshakeCause(err error) string {
	if err == nil {
		return CauseOther
	}
	var ne net.Error
	if errors.Is(err, os.ErrDeadlineExceeded) || errors.As(err, &ne) && ne.Timeout() {
		return CauseTimeout
	}
	msg := err.Error()
	if strings.Contains(msg, "revoked") {
		return CauseRevoked
	}
	var (
		verr *tls.CertificateVerificationError
		uerr x509.UnknownAuthorityError
		cerr x509.CertificateInvalidError
		herr x509.HostnameError
	)
	if errors.Is(err, pki.ErrNotAuthenticated) || errors.As(err, &verr) || errors.As(err, &uerr) || errors.As(err, &cerr) || errors.As(err, &herr) {
		return CauseBadCert
	}
	for _, s := range []string{"certificate", "bad_certificate"} {
		if strings.Contains(msg, s) {
			return CauseBadCert
		}
	}
	var rerr tls.RecordHeaderError
	if errors.As(err, &rerr) {
		return CauseProtocol
	}
	for _, s := range []string{"protocol version", "cipher suite", "handshake failure", "unexpected message", "does not look like a TLS handshake", "no application protocol", "unsupported", "tls: "} {
		if strings.Contains(msg, s) {
			return CauseProtocol
		}
	}
	return CauseOther
}
