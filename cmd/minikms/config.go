package main

import (
	"fmt"
	"net"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/minikms/minikms/audit"
	"github.com/minikms/minikms/engine"
)

// config is the validated runtime configuration of a server.
type config struct {
	dev      bool
	dataDir  string // dev: bundle, dev root key, default database
	rootKey  []byte
	dbURL    string
	salt     string
	kmipAddr string
	httpAddr string
	tlsCert  string
	tlsKey   string
	hosts    []string // names in an auto-issued server certificate
	nodeName string   // names this server in audit records
	// checkpointEvery is how often the audit chain head is signed.
	checkpointEvery time.Duration
	// minRSABits is the shortest RSA modulus generated (0: engine default).
	minRSABits int
	// lease is the default lease of Obtain Lease (0: engine default).
	lease time.Duration
	// limits of the KMIP listener (limits.go).
	limits limits

	pkcs11Module string
	pkcs11Token  string
	pkcs11PIN    string
	// pkcs11PINFile and pkcs11SealedRoot: see hsm.go.
	pkcs11PINFile    string
	pkcs11SealedRoot string
	// rootKeyPrevious: MINIKMS_ROOT_KEY_PREVIOUS, an older root still read
	// during a root rotation (root.go).
	rootKeyPrevious []byte
}

// Environment variables of the automation contract.
const (
	envRootKey     = "MINIKMS_ROOT_KEY"
	envDBURL       = "MINIKMS_DB_URL"
	envSalt        = "MINIKMS_HKDF_SALT"
	envKMIPAddr    = "MINIKMS_KMIP_ADDR"
	envHTTPAddr    = "MINIKMS_HTTP_ADDR"
	envTLSCert     = "MINIKMS_TLS_CERT_FILE"
	envTLSKey      = "MINIKMS_TLS_KEY_FILE"
	envPKCS11Mod   = "MINIKMS_PKCS11_MODULE"
	envPKCS11Token = "MINIKMS_PKCS11_TOKEN_LABEL"
	envPKCS11PIN   = "MINIKMS_PKCS11_PIN"
	envNodeName    = "MINIKMS_NODE_NAME"
	envCheckpoint  = "MINIKMS_AUDIT_CHECKPOINT_INTERVAL"
	envMinRSABits  = "MINIKMS_RSA_MIN_BITS"
	envLease       = "MINIKMS_LEASE_TIME"
	envRootKeyFile = "MINIKMS_ROOT_KEY_FILE"
)

// fromEnv fills the fields the environment sets.
func (c *config) fromEnv() error {
	if path, ok := os.LookupEnv(envRootKeyFile); ok {
		if _, both := os.LookupEnv(envRootKey); both {
			return fmt.Errorf("%s and %s are both set: give the root key one way", envRootKey, envRootKeyFile)
		}
		v, err := readSecretFile(envRootKeyFile, strings.TrimSpace(path))
		if err != nil {
			return err
		}
		k, err := engine.ParseRootKeyHex(v)
		if err != nil {
			return fmt.Errorf("%s: %w", envRootKeyFile, err)
		}
		c.rootKey = k
	}
	if v, ok := os.LookupEnv(envRootKey); ok {
		k, err := engine.ParseRootKeyHex(v)
		if err != nil {
			return fmt.Errorf("%s: %w", envRootKey, err)
		}
		c.rootKey = k
	}
	if err := c.previousRootEnv(); err != nil { // root.go
		return err
	}
	set := func(dst *string, name string) {
		if v, ok := os.LookupEnv(name); ok {
			*dst = strings.TrimSpace(v)
		}
	}
	set(&c.dbURL, envDBURL)
	set(&c.salt, envSalt)
	set(&c.kmipAddr, envKMIPAddr)
	set(&c.httpAddr, envHTTPAddr)
	set(&c.tlsCert, envTLSCert)
	set(&c.tlsKey, envTLSKey)
	set(&c.pkcs11Module, envPKCS11Mod)
	set(&c.pkcs11Token, envPKCS11Token)
	set(&c.pkcs11PIN, envPKCS11PIN)
	c.hsmEnv()
	set(&c.nodeName, envNodeName)
	if v, ok := os.LookupEnv(envCheckpoint); ok {
		d, err := time.ParseDuration(strings.TrimSpace(v))
		if err != nil {
			return fmt.Errorf("%s: %q is not a duration (for example 30s, 5m)", envCheckpoint, v)
		}
		c.checkpointEvery = d
	}
	if v, ok := os.LookupEnv(envMinRSABits); ok {
		n, err := strconv.Atoi(strings.TrimSpace(v))
		if err != nil || (n != 1024 && n != 2048 && n != 3072 && n != 4096) {
			return fmt.Errorf("%s: %q must be 1024, 2048, 3072 or 4096", envMinRSABits, v)
		}
		c.minRSABits = n
	}
	if v, ok := os.LookupEnv(envLease); ok {
		d, err := time.ParseDuration(strings.TrimSpace(v))
		if err != nil || d < time.Second || d > 365*24*time.Hour {
			return fmt.Errorf("%s: %q must be a duration from 1s to 8760h (for example 1h)", envLease, v)
		}
		c.lease = d
	}
	return c.limitsEnv() // limits.go
}

// validate checks the configuration and names the field that is wrong.
func (c *config) validate() error {
	if c.hsmConfigured() {
		if err := c.validateHSM(false); err != nil {
			return err
		}
	} else if len(c.rootKey) != engine.RootKeySize {
		return fmt.Errorf("%s is required: %d bytes as %d hex characters (generate one with: openssl rand -hex 32)", envRootKey, engine.RootKeySize, 2*engine.RootKeySize)
	}
	if c.dbURL == "" {
		return fmt.Errorf("%s is required: a SQLite file path, or a postgres://... URL to share one PostgreSQL database between nodes", envDBURL)
	}
	if isPostgresURL(c.dbURL) {
		if u, err := url.Parse(c.dbURL); err != nil || u.Host == "" && u.Query().Get("host") == "" {
			return fmt.Errorf("%s: %s is not a PostgreSQL URL with a host (postgres://USER:PASSWORD@HOST:5432/DB?sslmode=verify-full)", envDBURL, storeName(c.dbURL))
		}
	}
	for _, a := range []struct{ name, val string }{{envKMIPAddr, c.kmipAddr}, {envHTTPAddr, c.httpAddr}} {
		if a.val == "" {
			continue
		}
		if _, _, err := net.SplitHostPort(a.val); err != nil {
			return fmt.Errorf("%s: %q is not host:port: %v", a.name, a.val, err)
		}
	}
	if (c.tlsCert == "") != (c.tlsKey == "") {
		return fmt.Errorf("%s and %s must be set together", envTLSCert, envTLSKey)
	}
	if c.checkpointEvery == 0 {
		c.checkpointEvery = audit.DefaultCheckpointInterval
	}
	if c.checkpointEvery < time.Second || c.checkpointEvery > 24*time.Hour {
		return fmt.Errorf("%s: %s is outside 1s to 24h", envCheckpoint, c.checkpointEvery)
	}
	if c.nodeName == "" {
		c.nodeName, _ = os.Hostname()
	}
	if len(c.nodeName) > 255 {
		return fmt.Errorf("%s: longer than 255 characters", envNodeName)
	}
	if len(c.salt) > 256 {
		return fmt.Errorf("%s: longer than 256 characters", envSalt)
	}
	return nil
}
