package main

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/minikms/minikms/audit"
	"github.com/minikms/minikms/certs"
	"github.com/minikms/minikms/engine"
	"github.com/minikms/minikms/httpapi"
	"github.com/minikms/minikms/kmip"
	"github.com/minikms/minikms/metrics"
	"github.com/minikms/minikms/pki"
)

// shutdownGrace bounds how long requests in progress may take at shutdown.
const shutdownGrace = 15 * time.Second

// identityPollInterval is how often a server reloads revocations, client
// registrations and tenant CAs that other processes (the command line,
// other nodes) recorded: the time a revocation takes to apply.
const identityPollInterval = time.Second

// node is one running miniKMS server.
type node struct {
	cfg      config
	log      *slog.Logger
	store    kmsStore
	keyring  engine.Keyring
	hsm      *hsmNode // the root keyring's owner (hsm.go)
	eng      *engine.Engine
	auth     *pki.Authority
	verifier *pki.Verifier
	audit    *audit.Log
	cpoint   *audit.Checkpointer
	tls      *certs.Server
	kmip     *kmip.Server
	kmipLn   net.Listener
	httpSrv  *http.Server
	httpLn   net.Listener
	metrics  *metrics.Metrics // metrics.go
}

// open builds everything up to (not including) listening. The server
// certificate comes from the configured files, or is issued by the root CA
// when none are configured.
func open(ctx context.Context, cfg config, log *slog.Logger) (_ *node, err error) {
	n := &node{cfg: cfg, log: log, metrics: newMetrics()}
	defer func() {
		if err != nil {
			n.close()
		}
	}()
	n.store, err = openStore(ctx, cfg.dbURL, log)
	if err != nil {
		return nil, err
	}
	n.keyring, err = n.openKeyring(ctx)
	if err != nil {
		return nil, err
	}
	n.eng, err = engine.Open(ctx, engine.Config{Store: n.engineStore(), Keyring: n.keyring, Salt: cfg.salt, Logger: log, MinRSABits: cfg.minRSABits, Lease: cfg.lease})
	if err != nil {
		if errors.Is(err, engine.ErrWrongRootKey) {
			return nil, fmt.Errorf("refusing to start: %w. Start with the root key this store was created with (%s), or point %s at another store", err, envRootKey, envDBURL)
		}
		return nil, err
	}
	n.auth = pki.NewAuthority(n.store, n.keySource(), nil)
	root, err := n.auth.Root(ctx)
	if err != nil {
		return nil, fmt.Errorf("root CA: %w", err)
	}
	tenantCAs, err := n.auth.TenantCertificates(ctx)
	if err != nil {
		return nil, fmt.Errorf("tenant CAs: %w", err)
	}
	n.verifier = pki.NewVerifier(root.Cert, tenantCAs, nil)
	n.audit = audit.NewLog(n.metrics.AuditStore(n.store), cfg.nodeName)
	n.watchMetrics()
	return n, nil
}

// checkpointKeyLabel names the audit checkpoint signing key.
const checkpointKeyLabel = "audit-checkpoint"

// serverCertificate loads the configured certificate or issues one.
func (n *node) serverCertificate(ctx context.Context) (tls.Certificate, error) {
	if n.cfg.tlsCert != "" {
		return certs.LoadKeyPair(n.cfg.tlsCert, n.cfg.tlsKey)
	}
	root, err := n.auth.Root(ctx)
	if err != nil {
		return tls.Certificate{}, err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, err
	}
	leaf, err := pki.IssueServer(root, n.cfg.hosts, key.Public(), time.Now())
	if err != nil {
		return tls.Certificate{}, err
	}
	return tls.Certificate{Certificate: [][]byte{leaf.Raw}, PrivateKey: key, Leaf: leaf}, nil
}

// listen prepares the audit checkpoints and starts the KMIP and HTTP
// listeners.
func (n *node) listen(ctx context.Context, cert tls.Certificate) error {
	signer, err := n.auth.SigningKey(ctx, checkpointKeyLabel)
	if err != nil {
		return fmt.Errorf("audit checkpoint key: %w", err)
	}
	if n.cpoint, err = audit.NewCheckpointer(n.store, signer); err != nil {
		return err
	}
	n.log.Info("audit checkpoints signed every "+n.cfg.checkpointEvery.String(), "key_id", n.cpoint.KeyID(),
		"hint", "pin it: minikms audit verify --key-id "+n.cpoint.KeyID())
	if err := n.audit.Record(ctx, []engine.AuditEvent{{Action: "server.start", Status: audit.StatusSuccess,
		Details: map[string]string{"version": version, "kmip": n.cfg.kmipAddr, "http": n.cfg.httpAddr}}}); err != nil {
		return fmt.Errorf("the audit log cannot record: %w", err)
	}
	n.tls = certs.NewServer(cert, n.verifier)
	kcfg := kmip.Config{Engine: n.eng, TLS: n.tls.TLSConfig(), Identifier: n.verifier, Certifier: n.auth, Audit: n.audit, Logger: n.log, Observer: n.metrics.KMIP()}
	n.cfg.limits.apply(&kcfg) // limits.go
	n.kmip, err = kmip.New(kcfg)
	if err != nil {
		return err
	}
	n.kmipLn, err = net.Listen("tcp", n.cfg.kmipAddr)
	if err != nil {
		return fmt.Errorf("KMIP listener on %s: %w", n.cfg.kmipAddr, err)
	}
	n.httpLn, err = net.Listen("tcp", n.cfg.httpAddr)
	if err != nil {
		return fmt.Errorf("HTTP listener on %s: %w", n.cfg.httpAddr, err)
	}
	n.httpLn = httpapi.Listen(n.httpLn, n.tls.HTTPSConfig())
	handler := httpapi.New(httpapi.Config{
		Public: n.httpHandler(), Identifier: n.verifier, Audit: n.audit, AuditStore: n.store, Logger: n.log,
		CheckpointKey: func(context.Context) (crypto.PublicKey, error) { return signer.Public(), nil },
	})
	n.httpSrv = &http.Server{Handler: handler, ErrorLog: slog.NewLogLogger(n.log.Handler(), slog.LevelDebug), ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second, WriteTimeout: 30 * time.Second, IdleTimeout: 2 * time.Minute}
	return nil
}

// run serves until ctx ends, then shuts down gracefully.
func (n *node) run(ctx context.Context) error {
	errc := make(chan error, 2)
	watchCtx, stopWatch := context.WithCancel(ctx)
	defer stopWatch()
	go n.watchIdentity(watchCtx)
	n.reloadOnHUP(watchCtx) // reload.go
	go n.probeAudit(watchCtx)
	cpCtx, stopCheckpoints := context.WithCancel(context.Background())
	cpDone := make(chan struct{})
	go func() { n.cpoint.Run(cpCtx, n.cfg.checkpointEvery, n.log); close(cpDone) }()
	go func() { errc <- n.kmip.Serve(n.kmipLn) }()
	go func() { errc <- n.httpSrv.Serve(n.httpLn) }()
	var err error
	select {
	case <-ctx.Done():
	case err = <-errc:
		n.log.Error("listener failed", "err", err)
	}
	n.log.Info("shutting down: draining connections", "grace", n.cfg.limits.grace())
	sctx, cancel := context.WithTimeout(context.Background(), n.cfg.limits.grace())
	defer cancel()
	_ = n.httpSrv.Shutdown(sctx)
	if serr := n.kmip.Shutdown(sctx); serr != nil {
		n.log.Warn("connections closed before their requests finished", "err", serr)
	}
	if rerr := n.audit.Record(sctx, []engine.AuditEvent{{Action: "server.stop", Status: audit.StatusSuccess}}); rerr != nil {
		n.log.Error("audit: server stop not recorded", "err", rerr)
	}
	stopCheckpoints() // signs the head one last time
	<-cpDone
	n.close()
	n.log.Info("stopped")
	if errors.Is(err, kmip.ErrServerClosed) || errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	return err
}

// close releases the engine (zeroizing cached keys), the store and the
// root key, in that order.
func (n *node) close() {
	if n.eng != nil {
		n.eng.Close()
	}
	if n.store != nil {
		n.store.Close()
	}
	n.closeKeyring()
}

func (n *node) httpHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("GET /crl/{name}", n.serveCRL)
	mux.Handle("GET /metrics", n.metrics.Handler())
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		if err := n.eng.Ready(ctx); err != nil {
			w.WriteHeader(http.StatusServiceUnavailable)
			fmt.Fprintln(w, "not ready:", err)
			return
		}
		if err := n.hsmReady(ctx); err != nil {
			w.WriteHeader(http.StatusServiceUnavailable)
			fmt.Fprintln(w, "not ready:", err)
			return
		}
		if err := n.audit.Healthy(); err != nil {
			w.WriteHeader(http.StatusServiceUnavailable)
			fmt.Fprintln(w, "not ready:", err)
			return
		}
		fmt.Fprintln(w, "ready")
	})
	return mux
}

// serveCRL serves the DER CRLs: /crl/root.crl (revoked tenant CAs) and
// /crl/<tenant>.crl (revoked member certificates of that tenant).
func (n *node) serveCRL(w http.ResponseWriter, r *http.Request) {
	name, ok := strings.CutSuffix(r.PathValue("name"), ".crl")
	if !ok {
		http.NotFound(w, r)
		return
	}
	tenant := name
	if name == "root" {
		tenant = ""
	} else if !engine.ValidTenantID(name) {
		http.NotFound(w, r)
		return
	}
	der, err := n.auth.CRL(r.Context(), tenant)
	if errors.Is(err, pki.ErrNoTenant) {
		http.NotFound(w, r)
		return
	}
	if err != nil {
		n.log.Error("CRL", "tenant", tenant, "err", err)
		http.Error(w, "CRL unavailable", http.StatusServiceUnavailable)
		return
	}
	w.Header().Set("Content-Type", "application/pkix-crl")
	w.Header().Set("Cache-Control", "max-age=60")
	w.Write(der)
}

// auditProbeInterval is how often a failing audit log is retried.
const auditProbeInterval = time.Second

// probeAudit retries the audit log while it fails, so the server becomes
// ready again when the store recovers.
func (n *node) probeAudit(ctx context.Context) {
	t := time.NewTicker(auditProbeInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if n.audit.Healthy() == nil {
				continue
			}
			pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			if err := n.audit.Probe(pctx); err != nil {
				n.log.Error("audit log still failing; operations are refused", "err", err)
			} else {
				n.log.Info("audit log recovered")
			}
			cancel()
		}
	}
}
