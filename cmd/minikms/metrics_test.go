package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	okmip "github.com/ovh/kmip-go"
	"github.com/ovh/kmip-go/kmipclient"

	"github.com/minikms/minikms/engine"
)

// lockedBuffer collects the server's log.
type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// captureLog sends the server's log to a buffer until the test ends.
func captureLog(t *testing.T) *lockedBuffer {
	b := &lockedBuffer{}
	old := logOutput
	logOutput = b
	t.Cleanup(func() { logOutput = old })
	return b
}

// failingStore fails Ping and every read while down is set: the store is
// gone, as far as the engine can tell.
type failingStore struct {
	engine.Store
	down *atomic.Bool
}

var errStoreGone = errors.New("store unreachable (test)")

func (f failingStore) Ping(ctx context.Context) error {
	if f.down.Load() {
		return errStoreGone
	}
	return f.Store.Ping(ctx)
}

func (f failingStore) GetObject(ctx context.Context, tenant, id string) (*engine.StoredObject, error) {
	if f.down.Load() {
		return nil, errStoreGone
	}
	return f.Store.GetObject(ctx, tenant, id)
}

func httpGet(t *testing.T, c *http.Client, url string) (int, string) {
	t.Helper()
	resp, err := c.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// metricValue finds `name{labels} value` in a text exposition (labels in
// the order the exposition writes them: sorted by name).
func metricValue(body, series string) (float64, bool) {
	sc := bufio.NewScanner(strings.NewReader(body))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if v, ok := strings.CutPrefix(line, series+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			return f, err == nil
		}
	}
	return 0, false
}

// TestServeMetricsReadinessAndLogs tries what a new operator would: serve
// (JSON logs, debug level), a few KMIP operations, /metrics over HTTP and
// HTTPS showing them with their latencies, /readyz following the store,
// and request ids in the log.
func TestServeMetricsReadinessAndLogs(t *testing.T) {
	clearEnv(t)
	dir := t.TempDir()
	t.Setenv(envRootKey, strings.Repeat("5a", 32))
	t.Setenv(envDBURL, filepath.Join(dir, "minikms.db"))
	t.Setenv(envLogLevel, "debug")
	t.Setenv(envLogFormat, "")
	down := &atomic.Bool{}
	engineStoreHook = func(s engine.Store) engine.Store { return failingStore{Store: s, down: down} }
	t.Cleanup(func() { engineStoreHook = nil })
	logs := captureLog(t)

	s := startServe(t)
	mustRun(t, "tenant", "create", "acme")
	time.Sleep(1500 * time.Millisecond) // the server reloads tenant CAs every second
	c := kmipClientFor(t, s, dir, "acme", "admin")
	ctx := context.Background()
	cr, err := c.Create().AES(256, okmip.CryptographicUsageEncrypt|okmip.CryptographicUsageDecrypt).ExecContext(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Activate(cr.UniqueIdentifier).ExecContext(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Encrypt(cr.UniqueIdentifier).WithCryptographicParameters(gcm).Data([]byte("metrics test")).ExecContext(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Get("no-such-object").ExecContext(ctx); err == nil {
		t.Fatal("Get of a missing object succeeded")
	}

	plain := &http.Client{Timeout: 5 * time.Second}
	code, body := httpGet(t, plain, "http://"+s.httpAddr+"/metrics")
	if code != http.StatusOK {
		t.Fatalf("/metrics: %d %s", code, body)
	}
	for series, want := range map[string]float64{
		`minikms_kmip_operations_total{operation="Create",reason="none",status="Success"}`:              1,
		`minikms_kmip_operations_total{operation="Activate",reason="none",status="Success"}`:            1,
		`minikms_kmip_operations_total{operation="Encrypt",reason="none",status="Success"}`:             1,
		`minikms_kmip_operations_total{operation="Get",reason="ItemNotFound",status="OperationFailed"}`: 1,
		`minikms_kmip_operation_duration_seconds_count{operation="Create"}`:                             1,
		`minikms_kmip_operation_duration_seconds_count{operation="Encrypt"}`:                            1,
		`minikms_kmip_operation_duration_seconds_count{operation="Get"}`:                                1,
		`minikms_kmip_connections_active`:                                                               1,
		`minikms_objects{state="Active",type="SymmetricKey"}`:                                           1,
		`minikms_kmip_tls_handshake_failures_total{cause="bad_cert"}`:                                   0,
		`minikms_kmip_connections_refused_total{cause="max_per_client"}`:                                0,
		`minikms_cache_misses_total{cache="object"}`:                                                    -1, // any
		`minikms_store_request_duration_seconds_count{method="CreateObject"}`:                           -1,
		`minikms_audit_append_duration_seconds_count`:                                                   -1,
		`minikms_audit_append_batch_records_count`:                                                      -1,
	} {
		v, ok := metricValue(body, series)
		if !ok {
			t.Errorf("/metrics lacks %s", series)
		} else if want >= 0 && v != want {
			t.Errorf("%s = %v, want %v", series, v, want)
		} else if want < 0 && v <= 0 {
			t.Errorf("%s = %v, want > 0", series, v)
		}
	}
	if v, _ := metricValue(body, `minikms_kmip_operation_duration_seconds_sum{operation="Create"}`); v <= 0 {
		t.Errorf("Create took %v s", v)
	}
	if !regexp.MustCompile(`minikms_build_info\{commit="[^"]+",go_version="go[^"]+",version="dev"\} 1`).MatchString(body) {
		t.Error("/metrics lacks the build info")
	}
	if strings.Contains(body, cr.UniqueIdentifier) || strings.Contains(body, `"acme"`) {
		t.Error("/metrics names an object or a tenant")
	}
	// Over HTTPS too, without a client certificate.
	pool := x509.NewCertPool()
	pool.AddCert(storedRootCA(t))
	secure := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, ServerName: "127.0.0.1"}}}
	if code, body := httpGet(t, secure, "https://"+s.httpAddr+"/metrics"); code != http.StatusOK || !strings.Contains(body, "minikms_kmip_messages_total") {
		t.Fatalf("/metrics over HTTPS: %d", code)
	}

	// The store goes away: not ready, and operations fail; it returns:
	// ready again.
	down.Store(true)
	if code, body := s.ready(); code != http.StatusServiceUnavailable || !strings.Contains(body, "store") {
		t.Fatalf("/readyz with the store gone: %d %q", code, body)
	}
	if _, err := c.Get("another-missing-object").ExecContext(ctx); err == nil {
		t.Fatal("Get with the store gone succeeded")
	}
	_, body = httpGet(t, plain, "http://"+s.httpAddr+"/metrics")
	if v, _ := metricValue(body, `minikms_store_errors_total{method="GetObject"}`); v < 1 {
		t.Errorf("store errors not counted: %v", v)
	}
	if v, _ := metricValue(body, `minikms_kmip_operations_total{operation="Get",reason="GeneralFailure",status="OperationFailed"}`); v != 1 {
		t.Errorf("the Get failed by the store is not counted as General Failure: %v", v)
	}
	down.Store(false)
	if code, body := s.ready(); code != http.StatusOK {
		t.Fatalf("/readyz with the store back: %d %q", code, body)
	}

	if err := s.stop(); err != nil {
		t.Fatal(err)
	}
	// JSON logs (serve's default); every line about a KMIP message has
	// its request id.
	opLines := 0
	for _, line := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("serve logs a line that is not JSON: %q", line)
		}
		if m["msg"] == "kmip operation" {
			opLines++
			if id, _ := m["request_id"].(string); len(id) != 16 {
				t.Errorf("no request id: %s", line)
			}
		}
	}
	if opLines < 5 {
		t.Errorf("%d operation lines in the debug log", opLines)
	}
}

// TestLogSettings: MINIKMS_LOG_FORMAT and MINIKMS_LOG_LEVEL are checked;
// serve refuses invalid ones and names the setting.
func TestLogSettings(t *testing.T) {
	for _, c := range []struct {
		format, level string
		def, json     bool
		bad           string
	}{
		{"", "", true, true, ""}, {"", "", false, false, ""}, {"text", "", true, false, ""}, {"JSON", "warn", false, true, ""},
		{"yaml", "", true, true, envLogFormat}, {"", "verbose", true, true, envLogLevel},
	} {
		t.Setenv(envLogFormat, c.format)
		t.Setenv(envLogLevel, c.level)
		json, _, err := logSettings(c.def)
		if c.bad != "" {
			if err == nil || !strings.Contains(err.Error(), c.bad) {
				t.Errorf("%q/%q: error %v, want one naming %s", c.format, c.level, err, c.bad)
			}
			continue
		}
		if err != nil || json != c.json {
			t.Errorf("%q/%q default json %v: json %v, %v", c.format, c.level, c.def, json, err)
		}
	}
	t.Setenv(envLogFormat, "xml")
	if err := runServe(t.Context(), nil); err == nil || !strings.Contains(err.Error(), envLogFormat) {
		t.Fatalf("serve with MINIKMS_LOG_FORMAT=xml: %v", err)
	}
}

// TestReadinessFollowsPostgres stops and restarts a private PostgreSQL
// server under a running `minikms serve`: /readyz turns 503 while the
// database is gone and 200 once it is back, and operations resume.
func TestReadinessFollowsPostgres(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("scripts/pg.sh runs the private server as the postgres user: needs root")
	}
	bins, _ := filepath.Glob("/usr/lib/postgresql/*/bin/pg_ctl")
	if len(bins) == 0 {
		t.Skip("no PostgreSQL binaries under /usr/lib/postgresql")
	}
	pgCtl := bins[len(bins)-1]
	dir, err := os.MkdirTemp("", "mkpg")
	if err != nil {
		t.Fatal(err)
	}
	os.Remove(dir) // pg.sh creates it
	out, err := exec.Command("../../scripts/pg.sh", "start", dir).Output()
	if err != nil {
		t.Fatalf("pg.sh start: %v", err)
	}
	t.Cleanup(func() { exec.Command("../../scripts/pg.sh", "stop", dir).Run() })
	pgURL := strings.TrimSpace(string(out))
	port := pgURL[strings.LastIndex(pgURL, ":")+1 : strings.LastIndex(pgURL, "/")]
	pg := func(args ...string) {
		t.Helper()
		if out, err := exec.Command("runuser", append([]string{"-u", "postgres", "--", pgCtl, "-D", filepath.Join(dir, "data")}, args...)...).CombinedOutput(); err != nil {
			t.Fatalf("pg_ctl %v: %v\n%s", args, err, out)
		}
	}

	clearEnv(t)
	t.Setenv(envRootKey, strings.Repeat("5b", 32))
	t.Setenv(envDBURL, pgURL)
	captureLog(t)
	s := startServe(t)
	mustRun(t, "tenant", "create", "acme")
	time.Sleep(1500 * time.Millisecond)
	out2 := t.TempDir()
	mustRun(t, "member", "issue", "--tenant", "acme", "--member", "admin", "--role", "admin", "--out", out2)
	pair, err := tls.LoadX509KeyPair(filepath.Join(out2, "admin.crt"), filepath.Join(out2, "admin.key"))
	if err != nil {
		t.Fatal(err)
	}
	// The server certificate is not what this test checks (and the root
	// CA is in PostgreSQL, which storedRootCA does not read).
	c, err := kmipclient.Dial(s.kmipAddr, kmipclient.WithTlsConfig(&tls.Config{Certificates: []tls.Certificate{pair}, InsecureSkipVerify: true}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	ctx := context.Background()
	if _, err := c.Create().AES(128, okmip.CryptographicUsageEncrypt).ExecContext(ctx); err != nil {
		t.Fatal(err)
	}

	// The objects gauge counts in PostgreSQL too.
	_, body := httpGet(t, &http.Client{Timeout: 5 * time.Second}, "http://"+s.httpAddr+"/metrics")
	if v, ok := metricValue(body, `minikms_objects{state="PreActive",type="SymmetricKey"}`); !ok || v != 1 {
		t.Errorf("pre-active symmetric keys in PostgreSQL: %v %v, want 1", v, ok)
	}

	waitReady := func(want int, within time.Duration) {
		t.Helper()
		deadline := time.Now().Add(within)
		for {
			code, body := s.ready()
			if code == want {
				t.Logf("/readyz %d %s", code, strings.TrimSpace(body))
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("/readyz %d %q after %v, want %d", code, body, within, want)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	pg("-m", "fast", "-w", "-t", "60", "stop")
	waitReady(http.StatusServiceUnavailable, 15*time.Second)
	pg("-l", filepath.Join(dir, "server.log"), "-o", "-p "+port, "-w", "-t", "60", "start")
	waitReady(http.StatusOK, 30*time.Second)
	deadline := time.Now().Add(15 * time.Second)
	for {
		_, err := c.Create().AES(128, okmip.CryptographicUsageEncrypt).ExecContext(ctx)
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("Create after PostgreSQL came back: %v", err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
