package pki_test

import (
	"crypto/x509"
	"errors"
	"testing"
	"time"

	"github.com/minikms/minikms/engine"
	"github.com/minikms/minikms/pki"
)

// FuzzVerifyClient: whatever certificate chain a TLS client presents, the
// verifier refuses it with ErrNotAuthenticated or accepts only a member
// of the hierarchy; MemberOf reads any parseable certificate without a
// panic. Seeds: real members, CAs, and mutations (testdata/fuzz).
func FuzzVerifyClient(f *testing.F) {
	h := newHierarchy(f, t0, "acme")
	foreign := newHierarchy(f, t0, "acme")
	leaf := h.issueMember(f, "acme", "app", "app", t0, 0)
	acmeCA := h.tenants["acme"].Cert
	other := foreign.issueMember(f, "acme", "app", "app", t0, 0)
	f.Add(leaf.cert.Raw, acmeCA.Raw)
	f.Add(other.cert.Raw, foreign.tenants["acme"].Cert.Raw)
	f.Add(acmeCA.Raw, h.root.Cert.Raw)
	f.Add(leaf.cert.Raw[:100], []byte(nil))
	v := pki.NewVerifier(h.root.Cert, h.tenantCerts(), func() time.Time { return t0.Add(time.Minute) })
	f.Fuzz(func(t *testing.T, a, b []byte) {
		raw := [][]byte{a}
		if len(b) > 0 {
			raw = append(raw, b)
		}
		type result struct {
			p   engine.Principal
			err error
		}
		done := make(chan result, 1)
		go func() {
			p, err := v.Verify(raw)
			done <- result{p, err}
		}()
		var r result
		select {
		case r = <-done:
		case <-time.After(5 * time.Second):
			t.Fatalf("Verify did not return within 5 s (%d and %d bytes)", len(a), len(b))
		}
		p, err := r.p, r.err
		if err != nil {
			if !errors.Is(err, pki.ErrNotAuthenticated) {
				t.Fatalf("refused without ErrNotAuthenticated: %v", err)
			}
		} else if p.Tenant != "acme" || p.Member != "app" {
			t.Fatalf("accepted an unknown identity %+v", p)
		}
		if c, err := x509.ParseCertificate(a); err == nil {
			pki.MemberOf(c)
		}
	})
}
