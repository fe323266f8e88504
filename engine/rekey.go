package engine

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"hash/maphash"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// OpReKey replaces a symmetric key by a new one (KMIP Re-key).
const OpReKey Op = "ReKey"

// ReKeyRequest is a KMIP Re-key of a symmetric key.
type ReKeyRequest struct {
	ID string
	// Offset, when set, is the time from the replacement key's Initial
	// Date to its Activation Date; the other lifecycle dates keep their
	// distance to the Activation Date (KMIP 1.4 §4.4). Without it the
	// dates are copied from the existing key.
	Offset *time.Duration
	// Attrs and Templates apply to the replacement key after the copy:
	// single-instance attributes override the copied value, others add
	// instances (a Name given here joins the names carried over).
	Attrs     []Attribute
	Templates []string
}

// notCarried reports the attributes of the existing key that ReKey does
// not copy to the replacement key: those KMIP 1.4 §4.4 sets anew (dates
// of the new key's own life, Digest, Links, Unique Identifier), those
// that describe the existing key's value or history (Fresh, Key Value
// Present/Location, Always Sensitive, Never Extractable, Random Number
// Generator, Archive Date), and the server's own custom attributes ("y-"),
// which hold state of that one object (the AES-GCM invocation count).
func notCarried(name string) bool {
	switch name {
	case AttrInitialDate, AttrLastChangeDate, AttrOriginalCreationDate,
		AttrDestroyDate, AttrCompromiseOccurrenceDate, AttrCompromiseDate, AttrRevocationReason, AttrArchiveDate,
		AttrDigest, AttrLink, AttrFresh, AttrKeyValuePresent, AttrKeyValueLocation,
		AttrAlwaysSensitive, AttrNeverExtractable, AttrRandomNumberGenerator:
		return true
	}
	return strings.HasPrefix(name, "y-")
}

// ReKey makes a replacement for a symmetric key: new key material of the
// same algorithm and length, the existing key's attributes (except those
// notCarried), its names moved over, and Links both ways (Replaced Object
// on the new key, Replacement Object on the existing one). The existing
// key keeps its state and material. It returns the replacement key.
func (e *Engine) ReKey(ctx context.Context, p Principal, req ReKeyRequest) (*Object, error) {
	if err := authorize(p, OpReKey); err != nil {
		return nil, err
	}
	if req.Offset != nil && *req.Offset < 0 {
		return nil, errf(ErrInvalidField, "the Offset is negative")
	}
	attrs, err := e.resolveTemplates(ctx, p.Tenant, req.Templates, req.Attrs)
	if err != nil {
		return nil, err
	}
	newKeyID := newID()
	var (
		nw    *Object
		names []Instance
		size  int
	)
	// The existing key gives up its names and points to the replacement
	// in one compare-and-swap, so two concurrent ReKeys cannot both carry
	// the names away; the replacement is built from that same snapshot.
	old, err := e.update(ctx, p.Tenant, req.ID, func(o *Object, now time.Time) error {
		if o.Type != TypeSymmetricKey {
			if o.Type == TypePrivateKey || o.Type == TypePublicKey {
				return errf(ErrIllegalOperation, "ReKey replaces symmetric keys; a key pair is replaced with ReKey Key Pair")
			}
			return errf(ErrIllegalOperation, "ReKey replaces symmetric keys, not %s objects", o.Type)
		}
		if o.State.Destroyed() {
			return errf(ErrWrongState, "the key is %s; a destroyed key cannot be re-keyed", o.State)
		}
		var err error
		nw, err = replacementKey(o, newKeyID, now, req.Offset, attrs)
		if err != nil {
			return err
		}
		if size, err = symmetricKeyBytes(nw.Attrs.Algorithm(), nw.Attrs.Length(), true); err != nil {
			return err
		}
		names = o.Attrs.Get(AttrName)
		o.Attrs.Remove(AttrName)
		o.Attrs.Add(AttrLink, Link{LinkType: LinkReplacementObject, LinkedObjectIdentifier: newKeyID})
		return nil
	})
	if err != nil {
		return nil, err
	}
	key := make([]byte, size)
	defer clear(key)
	if _, err := rand.Read(key); err != nil {
		e.undoReKey(ctx, old, newKeyID, names)
		return nil, err
	}
	if nw.Attrs.Algorithm() == Alg3DES {
		setDESParity(key)
	}
	created, err := e.store0(ctx, nw, Material{Format: FormatRaw, Bytes: key}, nw.Attrs.Time(AttrInitialDate))
	if err != nil {
		e.undoReKey(ctx, old, newKeyID, names)
		return nil, err
	}
	if created.ID != newKeyID {
		// The identifier collided and store0 took another: point the
		// existing key's link at it.
		e.relinkReKey(ctx, old, newKeyID, created.ID)
	}
	return created, nil
}

// replacementKey builds the replacement of o (not yet stored, no material)
// following KMIP 1.4 §4.4.
func replacementKey(o *Object, id string, now time.Time, offset *time.Duration, attrs []Attribute) (*Object, error) {
	nw := &Object{Tenant: o.Tenant, ID: id, Type: o.Type, State: StatePreActive, Attrs: NewAttrSet(), Rev: 1}
	nw.Attrs.Set(AttrInitialDate, now)
	nw.Attrs.Set(AttrLastChangeDate, now)
	for _, name := range o.Attrs.Names() {
		if notCarried(name) {
			continue
		}
		ins := o.Attrs.Get(name)
		if name == AttrUsageLimits {
			// The total is copied; the new key's count starts full.
			for i, in := range ins {
				if ul, ok := in.Value.(UsageLimits); ok {
					c := ul.UsageLimitsTotal
					ul.UsageLimitsCount = &c
					ins[i].Value = ul
				}
			}
		}
		// Instances keep their indices (a Name at index 1 stays at 1).
		nw.Attrs.setInstances(name, ins)
	}
	if offset != nil {
		// AT2 = IT2 + Offset; the other dates move by AT2 - AT1. An
		// existing key without an Activation Date has its dates moved
		// by the distance from its Initial Date instead.
		at2 := now.Add(*offset).UTC().Truncate(time.Second)
		base := o.Attrs.Time(AttrActivationDate)
		if base.IsZero() {
			base = o.Attrs.Time(AttrInitialDate)
		}
		shift := at2.Sub(base)
		nw.Attrs.Set(AttrActivationDate, at2)
		for _, d := range []string{AttrProcessStartDate, AttrProtectStopDate, AttrDeactivationDate} {
			if t := o.Attrs.Time(d); !t.IsZero() {
				nw.Attrs.Set(d, t.Add(shift))
			}
		}
	}
	nw.Attrs.Add(AttrLink, Link{LinkType: LinkReplacedObject, LinkedObjectIdentifier: o.ID})
	if err := applyTemplate(nw, attrs, now); err != nil {
		return nil, err
	}
	if nw.Attrs.Algorithm() != o.Attrs.Algorithm() || nw.Attrs.Length() != o.Attrs.Length() {
		return nil, errf(ErrInvalidField, "the replacement key has the algorithm and length of the existing key; they cannot be changed by ReKey")
	}
	nw.Attrs.Set(AttrOriginalCreationDate, now)
	return nw, nil
}

// setInstances makes ins (with their indices) the instances of name.
func (s *AttrSet) setInstances(name string, ins []Instance) {
	s.touch(name)
	s.vals[name] = slices.Clone(ins)
}

// undoReKey gives the existing key back its names and drops its link to a
// replacement that could not be stored. It runs even if the request's
// context was cancelled.
func (e *Engine) undoReKey(ctx context.Context, old *Object, newKeyID string, names []Instance) {
	_, err := e.update(context.WithoutCancel(ctx), old.Tenant, old.ID, func(o *Object, _ time.Time) error {
		for _, in := range o.Attrs.Get(AttrLink) {
			if l, ok := in.Value.(Link); ok && l.LinkType == LinkReplacementObject && l.LinkedObjectIdentifier == newKeyID {
				if _, err := o.Attrs.Delete(AttrLink, in.Index); err != nil {
					return err
				}
			}
		}
		if len(names) > 0 {
			all := append(o.Attrs.Get(AttrName), names...)
			slices.SortFunc(all, func(a, b Instance) int { return int(a.Index - b.Index) })
			all = slices.CompactFunc(all, func(a, b Instance) bool { return a.Index == b.Index })
			o.Attrs.setInstances(AttrName, all)
		}
		return nil
	})
	if err != nil {
		e.log.Error("ReKey failed and the existing key could not be restored", "object", old.ID, "tenant", old.Tenant, "err", err)
	}
}

// relinkReKey points the existing key's Replacement Object link at the
// identifier the replacement was finally stored under.
func (e *Engine) relinkReKey(ctx context.Context, old *Object, from, to string) {
	_, err := e.update(context.WithoutCancel(ctx), old.Tenant, old.ID, func(o *Object, _ time.Time) error {
		for _, in := range o.Attrs.Get(AttrLink) {
			if l, ok := in.Value.(Link); ok && l.LinkType == LinkReplacementObject && l.LinkedObjectIdentifier == from {
				l.LinkedObjectIdentifier = to
				return o.Attrs.Replace(AttrLink, in.Index, l)
			}
		}
		return errNoChange
	})
	if err != nil {
		e.log.Error("ReKey: the existing key's Replacement Object link could not be updated", "object", old.ID, "replacement", to, "err", err)
	}
}

// ---- Rotation by usage: the AES-GCM invocation bound ----
//
// NIST SP 800-38D §8.3: with random 96-bit IVs (any IV the server draws
// at random), one key may perform at most 2^32 authenticated encryptions.
// Each key counts its invocations in the server custom attribute
// AttrGCMInvocations: the number reserved so far, durably. A server
// reserves a block of invocations with one store write and spends it in
// memory, so Encrypt does not write per call; a crash or an eviction
// loses the unspent part of a block (over-counting, never
// under-counting), and several servers on one store reserve disjoint
// blocks through the store's compare-and-swap. Once every invocation is
// reserved, GCM encryption with a server-drawn IV is refused: the key
// must be replaced (ReKey). Client-supplied IVs are the client's
// responsibility and are not counted.

// AttrGCMInvocations is the server custom attribute counting the AES-GCM
// invocations with server-drawn IVs reserved for a key (a Long Integer).
const AttrGCMInvocations = "y-GCM Random IV Invocations"

// GCM bound parameters; variables so that tests can shrink them.
var (
	gcmInvocationLimit int64 = 1 << 32
	gcmLeaseBlock      int64 = 1 << 16
)

// gcmLeases are the in-memory remainders of reserved blocks, by object
// identifier (unique across tenants).
type gcmLeases struct {
	shards [gcmShards]gcmShard
}

var gcmSeed = maphash.MakeSeed()

const (
	gcmShards = 64
	// gcmShardCap bounds the keys one shard remembers; past it the shard
	// forgets them all (their unspent blocks are lost, which only
	// over-counts).
	gcmShardCap = DefaultCacheEntries / gcmShards
)

type gcmShard struct {
	mu    sync.RWMutex
	slots map[string]*gcmSlot
}

// gcmSlot is one key's current block.
type gcmSlot struct {
	mu        sync.Mutex // serializes reservations of new blocks
	cur       atomic.Pointer[gcmLease]
	exhausted atomic.Bool
}

type gcmLease struct {
	size int64
	used atomic.Int64
}

func (l *gcmLeases) slot(id string) *gcmSlot {
	sh := &l.shards[maphash.String(gcmSeed, id)%gcmShards]
	sh.mu.RLock()
	s := sh.slots[id]
	sh.mu.RUnlock()
	if s != nil {
		return s
	}
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if s = sh.slots[id]; s != nil {
		return s
	}
	if sh.slots == nil || len(sh.slots) >= gcmShardCap {
		sh.slots = map[string]*gcmSlot{}
	}
	s = &gcmSlot{}
	sh.slots[id] = s
	return s
}

// errGCMExhausted is the refusal once a key's invocations are spent.
func errGCMExhausted() error {
	return errf(ErrPermissionDenied, "the key has performed the %d AES-GCM encryptions with server-generated random IVs that one key may perform (NIST SP 800-38D §8.3); ReKey it and encrypt with the replacement key", gcmInvocationLimit)
}

// reserveGCM accounts for one AES-GCM encryption with a server-drawn IV
// by key o, whose unwrapped key is k. It writes to the store only when a
// new block is needed.
func (e *Engine) reserveGCM(ctx context.Context, o *Object, k *keyEntry) error {
	s := e.gcm.slot(o.ID)
	for {
		if s.exhausted.Load() {
			return errGCMExhausted()
		}
		if l := s.cur.Load(); l != nil && l.used.Add(1) <= l.size {
			return nil
		}
		if err := e.renewGCM(ctx, s, o, k); err != nil {
			return err
		}
	}
}

// renewGCM reserves the key's next block durably, unless another caller
// just did.
func (e *Engine) renewGCM(ctx context.Context, s *gcmSlot, o *Object, k *keyEntry) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if l := s.cur.Load(); l != nil && l.used.Load() < l.size {
		return nil
	}
	// The write makes a new revision of the object, which drops its
	// cached key; the material does not change, so the key is cached
	// again for the new revision instead of being unwrapped anew.
	m, merr := k.copyMaterial()
	defer clear(m.Bytes)
	var got int64
	updated, err := e.update(ctx, o.Tenant, o.ID, func(o *Object, now time.Time) error {
		if !o.HasMaterial() || o.EffectiveState(now) != StateActive {
			return errf(ErrWrongState, "the key changed state during the request; retry")
		}
		done := gcmReserved(o)
		if done >= gcmInvocationLimit {
			return errGCMSpent
		}
		got = min(gcmLeaseBlock, gcmInvocationLimit-done)
		o.Attrs.Set(AttrGCMInvocations, Item{Kind: KindLongInteger, Int: done + got})
		return nil
	})
	if errors.Is(err, errGCMSpent) {
		s.exhausted.Store(true)
		return errGCMExhausted()
	}
	if err != nil {
		return fmt.Errorf("reserve AES-GCM invocations: %w", err)
	}
	s.cur.Store(&gcmLease{size: got})
	if merr == nil {
		e.recacheKey(updated, m)
	}
	return nil
}

// recacheKey caches a copy of material m as the key of revision o.Rev,
// unless the cache already has that revision's key or a newer revision.
func (e *Engine) recacheKey(o *Object, m Material) {
	nk := &keyEntry{rev: o.Rev, format: m.Format, dataType: m.DataType, material: slices.Clone(m.Bytes)}
	if alg := o.Attrs.Algorithm(); alg == AlgAES || alg == Alg3DES {
		if _, _, err := nk.cipher(alg); err != nil {
			nk.zeroize()
			return
		}
	}
	ck := cacheKey(o.Tenant, o.ID)
	nc := &cachedObject{obj: o.clone(), key: nk}
	e.cachePut(ck, nc, func(old *cachedObject) bool {
		return old.obj.Rev > o.Rev || (old.obj.Rev == o.Rev && old.key != nil)
	})
	if cur, ok := e.objects.Get(ck); !ok || cur != nc {
		nk.zeroize()
	}
}

var errGCMSpent = errors.New("AES-GCM invocations spent")

// gcmReserved is the number of invocations reserved for o so far.
func gcmReserved(o *Object) int64 {
	v, ok := o.Attrs.First(AttrGCMInvocations)
	if !ok {
		return 0
	}
	it, _ := v.(Item)
	return it.Int
}
