package audit

import (
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/minikms/minikms/engine"
)

// canonicalV1 prefixes version 1 of the canonical encoding.
var canonicalV1 = []byte("minikms-audit/v1")

// Limits of a record's fields, checked before anything is written.
const (
	MaxField   = 1024 // bytes of one text field
	MaxDetails = 32   // details of one record
)

// Canonical is the deterministic encoding a record's hash covers.
func Canonical(r *engine.AuditRecord) []byte {
	b := make([]byte, 0, 256)
	b = append(b, canonicalV1...)
	b = binary.BigEndian.AppendUint64(b, uint64(r.Seq))
	b = binary.BigEndian.AppendUint64(b, uint64(r.Time.UTC().UnixNano()))
	for _, s := range []string{r.Node, r.Tenant, r.Member, r.CertHash, r.Role, r.Remote, r.Action, r.Object, r.Status, r.Reason} {
		b = appendString(b, s)
	}
	keys := make([]string, 0, len(r.Details))
	for k := range r.Details {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	b = binary.BigEndian.AppendUint32(b, uint32(len(keys)))
	for _, k := range keys {
		b = appendString(b, k)
		b = appendString(b, r.Details[k])
	}
	return b
}

func appendString(b []byte, s string) []byte {
	b = binary.BigEndian.AppendUint32(b, uint32(len(s)))
	return append(b, s...)
}

// Genesis is the hash the first record chains to.
var Genesis = make([]byte, sha256.Size)

// ContentHash is SHA-256 of a record's canonical encoding (for a redacted
// record, the content hash it carries).
func ContentHash(r *engine.AuditRecord) []byte {
	if r.Redacted {
		return r.ContentHash
	}
	sum := sha256.Sum256(Canonical(r))
	return sum[:]
}

// Hash computes a record's entry hash:
//
//	SHA-256(PrevHash || SHA-256(canonical))
//
// Hashing the content first lets a tenant auditor follow the chain through
// other tenants' records knowing only their content hashes.
func Hash(r *engine.AuditRecord) []byte {
	h := sha256.New()
	h.Write(r.PrevHash)
	h.Write(ContentHash(r))
	return h.Sum(nil)
}

// Redact returns the view of r a foreign tenant's auditor gets.
func Redact(r *engine.AuditRecord) engine.AuditRecord {
	return engine.AuditRecord{Seq: r.Seq, PrevHash: r.PrevHash, Hash: r.Hash, Redacted: true, ContentHash: ContentHash(r)}
}

// validate checks an event before it enters the chain and makes its text
// storable as is: valid UTF-8 without NUL (PostgreSQL text refuses both,
// and JSON would alter them, breaking the hash), at most MaxField bytes.
// Client-supplied text (identifiers, messages) is never a reason to
// refuse a record: that would let a client make the log fail.
func validate(e *engine.AuditEvent) error {
	for _, f := range []*string{&e.Tenant, &e.Member, &e.CertHash, &e.Role, &e.Remote, &e.Action, &e.Object, &e.Status, &e.Reason} {
		*f = clean(*f)
	}
	if e.Action == "" {
		return errors.New("audit event without an action")
	}
	if e.Status != StatusSuccess && e.Status != StatusFailure {
		return fmt.Errorf("audit status %q is neither %q nor %q", e.Status, StatusSuccess, StatusFailure)
	}
	if len(e.Details) > MaxDetails {
		return fmt.Errorf("more than %d audit details", MaxDetails)
	}
	for k, v := range e.Details {
		if ck, cv := clean(k), clean(v); ck != k || cv != v {
			d := maps.Clone(e.Details)
			delete(d, k)
			d[ck] = cv
			e.Details = d
		}
	}
	return nil
}

// clean makes s storable (see validate).
func clean(s string) string {
	if len(s) <= MaxField && utf8.ValidString(s) && strings.IndexByte(s, 0) < 0 {
		return s
	}
	s = strings.ReplaceAll(strings.ToValidUTF8(s, "\ufffd"), "\x00", "\ufffd")
	if len(s) <= MaxField {
		return s
	}
	const mark = "…"
	cut := MaxField - len(mark)
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + mark
}

// Result statuses.
const (
	StatusSuccess = "success"
	StatusFailure = "failure"
)

// timePrecision is the resolution records keep (the stores keep
// nanoseconds; clocks rarely do better).
const timePrecision = time.Microsecond
