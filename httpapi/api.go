// Package httpapi serves the HTTP address: public endpoints (health,
// readiness, CRLs, metrics) over plain HTTP or HTTPS, and the
// authenticated API under /v1/ over HTTPS with a member certificate (the
// same certificates as KMIP; tenant and role come from the certificate,
// never from the request).
//
// The API today is the tenant auditors' view of the audit log:
//
//	GET /v1/audit/records       the caller's tenant's records (JSON lines)
//	                            ?from=&to= (RFC 3339) &action= &object= &member= &after=SEQ &limit=N
//	GET /v1/audit/chain         the whole chain, other tenants' records
//	                            redacted to their hashes (JSON lines) ?after=SEQ &limit=N
//	GET /v1/audit/checkpoints   signed checkpoints and the signing key
//
// Roles auditor and admin may read; every read is itself audited.
package httpapi

import (
	"context"
	"crypto"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/minikms/minikms/audit"
	"github.com/minikms/minikms/engine"
)

// Identifier turns client certificates into a principal (pki.Verifier).
type Identifier interface {
	Verify(rawCerts [][]byte) (engine.Principal, error)
}

// Config of the HTTP handler.
type Config struct {
	// Public serves every path outside /v1/.
	Public     http.Handler
	Identifier Identifier
	Audit      engine.AuditLog
	AuditStore engine.AuditStore
	// CheckpointKey returns the audit checkpoint public key (nil: none yet).
	CheckpointKey func(context.Context) (crypto.PublicKey, error)
	Logger        *slog.Logger
}

// API limits.
const (
	DefaultPage = 1000
	MaxPage     = 10_000
)

// New returns the handler of the HTTP address.
func New(cfg Config) http.Handler {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	a := &api{cfg: cfg, refusals: audit.DefaultLimiter()}
	mux := http.NewServeMux()
	endpoints := map[string]func(http.ResponseWriter, *http.Request, *call){
		"/v1/audit/records": a.records, "/v1/audit/chain": a.chain, "/v1/audit/checkpoints": a.checkpoints,
	}
	for path, h := range endpoints {
		mux.HandleFunc("GET "+path, a.auth(h))
	}
	mux.HandleFunc("/v1/", func(w http.ResponseWriter, r *http.Request) {
		if _, ok := endpoints[r.URL.Path]; ok {
			w.Header().Set("Allow", "GET, HEAD")
			writeError(w, http.StatusMethodNotAllowed, CodeMethodNotAllowed, r.Method+" is not allowed here; use GET")
			return
		}
		writeError(w, http.StatusNotFound, CodeNotFound, "no such API endpoint")
	})
	if cfg.Public != nil {
		mux.Handle("/", cfg.Public)
	}
	return mux
}

type api struct {
	cfg      Config
	refusals *audit.Limiter
}

// Error codes of API responses (stable: clients may rely on them).
const (
	CodeMTLSRequired = "mtls_required"
	CodeUnauthorized = "unauthorized"
	CodeForbidden    = "forbidden"
	CodeBadRequest   = "bad_request"
	CodeUnavailable  = "unavailable"
	CodeNotFound     = "not_found"

	CodeMethodNotAllowed = "method_not_allowed"
)

type errorBody struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

func writeError(w http.ResponseWriter, status int, code, msg string) {
	var b errorBody
	b.Error.Code, b.Error.Message = code, msg
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(b)
}

// call is one authenticated request.
type call struct {
	p      engine.Principal
	remote string
	action string
}

// auth requires a verified member certificate of role auditor or admin.
func (a *api) auth(h func(http.ResponseWriter, *http.Request, *call)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		action := "http.audit." + lastSegment(r.URL.Path)
		if r.TLS == nil {
			a.refuse(w, r, action, nil, http.StatusForbidden, CodeMTLSRequired, "the API is served over HTTPS with a client certificate")
			return
		}
		if len(r.TLS.PeerCertificates) == 0 {
			a.refuse(w, r, action, nil, http.StatusUnauthorized, CodeUnauthorized, "a member certificate is required")
			return
		}
		raw := make([][]byte, len(r.TLS.PeerCertificates))
		for i, c := range r.TLS.PeerCertificates {
			raw[i] = c.Raw
		}
		p, err := a.cfg.Identifier.Verify(raw)
		if err != nil {
			// The handshake verified it; trust changed since (a
			// revocation on a kept-alive connection).
			a.refuse(w, r, action, raw[0], http.StatusUnauthorized, CodeUnauthorized, "the client certificate is no longer accepted")
			return
		}
		c := &call{p: p, remote: r.RemoteAddr, action: action}
		if p.Role != engine.RoleAuditor && p.Role != engine.RoleAdmin {
			msg := fmt.Sprintf("role %s may not read the audit log (auditor and admin may)", p.Role)
			if !a.record(r.Context(), c, "failure", "Permission Denied", nil) {
				writeError(w, http.StatusServiceUnavailable, CodeUnavailable, auditUnavailable)
				return
			}
			writeError(w, http.StatusForbidden, CodeForbidden, msg)
			return
		}
		h(w, r, c)
	}
}

// refuse answers an unauthenticated request, recording it within the
// refusal rate (anyone who reaches the port can cause these).
func (a *api) refuse(w http.ResponseWriter, r *http.Request, action string, cert []byte, status int, code, msg string) {
	if ok, suppressed := a.refusals.Admit(time.Now()); ok {
		e := engine.AuditEvent{Remote: r.RemoteAddr, Action: action, Status: "failure", Reason: code,
			Details: map[string]string{"message": msg}}
		if cert != nil {
			sum := sha256.Sum256(cert)
			e.CertHash = hex.EncodeToString(sum[:])
		}
		if suppressed > 0 {
			e.Details["suppressed_before"] = strconv.Itoa(suppressed)
		}
		if err := a.cfg.Audit.Record(r.Context(), []engine.AuditEvent{e}); err != nil {
			a.cfg.Logger.Error("audit log cannot record a refused API request", "action", action, "err", err)
		}
	}
	writeError(w, status, code, msg)
}

func lastSegment(p string) string {
	for i := len(p) - 1; i >= 0; i-- {
		if p[i] == '/' {
			return p[i+1:]
		}
	}
	return p
}

const auditUnavailable = "the audit log cannot record this request; try again later"

// record audits a call; false means it could not be recorded (the
// request must then fail).
func (a *api) record(ctx context.Context, c *call, status, reason string, details map[string]string) bool {
	e := engine.AuditEvent{Tenant: c.p.Tenant, Member: c.p.Member, CertHash: c.p.CertHash, Role: string(c.p.Role),
		Remote: c.remote, Action: c.action, Status: status, Reason: reason, Details: details}
	if err := a.cfg.Audit.Record(ctx, []engine.AuditEvent{e}); err != nil {
		a.cfg.Logger.Error("audit log cannot record an API request", "action", c.action, "err", err)
		return false
	}
	return true
}

// page reads after and limit.
func page(r *http.Request) (after int64, limit int, err error) {
	q := r.URL.Query()
	if s := q.Get("after"); s != "" {
		if after, err = strconv.ParseInt(s, 10, 64); err != nil || after < 0 {
			return 0, 0, fmt.Errorf("after: %q is not a sequence number", s)
		}
	}
	limit = DefaultPage
	if s := q.Get("limit"); s != "" {
		if limit, err = strconv.Atoi(s); err != nil || limit < 1 || limit > MaxPage {
			return 0, 0, fmt.Errorf("limit: %q is not a number from 1 to %d", s, MaxPage)
		}
	}
	return after, limit, nil
}

func (a *api) badRequest(w http.ResponseWriter, r *http.Request, c *call, err error) {
	if !a.record(r.Context(), c, "failure", "Invalid Field", map[string]string{"message": err.Error()}) {
		writeError(w, http.StatusServiceUnavailable, CodeUnavailable, auditUnavailable)
		return
	}
	writeError(w, http.StatusBadRequest, CodeBadRequest, err.Error())
}

func (a *api) records(w http.ResponseWriter, r *http.Request, c *call) {
	after, limit, err := page(r)
	if err != nil {
		a.badRequest(w, r, c, err)
		return
	}
	q := engine.AuditQuery{Tenant: c.p.Tenant, AfterSeq: after, Limit: limit,
		Action: r.URL.Query().Get("action"), Object: r.URL.Query().Get("object"), Member: r.URL.Query().Get("member")}
	for _, f := range []struct {
		name string
		dst  *time.Time
	}{{"from", &q.From}, {"to", &q.To}} {
		if s := r.URL.Query().Get(f.name); s != "" {
			if *f.dst, err = time.Parse(time.RFC3339Nano, s); err != nil {
				a.badRequest(w, r, c, fmt.Errorf("%s: %q is not an RFC 3339 time", f.name, s))
				return
			}
		}
	}
	recs, err := a.cfg.AuditStore.QueryAudit(r.Context(), q)
	a.respond(w, r, c, recs, err, nil)
}

func (a *api) chain(w http.ResponseWriter, r *http.Request, c *call) {
	after, limit, err := page(r)
	if err != nil {
		a.badRequest(w, r, c, err)
		return
	}
	recs, err := a.cfg.AuditStore.AuditRecords(r.Context(), after, limit)
	a.respond(w, r, c, recs, err, func(rec *engine.AuditRecord) engine.AuditRecord {
		if rec.Tenant == c.p.Tenant {
			return *rec
		}
		return audit.Redact(rec)
	})
}

// respond audits the read, then writes records as JSON lines.
func (a *api) respond(w http.ResponseWriter, r *http.Request, c *call, recs []engine.AuditRecord, err error, view func(*engine.AuditRecord) engine.AuditRecord) {
	if err != nil {
		a.unavailable(w, r, c, "audit read failed", err)
		return
	}
	d := map[string]string{"records": strconv.Itoa(len(recs)), "query": r.URL.RawQuery}
	if !a.record(r.Context(), c, "success", "", d) {
		writeError(w, http.StatusServiceUnavailable, CodeUnavailable, auditUnavailable)
		return
	}
	w.Header().Set("Content-Type", "application/x-ndjson")
	if len(recs) > 0 {
		w.Header().Set("X-Minikms-Last-Seq", strconv.FormatInt(recs[len(recs)-1].Seq, 10))
	}
	enc := json.NewEncoder(w)
	for i := range recs {
		rec := &recs[i]
		if view != nil {
			v := view(rec)
			rec = &v
		}
		if err := enc.Encode(audit.ToJSON(rec)); err != nil {
			return // client gone
		}
	}
}

// unavailable answers a request the server cannot serve now (a store
// failure), recording the failure.
func (a *api) unavailable(w http.ResponseWriter, r *http.Request, c *call, what string, err error) {
	a.cfg.Logger.Error(what, "err", err)
	a.record(r.Context(), c, "failure", "General Failure", map[string]string{"message": what})
	writeError(w, http.StatusServiceUnavailable, CodeUnavailable, "the audit log cannot be read now; the server log has the details")
}

func (a *api) checkpoints(w http.ResponseWriter, r *http.Request, c *call) {
	// Checkpoints first, then the head: the head covers every checkpoint
	// served (see audit.VerifyOptions.UpTo).
	cps, err := a.cfg.AuditStore.AuditCheckpoints(r.Context())
	var head engine.AuditHead
	if err == nil {
		head, err = a.cfg.AuditStore.AuditHead(r.Context())
	}
	if err != nil {
		a.unavailable(w, r, c, "audit checkpoints read failed", err)
		return
	}
	out := audit.Checkpoints{HeadSeq: head.Seq, Checkpoints: make([]audit.JSONCheckpoint, 0, len(cps))}
	if a.cfg.CheckpointKey != nil {
		pub, err := a.cfg.CheckpointKey(r.Context())
		if err != nil && !errors.Is(err, engine.ErrNotFound) {
			a.unavailable(w, r, c, "audit checkpoint key unreadable", err)
			return
		}
		if pub != nil {
			if out.KeyID, err = audit.KeyID(pub); err == nil {
				out.PublicKey, err = audit.PublicKeyPEM(pub)
			}
			if err != nil {
				a.unavailable(w, r, c, "audit checkpoint key unusable", err)
				return
			}
		}
	}
	for _, cp := range cps {
		out.Checkpoints = append(out.Checkpoints, audit.CheckpointToJSON(cp))
	}
	if !a.record(r.Context(), c, "success", "", map[string]string{"checkpoints": strconv.Itoa(len(cps))}) {
		writeError(w, http.StatusServiceUnavailable, CodeUnavailable, auditUnavailable)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(out)
}
