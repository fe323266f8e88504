//go:build cgo

package pkcs11

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha512"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/minikms/minikms/engine"
	"github.com/minikms/minikms/store/sqlite"
)

// Benchmarks of the token against software (BENCHMARKS.md):
//
//	go test -run '^$' -bench . -benchtime 2s ./pkcs11/

func benchRoot(b *testing.B) (*Keyring, *engine.SoftKeyring) {
	st := newSoftToken(b)
	h := st.open(b)
	root := make([]byte, engine.RootKeySize)
	rand.Read(root)
	if _, err := h.ImportRoot(context.Background(), root); err != nil {
		b.Fatal(err)
	}
	kr, err := h.Keyring(context.Background())
	if err != nil {
		b.Fatal(err)
	}
	soft, _ := engine.NewSoftKeyring(root)
	b.Cleanup(soft.Close)
	return kr, soft
}

// BenchmarkDerive: one tenant master key derivation (HKDF-Expand-SHA256 =
// one HMAC-SHA256), in the token (CKM_SHA256_HMAC) and in software.
func BenchmarkDerive(b *testing.B) {
	kr, soft := benchRoot(b)
	ctx := context.Background()
	for _, c := range []struct {
		name string
		k    engine.Keyring
	}{{"token", kr}, {"software", soft}} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				i++
				if _, err := c.k.Derive(ctx, 1, engine.TenantInfo("", "tenant-"+strconv.Itoa(i))); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
	b.Run("token-parallel", func(b *testing.B) {
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, err := kr.Derive(ctx, 1, engine.TenantInfo("", "acme")); err != nil {
					b.Fatal(err)
				}
			}
		})
	})
}

// BenchmarkSignP384: one CA signature (certificate, CRL, checkpoint) with
// a token key and with a software key.
func BenchmarkSignP384(b *testing.B) {
	st := newSoftToken(b)
	h := st.open(b)
	tok, _, err := h.KeySource().Generate(context.Background(), "bench")
	if err != nil {
		b.Fatal(err)
	}
	soft, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	digest := sha512.Sum384([]byte("to be signed"))
	for _, c := range []struct {
		name string
		s    crypto.Signer
	}{{"token", tok}, {"software", soft}} {
		b.Run(c.name, func(b *testing.B) {
			for b.Loop() {
				if _, err := c.s.Sign(rand.Reader, digest[:], crypto.SHA384); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkColdKeyLoad: a server start's first use of a stored key: open
// the engine (its root key check value is one derivation) and Get one
// object (tenant master key derivation, then unwrapping), with the root in
// the token and in software. The store is a SQLite file.
func BenchmarkColdKeyLoad(b *testing.B) {
	kr, soft := benchRoot(b)
	ctx := context.Background()
	db, err := sqlite.Open(ctx, filepath.Join(b.TempDir(), "bench.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	p := engine.Principal{Tenant: "acme", Member: "bench", Role: engine.RoleAdmin}
	e, err := engine.Open(ctx, engine.Config{Store: db, Keyring: soft})
	if err != nil {
		b.Fatal(err)
	}
	o, err := e.Create(ctx, p, engine.CreateRequest{Type: engine.TypeSymmetricKey, Attrs: []engine.Attribute{
		{Name: engine.AttrCryptographicAlgorithm, Value: engine.AlgAES}, {Name: engine.AttrCryptographicLength, Value: int32(256)}}})
	if err != nil {
		b.Fatal(err)
	}
	e.Close()
	for _, c := range []struct {
		name string
		k    engine.Keyring
	}{{"token", kr}, {"software", soft}} {
		b.Run(c.name, func(b *testing.B) {
			for b.Loop() {
				e, err := engine.Open(ctx, engine.Config{Store: db, Keyring: c.k})
				if err != nil {
					b.Fatal(err)
				}
				if _, _, err := e.Get(ctx, p, o.ID); err != nil {
					b.Fatal(err)
				}
				e.Close()
			}
		})
	}
}

// BenchmarkOpen: connecting to the token (module already loaded: a
// crypto11 context, session pool and login).
func BenchmarkOpen(b *testing.B) {
	st := newSoftToken(b)
	keep := st.open(b) // keeps the module initialised, as in a server
	_ = keep
	for b.Loop() {
		h, err := Open(context.Background(), st.config())
		if err != nil {
			b.Fatal(err)
		}
		h.Close()
	}
}
