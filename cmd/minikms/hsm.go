package main

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rand"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/minikms/minikms/engine"
	"github.com/minikms/minikms/pkcs11"
	"github.com/minikms/minikms/pki"
)

// HSM (PKCS#11) configuration and the `minikms hsm` commands.
//
// With MINIKMS_PKCS11_MODULE and MINIKMS_PKCS11_TOKEN_LABEL set, the root
// key is the token's CKK_GENERIC_SECRET key minikms-root-v1 (tenant master
// keys are derived in the token with CKM_SHA256_HMAC) and new CA and
// signing keys are ECDSA P-384 key pairs generated in the token.
// MINIKMS_ROOT_KEY must then be unset: a software root key next to an HSM
// would be a second, weaker copy of the root of trust, so the combination
// is refused instead of guessing which one is meant (move a software root
// into the token with `minikms hsm import-root`).
//
// Unseal mode (MINIKMS_PKCS11_SEALED_ROOT_FILE set) keeps a software root
// key sealed by a token AES key and opens it at start: derivation is then
// in process, the root key in process memory (see README).

const (
	envPKCS11PINFile    = "MINIKMS_PKCS11_PIN_FILE"
	envPKCS11SealedRoot = "MINIKMS_PKCS11_SEALED_ROOT_FILE"
)

// pkcs11Available is pkcs11.Available (tests pretend a build without cgo).
var pkcs11Available = pkcs11.Available

// hsmEnv reads the PKCS#11 variables that fromEnv does not.
func (c *config) hsmEnv() {
	if v, ok := os.LookupEnv(envPKCS11PINFile); ok {
		c.pkcs11PINFile = strings.TrimSpace(v)
	}
	if v, ok := os.LookupEnv(envPKCS11SealedRoot); ok {
		c.pkcs11SealedRoot = strings.TrimSpace(v)
	}
}

// hsmConfigured reports whether any PKCS#11 setting is present.
func (c *config) hsmConfigured() bool {
	return c.pkcs11Module != "" || c.pkcs11Token != "" || c.pkcs11PIN != "" || c.pkcs11PINFile != "" || c.pkcs11SealedRoot != ""
}

// validateHSM checks the PKCS#11 settings (only called when some are set).
// withRootKey allows MINIKMS_ROOT_KEY (hsm import-root reads it).
func (c *config) validateHSM(withRootKey bool) error {
	if !pkcs11Available() {
		return fmt.Errorf("%s/%s are set but this build has no PKCS#11 (HSM) support (built without cgo: rebuild with CGO_ENABLED=1); refusing to fall back to a software root key", envPKCS11Mod, envPKCS11Token)
	}
	if c.rootKey != nil && !withRootKey {
		return fmt.Errorf("%s must not be set when an HSM is configured (%s): the root key is in the token; move a software root key there once with `minikms hsm import-root`, then remove it from the environment", envRootKey, envPKCS11Mod)
	}
	if c.pkcs11Module == "" {
		return fmt.Errorf("%s is required with an HSM: the path of the PKCS#11 library (for SoftHSM2: /usr/lib/softhsm/libsofthsm2.so)", envPKCS11Mod)
	}
	if c.pkcs11Token == "" {
		return fmt.Errorf("%s is required with an HSM: the token is chosen by its label, never by slot number", envPKCS11Token)
	}
	if (c.pkcs11PIN == "") == (c.pkcs11PINFile == "") {
		return fmt.Errorf("set exactly one of %s and %s (the user PIN of token %q)", envPKCS11PIN, envPKCS11PINFile, c.pkcs11Token)
	}
	if c.pkcs11SealedRoot != "" {
		if _, err := os.Stat(c.pkcs11SealedRoot); err != nil {
			return fmt.Errorf("%s: %w", envPKCS11SealedRoot, err)
		}
	}
	return nil
}

func (c *config) pkcs11Config() pkcs11.Config {
	return pkcs11.Config{Module: c.pkcs11Module, TokenLabel: c.pkcs11Token, PIN: c.pkcs11PIN, PINFile: c.pkcs11PINFile}
}

// hsmNode is the HSM part of a node.
type hsmNode struct {
	h       *pkcs11.HSM
	keyring *pkcs11.Keyring     // root key in the token (nil in unseal mode)
	soft    *engine.SoftKeyring // unseal mode
}

// openKeyring returns the root keyring: the software key of the
// configuration, or the token's (opening the HSM into n.hsm).
func (n *node) openKeyring(ctx context.Context) (engine.Keyring, error) {
	if !n.cfg.hsmConfigured() {
		k, err := engine.NewSoftKeyringWithPrevious(n.cfg.rootKey, n.cfg.previousRoots()...) // root.go: MINIKMS_ROOT_KEY_PREVIOUS
		if err != nil {
			return nil, err
		}
		n.hsm = &hsmNode{soft: k}
		return k, nil
	}
	h, err := pkcs11.Open(ctx, n.cfg.pkcs11Config())
	if err != nil {
		return nil, fmt.Errorf("HSM: %w", err)
	}
	n.hsm = &hsmNode{h: h}
	if n.cfg.pkcs11SealedRoot != "" {
		b, err := os.ReadFile(n.cfg.pkcs11SealedRoot)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", envPKCS11SealedRoot, err)
		}
		if n.hsm.soft, err = h.UnsealRoot(ctx, string(b)); err != nil {
			return nil, fmt.Errorf("HSM unseal mode: open %s: %w", n.cfg.pkcs11SealedRoot, err)
		}
		n.log.Warn("HSM unseal mode: the root key was unsealed by the token and is in process memory", "token", n.cfg.pkcs11Token)
		return n.hsm.soft, nil
	}
	if n.hsm.keyring, err = h.Keyring(ctx); err != nil {
		return nil, fmt.Errorf("HSM: %w", err)
	}
	n.log.Info("root key in the HSM", "keyring", n.hsm.keyring.String())
	return n.hsm.keyring, nil
}

// keySource returns where CA and signing keys live.
func (n *node) keySource() pki.KeySource {
	sealed := pki.SealedKeys{Sealer: n.eng}
	if n.hsm == nil || n.hsm.h == nil {
		return sealed
	}
	return tokenKeys{token: n.hsm.h.KeySource(), sealed: sealed}
}

// tokenKeys generates every new key in the token. Keys made before the
// root key moved into the token (`hsm import-root`) are references sealed
// under the root key: they still load, in process memory as before.
type tokenKeys struct {
	token  pki.KeySource
	sealed pki.SealedKeys
}

func (k tokenKeys) Generate(ctx context.Context, label string) (crypto.Signer, []byte, error) {
	return k.token.Generate(ctx, label)
}

func (k tokenKeys) Load(ctx context.Context, label string, ref []byte) (crypto.Signer, error) {
	if bytes.HasPrefix(ref, []byte("pkcs11:")) {
		return k.token.Load(ctx, label, ref)
	}
	return k.sealed.Load(ctx, label, ref)
}

// hsmReady reports whether the token answers (nil without an HSM). In
// unseal mode the token is still needed to sign certificates, CRLs and
// audit checkpoints.
func (n *node) hsmReady(ctx context.Context) error {
	if n.hsm == nil || n.hsm.h == nil {
		return nil
	}
	if err := n.hsm.h.Ready(ctx); err != nil {
		return fmt.Errorf("HSM: %w", err)
	}
	return nil
}

// closeKeyring zeroizes the root keyring and closes the HSM.
func (n *node) closeKeyring() {
	if n.hsm == nil {
		return
	}
	if n.hsm.soft != nil {
		n.hsm.soft.Close()
	}
	if n.hsm.keyring != nil {
		n.hsm.keyring.Close()
	}
	if n.hsm.h != nil {
		if err := n.hsm.h.Close(); err != nil {
			n.log.Warn("closing the HSM", "err", err)
		}
	}
}

// runHSM: minikms hsm init | import-root | status.
func runHSM(ctx context.Context, args []string) error {
	const use = "minikms hsm init [--unseal FILE] | import-root [--root-key-file F | --data-dir D] [--unseal FILE] | status"
	if len(args) == 0 {
		return fmt.Errorf("%w: %s", errUsage, use)
	}
	switch args[0] {
	case "init", "import-root", "status":
	default:
		return fmt.Errorf("%w: unknown hsm command %q: %s", errUsage, args[0], use)
	}
	fl := flag.NewFlagSet("hsm "+args[0], flag.ContinueOnError)
	unseal := fl.String("unseal", "", "unseal mode: write the root key sealed by the token to this new file (for "+envPKCS11SealedRoot+") instead of keeping the root key in the token")
	var rootFile, dataDir *string
	if args[0] == "import-root" {
		rootFile = fl.String("root-key-file", "", "file holding the software root key in hex (default: "+envRootKey+")")
		dataDir = fl.String("data-dir", "", "development data directory: import its dev root key and use its database")
	}
	if err := fl.Parse(args[1:]); err != nil {
		return errUsage
	}
	if fl.NArg() > 0 {
		return fmt.Errorf("%w: unexpected argument %q", errUsage, fl.Arg(0))
	}
	cfg := config{}
	if err := cfg.fromEnv(); err != nil {
		return err
	}
	if !cfg.hsmConfigured() {
		return fmt.Errorf("no HSM configured: set %s, %s and %s or %s", envPKCS11Mod, envPKCS11Token, envPKCS11PIN, envPKCS11PINFile)
	}
	var root []byte
	switch args[0] {
	case "init", "status":
		if *unseal != "" && args[0] == "status" {
			return fmt.Errorf("%w: --unseal is for init and import-root", errUsage)
		}
		cfg.rootKey = nil // not used: init makes a new root
	case "import-root":
		var err error
		if root, err = importedRoot(&cfg, *rootFile, *dataDir); err != nil {
			return err
		}
		defer clear(root)
		cfg.rootKey = nil
	}
	if *unseal != "" {
		// The sealed root is written here; serve reads it from there.
		cfg.pkcs11SealedRoot = ""
	}
	if err := cfg.validateHSM(false); err != nil {
		return err
	}
	h, err := pkcs11.Open(ctx, cfg.pkcs11Config())
	if err != nil {
		return fmt.Errorf("HSM: %w", err)
	}
	defer h.Close()
	switch args[0] {
	case "status":
		st, err := h.Status(ctx)
		if err != nil {
			return err
		}
		fmt.Print(st.String())
		if cfg.pkcs11SealedRoot != "" {
			b, err := os.ReadFile(cfg.pkcs11SealedRoot)
			if err == nil {
				var kr *engine.SoftKeyring
				if kr, err = h.UnsealRoot(ctx, string(b)); err == nil {
					var kcv string
					kcv, err = engine.KeyCheckValue(ctx, kr, 1)
					kr.Close()
					fmt.Printf("unseal mode:  %s opens in this token, root key check value %s\n", cfg.pkcs11SealedRoot, kcv)
				}
			}
			if err != nil {
				return fmt.Errorf("unseal mode: %s does not open in this token: %w", cfg.pkcs11SealedRoot, err)
			}
		}
		return nil
	case "init":
		if *unseal != "" {
			root = make([]byte, engine.RootKeySize)
			if _, err := rand.Read(root); err != nil {
				return err
			}
			defer clear(root)
			if err := writeSealed(ctx, h, root, *unseal); err != nil {
				return err
			}
			fmt.Printf("new root key sealed by the token into %s (unseal mode: set %s=%s)\n", *unseal, envPKCS11SealedRoot, *unseal)
		} else {
			res, err := h.Init(ctx, pkcs11.InitOptions{})
			if err != nil {
				return err
			}
			fmt.Printf("root key %s created in token %q (check value %s; sensitive, never extractable)\n", res.Label, cfg.pkcs11Token, res.KeyCheckValue)
		}
	case "import-root":
		if *unseal != "" {
			if err := writeSealed(ctx, h, root, *unseal); err != nil {
				return err
			}
			fmt.Printf("root key sealed by the token into %s (unseal mode: set %s=%s)\n", *unseal, envPKCS11SealedRoot, *unseal)
		} else {
			res, err := h.ImportRoot(ctx, root)
			if err != nil {
				return err
			}
			what := "imported into"
			if !res.Created {
				what = "already in"
			}
			fmt.Printf("root key %s %s token %q (check value %s, the same as the software key's: existing data stays readable)\n", res.Label, what, cfg.pkcs11Token, res.KeyCheckValue)
		}
		fmt.Printf("now remove the software root key (%s, key files, backups) and start with the HSM settings only\n", envRootKey)
	}
	// With a store configured, open it through the token: this checks the
	// store's root key check value and creates the root CA and the audit
	// checkpoint key (in the token) if the store has none.
	if cfg.dbURL == "" {
		fmt.Printf("no store configured (%s): the CA keys are created in the token at the first start\n", envDBURL)
		return nil
	}
	if *unseal != "" {
		cfg.pkcs11SealedRoot = *unseal
	}
	if err := h.Close(); err != nil {
		return err
	}
	return hsmOpenStore(ctx, cfg, args[0])
}

// importedRoot finds the software root key import-root moves.
func importedRoot(cfg *config, file, dataDir string) ([]byte, error) {
	src := envRootKey
	var text string
	switch {
	case file != "":
		b, err := os.ReadFile(file)
		if err != nil {
			return nil, fmt.Errorf("--root-key-file: %w", err)
		}
		src, text = file, string(b)
	case dataDir != "":
		b, err := os.ReadFile(filepath.Join(dataDir, devRootKeyFile))
		if err != nil {
			return nil, fmt.Errorf("--data-dir %s: no development root key: %w", dataDir, err)
		}
		src, text = filepath.Join(dataDir, devRootKeyFile), string(b)
		if cfg.dbURL == "" {
			cfg.dbURL = filepath.Join(dataDir, "minikms.db")
		}
	case cfg.rootKey != nil:
		return append([]byte(nil), cfg.rootKey...), nil
	default:
		return nil, fmt.Errorf("which root key? set %s or pass --root-key-file or --data-dir", envRootKey)
	}
	k, err := engine.ParseRootKeyHex(text)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", src, err)
	}
	return k, nil
}

// writeSealed seals root with the token and writes it to a new file.
func writeSealed(ctx context.Context, h *pkcs11.HSM, root []byte, path string) error {
	sealed, err := h.SealRoot(ctx, root)
	if err != nil {
		return err
	}
	if err := writeNew(path, []byte(sealed+"\n"), 0o600); err != nil {
		return fmt.Errorf("--unseal %s: %w", path, err)
	}
	return nil
}

// hsmOpenStore opens the configured store through the HSM after init or
// import-root, creating the root CA and the checkpoint key if absent, and
// records the command in the audit log.
func hsmOpenStore(ctx context.Context, cfg config, cmd string) (err error) {
	if err := cfg.validate(); err != nil {
		return err
	}
	if !strings.Contains(cfg.dbURL, "://") {
		if _, err := os.Stat(cfg.dbURL); err != nil && cmd == "import-root" {
			return fmt.Errorf("store %s: %w", cfg.dbURL, err)
		}
	}
	n, err := open(ctx, cfg, newLogger(false))
	if err != nil {
		if errors.Is(err, engine.ErrWrongRootKey) {
			return fmt.Errorf("store %s was made with another root key: %w (to keep its data, run `minikms hsm import-root` with its software root key on a fresh token)", cfg.dbURL, err)
		}
		return err
	}
	defer n.close()
	defer n.auditAdmin(ctx, "admin.hsm."+cmd, "", cfg.pkcs11Token, &err)
	if _, err := n.auth.SigningKey(ctx, checkpointKeyLabel); err != nil {
		return fmt.Errorf("audit checkpoint key: %w", err)
	}
	fmt.Printf("store %s opens with the token's root key; root CA and audit checkpoint key ready\n", cfg.dbURL)
	if n.hsm != nil && n.hsm.h != nil {
		st, err := n.hsm.h.Status(ctx)
		if err != nil {
			return err
		}
		for _, o := range st.Objects {
			if o.Class == "private-key" || o.Class == "secret-key" {
				fmt.Printf("  %-40s %-11s sensitive=%v extractable=%v\n", o.Label, o.Class, o.Sensitive, o.Extractable)
			}
		}
	}
	return nil
}
