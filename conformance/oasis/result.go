package oasis

import (
	"fmt"
	"strings"
	"time"
)

// Result is the outcome of running one vector.
type Result struct {
	Version string
	File    string
	Profile string
	// Total is the number of request/response pairs of the vector.
	Total int
	// Steps holds one entry per request/response pair that was run; the
	// run stops after the first failing step, so later pairs are absent.
	Steps []Step
	// FirstFail is the index of the first failing step, or -1.
	FirstFail int
	// Err is set when the vector could not be run at all (load error,
	// cancelled context before the first step).
	Err      error
	Duration time.Duration
}

// Name identifies the result as "version/file".
func (r Result) Name() string { return r.Version + "/" + r.File }

// Passed reports whether every pair of the vector ran and matched.
func (r Result) Passed() bool { return r.Err == nil && r.FirstFail < 0 && len(r.Steps) > 0 }

// Failure returns a one-line reason for a failed result, "" when it passed.
func (r Result) Failure() string {
	switch {
	case r.Err != nil:
		return r.Err.Error()
	case r.FirstFail >= 0 && r.FirstFail < len(r.Steps):
		return r.Steps[r.FirstFail].Summary()
	case len(r.Steps) == 0:
		return "no step ran"
	}
	return ""
}

// Step is the outcome of one request/response pair.
type Step struct {
	Index        int
	Operations   []string // operation of each batch item of the request
	RequestLine  int
	ResponseLine int
	Passed       bool
	// Err is a failure that prevented comparison: the request could not be
	// built, the round trip failed, or the response did not decode.
	Err error
	// Diffs are the differences between the expected and the actual
	// response that no tolerance covers. A step with diffs fails.
	Diffs []Diff
	// Notes are differences that a tolerance accepted but that a reader
	// may want to know about (for example a missing Result Message).
	Notes []string
}

// Summary is a one-line description of the step's outcome.
func (s Step) Summary() string {
	op := strings.Join(s.Operations, "+")
	if op == "" {
		op = "?"
	}
	switch {
	case s.Err != nil:
		return fmt.Sprintf("step %d (%s, line %d): %v", s.Index, op, s.RequestLine, s.Err)
	case len(s.Diffs) > 0:
		more := ""
		if len(s.Diffs) > 1 {
			more = fmt.Sprintf(" (+%d more)", len(s.Diffs)-1)
		}
		return fmt.Sprintf("step %d (%s, line %d): %s%s", s.Index, op, s.RequestLine, s.Diffs[0], more)
	}
	return fmt.Sprintf("step %d (%s): ok", s.Index, op)
}

// Diff is one difference between the expected and the actual response.
type Diff struct {
	// Path locates the value, e.g.
	// "BatchItem[0]/ResponsePayload/Attribute[3]/AttributeValue".
	Path     string
	Expected string
	Actual   string
	// Reason says why the values do not match when "expected X, got Y"
	// is not enough (a placeholder bound earlier, a missing item, ...).
	Reason string
	// Line is the line of the expected element in the vector file.
	Line int
}

func (d Diff) String() string {
	var b strings.Builder
	b.WriteString(d.Path)
	b.WriteString(": ")
	if d.Reason != "" {
		b.WriteString(d.Reason)
		b.WriteString(": ")
	}
	fmt.Fprintf(&b, "expected %s, got %s", d.Expected, d.Actual)
	if d.Line > 0 {
		fmt.Fprintf(&b, " (vector line %d)", d.Line)
	}
	return b.String()
}
