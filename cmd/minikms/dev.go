package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strings"

	"github.com/minikms/minikms/certs"
	"github.com/minikms/minikms/engine"
)

func runDev(ctx context.Context, args []string) error {
	fl := flag.NewFlagSet("dev", flag.ContinueOnError)
	dataDir := fl.String("data-dir", "./.minikms", "directory for the database, the dev root key and the certificate bundle")
	kmipAddr := fl.String("kmip-addr", "127.0.0.1:5696", "KMIP (mTLS) listen address")
	httpAddr := fl.String("http-addr", "127.0.0.1:8080", "HTTP listen address (health)")
	if err := fl.Parse(args); err != nil {
		return errUsage
	}
	if fl.NArg() > 0 {
		return fmt.Errorf("%w: unexpected argument %q", errUsage, fl.Arg(0))
	}
	cfg := config{dev: true, dataDir: *dataDir}
	if err := cfg.fromEnv(); err != nil {
		return err
	}
	cfg.kmipAddr, cfg.httpAddr = *kmipAddr, *httpAddr
	if err := os.MkdirAll(cfg.dataDir, 0o700); err != nil {
		return err
	}
	log := newLogger(false)
	if cfg.rootKey == nil && !cfg.hsmConfigured() {
		k, created, err := devRootKey(cfg.dataDir)
		if err != nil {
			return err
		}
		cfg.rootKey = k
		log.Warn("DEVELOPMENT MODE: the root key is stored in plain text in the data directory; never use dev for real keys",
			"file", filepath.Join(cfg.dataDir, devRootKeyFile), "created", created)
	}
	if cfg.dbURL == "" {
		cfg.dbURL = filepath.Join(cfg.dataDir, "minikms.db")
	}
	cfg.hosts = []string{"localhost", "127.0.0.1", "::1"}
	if err := cfg.validate(); err != nil {
		return err
	}
	n, err := open(ctx, cfg, log)
	if err != nil {
		return err
	}
	_, port, _ := net.SplitHostPort(cfg.kmipAddr)
	bundle := certs.Bundle{Dir: filepath.Join(cfg.dataDir, "certs")}
	cert, err := bundle.WriteDev(ctx, n.auth, cfg.hosts, port)
	if err != nil {
		n.close()
		return fmt.Errorf("development certificates: %w", err)
	}
	cas, err := n.auth.TenantCertificates(ctx)
	if err != nil {
		n.close()
		return err
	}
	root, _ := n.auth.Root(ctx)
	n.verifier.SetTrust(root.Cert, cas)
	if err := n.listen(ctx, cert); err != nil {
		n.close()
		return err
	}
	printDevBanner(n, bundle)
	return n.run(ctx)
}

func printDevBanner(n *node, b certs.Bundle) {
	var sb strings.Builder
	fmt.Fprintf(&sb, "miniKMS %s (development mode)\n", version)
	fmt.Fprintf(&sb, "  KMIP over mutual TLS  %s\n", n.kmipLn.Addr())
	fmt.Fprintf(&sb, "  HTTP                  http://%s/healthz  /readyz  /metrics\n", n.httpLn.Addr())
	fmt.Fprintf(&sb, "  store                 %s\n", n.cfg.dbURL)
	fmt.Fprintf(&sb, "  trust anchor (CA)     %s\n", b.CAFile())
	fmt.Fprintf(&sb, "  client certificates:\n")
	for _, m := range certs.DevMembers {
		c, k := b.MemberFiles(m.Tenant, m.Member)
		fmt.Fprintf(&sb, "    %-8s %-6s role %-6s %s  %s\n", m.Tenant, m.Member, m.Role, c, k)
	}
	fmt.Fprintf(&sb, "  PyKMIP configuration  %s (sections acme-admin, acme-app, globex-admin, globex-app)\n", filepath.Join(b.Dir, "pykmip.conf"))
	fmt.Fprint(os.Stdout, sb.String())
}

const devRootKeyFile = "dev-root.key"

// devRootKey reads the development root key, creating it on first start.
func devRootKey(dir string) ([]byte, bool, error) {
	path := filepath.Join(dir, devRootKeyFile)
	b, err := os.ReadFile(path)
	if err == nil {
		k, err := engine.ParseRootKeyHex(string(b))
		if err != nil {
			return nil, false, fmt.Errorf("%s: %w", path, err)
		}
		return k, false, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, false, err
	}
	k := make([]byte, engine.RootKeySize)
	if _, err := rand.Read(k); err != nil {
		return nil, false, err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, false, err
	}
	if _, err := f.WriteString(hex.EncodeToString(k) + "\n"); err != nil {
		f.Close()
		return nil, false, err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return nil, false, err
	}
	return k, true, f.Close()
}
