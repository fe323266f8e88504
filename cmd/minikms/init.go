package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/minikms/minikms/engine"
	"github.com/minikms/minikms/shamir"
)

// Root key ceremony: `minikms init` makes a root key and splits it into
// Shamir shares (k of n) for custodians; `minikms root recover` combines k
// shares back (root.go).

// runInit implements `minikms init`.
func runInit(_ context.Context, args []string) error {
	fl := flag.NewFlagSet("init", flag.ContinueOnError)
	n := fl.Int("shares", 5, "number of shares (custodians), at most 255")
	k := fl.Int("threshold", 3, "shares needed to recover the root key (2 to --shares)")
	outDir := fl.String("out-dir", "", "write one share file per custodian (mode 0600) into this new or empty directory instead of printing the shares")
	printRoot := fl.Bool("print-root", false, "also print the root key in hex on stdout (automation only: the whole key leaves the ceremony)")
	if err := fl.Parse(args); err != nil {
		return errUsage
	}
	if fl.NArg() != 0 {
		return fmt.Errorf("%w: minikms init [--shares N] [--threshold K] [--out-dir DIR] [--print-root]", errUsage)
	}
	root := make([]byte, engine.RootKeySize)
	if _, err := rand.Read(root); err != nil {
		return err
	}
	defer clear(root)
	kcv, err := splitAndWrite(root, *n, *k, *outDir, os.Stdout)
	if err != nil {
		return err
	}
	fmt.Printf("root key check value: %s\n", kcv)
	if *printRoot {
		fmt.Fprintln(os.Stderr, "WARNING: --print-root: the whole root key is printed below; whoever sees it needs no shares")
		fmt.Printf("root key: %s\n", hex.EncodeToString(root))
	} else {
		fmt.Println("the root key itself was not printed: recover it with `minikms root recover` from", *k, "shares")
	}
	return nil
}

// splitAndWrite splits root into n shares (threshold k) and writes them to
// one file per custodian in outDir, or to w. It returns the key check
// value.
func splitAndWrite(root []byte, n, k int, outDir string, w io.Writer) (string, error) {
	shares, err := shamir.Split(root, n, k)
	if err != nil {
		return "", fmt.Errorf("%w: %v", errUsage, err)
	}
	kcv := engine.KeyCheckValueOf(root)
	if outDir != "" {
		if err := os.MkdirAll(outDir, 0o700); err != nil {
			return "", err
		}
		if ents, err := os.ReadDir(outDir); err != nil {
			return "", err
		} else if len(ents) > 0 {
			return "", fmt.Errorf("--out-dir %s is not empty: refusing to mix shares of two ceremonies", outDir)
		}
	}
	for i, s := range shares {
		text := fmt.Sprintf("# miniKMS root key share %d of %d (any %d recover the root key)\n# root key check value: %s\n# created %s\n%s\n",
			i+1, n, k, kcv, time.Now().UTC().Format(time.RFC3339), s.String())
		if outDir == "" {
			fmt.Fprintf(w, "share %d of %d: %s\n", i+1, n, s.String())
			continue
		}
		path := filepath.Join(outDir, fmt.Sprintf("share-%d-of-%d.txt", i+1, n))
		if err := writeNew(path, []byte(text), 0o600); err != nil { // admin.go
			return "", err
		}
		fmt.Fprintf(w, "share %d of %d written to %s\n", i+1, n, path)
	}
	fmt.Fprintf(w, "%d shares, threshold %d: give each custodian one share; keep them apart\n", n, k)
	return kcv, nil
}

// readShares reads shares from files (one or more per file) or, with no
// files, from r one per line, stopping once the threshold is reached. It
// names the share that does not parse.
func readShares(files []string, r io.Reader, prompt io.Writer) ([]shamir.Share, error) {
	var shares []shamir.Share
	add := func(where, line string) error {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			return nil
		}
		if _, rest, ok := strings.Cut(line, ": "); ok && strings.HasPrefix(line, "share ") {
			line = rest // "share 2 of 5: minikms-share-..." as init prints it
		}
		s, err := shamir.ParseString(line)
		if err != nil {
			return fmt.Errorf("share %d (%s): %w", len(shares)+1, where, err)
		}
		shares = append(shares, s)
		return nil
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		for i, line := range strings.Split(string(b), "\n") {
			if err := add(fmt.Sprintf("%s line %d", f, i+1), line); err != nil {
				return nil, err
			}
		}
	}
	if len(files) > 0 {
		return shares, nil
	}
	if prompt != nil {
		fmt.Fprintln(prompt, "enter shares, one per line (end with an empty input or Ctrl-D):")
	}
	buf := make([]byte, 0, 4096)
	line := 0
	one := make([]byte, 1)
	for {
		// Byte at a time: stop reading as soon as enough shares are in,
		// without consuming input meant for something else.
		nr, err := r.Read(one)
		if nr == 1 && one[0] != '\n' {
			if len(buf) > 64<<10 {
				return nil, fmt.Errorf("share line %d is too long", line+1)
			}
			buf = append(buf, one[0])
			continue
		}
		if nr == 1 || (err == io.EOF && len(buf) > 0) {
			line++
			if aerr := add(fmt.Sprintf("input line %d", line), string(buf)); aerr != nil {
				return nil, aerr
			}
			buf = buf[:0]
			if len(shares) > 0 && len(shares) >= int(shares[0].Threshold) {
				return shares, nil
			}
		}
		if err == io.EOF {
			return shares, nil
		}
		if err != nil {
			return nil, err
		}
	}
}
