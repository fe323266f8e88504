package pkcs11

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// Config selects the PKCS#11 module and token and says how to use them.
//
// The token is selected by its label only, never by slot number: slot
// numbers change when tokens are added or re-initialised (SoftHSM2 assigns a
// new slot id to every token it initialises), labels do not.
type Config struct {
	// Module is the path of the PKCS#11 library, for example
	// /usr/lib/softhsm/libsofthsm2.so.
	Module string
	// TokenLabel selects the token (at most 32 bytes). Two tokens with the
	// same label in one module are refused as ambiguous.
	TokenLabel string
	// PIN is the user PIN. Exactly one of PIN and PINFile must be set.
	PIN string
	// PINFile names a file holding the user PIN (one trailing newline is
	// ignored).
	PINFile string

	// MaxSessions bounds the PKCS#11 sessions crypto11 opens (its pool size
	// is MaxSessions-1: one session is kept logged in). 0 means
	// DefaultMaxSessions; the token's own maximum is obeyed too. At least 2.
	MaxSessions int
	// SessionWait is how long an operation waits for a free session before
	// failing with ErrSessionsExhausted. 0 means DefaultSessionWait.
	SessionWait time.Duration

	// LabelPrefix prefixes every token object miniKMS creates. "" means
	// DefaultLabelPrefix. Root keys are <prefix>root-v<N>, the unseal
	// wrapping key <prefix>wrap-v1 and CA / signing keys <prefix>pki-<label>.
	LabelPrefix string

	// CacheEntries bounds the in-process cache of derived keys kept by
	// Keyring (0 = no cache, the default: the engine already caches tenant
	// master keys itself). Entries are zeroized on eviction, expiry, token
	// loss and Close.
	CacheEntries int
	// CacheTTL bounds how long a cached derived key is used (0 means
	// DefaultCacheTTL when CacheEntries > 0).
	CacheTTL time.Duration

	// ReconnectInterval is the least time between two attempts to reopen a
	// lost token (the first attempt after a loss is immediate). 0 means
	// DefaultReconnectInterval.
	ReconnectInterval time.Duration
}

// Defaults.
const (
	DefaultMaxSessions       = 16
	DefaultSessionWait       = 5 * time.Second
	DefaultLabelPrefix       = "minikms-"
	DefaultCacheTTL          = 5 * time.Minute
	DefaultReconnectInterval = 2 * time.Second
	// maxTokenLabel is the size of CK_TOKEN_INFO.label.
	maxTokenLabel = 32
)

// withDefaults returns c with zero values replaced by defaults, or an error
// wrapping ErrConfig.
func (c Config) withDefaults() (Config, error) {
	if c.Module == "" {
		return c, fmt.Errorf("%w: the PKCS#11 module path is not set", ErrConfig)
	}
	if c.TokenLabel == "" {
		return c, fmt.Errorf("%w: the token label is not set (tokens are selected by label, never by slot number)", ErrConfig)
	}
	if len(c.TokenLabel) > maxTokenLabel {
		return c, fmt.Errorf("%w: token label %q is longer than %d bytes", ErrConfig, c.TokenLabel, maxTokenLabel)
	}
	if c.PIN != "" && c.PINFile != "" {
		return c, fmt.Errorf("%w: set the PIN or the PIN file, not both", ErrConfig)
	}
	if c.PIN == "" && c.PINFile == "" {
		return c, fmt.Errorf("%w: neither the PIN nor the PIN file is set", ErrConfig)
	}
	if c.MaxSessions == 0 {
		c.MaxSessions = DefaultMaxSessions
	}
	if c.MaxSessions < 2 {
		return c, fmt.Errorf("%w: MaxSessions must be at least 2 (one session stays logged in), got %d", ErrConfig, c.MaxSessions)
	}
	if c.SessionWait == 0 {
		c.SessionWait = DefaultSessionWait
	}
	if c.SessionWait < 0 {
		return c, fmt.Errorf("%w: SessionWait must not be negative", ErrConfig)
	}
	if c.LabelPrefix == "" {
		c.LabelPrefix = DefaultLabelPrefix
	}
	if c.CacheEntries < 0 {
		return c, fmt.Errorf("%w: CacheEntries must not be negative", ErrConfig)
	}
	if c.CacheEntries > 0 && c.CacheTTL == 0 {
		c.CacheTTL = DefaultCacheTTL
	}
	if c.ReconnectInterval == 0 {
		c.ReconnectInterval = DefaultReconnectInterval
	}
	return c, nil
}

// pin returns the PIN, reading PINFile when it is set.
func (c Config) pin() (string, error) {
	if c.PINFile == "" {
		return c.PIN, nil
	}
	b, err := os.ReadFile(c.PINFile)
	if err != nil {
		return "", fmt.Errorf("%w: read PIN file: %v", ErrConfig, err)
	}
	defer clear(b)
	s := strings.TrimSuffix(strings.TrimSuffix(string(b), "\n"), "\r")
	if s == "" {
		return "", fmt.Errorf("%w: PIN file %s is empty", ErrConfig, c.PINFile)
	}
	return s, nil
}

// Labels of the token objects, under a prefix.

func rootLabel(prefix string, version uint32) string {
	return prefix + "root-v" + strconv.FormatUint(uint64(version), 10)
}

// parseRootLabel returns the version of a root key label.
func parseRootLabel(prefix, label string) (uint32, bool) {
	s, ok := strings.CutPrefix(label, prefix+"root-v")
	if !ok || s == "" || s[0] == '0' {
		return 0, false
	}
	v, err := strconv.ParseUint(s, 10, 32)
	if err != nil || v == 0 {
		return 0, false
	}
	return uint32(v), true
}

func wrapLabel(prefix string) string { return prefix + "wrap-v1" }

func pkiLabel(prefix, label string) string { return prefix + "pki-" + label }
