package engine

import (
	"context"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"iter"
	"maps"
	"slices"
	"strconv"
	"strings"
)

// Backup and restore (`minikms backup`, `minikms restore`) copy a store
// logically, record by record, so that a copy taken from one kind of store
// restores into another. The store never holds plaintext keys, so neither
// does a backup: material stays wrapped under the root key (restoring needs
// the same root key, which CheckRestoreKeys verifies before anything is
// written).

// BackupSummary is the first item of a snapshot: how many items of each kind
// follow, and the counters that are not rows.
type BackupSummary struct {
	Meta         int64
	Certificates int64
	Revocations  int64
	Clients      int64
	Objects      int64
	AuditRecords int64
	Checkpoints  int64
	// Generation is the identity generation (IdentityStore).
	Generation int64
	// LastSeq is the highest object Seq the store ever handed out (at
	// least the highest Seq of the objects): a restored store hands out
	// higher ones only.
	LastSeq int64
}

// MetaEntry is one InitMeta value.
type MetaEntry struct {
	Key   string
	Value []byte
}

// BackupItem is one record of a snapshot: exactly one field is set.
type BackupItem struct {
	Summary     *BackupSummary
	Meta        *MetaEntry
	Certificate *CertRecord
	Revocation  *Revocation
	Client      *ExternalClient
	Object      *StoredObject
	Audit       *AuditRecord
	Checkpoint  *AuditCheckpoint
}

// Kind names the item's kind ("" for an empty item).
func (it BackupItem) Kind() string {
	switch {
	case it.Summary != nil:
		return "summary"
	case it.Meta != nil:
		return "meta"
	case it.Certificate != nil:
		return "certificate"
	case it.Revocation != nil:
		return "revocation"
	case it.Client != nil:
		return "client"
	case it.Object != nil:
		return "object"
	case it.Audit != nil:
		return "audit"
	case it.Checkpoint != nil:
		return "checkpoint"
	}
	return ""
}

// ErrNotEmpty is returned by Restore for a store that already holds
// something: a restore never merges into, or overwrites, a live store.
var ErrNotEmpty = errors.New("the target store is not empty")

// BackupStore is a store that can copy itself out and into an empty self.
// Both store/sqlite and store/postgres are.
type BackupStore interface {
	// Backup calls fn with every item of one consistent snapshot (one read
	// transaction), in this order: the Summary, then meta (by key),
	// certificates, revocations, clients, objects (by Seq), audit records
	// (by Seq), checkpoints. It stops at fn's first error and returns it.
	// It writes nothing.
	Backup(ctx context.Context, fn func(BackupItem) error) error
	// Restore writes every item items yields into the store, in one
	// transaction: if items yields an error, or the store fails, nothing
	// is written. The store must be empty (no meta, objects, identity or
	// audit rows), else ErrNotEmpty. Objects keep their Seq, audit records
	// theirs; Summary items set the identity generation and the Seq high
	// water mark. Items are written as given: the caller checks them.
	Restore(ctx context.Context, items iter.Seq2[BackupItem, error]) error
}

// CheckRestoreKeys verifies, before a restore writes anything, that the
// keyring's current root key and salt are those the backed-up store was
// made with: meta holds the backup's check values (root.kcv.<version>,
// hkdf.salt.check[.<version>]; other keys are ignored). The current key
// must be one of the backup's root versions (matched by check value: a
// software key is numbered after the store's records when the engine
// opens); its salt check value must match. A mismatch wraps
// ErrWrongRootKey and names the backup's check value, never the key.
//
// others returns the backup's other root versions (an unfinished root
// rotation) that this keyring cannot derive, with their check values:
// objects still wrapped under them need those keys too.
func CheckRestoreKeys(ctx context.Context, k Keyring, salt string, meta map[string][]byte) (others map[uint32]string, err error) {
	kcvs := map[uint32]string{}
	for key, v := range meta {
		s, ok := strings.CutPrefix(key, "root.kcv.")
		if !ok {
			continue
		}
		n, err := strconv.ParseUint(s, 10, 32)
		if err != nil {
			return nil, fmt.Errorf("backup: malformed root key check value entry %q", key)
		}
		kcvs[uint32(n)] = string(v)
	}
	if len(kcvs) == 0 {
		// A store no server ever opened: nothing is wrapped yet.
		return nil, nil
	}
	cur := k.Current()
	got, err := KeyCheckValue(ctx, k, cur)
	if err != nil {
		return nil, err
	}
	versions := slices.Sorted(maps.Keys(kcvs))
	match, found := uint32(0), false
	for _, v := range versions {
		if subtle.ConstantTimeCompare([]byte(got), []byte(kcvs[v])) == 1 {
			match, found = v, true
		}
	}
	if !found {
		newest := versions[len(versions)-1]
		return nil, wrongRootKey(fmt.Sprintf("this backup was made under another root key (check value %s); start with that key (the key given has check value %s)",
			kcvs[newest], got))
	}
	saltKey := saltCheckKey
	if match != 1 {
		saltKey += "." + strconv.FormatUint(uint64(match), 10)
	}
	if want, ok := meta[saltKey]; ok {
		sc, err := k.Derive(ctx, cur, []byte(derivationPrefix+"salt-check|"+salt))
		if err != nil {
			return nil, err
		}
		sum := hex.EncodeToString(sc[:8])
		clear(sc)
		if subtle.ConstantTimeCompare([]byte(sum), want) != 1 {
			return nil, errors.New("MINIKMS_HKDF_SALT differs from the salt the backed-up store was made with: its objects would be unreadable; set the original salt")
		}
	}
	for _, v := range versions {
		if v == match {
			continue
		}
		if kcv, err := KeyCheckValue(ctx, k, v); err == nil && kcv == kcvs[v] {
			continue
		}
		if others == nil {
			others = map[uint32]string{}
		}
		others[v] = kcvs[v]
	}
	return others, nil
}

// restoreKeyError is a CheckRestoreKeys refusal: ErrWrongRootKey, with a
// message of its own (the sentinel's speaks of a store).
type restoreKeyError struct{ msg string }

func (e *restoreKeyError) Error() string { return e.msg }
func (e *restoreKeyError) Unwrap() error { return ErrWrongRootKey }

func wrongRootKey(msg string) error { return &restoreKeyError{msg: msg} }
