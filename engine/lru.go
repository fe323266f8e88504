package engine

import (
	"container/list"
	"hash/maphash"
	"sync"
)

// lru is a bounded, sharded least-recently-used map. onEvict runs (outside
// no lock guarantees: under the shard lock) for every entry that leaves,
// whether evicted, replaced or removed, so key material can be zeroized.
type lru[V any] struct {
	seed    maphash.Seed
	shards  []lruShard[V]
	onEvict func(V)
}

type lruShard[V any] struct {
	mu    sync.Mutex
	cap   int
	ll    *list.List
	items map[string]*list.Element
}

type lruItem[V any] struct {
	key string
	val V
}

const lruShards = 16

func newLRU[V any](capacity int, onEvict func(V)) *lru[V] {
	if capacity < lruShards {
		capacity = lruShards
	}
	c := &lru[V]{seed: maphash.MakeSeed(), shards: make([]lruShard[V], lruShards), onEvict: onEvict}
	for i := range c.shards {
		c.shards[i] = lruShard[V]{cap: capacity / lruShards, ll: list.New(), items: map[string]*list.Element{}}
	}
	return c
}

func (c *lru[V]) shard(key string) *lruShard[V] {
	return &c.shards[maphash.String(c.seed, key)%lruShards]
}

// Get returns the value and marks it recently used.
func (c *lru[V]) Get(key string) (V, bool) {
	s := c.shard(key)
	s.mu.Lock()
	defer s.mu.Unlock()
	if e, ok := s.items[key]; ok {
		s.ll.MoveToFront(e)
		return e.Value.(*lruItem[V]).val, true
	}
	var zero V
	return zero, false
}

// Put stores the value, replacing (and evicting) any previous one.
func (c *lru[V]) Put(key string, val V) {
	c.PutIf(key, val, nil)
}

// PutIf stores the value unless an entry exists and keep(old) returns
// true, atomically.
func (c *lru[V]) PutIf(key string, val V, keep func(old V) bool) {
	s := c.shard(key)
	s.mu.Lock()
	defer s.mu.Unlock()
	if e, ok := s.items[key]; ok {
		it := e.Value.(*lruItem[V])
		if keep != nil && keep(it.val) {
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

// Remove drops the key, if present.
func (c *lru[V]) Remove(key string) {
	s := c.shard(key)
	s.mu.Lock()
	defer s.mu.Unlock()
	if e, ok := s.items[key]; ok {
		it := e.Value.(*lruItem[V])
		s.ll.Remove(e)
		delete(s.items, key)
		if c.onEvict != nil {
			c.onEvict(it.val)
		}
	}
}

// Purge drops everything.
func (c *lru[V]) Purge() {
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.Lock()
		for _, e := range s.items {
			if c.onEvict != nil {
				c.onEvict(e.Value.(*lruItem[V]).val)
			}
		}
		s.items = map[string]*list.Element{}
		s.ll.Init()
		s.mu.Unlock()
	}
}

// Len returns the number of entries.
func (c *lru[V]) Len() int {
	n := 0
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.Lock()
		n += s.ll.Len()
		s.mu.Unlock()
	}
	return n
}
