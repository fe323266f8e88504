package loadgen

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"errors"
	"math/big"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/minikms/minikms/engine"
	"github.com/minikms/minikms/internal/testkms"
	"github.com/ovh/kmip-go"
	"github.com/ovh/kmip-go/payloads"
	"github.com/ovh/kmip-go/ttlv"
)

// TestMain fails the package when a run leaves a goroutine behind.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// shortRun is a 300 ms run with 4 connections against env as acme/app
// (acme/admin for certify, an administrator's operation).
func shortRun(t *testing.T, env *testkms.Env, op Op) Config {
	t.Helper()
	member, role := "app", engine.RoleApp
	if op == OpCertify {
		member, role = "admin", engine.RoleAdmin
	}
	return Config{Addr: env.Addr, TLS: env.ClientTLS(t, "acme", member, role), Op: op,
		Conns: 4, Duration: 300 * time.Millisecond, Warmup: 50 * time.Millisecond, Timeout: 5 * time.Second}
}

// checkResult asserts a clean run: operations, no error, ordered
// percentiles, a stable JSON form.
func checkResult(t *testing.T, res Result) {
	t.Helper()
	if res.Ops <= 0 || res.OpsPerSec <= 0 {
		t.Fatalf("%d ops (%.1f/s), want some", res.Ops, res.OpsPerSec)
	}
	if n := res.ErrorCount(); n != 0 {
		t.Fatalf("%d errors: %v (samples %v)", n, res.Errors, res.ErrorSamples)
	}
	l := res.Latency
	if !(0 < l.P50 && l.P50 <= l.P95 && l.P95 <= l.P99 && l.P99 <= l.Max) {
		t.Fatalf("latency percentiles out of order: p50 %v p95 %v p99 %v max %v", l.P50, l.P95, l.P99, l.Max)
	}
	if res.Duration < 250*time.Millisecond || res.Duration > 2*time.Second {
		t.Fatalf("measured window %v, want about 300ms", res.Duration)
	}
	if res.ClientCPUPerOp <= 0 {
		t.Fatalf("client CPU per op %v", res.ClientCPUPerOp)
	}
	raw, err := json.Marshal(res)
	if err != nil {
		t.Fatal(err)
	}
	var back map[string]any
	if err := json.Unmarshal(raw, &back); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"op", "conns", "size", "duration_s", "ops", "ops_per_s", "errors", "latency_ms", "client_cpu_us_per_op", "kmip_version"} {
		if _, ok := back[k]; !ok {
			t.Fatalf("JSON lacks %q: %s", k, raw)
		}
	}
}

func TestRunEveryOperation(t *testing.T) {
	env := testkms.Start(t, testkms.Options{})
	for _, op := range Ops {
		t.Run(string(op), func(t *testing.T) {
			res, err := Run(context.Background(), shortRun(t, env, op))
			if err != nil {
				t.Fatalf("run: %v (samples %v)", err, res.ErrorSamples)
			}
			checkResult(t, res)
			if res.Op != op || res.Conns != 4 || res.KMIPVersion != "1.4" {
				t.Fatalf("result describes %s/%d/%s", res.Op, res.Conns, res.KMIPVersion)
			}
			switch op {
			case OpConnectResume:
				if res.Resumed == 0 {
					t.Fatal("no handshake resumed a session")
				}
			case OpConnect:
				if res.Resumed != 0 {
					t.Fatalf("%d handshakes resumed without a session cache", res.Resumed)
				}
			}
		})
	}
}

func TestRunVariants(t *testing.T) {
	env := testkms.Start(t, testkms.Options{})
	cases := []struct {
		name   string
		adjust func(*Config)
	}{
		{"pipelined encrypt", func(c *Config) { c.Op, c.Pipeline = OpEncrypt, 4 }},
		{"pipelined mix", func(c *Config) { c.Op, c.Pipeline = OpMix, 3 }},
		{"decrypt 4 KiB in KMIP 1.2 (tag inline)", func(c *Config) { c.Op, c.Size, c.Version = OpDecrypt, 4096, kmip.V1_2 }},
		{"encrypt in KMIP 1.3", func(c *Config) { c.Op, c.Version = OpEncrypt, kmip.V1_3 }},
		{"locate in KMIP 1.0", func(c *Config) { c.Op, c.Version = OpLocate, kmip.V1_0 }},
		{"no warm-up, one connection", func(c *Config) { c.Op, c.Warmup, c.Conns = OpGet, 0, 1 }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg := shortRun(t, env, "")
			c.adjust(&cfg)
			res, err := Run(context.Background(), cfg)
			if err != nil {
				t.Fatalf("run: %v (samples %v)", err, res.ErrorSamples)
			}
			checkResult(t, res)
		})
	}
}

// selfSigned is a client certificate no tenant CA issued.
func selfSigned(t *testing.T) tls.Certificate {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "intruder"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth, x509.ExtKeyUsageServerAuth},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, _ := x509.ParseCertificate(der)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}
}

func TestRunFailsFastWhenMisconfigured(t *testing.T) {
	env := testkms.Start(t, testkms.Options{})
	closed, _ := net.Listen("tcp", "127.0.0.1:0")
	downAddr := closed.Addr().String()
	closed.Close()
	cases := []struct {
		name   string
		adjust func(*Config)
		want   []string
	}{
		{"wrong client certificate", func(c *Config) { c.TLS.Certificates = []tls.Certificate{selfSigned(t)} },
			[]string{"first request to " + env.Addr, "tls"}},
		{"untrusted server", func(c *Config) { c.TLS.RootCAs = x509.NewCertPool() },
			[]string{"connecting to " + env.Addr, "certificate"}},
		{"wrong server name", func(c *Config) { c.TLS.ServerName = "kms.example" },
			[]string{"connecting to " + env.Addr, "not kms.example"}},
		{"server down", func(c *Config) { c.Addr = downAddr },
			[]string{"connecting to " + downAddr, "refused"}},
		{"role may not create", func(c *Config) {
			c.TLS.Certificates = []tls.Certificate{env.ClientCertificate(t, "acme", "auditor", engine.RoleAuditor)}
		}, []string{"setup: creating the AES-256 key", "PermissionDenied"}},
		{"no certificate", func(c *Config) { c.TLS.Certificates = nil }, []string{"no client certificate"}},
		{"encrypt in KMIP 1.1", func(c *Config) { c.Version = kmip.V1_1 }, []string{"KMIP 1.2 or later"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg := shortRun(t, env, OpEncrypt)
			cfg.TLS = cfg.TLS.Clone()
			cfg.Duration = 10 * time.Second // a failure must not wait for it
			c.adjust(&cfg)
			start := time.Now()
			_, err := Run(context.Background(), cfg)
			if err == nil {
				t.Fatal("the run succeeded")
			}
			t.Logf("error: %v", err)
			if took := time.Since(start); took > 5*time.Second {
				t.Fatalf("failed only after %v", took)
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Fatalf("error %q does not say %q", err, w)
				}
			}
		})
	}
}

// fakeServer is a KMIP server that answers the first request (the setup's
// Query) and then answers every request with answer.
type fakeServer struct {
	addr     string
	roots    *x509.CertPool
	requests atomic.Int64
}

func startFake(t *testing.T, answer func(n int64) []byte) *fakeServer {
	t.Helper()
	cert := selfSigned(t)
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{cert}, ClientAuth: tls.RequireAnyClientCert})
	if err != nil {
		t.Fatal(err)
	}
	f := &fakeServer{addr: ln.Addr().String(), roots: x509.NewCertPool()}
	f.roots.AddCert(cert.Leaf)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			wg.Go(func() {
				defer c.Close()
				var buf []byte
				for {
					var err error
					if buf, err = readRequest(c, buf); err != nil {
						return
					}
					n := f.requests.Add(1)
					out := queryAnswer()
					if n > 1 {
						out = answer(n)
					}
					if out == nil {
						return
					}
					if _, err := c.Write(out); err != nil {
						return
					}
				}
			})
		}
	})
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return f
}

// readRequest reads one framed request (the framing is the same both ways).
func readRequest(c net.Conn, buf []byte) ([]byte, error) {
	if len(buf) < 8 {
		buf = make([]byte, 64<<10)
	}
	if _, err := readFull(c, buf[:8]); err != nil {
		return buf, err
	}
	n := int(buf[4])<<24 | int(buf[5])<<16 | int(buf[6])<<8 | int(buf[7])
	if n > len(buf)-8 {
		return buf, errors.New("request too large for the fake server")
	}
	_, err := readFull(c, buf[8:8+n])
	return buf, err
}

func readFull(c net.Conn, b []byte) (int, error) {
	n := 0
	for n < len(b) {
		m, err := c.Read(b[n:])
		n += m
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

func queryAnswer() []byte {
	return response(kmip.ResponseBatchItem{Operation: kmip.OperationQuery, ResultStatus: kmip.ResultStatusSuccess,
		ResponsePayload: &payloads.QueryResponsePayload{VendorIdentification: "fake"}})
}

// TestRunStopsWhenEveryRequestFails: setup passes, then every request of
// the first second fails; the run stops then, naming the error kinds.
func TestRunStopsWhenEveryRequestFails(t *testing.T) {
	cases := []struct {
		name   string
		answer func(n int64) []byte
		kind   string
	}{
		{"KMIP failures", func(int64) []byte {
			return response(failure(kmip.OperationQuery, kmip.ResultReasonPermissionDenied, "not today"))
		}, "kmip: PermissionDenied"},
		{"garbage", func(int64) []byte { return []byte("HTTP/1.1 400 Bad Request\r\n\r\n....") }, "protocol: bad framing"},
		{"hang up", func(int64) []byte { return nil }, "network: connection closed"},
		{"answers for another operation", func(int64) []byte {
			return response(kmip.ResponseBatchItem{Operation: kmip.OperationDiscoverVersions, ResultStatus: kmip.ResultStatusSuccess,
				ResponsePayload: &payloads.DiscoverVersionsResponsePayload{}})
		}, "protocol: wrong operation"},
	}
	for _, c := range cases {
		for _, op := range []Op{OpConnect, OpConnectResume} {
			t.Run(c.name+"/"+string(op), func(t *testing.T) {
				f := startFake(t, c.answer)
				cfg := Config{Addr: f.addr, TLS: &tls.Config{RootCAs: f.roots, ServerName: "127.0.0.1", Certificates: []tls.Certificate{selfSigned(t)}},
					Op: op, Conns: 2, Duration: 10 * time.Second, Warmup: 0, Timeout: 2 * time.Second}
				start := time.Now()
				res, err := Run(context.Background(), cfg)
				if !errors.Is(err, ErrAllFailed) {
					t.Fatalf("got %v, want ErrAllFailed", err)
				}
				t.Logf("error: %v", err)
				if took := time.Since(start); took > 3*time.Second {
					t.Fatalf("stopped after %v, want about a second", took)
				}
				if !strings.Contains(err.Error(), c.kind) || res.Errors[c.kind] == 0 {
					t.Fatalf("error %q / counts %v do not name %q", err, res.Errors, c.kind)
				}
			})
		}
	}
}

func TestRunInterrupted(t *testing.T) {
	env := testkms.Start(t, testkms.Options{})
	cfg := shortRun(t, env, OpGet)
	cfg.Warmup, cfg.Duration = 0, time.Minute
	ctx, cancel := context.WithTimeout(context.Background(), 400*time.Millisecond)
	defer cancel()
	res, err := Run(ctx, cfg)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("got %v, want the context's error", err)
	}
	if !res.Interrupted || res.Ops == 0 || res.Duration <= 0 || res.Duration > 2*time.Second {
		t.Fatalf("partial result: interrupted %v, %d ops in %v", res.Interrupted, res.Ops, res.Duration)
	}
}

func TestProgressIsReported(t *testing.T) {
	env := testkms.Start(t, testkms.Options{})
	cfg := shortRun(t, env, OpGet)
	cfg.Warmup, cfg.Duration = time.Second+100*time.Millisecond, 1100*time.Millisecond
	var got []Progress
	cfg.Progress = func(p Progress) { got = append(got, p) }
	if _, err := Run(context.Background(), cfg); err != nil {
		t.Fatal(err)
	}
	if len(got) < 2 || got[0].Measuring || !got[len(got)-1].Measuring || got[len(got)-1].Ops == 0 || got[len(got)-1].Rate <= 0 {
		t.Fatalf("progress reports %+v, want a warm-up one then a measuring one with operations", got)
	}
}

// The codec's view of a request the tool sends: the bytes decode to the
// operation and carry no Time Stamp (so they are encoded once).
func TestRequestsAreStable(t *testing.T) {
	fx := &fixture{keyID: "42", plaintext: make([]byte, 32), version: kmip.V1_4, payloadSize: 32,
		sealed: []sealedPlaintext{{data: make([]byte, 32), iv: make([]byte, 12), tag: make([]byte, 16)}},
		names:  []string{"a", "b", "c", "d"}, located: []string{"1", "2", "3", "4"}}
	counts := map[kmip.Operation]int{}
	for _, q := range fx.schedules(OpMix, 3)[1] {
		counts[q.op]++
		var msg kmip.RequestMessage
		if err := ttlv.UnmarshalTTLV(q.raw, &msg); err != nil {
			t.Fatalf("%s request does not decode: %v", enumName(q.op), err)
		}
		if msg.Header.TimeStamp != nil || len(msg.BatchItem) != 1 || msg.BatchItem[0].Operation != q.op {
			t.Fatalf("%s request: %+v", enumName(q.op), msg.Header)
		}
	}
	want := map[kmip.Operation]int{kmip.OperationEncrypt: 14, kmip.OperationDecrypt: 4, kmip.OperationGet: 1, kmip.OperationLocate: 1}
	for op, n := range want {
		if counts[op] != n {
			t.Fatalf("mix schedule %v, want %v", counts, want)
		}
	}
}
