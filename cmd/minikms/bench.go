package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/minikms/minikms/certs"
	"github.com/minikms/minikms/internal/loadgen"
)

// runBench is `minikms bench`: a KMIP load generator against a running
// server (see internal/loadgen for what each operation sends).
func runBench(ctx context.Context, args []string) error {
	return bench(ctx, args, os.Stdout, os.Stderr)
}

// benchFlags are the command line of bench.
type benchFlags struct {
	addr, ca, cert, key       string
	dataDir, tenant, member   string
	serverName, op, version   string
	size, conns, pipeline     int
	tagLength                 int
	duration, warmup, timeout time.Duration
	json                      bool
	set                       map[string]bool // flags given explicitly
	fl                        *flag.FlagSet
}

func parseBenchFlags(args []string, stderr io.Writer) (*benchFlags, error) {
	b := &benchFlags{fl: flag.NewFlagSet("bench", flag.ContinueOnError)}
	fl := b.fl
	fl.SetOutput(stderr)
	fl.StringVar(&b.addr, "addr", "127.0.0.1:5696", "server KMIP address, host:port")
	fl.StringVar(&b.ca, "ca", "", "PEM file of the CA certificate(s) that verify the server")
	fl.StringVar(&b.cert, "cert", "", "PEM file of the client certificate (chain)")
	fl.StringVar(&b.key, "key", "", "PEM file of the client private key")
	fl.StringVar(&b.dataDir, "data-dir", "", "take --ca, --cert and --key from the dev bundle in this data directory")
	fl.StringVar(&b.tenant, "tenant", "acme", "tenant of the dev bundle member (with --data-dir)")
	fl.StringVar(&b.member, "member", "app", "member of the dev bundle (with --data-dir; --op certify takes admin unless given: Certify needs the admin role)")
	fl.StringVar(&b.serverName, "server-name", "", "name the server certificate must carry (default: the host of --addr)")
	fl.StringVar(&b.op, "op", "encrypt", "operation: encrypt|decrypt|get|create|certify|locate|mix|connect|connect-resume")
	fl.IntVar(&b.size, "size", loadgen.DefaultSize, "payload bytes of encrypt and decrypt")
	fl.IntVar(&b.conns, "conns", loadgen.DefaultConns, "concurrent connections")
	fl.IntVar(&b.tagLength, "tag-length", 0, "send this GCM Tag Length (12-16) with encrypt and decrypt; 0 omits it (PyKMIP needs 16)")
	fl.IntVar(&b.pipeline, "pipeline", 1, "requests in flight per connection (not for connect operations)")
	fl.DurationVar(&b.duration, "duration", loadgen.DefaultDuration, "measured window")
	fl.DurationVar(&b.warmup, "warmup", 2*time.Second, "load before the window, not counted")
	fl.DurationVar(&b.timeout, "timeout", loadgen.DefaultTimeout, "bound on one dial, handshake or request")
	fl.StringVar(&b.version, "version", "1.4", "KMIP protocol version of the requests (1.0 to 1.4)")
	fl.BoolVar(&b.json, "json", false, "print one JSON object instead of text (and no progress line)")
	if err := fl.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil, err
		}
		return nil, errUsage
	}
	if fl.NArg() > 0 {
		return nil, fmt.Errorf("%w: unexpected argument %q", errUsage, fl.Arg(0))
	}
	b.set = map[string]bool{}
	fl.Visit(func(f *flag.Flag) { b.set[f.Name] = true })
	return b, nil
}

// config turns the flags into a load configuration, naming the flag that
// is wrong.
func (b *benchFlags) config() (loadgen.Config, error) {
	var errs []string
	op, err := loadgen.ParseOp(b.op)
	if err != nil {
		errs = append(errs, "--op: "+err.Error())
	}
	version, err := loadgen.ParseVersion(b.version)
	if err != nil {
		errs = append(errs, "--version: "+err.Error())
	}
	switch {
	case b.size < 1 || b.size > loadgen.MaxSize:
		errs = append(errs, fmt.Sprintf("--size %d: want 1 to %d bytes", b.size, loadgen.MaxSize))
	case b.conns < 1 || b.conns > loadgen.MaxConns:
		errs = append(errs, fmt.Sprintf("--conns %d: want 1 to %d", b.conns, loadgen.MaxConns))
	case b.pipeline < 1 || b.pipeline > loadgen.MaxPipeline:
		errs = append(errs, fmt.Sprintf("--pipeline %d: want 1 to %d", b.pipeline, loadgen.MaxPipeline))
	case b.duration <= 0:
		errs = append(errs, "--duration must be positive")
	case b.warmup < 0:
		errs = append(errs, "--warmup must not be negative")
	case b.timeout <= 0:
		errs = append(errs, "--timeout must be positive")
	case b.tagLength != 0 && (b.tagLength < 12 || b.tagLength > 16):
		errs = append(errs, fmt.Sprintf("--tag-length %d: want 12 to 16 bytes, or 0 to omit it", b.tagLength))
	}
	if b.pipeline > 1 && (op == loadgen.OpConnect || op == loadgen.OpConnectResume) {
		errs = append(errs, "--pipeline: "+b.op+" opens a new connection per operation; pipelining does not apply")
	}
	if (b.set["tenant"] || b.set["member"]) && b.dataDir == "" {
		errs = append(errs, "--tenant and --member select a dev bundle member: give --data-dir too")
	}
	if op == loadgen.OpCertify && !b.set["member"] {
		b.member = "admin" // Certify is an administrator's operation
	}
	if len(errs) > 0 {
		return loadgen.Config{}, fmt.Errorf("%w: %s", errUsage, strings.Join(errs, "; "))
	}
	tlsCfg, err := b.tlsConfig()
	if err != nil {
		return loadgen.Config{}, err
	}
	return loadgen.Config{
		Addr: b.addr, TLS: tlsCfg, Op: op, Size: b.size, Conns: b.conns, Pipeline: b.pipeline,
		Duration: b.duration, Warmup: b.warmup, Version: version, Timeout: b.timeout, TagLength: b.tagLength,
	}, nil
}

// tlsConfig loads the client certificate and the server's trust anchor,
// from the flags or the dev bundle.
func (b *benchFlags) tlsConfig() (*tls.Config, error) {
	caFile, certFile, keyFile := b.ca, b.cert, b.key
	if b.dataDir != "" {
		bundle := certs.Bundle{Dir: filepath.Join(b.dataDir, "certs")}
		c, k := bundle.MemberFiles(b.tenant, b.member)
		if caFile == "" {
			caFile = bundle.CAFile()
		}
		if certFile == "" {
			certFile = c
		}
		if keyFile == "" {
			keyFile = k
		}
	}
	if caFile == "" || certFile == "" || keyFile == "" {
		return nil, fmt.Errorf("%w: give --ca, --cert and --key, or --data-dir of a dev server (with --tenant and --member)", errUsage)
	}
	host, _, err := net.SplitHostPort(b.addr)
	if err != nil {
		return nil, fmt.Errorf("%w: --addr %q: %v", errUsage, b.addr, err)
	}
	serverName := b.serverName
	if serverName == "" {
		serverName = host
	}
	pemCA, err := os.ReadFile(caFile)
	if err != nil {
		return nil, fmt.Errorf("server CA: %w", err)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(pemCA) {
		return nil, fmt.Errorf("server CA %s: no PEM certificate in the file", caFile)
	}
	cert, err := certs.LoadKeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("client certificate: %w", err)
	}
	return &tls.Config{RootCAs: roots, Certificates: []tls.Certificate{cert}, ServerName: serverName, MinVersion: tls.VersionTLS12}, nil
}

func bench(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	b, err := parseBenchFlags(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return nil // the flags were printed
	}
	if err != nil {
		return err
	}
	cfg, err := b.config()
	if err != nil {
		return err
	}
	live := !b.json && isTerminal(stderr)
	if live {
		cfg.Progress = func(p loadgen.Progress) {
			phase := "warm-up"
			if p.Measuring {
				phase = "measuring"
			}
			fmt.Fprintf(stderr, "\r%s %4.0fs  %10.1f ops/s  %d ops  %d errors ", phase, p.Elapsed.Seconds(), p.Rate, p.Ops, p.Errors)
		}
	}
	res, err := loadgen.Run(ctx, cfg)
	if live {
		fmt.Fprint(stderr, "\r\033[K") // erase the progress line
	}
	if err != nil {
		if !(ctx.Err() != nil && res.Interrupted && res.Duration > 0) {
			return fmt.Errorf("%s: %w", cfg.Op, err)
		}
		// Stopped during the measured window: report what was measured.
	}
	if b.json {
		out, err := json.Marshal(res)
		if err != nil {
			return err
		}
		_, err = fmt.Fprintln(stdout, string(out))
		return err
	}
	_, err = io.WriteString(stdout, benchText(cfg, res))
	return err
}

// benchText is the human report: the parameters, then the results.
func benchText(cfg loadgen.Config, res loadgen.Result) string {
	var sb strings.Builder
	ms := func(d time.Duration) string { return fmt.Sprintf("%.3f ms", float64(d)/float64(time.Millisecond)) }
	fmt.Fprintf(&sb, "minikms bench: %s against %s, KMIP %s over %s\n", res.Op, cfg.Addr, res.KMIPVersion, res.TLSVersion)
	fmt.Fprintf(&sb, "  connections   %d (pipeline %d)\n", res.Conns, res.Pipeline)
	if res.Size > 0 {
		fmt.Fprintf(&sb, "  payload       %d bytes, AES-256-GCM with a server IV\n", res.Size)
	}
	if res.Op == loadgen.OpCertify {
		fmt.Fprintf(&sb, "  request       PKCS#10 CSR of a new P-256 key each time (made before the clock starts)\n")
	}
	interrupted := ""
	if res.Interrupted {
		interrupted = " (interrupted)"
	}
	fmt.Fprintf(&sb, "  window        %.2f s after a %v warm-up%s\n", res.Duration.Seconds(), cfg.Warmup, interrupted)
	warm := ""
	if res.WarmupOps > 0 {
		warm = fmt.Sprintf(" (and %d ok during the warm-up)", res.WarmupOps)
	}
	fmt.Fprintf(&sb, "  operations    %d ok, %d errors%s\n", res.Ops, res.ErrorCount(), warm)
	fmt.Fprintf(&sb, "  throughput    %.1f ops/s\n", res.OpsPerSec)
	fmt.Fprintf(&sb, "  latency       p50 %s   p95 %s   p99 %s   max %s\n", ms(res.Latency.P50), ms(res.Latency.P95), ms(res.Latency.P99), ms(res.Latency.Max))
	if res.ClientCPU > 0 {
		fmt.Fprintf(&sb, "  client CPU    %.1f µs/op (%.2f s over the window, getrusage of this process)\n",
			float64(res.ClientCPUPerOp)/float64(time.Microsecond), res.ClientCPU.Seconds())
	}
	if res.Op == loadgen.OpConnectResume {
		fmt.Fprintf(&sb, "  resumed       %d of %d handshakes\n", res.Resumed, res.Ops)
	}
	kinds := make([]string, 0, len(res.Errors))
	for k := range res.Errors {
		kinds = append(kinds, k)
	}
	slices.Sort(kinds)
	for _, k := range kinds {
		fmt.Fprintf(&sb, "  error         %-36s %d  (e.g. %s)\n", k, res.Errors[k], res.ErrorSamples[k])
	}
	return sb.String()
}

// isTerminal reports whether w is a terminal (a character device).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}
