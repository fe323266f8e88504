package audit

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"

	"github.com/minikms/minikms/engine"
)

// Kinds of damage Verify names.
const (
	Modified   = "modified"   // a record's content no longer matches its hash
	Removed    = "removed"    // records are missing
	Inserted   = "inserted"   // a record is not part of the chain
	Reordered  = "reordered"  // records were swapped
	Truncated  = "truncated"  // the chain ends before a signed checkpoint
	Rewritten  = "rewritten"  // a signed checkpoint disagrees with the chain
	BadSigning = "checkpoint" // a checkpoint's signature does not verify
)

// Problem is the first damage found.
type Problem struct {
	Seq    int64
	Kind   string
	Detail string
}

func (p *Problem) String() string { return fmt.Sprintf("record %d: %s: %s", p.Seq, p.Kind, p.Detail) }

// Report is the outcome of Verify.
type Report struct {
	Records     int64
	Head        engine.AuditHead
	Checkpoints int
	// Unsigned counts the newest records no checkpoint covers yet.
	Unsigned int64
	// Problem is nil for an intact chain.
	Problem *Problem
}

// VerifyOptions tune Verify.
type VerifyOptions struct {
	// CheckpointKey verifies checkpoint signatures. Nil skips signatures
	// (checkpoints are then only compared with the chain).
	CheckpointKey crypto.PublicKey
	// UpTo stops at this record: a chain that grows meanwhile, for
	// instance with the records of the reads themselves, is verified up
	// to there. It must be read after the checkpoints. 0: the head of a
	// source that has AuditHead, read after the checkpoints, else the end.
	UpTo int64
}

// Source is what Verify reads: the store itself, or a tenant auditor's
// view of the chain fetched over HTTPS (other tenants' records redacted).
type Source interface {
	AuditRecords(ctx context.Context, afterSeq int64, limit int) ([]engine.AuditRecord, error)
	AuditCheckpoints(ctx context.Context) ([]engine.AuditCheckpoint, error)
}

// verifyPage is how many records Verify reads at a time.
const verifyPage = 2048

// Verify walks the whole chain and the checkpoints and reports the first
// damage. An error means the store could not be read (not that the chain
// is damaged).
func Verify(ctx context.Context, store Source, opts VerifyOptions) (Report, error) {
	var rep Report
	// Checkpoints first: a server appending meanwhile only makes the
	// chain longer than they cover, never shorter.
	cps, err := store.AuditCheckpoints(ctx)
	if err != nil {
		return rep, err
	}
	if hs, ok := store.(interface {
		AuditHead(context.Context) (engine.AuditHead, error)
	}); ok && opts.UpTo == 0 {
		head, err := hs.AuditHead(ctx)
		if err != nil {
			return rep, err
		}
		opts.UpTo = head.Seq
	}
	// Memory stays bounded whatever the chain's length: the hashes at
	// checkpointed positions, and the recent ones (to name reorders).
	hashes := map[int64][]byte{} // checkpointed seq -> stored hash
	for _, c := range cps {
		hashes[c.Seq] = nil
	}
	recent := newRecentHashes(recentWindow)
	var window []engine.AuditRecord
	prev, expect := Genesis, int64(1)
	var after int64
	for rep.Problem == nil {
		limit := verifyPage
		if opts.UpTo > 0 {
			limit = int(min(int64(verifyPage), opts.UpTo-after))
		}
		var page []engine.AuditRecord
		if limit > 0 {
			if page, err = store.AuditRecords(ctx, after, limit); err != nil {
				return rep, err
			}
		}
		if opts.UpTo > 0 {
			for i, r := range page {
				if r.Seq > opts.UpTo {
					page = page[:i]
					break
				}
			}
		}
		window = append(window, page...)
		end := len(page) == 0
		// Keep one record of look-ahead to tell swaps from edits.
		for len(window) > 1 || (end && len(window) == 1) {
			r, next := window[0], (*engine.AuditRecord)(nil)
			if len(window) > 1 {
				next = &window[1]
			}
			window = window[1:]
			if p := check(&r, next, prev, expect, recent); p != nil {
				rep.Problem = p
				break
			}
			if _, ok := hashes[r.Seq]; ok {
				hashes[r.Seq] = r.Hash
			}
			recent.add(r.Hash, r.Seq)
			prev, expect = r.Hash, r.Seq+1
			rep.Records++
			rep.Head = engine.AuditHead{Seq: r.Seq, Hash: r.Hash}
		}
		if end {
			break
		}
		after = page[len(page)-1].Seq
	}
	if rep.Problem != nil {
		return rep, nil
	}
	if opts.UpTo > 0 && rep.Head.Seq < opts.UpTo {
		rep.Problem = &Problem{Seq: rep.Head.Seq + 1, Kind: Truncated,
			Detail: fmt.Sprintf("the chain ends at record %d, but its head was %d when verification began", rep.Head.Seq, opts.UpTo)}
		return rep, nil
	}
	rep.Checkpoints = len(cps)
	var signed int64
	for _, c := range cps {
		if opts.CheckpointKey != nil {
			if err := VerifyCheckpoint(c, opts.CheckpointKey); err != nil {
				rep.Problem = &Problem{Seq: c.Seq, Kind: BadSigning, Detail: err.Error()}
				return rep, nil
			}
		}
		switch h := hashes[c.Seq]; {
		case c.Seq > rep.Head.Seq:
			rep.Problem = &Problem{Seq: rep.Head.Seq + 1, Kind: Truncated,
				Detail: fmt.Sprintf("a checkpoint signed %s covers record %d, but the chain ends at %d", c.Time.UTC().Format("2006-01-02T15:04:05Z"), c.Seq, rep.Head.Seq)}
			return rep, nil
		case !bytes.Equal(h, c.Hash):
			rep.Problem = &Problem{Seq: c.Seq, Kind: Rewritten,
				Detail: "the record's hash differs from the one a checkpoint signed: the chain was recomputed after a change"}
			return rep, nil
		}
		signed = max(signed, c.Seq)
	}
	rep.Unsigned = rep.Head.Seq - signed
	return rep, nil
}

// check examines one record against the chain so far.
func check(r, next *engine.AuditRecord, prev []byte, expect int64, byHash *recentHashes) *Problem {
	if r.Seq > expect {
		return &Problem{Seq: expect, Kind: Removed, Detail: fmt.Sprintf("records %d to %d are missing", expect, r.Seq-1)}
	}
	if r.Seq < expect {
		return &Problem{Seq: r.Seq, Kind: Inserted, Detail: "a record repeats a sequence number"}
	}
	if !bytes.Equal(Hash(r), r.Hash) {
		switch {
		case r.Redacted:
		case next != nil && !next.Redacted && swapped(r, next):
			return &Problem{Seq: r.Seq, Kind: Reordered, Detail: fmt.Sprintf("records %d and %d were swapped", r.Seq, next.Seq)}
		case renumbered(r, -1) && chainsTo(byHash, r.PrevHash, r.Seq-2):
			// It was record r.Seq-1 and chains to r.Seq-2, like the record
			// now before it: that one was inserted and the rest shifted.
			return &Problem{Seq: r.Seq - 1, Kind: Inserted, Detail: fmt.Sprintf("record %d was inserted: the records after it were renumbered (record %d was %d)", r.Seq-1, r.Seq, r.Seq-1)}
		case renumbered(r, 1):
			return &Problem{Seq: r.Seq, Kind: Removed, Detail: fmt.Sprintf("a record %d was removed and the records after it renumbered (record %d was %d)", r.Seq, r.Seq, r.Seq+1)}
		}
		return &Problem{Seq: r.Seq, Kind: Modified, Detail: "its content no longer matches its hash"}
	}
	if !bytes.Equal(r.PrevHash, prev) {
		s, ok := byHash.seq(r.PrevHash)
		switch {
		case ok && s == r.Seq-2:
			return &Problem{Seq: r.Seq - 1, Kind: Inserted, Detail: fmt.Sprintf("record %d chains to record %d: record %d was inserted", r.Seq, r.Seq-2, r.Seq-1)}
		case ok:
			return &Problem{Seq: r.Seq, Kind: Reordered, Detail: fmt.Sprintf("it chains to record %d, not to its predecessor", s)}
		case r.Seq == 1:
			return &Problem{Seq: 1, Kind: Modified, Detail: "the first record does not chain to the genesis hash: records before it were removed and the rest renumbered, or it was re-hashed"}
		}
		return &Problem{Seq: r.Seq - 1, Kind: Modified,
			Detail: fmt.Sprintf("record %d chains to a hash no record has: record %d was changed and re-hashed, or records were removed before %d and the rest re-hashed", r.Seq, r.Seq-1, r.Seq)}
	}
	return nil
}

// chainsTo reports whether sum is the hash of record seq (Genesis for 0).
func chainsTo(byHash *recentHashes, sum []byte, seq int64) bool {
	if seq == 0 {
		return bytes.Equal(sum, Genesis)
	}
	s, ok := byHash.seq(sum)
	return ok && s == seq
}

// renumbered reports whether r hashes correctly under sequence number
// r.Seq+delta: it was moved by -delta.
func renumbered(r *engine.AuditRecord, delta int64) bool {
	c := *r
	c.Seq += delta
	return c.Seq > 0 && bytes.Equal(Hash(&c), r.Hash)
}

// recentWindow is how far back Verify remembers hashes to tell a record
// chained to an earlier one (reordered) from one chained to nothing.
const recentWindow = 4096

// recentHashes maps the last n hashes to their sequence numbers.
type recentHashes struct {
	n     int
	bySum map[string]int64
	order []string
}

func newRecentHashes(n int) *recentHashes {
	return &recentHashes{n: n, bySum: make(map[string]int64, n)}
}

func (h *recentHashes) add(sum []byte, seq int64) {
	if len(h.order) == h.n {
		delete(h.bySum, h.order[0])
		h.order = h.order[1:]
	}
	h.bySum[string(sum)] = seq
	h.order = append(h.order, string(sum))
}

func (h *recentHashes) seq(sum []byte) (int64, bool) {
	s, ok := h.bySum[string(sum)]
	return s, ok
}

// swapped reports whether r and next hold each other's content: each hashes
// correctly under the other's sequence number.
func swapped(r, next *engine.AuditRecord) bool {
	a, b := *r, *next
	a.Seq, b.Seq = next.Seq, r.Seq
	return bytes.Equal(Hash(&a), r.Hash) && bytes.Equal(Hash(&b), next.Hash)
}

var checkpointV1 = []byte("minikms-audit-checkpoint/v1")

// checkpointDigest is what a checkpoint signature covers.
func checkpointDigest(c engine.AuditCheckpoint) []byte {
	h := sha256.New()
	h.Write(checkpointV1)
	var b [16]byte
	binary.BigEndian.PutUint64(b[:8], uint64(c.Seq))
	binary.BigEndian.PutUint64(b[8:], uint64(c.Time.UTC().UnixNano()))
	h.Write(b[:])
	h.Write(c.Hash)
	return h.Sum(nil)
}

// KeyID identifies a checkpoint public key: hex SHA-256 of its SPKI.
func KeyID(pub crypto.PublicKey) (string, error) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(der)
	return hex.EncodeToString(sum[:]), nil
}

// VerifyCheckpoint checks a checkpoint's signature with pub.
func VerifyCheckpoint(c engine.AuditCheckpoint, pub crypto.PublicKey) error {
	id, err := KeyID(pub)
	if err != nil {
		return err
	}
	if c.KeyID != id {
		return fmt.Errorf("signed by key %s, not by %s", c.KeyID, id)
	}
	ec, ok := pub.(*ecdsa.PublicKey)
	if !ok {
		return errors.New("checkpoint keys are ECDSA keys")
	}
	if !ecdsa.VerifyASN1(ec, checkpointDigest(c), c.Signature) {
		return errors.New("the signature does not verify")
	}
	return nil
}
