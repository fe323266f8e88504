package kmip_test

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/minikms/minikms/engine"
	"github.com/minikms/minikms/internal/testkms"
	okmip "github.com/ovh/kmip-go"
	"github.com/ovh/kmip-go/kmipclient"
	"github.com/ovh/kmip-go/payloads"
	"github.com/ovh/kmip-go/ttlv"
)

func dialKmipClient(tb testing.TB, env *testkms.Env) *kmipclient.Client {
	tb.Helper()
	c, err := kmipclient.Dial(env.Addr, kmipclient.WithTlsConfig(env.ClientTLS(tb, "acme", "app", engine.RoleApp)))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { c.Close() })
	return c
}

// TestKmipClientInterop: the kmip-go client, an independent
// implementation, negotiates a version and runs a key's life.
func TestKmipClientInterop(t *testing.T) {
	env := startKMS(t, nil)
	c := dialKmipClient(t, env)
	if c.Version() != okmip.V1_4 {
		t.Fatalf("negotiated %s, want 1.4", c.Version())
	}
	ctx := context.Background()
	cr, err := c.Create().AES(256, okmip.CryptographicUsageEncrypt|okmip.CryptographicUsageDecrypt).WithName(uniqueName(t)).ExecContext(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Activate(cr.UniqueIdentifier).ExecContext(ctx); err != nil {
		t.Fatal(err)
	}
	plain := []byte("thirty-two bytes of plaintext!!!")
	enc, err := c.Encrypt(cr.UniqueIdentifier).WithCryptographicParameters(okmip.CryptographicParameters{BlockCipherMode: okmip.BlockCipherModeGCM}).Data(plain).ExecContext(ctx)
	if err != nil {
		t.Fatal(err)
	}
	dec, err := c.Decrypt(cr.UniqueIdentifier).WithCryptographicParameters(okmip.CryptographicParameters{BlockCipherMode: okmip.BlockCipherModeGCM}).
		WithIvCounterNonce(enc.IVCounterNonce).WithAuthTag(enc.AuthenticatedEncryptionTag).Data(enc.Data).ExecContext(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(dec.Data, plain) {
		t.Fatal("round trip changed the data")
	}
	if _, err := c.Destroy(cr.UniqueIdentifier).ExecContext(ctx); err == nil {
		t.Fatal("the app role destroyed a key")
	}
}

// benchKey creates an active AES-256 key as acme/app.
func benchKey(b *testing.B, env *testkms.Env) string {
	b.Helper()
	w := dialAs(b, env, "acme", "app", engine.RoleApp)
	id := w.activeKey()
	w.conn.Close()
	return id
}

// BenchmarkEncryptRoundTrip: one AES-GCM Encrypt of 32 bytes per
// iteration over one mutual-TLS connection, request to response.
func BenchmarkEncryptRoundTrip(b *testing.B) {
	env := startKMS(b, nil)
	id := benchKey(b, env)
	plain := make([]byte, 32)
	gcm := &okmip.CryptographicParameters{BlockCipherMode: okmip.BlockCipherModeGCM}

	b.Run("raw", func(b *testing.B) {
		w := dialAs(b, env, "acme", "app", engine.RoleApp)
		req := ttlv.MarshalTTLV(newRequest(okmip.V1_4, &payloads.EncryptRequestPayload{UniqueIdentifier: id, CryptographicParameters: gcm, Data: plain}))
		resp, _ := w.roundTripRaw(req)
		wantSuccess(b, resp.BatchItem[0])
		b.SetBytes(int64(len(plain)))
		b.ReportAllocs()
		b.ResetTimer()
		for b.Loop() {
			w.write(req)
			raw, err := w.readRaw(10 * time.Second)
			if err != nil {
				b.Fatal(err)
			}
			// Result Status: Success (0).
			if !bytes.Contains(raw, []byte{0x42, 0x00, 0x7F, 0x05, 0, 0, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0}) {
				b.Fatal("Encrypt failed")
			}
		}
	})
	b.Run("kmipclient", func(b *testing.B) {
		c := dialKmipClient(b, env)
		ctx := context.Background()
		pl := &payloads.EncryptRequestPayload{UniqueIdentifier: id, CryptographicParameters: gcm, Data: plain}
		b.SetBytes(int64(len(plain)))
		b.ReportAllocs()
		b.ResetTimer()
		for b.Loop() {
			if _, err := c.Request(ctx, pl); err != nil {
				b.Fatal(err)
			}
		}
	})
}
