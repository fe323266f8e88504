package loadgen

import (
	"crypto/tls"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/ovh/kmip-go"
)

// Op is the operation a run repeats.
type Op string

// The operations. See the package documentation for what each request is.
const (
	OpEncrypt       Op = "encrypt"
	OpDecrypt       Op = "decrypt"
	OpGet           Op = "get"
	OpCreate        Op = "create"
	OpCertify       Op = "certify"
	OpLocate        Op = "locate"
	OpMix           Op = "mix"
	OpConnect       Op = "connect"
	OpConnectResume Op = "connect-resume"
)

// Ops lists every operation, in the order the CLI documents them.
var Ops = []Op{OpEncrypt, OpDecrypt, OpGet, OpCreate, OpCertify, OpLocate, OpMix, OpConnect, OpConnectResume}

// ParseOp returns the Op named s.
func ParseOp(s string) (Op, error) {
	for _, op := range Ops {
		if string(op) == s {
			return op, nil
		}
	}
	names := make([]string, len(Ops))
	for i, op := range Ops {
		names[i] = string(op)
	}
	return "", fmt.Errorf("unknown operation %q (want one of %s)", s, strings.Join(names, ", "))
}

// usesPayload reports whether the operation sends Size bytes of data.
func (op Op) usesPayload() bool { return op == OpEncrypt || op == OpDecrypt || op == OpMix }

// connects reports whether each operation is a new connection.
func (op Op) connects() bool { return op == OpConnect || op == OpConnectResume }

// ParseVersion reads a KMIP protocol version such as "1.4".
func ParseVersion(s string) (kmip.ProtocolVersion, error) {
	major, minor, ok := strings.Cut(s, ".")
	ma, err1 := strconv.ParseInt(major, 10, 32)
	mi, err2 := strconv.ParseInt(minor, 10, 32)
	if !ok || err1 != nil || err2 != nil {
		return kmip.ProtocolVersion{}, fmt.Errorf("KMIP version %q: want MAJOR.MINOR, e.g. 1.4", s)
	}
	return kmip.ProtocolVersion{ProtocolVersionMajor: int32(ma), ProtocolVersionMinor: int32(mi)}, nil
}

// Defaults and bounds of a Config.
const (
	DefaultSize     = 32
	DefaultConns    = 16
	DefaultDuration = 10 * time.Second
	DefaultTimeout  = 10 * time.Second
	// MaxSize bounds the payload: miniKMS refuses data over 1 MiB anyway.
	MaxSize = 1 << 20
	// MaxConns bounds concurrent connections (miniKMS admits 256 per
	// client certificate by default).
	MaxConns = 4096
	// MaxPipeline bounds requests in flight on one connection.
	MaxPipeline = 1024
)

// Config describes one run. Zero fields take the defaults above, except
// Warmup (zero means no warm-up) and Progress (nil means none).
type Config struct {
	// Addr is the server's KMIP address, host:port.
	Addr string
	// TLS is the client configuration: a client certificate, the roots
	// that verify the server and its name. Run works on a clone.
	TLS *tls.Config
	// Op is the operation to repeat.
	Op Op
	// Size is the plaintext size of encrypt and decrypt, in bytes.
	Size int
	// Conns is the number of concurrent connections (workers).
	Conns int
	// Pipeline is the number of requests in flight per connection; the
	// connect operations always have one.
	Pipeline int
	// Duration is the measured window.
	Duration time.Duration
	// Warmup runs the load before the measured window without counting it.
	Warmup time.Duration
	// Version is the KMIP protocol version of every request (default 1.4).
	Version kmip.ProtocolVersion
	// Timeout bounds one dial, handshake or request.
	Timeout time.Duration
	// TagLength, when not zero, is sent as the Tag Length of the GCM
	// parameters of encrypt and decrypt (PyKMIP requires it); 0 omits it.
	TagLength int
	// Progress, when set, is called about once per second during the run,
	// from Run's goroutine.
	Progress func(Progress)
}

// Progress is a live view of a run.
type Progress struct {
	// Measuring is false during the warm-up.
	Measuring bool
	// Elapsed is the time spent in the current phase.
	Elapsed time.Duration
	// Ops and Errors count the current phase so far.
	Ops, Errors int64
	// Rate is Ops per second over the phase so far.
	Rate float64
}

// withDefaults fills zero fields and validates the result.
func (c Config) withDefaults() (Config, error) {
	if c.Size == 0 {
		c.Size = DefaultSize
	}
	if c.Conns == 0 {
		c.Conns = DefaultConns
	}
	if c.Pipeline == 0 {
		c.Pipeline = 1
	}
	if c.Duration == 0 {
		c.Duration = DefaultDuration
	}
	if c.Timeout == 0 {
		c.Timeout = DefaultTimeout
	}
	if c.Version == (kmip.ProtocolVersion{}) {
		c.Version = kmip.V1_4
	}
	return c, c.validate()
}

func (c Config) validate() error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", field, fmt.Sprintf(format, args...)))
	}
	if c.Addr == "" {
		bad("Addr", "empty; want host:port")
	}
	if c.TLS == nil {
		bad("TLS", "no client TLS configuration")
	} else if len(c.TLS.Certificates) == 0 && c.TLS.GetClientCertificate == nil {
		bad("TLS", "no client certificate: the server authenticates clients only by certificate")
	}
	if _, err := ParseOp(string(c.Op)); err != nil {
		bad("Op", "%v", err)
	}
	if c.Size < 1 || c.Size > MaxSize {
		bad("Size", "%d bytes; want 1 to %d", c.Size, MaxSize)
	}
	if c.Conns < 1 || c.Conns > MaxConns {
		bad("Conns", "%d; want 1 to %d", c.Conns, MaxConns)
	}
	if c.Pipeline < 1 || c.Pipeline > MaxPipeline {
		bad("Pipeline", "%d; want 1 to %d", c.Pipeline, MaxPipeline)
	} else if c.Pipeline > 1 && c.Op.connects() {
		bad("Pipeline", "%s opens a connection per operation; pipelining does not apply", c.Op)
	}
	if c.Duration < 0 {
		bad("Duration", "negative")
	}
	if c.Warmup < 0 {
		bad("Warmup", "negative")
	}
	if c.Timeout < 0 {
		bad("Timeout", "negative")
	}
	if c.TagLength != 0 && (c.TagLength < 12 || c.TagLength > 16) {
		bad("TagLength", "%d bytes; want 12 to 16, or 0 to omit it", c.TagLength)
	}
	if c.Version.Major() != 1 || c.Version.Minor() < 0 || c.Version.Minor() > 4 {
		bad("Version", "KMIP %d.%d; want 1.0 to 1.4", c.Version.Major(), c.Version.Minor())
	} else if c.Op.usesPayload() && c.Version.Minor() < 2 {
		bad("Version", "%s needs KMIP 1.2 or later (Encrypt and Decrypt were added in 1.2)", c.Op)
	}
	return errors.Join(errs...)
}

// versionString prints a protocol version as "1.4".
func versionString(v kmip.ProtocolVersion) string {
	return strconv.Itoa(v.Major()) + "." + strconv.Itoa(v.Minor())
}
