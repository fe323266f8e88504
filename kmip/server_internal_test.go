package kmip

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/binary"
	"io"
	"log/slog"
	"math/big"
	"net"
	"path/filepath"
	"testing"
	"time"

	"github.com/minikms/minikms/engine"
	"github.com/minikms/minikms/store/sqlite"
	"github.com/ovh/kmip-go"
	"github.com/ovh/kmip-go/payloads"
	"github.com/ovh/kmip-go/ttlv"
)

// fixedIdentity accepts any client certificate as one principal: these
// tests are about the server loop, not about authentication.
type fixedIdentity struct{ p engine.Principal }

func (f fixedIdentity) Verify([][]byte) (engine.Principal, error) { return f.p, nil }

var testPrincipal = engine.Principal{Tenant: "acme", Member: "tester", Role: engine.RoleAdmin, CertHash: "00"}

// newEngine opens an engine over a SQLite store in a temporary directory.
func newEngine(tb testing.TB) *engine.Engine {
	tb.Helper()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(tb.TempDir(), "kms.db"))
	if err != nil {
		tb.Fatal(err)
	}
	root := make([]byte, engine.RootKeySize)
	rand.Read(root)
	kr, err := engine.NewSoftKeyring(root)
	if err != nil {
		tb.Fatal(err)
	}
	eng, err := engine.Open(ctx, engine.Config{Store: st, Keyring: kr, Logger: quietLog()})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { eng.Close(); st.Close(); kr.Close() })
	return eng
}

func quietLog() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func selfSigned(tb testing.TB, server bool) tls.Certificate {
	tb.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
	if server {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
		tmpl.IPAddresses = []net.IP{net.IPv4(127, 0, 0, 1)}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		tb.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

// startServer runs a server on loopback until the test ends and returns
// it with a function that dials it.
func startServer(tb testing.TB) (*Server, func() *tls.Conn) {
	tb.Helper()
	srv, err := New(Config{
		Engine:     newEngine(tb),
		TLS:        &tls.Config{Certificates: []tls.Certificate{selfSigned(tb, true)}, ClientAuth: tls.RequireAnyClientCert},
		Identifier: fixedIdentity{testPrincipal},
		Logger:     quietLog(),
	})
	if err != nil {
		tb.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
		if err := <-done; err != ErrServerClosed {
			tb.Errorf("Serve returned %v", err)
		}
	})
	client := selfSigned(tb, false)
	return srv, func() *tls.Conn {
		c, err := tls.Dial("tcp", ln.Addr().String(), &tls.Config{InsecureSkipVerify: true, Certificates: []tls.Certificate{client}})
		if err != nil {
			tb.Fatal(err)
		}
		tb.Cleanup(func() { c.Close() })
		return c
	}
}

func roundTrip(tb testing.TB, c *tls.Conn, req []byte) *kmip.ResponseMessage {
	tb.Helper()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Write(req); err != nil {
		tb.Fatal(err)
	}
	var hdr [8]byte
	if _, err := io.ReadFull(c, hdr[:]); err != nil {
		tb.Fatal(err)
	}
	buf := make([]byte, 8+binary.BigEndian.Uint32(hdr[4:]))
	copy(buf, hdr[:])
	if _, err := io.ReadFull(c, buf[8:]); err != nil {
		tb.Fatal(err)
	}
	var resp kmip.ResponseMessage
	if err := ttlv.UnmarshalTTLV(buf, &resp); err != nil {
		tb.Fatal(err)
	}
	return &resp
}

func request(pls ...kmip.OperationPayload) []byte {
	m := kmip.NewRequestMessage(kmip.V1_4, pls...)
	return ttlv.MarshalTTLV(&m)
}

// swapHandler replaces the handler of op until the test ends.
func swapHandler(t *testing.T, op kmip.Operation, h handler) {
	old, had := handlers[op]
	handlers[op] = h
	t.Cleanup(func() {
		if had {
			handlers[op] = old
		} else {
			delete(handlers, op)
		}
	})
}

// TestHandlerPanic: a handler that panics fails its own batch item with
// General Failure and a generic message; the connection, the rest of the
// batch and the server go on.
func TestHandlerPanic(t *testing.T) {
	_, dial := startServer(t)
	c := dial()
	swapHandler(t, kmip.OperationQuery, route(func(context.Context, *session, *payloads.QueryRequestPayload) (kmip.OperationPayload, error) {
		panic("secret detail 0xDEADBEEF")
	}))
	m := kmip.NewRequestMessage(kmip.V1_4, &payloads.QueryRequestPayload{}, &payloads.DiscoverVersionsRequestPayload{})
	m.Header.BatchErrorContinuationOption = kmip.BatchErrorContinuationOptionContinue
	resp := roundTrip(t, c, ttlv.MarshalTTLV(&m))
	bi := resp.BatchItem[0]
	if bi.ResultStatus != kmip.ResultStatusOperationFailed || bi.ResultReason != kmip.ResultReasonGeneralFailure || bi.ResultMessage != genericFailure {
		t.Fatalf("panic answered %v/%v %q", bi.ResultStatus, bi.ResultReason, bi.ResultMessage)
	}
	if resp.BatchItem[1].ResultStatus != kmip.ResultStatusSuccess {
		t.Fatalf("the next item: %v", resp.BatchItem[1].ResultMessage)
	}
	// Same connection, then a new one.
	if r := roundTrip(t, c, request(&payloads.DiscoverVersionsRequestPayload{})); r.BatchItem[0].ResultStatus != kmip.ResultStatusSuccess {
		t.Fatal("the connection no longer serves")
	}
	if r := roundTrip(t, dial(), request(&payloads.DiscoverVersionsRequestPayload{})); r.BatchItem[0].ResultStatus != kmip.ResultStatusSuccess {
		t.Fatal("the server no longer serves")
	}
}

// TestUnencodableResponse: a response the codec cannot encode is answered
// General Failure as a whole, without internals.
func TestUnencodableResponse(t *testing.T) {
	_, dial := startServer(t)
	c := dial()
	swapHandler(t, kmip.OperationQuery, route(func(context.Context, *session, *payloads.QueryRequestPayload) (kmip.OperationPayload, error) {
		return &unencodable{M: map[string]int{"x": 1}}, nil
	}))
	resp := roundTrip(t, c, request(&payloads.QueryRequestPayload{}))
	if len(resp.BatchItem) != 1 {
		t.Fatalf("%d items", len(resp.BatchItem))
	}
	bi := resp.BatchItem[0]
	if bi.ResultStatus != kmip.ResultStatusOperationFailed || bi.ResultReason != kmip.ResultReasonGeneralFailure || bi.ResultMessage != genericFailure {
		t.Fatalf("answered %v/%v %q", bi.ResultStatus, bi.ResultReason, bi.ResultMessage)
	}
	if r := roundTrip(t, c, request(&payloads.DiscoverVersionsRequestPayload{})); r.BatchItem[0].ResultStatus != kmip.ResultStatusSuccess {
		t.Fatal("the connection no longer serves")
	}
}

// TestInternalErrorNotLeaked: an error the layer does not know is answered
// with the generic message.
func TestInternalErrorNotLeaked(t *testing.T) {
	reason, msg := resultFor(context.Background(), quietLog(), kmip.V1_4, io.ErrShortWrite)
	if reason != kmip.ResultReasonGeneralFailure || msg != genericFailure {
		t.Fatalf("%v %q", reason, msg)
	}
	cases := []struct {
		err    error
		v      kmip.ProtocolVersion
		reason kmip.ResultReason
	}{
		{engine.ErrNotFound, kmip.V1_4, kmip.ResultReasonItemNotFound},
		{engine.ErrWrongState, kmip.V1_4, kmip.ResultReasonPermissionDenied},
		{engine.ErrKeyValueNotPresent, kmip.V1_1, kmip.ResultReasonItemNotFound},
		{engine.ErrKeyValueNotPresent, kmip.V1_2, kmip.ResultReasonKeyValueNotPresent},
		{engine.ErrSensitive, kmip.V1_3, kmip.ResultReasonPermissionDenied},
		{engine.ErrSensitive, kmip.V1_4, kmip.ResultReasonSensitive},
		{engine.ErrNotExtractable, kmip.V1_3, kmip.ResultReasonPermissionDenied},
		{engine.ErrNotExtractable, kmip.V1_4, kmip.ResultReasonNotExtractable},
		{context.DeadlineExceeded, kmip.V1_4, kmip.ResultReasonGeneralFailure},
	}
	for _, c := range cases {
		if got, _ := resultFor(context.Background(), quietLog(), c.v, c.err); got != c.reason {
			t.Errorf("%v at %s: %v, want %v", c.err, c.v, got, c.reason)
		}
	}
}

// BenchmarkHandleMessageEncrypt: one AES-GCM Encrypt of 32 bytes through
// session.handleMessage, from encoded request to encoded response, without
// the network.
func BenchmarkHandleMessageEncrypt(b *testing.B) {
	eng := newEngine(b)
	srv, err := New(Config{Engine: eng, TLS: &tls.Config{}, Identifier: fixedIdentity{testPrincipal}, Logger: quietLog()})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	o, err := eng.Create(ctx, testPrincipal, engine.CreateRequest{Type: engine.TypeSymmetricKey, Attrs: []engine.Attribute{
		{Name: engine.AttrCryptographicAlgorithm, Value: engine.AlgAES},
		{Name: engine.AttrCryptographicLength, Value: int32(256)},
	}})
	if err != nil {
		b.Fatal(err)
	}
	if _, err := eng.Activate(ctx, testPrincipal, o.ID); err != nil {
		b.Fatal(err)
	}
	req := request(&payloads.EncryptRequestPayload{UniqueIdentifier: o.ID, Data: make([]byte, 32),
		CryptographicParameters: &kmip.CryptographicParameters{BlockCipherMode: kmip.BlockCipherModeGCM}})
	sess := &session{srv: srv, eng: eng, p: testPrincipal, log: quietLog()}
	var resp kmip.ResponseMessage
	if err := ttlv.UnmarshalTTLV(sess.handleMessage(req), &resp); err != nil || resp.BatchItem[0].ResultStatus != kmip.ResultStatusSuccess {
		b.Fatalf("Encrypt failed: %v %v", err, resp.BatchItem)
	}
	b.ReportAllocs()
	b.SetBytes(32)
	b.ResetTimer()
	for b.Loop() {
		out := sess.handleMessage(req)
		clear(out)
		sess.scrub()
	}
}

// FuzzHandleMessage: whatever a client sends, handleMessage answers with a
// decodable response (never a panic), one item per batch item or one for
// the whole message.
func FuzzHandleMessage(f *testing.F) {
	for _, s := range fuzzSeeds() {
		f.Add(s)
	}
	eng := newEngine(f)
	srv, err := New(Config{Engine: eng, TLS: &tls.Config{}, Identifier: fixedIdentity{testPrincipal}, Logger: quietLog()})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, msg []byte) {
		sess := &session{srv: srv, eng: eng, p: testPrincipal, log: quietLog()}
		out := sess.handleMessage(msg)
		var resp kmip.ResponseMessage
		if err := ttlv.UnmarshalTTLV(out, &resp); err != nil {
			t.Fatalf("undecodable response: %v", err)
		}
		if len(resp.BatchItem) == 0 || int(resp.Header.BatchCount) != len(resp.BatchItem) {
			t.Fatalf("Batch Count %d, %d items", resp.Header.BatchCount, len(resp.BatchItem))
		}
		if !supportedVersion(resp.Header.ProtocolVersion) {
			t.Fatalf("answered in %s", resp.Header.ProtocolVersion)
		}
	})
}
