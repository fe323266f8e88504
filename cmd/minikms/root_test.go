package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/minikms/minikms/engine"
)

// rootTestEnv points the MINIKMS_* variables at db with the given keys.
func rootTestEnv(t *testing.T, db, rootHex, prevHex string) {
	t.Helper()
	for _, v := range []string{envRootKeyFile, envPKCS11Mod, envRootKeyPrev, envRootKey} {
		t.Setenv(v, "")
		os.Unsetenv(v)
	}
	t.Setenv(envRootKey, rootHex)
	if prevHex != "" {
		t.Setenv(envRootKeyPrev, prevHex)
	}
	t.Setenv(envDBURL, db)
	t.Setenv(envSalt, "drill-salt")
}

// openTestNode opens a server node (no listeners) from the environment.
func openTestNode(t *testing.T) (*node, error) {
	t.Helper()
	cfg := config{}
	if err := cfg.fromEnv(); err != nil {
		return nil, err
	}
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	return open(t.Context(), cfg, slog.New(slog.DiscardHandler))
}

type sealedData struct {
	ids []string
	cts []engine.EncryptResult
}

var driller = engine.Principal{Tenant: "acme", Member: "app", Role: engine.RoleApp}

func makeKeys(t *testing.T, n *node, count int) *sealedData {
	t.Helper()
	ctx := t.Context()
	d := &sealedData{}
	_, err := n.auth.Tenant(ctx, "acme", true) // a sealed CA key to rotate too
	require.NoError(t, err)
	for i := range count {
		o, err := n.eng.Create(ctx, driller, engine.CreateRequest{Type: engine.TypeSymmetricKey, Attrs: []engine.Attribute{
			{Name: engine.AttrCryptographicAlgorithm, Value: engine.AlgAES}, {Name: engine.AttrCryptographicLength, Value: int32(256)},
		}})
		require.NoError(t, err)
		_, err = n.eng.Activate(ctx, driller, o.ID)
		require.NoError(t, err)
		res, err := n.eng.Encrypt(ctx, driller, engine.EncryptRequest{ID: o.ID, Data: fmt.Appendf(nil, "data %d", i)})
		require.NoError(t, err)
		d.ids, d.cts = append(d.ids, o.ID), append(d.cts, res)
	}
	return d
}

func (d *sealedData) check(t *testing.T, n *node) {
	t.Helper()
	for i, id := range d.ids {
		_, pt, err := n.eng.Decrypt(t.Context(), driller, engine.DecryptRequest{ID: id, Data: d.cts[i].Ciphertext, IV: d.cts[i].IV, Tag: d.cts[i].Tag})
		require.NoError(t, err, "object %d", i)
		require.Equal(t, fmt.Sprintf("data %d", i), string(pt))
	}
	_, err := n.auth.Tenant(t.Context(), "acme", false)
	require.NoError(t, err, "sealed tenant CA key")
}

var kcvLine = regexp.MustCompile(`# root key check value: ([0-9a-f]{16})`)

// TestShamirRecoveryDrill: init → shares → recover → serve with the
// recovered key → objects readable; wrong and too few shares fail clearly.
func TestShamirRecoveryDrill(t *testing.T) {
	dir := t.TempDir()
	shares := filepath.Join(dir, "shares")
	require.NoError(t, runInit(t.Context(), []string{"--shares", "5", "--threshold", "3", "--out-dir", shares}))
	files, _ := filepath.Glob(filepath.Join(shares, "share-*-of-5.txt"))
	require.Len(t, files, 5)
	for _, f := range files {
		fi, err := os.Stat(f)
		require.NoError(t, err)
		assert.Equal(t, os.FileMode(0o600), fi.Mode().Perm())
	}
	first, err := os.ReadFile(files[0])
	require.NoError(t, err)
	m := kcvLine.FindSubmatch(first)
	require.NotNil(t, m)
	kcv := string(m[1])
	// A second ceremony into the same directory is refused.
	assert.ErrorContains(t, runInit(t.Context(), []string{"--out-dir", shares}), "not empty")

	// Recover from shares 1, 3, 5 with the check value.
	rootFile := filepath.Join(dir, "root.hex")
	var out, errb bytes.Buffer
	require.NoError(t, runRootRecover(t.Context(), []string{"--kcv", kcv, "--out", rootFile, files[0], files[2], files[4]}, nil, &out, &errb))
	assert.Contains(t, errb.String(), "verified")
	rootHex, err := os.ReadFile(rootFile)
	require.NoError(t, err)
	fi, _ := os.Stat(rootFile)
	assert.Equal(t, os.FileMode(0o600), fi.Mode().Perm())
	assert.NotContains(t, out.String(), strings.TrimSpace(string(rootHex)), "written, not printed")

	// Serve with it: objects created, then readable after a restart.
	db := filepath.Join(dir, "kms.db")
	rootTestEnv(t, db, strings.TrimSpace(string(rootHex)), "")
	n, err := openTestNode(t)
	require.NoError(t, err)
	data := makeKeys(t, n, 3)
	n.close()

	// Disaster: the root key is lost. Three other custodians type their
	// shares (grouped, with init's "share i of n:" prefix) on stdin; the
	// check value is verified against the store.
	var in bytes.Buffer
	for _, f := range []string{files[1], files[3], files[2]} {
		b, _ := os.ReadFile(f)
		line := string(b[strings.Index(string(b), "minikms-share-"):])
		line = strings.TrimSpace(line)
		fmt.Fprintf(&in, "share x of 5: %s %s\n", line[:30], line[30:])
	}
	out.Reset()
	errb.Reset()
	require.NoError(t, runRootRecover(t.Context(), nil, &in, &out, &errb))
	assert.Contains(t, errb.String(), "root version 1 of the store")
	recovered := strings.TrimSpace(out.String())
	require.Equal(t, strings.TrimSpace(string(rootHex)), recovered)
	rootTestEnv(t, db, recovered, "")
	n, err = openTestNode(t)
	require.NoError(t, err)
	data.check(t, n)
	n.close()

	// Too few shares.
	err = runRootRecover(t.Context(), []string{files[0], files[1]}, nil, &out, &errb)
	assert.ErrorContains(t, err, "needs 3 shares, got 2")
	// A mistyped share is named.
	bad := filepath.Join(dir, "bad.txt")
	b, _ := os.ReadFile(files[1])
	i := bytes.Index(b, []byte("minikms-share-")) + len("minikms-share-") + 12
	if b[i] == 'a' {
		b[i] = 'b'
	} else {
		b[i] = 'a'
	}
	require.NoError(t, os.WriteFile(bad, b, 0o600))
	err = runRootRecover(t.Context(), []string{files[0], bad, files[2]}, nil, &out, &errb)
	assert.ErrorContains(t, err, "share 2 ("+bad)
	assert.ErrorContains(t, err, "checksum")
	// Duplicate share.
	err = runRootRecover(t.Context(), []string{files[0], files[0], files[2]}, nil, &out, &errb)
	assert.ErrorContains(t, err, "duplicate")
	// Shares of another ceremony: wrong check value against the store.
	other := filepath.Join(dir, "other")
	require.NoError(t, runInit(t.Context(), []string{"--shares", "3", "--threshold", "2", "--out-dir", other}))
	of, _ := filepath.Glob(filepath.Join(other, "share-*"))
	err = runRootRecover(t.Context(), []string{of[0], of[1]}, nil, &out, &errb)
	assert.ErrorContains(t, err, "no root version of store")
	err = runRootRecover(t.Context(), []string{"--kcv", kcv, of[0], of[2]}, nil, &out, &errb)
	assert.ErrorContains(t, err, "expected "+kcv)
	// Mixed ceremonies.
	err = runRootRecover(t.Context(), []string{files[0], of[1], files[2]}, nil, &out, &errb)
	assert.ErrorContains(t, err, "another split")
}

// TestRootRotateChildProcess is the child of TestRootRotationKilledAndResumed.
// envRotateCrashAfter tells the child process where to die.
const envRotateCrashAfter = "MINIKMS_TEST_ROTATE_CRASH_AFTER"

func TestRootRotateChildProcess(t *testing.T) {
	args := os.Getenv("MINIKMS_TEST_ROTATE_CHILD_ARGS")
	if args == "" {
		t.Skip("child process only")
	}
	// The crash: SIGKILL (no cleanup) after re-wrapping that many objects.
	if v := os.Getenv(envRotateCrashAfter); v != "" {
		crashAfter, _ := strconv.ParseInt(v, 10, 64)
		rotateAfterObject = func(done int64) {
			if done == crashAfter {
				syscall.Kill(os.Getpid(), syscall.SIGKILL) //nolint:errcheck // the point of the test
				select {}
			}
		}
	}
	err := runRootRotate(context.Background(), strings.Fields(args))
	if err != nil {
		fmt.Fprintln(os.Stderr, "child:", err)
		os.Exit(1)
	}
	os.Exit(0)
}

// TestRootRotationKilledAndResumed: a root rotation killed (SIGKILL) in
// the middle resumes where it stopped; every object stays readable; after
// --finish the new root alone serves and the old root is refused.
func TestRootRotationKilledAndResumed(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "kms.db")
	oldHex, newHex := hex.EncodeToString(randomRoot(t)), hex.EncodeToString(randomRoot(t))
	newFile := filepath.Join(dir, "new.hex")
	require.NoError(t, os.WriteFile(newFile, []byte(newHex+"\n"), 0o600))

	rootTestEnv(t, db, oldHex, "")
	n, err := openTestNode(t)
	require.NoError(t, err)
	data := makeKeys(t, n, 25)
	n.close()

	// Child: rotate, killed by SIGKILL after 9 objects (batches of 4).
	cmd := exec.Command(os.Args[0], "-test.run=^TestRootRotateChildProcess$", "-test.count=1")
	cmd.Env = append(os.Environ(), "MINIKMS_TEST_ROTATE_CHILD_ARGS=--new-root-key-file "+newFile+" --batch 4", envRotateCrashAfter+"=9")
	var childErr bytes.Buffer
	cmd.Stderr = &childErr
	err = cmd.Run()
	var ee *exec.ExitError
	require.True(t, errors.As(err, &ee), "child: %v\n%s", err, childErr.String())
	ws, _ := ee.Sys().(syscall.WaitStatus)
	require.True(t, ws.Signaled() && ws.Signal() == syscall.SIGKILL, "child not killed: %v\n%s", err, childErr.String())
	assert.Contains(t, childErr.String(), "re-wrapping objects: ", "progress line")

	// Mid-rotation: a server with both keys reads everything.
	rootTestEnv(t, db, newHex, oldHex)
	n, err = openTestNode(t)
	require.NoError(t, err)
	data.check(t, n)
	st, err := n.eng.RotationStatus(t.Context())
	require.NoError(t, err)
	require.NotNil(t, st.State)
	assert.False(t, st.State.Complete)
	assert.EqualValues(t, 25-9, st.Remaining)
	assert.EqualValues(t, 8, st.State.Rewrapped, "two batches checkpointed")
	n.close()

	// --finish before the job completes is refused.
	assert.ErrorContains(t, runRootRotate(t.Context(), []string{"--finish"}), "not complete")

	// Resume (server-style configuration: new root current, old previous).
	require.NoError(t, runRootRotate(t.Context(), []string{"--batch", "4"}))
	require.NoError(t, runRootRotate(t.Context(), []string{"--status"}))

	// Restart with the new root only, then finish.
	rootTestEnv(t, db, newHex, "")
	n, err = openTestNode(t)
	require.NoError(t, err)
	data.check(t, n)
	n.close()
	require.NoError(t, runRootRotate(t.Context(), []string{"--finish"}))

	n, err = openTestNode(t)
	require.NoError(t, err)
	data.check(t, n)
	st, err = n.eng.RotationStatus(t.Context())
	require.NoError(t, err)
	assert.Len(t, st.Versions, 1)
	assert.Zero(t, st.Backups)
	n.close()

	// The old root alone is no longer accepted.
	rootTestEnv(t, db, oldHex, "")
	_, err = openTestNode(t)
	require.ErrorIs(t, err, engine.ErrWrongRootKey)

	// HSM configurations are refused clearly.
	rootTestEnv(t, db, newHex, "")
	t.Setenv(envPKCS11Mod, "/nonexistent.so")
	t.Setenv(envPKCS11Token, "x")
	err = runRootRotate(t.Context(), []string{"--new-root-key-file", newFile})
	assert.Error(t, err)
}

// TestKeyRotateScope: `minikms key rotate` rekeys the scope's current keys
// only.
func TestKeyRotateScope(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "kms.db")
	rootTestEnv(t, db, hex.EncodeToString(randomRoot(t)), "")
	n, err := openTestNode(t)
	require.NoError(t, err)
	data := makeKeys(t, n, 2) // scope "default"
	n.close()
	assert.ErrorIs(t, runKey(t.Context(), []string{"rotate", "--scope", "default"}), errUsage)
	assert.ErrorContains(t, runKey(t.Context(), []string{"rotate", "--tenant", "acme", "--scope", "payments"}), "no active key")

	require.NoError(t, runKey(t.Context(), []string{"rotate", "--tenant", "acme", "--scope", "default"}))
	n, err = openTestNode(t)
	require.NoError(t, err)
	data.check(t, n) // the old keys still decrypt
	for _, id := range data.ids {
		_, links, err := n.eng.GetAttributes(t.Context(), driller, id, []string{engine.AttrLink})
		require.NoError(t, err)
		require.Len(t, links, 1, "replaced once")
	}
	n.close()
	// Again: only the two replacements are rotated, not the old keys.
	require.NoError(t, runKey(t.Context(), []string{"rotate", "--tenant", "acme", "--scope", "default"}))
	n, err = openTestNode(t)
	require.NoError(t, err)
	defer n.close()
	for _, id := range data.ids {
		_, links, err := n.eng.GetAttributes(t.Context(), driller, id, []string{engine.AttrLink})
		require.NoError(t, err)
		require.Len(t, links, 1, "an old key is not rotated twice")
	}
}

func randomRoot(t *testing.T) []byte {
	t.Helper()
	b := make([]byte, engine.RootKeySize)
	_, err := rand.Read(b)
	require.NoError(t, err)
	return b
}
