package oasis

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/ovh/kmip-go"
	"github.com/ovh/kmip-go/ttlv"
)

// RoundTripper carries one KMIP request to a server. RoundTrip sends a
// binary TTLV RequestMessage and returns the binary TTLV ResponseMessage.
// A vector runs all its requests, in order, through one RoundTripper, which
// must therefore keep one connection (one client identity) for the run.
type RoundTripper interface {
	RoundTrip(ctx context.Context, req []byte) ([]byte, error)
}

// Options tune a run. The zero value is what Run uses.
type Options struct {
	// Now is the clock; nil means time.Now. $NOW in requests is the value
	// of Now at the start of the run, truncated to the second, so that
	// every $NOW±n of one vector refers to the same instant.
	Now func() time.Time
	// ClockSkew is how far the server's clock may be from ours when an
	// expected value is $NOW±n; zero means DefaultClockSkew.
	ClockSkew time.Duration
	// RepeatTimeout bounds how long a request marked "[REPEAT] until" is
	// resent while its response does not match; zero means
	// DefaultRepeatTimeout, a negative value sends it once.
	RepeatTimeout time.Duration
	// RepeatInterval is the pause between two sends of such a request;
	// zero means DefaultRepeatInterval.
	RepeatInterval time.Duration
	// Session, when set, carries what the server created from one vector
	// to the next: files of a sequence (storage array or tape library
	// -1, -2, -3) read in a later file the objects an earlier one made,
	// and a key the server generated there stays "generated" here.
	Session *Session
}

// Session is the knowledge shared by the vectors of one sequence.
type Session struct {
	objects map[string]*objectInfo
}

// NewSession returns an empty session.
func NewSession() *Session { return &Session{objects: map[string]*objectInfo{}} }

// Defaults for the repetition of "[REPEAT] until" requests. The vectors
// that use it wait for a date set 120 seconds after the start of the run.
const (
	DefaultRepeatTimeout  = 3 * time.Minute
	DefaultRepeatInterval = 2 * time.Second
)

// DefaultClockSkew is the clock difference accepted between the harness and
// the server when comparing $NOW-relative dates.
const DefaultClockSkew = 5 * time.Minute

func (o Options) now() time.Time {
	if o.Now != nil {
		return o.Now()
	}
	return time.Now()
}

func (o Options) repeatTimeout() time.Duration {
	switch {
	case o.RepeatTimeout < 0:
		return 0
	case o.RepeatTimeout == 0:
		return DefaultRepeatTimeout
	}
	return o.RepeatTimeout
}

func (o Options) repeatInterval() time.Duration {
	if o.RepeatInterval > 0 {
		return o.RepeatInterval
	}
	return DefaultRepeatInterval
}

func (o Options) skew() time.Duration {
	if o.ClockSkew > 0 {
		return o.ClockSkew
	}
	return DefaultClockSkew
}

// Run replays the vector against rt with default options. See RunWith.
func (v *Vector) Run(ctx context.Context, rt RoundTripper) Result {
	return v.RunWith(ctx, rt, Options{})
}

// RunWith replays the vector's requests in order through rt and compares
// each response with the expected one, under the tolerances documented in
// the package comment. It stops at the first failing step, because later
// steps depend on the state the earlier ones created.
func (v *Vector) RunWith(ctx context.Context, rt RoundTripper, opts Options) Result {
	start := opts.now()
	res := Result{Version: v.Version, File: v.File, Profile: v.Profile, Total: len(v.Pairs), FirstFail: -1}
	st := newRunState(start.Truncate(time.Second), opts)
	for i, p := range v.Pairs {
		step := st.runRepeated(ctx, rt, i, p)
		res.Steps = append(res.Steps, step)
		if !step.Passed {
			res.FirstFail = i
			break
		}
	}
	if len(v.Pairs) == 0 {
		res.Err = errors.New("vector has no request/response pair")
	}
	res.Duration = opts.now().Sub(start)
	return res
}

// runState is what a run remembers from step to step.
type runState struct {
	opts Options
	now  time.Time // $NOW of the run
	// bindings maps a placeholder name ("UNIQUE_IDENTIFIER_0") to the
	// value the server returned where the placeholder first appeared.
	bindings map[string]any
	// echoes maps literal values of the vector that stood for server
	// choices (a ciphertext under a server-generated key, a reference
	// server's identifier or clock) to the value this server returned in
	// their place; a later request carrying the same literal gets ours.
	echoes map[string]any
	// lastByTag is the latest value this server returned under each tag.
	lastByTag map[int]any
	// sentDates and sentTexts are the DateTime and TextString values the
	// client has sent so far in this run.
	sentDates map[int64]bool
	sentTexts map[string]bool
	// serverBytes are the byte strings this server has returned so far.
	serverBytes map[string]bool
	// objects describes the managed objects the run has created, by the
	// identifier this server gave them.
	objects map[string]*objectInfo
}

func newRunState(now time.Time, opts Options) *runState {
	objects := map[string]*objectInfo{}
	if opts.Session != nil {
		objects = opts.Session.objects
	}
	return &runState{
		opts:        opts,
		now:         now,
		bindings:    map[string]any{},
		echoes:      map[string]any{},
		lastByTag:   map[int]any{},
		sentDates:   map[int64]bool{},
		sentTexts:   map[string]bool{},
		serverBytes: map[string]bool{},
		objects:     objects,
	}
}

// runRepeated runs pair i once, or, when the vector marks it "[REPEAT]",
// until it passes or the repeat timeout expires. Only a step whose
// response was compared is repeated: a transport or encoding error ends it.
func (st *runState) runRepeated(ctx context.Context, rt RoundTripper, i int, p Pair) Step {
	deadline := st.opts.now().Add(st.opts.repeatTimeout())
	tries := 0
	for {
		step := st.runStep(ctx, rt, i, p)
		tries++
		if step.Passed || !p.Repeat || step.Err != nil || !st.opts.now().Before(deadline) {
			if p.Repeat && tries > 1 {
				step.Notes = append(step.Notes, fmt.Sprintf("request sent %d times ([REPEAT] until the response matched)", tries))
			}
			return step
		}
		t := time.NewTimer(st.opts.repeatInterval())
		select {
		case <-ctx.Done():
			t.Stop()
			step.Err = ctx.Err()
			return step
		case <-t.C:
		}
	}
}

// runStep runs pair i: build the request, send it, compare the answer.
func (st *runState) runStep(ctx context.Context, rt RoundTripper, i int, p Pair) Step {
	step := Step{Index: i, RequestLine: p.RequestLine, ResponseLine: p.ResponseLine}
	if err := ctx.Err(); err != nil {
		step.Err = err
		return step
	}
	text, err := rewriteRequest(p.Request, st.requestValue)
	if err != nil {
		step.Err = fmt.Errorf("build request: %w", err)
		return step
	}
	req, err := parseMessage(text, p.RequestLine)
	if err != nil {
		step.Err = fmt.Errorf("build request: %w", err)
		return step
	}
	step.Operations = operationNames(req)
	st.noteSent(req)
	data, err := encodeRequest(text)
	if err != nil {
		step.Err = fmt.Errorf("build request: %w", err)
		return step
	}
	sent := st.opts.now()
	raw, err := rt.RoundTrip(ctx, data)
	if err != nil {
		step.Err = fmt.Errorf("round trip: %w", err)
		return step
	}
	received := st.opts.now()
	act, err := decodeResponse(raw)
	if err != nil {
		step.Err = fmt.Errorf("response: %w", err)
		return step
	}
	exp, err := parseMessage(p.Response, p.ResponseLine)
	if err != nil {
		step.Err = fmt.Errorf("expected response: %w", err)
		return step
	}
	c := newComparer(st, sent, received)
	c.message(exp, act, req)
	step.Diffs, step.Notes = c.diffs, c.notes
	step.Passed = len(c.diffs) == 0
	if step.Passed {
		c.commit()
		st.noteReceived(act)
	}
	return step
}

// requestValue supplies the text of one request value: placeholders are
// resolved, literals that stood for a server choice are replaced by what
// this server chose. It returns false to keep the value as written.
func (st *runState) requestValue(ref valueRef) (string, bool, error) {
	if ref.Name == "" {
		if v, ok := st.echoes[echoKey(ref.Type, ref.Raw)]; ok {
			s, err := formatXMLValue(v)
			return s, err == nil, err
		}
		return "", false, nil
	}
	if off, ok := nowOffset(ref.Name); ok {
		if ref.Type != ttlv.TypeDateTime {
			return "", false, fmt.Errorf("$%s in an element of type %s", ref.Name, ref.Type)
		}
		return st.now.Add(time.Duration(off) * time.Second).UTC().Format(time.RFC3339), true, nil
	}
	v, ok := st.bindings[ref.Name]
	if !ok {
		// The vector uses a value the server produced without naming it
		// in an expected response (e.g. $DATA_0 for the ciphertext of
		// the previous Encrypt): take the latest value this server
		// returned under the same tag.
		v, ok = st.lastByTag[ref.Tag]
		if !ok {
			return "", false, fmt.Errorf("placeholder $%s is used before any response supplied a value for it", ref.Name)
		}
		st.bindings[ref.Name] = v
	}
	if got := ttlvTypeOf(v); got != ref.Type {
		return "", false, fmt.Errorf("placeholder $%s holds a %s, used as %s", ref.Name, got, ref.Type)
	}
	s, err := formatXMLValue(v)
	return s, err == nil, err
}

// noteSent records the dates and texts the client sent, which the
// comparison then treats as client-chosen (exact) rather than server-chosen.
func (st *runState) noteSent(req *element) {
	walkElements(req, func(e *element) {
		switch e.Type {
		case ttlv.TypeDateTime:
			if v, err := parseLiteral(e.Type, e.Value, e.Tag); err == nil {
				st.sentDates[v.(time.Time).Unix()] = true
			}
		case ttlv.TypeTextString:
			st.sentTexts[collapseSpaces(e.Value)] = true
		}
	})
}

// noteReceived records every value of a response that passed, for implicit
// placeholders and for recognising server output sent back later.
func (st *runState) noteReceived(act ttlv.Value) {
	walkValues(act, func(v ttlv.Value) {
		if _, ok := v.Value.(ttlv.Struct); ok {
			return
		}
		st.lastByTag[v.Tag] = v.Value
		if b, ok := v.Value.([]byte); ok {
			st.serverBytes[string(b)] = true
		}
	})
}

func walkElements(e *element, f func(*element)) {
	f(e)
	for _, c := range e.Children {
		walkElements(c, f)
	}
}

func walkValues(v ttlv.Value, f func(ttlv.Value)) {
	f(v)
	if st, ok := v.Value.(ttlv.Struct); ok {
		for _, c := range st {
			walkValues(c, f)
		}
	}
}

// operationNames lists the operation of each batch item of a request.
func operationNames(req *element) []string {
	var ops []string
	for _, bi := range req.childrenWith(kmip.TagBatchItem) {
		if op := bi.child(kmip.TagOperation); op != nil {
			if v, err := parseEnum(op.Value, kmip.TagOperation); err == nil {
				ops = append(ops, enumName(kmip.TagOperation, uint32(v.(ttlv.Enum))))
				continue
			}
			ops = append(ops, op.Value)
		}
	}
	return ops
}

// collapseSpaces turns every run of spaces into one space. The published
// test-case files were produced from reflowed text and carry "Object
// Type"-style runs of spaces inside values where KMIP has a single space.
func collapseSpaces(s string) string {
	if !strings.Contains(s, "  ") {
		return s
	}
	var b strings.Builder
	prevSpace := false
	for _, r := range s {
		if r == ' ' {
			if prevSpace {
				continue
			}
			prevSpace = true
		} else {
			prevSpace = false
		}
		b.WriteRune(r)
	}
	return b.String()
}
