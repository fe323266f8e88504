package engine_test

import (
	"context"
	"encoding/hex"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/minikms/minikms/engine"
	"github.com/minikms/minikms/store/sqlite"
)

func TestCheckRestoreKeys(t *testing.T) {
	ctx := context.Background()
	keyring := func(b byte) *engine.SoftKeyring {
		k, err := engine.NewSoftKeyring([]byte(strings.Repeat(string([]byte{b}), engine.RootKeySize)))
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	a, b := keyring(1), keyring(2)
	kcvA, err := engine.KeyCheckValue(ctx, a, 1)
	if err != nil {
		t.Fatal(err)
	}
	kcvB, _ := engine.KeyCheckValue(ctx, b, 1)
	// A store made with key a and salt "s": its salt check value, as Open
	// records it, found by opening an engine on a scratch store.
	saltCheck := func(k engine.Keyring, salt string) []byte {
		t.Helper()
		st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "db"))
		if err != nil {
			t.Fatal(err)
		}
		defer st.Close()
		e, err := engine.Open(ctx, engine.Config{Store: st, Keyring: k, Salt: salt})
		if err != nil {
			t.Fatal(err)
		}
		e.Close()
		v, err := st.GetMeta(ctx, "hkdf.salt.check")
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	meta := map[string][]byte{"root.kcv.1": []byte(kcvA), "hkdf.salt.check": saltCheck(a, "s"), "tenant.x": []byte("ignored")}

	if others, err := engine.CheckRestoreKeys(ctx, a, "s", meta); err != nil || others != nil {
		t.Fatalf("the right key and salt: %v, %v", others, err)
	}
	_, err = engine.CheckRestoreKeys(ctx, b, "s", meta)
	if !errors.Is(err, engine.ErrWrongRootKey) || !strings.Contains(err.Error(), "another root key (check value "+kcvA+")") || strings.Contains(err.Error(), hex.EncodeToString([]byte{1, 1, 1})) {
		t.Fatalf("another key: %v", err)
	}
	if _, err := engine.CheckRestoreKeys(ctx, a, "other", meta); err == nil || !strings.Contains(err.Error(), "MINIKMS_HKDF_SALT") {
		t.Fatalf("another salt: %v", err)
	}
	// A store that never had a server: nothing to check.
	if _, err := engine.CheckRestoreKeys(ctx, b, "x", map[string][]byte{}); err != nil {
		t.Fatal(err)
	}
	// After a root rotation the key is the store's version 2: matched by
	// check value; an older version still listed is reported.
	rotated := map[string][]byte{"root.kcv.1": []byte(kcvB), "root.kcv.2": []byte(kcvA)}
	others, err := engine.CheckRestoreKeys(ctx, a, "s", rotated)
	if err != nil || len(others) != 1 || others[1] != kcvB {
		t.Fatalf("rotated store: %v, %v", others, err)
	}
	if _, err := engine.CheckRestoreKeys(ctx, a, "s", map[string][]byte{"root.kcv.x": []byte(kcvA)}); err == nil {
		t.Fatal("a malformed check value entry was accepted")
	}
}
