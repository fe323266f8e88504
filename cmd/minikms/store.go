package main

import (
	"context"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/minikms/minikms/engine"
	"github.com/minikms/minikms/store/postgres"
	"github.com/minikms/minikms/store/sqlite"
)

// kmsStore is what a server and the commands need of a store; both
// store/sqlite (a file path) and store/postgres (a postgres:// URL) are.
type kmsStore interface {
	engine.Store
	engine.IdentityStore
	engine.AuditStore
}

// storeTimeout bounds every store call whose context has no deadline of
// its own (PostgreSQL: an unreachable server fails calls instead of
// hanging them).
const storeTimeout = 30 * time.Second

// isPostgresURL reports whether MINIKMS_DB_URL names a PostgreSQL database.
func isPostgresURL(s string) bool {
	return strings.HasPrefix(s, "postgres://") || strings.HasPrefix(s, "postgresql://")
}

// storeName is the store for messages and logs: a URL without its password.
func storeName(s string) string {
	if !isPostgresURL(s) {
		return s
	}
	u, err := url.Parse(s)
	if err != nil {
		return "(unparsable PostgreSQL URL)"
	}
	return u.Redacted()
}

// openStore opens the store MINIKMS_DB_URL names.
func openStore(ctx context.Context, dbURL string, log *slog.Logger) (kmsStore, error) {
	if isPostgresURL(dbURL) {
		s, err := postgres.Open(ctx, dbURL, postgres.WithTimeout(storeTimeout))
		if err != nil {
			return nil, err // names the URL, redacted
		}
		if log != nil {
			s.SetLogger(log)
		}
		return s, nil
	}
	s, err := sqlite.Open(ctx, dbURL)
	if err != nil {
		return nil, fmt.Errorf("open store %s: %w", dbURL, err)
	}
	return s, nil
}

// checkStoreExists refuses a SQLite path that does not exist (commands
// other than serve and dev never create a store by mistake). A PostgreSQL
// database is checked by connecting.
func checkStoreExists(dbURL string) error {
	if isPostgresURL(dbURL) {
		return nil
	}
	if _, err := os.Stat(dbURL); err != nil {
		return fmt.Errorf("store %s: %w", dbURL, err)
	}
	return nil
}

// identityChanges is a store that signals identity changes other
// processes made (store/postgres, while the engine follows its changes).
type identityChanges interface {
	IdentityChanged() <-chan struct{}
}

// watchIdentity keeps the verifier in step with the store until ctx ends:
// it reloads every identityPollInterval, and at once when the store
// signals a change (PostgreSQL's notifications), so a revocation on
// another node applies within milliseconds, at worst within one interval.
func (n *node) watchIdentity(ctx context.Context) {
	var kick <-chan struct{}
	if ic, ok := n.store.(identityChanges); ok {
		kick = ic.IdentityChanged()
	}
	t := time.NewTicker(identityPollInterval)
	defer t.Stop()
	known := map[string]bool{}
	for {
		rctx, cancel := context.WithTimeout(ctx, storeTimeout)
		if err := n.auth.Refresh(rctx, n.verifier, known); err != nil && ctx.Err() == nil {
			n.log.Warn("identity refresh failed; keeping the previous revocations and registrations", "err", err)
		}
		cancel()
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-kick:
		}
	}
}
