package storetest

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/minikms/minikms/engine"
)

// RunRotation checks the engine.RotationStore contract (root rotation).
func RunRotation(t *testing.T, open func(t *testing.T) engine.Store) {
	t.Run("Rotation", func(t *testing.T) { runRotation(t, open) })
}

func runRotation(t *testing.T, open func(t *testing.T) engine.Store) {
	t.Run("RewrapSelection", func(t *testing.T) {
		ctx := testContext(t)
		st, ok := open(t).(engine.RotationStore)
		require.True(t, ok, "store does not implement engine.RotationStore")
		var objs []*engine.StoredObject
		for i := range 7 {
			o := newObject([]string{"acme", "globex"}[i%2])
			switch i {
			case 3:
				o.Wrapped = nil // no material: never selected
			case 5:
				o.RootVersion = 2 // already under the target
			}
			require.NoError(t, st.CreateObject(ctx, o))
			objs = append(objs, o)
		}
		n, err := st.CountObjectsToRewrap(ctx, 2)
		require.NoError(t, err)
		assert.EqualValues(t, 5, n)

		var got []string
		after := int64(0)
		for {
			page, err := st.ObjectsToRewrap(ctx, 2, after, 2)
			require.NoError(t, err)
			if len(page) == 0 {
				break
			}
			require.LessOrEqual(t, len(page), 2)
			for _, o := range page {
				require.Greater(t, o.Seq, after, "ascending by seq")
				after = o.Seq
				assert.NotNil(t, o.Wrapped)
				assert.NotEqual(t, uint32(2), o.RootVersion)
				got = append(got, o.ID)
			}
		}
		want := []string{objs[0].ID, objs[1].ID, objs[2].ID, objs[4].ID, objs[6].ID}
		assert.Equal(t, want, got, "every tenant, by seq")

		// Re-wrap with compare-and-swap and backup.
		o := objs[0]
		err = st.RewrapObject(ctx, o.Tenant, o.ID, o.Rev+5, []byte{9}, 2, "root.rotate.backup.x", []byte("b"))
		assert.ErrorIs(t, err, engine.ErrConflict)
		_, err = st.GetMeta(ctx, "root.rotate.backup.x")
		assert.ErrorIs(t, err, engine.ErrNotFound, "no backup written by a lost swap")
		err = st.RewrapObject(ctx, "other", o.ID, o.Rev, []byte{9}, 2, "root.rotate.backup.x", []byte("b"))
		assert.ErrorIs(t, err, engine.ErrNotFound, "another tenant's object")
		require.NoError(t, st.RewrapObject(ctx, o.Tenant, o.ID, o.Rev, []byte{9, 9}, 2, "root.rotate.backup.x", []byte("old")))
		got0, err := st.GetObject(ctx, o.Tenant, o.ID)
		require.NoError(t, err)
		assert.Equal(t, []byte{9, 9}, got0.Wrapped)
		assert.Equal(t, uint32(2), got0.RootVersion)
		assert.Equal(t, o.Rev+1, got0.Rev)
		assert.Equal(t, o.Names, got0.Names, "labels kept")
		assert.Equal(t, o.Attrs, got0.Attrs)
		b, err := st.GetMeta(ctx, "root.rotate.backup.x")
		require.NoError(t, err)
		assert.Equal(t, []byte("old"), b)
		n, err = st.CountObjectsToRewrap(ctx, 2)
		require.NoError(t, err)
		assert.EqualValues(t, 4, n)
		// An ordinary update still sees the new revision.
		upd := clone(o)
		upd.Rev = o.Rev + 1
		assert.ErrorIs(t, st.UpdateObject(ctx, upd, o.Rev), engine.ErrConflict)
	})
	t.Run("MetaWrites", func(t *testing.T) {
		ctx := testContext(t)
		st := open(t).(engine.RotationStore)
		require.NoError(t, st.PutMeta(ctx, "a.1", []byte("x")))
		require.NoError(t, st.PutMeta(ctx, "a.1", []byte("y")), "replaces")
		v, err := st.GetMeta(ctx, "a.1")
		require.NoError(t, err)
		assert.Equal(t, []byte("y"), v)
		assert.ErrorIs(t, st.SwapMeta(ctx, "a.1", []byte("x"), []byte("z")), engine.ErrConflict)
		assert.ErrorIs(t, st.SwapMeta(ctx, "nope", []byte("x"), []byte("z")), engine.ErrNotFound)
		require.NoError(t, st.SwapMeta(ctx, "a.1", []byte("y"), []byte("z")))
		v, _ = st.GetMeta(ctx, "a.1")
		assert.Equal(t, []byte("z"), v)
		for _, k := range []string{"a.10", "a.2", "b.1"} {
			require.NoError(t, st.PutMeta(ctx, k, []byte("v")))
		}
		require.NoError(t, st.DeleteMeta(ctx, "a.1", "absent"))
		_, err = st.GetMeta(ctx, "a.1")
		assert.ErrorIs(t, err, engine.ErrNotFound)
		_, err = st.GetMeta(ctx, "a.10")
		assert.NoError(t, err, "exact keys only")
		n, err := st.DeleteMetaPrefix(ctx, "a.")
		require.NoError(t, err)
		assert.EqualValues(t, 2, n)
		m, err := st.ListMeta(ctx, "")
		require.NoError(t, err)
		assert.Contains(t, m, "b.1")
		assert.NotContains(t, m, "a.2")
		_, err = st.DeleteMetaPrefix(ctx, "")
		assert.Error(t, err)
	})
}
