package engine

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Root rotation re-wraps everything wrapped under older root versions
// under the keyring's current version:
//
//   - every object holding material, in every tenant (keys, secrets,
//     templates...): its Wrapped blob, AAD-bound to the root version;
//   - the sealed server secrets in the store's metadata (CA keys and server
//     signing keys sealed by SealSystem: "pki.ca.*", "pki.key.*").
//
// The job is resumable: progress is checkpointed in the store (metadata
// key rotateStateKey) after every batch, and an object already under the
// new version is simply not selected again, so a job killed at any point
// continues where it stopped when run again. Each re-wrap is a
// compare-and-swap on the object's revision, in one transaction with a
// backup of the old wrapped blob (metadata "root.rotate.backup.*"): a
// server updating the object at the same time makes the swap fail and the
// job re-reads the object, so no concurrent change is lost. The backups and
// the old version's check value are dropped only by FinishRootRotation,
// once nothing is left under an old version.

// RotationStore is what root rotation needs of a store beyond Store.
// store/sqlite and store/postgres implement it.
type RotationStore interface {
	Store
	// ObjectsToRewrap returns up to limit objects holding material
	// (Wrapped not nil) whose RootVersion is not version and whose Seq is
	// above afterSeq, in every tenant, by Seq ascending. Names and Groups
	// may be left empty.
	ObjectsToRewrap(ctx context.Context, version uint32, afterSeq int64, limit int) ([]*StoredObject, error)
	// CountObjectsToRewrap counts what ObjectsToRewrap selects with
	// afterSeq 0 and no limit.
	CountObjectsToRewrap(ctx context.Context, version uint32) (int64, error)
	// RewrapObject, in one transaction, stores backup under the metadata
	// key backupKey (replacing any value) and sets the object's Wrapped,
	// RootVersion and Rev (prevRev+1) if its revision is still prevRev.
	// ErrConflict if it changed, ErrNotFound if it is gone.
	RewrapObject(ctx context.Context, tenant, id string, prevRev int64, wrapped []byte, rootVersion uint32, backupKey string, backup []byte) error
	// PutMeta stores value under key, replacing any value.
	PutMeta(ctx context.Context, key string, value []byte) error
	// SwapMeta replaces the value under key by value if it is old:
	// ErrConflict if it differs, ErrNotFound if the key is absent.
	SwapMeta(ctx context.Context, key string, old, value []byte) error
	// DeleteMeta removes the keys; absent keys are ignored.
	DeleteMeta(ctx context.Context, keys ...string) error
	// DeleteMetaPrefix removes every key starting with prefix and returns
	// how many it removed.
	DeleteMetaPrefix(ctx context.Context, prefix string) (int64, error)
}

const (
	rotateStateKey     = "root.rotate.state"
	rotateBackupPrefix = "root.rotate.backup."
	// rotateBackupMeta prefixes the backups of metadata records; object
	// backups are rotateBackupPrefix + tenant + "/" + id (a tenant id has
	// no '/').
	rotateBackupMeta = rotateBackupPrefix + "meta/"
)

// ErrRotationUnsupported: the store or keyring cannot rotate.
var ErrRotationUnsupported = errors.New("root rotation is not supported")

// RotationState is the durable checkpoint of a rotation.
type RotationState struct {
	// To is the root version everything is re-wrapped under.
	To uint32 `json:"to"`
	// AfterSeq: objects up to this Seq were handled by the current pass.
	AfterSeq int64 `json:"after_seq"`
	// Rewrapped counts the objects re-wrapped so far (all runs).
	Rewrapped int64     `json:"rewrapped"`
	MetaDone  bool      `json:"meta_done"`
	Complete  bool      `json:"complete"`
	Started   time.Time `json:"started"`
	Updated   time.Time `json:"updated"`
}

// RotationStatus reports a store's rotation state.
type RotationStatus struct {
	// Versions are the root versions the store records, with their check
	// values.
	Versions map[uint32]string
	// State is nil when no rotation is in progress or unfinished.
	State *RotationState
	// Remaining counts objects not yet under State.To (or under the
	// highest version when no rotation is recorded).
	Remaining int64
	// Backups counts the backup records kept.
	Backups int
}

// RotateOptions tune RotateRoot.
type RotateOptions struct {
	// BatchSize is the number of objects per checkpoint (0: 500).
	BatchSize int
	// Progress is called after every batch with the objects re-wrapped in
	// this run and the number that remained when this pass started.
	Progress func(done, total int64)
	// AfterObject is called after each object is re-wrapped (tests use it
	// to simulate a crash).
	AfterObject func(done int64)
}

func (e *Engine) rotationStore() (RotationStore, error) {
	rs, ok := e.store.(RotationStore)
	if !ok {
		return nil, fmt.Errorf("%w by this store", ErrRotationUnsupported)
	}
	if _, ok := e.keyring.(*SoftKeyring); !ok {
		return nil, fmt.Errorf("%w with an HSM-held root key: rotate the root in software (MINIKMS_ROOT_KEY) and import the new root into the token afterwards", ErrRotationUnsupported)
	}
	return rs, nil
}

// RegisterRoot records newRoot as the next root version of the store (its
// key check value and salt check) and returns its version. The engine must
// have been opened with the store's current root, which proves the salt.
// Registering a key the store already knows returns its version.
func (e *Engine) RegisterRoot(ctx context.Context, newRoot []byte) (uint32, error) {
	rs, err := e.rotationStore()
	if err != nil {
		return 0, err
	}
	if len(newRoot) != RootKeySize {
		return 0, fmt.Errorf("new root key must be %d bytes", RootKeySize)
	}
	st, err := e.rotationState(ctx, rs)
	if err != nil {
		return 0, err
	}
	kcv := kcvOf(newRoot)
	for range 16 {
		recorded, err := RootVersions(ctx, rs)
		if err != nil {
			return 0, err
		}
		var next uint32 = 1
		for v, k := range recorded {
			if k == kcv {
				return v, nil
			}
			next = max(next, v+1)
		}
		if st != nil && !st.Complete {
			return 0, fmt.Errorf("a rotation to root version %d is unfinished: run it to the end (minikms root rotate) and finish it first", st.To)
		}
		stored, err := rs.InitMeta(ctx, rootKCVKey(next), []byte(kcv))
		if err != nil {
			return 0, err
		}
		if string(stored) != kcv {
			continue // another process took that version: look again
		}
		sc := hkdfExpand32(newRoot, []byte(derivationPrefix+"salt-check|"+e.salt))
		scHex := fmt.Sprintf("%x", sc[:8])
		clear(sc)
		if _, err := rs.InitMeta(ctx, saltCheckKeyFor(next), []byte(scHex)); err != nil {
			return 0, err
		}
		return next, nil
	}
	return 0, errors.New("could not register the new root version: too many concurrent registrations")
}

func (e *Engine) rotationState(ctx context.Context, rs RotationStore) (*RotationState, error) {
	raw, err := rs.GetMeta(ctx, rotateStateKey)
	if errors.Is(err, ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var st RotationState
	if err := json.Unmarshal(raw, &st); err != nil {
		return nil, fmt.Errorf("rotation checkpoint is unreadable: %w", err)
	}
	return &st, nil
}

func (e *Engine) saveRotationState(ctx context.Context, rs RotationStore, st *RotationState) error {
	st.Updated = e.now().UTC()
	raw, err := json.Marshal(st)
	if err != nil {
		return err
	}
	return rs.PutMeta(ctx, rotateStateKey, raw)
}

// RootVersion is the root version new material is wrapped under.
func (e *Engine) RootVersion() uint32 { return e.keyring.Current() }

// RotationStatus reports the store's root versions and rotation progress.
func (e *Engine) RotationStatus(ctx context.Context) (*RotationStatus, error) {
	rs, ok := e.store.(RotationStore)
	if !ok {
		return nil, fmt.Errorf("%w by this store", ErrRotationUnsupported)
	}
	out := &RotationStatus{}
	var err error
	if out.Versions, err = RootVersions(ctx, rs); err != nil {
		return nil, err
	}
	if out.State, err = e.rotationState(ctx, rs); err != nil {
		return nil, err
	}
	to := e.keyring.Current()
	if out.State != nil {
		to = out.State.To
	}
	if out.Remaining, err = rs.CountObjectsToRewrap(ctx, to); err != nil {
		return nil, err
	}
	b, err := rs.ListMeta(ctx, rotateBackupPrefix)
	if err != nil {
		return nil, err
	}
	out.Backups = len(b)
	return out, nil
}

// maxRotatePasses bounds the passes over the objects: a pass re-wraps
// what it finds; objects written under an old version meanwhile (by a
// server still running with only the old root) need another.
const maxRotatePasses = 5

// RotateRoot re-wraps everything under the keyring's current root version
// (see above). It resumes a job a previous run left unfinished.
func (e *Engine) RotateRoot(ctx context.Context, opts RotateOptions) (*RotationState, error) {
	rs, err := e.rotationStore()
	if err != nil {
		return nil, err
	}
	if opts.BatchSize <= 0 {
		opts.BatchSize = 500
	}
	to := e.keyring.Current()
	st, err := e.rotationState(ctx, rs)
	if err != nil {
		return nil, err
	}
	if st != nil && st.To != to {
		if !st.Complete {
			return nil, fmt.Errorf("a rotation to root version %d is unfinished; this root key is version %d: run the rotation with the root of version %d", st.To, to, st.To)
		}
		st = nil // a finished-but-unconfirmed older job: superseded
	}
	if st == nil {
		st = &RotationState{To: to, Started: e.now().UTC()}
	}
	st.Complete = false
	if err := e.saveRotationState(ctx, rs, st); err != nil {
		return nil, err
	}
	if !st.MetaDone {
		if _, err := e.rewrapSealedMeta(ctx, rs, to, false); err != nil {
			return nil, err
		}
		st.MetaDone = true
		if err := e.saveRotationState(ctx, rs, st); err != nil {
			return nil, err
		}
	}
	var done int64
	for pass := 0; ; pass++ {
		total, err := rs.CountObjectsToRewrap(ctx, to)
		if err != nil {
			return nil, err
		}
		if total == 0 {
			break
		}
		if pass == maxRotatePasses {
			return nil, fmt.Errorf("%d objects are still written under an older root version after %d passes: restart every server with MINIKMS_ROOT_KEY set to the new root (and MINIKMS_ROOT_KEY_PREVIOUS to the old one), then run the rotation again", total, pass)
		}
		if opts.Progress != nil {
			opts.Progress(done, done+total)
		}
		for {
			batch, err := rs.ObjectsToRewrap(ctx, to, st.AfterSeq, opts.BatchSize)
			if err != nil {
				return nil, err
			}
			if len(batch) == 0 {
				break
			}
			for _, so := range batch {
				if err := ctx.Err(); err != nil {
					return nil, err
				}
				changed, err := e.rewrapObject(ctx, rs, so, to)
				if err != nil {
					return nil, err
				}
				if changed {
					done++
					st.Rewrapped++
					if opts.AfterObject != nil {
						opts.AfterObject(done)
					}
				}
			}
			st.AfterSeq = batch[len(batch)-1].Seq
			if err := e.saveRotationState(ctx, rs, st); err != nil {
				return nil, err
			}
			if opts.Progress != nil {
				opts.Progress(done, done+max(total-done, 0))
			}
		}
		st.AfterSeq = 0 // the next pass (if any) starts over
	}
	// Sealed records created under an old version during the job.
	if _, err := e.rewrapSealedMeta(ctx, rs, to, false); err != nil {
		return nil, err
	}
	st.Complete = true
	if err := e.saveRotationState(ctx, rs, st); err != nil {
		return nil, err
	}
	return st, nil
}

// rewrapObject re-wraps one object under version to, retrying when a
// concurrent update wins. changed is false when there was nothing to do.
func (e *Engine) rewrapObject(ctx context.Context, rs RotationStore, so *StoredObject, to uint32) (changed bool, err error) {
	for attempt := range maxUpdateRetries * 4 {
		if attempt > 0 {
			if so, err = rs.GetObject(ctx, so.Tenant, so.ID); errors.Is(err, ErrNotFound) {
				return false, nil // destroyed outright meanwhile
			} else if err != nil {
				return false, err
			}
			time.Sleep(time.Duration(attempt) * time.Millisecond)
		}
		if so.Wrapped == nil || so.RootVersion == to {
			return false, nil
		}
		from, err := e.tenantKey(ctx, so.RootVersion, so.Tenant)
		if err != nil {
			return false, fmt.Errorf("object %s (tenant %s) is under root version %d, which this keyring does not hold: %w", so.ID, so.Tenant, so.RootVersion, err)
		}
		pt, err := unwrapMaterial(from.aead, so.Tenant, so.ID, so.RootVersion, so.Wrapped)
		if err != nil {
			return false, fmt.Errorf("object %s (tenant %s): %w", so.ID, so.Tenant, err)
		}
		tk, err := e.tenantKey(ctx, to, so.Tenant)
		if err != nil {
			clear(pt)
			return false, err
		}
		w, err := wrapMaterial(tk.aead, so.Tenant, so.ID, to, pt)
		clear(pt)
		if err != nil {
			return false, err
		}
		backup, _ := json.Marshal(wrappedBackup{Version: so.RootVersion, Rev: so.Rev, Wrapped: so.Wrapped})
		err = rs.RewrapObject(ctx, so.Tenant, so.ID, so.Rev, w, to, rotateBackupPrefix+so.Tenant+"/"+so.ID, backup)
		switch {
		case err == nil:
			e.Invalidate(so.Tenant, so.ID)
			return true, nil
		case errors.Is(err, ErrNotFound):
			return false, nil
		case errors.Is(err, ErrConflict):
			continue
		default:
			return false, err
		}
	}
	return false, fmt.Errorf("%w: object %s keeps changing; run the rotation again", ErrConflict, so.ID)
}

// wrappedBackup is a backup record of an object's old wrapped material.
type wrappedBackup struct {
	Version uint32 `json:"version"`
	Rev     int64  `json:"rev"`
	Wrapped []byte `json:"wrapped"`
}

// sealedPrefixes are the metadata records holding SealSystem blobs, and
// how their seal label derives from the key (see package pki).
var sealedPrefixes = []struct{ meta, label string }{
	{"pki.ca.root", "pki/root"},
	{"pki.ca.tenant.", "pki/tenant/"},
	{"pki.key.", "pki/key/"},
}

// sealedLabel returns the SealSystem label of a sealed metadata record.
func sealedLabel(key string) (string, bool) {
	for _, p := range sealedPrefixes {
		if p.meta == "pki.ca.root" {
			if key == p.meta {
				return p.label, true
			}
			continue
		}
		if rest, ok := strings.CutPrefix(key, p.meta); ok && rest != "" {
			return p.label + rest, true
		}
	}
	return "", false
}

// rewrapSealedMeta re-seals the server secrets under version to. With
// countOnly it only counts those still under another version. Records
// whose "key" is not a SealSystem blob (an HSM reference) are left alone.
func (e *Engine) rewrapSealedMeta(ctx context.Context, rs RotationStore, to uint32, countOnly bool) (int, error) {
	n := 0
	for _, p := range sealedPrefixes {
		recs, err := rs.ListMeta(ctx, p.meta)
		if err != nil {
			return 0, err
		}
		keys := make([]string, 0, len(recs))
		for k := range recs {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, key := range keys {
			label, ok := sealedLabel(key)
			if !ok {
				continue
			}
			raw := recs[key]
			for attempt := 0; ; attempt++ {
				var rec map[string]json.RawMessage
				if err := json.Unmarshal(raw, &rec); err != nil {
					break // not a JSON record: not ours to touch
				}
				var ref []byte
				if err := json.Unmarshal(rec["key"], &ref); err != nil || len(ref) < 4+wrapOverhead || ref[4] != wrapFormatV1 {
					break // no sealed blob (HSM-held key)
				}
				v := binary.BigEndian.Uint32(ref[:4])
				if v == to {
					break
				}
				n++
				if countOnly {
					break
				}
				pt, err := e.OpenSystem(ctx, label, ref)
				if err != nil {
					return 0, fmt.Errorf("sealed record %s (root version %d): %w", key, v, err)
				}
				sealed, err := e.SealSystem(ctx, label, pt)
				clear(pt)
				if err != nil {
					return 0, err
				}
				if binary.BigEndian.Uint32(sealed[:4]) != to {
					return 0, fmt.Errorf("keyring's current version changed during the rotation")
				}
				if rec["key"], err = json.Marshal(sealed); err != nil {
					return 0, err
				}
				nv, err := json.Marshal(rec)
				if err != nil {
					return 0, err
				}
				if err := rs.PutMeta(ctx, rotateBackupMeta+key, raw); err != nil {
					return 0, err
				}
				err = rs.SwapMeta(ctx, key, raw, nv)
				if errors.Is(err, ErrConflict) && attempt < maxUpdateRetries {
					if raw, err = rs.GetMeta(ctx, key); err != nil {
						return 0, err
					}
					continue
				}
				if err != nil {
					return 0, fmt.Errorf("re-seal %s: %w", key, err)
				}
				break
			}
		}
	}
	return n, nil
}

// FinishRootRotation confirms a complete rotation: it checks that nothing
// is left under an older root version, then drops the backups, the
// checkpoint and the older versions' check values (after which the older
// root keys are no longer needed, nor accepted). It returns the versions
// dropped.
func (e *Engine) FinishRootRotation(ctx context.Context) ([]uint32, error) {
	rs, err := e.rotationStore()
	if err != nil {
		return nil, err
	}
	to := e.keyring.Current()
	st, err := e.rotationState(ctx, rs)
	if err != nil {
		return nil, err
	}
	if st == nil {
		return nil, errors.New("no rotation to finish")
	}
	if st.To != to {
		return nil, fmt.Errorf("the rotation is to root version %d; this root key is version %d", st.To, to)
	}
	if !st.Complete {
		return nil, errors.New("the rotation is not complete: run minikms root rotate again until it reports completion")
	}
	left, err := rs.CountObjectsToRewrap(ctx, to)
	if err != nil {
		return nil, err
	}
	sealedLeft, err := e.rewrapSealedMeta(ctx, rs, to, true)
	if err != nil {
		return nil, err
	}
	if left+int64(sealedLeft) > 0 {
		return nil, fmt.Errorf("%d objects and %d sealed records are under an older root version (written since the job ended): run minikms root rotate again", left, sealedLeft)
	}
	versions, err := RootVersions(ctx, rs)
	if err != nil {
		return nil, err
	}
	if _, err := rs.DeleteMetaPrefix(ctx, rotateBackupPrefix); err != nil {
		return nil, err
	}
	var dropped []uint32
	var keys []string
	for v := range versions {
		if v != to {
			dropped = append(dropped, v)
			keys = append(keys, rootKCVKey(v), saltCheckKeyFor(v))
		}
	}
	slices.Sort(dropped)
	if err := rs.DeleteMeta(ctx, keys...); err != nil {
		return nil, err
	}
	if err := rs.DeleteMeta(ctx, rotateStateKey); err != nil {
		return nil, err
	}
	return dropped, nil
}
