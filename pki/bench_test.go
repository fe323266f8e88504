package pki_test

import (
	"testing"

	"github.com/minikms/minikms/engine"
	"github.com/minikms/minikms/pki"
)

// benchChains are the two ways a client presents its chain.
func benchChains(b *testing.B) (*pki.Verifier, map[string][][]byte) {
	b.Helper()
	h := newHierarchy(b, t0, "acme", "globex")
	m := h.issueMember(b, "acme", "app", engine.RoleApp, t0, 0)
	v := pki.NewVerifier(h.root.Cert, h.tenantCerts(), newClock(t0).Now)
	return v, map[string][][]byte{
		"leaf":    raw(m.cert),
		"leaf+ca": raw(m.cert, h.tenants["acme"].Cert),
	}
}

// BenchmarkVerifyCold measures a full verification: parse, chain building,
// two ECDSA P-384 signature checks, identity extraction. The cache is
// flushed before each verification.
func BenchmarkVerifyCold(b *testing.B) {
	v, chains := benchChains(b)
	for _, name := range []string{"leaf", "leaf+ca"} {
		chain := chains[name]
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				v.Flush()
				if _, err := v.Verify(chain); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkVerifyCached measures a reconnecting client: the chain is
// verified once, then answered from the cache (hash of the presented
// certificates plus a map lookup).
func BenchmarkVerifyCached(b *testing.B) {
	v, chains := benchChains(b)
	for _, name := range []string{"leaf", "leaf+ca"} {
		chain := chains[name]
		b.Run(name, func(b *testing.B) {
			if _, err := v.Verify(chain); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			for b.Loop() {
				if _, err := v.Verify(chain); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
