// Command minikms is the miniKMS server and its administration tool.
//
//	minikms dev    [--data-dir D] [--kmip-addr A] [--http-addr A]   development server
//	minikms serve                                                   production server (environment configuration)
//	minikms tenant | member | client | crl                         administration
//	minikms audit verify | export | query                           the audit log
//	minikms hsm init | import-root | status                         HSM (PKCS#11) administration
//	minikms backup --out FILE | restore --in FILE                   backup and restore of the store
//	minikms init | root recover | rotate | status | key rotate       root key ceremony and rotation
//	minikms bench                                                   KMIP load generator
//	minikms version
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

// version is set at build time (-ldflags "-X main.version=...").
var version = "dev"

type command struct {
	name    string
	summary string
	run     func(ctx context.Context, args []string) error
}

func commands() []command {
	return []command{
		{"dev", "run a development server with an embedded store and a generated PKI", runDev},
		{"serve", "run the server, configured from MINIKMS_* environment variables", runServe},
		{"tenant", "tenants: create NAME | list", runTenant},
		{"member", "member certificates: issue | list | revoke", runMember},
		{"client", "externally issued client certificates: register | list | remove", runClient},
		{"audit", "audit log: verify | export | query", runAudit},
		{"crl", "write a CRL (DER) of a tenant CA or of the root CA", runCRL},
		{"hsm", "HSM (PKCS#11): init | import-root | status", runHSM},
		{"init", "root key ceremony: generate a root key and split it into Shamir shares (--shares 5 --threshold 3)", runInit},
		{"root", "root key: recover (combine shares) | rotate (re-wrap under a new root) | status", runRoot},
		{"key", "key rotate --tenant T --scope S: ReKey the scope's current keys", runKey},
		{"backup", "write a consistent snapshot of the store to a file (--out FILE); no root key needed", runBackup},
		{"restore", "restore a backup file into a fresh store (--in FILE) with the same root key", runRestore},
		{"bench", "KMIP load generator: ops/s, latency and CPU per operation against a running server", runBench},
		{"version", "print the version", func(context.Context, []string) error { fmt.Println("minikms", version); return nil }},
	}
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: minikms <command> [flags]\n\ncommands:")
	for _, c := range commands() {
		fmt.Fprintf(os.Stderr, "  %-10s %s\n", c.name, c.summary)
	}
}

// errUsage marks a command-line mistake (exit status 2).
var errUsage = errors.New("usage error")

func main() {
	if len(os.Args) < 2 {
		usage()
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	for _, c := range commands() {
		if c.name == os.Args[1] {
			err := c.run(ctx, os.Args[2:])
			if err != nil && ctx.Err() != nil && !errors.Is(err, errUsage) {
				// Interrupted while starting: a requested stop, not a failure.
				fmt.Fprintln(os.Stderr, "minikms "+c.name+": interrupted during start-up:", err)
				err = nil
			}
			if err != nil {
				fmt.Fprintln(os.Stderr, "minikms "+c.name+": "+err.Error())
				if errors.Is(err, errUsage) {
					os.Exit(2)
				}
				os.Exit(1)
			}
			return
		}
	}
	if os.Args[1] == "-h" || os.Args[1] == "--help" || os.Args[1] == "help" {
		usage()
		return
	}
	fmt.Fprintf(os.Stderr, "minikms: unknown command %q\n", os.Args[1])
	usage()
	os.Exit(2)
}
