package storetest

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/minikms/minikms/engine"
)

// testDelete checks engine.ObjectDeleter, for stores that have it.
func testDelete(t *testing.T, open func(t *testing.T) engine.Store) {
	s, ctx := open(t), testContext(t)
	d, ok := s.(engine.ObjectDeleter)
	if !ok {
		t.Skip("the store has no DeleteObject (Undo batches are then refused)")
	}
	o := newObject("acme")
	o.Names, o.Groups = []string{"deleted-name"}, []string{"deleted-group"}
	o = mustCreate(t, ctx, s, o)
	keep := mustCreate(t, ctx, s, newObject("acme"))

	require.ErrorIs(t, d.DeleteObject(ctx, "acme", o.ID, o.Rev+1), engine.ErrConflict, "a stale revision must not delete")
	require.ErrorIs(t, d.DeleteObject(ctx, "globex", o.ID, o.Rev), engine.ErrNotFound, "another tenant's object is not found")
	require.ErrorIs(t, d.DeleteObject(ctx, "acme", "no-such-id", 1), engine.ErrNotFound)
	require.NoError(t, d.DeleteObject(ctx, "acme", o.ID, o.Rev))

	_, err := s.GetObject(ctx, "acme", o.ID)
	assert.ErrorIs(t, err, engine.ErrNotFound)
	for _, q := range []engine.ObjectQuery{{Tenant: "acme", Name: "deleted-name"}, {Tenant: "acme", Group: "deleted-group"}} {
		got, err := s.ListObjects(ctx, q)
		require.NoError(t, err)
		assert.Empty(t, got, "the deleted object's labels are gone (%+v)", q)
	}
	mustGet(t, ctx, s, "acme", keep.ID)
	// The identifier is free again.
	again := newObject("acme")
	again.ID = o.ID
	mustCreate(t, ctx, s, again)
}
