package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/minikms/minikms/audit"
	"github.com/minikms/minikms/certs"
	"github.com/minikms/minikms/engine"
)

// reloadOnHUP reloads, at each SIGHUP, the server certificate and key
// files (MINIKMS_TLS_CERT_FILE, MINIKMS_TLS_KEY_FILE) and the revocations
// and client registrations (CRLs), until ctx ends. A certificate that
// does not load leaves the current one in place. New connections use the
// new certificate; open ones keep theirs. The reload is audited.
// The handler is installed before reloadOnHUP returns, so a SIGHUP never
// falls back to the default action (terminate) once serving starts.
func (n *node) reloadOnHUP(ctx context.Context) {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	go func() {
		defer signal.Stop(hup)
		for {
			select {
			case <-ctx.Done():
				return
			case <-hup:
				n.reload(ctx)
			}
		}
	}()
}

func (n *node) reload(ctx context.Context) {
	ev := engine.AuditEvent{Action: "server.reload", Status: audit.StatusSuccess, Details: map[string]string{}}
	if n.cfg.tlsCert != "" {
		cert, err := certs.LoadKeyPair(n.cfg.tlsCert, n.cfg.tlsKey)
		if err != nil {
			n.log.Error("SIGHUP: the server certificate did not load; keeping the current one", "err", err)
			ev.Status, ev.Details["tls"] = audit.StatusFailure, "not loaded: "+err.Error()
		} else {
			n.tls.SetCertificate(cert)
			ev.Details["tls"] = "reloaded"
			if cert.Leaf != nil {
				ev.Details["tls_not_after"] = cert.Leaf.NotAfter.UTC().Format("2006-01-02T15:04:05Z")
			}
			n.log.Info("SIGHUP: server certificate reloaded", "file", n.cfg.tlsCert)
		}
	}
	rctx, cancel := context.WithTimeout(ctx, storeTimeout)
	defer cancel()
	if err := n.auth.Refresh(rctx, n.verifier, map[string]bool{}); err != nil {
		n.log.Error("SIGHUP: revocations and registrations did not reload", "err", err)
		ev.Status, ev.Details["crl"] = audit.StatusFailure, "not reloaded: "+err.Error()
	} else {
		ev.Details["crl"] = "reloaded"
		n.log.Info("SIGHUP: revocations and client registrations reloaded")
	}
	if err := n.audit.Record(rctx, []engine.AuditEvent{ev}); err != nil {
		n.log.Error("audit: reload not recorded", "err", err)
	}
}
