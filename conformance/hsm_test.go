package conformance

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/minikms/minikms/conformance/oasis"
	"github.com/minikms/minikms/engine"
	"github.com/minikms/minikms/internal/testkms"
	"github.com/minikms/minikms/pkcs11"
	"github.com/minikms/minikms/pki"
)

// The OASIS replay once more in HSM mode: the engine's root keyring and
// every CA key (the root CA and one tenant CA per replayed group) in a
// SoftHSM2 token, as `minikms serve` with MINIKMS_PKCS11_* runs. Every file
// that passes with software keys must pass in HSM mode.

// softhsmModule is where Debian's softhsm2 package puts the module.
const softhsmModule = "/usr/lib/softhsm/libsofthsm2.so"

// hsmSkipped are the files the HSM replay leaves out, with the reason.
var hsmSkipped = map[string]string{
	// Two minutes of waiting for the key's dates to pass (the longest
	// file by far); the token does nothing in it that the other re-key
	// files (TC_92_*, CS-AC-M-*, ...) do not do in seconds. Leaving it
	// out keeps the HSM replay inside `make test`'s budget.
	"v1.2/TC_92_12_Existing_Key_Expired_Re_key_with_Same_Life_cycle.xml": "waits 120 s for dates; no token use of its own",
}

// software holds the results of the software replay when TestOASISVectors
// ran in this process, so the HSM replay compares against them instead of
// replaying again.
var software struct {
	sync.Mutex
	results map[string]oasis.Result // by Result.Name()
}

// recordSoftware is called by TestOASISVectors with its results.
func recordSoftware(results []oasis.Result) {
	software.Lock()
	defer software.Unlock()
	software.results = map[string]oasis.Result{}
	for _, r := range results {
		software.results[r.Name()] = r
	}
}

func softwareResults() map[string]oasis.Result {
	software.Lock()
	defer software.Unlock()
	return software.results
}

// requireSoftHSM skips the test when SoftHSM2 (or cgo) is missing, or
// fails it when MINIKMS_REQUIRE_HSM=1 (`make test`).
func requireSoftHSM(t *testing.T) {
	t.Helper()
	var missing string
	if !pkcs11.Available() {
		missing = "this test binary was built without cgo (CGO_ENABLED=0), which pkcs11 needs"
	} else if _, err := exec.LookPath("softhsm2-util"); err != nil {
		missing = "softhsm2-util is not installed (apt-get install softhsm2)"
	} else if _, err := os.Stat(softhsmModule); err != nil {
		missing = softhsmModule + " is missing (apt-get install softhsm2)"
	}
	if missing == "" {
		return
	}
	msg := "HSM-mode OASIS replay: " + missing
	if os.Getenv("MINIKMS_REQUIRE_HSM") == "1" {
		t.Fatal(msg + " and MINIKMS_REQUIRE_HSM=1")
	}
	t.Skip(msg + "; set MINIKMS_REQUIRE_HSM=1 to fail instead of skipping")
}

// newSoftHSM initialises a token in a temporary directory and opens it
// with a root key generated in the token. SoftHSM2 reads SOFTHSM2_CONF
// when the module is initialised (the first pkcs11.Open of the process):
// it is set with os.Setenv because a parallel test may not use t.Setenv,
// and nothing else in this package loads the module.
func newSoftHSM(t *testing.T) *pkcs11.HSM {
	t.Helper()
	requireSoftHSM(t)
	dir := t.TempDir()
	tokens := filepath.Join(dir, "tokens")
	if err := os.Mkdir(tokens, 0o700); err != nil {
		t.Fatal(err)
	}
	conf := filepath.Join(dir, "softhsm2.conf")
	body := fmt.Sprintf("directories.tokendir = %s\nobjectstore.backend = file\nlog.level = ERROR\nslots.removable = false\n", tokens)
	if err := os.WriteFile(conf, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	old, had := os.LookupEnv("SOFTHSM2_CONF")
	os.Setenv("SOFTHSM2_CONF", conf)
	t.Cleanup(func() {
		if had {
			os.Setenv("SOFTHSM2_CONF", old)
		} else {
			os.Unsetenv("SOFTHSM2_CONF")
		}
	})
	rnd := make([]byte, 4)
	rand.Read(rnd)
	label, pin := "minikms-oasis-"+hex.EncodeToString(rnd), "1234-user"
	cmd := exec.Command("softhsm2-util", "--init-token", "--free", "--label", label, "--pin", pin, "--so-pin", "5678-so")
	cmd.Env = append(os.Environ(), "SOFTHSM2_CONF="+conf)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("softhsm2-util --init-token: %v\n%s", err, out)
	}
	ctx := context.Background()
	h, err := pkcs11.Open(ctx, pkcs11.Config{Module: softhsmModule, TokenLabel: label, PIN: pin})
	if err != nil {
		t.Fatalf("opening the SoftHSM2 token: %v", err)
	}
	// Registered before testkms.Start's cleanup, so it runs after the
	// server has stopped.
	t.Cleanup(func() {
		if err := h.Close(); err != nil {
			t.Errorf("closing the token: %v", err)
		}
	})
	if _, err := h.Init(ctx, pkcs11.InitOptions{}); err != nil {
		t.Fatalf("creating the root key in the token: %v", err)
	}
	return h
}

// hsmOptions is replayOptions with the root keyring and the CA keys in the
// token.
func hsmOptions(t *testing.T, h *pkcs11.HSM) testkms.Options {
	t.Helper()
	kr, err := h.Keyring(context.Background())
	if err != nil {
		t.Fatalf("token keyring: %v", err)
	}
	t.Cleanup(kr.Close)
	opts := replayOptions
	opts.Keyring = kr
	opts.KeySource = func(*engine.Engine) pki.KeySource { return h.KeySource() }
	return opts
}

// TestOASISVectorsHSM replays the applicable OASIS vectors (but
// hsmSkipped) with the keys in a SoftHSM2 token and requires every file
// that passes with software keys to pass. It is parallel only so that it
// runs after TestOASISVectors, whose results it then reuses; run alone,
// it replays the same files in software mode first.
func TestOASISVectorsHSM(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("replay takes minutes")
	}
	h := newSoftHSM(t)
	vectors, err := oasis.LoadDir(vectorDir(t))
	if err != nil {
		t.Fatal(err)
	}
	var (
		groups  [][]*oasis.Vector
		skipped []string
	)
	for _, g := range vectorGroups(vectors) {
		var kept []*oasis.Vector
		for _, v := range g {
			if why, skip := hsmSkipped[v.Version+"/"+v.File]; skip {
				skipped = append(skipped, v.Version+"/"+v.File+": "+why)
			} else {
				kept = append(kept, v)
			}
		}
		if len(kept) > 0 {
			groups = append(groups, kept)
		}
	}
	files := 0
	for _, g := range groups {
		files += len(g)
	}
	if files == 0 {
		t.Skip("no applicable vector matches MINIKMS_OASIS_ONLY")
	}

	sw := softwareResults()
	if sw == nil {
		t.Log("TestOASISVectors did not run in this process: replaying with software keys first")
		env := testkms.Start(t, replayOptions)
		sw = map[string]oasis.Result{}
		for _, r := range replayGroups(t, env, groups) {
			sw[r.Name()] = r
		}
	}

	env := testkms.Start(t, hsmOptions(t, h))
	hsmResults := replayGroups(t, env, groups)
	if t.Failed() {
		return
	}
	sort.Slice(hsmResults, func(i, j int) bool { return hsmResults[i].Name() < hsmResults[j].Name() })

	swPassed, hsmPassed := 0, 0
	for _, r := range hsmResults {
		s, ok := sw[r.Name()]
		if !ok {
			t.Errorf("%s: replayed in HSM mode but not in software mode", r.Name())
			continue
		}
		if s.Passed() {
			swPassed++
		}
		if r.Passed() {
			hsmPassed++
		}
		switch {
		case s.Passed() && !r.Passed():
			var sb strings.Builder
			sb.WriteString(r.Name() + " passes with software keys but fails in HSM mode: " + r.Failure())
			if r.FirstFail >= 0 && r.FirstFail < len(r.Steps) {
				for _, d := range r.Steps[r.FirstFail].Diffs[min(1, len(r.Steps[r.FirstFail].Diffs)):] {
					sb.WriteString("\n      " + d.String())
				}
			}
			t.Error(sb.String())
		case !s.Passed() && r.Passed():
			t.Logf("%s fails with software keys but passes in HSM mode (a vector that depends on timing?)", r.Name())
		}
	}
	if len(hsmResults) != files {
		t.Errorf("%d results for %d files", len(hsmResults), files)
	}

	// Every tenant the replay used has its CA key in the token, next to the
	// root CA key and the root key: the option was not ignored.
	st, err := h.Status(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var caKeys, rootKeys int
	for _, o := range st.Objects {
		switch {
		case o.Class == "private-key" && strings.HasPrefix(o.Label, "minikms-pki-"):
			if !o.Protected() {
				t.Errorf("CA key %s is not sensitive and non-extractable: %+v", o.Label, o)
			}
			caKeys++
		case o.Class == "secret-key" && strings.HasPrefix(o.Label, "minikms-root-"):
			rootKeys++
		}
	}
	if rootKeys != 1 || caKeys < len(groups)+1 {
		t.Errorf("token holds %d root keys and %d CA private keys; want 1 and at least %d (root CA + one per replayed group)", rootKeys, caKeys, len(groups)+1)
	}
	t.Logf("OASIS vectors in HSM mode: %d of %d files pass (software keys: %d of them); %d CA keys in the token; left out: %q",
		hsmPassed, len(hsmResults), swPassed, caKeys, skipped)
}
