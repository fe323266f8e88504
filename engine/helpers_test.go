package engine_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/minikms/minikms/engine"
	"github.com/minikms/minikms/store/sqlite"
)

// Principals of the two tenants the tests use.
var (
	acmeAdmin   = engine.Principal{Tenant: "acme", Member: "alice", Role: engine.RoleAdmin}
	acmeApp     = engine.Principal{Tenant: "acme", Member: "app1", Role: engine.RoleApp}
	acmeAuditor = engine.Principal{Tenant: "acme", Member: "audit", Role: engine.RoleAuditor}
	globexAdmin = engine.Principal{Tenant: "globex", Member: "bob", Role: engine.RoleAdmin}
)

// t0 is the fake clock's start: whole seconds, UTC, like every date the
// engine stores.
var t0 = time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)

// fakeClock is Config.Now under the test's control.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *fakeClock { return &fakeClock{t: t0} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
	return c.t
}

// syncBuffer collects the engine's log output, to check that no secret
// ever reaches it.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// env is a real engine over a real SQLite store in the test's temp dir.
type env struct {
	path  string
	root  []byte
	salt  string
	cache int
	wrap  func(engine.Store) engine.Store

	clock *fakeClock
	logs  *syncBuffer
	store *sqlite.Store
	kr    *engine.SoftKeyring
	eng   *engine.Engine
	open  bool
}

type envOption func(*env)

func withRoot(root []byte) envOption   { return func(e *env) { e.root = root } }
func withSalt(salt string) envOption   { return func(e *env) { e.salt = salt } }
func withCacheEntries(n int) envOption { return func(e *env) { e.cache = n } }
func withStoreWrapper(w func(engine.Store) engine.Store) envOption {
	return func(e *env) { e.wrap = w }
}

// newEnv opens a store, a keyring and an engine, closed at cleanup.
func newEnv(t testing.TB, opts ...envOption) *env {
	t.Helper()
	e := &env{salt: "test-salt", clock: newClock(), logs: &syncBuffer{}}
	for _, o := range opts {
		o(e)
	}
	if e.root == nil {
		e.root = randomBytes(t, engine.RootKeySize)
	}
	if e.path == "" {
		e.path = filepath.Join(t.TempDir(), "db")
	}
	e.start(t)
	t.Cleanup(e.close)
	return e
}

func (e *env) start(t testing.TB) {
	t.Helper()
	ctx := context.Background()
	s, err := sqlite.Open(ctx, e.path)
	require.NoError(t, err)
	kr, err := engine.NewSoftKeyring(e.root)
	require.NoError(t, err)
	var st engine.Store = s
	if e.wrap != nil {
		st = e.wrap(s)
	}
	eng, err := engine.Open(ctx, engine.Config{
		Store: st, Keyring: kr, Salt: e.salt, CacheEntries: e.cache,
		Now: e.clock.Now, Logger: slog.New(slog.NewTextHandler(e.logs, nil)),
	})
	if err != nil {
		s.Close()
		kr.Close()
		require.NoError(t, err)
	}
	e.store, e.kr, e.eng, e.open = s, kr, eng, true
}

// close shuts the engine, store and keyring down (idempotent).
func (e *env) close() {
	if !e.open {
		return
	}
	e.open = false
	e.eng.Close()
	e.store.Close()
	e.kr.Close()
}

// reopen simulates a restart: everything closed, then opened again on the
// same file with the same root key and salt.
func (e *env) reopen(t testing.TB) {
	t.Helper()
	e.close()
	e.start(t)
}

func randomBytes(t testing.TB, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	_, err := rand.Read(b)
	require.NoError(t, err)
	return b
}

func attr(name string, v any) engine.Attribute { return engine.Attribute{Name: name, Value: v} }

func index(i int32) *int32 { return &i }

func textItem(s string) engine.Item { return engine.Item{Kind: engine.KindTextString, Text: s} }

func name(s string) engine.Name {
	return engine.Name{NameValue: s, NameType: engine.NameUninterpretedText}
}

// aesAttrs are the attributes of an AES key of bits, plus extra.
func aesAttrs(bits int32, extra ...engine.Attribute) []engine.Attribute {
	return append([]engine.Attribute{
		attr(engine.AttrCryptographicAlgorithm, engine.AlgAES),
		attr(engine.AttrCryptographicLength, bits),
	}, extra...)
}

// create makes a symmetric key with attrs and fails the test on error.
func (e *env) create(t testing.TB, p engine.Principal, attrs ...engine.Attribute) *engine.Object {
	t.Helper()
	o, err := e.eng.Create(t.Context(), p, engine.CreateRequest{Type: engine.TypeSymmetricKey, Attrs: attrs})
	require.NoError(t, err)
	return o
}

// activeAES makes an Active AES key of bits (Create then Activate).
func (e *env) activeAES(t testing.TB, p engine.Principal, bits int32, extra ...engine.Attribute) *engine.Object {
	t.Helper()
	o := e.create(t, p, aesAttrs(bits, extra...)...)
	o, err := e.eng.Activate(t.Context(), p, o.ID)
	require.NoError(t, err)
	return o
}

// registerKey registers raw symmetric key material, Active at once.
func (e *env) registerKey(t testing.TB, p engine.Principal, alg engine.Algorithm, key []byte, extra ...engine.Attribute) *engine.Object {
	t.Helper()
	attrs := append([]engine.Attribute{
		attr(engine.AttrActivationDate, e.clock.Now()),
		attr(engine.AttrCryptographicUsageMask, engine.UsageEncrypt|engine.UsageDecrypt),
	}, extra...)
	o, err := e.eng.Register(t.Context(), p, engine.RegisterRequest{
		Type: engine.TypeSymmetricKey, Attrs: attrs, Algorithm: alg,
		Material: engine.Material{Format: engine.FormatRaw, Bytes: bytes.Clone(key)},
	})
	require.NoError(t, err)
	require.Equal(t, engine.StateActive, o.State)
	return o
}

// attrs returns every attribute of the object as GetAttributes lists it.
func (e *env) attrs(t testing.TB, p engine.Principal, id string, names ...string) []engine.Attribute {
	t.Helper()
	_, as, err := e.eng.GetAttributes(t.Context(), p, id, names)
	require.NoError(t, err)
	return as
}

// value returns the value of the attribute instance with index 0 (or the
// only one), and whether there is one.
func (e *env) value(t testing.TB, p engine.Principal, id, name string) (any, bool) {
	t.Helper()
	for _, a := range e.attrs(t, p, id, name) {
		if a.Index == nil || *a.Index == 0 {
			return a.Value, true
		}
	}
	return nil, false
}

// state is the State attribute as GetAttributes reports it.
func (e *env) state(t testing.TB, p engine.Principal, id string) engine.State {
	t.Helper()
	v, ok := e.value(t, p, id, engine.AttrState)
	require.True(t, ok, "object %s has no State", id)
	return v.(engine.State)
}

// stored reads the object's row straight from the store.
func (e *env) stored(t testing.TB, tenant, id string) *engine.StoredObject {
	t.Helper()
	so, err := e.store.GetObject(t.Context(), tenant, id)
	require.NoError(t, err)
	return so
}

// encrypt encrypts with default parameters and fails the test on error.
func (e *env) encrypt(t testing.TB, p engine.Principal, id string, data []byte) engine.EncryptResult {
	t.Helper()
	res, err := e.eng.Encrypt(t.Context(), p, engine.EncryptRequest{ID: id, Data: data})
	require.NoError(t, err)
	return res
}

// decrypt decrypts what encrypt returned, under default parameters.
func (e *env) decrypt(t testing.TB, p engine.Principal, id string, res engine.EncryptResult) ([]byte, error) {
	t.Helper()
	_, pt, err := e.eng.Decrypt(t.Context(), p, engine.DecryptRequest{ID: id, Data: res.Ciphertext, IV: res.IV, Tag: res.Tag})
	return pt, err
}

// locate returns the identifiers Locate finds for the filter.
func (e *env) locate(t testing.TB, p engine.Principal, attrs ...engine.Attribute) []string {
	t.Helper()
	res, err := e.eng.Locate(t.Context(), p, engine.LocateRequest{Attrs: attrs})
	require.NoError(t, err)
	return res.IDs
}

// assertNoSecret fails if any rendering of secret appears in s.
func assertNoSecret(t testing.TB, s string, secret []byte, what string) {
	t.Helper()
	for _, form := range secretForms(secret) {
		assert.NotContains(t, s, form, "%s contains key material", what)
	}
}

// secretForms are the encodings a leaked secret could take in text.
func secretForms(secret []byte) []string {
	return []string{
		string(secret),
		hex.EncodeToString(secret),
		strings.ToUpper(hex.EncodeToString(secret)),
		base64.StdEncoding.EncodeToString(secret),
		base64.RawURLEncoding.EncodeToString(secret),
	}
}
