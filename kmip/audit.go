package kmip

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"reflect"
	"strconv"
	"sync"
	"time"

	"github.com/minikms/minikms/engine"
	"github.com/ovh/kmip-go"
	"github.com/ovh/kmip-go/ttlv"
)

// Audit actions the KMIP server records besides "kmip.<Operation>".
const (
	ActionMessage    = "kmip.message" // a request refused as a whole (malformed, unsupported version, ...)
	ActionTLSRefused = "tls.refused"  // a client that did not authenticate
)

// healthReporter is an audit log that knows whether it can record
// (implemented by *audit.Log).
type healthReporter interface {
	Healthy() error
}

// auditHealthy reports whether operations may run: not while the audit log
// cannot record them.
func (s *Server) auditHealthy() error {
	if h, ok := s.cfg.Audit.(healthReporter); ok {
		return h.Healthy()
	}
	return nil
}

// record makes events durable; with no audit log configured it does
// nothing.
func (s *Server) record(events []engine.AuditEvent) error {
	if s.cfg.Audit == nil || len(events) == 0 {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), s.cfg.RequestTimeout)
	defer cancel()
	return s.cfg.Audit.Record(ctx, events)
}

// opEvent is the audit event of one batch item.
func (s *session) opEvent(op kmip.Operation, req any, payload kmip.OperationPayload, out *kmip.ResponseBatchItem, placeholder string) engine.AuditEvent {
	e := s.baseEvent("kmip." + opName(op))
	var details map[string]string
	if out.ResultStatus == kmip.ResultStatusSuccess {
		e.Status = "success"
		e.Object, details = objectOf(payload)
	} else {
		e.Status = "failure"
		e.Reason = ttlv.EnumStr(out.ResultReason)
		details = map[string]string{"message": out.ResultMessage}
	}
	if e.Object == "" && req != nil {
		e.Object, _ = objectOf(req)
		if e.Object == "" {
			e.Object = placeholder // the ID Placeholder the request used
		}
	}
	e.Details = details
	return e
}

// baseEvent carries who is acting.
func (s *session) baseEvent(action string) engine.AuditEvent {
	return engine.AuditEvent{
		Tenant: s.p.Tenant, Member: s.p.Member, CertHash: s.p.CertHash, Role: string(s.p.Role),
		Remote: s.remote, Action: action,
	}
}

// messageEvent is the audit event of a request refused as a whole.
func (s *session) messageEvent(reason kmip.ResultReason, msg string) engine.AuditEvent {
	e := s.baseEvent(ActionMessage)
	e.Status, e.Reason = "failure", ttlv.EnumStr(reason)
	e.Details = map[string]string{"message": msg}
	return e
}

// opNames caches operation names (ttlv.EnumStr allocates).
var opNames sync.Map // kmip.Operation -> string

func opName(op kmip.Operation) string {
	if v, ok := opNames.Load(op); ok {
		return v.(string)
	}
	name := ttlv.EnumStr(op)
	if name == "" {
		name = fmt.Sprintf("0x%08X", uint32(op)) // an operation code KMIP does not define
	}
	if _, known := handlers[op]; known {
		opNames.Store(op, name) // only known operations: clients choose the others
	}
	return name
}

// idFields locates the identifier fields of a payload type.
type idFields struct {
	uid, uids, priv, pub []int // field index paths; nil when absent
}

var idFieldCache sync.Map // reflect.Type -> *idFields

func fieldsOf(t reflect.Type) *idFields {
	if v, ok := idFieldCache.Load(t); ok {
		return v.(*idFields)
	}
	f := &idFields{}
	if sf, ok := t.FieldByName("UniqueIdentifier"); ok {
		switch sf.Type.Kind() {
		case reflect.String:
			f.uid = sf.Index
		case reflect.Slice:
			if sf.Type.Elem().Kind() == reflect.String {
				f.uids = sf.Index
			}
		}
	}
	if sf, ok := t.FieldByName("PrivateKeyUniqueIdentifier"); ok && sf.Type.Kind() == reflect.String {
		f.priv = sf.Index
	}
	if sf, ok := t.FieldByName("PublicKeyUniqueIdentifier"); ok && sf.Type.Kind() == reflect.String {
		f.pub = sf.Index
	}
	idFieldCache.Store(t, f)
	return f
}

// objectOf returns the object a request or response payload names, and
// details for payloads naming several (Locate's matches, a key pair's
// public key).
func objectOf(payload any) (string, map[string]string) {
	v := reflect.ValueOf(payload)
	if !v.IsValid() || v.Kind() != reflect.Pointer || v.IsNil() || v.Elem().Kind() != reflect.Struct {
		return "", nil
	}
	v = v.Elem()
	f := fieldsOf(v.Type())
	switch {
	case f.uid != nil:
		return v.FieldByIndex(f.uid).String(), nil
	case f.priv != nil:
		var d map[string]string
		if f.pub != nil {
			d = map[string]string{"public_key": v.FieldByIndex(f.pub).String()}
		}
		return v.FieldByIndex(f.priv).String(), d
	case f.uids != nil:
		ids := v.FieldByIndex(f.uids)
		d := map[string]string{"matches": strconv.Itoa(ids.Len())}
		if ids.Len() == 1 {
			return ids.Index(0).String(), d
		}
		return "", d
	}
	return "", nil
}

// recordRefusal records a client that did not authenticate: certs are
// what it presented (possibly none), reason why it was refused.
func (s *Server) recordRefusal(remote string, certs [][]byte, p *engine.Principal, reason string) {
	if s.cfg.Audit == nil {
		return
	}
	ok, suppressed := s.refusals.Admit(time.Now())
	if !ok {
		return
	}
	e := engine.AuditEvent{Action: ActionTLSRefused, Status: "failure", Reason: reason, Remote: remote}
	if p != nil {
		e.Tenant, e.Member, e.CertHash, e.Role = p.Tenant, p.Member, p.CertHash, string(p.Role)
	} else if len(certs) > 0 {
		sum := sha256.Sum256(certs[0])
		e.CertHash = hex.EncodeToString(sum[:])
	}
	if suppressed > 0 {
		e.Details = map[string]string{"suppressed_before": strconv.Itoa(suppressed)}
	}
	if err := s.record([]engine.AuditEvent{e}); err != nil {
		s.log.Error("audit: refused client not recorded", "remote", remote, "err", err)
	}
}
