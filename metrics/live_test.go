package metrics_test

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	okmip "github.com/ovh/kmip-go"
	"github.com/ovh/kmip-go/kmipclient"

	"github.com/minikms/minikms/engine"
	"github.com/minikms/minikms/internal/testkms"
	"github.com/minikms/minikms/kmip"
	"github.com/minikms/minikms/metrics"
)

// startLive runs a complete miniKMS whose engine store, KMIP server,
// engine caches and object counts report to m.
func startLive(t *testing.T, m *metrics.Metrics) *testkms.Env {
	t.Helper()
	env := testkms.Start(t, testkms.Options{
		Engine: func(c *engine.Config) { c.Store = m.Store(c.Store) },
		KMIP: func(c *kmip.Config) {
			c.Observer = m.KMIP()
			c.HandshakeTimeout = 300 * time.Millisecond
		},
	})
	m.WatchEngine(env.Engine)
	m.WatchObjects(env.Store)
	return env
}

func client(t *testing.T, env *testkms.Env, tenant, member string) *kmipclient.Client {
	t.Helper()
	c, err := kmipclient.Dial(env.Addr, kmipclient.WithTlsConfig(env.ClientTLS(t, tenant, member, engine.RoleAdmin)))
	if err != nil {
		t.Fatalf("dial as %s/%s: %v", tenant, member, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

var gcm = okmip.CryptographicParameters{BlockCipherMode: okmip.BlockCipherModeGCM}

// round runs Create, Activate, Encrypt and a failed Get; it returns the
// key's id.
func round(t *testing.T, c *kmipclient.Client) string {
	t.Helper()
	ctx := context.Background()
	cr, err := c.Create().AES(256, okmip.CryptographicUsageEncrypt|okmip.CryptographicUsageDecrypt).ExecContext(ctx)
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	if _, err := c.Activate(cr.UniqueIdentifier).ExecContext(ctx); err != nil {
		t.Fatalf("Activate: %v", err)
	}
	if _, err := c.Encrypt(cr.UniqueIdentifier).WithCryptographicParameters(gcm).Data([]byte("some plaintext")).ExecContext(ctx); err != nil {
		t.Fatalf("Encrypt: %v", err)
	}
	if _, err := c.Get("no-such-object").ExecContext(ctx); err == nil {
		t.Fatal("Get of a missing object succeeded")
	}
	return cr.UniqueIdentifier
}

// TestLiveMetrics: after Create, Activate, Encrypt and a failed Get the
// metrics show each with its result and latency, the engine's caches, the
// store latencies, the objects and the connection.
func TestLiveMetrics(t *testing.T) {
	m := metrics.New(metrics.Options{Version: "test"})
	env := startLive(t, m)
	c := client(t, env, "acme", "admin")
	round(t, c)

	for _, op := range []string{"Create", "Activate", "Encrypt"} {
		if v := value(t, m, "minikms_kmip_operations_total", "operation", op, "status", "Success", "reason", "none"); v != 1 {
			t.Errorf("%s successes = %v, want 1", op, v)
		}
		if v := value(t, m, "minikms_kmip_operation_duration_seconds", "operation", op); v != 1 {
			t.Errorf("%s timed %v times, want 1", op, v)
		}
	}
	if v := value(t, m, "minikms_kmip_operations_total", "operation", "Get", "status", "OperationFailed", "reason", "ItemNotFound"); v != 1 {
		t.Errorf("failed Gets = %v, want 1", v)
	}
	if v := value(t, m, "minikms_kmip_messages_total"); v < 4 {
		t.Errorf("messages = %v, want at least 4", v)
	}
	if v := value(t, m, "minikms_kmip_connections_active"); v != 1 {
		t.Errorf("active connections = %v, want 1", v)
	}
	if v := value(t, m, "minikms_store_request_duration_seconds", "method", "CreateObject"); v < 1 {
		t.Errorf("store CreateObject timed %v times", v)
	}
	if v := value(t, m, "minikms_store_request_duration_seconds", "method", "GetObject"); v < 1 {
		t.Errorf("store GetObject timed %v times (the failed Get reads the store)", v)
	}
	if v := value(t, m, "minikms_cache_hits_total", "cache", "tenant_key"); v < 1 {
		t.Errorf("tenant key cache hits = %v", v)
	}
	if v := value(t, m, "minikms_cache_misses_total", "cache", "object"); v < 1 {
		t.Errorf("object cache misses = %v (the failed Get misses)", v)
	}
	if v := value(t, m, "minikms_objects", "type", "SymmetricKey", "state", "Active"); v != 1 {
		t.Errorf("active symmetric keys = %v, want 1", v)
	}
	// The latency is real: the sum of Create's durations is positive.
	fams, _ := m.Registry().Gather()
	for _, f := range fams {
		if f.GetName() == "minikms_kmip_operation_duration_seconds" {
			for _, s := range f.GetMetric() {
				if s.GetHistogram().GetSampleSum() <= 0 {
					t.Errorf("%v: zero latency", s.GetLabel())
				}
			}
		}
	}
}

// wait polls until the series reaches want.
func wait(t *testing.T, m *metrics.Metrics, want float64, name string, labels ...string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		v := value(t, m, name, labels...)
		if v == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s%v = %v, want %v", name, labels, v, want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestHandshakeFailuresByCause: a client that does not speak TLS, one
// without a certificate, one whose certificate is revoked and one that
// stalls are each counted under their cause.
func TestHandshakeFailuresByCause(t *testing.T) {
	m := metrics.New(metrics.Options{})
	env := startLive(t, m)
	hf := "minikms_kmip_tls_handshake_failures_total"

	// Not TLS.
	nc, err := net.Dial("tcp", env.Addr)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprint(nc, "GET / HTTP/1.0\r\n\r\n")
	wait(t, m, 1, hf, "cause", metrics.CauseProtocol)
	nc.Close()

	// No client certificate.
	tlsDial := func(cfg *tls.Config) {
		c, err := tls.Dial("tcp", env.Addr, cfg)
		if err == nil {
			c.SetDeadline(time.Now().Add(2 * time.Second))
			c.Read(make([]byte, 1)) // TLS 1.3: the refusal arrives after the client's handshake
			c.Close()
		}
	}
	tlsDial(&tls.Config{RootCAs: env.Roots, ServerName: "127.0.0.1"})
	wait(t, m, 1, hf, "cause", metrics.CauseBadCert)

	// A revoked certificate.
	cfg := env.ClientTLS(t, "acme", "gone", engine.RoleApp)
	if err := env.Auth.RevokeIssued(context.Background(), "acme", cfg.Certificates[0].Leaf, 0); err != nil {
		t.Fatal(err)
	}
	if err := env.Refresh(); err != nil {
		t.Fatal(err)
	}
	tlsDial(cfg)
	wait(t, m, 1, hf, "cause", metrics.CauseRevoked)

	// A client that says nothing.
	nc, err = net.Dial("tcp", env.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	wait(t, m, 1, hf, "cause", metrics.CauseTimeout)
	wait(t, m, 0, hf, "cause", metrics.CauseOther)
	if v := value(t, m, "minikms_kmip_operations_total", "operation", "Get", "status", "Success", "reason", "none"); v != -1 {
		t.Errorf("operations counted without any request: %v", v)
	}
}

// TestCardinality: many tenants, members and objects add values, never
// series; no label value is a tenant, member or object identifier.
func TestCardinality(t *testing.T) {
	m := metrics.New(metrics.Options{ObjectsTTL: time.Nanosecond})
	env := startLive(t, m)
	var ids []string
	ids = append(ids, round(t, client(t, env, "tenant0", "member0")))
	before := series(t, m)
	for i := 1; i < 12; i++ {
		c := client(t, env, fmt.Sprintf("tenant%d", i), fmt.Sprintf("member%d", i))
		for range 3 {
			ids = append(ids, round(t, c))
		}
	}
	after := series(t, m)
	if !slices.Equal(before, after) {
		var added []string
		for _, s := range after {
			if !slices.Contains(before, s) {
				added = append(added, s)
			}
		}
		t.Errorf("11 more tenants added series: %v", added)
	}
	if v := value(t, m, "minikms_objects", "type", "SymmetricKey", "state", "Active"); v != float64(len(ids)) {
		t.Errorf("active symmetric keys = %v, want %d", v, len(ids))
	}
	for _, s := range after {
		for _, id := range ids {
			if strings.Contains(s, id) {
				t.Errorf("series %s names object %s", s, id)
			}
		}
		if tenantOrMember.MatchString(s) {
			t.Errorf("series %s names a tenant or member", s)
		}
	}
	if len(after) > 400 {
		t.Errorf("%d series", len(after))
	}
}

var tenantOrMember = regexp.MustCompile(`(tenant|member)[0-9]`)
