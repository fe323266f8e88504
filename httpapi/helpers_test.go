package httpapi_test

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptrace"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/minikms/minikms/audit"
	"github.com/minikms/minikms/certs"
	"github.com/minikms/minikms/engine"
	"github.com/minikms/minikms/httpapi"
	"github.com/minikms/minikms/internal/testkms"
	"github.com/minikms/minikms/pki"
)

// TestMain fails the package when a test leaves goroutines behind (sniffing
// goroutines, served connections, client transports).
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// serverTLS returns the HTTPS configuration of the HTTP address: a server
// certificate issued by env's root, client certificates verified by env's
// verifier (optional, as cmd/minikms configures it).
func serverTLS(t testing.TB, env *testkms.Env) *tls.Config {
	t.Helper()
	root, err := env.Auth.Root(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := pki.IssueServer(root, []string{"127.0.0.1", "localhost"}, key.Public(), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	cert := tls.Certificate{Certificate: [][]byte{leaf.Raw}, PrivateKey: key, Leaf: leaf}
	return certs.NewServer(cert, env.Verifier).HTTPSConfig()
}

// publicHandler stands for the public endpoints (health, CRLs, metrics):
// it tells which path it served and whether over TLS.
func publicHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		fmt.Fprintf(w, "public %s tls=%v", r.URL.Path, r.TLS != nil)
	})
}

// httpServer is the HTTP address of a miniKMS served by httpapi.
type httpServer struct {
	env  *testkms.Env
	addr string
	srv  *http.Server
}

// startHTTP serves httpapi.New on a fresh loopback port through Listen.
// adjust may change the configuration (the defaults use env's verifier,
// audit log and store, and no checkpoint key).
func startHTTP(t testing.TB, env *testkms.Env, adjust func(*httpapi.Config)) *httpServer {
	t.Helper()
	cfg := httpapi.Config{
		Public:     publicHandler(),
		Identifier: env.Verifier,
		Audit:      env.Audit,
		AuditStore: env.Store,
		Logger:     slog.New(slog.DiscardHandler),
	}
	if adjust != nil {
		adjust(&cfg)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hl := httpapi.Listen(ln, serverTLS(t, env))
	srv := &http.Server{Handler: httpapi.New(cfg), ErrorLog: log.New(io.Discard, "", 0), ReadHeaderTimeout: 5 * time.Second}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(hl) }()
	t.Cleanup(func() {
		srv.Close()
		select {
		case err := <-done:
			if !errors.Is(err, http.ErrServerClosed) {
				t.Errorf("Serve returned %v, want http.ErrServerClosed", err)
			}
		case <-time.After(5 * time.Second):
			t.Error("Serve did not return after Close")
		}
	})
	return &httpServer{env: env, addr: hl.Addr().String(), srv: srv}
}

// client is an HTTP client of the server, over plain HTTP or HTTPS.
type client struct {
	t    testing.TB
	base string
	tr   *http.Transport
	hc   *http.Client
	cert *tls.Certificate // the member certificate presented, if any
}

func newClient(t testing.TB, base string, tr *http.Transport) *client {
	t.Helper()
	tr.DisableCompression = true
	t.Cleanup(tr.CloseIdleConnections)
	return &client{t: t, base: base, tr: tr, hc: &http.Client{Transport: tr, Timeout: 10 * time.Second}}
}

// plain is a plain HTTP client.
func (s *httpServer) plain(t testing.TB) *client {
	return newClient(t, "http://"+s.addr, &http.Transport{})
}

// anonymous is an HTTPS client presenting no certificate.
func (s *httpServer) anonymous(t testing.TB) *client {
	return newClient(t, "https://"+s.addr, &http.Transport{TLSClientConfig: &tls.Config{RootCAs: s.env.Roots, ServerName: "127.0.0.1"}})
}

// withCert is an HTTPS client presenting cert.
func (s *httpServer) withCert(t testing.TB, cert tls.Certificate) *client {
	c := newClient(t, "https://"+s.addr, &http.Transport{TLSClientConfig: &tls.Config{
		RootCAs: s.env.Roots, ServerName: "127.0.0.1", Certificates: []tls.Certificate{cert}}})
	c.cert = &cert
	return c
}

// member is an HTTPS client presenting a member certificate of env.
func (s *httpServer) member(t testing.TB, tenant, member string, role engine.Role) *client {
	t.Helper()
	return s.withCert(t, s.env.ClientCertificate(t, tenant, member, role))
}

// certHash is the cert_hash audit records carry for the client.
func (c *client) certHash() string {
	sum := sha256.Sum256(c.cert.Certificate[0])
	return hex.EncodeToString(sum[:])
}

// response is what a request got.
type response struct {
	status int
	header http.Header
	body   []byte
	reused bool   // the request went over a kept-alive connection
	local  string // the client's address (the server's RemoteAddr)
}

// try sends a GET and returns the transport error, if any.
func (c *client) try(path string) (*response, error) { return c.do(http.MethodGet, path) }

// do sends a request without a body.
func (c *client) do(method, path string) (*response, error) {
	out := &response{}
	trace := &httptrace.ClientTrace{GotConn: func(i httptrace.GotConnInfo) {
		out.reused = i.Reused
		out.local = i.Conn.LocalAddr().String()
	}}
	ctx := httptrace.WithClientTrace(context.Background(), trace)
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, nil)
	if err != nil {
		return nil, err
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	out.status, out.header = resp.StatusCode, resp.Header
	if out.body, err = io.ReadAll(resp.Body); err != nil {
		return nil, err
	}
	return out, nil
}

// get sends a GET that must reach the server.
func (c *client) get(path string) *response {
	c.t.Helper()
	r, err := c.try(path)
	if err != nil {
		c.t.Fatalf("GET %s: %v", path, err)
	}
	return r
}

// wantError checks an API error: status, JSON content type, and a body that
// is exactly {"error":{"code":code,"message":...}}. It returns the message.
func wantError(t testing.TB, r *response, status int, code string) string {
	t.Helper()
	if r.status != status {
		t.Fatalf("status %d, want %d; body %q", r.status, status, r.body)
	}
	if ct := r.header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type %q, want application/json", ct)
	}
	if r.header.Get("X-Minikms-Last-Seq") != "" {
		t.Errorf("an error carries X-Minikms-Last-Seq %q", r.header.Get("X-Minikms-Last-Seq"))
	}
	var raw map[string]map[string]any
	if err := json.Unmarshal(r.body, &raw); err != nil {
		t.Fatalf("error body %q is not one JSON object: %v", r.body, err)
	}
	e, ok := raw["error"]
	if len(raw) != 1 || !ok || len(e) != 2 {
		t.Fatalf("error body %q: want exactly {\"error\":{\"code\",\"message\"}}", r.body)
	}
	if e["code"] != code {
		t.Errorf("error code %v, want %q (body %q)", e["code"], code, r.body)
	}
	msg, _ := e["message"].(string)
	if msg == "" {
		t.Errorf("error body %q has no message", r.body)
	}
	return msg
}

// lines decodes a JSON lines body of records, checking the content type and
// that every line is one record with no unknown field.
func lines(t testing.TB, r *response) []audit.JSONRecord {
	t.Helper()
	if r.status != http.StatusOK {
		t.Fatalf("status %d, want 200; body %q", r.status, r.body)
	}
	if ct := r.header.Get("Content-Type"); ct != "application/x-ndjson" {
		t.Errorf("Content-Type %q, want application/x-ndjson", ct)
	}
	var out []audit.JSONRecord
	for i, l := range bytes.Split(r.body, []byte("\n")) {
		if len(l) == 0 {
			if i != bytes.Count(r.body, []byte("\n")) {
				t.Fatalf("empty line %d in %q", i, r.body)
			}
			continue
		}
		dec := json.NewDecoder(bytes.NewReader(l))
		dec.DisallowUnknownFields()
		var j audit.JSONRecord
		if err := dec.Decode(&j); err != nil {
			t.Fatalf("line %d %q: %v", i, l, err)
		}
		out = append(out, j)
	}
	if len(r.body) > 0 && r.body[len(r.body)-1] != '\n' {
		t.Errorf("body does not end with a newline: %q", r.body)
	}
	return out
}

func seqs(recs []audit.JSONRecord) []int64 {
	out := make([]int64, len(recs))
	for i, r := range recs {
		out[i] = r.Seq
	}
	return out
}

// allRecords reads the whole chain from the store.
func allRecords(t testing.TB, env *testkms.Env) []engine.AuditRecord {
	t.Helper()
	recs, err := env.Store.AuditRecords(context.Background(), 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	return recs
}

// lastRecord returns the newest record of the chain.
func lastRecord(t testing.TB, env *testkms.Env) engine.AuditRecord {
	t.Helper()
	recs := allRecords(t, env)
	if len(recs) == 0 {
		t.Fatal("the audit chain is empty")
	}
	return recs[len(recs)-1]
}

// headSeq is the chain's last sequence number.
func headSeq(t testing.TB, env *testkms.Env) int64 {
	t.Helper()
	h, err := env.Store.AuditHead(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return h.Seq
}

// wantCallRecord checks that rec is the audit record of an API call made by
// c: who (from the certificate), from where, what and how it ended.
func wantCallRecord(t testing.TB, rec engine.AuditRecord, c *client, r *response, tenant, member string, role engine.Role,
	action, status, reason string, details map[string]string) {
	t.Helper()
	want := engine.AuditEvent{Time: rec.Time, Tenant: tenant, Member: member, CertHash: c.certHash(), Role: string(role),
		Remote: r.local, Action: action, Status: status, Reason: reason, Details: details}
	got := rec.AuditEvent
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("audit record %d:\n got %+v\nwant %+v", rec.Seq, got, want)
	}
	if rec.Node != "test" {
		t.Errorf("audit record %d: node %q, want test", rec.Seq, rec.Node)
	}
	if d := time.Since(rec.Time); d < 0 || d > time.Minute {
		t.Errorf("audit record %d: time %v is not now", rec.Seq, rec.Time)
	}
}

// t0 is the time of the seeded records.
var t0 = time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)

// seed appends records of acme, globex and tenant "" (seq 1 to 6):
//
//	1 acme   app1  kmip.Create  k1  t0
//	2 globex app1  kmip.Create  g1  t0+30m
//	3 acme   app1  kmip.Encrypt k1  t0+1h
//	4 ""     -     server.start -   t0+1h
//	5 acme   admin kmip.Destroy k2  t0+2h  (failure)
//	6 globex admin kmip.Destroy g1  t0+2h
func seed(t testing.TB, env *testkms.Env) {
	t.Helper()
	if n := headSeq(t, env); n != 0 {
		t.Fatalf("the chain already has %d records", n)
	}
	ev := func(min int, tenant, member, action, object string) engine.AuditEvent {
		return engine.AuditEvent{Time: t0.Add(time.Duration(min) * time.Minute), Tenant: tenant, Member: member,
			CertHash: "ab" + member, Role: "app", Remote: "192.0.2.1:4000", Action: action, Object: object, Status: audit.StatusSuccess}
	}
	events := []engine.AuditEvent{
		ev(0, "acme", "app1", "kmip.Create", "k1"),
		ev(30, "globex", "app1", "kmip.Create", "g1"),
		ev(60, "acme", "app1", "kmip.Encrypt", "k1"),
		{Time: t0.Add(time.Hour), Action: "server.start", Status: audit.StatusSuccess, Details: map[string]string{"version": "dev"}},
		ev(120, "acme", "admin", "kmip.Destroy", "k2"),
		ev(120, "globex", "admin", "kmip.Destroy", "g1"),
	}
	events[4].Status, events[4].Reason, events[4].Details = audit.StatusFailure, "Permission Denied", map[string]string{"message": "no"}
	if err := env.Audit.Record(context.Background(), events); err != nil {
		t.Fatal(err)
	}
	if n := headSeq(t, env); n != 6 {
		t.Fatalf("seeded chain ends at %d, want 6", n)
	}
}

// checkpointKey returns a checkpoint signer and the CheckpointKey function
// the handler reads its public key with.
func checkpointKey(t testing.TB, env *testkms.Env) (*audit.Checkpointer, *ecdsa.PrivateKey, func(context.Context) (crypto.PublicKey, error)) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	cp, err := audit.NewCheckpointer(env.Store, key)
	if err != nil {
		t.Fatal(err)
	}
	return cp, key, func(context.Context) (crypto.PublicKey, error) { return key.Public(), nil }
}

// memSource is an audit.Source over records and checkpoints fetched through
// the API.
type memSource struct {
	recs []engine.AuditRecord
	cps  []engine.AuditCheckpoint
}

func (m *memSource) AuditRecords(_ context.Context, after int64, limit int) ([]engine.AuditRecord, error) {
	var out []engine.AuditRecord
	for _, r := range m.recs {
		if r.Seq > after && (limit <= 0 || len(out) < limit) {
			out = append(out, r)
		}
	}
	return out, nil
}

func (m *memSource) AuditCheckpoints(context.Context) ([]engine.AuditCheckpoint, error) {
	return m.cps, nil
}

// failingLog is an audit log that cannot record.
type failingLog struct{ calls atomic.Int64 }

var errAuditDown = errors.New("audit store down")

func (f *failingLog) Record(context.Context, []engine.AuditEvent) error {
	f.calls.Add(1)
	return errAuditDown
}

// failingStore reads nothing.
type failingStore struct{ engine.AuditStore }

var errStoreDown = errors.New("store down")

func (failingStore) AuditRecords(context.Context, int64, int) ([]engine.AuditRecord, error) {
	return nil, errStoreDown
}

func (failingStore) QueryAudit(context.Context, engine.AuditQuery) ([]engine.AuditRecord, error) {
	return nil, errStoreDown
}

func (failingStore) AuditCheckpoints(context.Context) ([]engine.AuditCheckpoint, error) {
	return nil, errStoreDown
}

// contains reports whether s contains every part.
func contains(s string, parts ...string) bool {
	for _, p := range parts {
		if !strings.Contains(s, p) {
			return false
		}
	}
	return true
}
