package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func writeFile(t *testing.T, content string, mode os.FileMode) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(p, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestConfigFile(t *testing.T) {
	t.Setenv("PGPASS", "s3cret")
	t.Setenv("ROOT", strings.Repeat("ab", 32))
	good := writeFile(t, `# a node
db_url: postgres://kms:${PGPASS}@db:5432/kms
kmip_addr: 0.0.0.0:5696
root_key: ${ROOT}
lease_time: 2h
`, 0o644)
	got, err := loadConfigFile(good)
	if err != nil {
		t.Fatal(err)
	}
	if got[envDBURL] != "postgres://kms:s3cret@db:5432/kms" || got[envRootKey] != strings.Repeat("ab", 32) || got[envLease] != "2h" {
		t.Fatalf("settings %v", got)
	}

	cases := []struct{ name, content, want string }{
		{"unknown key", "db_ulr: x\n", `line 1: unknown setting "db_ulr"`},
		{"literal secret", "root_key: abcdef\n", "line 1: root_key is a secret"},
		{"secret with text around the reference", "pkcs11_pin: x${ROOT}\n", "pkcs11_pin is a secret"},
		{"unset reference", "db_url: ${NO_SUCH_VARIABLE_X}\n", "line 1: db_url: ${NO_SUCH_VARIABLE_X} is not set"},
		{"not a mapping", "- a\n- b\n", "expected settings"},
		{"nested value", "kmip_addr:\n  a: b\n", "line 2: kmip_addr must be a single value"},
		{"twice", "node_name: a\nnode_name: b\n", "is set twice"},
		{"bad yaml", "a: [\n", "config file"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := loadConfigFile(writeFile(t, c.content, 0o600))
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %v, want %q", err, c.want)
			}
		})
	}
	if _, err := loadConfigFile(filepath.Join(t.TempDir(), "missing")); err == nil {
		t.Fatal("a missing file is an error")
	}
}

func TestConfigFileEnvironmentWins(t *testing.T) {
	t.Setenv(envNodeName, "from-env")
	os.Unsetenv(envKMIPAddr)
	t.Cleanup(func() { os.Unsetenv(envKMIPAddr) })
	p := writeFile(t, "node_name: from-file\nkmip_addr: 127.0.0.1:15696\n", 0o600)
	if err := applyConfigFile(p); err != nil {
		t.Fatal(err)
	}
	if os.Getenv(envNodeName) != "from-env" || os.Getenv(envKMIPAddr) != "127.0.0.1:15696" {
		t.Fatalf("node %q kmip %q", os.Getenv(envNodeName), os.Getenv(envKMIPAddr))
	}
}

func TestRootKeyFile(t *testing.T) {
	key := strings.Repeat("cd", 32)
	os.Unsetenv(envRootKey)
	for _, c := range []struct {
		name    string
		mode    os.FileMode
		content string
		want    string
	}{
		{"owner only", 0o600, key + "\n", ""},
		{"readable by others", 0o644, key, "can be read by others"},
		{"not hex", 0o600, "zz", envRootKeyFile},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Setenv(envRootKeyFile, writeFile(t, c.content, c.mode))
			var cfg config
			err := cfg.fromEnv()
			if c.want == "" {
				if err != nil || len(cfg.rootKey) != 32 {
					t.Fatalf("err %v, key %d bytes", err, len(cfg.rootKey))
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %v, want %q", err, c.want)
			}
		})
	}
	t.Setenv(envRootKeyFile, writeFile(t, key, 0o600))
	t.Setenv(envRootKey, key)
	var cfg config
	if err := cfg.fromEnv(); err == nil || !strings.Contains(err.Error(), "both set") {
		t.Fatalf("both given: %v", err)
	}
}

func TestServeWithConfigFile(t *testing.T) {
	for _, k := range []string{envRootKey, envRootKeyFile, envDBURL, envLease} {
		t.Setenv(k, "")
		os.Unsetenv(k)
	}
	t.Cleanup(func() {
		for _, k := range []string{envRootKey, envDBURL, envLease} {
			os.Unsetenv(k)
		}
	})
	t.Setenv("TEST_ROOT", strings.Repeat("ab", 32))
	p := writeFile(t, "root_key: ${TEST_ROOT}\ndb_url: "+filepath.Join(t.TempDir(), "kms.db")+"\nlease_time: forever\n", 0o600)
	err := runServe(t.Context(), []string{"--config", p})
	if err == nil || !strings.Contains(err.Error(), envLease) {
		t.Fatalf("serve --config with a bad lease: %v", err)
	}
	if err := runServe(t.Context(), []string{"--config", filepath.Join(t.TempDir(), "none.yaml")}); err == nil || !strings.Contains(err.Error(), "config file") {
		t.Fatalf("serve --config with a missing file: %v", err)
	}
}
