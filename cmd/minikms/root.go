package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/minikms/minikms/engine"
	"github.com/minikms/minikms/shamir"
)

// envRootKeyPrev is an older root key a server keeps reading while a root
// rotation re-wraps what is still under it.
const envRootKeyPrev = "MINIKMS_ROOT_KEY_PREVIOUS"

// rotateAfterObject, when set (only by tests), runs after each object
// `root rotate` re-wraps: the crash test kills the process there.
var rotateAfterObject func(done int64)

// previousRootEnv reads MINIKMS_ROOT_KEY_PREVIOUS.
func (c *config) previousRootEnv() error {
	v, ok := os.LookupEnv(envRootKeyPrev)
	if !ok || strings.TrimSpace(v) == "" {
		return nil
	}
	k, err := engine.ParseRootKeyHex(v)
	if err != nil {
		return fmt.Errorf("%s: %w", envRootKeyPrev, err)
	}
	c.rootKeyPrevious = k
	return nil
}

// runRoot implements `minikms root recover | rotate | status`.
func runRoot(ctx context.Context, args []string) error {
	if len(args) == 0 {
		return fmt.Errorf("%w: minikms root recover | rotate | status", errUsage)
	}
	switch args[0] {
	case "recover":
		return runRootRecover(ctx, args[1:], os.Stdin, os.Stdout, os.Stderr)
	case "rotate":
		return runRootRotate(ctx, args[1:])
	case "status":
		return runRootRotate(ctx, append([]string{"--status"}, args[1:]...))
	}
	return fmt.Errorf("%w: unknown root command %q (recover, rotate, status)", errUsage, args[0])
}

// runRootRecover combines shares into the root key and verifies it.
func runRootRecover(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	fl := flag.NewFlagSet("root recover", flag.ContinueOnError)
	kcv := fl.String("kcv", "", "expected key check value (16 hex digits); default: the store's (MINIKMS_DB_URL) when set")
	out := fl.String("out", "", "write the root key (hex) to this new file, mode 0600, instead of printing it")
	if err := fl.Parse(args); err != nil {
		return errUsage
	}
	var prompt io.Writer
	if fl.NArg() == 0 {
		prompt = stderr
	}
	shares, err := readShares(fl.Args(), stdin, prompt)
	if err != nil {
		return err
	}
	if len(shares) == 0 {
		return errors.New("no shares given")
	}
	root, err := shamir.Combine(shares)
	if err != nil {
		return err
	}
	defer clear(root)
	if len(root) != engine.RootKeySize {
		return fmt.Errorf("the shares hold a %d-byte secret, not a %d-byte root key", len(root), engine.RootKeySize)
	}
	got := engine.KeyCheckValueOf(root)
	switch {
	case *kcv != "":
		if !strings.EqualFold(strings.TrimSpace(*kcv), got) {
			return fmt.Errorf("recovered key has check value %s, expected %s: the shares are wrong or of another root key", got, *kcv)
		}
		fmt.Fprintln(stderr, "key check value verified:", got)
	case os.Getenv(envDBURL) != "":
		dbURL := strings.TrimSpace(os.Getenv(envDBURL))
		if err := checkStoreExists(dbURL); err != nil {
			return err
		}
		st, err := openStore(ctx, dbURL, nil)
		if err != nil {
			return err
		}
		versions, err := engine.RootVersions(ctx, st)
		st.Close()
		if err != nil {
			return err
		}
		if len(versions) == 0 {
			return fmt.Errorf("store %s records no root key yet: cannot verify (give --kcv)", storeName(dbURL))
		}
		var match uint32
		for v, k := range versions {
			if k == got {
				match = v
			}
		}
		if match == 0 {
			return fmt.Errorf("recovered key has check value %s, which is no root version of store %s (%s)", got, storeName(dbURL), describeRootVersions(versions))
		}
		fmt.Fprintf(stderr, "key check value %s verified: root version %d of the store\n", got, match)
	default:
		fmt.Fprintf(stderr, "WARNING: not verified (no --kcv and no %s): key check value %s\n", envDBURL, got)
	}
	if *out != "" {
		if err := writeNew(*out, []byte(hex.EncodeToString(root)+"\n"), 0o600); err != nil {
			return err
		}
		fmt.Fprintf(stderr, "root key written to %s (use it as %s)\n", *out, envRootKeyFile)
		return nil
	}
	fmt.Fprintln(stdout, hex.EncodeToString(root))
	return nil
}

func describeRootVersions(m map[uint32]string) string {
	vs := make([]uint32, 0, len(m))
	for v := range m {
		vs = append(vs, v)
	}
	slices.Sort(vs)
	parts := make([]string, len(vs))
	for i, v := range vs {
		parts[i] = fmt.Sprintf("version %d: %s", v, m[v])
	}
	return strings.Join(parts, ", ")
}

// runRootRotate implements `minikms root rotate`.
func runRootRotate(ctx context.Context, args []string) (err error) {
	fl := flag.NewFlagSet("root rotate", flag.ContinueOnError)
	newFile := fl.String("new-root-key-file", "", "file holding the new root key (hex); MINIKMS_ROOT_KEY is the old one")
	generate := fl.Bool("generate", false, "generate the new root key and split it into shares (--shares, --threshold, --out-dir)")
	n := fl.Int("shares", 5, "with --generate: number of shares")
	k := fl.Int("threshold", 3, "with --generate: shares needed to recover")
	outDir := fl.String("out-dir", "", "with --generate: directory for the share files (required)")
	batch := fl.Int("batch", 500, "objects per checkpoint")
	registerOnly := fl.Bool("register-only", false, "only record the new root version in the store (then restart the servers with both keys) and stop")
	finish := fl.Bool("finish", false, "confirm a complete rotation: drop the old version's check value and the backups")
	status := fl.Bool("status", false, "show root versions and rotation progress, change nothing")
	if err := fl.Parse(args); err != nil {
		return errUsage
	}
	if fl.NArg() != 0 || (*newFile != "" && *generate) {
		return fmt.Errorf("%w: minikms root rotate [--new-root-key-file F | --generate --out-dir D] [--register-only | --finish | --status]", errUsage)
	}
	cfg := config{}
	if err := cfg.fromEnv(); err != nil {
		return err
	}
	if cfg.hsmConfigured() {
		return fmt.Errorf("root rotation needs the root key in software (%s): with the root in an HSM (%s), rotate with the software root and import the new root into the token afterwards (minikms hsm import-root)", envRootKey, envPKCS11Mod)
	}
	if len(cfg.rootKey) != engine.RootKeySize {
		return fmt.Errorf("%s (or %s) is required: the store's current root key", envRootKey, envRootKeyFile)
	}
	if cfg.dbURL == "" {
		return fmt.Errorf("%s is required", envDBURL)
	}
	if err := checkStoreExists(cfg.dbURL); err != nil {
		return err
	}
	// oldRoot: what is rotated away from; newRoot: what it goes to.
	oldRoot, newRoot := cfg.rootKey, []byte(nil)
	switch {
	case *newFile != "":
		b, err := os.ReadFile(*newFile)
		if err != nil {
			return err
		}
		if newRoot, err = engine.ParseRootKeyHex(string(b)); err != nil {
			return fmt.Errorf("--new-root-key-file %s: %w", *newFile, err)
		}
	case *generate:
		if *outDir == "" {
			return fmt.Errorf("%w: --generate needs --out-dir for the new shares", errUsage)
		}
		newRoot = make([]byte, engine.RootKeySize)
		if _, err := io.ReadFull(rand.Reader, newRoot); err != nil {
			return err
		}
	case cfg.rootKeyPrevious != nil:
		// A server-style configuration: the new root is current.
		oldRoot, newRoot = cfg.rootKeyPrevious, cfg.rootKey
	default:
		// --status / --finish with the new root alone.
		oldRoot, newRoot = nil, cfg.rootKey
	}
	defer clear(newRoot)
	if oldRoot != nil && string(oldRoot) == string(newRoot) {
		return errors.New("the new root key is the current one")
	}
	log := newLogger(false)
	st, err := openStore(ctx, cfg.dbURL, log)
	if err != nil {
		return err
	}
	defer st.Close()
	open := func(cur []byte, prev ...[]byte) (*engine.Engine, func(), error) {
		kr, err := engine.NewSoftKeyringWithPrevious(cur, prev...)
		if err != nil {
			return nil, nil, err
		}
		eng, err := engine.Open(ctx, engine.Config{Store: st, Keyring: kr, Salt: cfg.salt, Logger: log})
		if err != nil {
			kr.Close()
			return nil, nil, err
		}
		return eng, func() { eng.Close(); kr.Close() }, nil
	}

	if oldRoot != nil && !*status {
		// Prove the old root (and the salt), then register the new one.
		eng, done, err := open(oldRoot)
		if err != nil {
			return fmt.Errorf("old root key: %w", err)
		}
		if *generate {
			if s, err := eng.RotationStatus(ctx); err != nil {
				done()
				return err
			} else if s.State != nil && !s.State.Complete {
				done()
				return fmt.Errorf("a rotation to root version %d is unfinished: resume it with --new-root-key-file (recover that root from its shares with minikms root recover)", s.State.To)
			}
			kcv, err := splitAndWrite(newRoot, *n, *k, *outDir, os.Stdout)
			if err != nil {
				done()
				return err
			}
			fmt.Println("new root key check value:", kcv)
		}
		v, err := eng.RegisterRoot(ctx, newRoot)
		done()
		if err != nil {
			return err
		}
		fmt.Printf("new root registered as version %d (key check value %s)\n", v, engine.KeyCheckValueOf(newRoot))
		if *registerOnly {
			fmt.Printf("next: restart every server with %s=<new root> and %s=<old root>, then run minikms root rotate again\n", envRootKey, envRootKeyPrev)
			return nil
		}
	}
	var prev [][]byte
	if oldRoot != nil {
		prev = append(prev, oldRoot)
	}
	eng, done, err := open(newRoot, prev...)
	if err != nil {
		return fmt.Errorf("new root key: %w", err)
	}
	defer done()

	switch {
	case *status:
		s, err := eng.RotationStatus(ctx)
		if err != nil {
			return err
		}
		fmt.Println("root versions:", describeRootVersions(s.Versions))
		if s.State == nil {
			fmt.Println("no rotation in progress")
		} else {
			fmt.Printf("rotation to version %d: started %s, complete %v, %d re-wrapped, checkpoint at seq %d\n",
				s.State.To, s.State.Started.Format(time.RFC3339), s.State.Complete, s.State.Rewrapped, s.State.AfterSeq)
		}
		fmt.Printf("objects still under an older version: %d; backup records kept: %d\n", s.Remaining, s.Backups)
		return nil
	case *finish:
		dropped, err := eng.FinishRootRotation(ctx)
		if err != nil {
			return err
		}
		fmt.Printf("rotation finished: root versions %v dropped with their backups; only root version %d is needed now\n", dropped, eng.RootVersion())
		return nil
	}

	p := newProgress(os.Stderr, "re-wrapping objects")
	res, err := eng.RotateRoot(ctx, engine.RotateOptions{BatchSize: *batch, Progress: p.update, AfterObject: rotateAfterObject})
	p.finish()
	if err != nil {
		return fmt.Errorf("%w (progress is checkpointed: run the same command again to resume)", err)
	}
	fmt.Printf("rotation to root version %d complete: %d objects re-wrapped in total; old wrapped material kept as backup\n", res.To, res.Rewrapped)
	fmt.Printf("next: restart the servers with %s=<new root> only, check them, then run minikms root rotate --finish\n", envRootKey)
	return nil
}

// progress prints a progress line (count, rate, ETA) on a terminal or log.
type progress struct {
	w     io.Writer
	what  string
	start time.Time
	last  time.Time
	shown bool
}

func newProgress(w io.Writer, what string) *progress {
	return &progress{w: w, what: what, start: time.Now()}
}

func (p *progress) update(done, total int64) {
	now := time.Now()
	if p.shown && now.Sub(p.last) < 200*time.Millisecond && done < total {
		return
	}
	p.last, p.shown = now, true
	el := now.Sub(p.start).Seconds()
	rate := 0.0
	if el > 0 {
		rate = float64(done) / el
	}
	eta := "?"
	if rate > 0 && total >= done {
		eta = (time.Duration(float64(total-done) / rate * float64(time.Second))).Round(time.Second).String()
	}
	pct := 100.0
	if total > 0 {
		pct = float64(done) * 100 / float64(total)
	}
	fmt.Fprintf(p.w, "%s: %d/%d (%.0f%%), %.0f/s, ETA %s\n", p.what, done, total, pct, rate, eta)
}

func (p *progress) finish() {
	if p.shown {
		fmt.Fprintf(p.w, "%s: done in %s\n", p.what, time.Since(p.start).Round(time.Millisecond))
	}
}

// runKey implements `minikms key rotate --tenant T --scope S`: ReKey of
// every current key of the scope (Active symmetric keys of the Object
// Group that no newer key replaces yet).
func runKey(ctx context.Context, args []string) (err error) {
	if len(args) == 0 || args[0] != "rotate" {
		return fmt.Errorf("%w: minikms key rotate --tenant T --scope S", errUsage)
	}
	fl := flag.NewFlagSet("key rotate", flag.ContinueOnError)
	var af adminFlags
	af.register(fl)
	tenant := fl.String("tenant", "", "tenant id (required)")
	scope := fl.String("scope", engine.DefaultScope, "scope: the keys' Object Group")
	dry := fl.Bool("dry-run", false, "list the keys that would be rotated, change nothing")
	if err := fl.Parse(args[1:]); err != nil {
		return errUsage
	}
	if fl.NArg() != 0 || *tenant == "" || *scope == "" {
		return fmt.Errorf("%w: minikms key rotate --tenant T --scope S", errUsage)
	}
	if !engine.ValidTenantID(*tenant) {
		return fmt.Errorf("tenant id %q: 1-63 characters of a-z, 0-9 and '-', not starting with '-'", *tenant)
	}
	n, err := af.openAdmin(ctx)
	if err != nil {
		return err
	}
	defer n.close()
	defer n.auditAdmin(ctx, "admin.key.rotate", *tenant, *scope, &err)
	p := engine.Principal{Tenant: *tenant, Member: "cli:" + cliUser(), Role: engine.RoleAdmin}
	res, err := n.eng.Locate(ctx, p, engine.LocateRequest{Attrs: []engine.Attribute{
		{Name: engine.AttrObjectGroup, Value: *scope},
		{Name: engine.AttrObjectType, Value: engine.TypeSymmetricKey},
		{Name: engine.AttrState, Value: engine.StateActive},
	}})
	if err != nil {
		return err
	}
	var current []string
	for _, id := range res.IDs {
		_, links, err := n.eng.GetAttributes(ctx, p, id, []string{engine.AttrLink})
		if err != nil {
			return err
		}
		replaced := false
		for _, a := range links {
			if l, ok := a.Value.(engine.Link); ok && l.LinkType == engine.LinkReplacementObject {
				replaced = true
			}
		}
		if !replaced {
			current = append(current, id)
		}
	}
	if len(current) == 0 {
		return fmt.Errorf("tenant %s scope %q has no active key to rotate", *tenant, *scope)
	}
	pr := newProgress(os.Stderr, "rotating keys")
	for i, id := range current {
		if *dry {
			fmt.Printf("would rotate %s\n", id)
			continue
		}
		nk, err := n.eng.ReKey(ctx, p, engine.ReKeyRequest{ID: id})
		if err != nil {
			return fmt.Errorf("rekey %s (%d of %d rotated before it): %w", id, i, len(current), err)
		}
		fmt.Printf("%s -> %s\n", id, nk.ID)
		pr.update(int64(i+1), int64(len(current)))
	}
	pr.finish()
	return nil
}

// previousRoots lists the previous root keys a server keeps reading.
func (c *config) previousRoots() [][]byte {
	if c.rootKeyPrevious == nil {
		return nil
	}
	return [][]byte{c.rootKeyPrevious}
}
