package audit

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"testing"
	"time"

	"github.com/minikms/minikms/engine"
)

// FuzzRecordJSON: an exported audit line of any content decodes or fails
// cleanly; what decodes re-encodes to an equivalent record (same canonical
// form, same hashes), so `minikms audit verify` compares what was written.
func FuzzRecordJSON(f *testing.F) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	r := engine.AuditRecord{Seq: 7, Node: "n1", PrevHash: make([]byte, 32), Hash: bytes.Repeat([]byte{1}, 32)}
	r.Time, r.Tenant, r.Member, r.Action, r.Object, r.Status = now, "acme", "alice", "Create", "id-1", "ok"
	r.Details = map[string]string{"k": "v"}
	line, err := MarshalLine(&r)
	if err != nil {
		f.Fatal(err)
	}
	red := Redact(&r)
	redLine, _ := MarshalLine(&red)
	f.Add(line)
	f.Add(redLine)
	f.Add([]byte(`{"seq":1,"prev_hash":"00","entry_hash":""}`))
	f.Add([]byte(`{"seq":-1,"time":"2026-01-01T00:00:00Z","prev_hash":"` + string(bytes.Repeat([]byte("0"), 64)) + `","entry_hash":"` + string(bytes.Repeat([]byte("f"), 64)) + `"}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		var j JSONRecord
		if json.Unmarshal(b, &j) != nil {
			return
		}
		rec, err := FromJSON(j)
		if err != nil {
			return
		}
		again, err := FromJSON(ToJSON(&rec))
		if err != nil {
			t.Fatalf("a decoded record does not decode again: %v", err)
		}
		if !bytes.Equal(Hash(&rec), Hash(&again)) || !bytes.Equal(ContentHash(&rec), ContentHash(&again)) {
			t.Fatal("JSON round trip changed the record's hash")
		}
		if !rec.Redacted && !bytes.Equal(Canonical(&rec), Canonical(&again)) {
			t.Fatal("JSON round trip changed the canonical form")
		}
	})
}

// FuzzCheckpointJSON: a checkpoint of any content verifies only when it is
// exactly what the key signed.
func FuzzCheckpointJSON(f *testing.F) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		f.Fatal(err)
	}
	id, err := KeyID(&key.PublicKey)
	if err != nil {
		f.Fatal(err)
	}
	c := engine.AuditCheckpoint{Seq: 9, Hash: bytes.Repeat([]byte{2}, 32), Time: time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC), KeyID: id}
	if c.Signature, err = ecdsa.SignASN1(rand.Reader, key, checkpointDigest(c)); err != nil {
		f.Fatal(err)
	}
	good, _ := json.Marshal(CheckpointToJSON(c))
	f.Add(good)
	f.Add([]byte(`{"seq":9,"hash":"zz","signature":"00"}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		var j JSONCheckpoint
		if json.Unmarshal(b, &j) != nil {
			return
		}
		got, err := CheckpointFromJSON(j)
		if err != nil {
			return
		}
		if VerifyCheckpoint(got, &key.PublicKey) == nil {
			if got.Seq != c.Seq || !bytes.Equal(got.Hash, c.Hash) || !got.Time.Equal(c.Time) || got.KeyID != c.KeyID {
				t.Fatalf("a checkpoint that was never signed verifies: %+v", got)
			}
		}
	})
}
