package oasis

import (
	"errors"
	"strings"
	"testing"
)

func TestWriteReport(t *testing.T) {
	results := []Result{
		{Version: "v1.4", File: "SKLC-M-1-14.xml", Profile: "SKLC", Total: 3, FirstFail: -1, Steps: make([]Step, 3)},
		{Version: "v1.4", File: "SKLC-M-2-14.xml", Profile: "SKLC", Total: 8, FirstFail: 1, Steps: []Step{
			{Index: 0, Passed: true, Operations: []string{"Create"}},
			{Index: 1, Operations: []string{"GetAttributes"}, RequestLine: 68, Diffs: []Diff{{
				Path: "BatchItem[0]/ResponsePayload/Attribute[0]/AttributeValue", Expected: "Enumeration PreActive",
				Actual: "Enumeration Active|x", Reason: `attribute "State"`,
			}}},
		}},
		{Version: "v1.3", File: "MSGENC-XML-M-1-13.xml", Profile: "MSGENC", Total: 2, FirstFail: 0, Steps: []Step{{Err: errors.New("boom")}}},
		(&LoadError{Version: "v1.0", File: "BROKEN_1_10.xml", Err: errors.New("line 3: not closed")}).Result(),
	}
	na := map[string]string{
		"v1.3/MSGENC-XML-M-1-13.xml": "tests a transport",
		"v1.4/TC-NP-1-14.xml":        "server-to-client",
	}
	var b strings.Builder
	if err := WriteReport(&b, results, na); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{
		"**1 of 3 applicable files pass (33.3%).** 4 files run in all; 1 judged not applicable",
		"| v1.4 | 2 | 1 | 1 | 50.0% | 0 |",
		"| v1.3 | 0 | 0 | 0 | – | 1 |",
		"| SKLC | 2 | 1 | 1 | 50.0% | 0 |",
		"| v1.4/SKLC-M-1-14.xml | SKLC | pass | 3/3 |  |",
		"| v1.4/SKLC-M-2-14.xml | SKLC | **FAIL** | 2/8 | step 1 (GetAttributes, line 68): BatchItem[0]/ResponsePayload/Attribute[0]/AttributeValue: attribute \"State\": expected Enumeration PreActive, got Enumeration Active\\|x |",
		"| v1.0/BROKEN_1_10.xml | BROKEN | **FAIL** | 0/0 | v1.0/BROKEN_1_10.xml: line 3: not closed |",
		"## Not applicable",
		"| v1.3/MSGENC-XML-M-1-13.xml | tests a transport |",
		"| v1.4/TC-NP-1-14.xml | server-to-client |",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("report lacks %q\n%s", want, out)
		}
	}
	if strings.Contains(out, "| v1.3/MSGENC-XML-M-1-13.xml | MSGENC |") {
		t.Error("a not-applicable file is listed among the files")
	}
}

type failingWriter struct{}

func (failingWriter) Write([]byte) (int, error) { return 0, errors.New("disk full") }

func TestWriteReportReturnsWriteErrors(t *testing.T) {
	if err := WriteReport(failingWriter{}, nil, NotApplicable); err == nil || err.Error() != "disk full" {
		t.Fatalf("got %v", err)
	}
}
