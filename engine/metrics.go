package engine

import (
	"context"
	"sync/atomic"
)

// CacheStats counts the lookups of the engine's in-memory caches since it
// opened (exported as Prometheus counters by package metrics).
type CacheStats struct {
	// ObjectHits and ObjectMisses count object lookups by identifier: a
	// miss reads the store.
	ObjectHits, ObjectMisses uint64
	// KeyHits and KeyMisses count lookups of a cached object's unwrapped
	// key material: a miss unwraps it under the tenant key.
	KeyHits, KeyMisses uint64
	// TenantKeyHits and TenantKeyMisses count lookups of derived tenant
	// master keys: a miss derives one from the root keyring (an HSM call
	// when the root is in a token).
	TenantKeyHits, TenantKeyMisses uint64
}

// cacheCounters are the engine's CacheStats, each on its own cache line
// so concurrent requests do not share one.
type cacheCounters struct {
	objHit, objMiss, keyHit, keyMiss, tkHit, tkMiss paddedCounter
}

type paddedCounter struct {
	atomic.Uint64
	_ [56]byte
}

// CacheStats returns the cache lookup counts.
func (e *Engine) CacheStats() CacheStats {
	c := &e.stats
	return CacheStats{
		ObjectHits: c.objHit.Load(), ObjectMisses: c.objMiss.Load(),
		KeyHits: c.keyHit.Load(), KeyMisses: c.keyMiss.Load(),
		TenantKeyHits: c.tkHit.Load(), TenantKeyMisses: c.tkMiss.Load(),
	}
}

// ObjectCount is how many objects of one type are in one state.
type ObjectCount struct {
	Type  ObjectType
	State State
	Count int64
}

// ObjectCounter is a store that counts its objects by type and state, over
// every tenant, in one cheap query (store/sqlite and store/postgres are).
// The state is the stored one: an object whose Activation Date has passed
// counts as Pre-Active until it is next read or changed.
type ObjectCounter interface {
	CountObjects(ctx context.Context) ([]ObjectCount, error)
}
