package engine

import (
	"log/slog"
	"sync"
)

// Memory hardening: root keys and derived tenant master keys live in
// dedicated buffers carved out of anonymous pages that are mlock'ed (kept
// out of swap) and excluded from core dumps (MADV_DONTDUMP) where the
// platform allows it. If RLIMIT_MEMLOCK forbids locking, the server logs
// it once and continues with the pages unlocked (raise LimitMEMLOCK in the
// systemd unit, or --ulimit memlock in Docker). Buffers are zeroized when
// their key is evicted or released, and on shutdown (Engine.Close,
// SoftKeyring.Close).
//
// What this does not cover: the expanded AES key schedules inside
// crypto/cipher values and transient copies made by the standard library
// live on the Go heap, which cannot be locked page by page; run with swap
// disabled or encrypted for those.

const (
	lockedPageSize = 4096
	lockedSlotSize = 64
)

type lockedArena struct {
	mu       sync.Mutex
	free     [][]byte // FIFO: a freed slot is reused last
	owners   map[*byte]*lockedKey
	warnOnce sync.Once
	locked   bool
}

var arena = &lockedArena{owners: map[*byte]*lockedKey{}}

// lockedKey is one key buffer in locked memory. destroy is idempotent and
// only ever touches the slot this key owns.
type lockedKey struct {
	b    []byte
	slot []byte
	once sync.Once
}

// newLockedKey copies src (at most lockedSlotSize bytes; longer keys use
// the heap) into a locked buffer.
func newLockedKey(src []byte) *lockedKey {
	if len(src) > lockedSlotSize {
		return &lockedKey{b: append([]byte(nil), src...)}
	}
	arena.mu.Lock()
	defer arena.mu.Unlock()
	if len(arena.free) == 0 {
		page, locked, err := allocLockedPage(lockedPageSize) // mlock_*.go
		if err != nil || !locked {
			arena.warnOnce.Do(func() {
				slog.Default().Warn("cannot lock key memory (mlock): keys may be swapped to disk; raise RLIMIT_MEMLOCK (systemd LimitMEMLOCK=, docker --ulimit memlock=)", "err", err)
			})
		}
		if page == nil {
			page = make([]byte, lockedPageSize)
		}
		arena.locked = arena.locked || locked
		for off := 0; off+lockedSlotSize <= len(page); off += lockedSlotSize {
			arena.free = append(arena.free, page[off:off+lockedSlotSize:off+lockedSlotSize])
		}
	}
	slot := arena.free[0]
	arena.free = arena.free[1:]
	lk := &lockedKey{slot: slot, b: slot[:len(src):len(src)]}
	copy(lk.b, src)
	if len(lk.b) > 0 {
		arena.owners[&lk.b[0]] = lk
	}
	return lk
}

// destroy zeroizes the key and returns its slot.
func (lk *lockedKey) destroy() {
	if lk == nil {
		return
	}
	lk.once.Do(func() {
		clear(lk.b)
		if lk.slot == nil {
			return
		}
		clear(lk.slot)
		arena.mu.Lock()
		if len(lk.b) > 0 && arena.owners[&lk.b[0]] == lk {
			delete(arena.owners, &lk.b[0])
		}
		arena.free = append(arena.free, lk.slot)
		arena.mu.Unlock()
	})
}

// secureCopy returns a copy of a key in locked memory; release it with
// releaseKeyBytes (exactly one owner).
func secureCopy(src []byte) []byte { return newLockedKey(src).b }

// releaseKeyBytes zeroizes b and, if secureCopy made it, returns its slot.
func releaseKeyBytes(b []byte) {
	if len(b) == 0 {
		return
	}
	arena.mu.Lock()
	lk := arena.owners[&b[0]]
	arena.mu.Unlock()
	if lk != nil && len(lk.b) == len(b) {
		lk.destroy()
		return
	}
	clear(b)
}

// KeyMemoryLocked reports whether key buffers are in mlock'ed memory (false
// until the first key is made, or when the limit forbids it).
func KeyMemoryLocked() bool {
	arena.mu.Lock()
	defer arena.mu.Unlock()
	return arena.locked
}

// release zeroizes a tenant master key (eviction, shutdown).
func (t *tenantKey) release() {
	if t.lk != nil {
		t.lk.destroy()
		return
	}
	clear(t.key)
}
