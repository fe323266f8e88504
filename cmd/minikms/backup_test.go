package main

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/minikms/minikms/audit"
	"github.com/minikms/minikms/engine"
	"github.com/minikms/minikms/internal/pgtest"
)

var (
	backupRootA = strings.Repeat("a1", 32)
	backupRootB = strings.Repeat("b2", 32)
	backupAdmin = engine.Principal{Tenant: "acme", Member: "ops", Role: engine.RoleAdmin}
)

// useStore points the commands at dbURL with root key rootHex.
func useStore(t *testing.T, dbURL, rootHex string) {
	t.Helper()
	for _, k := range hsmEnvVars {
		t.Setenv(k, "")
		os.Unsetenv(k)
	}
	t.Setenv(envDBURL, dbURL)
	t.Setenv(envRootKey, rootHex)
}

// openNode opens a full node (engine, PKI, audit) on the configured store.
func openNode(t *testing.T) *node {
	t.Helper()
	cfg := config{}
	if err := cfg.fromEnv(); err != nil {
		t.Fatal(err)
	}
	if err := cfg.validate(); err != nil {
		t.Fatal(err)
	}
	n, err := open(context.Background(), cfg, newLogger(false))
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// createKey creates an AES key in tenant acme, audited as the KMIP layer
// does (the object first, then its record).
func createKey(ctx context.Context, n *node) (string, error) {
	o, err := n.eng.Create(ctx, backupAdmin, engine.CreateRequest{Type: engine.TypeSymmetricKey, Attrs: []engine.Attribute{
		{Name: engine.AttrCryptographicAlgorithm, Value: engine.AlgAES}, {Name: engine.AttrCryptographicLength, Value: int32(256)},
	}})
	if err != nil {
		return "", err
	}
	return o.ID, n.audit.Record(ctx, []engine.AuditEvent{{Tenant: "acme", Member: "ops", Role: "admin", Action: "kmip.Create", Object: o.ID, Status: audit.StatusSuccess}})
}

// populate fills the configured store: a tenant, a member certificate,
// keys; it returns each key's material.
func populate(t *testing.T) map[string][]byte {
	t.Helper()
	openNode(t).close() // creates the store
	mustRun(t, "tenant", "create", "acme")
	mustRun(t, "member", "issue", "--tenant=acme", "--member=bob", "--role=admin", "--out="+t.TempDir())
	n := openNode(t)
	defer n.close()
	ctx := context.Background()
	keys := map[string][]byte{}
	for range 5 {
		id, err := createKey(ctx, n)
		if err != nil {
			t.Fatal(err)
		}
		_, m, err := n.eng.Get(ctx, backupAdmin, id)
		if err != nil {
			t.Fatal(err)
		}
		keys[id] = bytes.Clone(m.Bytes)
	}
	return keys
}

// checkRestored checks that the configured store serves every key with
// its material, that its chain verifies, and that it recorded the restore.
func checkRestored(t *testing.T, keys map[string][]byte) {
	t.Helper()
	n := openNode(t)
	ctx := context.Background()
	for id, want := range keys {
		_, m, err := n.eng.Get(ctx, backupAdmin, id)
		if err != nil {
			n.close()
			t.Fatalf("restored key %s: %v", id, err)
		}
		if !bytes.Equal(m.Bytes, want) {
			n.close()
			t.Fatalf("restored key %s: different material", id)
		}
	}
	n.close()
	if out := mustRun(t, "audit", "verify"); !strings.Contains(out, "audit chain intact") {
		t.Fatalf("audit verify of the restored store:\n%s", out)
	}
	if out := mustRun(t, "audit", "query", "--server-wide", "--action=admin.restore"); !strings.Contains(out, "success") {
		t.Fatalf("no restore record:\n%s", out)
	}
	// The tenant CA and the member came along: members can be listed.
	if out := mustRun(t, "member", "list", "--tenant=acme"); !strings.Contains(out, "bob") {
		t.Fatalf("member list of the restored store:\n%s", out)
	}
}

func TestBackupRestoreSQLite(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "src.db")
	useStore(t, src, backupRootA)
	keys := populate(t)

	// No root key is needed to take a backup.
	os.Unsetenv(envRootKey)
	file := filepath.Join(dir, "kms.backup")
	mustRun(t, "backup", "--out="+file)
	fi, err := os.Stat(file)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("backup file mode %v, want 0600", fi.Mode().Perm())
	}
	if _, err := run(t, "backup", "--out="+file); err == nil || !strings.Contains(err.Error(), "exists") {
		t.Fatalf("a backup overwrote a file: %v", err)
	}
	if out := mustRun(t, "audit", "query", "--server-wide", "--action=admin.backup"); !strings.Contains(out, "success") {
		t.Fatalf("the backup is not recorded in the source:\n%s", out)
	}
	h, _, err := checkBackup(file)
	if err != nil {
		t.Fatal(err)
	}
	if h.Counts.Objects < int64(len(keys)) || h.RootKCV["1"] == "" || h.Source.Store != "sqlite" {
		t.Fatalf("header %+v", h)
	}

	// Restore into a fresh file.
	dst := filepath.Join(dir, "dst.db")
	useStore(t, dst, backupRootA)
	out := mustRun(t, "restore", "--in="+file)
	if !strings.Contains(out, "audit chain intact") {
		t.Fatalf("restore said:\n%s", out)
	}
	checkRestored(t, keys)

	// Never into a store that holds something; the attempt is recorded.
	if _, err := run(t, "restore", "--in="+file); err == nil || !strings.Contains(err.Error(), "not empty") {
		t.Fatalf("restore into a non-empty store: %v", err)
	}
	if out := mustRun(t, "audit", "query", "--server-wide", "--action=admin.restore"); !strings.Contains(out, "failure") {
		t.Fatalf("the refused restore is not recorded:\n%s", out)
	}

	// Standard output and standard input.
	useStore(t, src, "")
	os.Unsetenv(envRootKey)
	stream := mustRun(t, "backup", "--out=-")
	f := filepath.Join(dir, "stdin.backup")
	if err := os.WriteFile(f, []byte(stream), 0o600); err != nil {
		t.Fatal(err)
	}
	in, err := os.Open(f)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	old := os.Stdin
	os.Stdin = in
	defer func() { os.Stdin = old }()
	useStore(t, filepath.Join(dir, "fromstdin.db"), backupRootA)
	mustRun(t, "restore", "--in=-")
	os.Stdin = old
	checkRestored(t, keys)
}

func TestRestoreRefusesWrongKeyAndDamage(t *testing.T) {
	dir := t.TempDir()
	useStore(t, filepath.Join(dir, "src.db"), backupRootA)
	populate(t)
	file := filepath.Join(dir, "kms.backup")
	mustRun(t, "backup", "--out="+file)
	good, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	h, _, err := checkBackup(file)
	if err != nil {
		t.Fatal(err)
	}

	// Another root key: refused before anything is written.
	dst := filepath.Join(dir, "dst.db")
	useStore(t, dst, backupRootB)
	_, err = run(t, "restore", "--in="+file)
	if err == nil || !strings.Contains(err.Error(), "another root key (check value "+h.RootKCV["1"]+")") || !strings.Contains(err.Error(), "start with that key") {
		t.Fatalf("restore with another root key: %v", err)
	}
	if _, err := os.Stat(dst); !os.IsNotExist(err) {
		t.Fatalf("a refused restore created the store: %v", err)
	}
	// Another salt: refused too.
	useStore(t, dst, backupRootA)
	t.Setenv(envSalt, "other-salt")
	if _, err := run(t, "restore", "--in="+file); err == nil || !strings.Contains(err.Error(), "salt") {
		t.Fatalf("restore with another salt: %v", err)
	}
	os.Unsetenv(envSalt)

	// Damaged files: each refused, nothing written.
	lines := gunzipLines(t, good)
	damaged := map[string][]byte{
		"truncated":       good[:len(good)/2],
		"no end marker":   gzipLines(lines[:len(lines)-1]),
		"checksum":        gzipLines(replaceIn(lines, `"tenant":"acme","id":`, `"tenant":"acmf","id":`)),
		"line dropped":    gzipLines(append(append([][]byte{}, lines[:2]...), lines[3:]...)),
		"trailing data":   append(bytes.Clone(good), gzipLines([][]byte{[]byte("{}\n")})...),
		"not a backup":    []byte("hello"),
		"flipped bit":     flip(good, len(good)/2),
		"truncated 1byte": good[:len(good)-1],
	}
	wants := map[string]string{
		"truncated": "truncated", "no end marker": "truncated", "checksum": "SHA-256", "line dropped": "SHA-256",
		"trailing data": "after the end marker", "not a backup": "not a miniKMS backup", "flipped bit": "", "truncated 1byte": "truncated",
	}
	for name, b := range damaged {
		f := filepath.Join(dir, "damaged.backup")
		if err := os.WriteFile(f, b, 0o600); err != nil {
			t.Fatal(err)
		}
		_, err := run(t, "restore", "--in="+f)
		if err == nil || !strings.Contains(err.Error(), wants[name]) {
			t.Errorf("%s: restore said %v, want an error naming %q", name, err, wants[name])
		}
		if _, err := os.Stat(dst); !os.IsNotExist(err) {
			t.Fatalf("%s: a refused restore created the store", name)
		}
	}
}

func gunzipLines(t *testing.T, b []byte) [][]byte {
	t.Helper()
	zr, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	raw, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	var out [][]byte
	sc := bufio.NewScanner(bytes.NewReader(raw))
	sc.Buffer(nil, 1<<24)
	for sc.Scan() {
		out = append(out, append(bytes.Clone(sc.Bytes()), '\n'))
	}
	return out
}

func gzipLines(lines [][]byte) []byte {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	for _, l := range lines {
		zw.Write(l)
	}
	zw.Close()
	return buf.Bytes()
}

// replaceIn replaces old in the first line (after the header) holding it.
func replaceIn(lines [][]byte, old, new string) [][]byte {
	out := make([][]byte, len(lines))
	copy(out, lines)
	for i := 1; i < len(out); i++ {
		if bytes.Contains(out[i], []byte(old)) {
			out[i] = bytes.Replace(out[i], []byte(old), []byte(new), 1)
			return out
		}
	}
	panic("replaceIn: " + old + " not found")
}

func flip(b []byte, i int) []byte {
	c := bytes.Clone(b)
	c[i] ^= 0x10
	return c
}

// TestBackupRestoreAcrossStores: a SQLite backup restores into PostgreSQL,
// and a backup of that into SQLite again: the format is logical.
func TestBackupRestoreAcrossStores(t *testing.T) {
	pgURL := pgtest.NewDatabase(t)
	dir := t.TempDir()
	useStore(t, filepath.Join(dir, "src.db"), backupRootA)
	keys := populate(t)
	file := filepath.Join(dir, "sqlite.backup")
	mustRun(t, "backup", "--out="+file)

	useStore(t, pgURL, backupRootA)
	mustRun(t, "restore", "--in="+file)
	checkRestored(t, keys)
	// Nothing more to create: a second restore is refused.
	if _, err := run(t, "restore", "--in="+file); err == nil || !strings.Contains(err.Error(), "not empty") {
		t.Fatalf("restore into a non-empty PostgreSQL database: %v", err)
	}
	// A PostgreSQL store keeps serving new objects after a restore.
	n := openNode(t)
	_, err := createKey(context.Background(), n)
	n.close()
	if err != nil {
		t.Fatalf("create after restore: %v", err)
	}

	back := filepath.Join(dir, "pg.backup")
	mustRun(t, "backup", "--out="+back)
	h, _, err := checkBackup(back)
	if err != nil || h.Source.Store != "postgres" {
		t.Fatalf("backup of PostgreSQL: %+v, %v", h, err)
	}
	useStore(t, filepath.Join(dir, "again.db"), backupRootA)
	mustRun(t, "restore", "--in="+back)
	checkRestored(t, keys)

	// Another root key on PostgreSQL: nothing written.
	empty := pgtest.NewDatabase(t)
	useStore(t, empty, backupRootB)
	if _, err := run(t, "restore", "--in="+back); err == nil || !strings.Contains(err.Error(), "another root key") {
		t.Fatalf("restore with another root key: %v", err)
	}
	st, err := openStore(context.Background(), empty, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	var items int
	if err := st.(engine.BackupStore).Backup(context.Background(), func(it engine.BackupItem) error {
		if it.Summary == nil {
			items++
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if items != 0 {
		t.Fatalf("a refused restore wrote %d items", items)
	}
}

// TestBackupDuringWrites: a backup taken while keys are being created (each
// followed by its audit record) restores to one consistent state: every
// audit record's object is there, at most the object in flight lacks its
// record, and the chain verifies.
func TestBackupDuringWrites(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "src.db")
	useStore(t, src, backupRootA)
	populate(t)
	n := openNode(t)
	var (
		wg      sync.WaitGroup
		stop    atomic.Bool
		created atomic.Int64
		werr    error
	)
	ctx := context.Background()
	wg.Add(1)
	go func() {
		defer wg.Done()
		for !stop.Load() {
			if _, err := createKey(ctx, n); err != nil {
				werr = err
				return
			}
			created.Add(1)
		}
	}()
	for created.Load() < 5 {
		time.Sleep(time.Millisecond)
	}
	file := filepath.Join(dir, "busy.backup")
	_, berr := run(t, "backup", "--out="+file)
	stop.Store(true)
	wg.Wait()
	n.close()
	if berr != nil || werr != nil {
		t.Fatalf("backup: %v; writer: %v", berr, werr)
	}

	useStore(t, filepath.Join(dir, "dst.db"), backupRootA)
	mustRun(t, "restore", "--in="+file)
	if out := mustRun(t, "audit", "verify"); !strings.Contains(out, "audit chain intact") {
		t.Fatalf("audit verify:\n%s", out)
	}
	st, err := openStore(ctx, filepath.Join(dir, "dst.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	objects, audited := map[string]bool{}, map[string]bool{}
	if err := st.(engine.BackupStore).Backup(ctx, func(it engine.BackupItem) error {
		switch {
		case it.Object != nil:
			objects[it.Object.ID] = true
		case it.Audit != nil && it.Audit.Action == "kmip.Create":
			audited[it.Audit.Object] = true
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	for id := range audited {
		if !objects[id] {
			t.Errorf("audit record of %s but no object: not one snapshot", id)
		}
	}
	missing := 0
	for id := range objects {
		if !audited[id] {
			missing++
		}
	}
	if len(audited) < 10 {
		t.Fatalf("only %d audited objects in the snapshot", len(audited))
	}
	if missing > 1 {
		t.Errorf("%d objects without their audit record: not one snapshot", missing)
	}
}
