package main

import (
	"cmp"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/minikms/minikms/audit"
	"github.com/minikms/minikms/engine"
	"github.com/minikms/minikms/pki"
)

// The administration commands work on the store directly, next to a
// running server or without one: the server picks their changes up within
// a second (revocations, registrations, new tenants). They take their
// configuration like `serve` (MINIKMS_* variables) or, with --data-dir,
// from a development data directory.

// adminFlags adds the store selection flags every admin command shares.
type adminFlags struct {
	dataDir string
}

func (a *adminFlags) register(fl *flag.FlagSet) {
	fl.StringVar(&a.dataDir, "data-dir", "", "development data directory (uses its dev root key and database) instead of MINIKMS_* variables")
}

// openAdmin opens the store, engine and authority for an admin command.
func (a *adminFlags) openAdmin(ctx context.Context) (*node, error) {
	cfg := config{}
	if err := cfg.fromEnv(); err != nil {
		return nil, err
	}
	if a.dataDir != "" {
		if cfg.rootKey == nil && !cfg.hsmConfigured() {
			b, err := os.ReadFile(filepath.Join(a.dataDir, devRootKeyFile))
			if err != nil {
				return nil, fmt.Errorf("--data-dir %s: no development root key (%v); start `minikms dev --data-dir %s` once first", a.dataDir, err, a.dataDir)
			}
			if cfg.rootKey, err = engine.ParseRootKeyHex(string(b)); err != nil {
				return nil, err
			}
		}
		if cfg.dbURL == "" {
			cfg.dbURL = filepath.Join(a.dataDir, "minikms.db")
		}
	}
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if err := checkStoreExists(cfg.dbURL); err != nil {
		return nil, err
	}
	return open(ctx, cfg, newLogger(false))
}

// auditAdmin records an administrative command and its outcome (usage
// errors are not actions). The change is made before it is recorded: if
// the record fails, the command says so and fails.
func (n *node) auditAdmin(ctx context.Context, action, tenant, object string, errp *error) {
	if errors.Is(*errp, errUsage) {
		return
	}
	e := engine.AuditEvent{Tenant: tenant, Member: "cli:" + cliUser(), Role: "operator", Action: action, Object: object, Status: audit.StatusSuccess}
	if s := os.Getenv("SUDO_USER"); s != "" {
		e.Details = map[string]string{"sudo_user": s}
	}
	if *errp != nil {
		e.Status, e.Reason = audit.StatusFailure, (*errp).Error()
	}
	if err := n.audit.Record(ctx, []engine.AuditEvent{e}); err != nil && *errp == nil {
		*errp = fmt.Errorf("%s was done, but the audit log could not record it: %w", action, err)
	}
}

// cliUser names the operating-system user running a command.
func cliUser() string {
	if u, err := user.Current(); err == nil {
		return u.Username
	}
	return strconv.Itoa(os.Getuid())
}

func runTenant(ctx context.Context, args []string) (err error) {
	if len(args) == 0 {
		return fmt.Errorf("%w: minikms tenant create NAME | list", errUsage)
	}
	fl := flag.NewFlagSet("tenant "+args[0], flag.ContinueOnError)
	var af adminFlags
	af.register(fl)
	if err := fl.Parse(args[1:]); err != nil {
		return errUsage
	}
	n, err := af.openAdmin(ctx)
	if err != nil {
		return err
	}
	defer n.close()
	defer n.auditAdmin(ctx, "admin.tenant."+args[0], fl.Arg(0), "", &err)
	switch args[0] {
	case "create":
		if fl.NArg() != 1 {
			return fmt.Errorf("%w: minikms tenant create NAME", errUsage)
		}
		name := fl.Arg(0)
		if !engine.ValidTenantID(name) {
			return fmt.Errorf("tenant id %q: 1-63 characters of a-z, 0-9 and '-', not starting with '-'", name)
		}
		if _, err := n.auth.Tenant(ctx, name, false); err == nil {
			return fmt.Errorf("tenant %q already exists", name)
		}
		ca, err := n.auth.Tenant(ctx, name, true)
		if err != nil {
			return err
		}
		fmt.Printf("tenant %s created; CA serial %s, valid until %s\n", name, pki.SerialHex(ca.Cert), ca.Cert.NotAfter.Format(time.DateOnly))
		return nil
	case "list":
		tenants, err := n.auth.Tenants(ctx)
		if err != nil {
			return err
		}
		slices.Sort(tenants)
		for _, t := range tenants {
			fmt.Println(t)
		}
		return nil
	}
	return fmt.Errorf("%w: unknown tenant command %q (create, list)", errUsage, args[0])
}

func runMember(ctx context.Context, args []string) (err error) {
	if len(args) == 0 {
		return fmt.Errorf("%w: minikms member issue | list | revoke", errUsage)
	}
	fl := flag.NewFlagSet("member "+args[0], flag.ContinueOnError)
	var af adminFlags
	af.register(fl)
	tenant := fl.String("tenant", "", "tenant id")
	member := fl.String("member", "", "member id")
	role := fl.String("role", string(engine.RoleApp), "role: admin, app or auditor")
	csrFile := fl.String("csr", "", "issue for this PKCS#10 request (PEM or DER) instead of a new key")
	outDir := fl.String("out", ".", "directory for MEMBER.crt (and MEMBER.key for a new key)")
	serial := fl.String("serial", "", "certificate serial (hex) to revoke")
	reason := fl.String("reason", "cessation", "revocation reason: unspecified, keyCompromise, affiliationChanged, superseded, cessation, privilegeWithdrawn")
	if err := fl.Parse(args[1:]); err != nil {
		return errUsage
	}
	n, err := af.openAdmin(ctx)
	if err != nil {
		return err
	}
	defer n.close()
	defer n.auditAdmin(ctx, "admin.member."+args[0], *tenant, cmp.Or(*serial, *member), &err)
	switch args[0] {
	case "issue":
		if *tenant == "" || *member == "" {
			return fmt.Errorf("%w: --tenant and --member are required", errUsage)
		}
		return issueMember(ctx, n, *tenant, *member, engine.Role(*role), *csrFile, *outDir)
	case "list":
		recs, err := n.store.Certificates(ctx, *tenant)
		if err != nil {
			return err
		}
		revoked := map[string]bool{}
		for _, t := range uniqueTenants(recs) {
			rs, err := n.store.Revocations(ctx, t)
			if err != nil {
				return err
			}
			for _, r := range rs {
				revoked[t+"/"+r.Serial] = true
			}
		}
		w := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(w, "TENANT\tMEMBER\tROLE\tSERIAL\tNOT AFTER\tSTATUS")
		for _, r := range recs {
			status := "valid"
			switch {
			case revoked[r.Tenant+"/"+r.Serial]:
				status = "revoked"
			case time.Now().After(r.NotAfter):
				status = "expired"
			}
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\n", r.Tenant, r.Member, r.Role, r.Serial, r.NotAfter.Format(time.DateOnly), status)
		}
		return w.Flush()
	case "revoke":
		if *tenant == "" || (*serial == "") == (*member == "") {
			return fmt.Errorf("%w: --tenant and exactly one of --serial or --member are required", errUsage)
		}
		code, ok := crlReasons[*reason]
		if !ok {
			return fmt.Errorf("%w: unknown --reason %q", errUsage, *reason)
		}
		serials := []string{*serial}
		if *member != "" {
			recs, err := n.store.Certificates(ctx, *tenant)
			if err != nil {
				return err
			}
			serials = nil
			for _, r := range recs {
				if r.Member == *member {
					serials = append(serials, r.Serial)
				}
			}
			if len(serials) == 0 {
				return fmt.Errorf("tenant %s has no certificate for member %q", *tenant, *member)
			}
		}
		for _, s := range serials {
			added, err := n.auth.Revoke(ctx, *tenant, s, code)
			if err != nil {
				return err
			}
			if added {
				fmt.Printf("revoked %s/%s; running servers refuse it within %s\n", *tenant, s, identityPollInterval)
			} else {
				fmt.Printf("%s/%s was already revoked\n", *tenant, s)
			}
		}
		return nil
	}
	return fmt.Errorf("%w: unknown member command %q (issue, list, revoke)", errUsage, args[0])
}

var crlReasons = map[string]int{
	"unspecified": pki.ReasonUnspecified, "keyCompromise": pki.ReasonKeyCompromise, "affiliationChanged": pki.ReasonAffiliationChanged,
	"superseded": pki.ReasonSuperseded, "cessation": pki.ReasonCessationOfOperation, "privilegeWithdrawn": pki.ReasonPrivilegeWithdrawn,
}

func uniqueTenants(recs []engine.CertRecord) []string {
	var out []string
	for _, r := range recs {
		if !slices.Contains(out, r.Tenant) {
			out = append(out, r.Tenant)
		}
	}
	return out
}

// issueMember issues a member certificate, for a CSR or a new P-256 key,
// and writes MEMBER.crt (leaf and tenant CA) and MEMBER.key (0600).
func issueMember(ctx context.Context, n *node, tenant, member string, role engine.Role, csrFile, outDir string) error {
	spec := pki.MemberSpec{Tenant: tenant, Member: member, Role: role}
	var keyPEM []byte
	if csrFile != "" {
		b, err := os.ReadFile(csrFile)
		if err != nil {
			return err
		}
		if blk, _ := pem.Decode(b); blk != nil {
			b = blk.Bytes
		}
		csr, err := x509.ParseCertificateRequest(b)
		if err != nil {
			return fmt.Errorf("%s: not a PKCS#10 request: %w", csrFile, err)
		}
		if err := csr.CheckSignature(); err != nil {
			return fmt.Errorf("%s: the request's signature does not verify", csrFile)
		}
		spec.PublicKey = csr.PublicKey
	} else {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return err
		}
		der, err := x509.MarshalPKCS8PrivateKey(key)
		if err != nil {
			return err
		}
		keyPEM = pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
		clear(der)
		spec.PublicKey = key.Public()
	}
	cert, err := n.auth.IssueMember(ctx, spec)
	if err != nil {
		return err
	}
	ca, err := n.auth.Tenant(ctx, tenant, false)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(outDir, 0o755); err != nil {
		return err
	}
	base := filepath.Join(outDir, member)
	if keyPEM != nil {
		if err := writeNew(base+".key", keyPEM, 0o600); err != nil {
			return err
		}
		clear(keyPEM)
	}
	chain := append(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw}), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ca.Cert.Raw})...)
	if err := writeNew(base+".crt", chain, 0o644); err != nil {
		return err
	}
	fmt.Printf("issued %s/%s (role %s), serial %s, valid until %s: %s.crt", tenant, member, role, pki.SerialHex(cert), cert.NotAfter.Format(time.DateOnly), base)
	if keyPEM != nil {
		fmt.Printf(", %s.key", base)
	}
	fmt.Println()
	return nil
}

// writeNew writes a file that must not exist yet.
func writeNew(path string, data []byte, perm os.FileMode) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func runClient(ctx context.Context, args []string) (err error) {
	if len(args) == 0 {
		return fmt.Errorf("%w: minikms client register | list | remove", errUsage)
	}
	fl := flag.NewFlagSet("client "+args[0], flag.ContinueOnError)
	var af adminFlags
	af.register(fl)
	tenant := fl.String("tenant", "", "tenant id")
	member := fl.String("member", "", "name the client is known by (audit, listings)")
	role := fl.String("role", string(engine.RoleApp), "role: admin, app or auditor")
	certFile := fl.String("cert", "", "the client's certificate (PEM or DER)")
	spki := fl.String("spki", "", "SHA-256 of the client's SubjectPublicKeyInfo (hex), to remove")
	if err := fl.Parse(args[1:]); err != nil {
		return errUsage
	}
	n, err := af.openAdmin(ctx)
	if err != nil {
		return err
	}
	defer n.close()
	defer n.auditAdmin(ctx, "admin.client."+args[0], *tenant, cmp.Or(*member, *spki, *certFile), &err)
	switch args[0] {
	case "register":
		if *tenant == "" || *member == "" || *certFile == "" {
			return fmt.Errorf("%w: --tenant, --member and --cert are required", errUsage)
		}
		if !engine.Role(*role).Valid() {
			return fmt.Errorf("%w: --role must be admin, app or auditor", errUsage)
		}
		if _, err := n.auth.Tenant(ctx, *tenant, false); err != nil {
			return err
		}
		c, err := readCertificate(*certFile)
		if err != nil {
			return err
		}
		if c.IsCA {
			return errors.New("a CA certificate cannot be registered as a client")
		}
		h := pki.SPKIHash(c)
		err = n.store.RegisterClient(ctx, engine.ExternalClient{SPKIHash: h, Tenant: *tenant, Member: *member, Role: engine.Role(*role),
			Subject: c.Subject.String(), RegisteredAt: time.Now().UTC()})
		if err != nil {
			return err
		}
		fmt.Printf("registered %s as %s/%s (role %s), key %s, certificate valid until %s\n", c.Subject, *tenant, *member, *role, h, c.NotAfter.Format(time.DateOnly))
		return nil
	case "list":
		cs, err := n.store.Clients(ctx)
		if err != nil {
			return err
		}
		w := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(w, "TENANT\tMEMBER\tROLE\tSPKI SHA-256\tSUBJECT")
		for _, c := range cs {
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\n", c.Tenant, c.Member, c.Role, c.SPKIHash, c.Subject)
		}
		return w.Flush()
	case "remove":
		h := strings.ToLower(*spki)
		if *certFile != "" {
			c, err := readCertificate(*certFile)
			if err != nil {
				return err
			}
			h = pki.SPKIHash(c)
		}
		if h == "" {
			return fmt.Errorf("%w: --spki or --cert is required", errUsage)
		}
		if err := n.store.UnregisterClient(ctx, h); err != nil {
			if errors.Is(err, engine.ErrNotFound) {
				return fmt.Errorf("no client is registered with key %s", h)
			}
			return err
		}
		fmt.Printf("removed client %s; running servers refuse it within %s\n", h, identityPollInterval)
		return nil
	}
	return fmt.Errorf("%w: unknown client command %q (register, list, remove)", errUsage, args[0])
}

func readCertificate(path string) (*x509.Certificate, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	if blk, _ := pem.Decode(b); blk != nil {
		b = blk.Bytes
	}
	c, err := x509.ParseCertificate(b)
	if err != nil {
		return nil, fmt.Errorf("%s: not an X.509 certificate: %w", path, err)
	}
	return c, nil
}

func runCRL(ctx context.Context, args []string) (err error) {
	fl := flag.NewFlagSet("crl", flag.ContinueOnError)
	var af adminFlags
	af.register(fl)
	tenant := fl.String("tenant", "", "tenant whose CRL to write (empty: the root CA's)")
	out := fl.String("out", "-", "output file (DER); - for standard output")
	if err := fl.Parse(args); err != nil {
		return errUsage
	}
	n, err := af.openAdmin(ctx)
	if err != nil {
		return err
	}
	defer n.close()
	defer n.auditAdmin(ctx, "admin.crl.write", *tenant, "", &err)
	der, err := n.auth.CRL(ctx, *tenant)
	if err != nil {
		return err
	}
	var w io.Writer = os.Stdout
	if *out != "-" {
		return os.WriteFile(*out, der, 0o644)
	}
	_, err = w.Write(der)
	return err
}
