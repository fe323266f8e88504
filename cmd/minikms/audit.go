package main

import (
	"bufio"
	"context"
	"crypto"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/minikms/minikms/audit"
	"github.com/minikms/minikms/engine"
	"github.com/minikms/minikms/pki"
)

// `minikms audit verify | export | query`: read the audit chain from the
// store (--data-dir, --db-url or MINIKMS_DB_URL), or, for a tenant
// auditor, verify over the HTTPS API (--server with a member certificate).

const auditUsage = "minikms audit verify | export | query [--data-dir D | --db-url URL] ..."

func runAudit(ctx context.Context, args []string) error {
	if len(args) == 0 {
		return fmt.Errorf("%w: %s", errUsage, auditUsage)
	}
	switch args[0] {
	case "verify":
		return auditVerify(ctx, args[1:])
	case "export":
		return auditExport(ctx, args[1:])
	case "query":
		return auditQuery(ctx, args[1:])
	}
	return fmt.Errorf("%w: unknown audit command %q (verify, export, query)", errUsage, args[0])
}

// auditStoreFlags select the store the audit commands read.
type auditStoreFlags struct {
	dataDir, dbURL string
}

func (a *auditStoreFlags) register(fl *flag.FlagSet) {
	fl.StringVar(&a.dataDir, "data-dir", "", "development data directory (its database, and its dev root key to authenticate the checkpoint key)")
	fl.StringVar(&a.dbURL, "db-url", "", "the store (a SQLite file path or a postgres:// URL); default "+envDBURL)
}

// auditStore is an opened store, with the checkpoint public key when one
// exists.
type auditStore struct {
	store kmsStore
	key   crypto.PublicKey
	// keyAuthenticated: the key was opened with the root key (sealed, so
	// not replaceable by whoever can write the store).
	keyAuthenticated bool
	close            func()
}

// open opens the store and finds the checkpoint key: through the root key
// when it is available (MINIKMS_ROOT_KEY, or the dev key of --data-dir),
// else as stored (then only a pinned --key-id makes it trustworthy).
func (a *auditStoreFlags) open(ctx context.Context) (*auditStore, error) {
	cfg := config{}
	if err := cfg.fromEnv(); err != nil {
		return nil, err
	}
	if a.dbURL != "" {
		cfg.dbURL = a.dbURL
	}
	if a.dataDir != "" {
		if cfg.rootKey == nil && !cfg.hsmConfigured() {
			if b, err := os.ReadFile(filepath.Join(a.dataDir, devRootKeyFile)); err == nil {
				if cfg.rootKey, err = engine.ParseRootKeyHex(string(b)); err != nil {
					return nil, err
				}
			}
		}
		if a.dbURL == "" {
			cfg.dbURL = filepath.Join(a.dataDir, "minikms.db")
		}
	}
	if cfg.dbURL == "" {
		return nil, fmt.Errorf("%w: which store? --data-dir, --db-url or %s", errUsage, envDBURL)
	}
	if err := checkStoreExists(cfg.dbURL); err != nil {
		return nil, err
	}
	if cfg.rootKey != nil || cfg.hsmConfigured() {
		if err := cfg.validate(); err != nil {
			return nil, err
		}
		n, err := open(ctx, cfg, newLogger(false))
		if err != nil {
			return nil, err
		}
		as := &auditStore{store: n.store, close: n.close}
		signer, err := n.auth.LoadSigningKey(ctx, checkpointKeyLabel)
		switch {
		case err == nil:
			as.key, as.keyAuthenticated = signer.Public(), true
		case !errors.Is(err, engine.ErrNotFound):
			n.close()
			return nil, fmt.Errorf("audit checkpoint key: %w", err)
		}
		return as, nil
	}
	st, err := openStore(ctx, cfg.dbURL, nil)
	if err != nil {
		return nil, err
	}
	as := &auditStore{store: st, close: func() { st.Close() }}
	as.key, err = pki.SigningPublicKey(ctx, st, checkpointKeyLabel)
	if err != nil && !errors.Is(err, engine.ErrNotFound) {
		st.Close()
		return nil, fmt.Errorf("audit checkpoint key: %w", err)
	}
	return as, nil
}

func auditVerify(ctx context.Context, args []string) error {
	fl := flag.NewFlagSet("audit verify", flag.ContinueOnError)
	var sf auditStoreFlags
	sf.register(fl)
	keyID := fl.String("key-id", "", "the checkpoint key's ID (hex SHA-256 of its public key), as printed when the server started: refuse any other key")
	server := fl.String("server", "", "verify over the HTTPS API as a tenant auditor: base URL, e.g. https://kms.example:8080")
	certFile := fl.String("cert", "", "with --server: member certificate (PEM)")
	keyFile := fl.String("key", "", "with --server: its private key (PEM)")
	caFile := fl.String("ca", "", "with --server: CA certificate(s) the server's certificate chains to (PEM)")
	if err := fl.Parse(args); err != nil {
		return errUsage
	}
	if fl.NArg() > 0 {
		return fmt.Errorf("%w: unexpected argument %q", errUsage, fl.Arg(0))
	}
	var src audit.Source
	var key crypto.PublicKey
	var authenticated bool
	var upTo int64
	if *server != "" {
		if sf.dataDir != "" || sf.dbURL != "" {
			return fmt.Errorf("%w: --server reads over HTTPS; do not combine it with --data-dir or --db-url", errUsage)
		}
		hs, err := newHTTPSource(*server, *certFile, *keyFile, *caFile)
		if err != nil {
			return err
		}
		if key, err = hs.checkpointKey(ctx); err != nil {
			return err
		}
		src, upTo = hs, hs.headSeq
	} else {
		as, err := sf.open(ctx)
		if err != nil {
			return err
		}
		defer as.close()
		src, key, authenticated = as.store, as.key, as.keyAuthenticated
	}
	opts := audit.VerifyOptions{UpTo: upTo}
	keyNote := ""
	switch {
	case key == nil:
		keyNote = "no checkpoint key exists yet: checkpoints cannot be checked"
	default:
		id, err := audit.KeyID(key)
		if err != nil {
			return err
		}
		if *keyID != "" && !strings.EqualFold(*keyID, id) {
			return fmt.Errorf("the checkpoint key is %s, not the pinned %s: the store (or server) presents another key", id, *keyID)
		}
		opts.CheckpointKey = key
		switch {
		case *keyID != "":
			keyNote = "checkpoints verified with the pinned key " + id
		case authenticated:
			keyNote = "checkpoints verified with key " + id + " (opened with the root key)"
		default:
			keyNote = "checkpoints verified with key " + id + ", as the store presents it: pin it with --key-id"
		}
	}
	rep, err := audit.Verify(ctx, src, opts)
	if err != nil {
		return fmt.Errorf("cannot read the audit log: %w", err)
	}
	if rep.Problem != nil {
		return fmt.Errorf("audit chain DAMAGED at record %d: %s: %s (%d records before it verified)", rep.Problem.Seq, rep.Problem.Kind, rep.Problem.Detail, rep.Records)
	}
	fmt.Printf("audit chain intact: %d records", rep.Records)
	if rep.Records > 0 {
		fmt.Printf(" (1 to %d), head %x", rep.Head.Seq, rep.Head.Hash)
	}
	fmt.Printf("\n%d checkpoints; %s\n", rep.Checkpoints, keyNote)
	if rep.Records > 0 {
		if rep.Unsigned > 0 {
			fmt.Printf("%d newest records are not covered by a checkpoint yet (the next checkpoint signs them)\n", rep.Unsigned)
		}
	}
	return nil
}

func auditExport(ctx context.Context, args []string) error {
	fl := flag.NewFlagSet("audit export", flag.ContinueOnError)
	var sf auditStoreFlags
	sf.register(fl)
	after := fl.Int64("after", 0, "export records after this sequence number")
	out := fl.String("out", "-", "output file (JSON lines); - for standard output")
	if err := fl.Parse(args); err != nil {
		return errUsage
	}
	as, err := sf.open(ctx)
	if err != nil {
		return err
	}
	defer as.close()
	w, finish, err := output(*out)
	if err != nil {
		return err
	}
	n := 0
	for {
		recs, err := as.store.AuditRecords(ctx, *after, 5000)
		if err != nil {
			return err
		}
		if len(recs) == 0 {
			break
		}
		for i := range recs {
			b, err := audit.MarshalLine(&recs[i])
			if err != nil {
				return err
			}
			if _, err := w.Write(b); err != nil {
				return err
			}
		}
		n += len(recs)
		*after = recs[len(recs)-1].Seq
	}
	if err := finish(); err != nil {
		return err
	}
	if *out != "-" {
		fmt.Fprintf(os.Stderr, "exported %d records to %s\n", n, *out)
	}
	return nil
}

// output opens a file (or standard output) for writing.
func output(path string) (io.Writer, func() error, error) {
	if path == "-" {
		bw := bufio.NewWriter(os.Stdout)
		return bw, bw.Flush, nil
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, nil, err
	}
	bw := bufio.NewWriter(f)
	return bw, func() error {
		if err := bw.Flush(); err != nil {
			f.Close()
			return err
		}
		if err := f.Sync(); err != nil {
			f.Close()
			return err
		}
		return f.Close()
	}, nil
}

func auditQuery(ctx context.Context, args []string) error {
	fl := flag.NewFlagSet("audit query", flag.ContinueOnError)
	var sf auditStoreFlags
	sf.register(fl)
	var q engine.AuditQuery
	tenant := fl.String("tenant", "", "only this tenant's records (default: every tenant)")
	serverWide := fl.Bool("server-wide", false, "only records outside any tenant (refused connections, server start and stop, ...)")
	from := fl.String("from", "", "records at or after this time (RFC 3339, or a duration ago such as 24h)")
	to := fl.String("to", "", "records before this time (RFC 3339, or a duration ago)")
	fl.StringVar(&q.Action, "action", "", "action, e.g. kmip.Encrypt, tls.refused, admin.member.revoke")
	fl.StringVar(&q.Object, "object", "", "object unique identifier")
	fl.StringVar(&q.Member, "actor", "", "member id (or cli:<user>)")
	fl.Int64Var(&q.AfterSeq, "after", 0, "records after this sequence number")
	fl.IntVar(&q.Limit, "limit", 100, "at most this many records (up to 10000)")
	asJSON := fl.Bool("json", false, "JSON lines instead of a table")
	if err := fl.Parse(args); err != nil {
		return errUsage
	}
	if *tenant != "" && *serverWide {
		return fmt.Errorf("%w: --tenant and --server-wide exclude each other", errUsage)
	}
	q.Tenant, q.AnyTenant = *tenant, !*serverWide
	var err error
	if q.From, err = parseWhen(*from); err != nil {
		return fmt.Errorf("%w: --from: %v", errUsage, err)
	}
	if q.To, err = parseWhen(*to); err != nil {
		return fmt.Errorf("%w: --to: %v", errUsage, err)
	}
	if q.Limit < 1 || q.Limit > 10_000 {
		return fmt.Errorf("%w: --limit must be 1 to 10000", errUsage)
	}
	as, err := sf.open(ctx)
	if err != nil {
		return err
	}
	defer as.close()
	recs, err := as.store.QueryAudit(ctx, q)
	if err != nil {
		return err
	}
	if *asJSON {
		bw := bufio.NewWriter(os.Stdout)
		for i := range recs {
			b, err := audit.MarshalLine(&recs[i])
			if err != nil {
				return err
			}
			bw.Write(b)
		}
		return bw.Flush()
	}
	w := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "SEQ\tTIME\tTENANT\tACTOR\tACTION\tOBJECT\tRESULT")
	for _, r := range recs {
		result := r.Status
		if r.Reason != "" {
			result += ": " + r.Reason
		}
		actor := r.Member
		if actor == "" && r.Remote != "" {
			actor = r.Remote
		}
		fmt.Fprintf(w, "%d\t%s\t%s\t%s\t%s\t%s\t%s\n", r.Seq, r.Time.Format(time.RFC3339Nano), dash(r.Tenant), dash(actor), r.Action, dash(r.Object), result)
	}
	return w.Flush()
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// parseWhen reads an RFC 3339 time or a duration before now.
func parseWhen(s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if d, err := time.ParseDuration(s); err == nil {
		return time.Now().Add(-d), nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("%q is neither an RFC 3339 time nor a duration", s)
	}
	return t, nil
}

// httpSource reads the chain as a tenant auditor over the HTTPS API.
type httpSource struct {
	base    *url.URL
	client  *http.Client
	cps     []engine.AuditCheckpoint
	headSeq int64
}

func newHTTPSource(server, certFile, keyFile, caFile string) (*httpSource, error) {
	if certFile == "" || keyFile == "" || caFile == "" {
		return nil, fmt.Errorf("%w: --server needs --cert, --key and --ca", errUsage)
	}
	u, err := url.Parse(server)
	if err != nil || u.Scheme != "https" || u.Host == "" {
		return nil, fmt.Errorf("%w: --server must be an https:// URL", errUsage)
	}
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("client certificate: %w", err)
	}
	ca, err := os.ReadFile(caFile)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(ca) {
		return nil, fmt.Errorf("%s: no PEM certificate", caFile)
	}
	tr := &http.Transport{TLSClientConfig: &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: pool, Certificates: []tls.Certificate{cert}}}
	return &httpSource{base: u, client: &http.Client{Transport: tr, Timeout: time.Minute}}, nil
}

func (h *httpSource) get(ctx context.Context, path string, q url.Values) (*http.Response, error) {
	u := h.base.JoinPath(path)
	u.RawQuery = q.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, err
	}
	resp, err := h.client.Do(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		defer resp.Body.Close()
		var e struct {
			Error struct{ Code, Message string } `json:"error"`
		}
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		if json.Unmarshal(body, &e) == nil && e.Error.Message != "" {
			return nil, fmt.Errorf("%s: %s (%s)", path, e.Error.Message, e.Error.Code)
		}
		return nil, fmt.Errorf("%s: %s", path, resp.Status)
	}
	return resp, nil
}

// checkpointKey fetches the checkpoints and the key the server presents.
func (h *httpSource) checkpointKey(ctx context.Context) (crypto.PublicKey, error) {
	resp, err := h.get(ctx, "/v1/audit/checkpoints", nil)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var cp audit.Checkpoints
	if err := json.NewDecoder(io.LimitReader(resp.Body, 64<<20)).Decode(&cp); err != nil {
		return nil, fmt.Errorf("checkpoints: %w", err)
	}
	h.headSeq = cp.HeadSeq
	for _, j := range cp.Checkpoints {
		c, err := audit.CheckpointFromJSON(j)
		if err != nil {
			return nil, err
		}
		h.cps = append(h.cps, c)
	}
	if cp.PublicKey == "" {
		return nil, nil
	}
	return audit.ParsePublicKeyPEM(cp.PublicKey)
}

// AuditRecords implements audit.Source.
func (h *httpSource) AuditRecords(ctx context.Context, afterSeq int64, limit int) ([]engine.AuditRecord, error) {
	resp, err := h.get(ctx, "/v1/audit/chain", url.Values{"after": {strconv.FormatInt(afterSeq, 10)}, "limit": {strconv.Itoa(min(limit, 10_000))}})
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var out []engine.AuditRecord
	dec := json.NewDecoder(resp.Body)
	for {
		var j audit.JSONRecord
		if err := dec.Decode(&j); errors.Is(err, io.EOF) {
			return out, nil
		} else if err != nil {
			return nil, fmt.Errorf("chain: %w", err)
		}
		r, err := audit.FromJSON(j)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
}

// AuditCheckpoints implements audit.Source.
func (h *httpSource) AuditCheckpoints(context.Context) ([]engine.AuditCheckpoint, error) {
	return h.cps, nil
}
