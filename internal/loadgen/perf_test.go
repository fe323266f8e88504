package loadgen

import (
	"context"
	"crypto/tls"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/minikms/minikms/internal/testkms"
	"github.com/ovh/kmip-go"
	"github.com/ovh/kmip-go/payloads"
)

// TestRunTagLength: with TagLength set (what PyKMIP requires for GCM), the
// encrypt and decrypt requests carry it and miniKMS answers them alike.
func TestRunTagLength(t *testing.T) {
	env := testkms.Start(t, testkms.Options{})
	for _, op := range []Op{OpEncrypt, OpDecrypt, OpMix} {
		t.Run(string(op), func(t *testing.T) {
			cfg := shortRun(t, env, op)
			cfg.TagLength = 16
			res, err := Run(context.Background(), cfg)
			if err != nil {
				t.Fatalf("run: %v (samples %v)", err, res.ErrorSamples)
			}
			checkResult(t, res)
		})
	}
	// A tag shorter than 16 bytes: the server answers shorter tags, which
	// the decrypt fixture then carries back; both sides must agree.
	cfg := shortRun(t, env, OpDecrypt)
	cfg.TagLength = 12
	res, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatalf("12-byte tags: %v (samples %v)", err, res.ErrorSamples)
	}
	checkResult(t, res)
	if len(encodeRequest(kmip.V1_4, encryptPayloadForTest(16))) == len(encodeRequest(kmip.V1_4, encryptPayloadForTest(0))) {
		t.Fatal("Tag Length is not encoded in the request")
	}
}

func TestConfigTagLengthBounds(t *testing.T) {
	for _, n := range []int{-1, 1, 11, 17, 1 << 20} {
		cfg := Config{Addr: "127.0.0.1:1", Op: OpEncrypt, TagLength: n, TLS: clientTLSForTest()}
		if _, err := cfg.withDefaults(); err == nil || !strings.Contains(err.Error(), "TagLength") {
			t.Fatalf("TagLength %d: %v, want a TagLength error", n, err)
		}
	}
	for _, n := range []int{0, 12, 16} {
		cfg := Config{Addr: "127.0.0.1:1", Op: OpEncrypt, TagLength: n, TLS: clientTLSForTest()}
		if _, err := cfg.withDefaults(); err != nil {
			t.Fatalf("TagLength %d: %v", n, err)
		}
	}
}

// TestProfileServer runs one load against an in-process server so that
// `go test -cpuprofile` / `-memprofile` profile the server under it (the
// load generator's own frames are in package loadgen and easy to set
// apart). Skipped unless MINIKMS_PROFILE_OP is set:
//
//	MINIKMS_PROFILE_OP=encrypt MINIKMS_PROFILE_CONNS=16 MINIKMS_PROFILE_SECONDS=20 \
//	  go test -count=1 -run 'TestProfileServer$' -cpuprofile /tmp/cpu.out -memprofile /tmp/mem.out ./internal/loadgen/
//	go tool pprof -top -nodecount 40 internal/loadgen.test /tmp/cpu.out
func TestProfileServer(t *testing.T) {
	name := os.Getenv("MINIKMS_PROFILE_OP")
	if name == "" {
		t.Skip("MINIKMS_PROFILE_OP is not set")
	}
	op, err := ParseOp(name)
	if err != nil {
		t.Fatal(err)
	}
	conns, secs := 16, 20
	if s := os.Getenv("MINIKMS_PROFILE_CONNS"); s != "" {
		if conns, err = strconv.Atoi(s); err != nil {
			t.Fatal(err)
		}
	}
	if s := os.Getenv("MINIKMS_PROFILE_SECONDS"); s != "" {
		if secs, err = strconv.Atoi(s); err != nil {
			t.Fatal(err)
		}
	}
	env := testkms.Start(t, testkms.Options{})
	cfg := shortRun(t, env, op)
	cfg.Conns, cfg.Duration, cfg.Warmup = conns, time.Duration(secs)*time.Second, time.Second
	res, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatalf("run: %v (samples %v)", err, res.ErrorSamples)
	}
	// In process, the "client CPU" of the result is the whole process:
	// the server and the load generator together.
	t.Logf("%s ×%d: %.0f ops/s, p50 %v, p99 %v, errors %d, process CPU %.1f µs/op (server and client)", op, conns, res.OpsPerSec,
		res.Latency.P50, res.Latency.P99, res.ErrorCount(), float64(res.ClientCPUPerOp)/float64(time.Microsecond))
}

func clientTLSForTest() *tls.Config {
	return &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{{1}}}}}
}

func encryptPayloadForTest(tagLength int32) *payloads.EncryptRequestPayload {
	return &payloads.EncryptRequestPayload{UniqueIdentifier: "x", CryptographicParameters: gcmParams(tagLength), Data: []byte("data")}
}
