package main

import (
	"fmt"
	"os"
	"regexp"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"
)

// A configuration file (`minikms serve --config FILE`) sets the same
// settings as the environment, one YAML key per variable: the variable's
// name without MINIKMS_, in lower case (db_url for MINIKMS_DB_URL). Values
// are scalars; ${NAME} inside a value is replaced by the environment
// variable NAME, which must be set. Secrets never appear in the file
// itself: root_key and pkcs11_pin take only a ${NAME} reference, or the
// *_file settings name a file that holds them. The environment wins over
// the file, so one file serves several nodes that differ by a variable or
// two.

// fileKeys are the settings a configuration file may hold.
var fileKeys = []string{
	envRootKey, envRootKeyFile, envDBURL, envSalt, envKMIPAddr, envHTTPAddr, envTLSCert, envTLSKey,
	envPKCS11Mod, envPKCS11Token, envPKCS11PIN, envPKCS11PINFile, envPKCS11SealedRoot,
	envNodeName, envCheckpoint, envMinRSABits, envLease, "MINIKMS_LOG_LEVEL", "MINIKMS_LOG_FORMAT",
	envMaxMessageSize, envHandshakeTimeout, envIdleTimeout, envReadTimeout, envWriteTimeout, envRequestTimeout,
	envMaxConns, envMaxConnsPerClient, envShutdownGrace,
}

// secretKeys may only be given as a ${NAME} reference.
var secretKeys = []string{envRootKey, envPKCS11PIN}

var envRef = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)\}`)

// applyConfigFile reads a configuration file and sets, for each of its
// settings the environment does not set, the environment variable.
func applyConfigFile(path string) error {
	settings, err := loadConfigFile(path)
	if err != nil {
		return err
	}
	for name, v := range settings {
		if _, set := os.LookupEnv(name); !set {
			if err := os.Setenv(name, v); err != nil {
				return err
			}
		}
	}
	return nil
}

// loadConfigFile reads a configuration file: settings by environment
// variable name, references expanded.
func loadConfigFile(path string) (map[string]string, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config file: %w", err)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(raw, &doc); err != nil {
		return nil, fmt.Errorf("config file %s: %w", path, err)
	}
	out := map[string]string{}
	if len(doc.Content) == 0 {
		return out, nil // empty file
	}
	root := doc.Content[0]
	if root.Kind != yaml.MappingNode {
		return nil, fmt.Errorf("config file %s: line %d: expected settings as `key: value` lines", path, root.Line)
	}
	for i := 0; i+1 < len(root.Content); i += 2 {
		k, v := root.Content[i], root.Content[i+1]
		name := "MINIKMS_" + strings.ToUpper(k.Value)
		if !slices.Contains(fileKeys, name) {
			return nil, fmt.Errorf("config file %s: line %d: unknown setting %q (known: %s)", path, k.Line, k.Value, knownFileKeys())
		}
		if _, dup := out[name]; dup {
			return nil, fmt.Errorf("config file %s: line %d: %s is set twice", path, k.Line, k.Value)
		}
		if v.Kind != yaml.ScalarNode {
			return nil, fmt.Errorf("config file %s: line %d: %s must be a single value", path, v.Line, k.Value)
		}
		if slices.Contains(secretKeys, name) && !isRef(v.Value) {
			return nil, fmt.Errorf("config file %s: line %d: %s is a secret: give it as a reference to the environment (%s: ${%s}) or in a file (%s_file), never in the configuration file", path, v.Line, k.Value, k.Value, name, k.Value)
		}
		val, err := expandEnv(v.Value)
		if err != nil {
			return nil, fmt.Errorf("config file %s: line %d: %s: %w", path, v.Line, k.Value, err)
		}
		out[name] = val
	}
	return out, nil
}

// isRef reports whether s is exactly one ${NAME} reference.
func isRef(s string) bool {
	s = strings.TrimSpace(s)
	m := envRef.FindStringIndex(s)
	return m != nil && m[0] == 0 && m[1] == len(s)
}

// expandEnv replaces each ${NAME} by the environment variable NAME.
func expandEnv(s string) (string, error) {
	var missing string
	out := envRef.ReplaceAllStringFunc(s, func(ref string) string {
		name := envRef.FindStringSubmatch(ref)[1]
		v, ok := os.LookupEnv(name)
		if !ok && missing == "" {
			missing = name
		}
		return v
	})
	if missing != "" {
		return "", fmt.Errorf("${%s} is not set in the environment", missing)
	}
	return out, nil
}

func knownFileKeys() string {
	keys := make([]string, len(fileKeys))
	for i, k := range fileKeys {
		keys[i] = strings.ToLower(strings.TrimPrefix(k, "MINIKMS_"))
	}
	return strings.Join(keys, ", ")
}

// readSecretFile reads a secret from a file only its owner can read.
func readSecretFile(setting, path string) (string, error) {
	st, err := os.Stat(path)
	if err != nil {
		return "", fmt.Errorf("%s: %w", setting, err)
	}
	if st.Mode().Perm()&0o077 != 0 {
		return "", fmt.Errorf("%s: %s can be read by others (mode %04o): chmod 600 it", setting, path, st.Mode().Perm())
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("%s: %w", setting, err)
	}
	return strings.TrimSpace(string(b)), nil
}
