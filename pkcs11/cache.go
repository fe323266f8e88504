package pkcs11

import (
	"container/list"
	"strconv"
	"sync"
	"time"
)

// keyCache is a bounded LRU of derived keys with a time to live. Every
// value leaving it (eviction, expiry, purge) is zeroized; callers get
// copies, so clearing a returned key does not touch the cache.
type keyCache struct {
	mu    sync.Mutex
	max   int
	ttl   time.Duration
	now   func() time.Time
	ll    *list.List // front = most recent
	items map[string]*list.Element
}

type cacheEntry struct {
	key     string
	val     []byte
	expires time.Time
}

func newKeyCache(max int, ttl time.Duration, now func() time.Time) *keyCache {
	return &keyCache{max: max, ttl: ttl, now: now, ll: list.New(), items: map[string]*list.Element{}}
}

func cacheKey(version uint32, info []byte) string {
	return strconv.FormatUint(uint64(version), 10) + "|" + string(info)
}

// get returns a copy of the value cached for key.
func (c *keyCache) get(key string) ([]byte, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	el, ok := c.items[key]
	if !ok {
		return nil, false
	}
	e := el.Value.(*cacheEntry)
	if !c.now().Before(e.expires) {
		c.removeLocked(el)
		return nil, false
	}
	c.ll.MoveToFront(el)
	return append([]byte(nil), e.val...), true
}

// put stores a copy of val.
func (c *keyCache) put(key string, val []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.items[key]; ok {
		c.removeLocked(el)
	}
	e := &cacheEntry{key: key, val: append([]byte(nil), val...), expires: c.now().Add(c.ttl)}
	c.items[key] = c.ll.PushFront(e)
	for c.ll.Len() > c.max {
		c.removeLocked(c.ll.Back())
	}
}

func (c *keyCache) removeLocked(el *list.Element) {
	e := c.ll.Remove(el).(*cacheEntry)
	delete(c.items, e.key)
	clear(e.val)
}

// purge zeroizes and drops every entry.
func (c *keyCache) purge() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for c.ll.Len() > 0 {
		c.removeLocked(c.ll.Back())
	}
}

func (c *keyCache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.ll.Len()
}
