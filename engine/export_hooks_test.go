package engine

import "strconv"

// Test hooks for the black-box tests of package engine_test, which cannot
// reach unexported state but, unlike tests of package engine, can import
// the real store (store/sqlite imports engine).

// CachedKeyForTest returns the buffer holding the unwrapped material of
// the object's cached key entry (aliased, not copied, so a test can see it
// being zeroized) and a function reporting whether the entry has dropped
// its material. It returns nil, nil when no key entry is cached.
func CachedKeyForTest(e *Engine, tenant, id string) ([]byte, func() bool) {
	c, ok := e.objects.Get(cacheKey(tenant, id))
	if !ok || c.key == nil {
		return nil, nil
	}
	k := c.key
	k.mu.RLock()
	mat := k.material
	k.mu.RUnlock()
	return mat, func() bool {
		k.mu.RLock()
		defer k.mu.RUnlock()
		return k.material == nil
	}
}

// IsCachedForTest reports whether the object is in the object cache.
func IsCachedForTest(e *Engine, tenant, id string) bool {
	_, ok := e.objects.Get(cacheKey(tenant, id))
	return ok
}

// CachedTenantKeyForTest returns the cached tenant master key buffer
// (aliased), or nil.
func CachedTenantKeyForTest(e *Engine, version uint32, tenant string) []byte {
	// Same key as Engine.tenantKey builds.
	tk, ok := e.tenantKeys.Get(strconv.FormatUint(uint64(version), 10) + "|" + tenant)
	if !ok {
		return nil
	}
	return tk.key
}

// AddRootVersionForTest loads root as version v of the keyring, as root
// rotation will.
func (k *SoftKeyring) AddRootVersionForTest(v uint32, root []byte) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.keys[v] = append([]byte(nil), root...)
}
