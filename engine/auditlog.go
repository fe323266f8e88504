package engine

import (
	"context"
	"time"
)

// AuditEvent is one audited action, as a front end (KMIP, HTTP, command
// line) reports it. It never contains key material, plaintext, ciphertext
// or secrets: only who did what to which object, and how it ended.
type AuditEvent struct {
	Time     time.Time
	Tenant   string // "" for actions outside any tenant (refused handshakes, server-wide admin)
	Member   string
	CertHash string // hex SHA-256 of the client certificate, or "cli:<user>"
	Role     string
	Remote   string // client network address ("" for local actions)
	Action   string // e.g. "kmip.Encrypt", "tls.Refused", "admin.member.revoke"
	Object   string // unique identifier, serial, ... ("" when none)
	Status   string // "success" or "failure"
	Reason   string // failure reason ("" on success)
	Details  map[string]string
}

// AuditLog records events durably: Record returns only once every event
// is durable, and an error means the events are not recorded (the caller
// fails the action it records: fail closed).
type AuditLog interface {
	Record(ctx context.Context, events []AuditEvent) error
}

// AuditRecord is an audit event as the chain stores it.
type AuditRecord struct {
	Seq  int64
	Node string
	AuditEvent
	PrevHash []byte
	Hash     []byte
	// Redacted records (another tenant's, as a tenant auditor sees the
	// chain) carry only Seq, PrevHash, Hash and ContentHash: enough to
	// follow the chain, nothing about the action.
	Redacted    bool
	ContentHash []byte
}

// AuditHead is the last record of the chain (Seq 0 and a zero hash when
// the chain is empty).
type AuditHead struct {
	Seq  int64
	Hash []byte
}

// AuditCheckpoint is a signature over the chain head at some point.
type AuditCheckpoint struct {
	Seq       int64
	Hash      []byte
	Time      time.Time
	KeyID     string // hex SHA-256 of the signing key's SubjectPublicKeyInfo
	Signature []byte
}

// AuditQuery selects records; empty fields do not filter.
type AuditQuery struct {
	Tenant    string
	AnyTenant bool // with Tenant "", select every tenant (else only tenant "")
	From, To  time.Time
	Action    string
	Object    string
	Member    string
	AfterSeq  int64
	Limit     int
}

// AuditStore persists the chain.
type AuditStore interface {
	// AppendAudit extends the chain: build receives the current head,
	// inside the store's write transaction (so concurrent writers, in this
	// process or another, extend one chain), and returns the records to
	// insert. It returns once they are durable.
	AppendAudit(ctx context.Context, build func(head AuditHead) ([]AuditRecord, error)) error
	// AuditRecords returns records with Seq > afterSeq in Seq order.
	AuditRecords(ctx context.Context, afterSeq int64, limit int) ([]AuditRecord, error)
	QueryAudit(ctx context.Context, q AuditQuery) ([]AuditRecord, error)
	AuditHead(ctx context.Context) (AuditHead, error)
	PutAuditCheckpoint(ctx context.Context, c AuditCheckpoint) error
	AuditCheckpoints(ctx context.Context) ([]AuditCheckpoint, error)
}
