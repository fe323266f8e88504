package engine_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/minikms/minikms/engine"
)

// Wrap and unwrap of 32-byte material are benchmarked in
// wrap_internal_test.go (BenchmarkWrap32, BenchmarkUnwrap32).

func BenchmarkDerive(b *testing.B) {
	kr, err := engine.NewSoftKeyring(randomBytes(b, engine.RootKeySize))
	require.NoError(b, err)
	info := engine.TenantInfo("salt", "acme")
	ctx := context.Background()
	for b.Loop() {
		if _, err := kr.Derive(ctx, 1, info); err != nil {
			b.Fatal(err)
		}
	}
}

// benchKey is an Active AES-256 key whose unwrapped material is cached.
func benchKey(b *testing.B) (*env, string) {
	b.Helper()
	e := newEnv(b)
	k := e.activeAES(b, acmeApp, 256)
	e.encrypt(b, acmeApp, k.ID, []byte("warm"))
	return e, k.ID
}

func BenchmarkEncryptAESGCM32(b *testing.B) {
	e, id := benchKey(b)
	ctx := context.Background()
	req := engine.EncryptRequest{ID: id, Data: make([]byte, 32)}
	b.SetBytes(32)
	for b.Loop() {
		if _, err := e.eng.Encrypt(ctx, acmeApp, req); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkEncryptAESGCM32Parallel(b *testing.B) {
	e, id := benchKey(b)
	ctx := context.Background()
	b.SetBytes(32)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		req := engine.EncryptRequest{ID: id, Data: make([]byte, 32)}
		for pb.Next() {
			if _, err := e.eng.Encrypt(ctx, acmeApp, req); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkCreate is a durable Create of an AES-256 key: generation,
// wrapping, and one fsynced SQLite commit.
func BenchmarkCreate(b *testing.B) {
	e := newEnv(b)
	ctx := context.Background()
	req := engine.CreateRequest{Type: engine.TypeSymmetricKey, Attrs: aesAttrs(256, attr(engine.AttrName, name("bench")))}
	for b.Loop() {
		if _, err := e.eng.Create(ctx, acmeApp, req); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkCreateParallel(b *testing.B) {
	e := newEnv(b)
	ctx := context.Background()
	req := engine.CreateRequest{Type: engine.TypeSymmetricKey, Attrs: aesAttrs(256)}
	b.SetParallelism(8)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := e.eng.Create(ctx, acmeApp, req); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkGetCached is a Get of a key whose object and material are
// cached (Fresh already cleared, so no write).
func BenchmarkGetCached(b *testing.B) {
	e, id := benchKey(b)
	ctx := context.Background()
	_, m, err := e.eng.Get(ctx, acmeApp, id)
	require.NoError(b, err)
	clear(m.Bytes)
	for b.Loop() {
		_, m, err := e.eng.Get(ctx, acmeApp, id)
		if err != nil {
			b.Fatal(err)
		}
		clear(m.Bytes)
	}
}
