package engine

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/maphash"
	"log/slog"
	mrand "math/rand/v2"
	"slices"
	"strconv"
	"sync"
	"time"
)

// Config builds an Engine.
type Config struct {
	Store   Store
	Keyring Keyring
	// Salt is MINIKMS_HKDF_SALT; part of every tenant key derivation, so it
	// must never change for a store.
	Salt string
	// CacheEntries bounds the objects (with their unwrapped keys) kept in
	// memory. 0 means DefaultCacheEntries.
	CacheEntries int
	// MinRSABits is the shortest RSA modulus Create Key Pair and ReKey Key
	// Pair generate (MINIKMS_RSA_MIN_BITS): 0 means DefaultMinRSABits;
	// 1024 only for legacy clients.
	MinRSABits int
	// Lease is the lease Obtain Lease grants on an object without a Lease
	// Time attribute (MINIKMS_LEASE_TIME): 0 means DefaultLease.
	Lease time.Duration
	// Now returns the current time; nil means time.Now.
	Now    func() time.Time
	Logger *slog.Logger
}

// DefaultCacheEntries is the default bound of the object cache.
const DefaultCacheEntries = 100_000

// maxTenantKeys bounds the cache of derived tenant master keys.
const maxTenantKeys = 4096

// Engine executes every operation on managed objects. It is safe for
// concurrent use.
type Engine struct {
	store   Store
	keyring Keyring
	salt    string
	now     func() time.Time
	log     *slog.Logger

	objects    *lru[*cachedObject]
	tenantKeys *lru[*tenantKey]
	// updateLocks serialize the updates of one object within this process,
	// so concurrent writers queue instead of failing their compare-and-swap;
	// the store's revision check still arbitrates between processes.
	updateLocks [updateStripes]sync.Mutex
	lockSeed    maphash.Seed
	// gcm holds the AES-GCM invocation blocks reserved by this process
	// (rekey.go).
	gcm gcmLeases
	// minRSABits is Config.MinRSABits.
	minRSABits int32
	// lease is Config.Lease.
	lease time.Duration
	// feed follows the store's change feed, if any (changefeed.go).
	feed changeState
	// stats counts cache lookups (metrics.go).
	stats cacheCounters
}

// DefaultLease is the lease Obtain Lease grants by default.
const DefaultLease = time.Hour

// updateStripes is the number of per-object update locks.
const updateStripes = 256

type cachedObject struct {
	obj *Object
	key *keyEntry // nil until first use of the material
}

type tenantKey struct {
	key  []byte
	lk   *lockedKey // owns key's locked memory (mlock.go)
	aead cipher.AEAD
}

// Open builds the engine and checks the root key against the key check
// value recorded in the store (recording it on first use). A different
// root key is refused with ErrWrongRootKey: nothing is written.
func Open(ctx context.Context, cfg Config) (*Engine, error) {
	if cfg.Store == nil || cfg.Keyring == nil {
		return nil, errors.New("engine: store and keyring are required")
	}
	if cfg.CacheEntries <= 0 {
		cfg.CacheEntries = DefaultCacheEntries
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Lease < 0 {
		return nil, fmt.Errorf("engine: lease %s is negative", cfg.Lease)
	}
	if cfg.Lease == 0 {
		cfg.Lease = DefaultLease
	}
	switch cfg.MinRSABits {
	case 0:
		cfg.MinRSABits = DefaultMinRSABits
	case 1024, 2048, 3072, 4096:
	default:
		return nil, fmt.Errorf("engine: minimum RSA size %d: must be 1024, 2048, 3072 or 4096", cfg.MinRSABits)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	e := &Engine{
		store: cfg.Store, keyring: cfg.Keyring, salt: cfg.Salt, now: cfg.Now, log: cfg.Logger,
		objects: newLRU(cfg.CacheEntries, func(c *cachedObject) {
			if c.key != nil {
				c.key.zeroize()
			}
		}),
		tenantKeys: newLRU(maxTenantKeys, func(t *tenantKey) { t.release() }),
		lockSeed:   maphash.MakeSeed(),
		minRSABits: int32(cfg.MinRSABits),
		lease:      cfg.Lease,
	}
	if err := e.checkRoot(ctx); err != nil {
		return nil, err
	}
	if err := e.follow(ctx); err != nil {
		return nil, err
	}
	return e, nil
}

func rootKCVKey(version uint32) string { return "root.kcv." + strconv.FormatUint(uint64(version), 10) }

const saltCheckKey = "hkdf.salt.check"

func (e *Engine) checkRoot(ctx context.Context) error {
	if err := e.resolveRootVersions(ctx); err != nil { // rotate_keyring.go
		return err
	}
	v := e.keyring.Current()
	kcv, err := KeyCheckValue(ctx, e.keyring, v)
	if err != nil {
		return fmt.Errorf("compute key check value: %w", err)
	}
	stored, err := e.store.InitMeta(ctx, rootKCVKey(v), []byte(kcv))
	if err != nil {
		return fmt.Errorf("record key check value: %w", err)
	}
	if string(stored) != kcv {
		return fmt.Errorf("%w (root version %d: store has %s, this key has %s)", ErrWrongRootKey, v, stored, kcv)
	}
	// The salt takes part in every tenant derivation: a changed salt makes
	// every object unreadable, so it is checked like the root key. Its check
	// value is an HMAC under the root, so the store learns nothing of it.
	sc, err := e.keyring.Derive(ctx, v, []byte(derivationPrefix+"salt-check|"+e.salt))
	if err != nil {
		return err
	}
	scHex := hex.EncodeToString(sc[:8])
	clear(sc)
	stored, err = e.store.InitMeta(ctx, saltCheckKeyFor(v), []byte(scHex))
	if err != nil {
		return fmt.Errorf("record salt check value: %w", err)
	}
	if string(stored) != scHex {
		return errors.New("MINIKMS_HKDF_SALT differs from the salt this store was created with; refusing to start")
	}
	return nil
}

// KeyCheckValue returns the check value of the current root key.
func (e *Engine) KeyCheckValue(ctx context.Context) (string, error) {
	return KeyCheckValue(ctx, e.keyring, e.keyring.Current())
}

// Ready reports whether the store and keyring answer.
func (e *Engine) Ready(ctx context.Context) error {
	if err := e.store.Ping(ctx); err != nil {
		return fmt.Errorf("store: %w", err)
	}
	return nil
}

// Close zeroizes every cached key. The store and keyring are the caller's.
func (e *Engine) Close() {
	e.stopFollowing()
	e.objects.Purge()
	e.tenantKeys.Purge()
}

// CachedObjects returns how many objects the cache holds.
func (e *Engine) CachedObjects() int { return e.objects.Len() }

// tenantKey returns the tenant master key for a root version.
func (e *Engine) tenantKey(ctx context.Context, version uint32, tenant string) (*tenantKey, error) {
	ck := strconv.FormatUint(uint64(version), 10) + "|" + tenant
	if tk, ok := e.tenantKeys.Get(ck); ok {
		e.stats.tkHit.Add(1)
		return tk, nil
	}
	e.stats.tkMiss.Add(1)
	k, err := e.keyring.Derive(ctx, version, TenantInfo(e.salt, tenant))
	if err != nil {
		return nil, fmt.Errorf("%w: derive tenant key: %v", ErrUnavailable, err)
	}
	block, err := aes.NewCipher(k)
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	// Wrapping uses the prepared AEAD, never tk.key, so the eviction that
	// clears tk.key cannot race with a wrap in progress.
	lk := newLockedKey(k) // mlock.go
	clear(k)
	tk := &tenantKey{key: lk.b, lk: lk, aead: aead}
	e.tenantKeys.PutIf(ck, tk, func(*tenantKey) bool { return true })
	if cur, ok := e.tenantKeys.Get(ck); ok && cur != tk {
		tk.release()
		return cur, nil
	}
	return tk, nil
}

func (e *Engine) wrap(ctx context.Context, o *Object, m Material) error {
	v := e.keyring.Current()
	tk, err := e.tenantKey(ctx, v, o.Tenant)
	if err != nil {
		return err
	}
	pt := encodeMaterial(m)
	defer clear(pt)
	w, err := wrapMaterial(tk.aead, o.Tenant, o.ID, v, pt)
	if err != nil {
		return err
	}
	o.wrapped, o.rootVersion = w, v
	return nil
}

func (e *Engine) unwrap(ctx context.Context, o *Object) ([]byte, error) {
	tk, err := e.tenantKey(ctx, o.rootVersion, o.Tenant)
	if err != nil {
		return nil, err
	}
	return unwrapMaterial(tk.aead, o.Tenant, o.ID, o.rootVersion, o.wrapped)
}

func cacheKey(tenant, id string) string { return tenant + "\x00" + id }

// load returns the object of the caller's tenant, from cache or store.
func (e *Engine) load(ctx context.Context, tenant, id string) (*cachedObject, error) {
	if id == "" {
		return nil, errf(ErrMissingData, "unique identifier is required")
	}
	if len(id) > maxIDLength {
		return nil, ErrNotFound
	}
	ck := cacheKey(tenant, id)
	if c, ok := e.objects.Get(ck); ok {
		e.stats.objHit.Add(1)
		return c, nil
	}
	e.stats.objMiss.Add(1)
	so, err := e.store.GetObject(ctx, tenant, id)
	if err != nil {
		return nil, err
	}
	o, err := objectFromStored(so)
	if err != nil {
		return nil, err
	}
	c := &cachedObject{obj: o}
	e.cachePut(ck, c, func(old *cachedObject) bool { return old.obj.Rev >= o.Rev })
	if cur, ok := e.objects.Get(ck); ok {
		return cur, nil
	}
	return c, nil
}

// key returns the unwrapped-key entry of a cached object.
func (e *Engine) key(ctx context.Context, c *cachedObject) (*keyEntry, error) {
	if IsMetadataOnly(c.obj) {
		return nil, errNoKeyValue(c.obj.ID) // mdo.go
	}
	if !c.obj.HasMaterial() {
		return nil, errf(ErrIllegalOperation, "object has no key material")
	}
	ck := cacheKey(c.obj.Tenant, c.obj.ID)
	if cur, ok := e.objects.Get(ck); ok && cur.obj.Rev == c.obj.Rev && cur.key != nil {
		e.stats.keyHit.Add(1)
		return cur.key, nil
	}
	e.stats.keyMiss.Add(1)
	m, err := e.unwrap(ctx, c.obj)
	if err != nil {
		e.log.Error("unwrap failed", "object", c.obj.ID, "tenant", c.obj.Tenant, "err", err)
		return nil, fmt.Errorf("unwrap object %s: %w", c.obj.ID, err)
	}
	dm, err := decodeMaterial(m)
	if err != nil {
		clear(m)
		return nil, fmt.Errorf("object %s: %w", c.obj.ID, err)
	}
	if dm.Format == FormatWrappedOnly {
		clear(m)
		return nil, errWrappedOnly(c.obj.ID) // keywrap.go
	}
	k := &keyEntry{rev: c.obj.Rev, format: dm.Format, dataType: dm.DataType, material: slices.Clone(dm.Bytes)}
	clear(m)
	if alg := c.obj.Attrs.Algorithm(); c.obj.Type == TypeSymmetricKey && (alg == AlgAES || alg == Alg3DES) {
		// Prepare the cipher now, while the material is certainly here:
		// an eviction before first use would otherwise fail the request.
		if _, _, err := k.cipher(alg); err != nil {
			k.zeroize()
			return nil, err
		}
	}
	nc := &cachedObject{obj: c.obj, key: k}
	e.cachePut(ck, nc, func(old *cachedObject) bool {
		return old.obj.Rev > c.obj.Rev || (old.obj.Rev == c.obj.Rev && old.key != nil)
	})
	if cur, ok := e.objects.Get(ck); ok && cur.obj.Rev == c.obj.Rev && cur.key != nil {
		if cur.key != k {
			k.zeroize()
		}
		return cur.key, nil
	}
	// Evicted at once (tiny cache): use the entry uncached.
	return k, nil
}

// maxUpdateRetries bounds optimistic-concurrency retries of one update.
const maxUpdateRetries = 8

// update applies fn to a fresh copy of the object and stores it. fn may
// return errNoChange to skip the write.
func (e *Engine) update(ctx context.Context, tenant, id string, fn func(o *Object, now time.Time) error) (*Object, error) {
	if id == "" {
		return nil, errf(ErrMissingData, "unique identifier is required")
	}
	if len(id) > maxIDLength {
		return nil, ErrNotFound
	}
	mu := &e.updateLocks[maphash.String(e.lockSeed, tenant+"\x00"+id)%updateStripes]
	mu.Lock()
	defer mu.Unlock()
	for attempt := range maxUpdateRetries {
		if attempt > 0 {
			// Another process won the race: back off a little, jittered.
			time.Sleep(time.Duration(attempt) * time.Duration(1+mrand.IntN(5)) * time.Millisecond)
		}
		so, err := e.store.GetObject(ctx, tenant, id)
		if err != nil {
			return nil, err
		}
		o, err := objectFromStored(so)
		if err != nil {
			return nil, err
		}
		now := e.now().UTC().Truncate(time.Second)
		o.State = o.EffectiveState(now)
		if err := fn(o, now); err != nil {
			if errors.Is(err, errNoChange) {
				return o, nil
			}
			return nil, err
		}
		o.Attrs.Set(AttrLastChangeDate, now)
		prev := o.Rev
		o.Rev = prev + 1
		st, err := o.toStored()
		if err != nil {
			return nil, err
		}
		err = e.store.UpdateObject(ctx, st, prev)
		if errors.Is(err, ErrConflict) {
			continue
		}
		if err != nil {
			return nil, err
		}
		e.cacheUpdated(o)
		return o, nil
	}
	return nil, fmt.Errorf("%w: object %s is being changed by another server; retry", ErrConflict, id)
}

var errNoChange = errors.New("no change")

// cacheUpdated caches a copy of o: the caller keeps o as its snapshot.
func (e *Engine) cacheUpdated(o *Object) {
	c := o.clone()
	e.cachePut(cacheKey(o.Tenant, o.ID), &cachedObject{obj: c}, func(old *cachedObject) bool { return old.obj.Rev >= o.Rev })
}

// Invalidate drops an object from the cache (another node changed it).
func (e *Engine) Invalidate(tenant, id string) { e.objects.Remove(cacheKey(tenant, id)) }

// maxIDLength bounds a unique identifier from a client.
const maxIDLength = 128

// newID returns a random, unguessable unique identifier (UUID v4 form).
func newID() string {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic("crypto/rand failed: " + err.Error())
	}
	b[6] = (b[6] & 0x0f) | 0x40
	b[8] = (b[8] & 0x3f) | 0x80
	var out [36]byte
	hex.Encode(out[0:8], b[0:4])
	out[8] = '-'
	hex.Encode(out[9:13], b[4:6])
	out[13] = '-'
	hex.Encode(out[14:18], b[6:8])
	out[18] = '-'
	hex.Encode(out[19:23], b[8:10])
	out[23] = '-'
	hex.Encode(out[24:], b[10:])
	return string(out[:])
}
