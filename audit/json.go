package audit

import (
	"crypto"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"time"

	"github.com/minikms/minikms/engine"
)

// JSONRecord is the JSON form of a record (`audit export`, the auditor
// API). Hashes are hex; a redacted record has only seq, prev_hash,
// content_hash and entry_hash.
type JSONRecord struct {
	Seq         int64             `json:"seq"`
	Time        *time.Time        `json:"time,omitempty"`
	Node        string            `json:"node,omitempty"`
	Tenant      string            `json:"tenant,omitempty"`
	Member      string            `json:"member,omitempty"`
	CertHash    string            `json:"cert_hash,omitempty"`
	Role        string            `json:"role,omitempty"`
	Remote      string            `json:"remote,omitempty"`
	Action      string            `json:"action,omitempty"`
	Object      string            `json:"object,omitempty"`
	Status      string            `json:"status,omitempty"`
	Reason      string            `json:"reason,omitempty"`
	Details     map[string]string `json:"details,omitempty"`
	Redacted    bool              `json:"redacted,omitempty"`
	PrevHash    string            `json:"prev_hash"`
	ContentHash string            `json:"content_hash,omitempty"`
	EntryHash   string            `json:"entry_hash"`
}

// ToJSON converts a record.
func ToJSON(r *engine.AuditRecord) JSONRecord {
	j := JSONRecord{Seq: r.Seq, PrevHash: hex.EncodeToString(r.PrevHash), EntryHash: hex.EncodeToString(r.Hash)}
	if r.Redacted {
		j.Redacted, j.ContentHash = true, hex.EncodeToString(r.ContentHash)
		return j
	}
	t := r.Time.UTC()
	j.Time = &t
	j.Node, j.Tenant, j.Member, j.CertHash, j.Role, j.Remote = r.Node, r.Tenant, r.Member, r.CertHash, r.Role, r.Remote
	j.Action, j.Object, j.Status, j.Reason, j.Details = r.Action, r.Object, r.Status, r.Reason, r.Details
	return j
}

// FromJSON converts back; it checks the form, not the hashes (Verify does).
func FromJSON(j JSONRecord) (engine.AuditRecord, error) {
	var r engine.AuditRecord
	var err error
	r.Seq = j.Seq
	if r.PrevHash, err = hex32(j.PrevHash); err != nil {
		return r, fmt.Errorf("record %d: prev_hash: %w", j.Seq, err)
	}
	if r.Hash, err = hex32(j.EntryHash); err != nil {
		return r, fmt.Errorf("record %d: entry_hash: %w", j.Seq, err)
	}
	if j.Redacted {
		r.Redacted = true
		if r.ContentHash, err = hex32(j.ContentHash); err != nil {
			return r, fmt.Errorf("record %d: content_hash: %w", j.Seq, err)
		}
		return r, nil
	}
	if j.Time == nil {
		return r, fmt.Errorf("record %d: no time", j.Seq)
	}
	r.Time = j.Time.UTC()
	r.Node, r.Tenant, r.Member, r.CertHash, r.Role, r.Remote = j.Node, j.Tenant, j.Member, j.CertHash, j.Role, j.Remote
	r.Action, r.Object, r.Status, r.Reason, r.Details = j.Action, j.Object, j.Status, j.Reason, j.Details
	return r, nil
}

func hex32(s string) ([]byte, error) {
	b, err := hex.DecodeString(s)
	if err != nil {
		return nil, err
	}
	if len(b) != 32 {
		return nil, errors.New("not 32 bytes")
	}
	return b, nil
}

// JSONCheckpoint is the JSON form of a checkpoint.
type JSONCheckpoint struct {
	Seq       int64     `json:"seq"`
	Hash      string    `json:"hash"`
	Time      time.Time `json:"time"`
	KeyID     string    `json:"key_id"`
	Signature string    `json:"signature"`
}

// CheckpointToJSON converts a checkpoint.
func CheckpointToJSON(c engine.AuditCheckpoint) JSONCheckpoint {
	return JSONCheckpoint{Seq: c.Seq, Hash: hex.EncodeToString(c.Hash), Time: c.Time.UTC(), KeyID: c.KeyID, Signature: hex.EncodeToString(c.Signature)}
}

// CheckpointFromJSON converts back.
func CheckpointFromJSON(j JSONCheckpoint) (engine.AuditCheckpoint, error) {
	c := engine.AuditCheckpoint{Seq: j.Seq, Time: j.Time.UTC(), KeyID: j.KeyID}
	var err error
	if c.Hash, err = hex32(j.Hash); err != nil {
		return c, fmt.Errorf("checkpoint %d: hash: %w", j.Seq, err)
	}
	if c.Signature, err = hex.DecodeString(j.Signature); err != nil {
		return c, fmt.Errorf("checkpoint %d: signature: %w", j.Seq, err)
	}
	return c, nil
}

// Checkpoints is what the auditor API serves at /v1/audit/checkpoints.
type Checkpoints struct {
	// HeadSeq is the chain's last record when the checkpoints were read:
	// verify up to it (reading the chain appends records of the reads).
	HeadSeq     int64            `json:"head_seq"`
	KeyID       string           `json:"key_id"`
	PublicKey   string           `json:"public_key"` // PEM SubjectPublicKeyInfo
	Checkpoints []JSONCheckpoint `json:"checkpoints"`
}

// PublicKeyPEM encodes a checkpoint key.
func PublicKeyPEM(pub crypto.PublicKey) (string, error) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return "", err
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})), nil
}

// ParsePublicKeyPEM decodes a checkpoint key.
func ParsePublicKeyPEM(s string) (crypto.PublicKey, error) {
	blk, _ := pem.Decode([]byte(s))
	if blk == nil || blk.Type != "PUBLIC KEY" {
		return nil, errors.New("not a PEM public key")
	}
	return x509.ParsePKIXPublicKey(blk.Bytes)
}

// MarshalLine encodes a record as one JSON line (with the newline).
func MarshalLine(r *engine.AuditRecord) ([]byte, error) {
	b, err := json.Marshal(ToJSON(r))
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}
