package oasis

import (
	"cmp"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
)

// maxReasonLen caps the failure text shown per file in a report.
const maxReasonLen = 240

// tally counts results of one group (a version, a profile, everything).
type tally struct {
	passed, failed, notApplicable int
}

func (t tally) applicable() int { return t.passed + t.failed }

func (t tally) rate() string {
	if t.applicable() == 0 {
		return "–"
	}
	return fmt.Sprintf("%.1f%%", 100*float64(t.passed)/float64(t.applicable()))
}

// WriteReport writes a Markdown report of results: totals, per-version and
// per-profile tables, one line per applicable file with the first failure,
// and every file of notApplicable with its reason. Results whose file is in
// notApplicable are counted apart and left out of the pass rate. It returns
// the first write error.
func WriteReport(w io.Writer, results []Result, notApplicable map[string]string) error {
	rw := &reportWriter{w: w}
	sorted := slices.Clone(results)
	slices.SortFunc(sorted, func(a, b Result) int {
		return cmp.Or(cmp.Compare(a.Version, b.Version), cmp.Compare(a.File, b.File))
	})
	var total tally
	byVersion, byProfile := map[string]*tally{}, map[string]*tally{}
	group := func(m map[string]*tally, k string) *tally {
		if m[k] == nil {
			m[k] = &tally{}
		}
		return m[k]
	}
	for _, r := range sorted {
		for _, t := range []*tally{&total, group(byVersion, r.Version), group(byProfile, r.Profile)} {
			switch _, na := notApplicable[r.Name()]; {
			case na:
				t.notApplicable++
			case r.Passed():
				t.passed++
			default:
				t.failed++
			}
		}
	}

	rw.printf("# OASIS KMIP test vectors\n\n")
	rw.printf("**%d of %d applicable files pass (%s).** %d files run in all; %d judged not applicable (listed at the end).\n\n",
		total.passed, total.applicable(), total.rate(), len(sorted), total.notApplicable)
	rw.printf("Comparison tolerances: see TOLERANCES.md.\n\n")

	rw.table("Version", byVersion)
	rw.table("Profile", byProfile)

	rw.printf("## Files\n\n| File | Profile | Result | Steps | First failure |\n|---|---|---|---|---|\n")
	for _, r := range sorted {
		if _, na := notApplicable[r.Name()]; na {
			continue
		}
		outcome, reason := "pass", ""
		if !r.Passed() {
			outcome, reason = "**FAIL**", cell(r.Failure())
		}
		rw.printf("| %s | %s | %s | %s | %s |\n", cell(r.Name()), cell(r.Profile), outcome, stepsCell(r), reason)
	}

	rw.printf("\n## Not applicable\n\n| File | Reason |\n|---|---|\n")
	names := slices.Sorted(maps.Keys(notApplicable))
	for _, name := range names {
		rw.printf("| %s | %s |\n", cell(name), cell(notApplicable[name]))
	}
	return rw.err
}

// stepsCell shows how far a vector got: "12/12", or "3/12" when it
// stopped at its third step.
func stepsCell(r Result) string {
	return fmt.Sprintf("%d/%d", len(r.Steps), r.Total)
}

type reportWriter struct {
	w   io.Writer
	err error
}

func (rw *reportWriter) printf(format string, args ...any) {
	if rw.err != nil {
		return
	}
	_, rw.err = fmt.Fprintf(rw.w, format, args...)
}

// table writes the totals of each group, sorted by key.
func (rw *reportWriter) table(title string, groups map[string]*tally) {
	rw.printf("## By %s\n\n| %s | Applicable | Passed | Failed | Pass rate | Not applicable |\n|---|---|---|---|---|---|\n",
		strings.ToLower(title), title)
	for _, k := range slices.Sorted(maps.Keys(groups)) {
		t := groups[k]
		name := k
		if name == "" {
			name = "(none)"
		}
		rw.printf("| %s | %d | %d | %d | %s | %d |\n", cell(name), t.applicable(), t.passed, t.failed, t.rate(), t.notApplicable)
	}
	rw.printf("\n")
}

// cell makes text safe inside a Markdown table cell.
func cell(s string) string {
	s = strings.NewReplacer("|", `\|`, "\r", " ", "\n", " ").Replace(s)
	if r := []rune(s); len(r) > maxReasonLen {
		s = string(r[:maxReasonLen-1]) + "…"
	}
	return s
}
