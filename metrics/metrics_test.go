package metrics_test

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	okmip "github.com/ovh/kmip-go"
	dto "github.com/prometheus/client_model/go"

	"github.com/minikms/minikms/engine"
	"github.com/minikms/minikms/kmip"
	"github.com/minikms/minikms/metrics"
	"github.com/minikms/minikms/pki"
)

// value returns a counter's or gauge's value, or a histogram's sample
// count, of the series with exactly these labels (-1 when absent).
func value(t testing.TB, m *metrics.Metrics, name string, labels ...string) float64 {
	t.Helper()
	fams, err := m.Registry().Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	want := map[string]string{}
	for i := 0; i+1 < len(labels); i += 2 {
		want[labels[i]] = labels[i+1]
	}
	for _, f := range fams {
		if f.GetName() != name {
			continue
		}
	series:
		for _, s := range f.GetMetric() {
			if len(s.GetLabel()) != len(want) {
				continue
			}
			for _, l := range s.GetLabel() {
				if want[l.GetName()] != l.GetValue() {
					continue series
				}
			}
			switch f.GetType() {
			case dto.MetricType_COUNTER:
				return s.GetCounter().GetValue()
			case dto.MetricType_GAUGE:
				return s.GetGauge().GetValue()
			case dto.MetricType_HISTOGRAM:
				return float64(s.GetHistogram().GetSampleCount())
			}
		}
	}
	return -1
}

// series lists every series of the minikms_ metrics as name{labels}.
func series(t testing.TB, m *metrics.Metrics) []string {
	t.Helper()
	fams, err := m.Registry().Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	var out []string
	for _, f := range fams {
		if !strings.HasPrefix(f.GetName(), "minikms_") {
			continue
		}
		for _, s := range f.GetMetric() {
			var ls []string
			for _, l := range s.GetLabel() {
				ls = append(ls, l.GetName()+"="+l.GetValue())
			}
			out = append(out, f.GetName()+"{"+strings.Join(ls, ",")+"}")
		}
	}
	sort.Strings(out)
	return out
}

// ---- store decorator ----

type fakeStore struct {
	engine.Store
	err error
}

func (f *fakeStore) GetObject(context.Context, string, string) (*engine.StoredObject, error) {
	return nil, f.err
}
func (f *fakeStore) Close() error { return nil }

type fakeDeleter struct{ *fakeStore }

func (fakeDeleter) DeleteObject(context.Context, string, string, int64) error { return nil }

type fakeFeed struct{ *fakeStore }

func (fakeFeed) FollowChanges(context.Context, engine.ChangeHandler) (func(), error) {
	return func() {}, nil
}

type fakeAll struct {
	engine.RotationStore
	fakeDeleter
	fakeFeed
}

func (f fakeAll) GetObject(ctx context.Context, t, id string) (*engine.StoredObject, error) {
	return f.fakeDeleter.GetObject(ctx, t, id)
}

// TestStoreKeepsEngineInterfaces: the timed store has exactly the optional
// interfaces of the store it wraps, and those are every interface the
// engine asserts on its store (read from the engine's source, so a new
// one fails here until metrics.Store forwards it).
func TestStoreKeepsEngineInterfaces(t *testing.T) {
	known := map[string]bool{"ObjectDeleter": true, "ChangeFeed": true, "RotationStore": true}
	files, _ := filepath.Glob("../engine/*.go")
	re := regexp.MustCompile(`e\.store\.\((\w+)\)`)
	found := map[string]bool{}
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range re.FindAllStringSubmatch(string(b), -1) {
			found[m[1]] = true
			if !known[m[1]] {
				t.Errorf("%s asserts the engine's store is engine.%s, which metrics.Store does not forward", f, m[1])
			}
		}
	}
	if len(found) == 0 {
		t.Fatal("no store assertions found in the engine: the check reads the wrong files")
	}

	m := metrics.New(metrics.Options{})
	base := &fakeStore{}
	for name, s := range map[string]engine.Store{
		"plain": base, "deleter": fakeDeleter{base}, "feed": fakeFeed{base},
		"all": fakeAll{fakeDeleter: fakeDeleter{base}, fakeFeed: fakeFeed{base}},
	} {
		w := m.Store(s)
		for _, c := range []struct {
			iface string
			has   func(any) bool
		}{
			{"ObjectDeleter", func(v any) bool { _, ok := v.(engine.ObjectDeleter); return ok }},
			{"ChangeFeed", func(v any) bool { _, ok := v.(engine.ChangeFeed); return ok }},
			{"RotationStore", func(v any) bool { _, ok := v.(engine.RotationStore); return ok }},
		} {
			if c.has(s) != c.has(w) {
				t.Errorf("%s store: %s %v, timed %v", name, c.iface, c.has(s), c.has(w))
			}
		}
		if u, ok := w.(interface{ Unwrap() engine.Store }); !ok || u.Unwrap() != s {
			t.Errorf("%s store: Unwrap does not return it", name)
		}
	}
	// Timing and errors: not found is an answer, a failure is counted.
	w := m.Store(base)
	base.err = engine.ErrNotFound
	w.GetObject(context.Background(), "t", "x")
	base.err = errors.New("disk on fire")
	w.GetObject(context.Background(), "t", "x")
	if n := value(t, m, "minikms_store_request_duration_seconds", "method", "GetObject"); n != 2 {
		t.Errorf("GetObject timed %v times, want 2", n)
	}
	if n := value(t, m, "minikms_store_errors_total", "method", "GetObject"); n != 1 {
		t.Errorf("GetObject errors %v, want 1", n)
	}
}

// ---- handshake causes ----

type timeoutErr struct{}

func (timeoutErr) Error() string   { return "i/o timeout" }
func (timeoutErr) Timeout() bool   { return true }
func (timeoutErr) Temporary() bool { return true }

func TestHandshakeCause(t *testing.T) {
	for _, c := range []struct {
		err  error
		want string
	}{
		{&net.OpError{Op: "read", Err: timeoutErr{}}, metrics.CauseTimeout},
		{os.ErrDeadlineExceeded, metrics.CauseTimeout},
		{fmt.Errorf("%w: the certificate is revoked", pki.ErrNotAuthenticated), metrics.CauseRevoked},
		{fmt.Errorf("%w: the issuing tenant CA is revoked", pki.ErrNotAuthenticated), metrics.CauseRevoked},
		{fmt.Errorf("%w: unknown role", pki.ErrNotAuthenticated), metrics.CauseBadCert},
		{errors.New("tls: client didn't provide a certificate"), metrics.CauseBadCert},
		{&net.OpError{Op: "remote error", Err: errors.New("tls: bad certificate")}, metrics.CauseBadCert},
		{tls.RecordHeaderError{Msg: "first record does not look like a TLS handshake"}, metrics.CauseProtocol},
		{errors.New("tls: client offered only unsupported versions: [301]"), metrics.CauseProtocol},
		{errors.New("tls: no cipher suite supported by both client and server"), metrics.CauseProtocol},
		{errors.New("connection reset by peer"), metrics.CauseOther},
	} {
		if got := metrics.HandshakeCause(c.err); got != c.want {
			t.Errorf("HandshakeCause(%v) = %s, want %s", c.err, got, c.want)
		}
	}
}

// ---- KMIP observer ----

// TestKMIPLabelsBounded: operation codes a client invents, and reasons
// outside the enumeration, share one label value.
func TestKMIPLabelsBounded(t *testing.T) {
	m := metrics.New(metrics.Options{})
	k := m.KMIP()
	for op := range 5000 {
		k.BatchItem(okmip.Operation(0x10000+op*7919), okmip.ResultStatusOperationFailed, okmip.ResultReasonOperationNotSupported, time.Millisecond)
		k.BatchItem(okmip.Operation(op%0x40), okmip.ResultStatusOperationFailed, okmip.ResultReason(0x1000+op), -1)
	}
	k.BatchItem(okmip.OperationGet, okmip.ResultStatusSuccess, 0, time.Millisecond)
	k.ConnectionRefused(kmip.RefusalCause("made up"))
	ops := map[string]bool{}
	for _, s := range series(t, m) {
		if i := strings.Index(s, "operation="); i >= 0 {
			ops[strings.TrimSuffix(strings.SplitN(s[i+len("operation="):], ",", 2)[0], "}")] = true
		}
		if strings.Contains(s, "reason=0x") || strings.Contains(s, "operation=0x") || strings.Contains(s, "=,") || strings.HasSuffix(s, "=}") {
			t.Errorf("unbounded label value: %s", s)
		}
	}
	if len(ops) > 0x40 {
		t.Errorf("%d operation label values", len(ops))
	}
	if value(t, m, "minikms_kmip_operations_total", "operation", "unknown", "status", "OperationFailed", "reason", "OperationNotSupported") != 5000 {
		t.Error("invented operations are not counted as operation=unknown")
	}
	if value(t, m, "minikms_kmip_operations_total", "operation", "Get", "status", "Success", "reason", "none") != 1 {
		t.Error("a successful Get is not counted")
	}
	if n := value(t, m, "minikms_kmip_operation_duration_seconds", "operation", "Get"); n != 1 {
		t.Errorf("Get timed %v times, want 1: the items that did not run are not timed", n)
	}
	if value(t, m, "minikms_kmip_connections_refused_total", "cause", "unknown") != 1 {
		t.Error("an unknown refusal cause is not folded into unknown")
	}
}

// ---- objects ----

type counter struct {
	calls atomic.Int32
	fail  atomic.Bool
}

func (c *counter) CountObjects(context.Context) ([]engine.ObjectCount, error) {
	c.calls.Add(1)
	if c.fail.Load() {
		return nil, errors.New("store down")
	}
	return []engine.ObjectCount{
		{Type: engine.TypeSymmetricKey, State: engine.StateActive, Count: 3},
		{Type: engine.ObjectType(0x999), State: engine.StateActive, Count: 2},
		{Type: engine.ObjectType(0x998), State: engine.StateActive, Count: 1},
	}, nil
}

// TestObjectsCached: scrapes within the TTL share one count; a failing
// count keeps the last one served and is counted.
func TestObjectsCached(t *testing.T) {
	m := metrics.New(metrics.Options{ObjectsTTL: 200 * time.Millisecond})
	c := &counter{}
	m.WatchObjects(c)
	for range 10 {
		if v := value(t, m, "minikms_objects", "type", "SymmetricKey", "state", "Active"); v != 3 {
			t.Fatalf("SymmetricKey/Active = %v, want 3", v)
		}
	}
	if v := value(t, m, "minikms_objects", "type", "unknown", "state", "Active"); v != 3 {
		t.Fatalf("unknown types folded to %v, want 3", v)
	}
	if n := c.calls.Load(); n != 1 {
		t.Fatalf("11 scrapes within the TTL counted %d times, want 1", n)
	}
	c.fail.Store(true)
	time.Sleep(250 * time.Millisecond)
	if v := value(t, m, "minikms_objects", "type", "SymmetricKey", "state", "Active"); v != 3 {
		t.Fatalf("after a failed count SymmetricKey/Active = %v, want the last count 3", v)
	}
	if v := value(t, m, "minikms_objects_count_failures_total"); v != 1 || c.calls.Load() != 2 {
		t.Fatalf("failures %v after %d counts, want 1 after 2", v, c.calls.Load())
	}
}

// TestHandlerServesText: the handler answers in the text format with the
// build information and the runtime collectors.
func TestHandlerServesText(t *testing.T) {
	m := metrics.New(metrics.Options{Version: "1.2.3"})
	srv := httptest.NewServer(m.Handler())
	defer srv.Close()
	resp, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	body := string(b)
	for _, want := range []string{`minikms_build_info{commit="`, `version="1.2.3"`, "go_goroutines ", "process_cpu_seconds_total ", "minikms_kmip_connections_active 0"} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		t.Errorf("Content-Type %q", ct)
	}
}
