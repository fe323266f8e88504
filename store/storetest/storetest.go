// Package storetest is the one conformance suite for every engine.Store
// implementation (store/sqlite, store/postgres). Each backend's tests call
// Run with a function that opens a fresh, empty store; the suite checks
// the contract documented on engine.Store through that interface only.
//
// It must never depend on a backend's internals: what it cannot observe
// through engine.Store is the backend's own tests' business.
package storetest

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/minikms/minikms/engine"
)

// Run runs the suite. open must return a new, empty store for the test t
// and register its Close with t.Cleanup; the suite also closes stores
// itself, so Close must be safe to call twice.
func Run(t *testing.T, open func(t *testing.T) engine.Store) {
	t.Run("Meta", func(t *testing.T) { testMeta(t, open) })
	t.Run("CreateObject", func(t *testing.T) { testCreate(t, open) })
	t.Run("GetObject", func(t *testing.T) { testGet(t, open) })
	t.Run("UpdateObject", func(t *testing.T) { testUpdate(t, open) })
	t.Run("ListObjects", func(t *testing.T) { testList(t, open) })
	t.Run("ListObjectsPaging", func(t *testing.T) { testListPaging(t, open) })
	t.Run("ConcurrentCreates", func(t *testing.T) { testConcurrentCreates(t, open) })
	t.Run("ConcurrentUpdates", func(t *testing.T) { testConcurrentUpdates(t, open) })
	t.Run("CanceledContext", func(t *testing.T) { testCanceledContext(t, open) })
	t.Run("PingClose", func(t *testing.T) { testPingClose(t, open) })
	t.Run("Identity", func(t *testing.T) { testIdentity(t, open) })
	t.Run("Audit", func(t *testing.T) { testAudit(t, open) })
	t.Run("DeleteObject", func(t *testing.T) { testDelete(t, open) })
}

// testTimeout bounds every subtest's store calls, so a deadlocked store
// fails the test instead of hanging it.
const testTimeout = 2 * time.Minute

func testContext(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), testTimeout)
	t.Cleanup(cancel)
	return ctx
}

var idCounter atomic.Int64

// newID returns an identifier no other object of the test binary has.
func newID(prefix string) string {
	return fmt.Sprintf("%s-%06d", prefix, idCounter.Add(1))
}

// created is a fixed Initial Date in whole seconds, UTC: the precision
// every backend keeps.
var created = time.Date(2024, 3, 14, 15, 9, 26, 0, time.UTC)

// newObject returns a valid object of tenant with a fresh identifier.
func newObject(tenant string) *engine.StoredObject {
	id := newID("obj")
	return &engine.StoredObject{
		Tenant:      tenant,
		ID:          id,
		Type:        engine.TypeSymmetricKey,
		State:       engine.StatePreActive,
		Names:       []string{"name-" + id},
		Groups:      []string{"default"},
		Created:     created,
		Rev:         1,
		Attrs:       []byte(`{"id":"` + id + `"}`),
		Wrapped:     []byte{0x01, 0x00, 0xff, byte(len(id))},
		RootVersion: 1,
	}
}

// clone returns a deep copy, keeping nil slices nil.
func clone(o *engine.StoredObject) *engine.StoredObject {
	c := *o
	c.Names = cloneStrings(o.Names)
	c.Groups = cloneStrings(o.Groups)
	c.Attrs = cloneBytes(o.Attrs)
	c.Wrapped = cloneBytes(o.Wrapped)
	return &c
}

func cloneBytes(b []byte) []byte {
	if b == nil {
		return nil
	}
	return append([]byte{}, b...)
}

func cloneStrings(s []string) []string {
	if s == nil {
		return nil
	}
	return append([]string{}, s...)
}

// mustCreate stores o and checks that it got a Seq.
func mustCreate(t *testing.T, ctx context.Context, s engine.Store, o *engine.StoredObject) *engine.StoredObject {
	t.Helper()
	require.NoError(t, s.CreateObject(ctx, o), "create %s", o.ID)
	require.Positive(t, o.Seq, "create %s: Seq not set", o.ID)
	return o
}

// mustGet reads an object that must exist.
func mustGet(t *testing.T, ctx context.Context, s engine.Store, tenant, id string) *engine.StoredObject {
	t.Helper()
	o, err := s.GetObject(ctx, tenant, id)
	require.NoError(t, err, "get %s/%s", tenant, id)
	require.NotNil(t, o)
	return o
}

// assertSameObject checks every field of got against want, byte for byte.
// Wrapped must keep nil (no material) apart from empty; Names and Groups
// must keep their order (an absent list may come back nil or empty).
func assertSameObject(t *testing.T, want, got *engine.StoredObject) {
	t.Helper()
	if !assert.NotNil(t, got) {
		return
	}
	assert.Equal(t, want.Tenant, got.Tenant, "Tenant")
	assert.Equal(t, want.ID, got.ID, "ID")
	assert.Equal(t, want.Type, got.Type, "Type")
	assert.Equal(t, want.State, got.State, "State")
	assert.Equal(t, want.Rev, got.Rev, "Rev")
	assert.Equal(t, want.Seq, got.Seq, "Seq")
	assert.Equal(t, want.RootVersion, got.RootVersion, "RootVersion")
	assert.True(t, want.Created.Equal(got.Created), "Created: want %s, got %s", want.Created, got.Created)
	assert.Equal(t, want.Attrs, got.Attrs, "Attrs")
	assert.Equal(t, want.Wrapped == nil, got.Wrapped == nil, "Wrapped nil-ness: want nil=%v", want.Wrapped == nil)
	assert.Equal(t, want.Wrapped, got.Wrapped, "Wrapped")
	assertSameList(t, want.Names, got.Names, "Names")
	assertSameList(t, want.Groups, got.Groups, "Groups")
}

func assertSameList(t *testing.T, want, got []string, what string) {
	t.Helper()
	if len(want) == 0 {
		assert.Empty(t, got, what)
		return
	}
	assert.Equal(t, want, got, what)
}

// ids returns the identifiers of objs, in order.
func ids(objs []*engine.StoredObject) []string {
	out := make([]string, 0, len(objs))
	for _, o := range objs {
		out = append(out, o.ID)
	}
	return out
}
