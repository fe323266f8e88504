package engine_test

import (
	"bytes"
	"errors"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/minikms/minikms/engine"
)

// cachedKey returns the cache's buffer of the object's unwrapped key,
// after checking it holds the key.
func cachedKey(t *testing.T, e *env, id string) ([]byte, func() bool) {
	t.Helper()
	mat, cleared := engine.CachedKeyForTest(e.eng, "acme", id)
	require.NotNil(t, mat, "no key cached for %s", id)
	require.Len(t, mat, 32)
	require.NotEqual(t, make([]byte, 32), mat)
	require.False(t, cleared())
	return mat, cleared
}

func TestCacheZeroizesOnEviction(t *testing.T) {
	// 16 entries: one per shard, so every object that lands in the same
	// shard evicts the one before it.
	e := newEnv(t, withCacheEntries(16))
	k := e.activeAES(t, acmeApp, 256)
	res := e.encrypt(t, acmeApp, k.ID, []byte("cached"))
	mat, cleared := cachedKey(t, e, k.ID)
	key := bytes.Clone(mat)

	for i := 0; engine.IsCachedForTest(e.eng, "acme", k.ID); i++ {
		require.Less(t, i, 1000, "never evicted")
		e.create(t, acmeApp, aesAttrs(128)...)
	}
	assert.True(t, cleared(), "the evicted entry still holds its material")
	assert.Equal(t, make([]byte, 32), mat, "the evicted key's buffer was not zeroized")
	assert.LessOrEqual(t, e.eng.CachedObjects(), 16)

	// The key is unwrapped again on the next use.
	pt, err := e.decrypt(t, acmeApp, k.ID, res)
	require.NoError(t, err)
	assert.Equal(t, "cached", string(pt))
	again, _ := cachedKey(t, e, k.ID)
	assert.Equal(t, key, again)
}

func TestCacheInvalidate(t *testing.T) {
	e := newEnv(t)
	k := e.activeAES(t, acmeApp, 256)
	e.encrypt(t, acmeApp, k.ID, []byte("x"))
	mat, cleared := cachedKey(t, e, k.ID)

	e.eng.Invalidate("globex", k.ID)
	assert.False(t, cleared(), "invalidating another tenant's entry touched this one")
	e.eng.Invalidate("acme", "no-such-object")

	e.eng.Invalidate("acme", k.ID)
	assert.True(t, cleared())
	assert.Equal(t, make([]byte, 32), mat)
	assert.False(t, engine.IsCachedForTest(e.eng, "acme", k.ID))

	// Another node revoked the key: after Invalidate this node sees it.
	_, err := e.eng.Revoke(t.Context(), acmeAdmin, k.ID, superseded)
	require.NoError(t, err)
	_, err = e.eng.Encrypt(t.Context(), acmeApp, engine.EncryptRequest{ID: k.ID, Data: []byte("x")})
	require.ErrorIs(t, err, engine.ErrWrongState)
}

func TestCacheDropsKeyOnStateChange(t *testing.T) {
	e := newEnv(t)
	k := e.activeAES(t, acmeApp, 256)
	e.encrypt(t, acmeApp, k.ID, []byte("x"))
	mat, cleared := cachedKey(t, e, k.ID)
	_, err := e.eng.Revoke(t.Context(), acmeAdmin, k.ID, compromise)
	require.NoError(t, err)
	assert.True(t, cleared(), "a revoked key's material stays cached")
	assert.Equal(t, make([]byte, 32), mat)
}

func TestClosePurgesCaches(t *testing.T) {
	e := newEnv(t)
	var mats [][]byte
	for range 5 {
		k := e.activeAES(t, acmeApp, 256)
		e.encrypt(t, acmeApp, k.ID, []byte("x"))
		m, _ := cachedKey(t, e, k.ID)
		mats = append(mats, m)
	}
	tk := engine.CachedTenantKeyForTest(e.eng, 1, "acme")
	require.Len(t, tk, 32)
	require.NotEqual(t, make([]byte, 32), tk)
	require.Positive(t, e.eng.CachedObjects())

	e.eng.Close()
	assert.Zero(t, e.eng.CachedObjects())
	for i, m := range mats {
		assert.Equal(t, make([]byte, 32), m, "key %d not zeroized on Close", i)
	}
	assert.Equal(t, make([]byte, 32), tk, "tenant master key not zeroized on Close")
	assert.Nil(t, engine.CachedTenantKeyForTest(e.eng, 1, "acme"))
}

// TestConcurrentEncryptAndRevoke: Encrypt from 16 goroutines while the key
// is revoked. Every Encrypt either succeeds (and its ciphertext decrypts)
// or is refused for the key's state; none after the Revoke returned
// succeeds. Run with -race.
func TestConcurrentEncryptAndRevoke(t *testing.T) {
	e := newEnv(t)
	k := e.activeAES(t, acmeApp, 256)
	const workers, rounds = 16, 40

	var (
		revoked atomic.Bool
		wg      sync.WaitGroup
		mu      sync.Mutex
		results []engine.EncryptResult
		late    atomic.Int32
		bad     = make(chan error, workers*rounds)
	)
	start := make(chan struct{})
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			for i := range rounds {
				after := revoked.Load()
				res, err := e.eng.Encrypt(t.Context(), acmeApp, engine.EncryptRequest{ID: k.ID, Data: []byte{byte(w), byte(i)}})
				switch {
				case err == nil && after:
					late.Add(1)
				case err == nil:
					mu.Lock()
					results = append(results, res)
					mu.Unlock()
				case !isWrongState(err):
					bad <- err
				}
			}
		}()
	}
	finished := make(chan struct{})
	go func() { wg.Wait(); close(finished) }()
	close(start)
	// Let some encryptions through first.
	for waiting := true; waiting; {
		select {
		case <-finished:
			waiting = false
		default:
			mu.Lock()
			waiting = len(results) < workers
			mu.Unlock()
			runtime.Gosched()
		}
	}
	_, err := e.eng.Revoke(t.Context(), acmeAdmin, k.ID, superseded)
	require.NoError(t, err)
	revoked.Store(true)
	wg.Wait()
	close(bad)

	for err := range bad {
		t.Errorf("Encrypt during Revoke failed with neither success nor Wrong State: %v", err)
	}
	assert.Zero(t, late.Load(), "Encrypt succeeded after Revoke returned")
	require.NotEmpty(t, results)
	for _, res := range results {
		pt, err := e.decrypt(t, acmeApp, k.ID, res)
		require.NoError(t, err)
		assert.Len(t, pt, 2)
	}
}

func isWrongState(err error) bool { return err != nil && errors.Is(err, engine.ErrWrongState) }
