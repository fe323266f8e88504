package kmip

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"testing"

	"github.com/ovh/kmip-go"
	"github.com/ovh/kmip-go/ttlv"
)

// TestWriteOASISFuzzSeeds regenerates testdata/fuzz/FuzzHandleMessage/oasis-*
// from the OASIS request messages (those the codec can encode as they are
// written; requests with run-time placeholders are skipped):
//
//	MINIKMS_WRITE_FUZZ_SEEDS=1 go test -run TestWriteOASISFuzzSeeds ./kmip/
func TestWriteOASISFuzzSeeds(t *testing.T) {
	if os.Getenv("MINIKMS_WRITE_FUZZ_SEEDS") == "" {
		t.Skip("set MINIKMS_WRITE_FUZZ_SEEDS=1 to regenerate the seeds")
	}
	mod, err := filepath.Glob(filepath.Join(os.Getenv("GOMODCACHE"), "github.com/ovh/kmip-go@v0.9.2/kmiptest/testdata/v1.*"))
	if err != nil || len(mod) == 0 {
		t.Skipf("no OASIS vectors (set GOMODCACHE): %v", err)
	}
	out := filepath.Join("testdata", "fuzz", "FuzzHandleMessage")
	if err := os.MkdirAll(out, 0o755); err != nil {
		t.Fatal(err)
	}
	reqRe := regexp.MustCompile(`(?s)<RequestMessage>.*?</RequestMessage>`)
	n := 0
	for _, dir := range mod {
		files, _ := filepath.Glob(filepath.Join(dir, "*.xml"))
		for _, file := range files {
			data, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			for i, m := range reqRe.FindAll(data, -1) {
				if i >= 1 {
					break // the first request of each vector is enough
				}
				var req kmip.RequestMessage
				if ttlv.UnmarshalXML(m, &req) != nil {
					continue
				}
				b := ttlv.MarshalTTLV(&req)
				if len(b) > 4096 {
					continue // keeps the committed corpus small
				}
				name := fmt.Sprintf("oasis-%s-%s-%d", filepath.Base(dir), filepath.Base(file), i)
				if err := os.WriteFile(filepath.Join(out, name), fmt.Appendf(nil, "go test fuzz v1\n[]byte(%q)\n", b), 0o644); err != nil {
					t.Fatal(err)
				}
				n++
			}
		}
	}
	t.Logf("%d seeds written", n)
}
