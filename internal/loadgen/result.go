package loadgen

import (
	"encoding/json"
	"math"
	"time"
)

// Result is what a run measured. Every count covers the measured window
// only (the warm-up is not counted).
type Result struct {
	Op       Op
	Conns    int
	Pipeline int
	// Size is the payload size, 0 for operations that send none.
	Size        int
	KMIPVersion string // "1.4"
	TLSVersion  string // of the setup connection, e.g. "TLS 1.3"

	// Duration is the measured window.
	Duration time.Duration
	// Ops counts the operations that succeeded and were checked.
	Ops       int64
	OpsPerSec float64
	// WarmupOps counts the successful operations before the window. With
	// Ops it is what the server served, so server CPU read before and
	// after a run can be divided by Ops+WarmupOps.
	WarmupOps int64
	// Errors counts failures by kind: "kmip: <Result Reason>",
	// "protocol: <what>", "tls: <alert>", "network: <what>".
	Errors map[string]int64
	// ErrorSamples holds the first message of each kind seen (warm-up
	// included), to explain the counts.
	ErrorSamples map[string]string
	// Latency of the successful operations.
	Latency Latency
	// ClientCPU is this process's CPU time (user + system, getrusage)
	// over the window; ClientCPUPerOp divides it by Ops. Zero when the
	// platform cannot tell. When the server runs in the same process (the
	// tests), it includes the server's work.
	ClientCPU      time.Duration
	ClientCPUPerOp time.Duration
	// Resumed counts the measured connections of connect-resume whose TLS
	// handshake resumed a session.
	Resumed int64
	// Interrupted is set when the run was stopped before the window ended.
	Interrupted bool
}

// Latency holds percentiles (nearest rank, within 0.4%) and the exact
// maximum.
type Latency struct {
	P50, P95, P99, Max time.Duration
}

// ErrorCount is the total of Errors.
func (r Result) ErrorCount() int64 {
	var n int64
	for _, c := range r.Errors {
		n += c
	}
	return n
}

// resultJSON is the stable JSON form of a Result. Scripts rely on these
// names; add fields, never rename or remove them.
type resultJSON struct {
	Op               string           `json:"op"`
	Conns            int              `json:"conns"`
	Size             int              `json:"size"`
	DurationS        float64          `json:"duration_s"`
	Ops              int64            `json:"ops"`
	OpsPerS          float64          `json:"ops_per_s"`
	Errors           map[string]int64 `json:"errors"`
	LatencyMS        latencyJSON      `json:"latency_ms"`
	ClientCPUUsPerOp float64          `json:"client_cpu_us_per_op"`
	KMIPVersion      string           `json:"kmip_version"`
	Pipeline         int              `json:"pipeline"`
	TLSVersion       string           `json:"tls_version"`
	Resumed          int64            `json:"resumed"`
	Interrupted      bool             `json:"interrupted"`
	WarmupOps        int64            `json:"warmup_ops"`
}

type latencyJSON struct {
	P50 float64 `json:"p50"`
	P95 float64 `json:"p95"`
	P99 float64 `json:"p99"`
	Max float64 `json:"max"`
}

// MarshalJSON writes the stable object {op, conns, size, duration_s, ops,
// ops_per_s, errors, latency_ms{p50,p95,p99,max}, client_cpu_us_per_op,
// kmip_version, pipeline, tls_version, resumed, interrupted, warmup_ops}.
func (r Result) MarshalJSON() ([]byte, error) {
	errs := r.Errors
	if errs == nil {
		errs = map[string]int64{}
	}
	ms := func(d time.Duration) float64 { return round(float64(d)/float64(time.Millisecond), 3) }
	return json.Marshal(resultJSON{
		Op: string(r.Op), Conns: r.Conns, Size: r.Size,
		DurationS: round(r.Duration.Seconds(), 3), Ops: r.Ops, OpsPerS: round(r.OpsPerSec, 1),
		Errors:           errs,
		LatencyMS:        latencyJSON{P50: ms(r.Latency.P50), P95: ms(r.Latency.P95), P99: ms(r.Latency.P99), Max: ms(r.Latency.Max)},
		ClientCPUUsPerOp: round(float64(r.ClientCPUPerOp)/float64(time.Microsecond), 1),
		KMIPVersion:      r.KMIPVersion, Pipeline: r.Pipeline, TLSVersion: r.TLSVersion,
		Resumed: r.Resumed, Interrupted: r.Interrupted, WarmupOps: r.WarmupOps,
	})
}

func round(v float64, decimals int) float64 {
	p := math.Pow(10, float64(decimals))
	return math.Round(v*p) / p
}
