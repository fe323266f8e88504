//go:build cgo

package pkcs11

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// SoftHSM2 test tokens. Each test makes its own token directory and
// configuration and points SOFTHSM2_CONF at it; SoftHSM reads the variable
// when the module is initialised, which crypto11 does when the first
// connection of the process opens (and undoes when the last closes), so
// every test closes all its connections before the next starts.

const softhsmModule = "/usr/lib/softhsm/libsofthsm2.so"

// requireSoftHSM skips the test when SoftHSM2 is missing, or fails it when
// MINIKMS_REQUIRE_HSM=1.
func requireSoftHSM(tb testing.TB) {
	tb.Helper()
	var missing string
	if _, err := exec.LookPath("softhsm2-util"); err != nil {
		missing = "softhsm2-util is not installed"
	} else if _, err := os.Stat(softhsmModule); err != nil {
		missing = softhsmModule + " is missing"
	}
	if missing == "" {
		return
	}
	msg := missing + " (apt-get install softhsm2 opensc); HSM integration tests need it"
	if os.Getenv("MINIKMS_REQUIRE_HSM") == "1" {
		tb.Fatal(msg + " and MINIKMS_REQUIRE_HSM=1")
	}
	tb.Skip(msg + "; set MINIKMS_REQUIRE_HSM=1 to fail instead of skipping")
}

type softToken struct {
	dir   string
	conf  string
	label string
	pin   string
}

// newSoftToken initialises a fresh SoftHSM2 token in a temporary directory
// and points SOFTHSM2_CONF at it for the rest of the test.
func newSoftToken(tb testing.TB) *softToken {
	tb.Helper()
	requireSoftHSM(tb)
	dir := tb.TempDir()
	tokens := filepath.Join(dir, "tokens")
	if err := os.Mkdir(tokens, 0o700); err != nil {
		tb.Fatal(err)
	}
	conf := filepath.Join(dir, "softhsm2.conf")
	body := fmt.Sprintf("directories.tokendir = %s\nobjectstore.backend = file\nlog.level = ERROR\nslots.removable = false\n", tokens)
	if err := os.WriteFile(conf, []byte(body), 0o600); err != nil {
		tb.Fatal(err)
	}
	tb.Setenv("SOFTHSM2_CONF", conf)
	rnd := make([]byte, 4)
	rand.Read(rnd)
	st := &softToken{dir: dir, conf: conf, label: "minikms-test-" + hex.EncodeToString(rnd), pin: "1234-user"}
	out, err := exec.Command("softhsm2-util", "--init-token", "--free", "--label", st.label, "--pin", st.pin, "--so-pin", "5678-so").CombinedOutput()
	if err != nil {
		tb.Fatalf("softhsm2-util --init-token: %v\n%s", err, out)
	}
	return st
}

func (st *softToken) config() Config {
	return Config{Module: softhsmModule, TokenLabel: st.label, PIN: st.pin, ReconnectInterval: 10 * time.Millisecond}
}

// open opens the token and closes it at the end of the test.
func (st *softToken) open(tb testing.TB, mod ...func(*Config)) *HSM {
	tb.Helper()
	cfg := st.config()
	for _, m := range mod {
		m(&cfg)
	}
	h, err := Open(context.Background(), cfg)
	if err != nil {
		tb.Fatalf("Open: %v", err)
	}
	tb.Cleanup(func() {
		if err := h.Close(); err != nil {
			tb.Errorf("Close: %v", err)
		}
	})
	return h
}
