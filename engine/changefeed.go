package engine

import (
	"context"
	"fmt"
	"math"
	"sync"
	"sync/atomic"
	"time"
)

// Several servers may share one store (store/postgres). Each caches
// objects and their unwrapped keys (engine.go), so a change one server
// commits must reach the others' caches: a store that can report the
// changes committed by anyone implements ChangeFeed, and Open follows it
// for the engine's lifetime.
//
// A change notice carries the object's new revision. The engine drops its
// cached copy if older, and remembers the revision for a while as a floor:
// a load that read the object just before the change (and so would cache
// the older revision after the notice was handled) is refused by the
// cache, under the cache shard's lock, so a stale copy can never settle in
// the cache after its notice. The floors are kept floorTTL (bounded by
// maxFloors), far longer than a request holds an object it read.

// ChangeFeed is a store shared by several servers that reports the object
// changes (updates and deletions) any of them commits.
type ChangeFeed interface {
	// FollowChanges starts delivering changes to h and returns once the
	// feed is established: every change committed after it returns reaches
	// h (changes committed before are already visible to reads). ctx
	// bounds only the start. stop ends the feed and waits until h is no
	// longer called.
	FollowChanges(ctx context.Context, h ChangeHandler) (stop func(), err error)
}

// ChangeHandler receives a ChangeFeed's notices, from one goroutine.
type ChangeHandler interface {
	// ObjectChanged: the object is now at revision rev; rev 0 means it was
	// deleted. A notice may come more than once, and for changes made by
	// this process.
	ObjectChanged(tenant, id string, rev int64)
	// ChangesLost: the feed may have missed changes it cannot replay (a
	// long outage): every cached object must go.
	ChangesLost()
}

const (
	// floorTTL is how long the revision of a change notice is remembered.
	floorTTL = 2 * time.Minute
	// maxFloors bounds the remembered revisions; beyond it the oldest go
	// first (they are then younger than floorTTL only under more than
	// maxFloors changes within floorTTL).
	maxFloors = 200_000
	// lostWindow is how long after ChangesLost nothing is cached, so that
	// a request that read an object before the loss cannot cache it after
	// the purge.
	lostWindow = 10 * time.Second
)

// changeState is the engine's side of a change feed.
type changeState struct {
	following atomic.Bool
	stop      func()

	mu        sync.Mutex
	floors    map[string]revFloor
	order     []floorRef // FIFO of floors, for expiry
	lostUntil time.Time

	notices atomic.Int64
	losses  atomic.Int64
}

type revFloor struct {
	rev int64
	at  time.Time
}

type floorRef struct {
	key string
	at  time.Time
}

// follow starts following the store's change feed, if it has one.
func (e *Engine) follow(ctx context.Context) error {
	cf, ok := e.store.(ChangeFeed)
	if !ok {
		return nil
	}
	e.feed.mu.Lock()
	e.feed.floors = map[string]revFloor{}
	e.feed.mu.Unlock()
	e.feed.following.Store(true)
	stop, err := cf.FollowChanges(ctx, changeHandler{e})
	if err != nil {
		e.feed.following.Store(false)
		return fmt.Errorf("follow the store's changes: %w", err)
	}
	e.feed.stop = stop
	return nil
}

// stopFollowing ends the change feed (Close).
func (e *Engine) stopFollowing() {
	if e.feed.stop != nil {
		e.feed.stop()
		e.feed.stop = nil
	}
}

// changeHandler is the engine as a ChangeHandler (kept off the Engine's
// own method set).
type changeHandler struct{ e *Engine }

func (h changeHandler) ObjectChanged(tenant, id string, rev int64) {
	h.e.objectChanged(tenant, id, rev)
}

func (h changeHandler) ChangesLost() { h.e.changesLost() }

// objectChanged records the floor, then drops an older cached copy.
func (e *Engine) objectChanged(tenant, id string, rev int64) {
	if rev <= 0 {
		rev = math.MaxInt64 // deleted: no revision may be cached
	}
	e.feed.notices.Add(1)
	ck := cacheKey(tenant, id)
	now := time.Now()
	f := &e.feed
	f.mu.Lock()
	if old, ok := f.floors[ck]; !ok || old.rev < rev {
		f.floors[ck] = revFloor{rev: rev, at: now}
		f.order = append(f.order, floorRef{key: ck, at: now})
	}
	f.expireLocked(now)
	f.mu.Unlock()
	e.objects.removeIf(ck, func(c *cachedObject) bool { return c.obj.Rev < rev })
}

// expireLocked forgets floors older than floorTTL or beyond maxFloors.
func (f *changeState) expireLocked(now time.Time) {
	n := 0
	for n < len(f.order) && (now.Sub(f.order[n].at) > floorTTL || len(f.order)-n > maxFloors) {
		r := f.order[n]
		if cur, ok := f.floors[r.key]; ok && cur.at.Equal(r.at) {
			delete(f.floors, r.key)
		}
		n++
	}
	if n > 0 {
		f.order = append(f.order[:0:0], f.order[n:]...)
	}
}

// changesLost purges the cache and caches nothing for lostWindow.
func (e *Engine) changesLost() {
	e.feed.losses.Add(1)
	e.feed.mu.Lock()
	e.feed.lostUntil = time.Now().Add(lostWindow)
	e.feed.mu.Unlock()
	e.objects.Purge()
	e.log.Warn("store change feed: changes may have been missed; object cache purged")
}

// admits reports whether revision rev of the object may be cached.
func (f *changeState) admits(ck string, rev int64) bool {
	if !f.following.Load() {
		return true
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if time.Now().Before(f.lostUntil) {
		return false
	}
	fl, ok := f.floors[ck]
	return !ok || rev >= fl.rev
}

// cachePut is objects.PutIf, refused (atomically with the notices, which
// remove under the same shard lock) for a revision older than a change
// notice's.
func (e *Engine) cachePut(ck string, c *cachedObject, keep func(old *cachedObject) bool) {
	e.objects.putAdmitted(ck, c, keep, func() bool { return e.feed.admits(ck, c.obj.Rev) })
}

// ChangeFeedStats returns how many change notices and losses the engine
// has handled (for tests and metrics).
func (e *Engine) ChangeFeedStats() (notices, losses int64) {
	return e.feed.notices.Load(), e.feed.losses.Load()
}

// putAdmitted is PutIf, but it stores nothing unless admit(), called under
// the shard lock, says yes. A refused value is left to the caller (it is
// not evicted, so its key material stays usable for the request).
func (c *lru[V]) putAdmitted(key string, val V, keep func(old V) bool, admit func() bool) {
	s := c.shard(key)
	s.mu.Lock()
	defer s.mu.Unlock()
	if e, ok := s.items[key]; ok {
		it := e.Value.(*lruItem[V])
		if (keep != nil && keep(it.val)) || !admit() {
			return
		}
		old := it.val
		it.val = val
		s.ll.MoveToFront(e)
		if c.onEvict != nil {
			c.onEvict(old)
		}
		return
	}
	if !admit() {
		return
	}
	s.items[key] = s.ll.PushFront(&lruItem[V]{key: key, val: val})
	for s.ll.Len() > s.cap {
		last := s.ll.Back()
		it := last.Value.(*lruItem[V])
		s.ll.Remove(last)
		delete(s.items, it.key)
		if c.onEvict != nil {
			c.onEvict(it.val)
		}
	}
}

// removeIf drops the key if present and drop(value) says so.
func (c *lru[V]) removeIf(key string, drop func(V) bool) {
	s := c.shard(key)
	s.mu.Lock()
	defer s.mu.Unlock()
	if e, ok := s.items[key]; ok {
		it := e.Value.(*lruItem[V])
		if !drop(it.val) {
			return
		}
		s.ll.Remove(e)
		delete(s.items, key)
		if c.onEvict != nil {
			c.onEvict(it.val)
		}
	}
}
