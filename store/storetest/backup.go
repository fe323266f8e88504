package storetest

import (
	"context"
	"errors"
	"iter"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/minikms/minikms/audit"
	"github.com/minikms/minikms/engine"
)

// RunBackup checks engine.BackupStore: a snapshot restores into an empty
// store as an identical copy (every object with its Seq, meta, identity
// records, the audit chain and its checkpoints), a non-empty store is
// refused, a failed restore writes nothing, and a snapshot taken while
// others write is one consistent state. open is as for Run.
func RunBackup(t *testing.T, open func(t *testing.T) engine.Store) {
	bs := func(t *testing.T) engine.BackupStore {
		s, ok := open(t).(engine.BackupStore)
		if !ok {
			t.Fatal("the store does not implement engine.BackupStore")
		}
		return s
	}
	t.Run("RoundTrip", func(t *testing.T) { testBackupRoundTrip(t, bs) })
	t.Run("RefusesNonEmpty", func(t *testing.T) { testRestoreNonEmpty(t, bs) })
	t.Run("FailedRestoreWritesNothing", func(t *testing.T) { testRestoreAtomic(t, bs) })
	t.Run("ConsistentSnapshot", func(t *testing.T) { testBackupConsistent(t, bs) })
}

// snapshot returns every item of a backup of s.
func snapshot(t *testing.T, ctx context.Context, s engine.BackupStore) []engine.BackupItem {
	t.Helper()
	var items []engine.BackupItem
	require.NoError(t, s.Backup(ctx, func(it engine.BackupItem) error {
		items = append(items, it)
		return nil
	}))
	return items
}

// seqOf yields items, then err if it is not nil.
func seqOf(items []engine.BackupItem, err error) iter.Seq2[engine.BackupItem, error] {
	return func(yield func(engine.BackupItem, error) bool) {
		for _, it := range items {
			if !yield(it, nil) {
				return
			}
		}
		if err != nil {
			yield(engine.BackupItem{}, err)
		}
	}
}

// kindOrder is the order Backup reports kinds in.
var kindOrder = map[string]int{"summary": 0, "meta": 1, "certificate": 2, "revocation": 3, "client": 4, "object": 5, "audit": 6, "checkpoint": 7}

// checkShape checks the order of items and that the summary counts them.
func checkShape(t *testing.T, items []engine.BackupItem) *engine.BackupSummary {
	t.Helper()
	require.NotEmpty(t, items)
	sum := items[0].Summary
	require.NotNil(t, sum, "the first item is the summary")
	counts := map[string]int64{}
	last := 0
	var prevSeq int64
	for i, it := range items[1:] {
		k := it.Kind()
		require.NotEqual(t, "summary", k, "item %d: a second summary", i+1)
		require.GreaterOrEqual(t, kindOrder[k], last, "item %d (%s) out of order", i+1, k)
		if kindOrder[k] != last {
			prevSeq = 0
		}
		last = kindOrder[k]
		counts[k]++
		switch {
		case it.Object != nil:
			require.Greater(t, it.Object.Seq, prevSeq, "objects by Seq")
			prevSeq = it.Object.Seq
		case it.Audit != nil:
			require.Equal(t, prevSeq+1, it.Audit.Seq, "audit records by Seq, without gaps")
			prevSeq = it.Audit.Seq
		}
	}
	assert.Equal(t, engine.BackupSummary{
		Meta: counts["meta"], Certificates: counts["certificate"], Revocations: counts["revocation"], Clients: counts["client"],
		Objects: counts["object"], AuditRecords: counts["audit"], Checkpoints: counts["checkpoint"],
		Generation: sum.Generation, LastSeq: sum.LastSeq,
	}, *sum, "the summary counts what follows")
	return sum
}

// fillForBackup gives s one of everything, with the edge cases a copy
// must keep: no material and empty material, repeated and absent labels,
// an updated object, a deleted one (a Seq gap, and a Seq high water mark
// above the last object), identity records, a chain with checkpoints.
func fillForBackup(t *testing.T, ctx context.Context, s engine.BackupStore) []*engine.StoredObject {
	t.Helper()
	st := s.(engine.Store)
	_, err := st.InitMeta(ctx, "root.kcv.1", []byte("0011223344556677"))
	require.NoError(t, err)
	_, err = st.InitMeta(ctx, "empty", nil)
	require.NoError(t, err)
	_, err = st.InitMeta(ctx, "tenant.ca.acme", []byte{0, 1, 2, 0xff})
	require.NoError(t, err)

	var objs []*engine.StoredObject
	a := newObject("acme")
	objs = append(objs, mustCreate(t, ctx, st, a))
	b := newObject("acme")
	b.Wrapped, b.Names, b.Groups = nil, nil, nil
	objs = append(objs, mustCreate(t, ctx, st, b))
	c := newObject("globex")
	c.Wrapped, c.Names, c.Groups = []byte{}, []string{"x", "y", "x"}, []string{"g1", "g2"}
	c.Type, c.State, c.RootVersion = engine.TypePrivateKey, engine.StateActive, 7
	objs = append(objs, mustCreate(t, ctx, st, c))
	u := clone(a)
	u.Rev, u.State, u.Names = 2, engine.StateActive, []string{"renamed"}
	require.NoError(t, st.UpdateObject(ctx, u, 1))
	objs[0] = u
	if d, ok := st.(engine.ObjectDeleter); ok {
		gone := mustCreate(t, ctx, st, newObject("acme"))
		keep := mustCreate(t, ctx, st, newObject("acme"))
		objs = append(objs, keep)
		last := mustCreate(t, ctx, st, newObject("acme"))
		require.NoError(t, d.DeleteObject(ctx, gone.Tenant, gone.ID, 1))
		require.NoError(t, d.DeleteObject(ctx, last.Tenant, last.ID, 1))
	}

	is, ok := s.(engine.IdentityStore)
	require.True(t, ok, "the store does not implement engine.IdentityStore")
	at := time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
	require.NoError(t, is.RecordCertificate(ctx, engine.CertRecord{Serial: "1a2b", Tenant: "acme", Member: "bob", Role: engine.RoleAdmin,
		Kind: "member", NotBefore: at, NotAfter: at.AddDate(1, 0, 0), DER: []byte{0x30, 0x03, 0x02, 0x01, 0x01}, IssuedAt: at}))
	require.NoError(t, is.RecordCertificate(ctx, engine.CertRecord{Serial: "ff", Member: "server", Role: "", Kind: "server",
		NotBefore: at, NotAfter: at.AddDate(0, 1, 0), DER: []byte{0x30, 0x00}, IssuedAt: at}))
	added, err := is.Revoke(ctx, engine.Revocation{Tenant: "acme", Serial: "1a2b", Reason: 5, RevokedAt: at.Add(time.Hour)})
	require.NoError(t, err)
	require.True(t, added)
	require.NoError(t, is.RegisterClient(ctx, engine.ExternalClient{SPKIHash: "abcd", Tenant: "globex", Member: "array", Role: engine.RoleApp,
		Subject: "CN=array", RegisteredAt: at}))

	as, ok := s.(engine.AuditStore)
	require.True(t, ok, "the store does not implement engine.AuditStore")
	l := audit.NewLog(as, "node-a")
	require.NoError(t, l.Record(ctx, []engine.AuditEvent{
		{Tenant: "acme", Member: "bob", Action: "kmip.Create", Object: a.ID, Status: "success", Details: map[string]string{"ü": "✓", "k": ""}},
		{Action: "tls.refused", Status: "failure", Reason: "bad certificate", Remote: "192.0.2.1:1"},
	}))
	head, err := as.AuditHead(ctx)
	require.NoError(t, err)
	require.NoError(t, as.PutAuditCheckpoint(ctx, engine.AuditCheckpoint{Seq: head.Seq, Hash: head.Hash, Time: at.Add(123456789), KeyID: "k1", Signature: []byte{1, 2, 3}}))
	require.NoError(t, l.Record(ctx, []engine.AuditEvent{{Tenant: "globex", Action: "kmip.Get", Object: c.ID, Status: "success"}}))
	return objs
}

func testBackupRoundTrip(t *testing.T, open func(t *testing.T) engine.BackupStore) {
	ctx := testContext(t)
	src := open(t)
	objs := fillForBackup(t, ctx, src)
	items := snapshot(t, ctx, src)
	sum := checkShape(t, items)
	assert.Equal(t, int64(len(objs)), sum.Objects)
	assert.Equal(t, int64(3), sum.AuditRecords)
	assert.Positive(t, sum.Generation)
	maxSeq := int64(0)
	for _, o := range objs {
		maxSeq = max(maxSeq, o.Seq)
	}
	if _, ok := src.(engine.ObjectDeleter); ok {
		assert.Greater(t, sum.LastSeq, maxSeq, "the Seq high water mark counts deleted objects")
	}

	dst := open(t)
	require.NoError(t, dst.Restore(ctx, seqOf(items, nil)))
	// The copy backs up to the same items: nothing lost, nothing changed.
	assert.Equal(t, items, snapshot(t, ctx, dst))

	// And it reads back through the store interfaces.
	ds := dst.(engine.Store)
	for _, o := range objs {
		assertSameObject(t, o, mustGet(t, ctx, ds, o.Tenant, o.ID))
	}
	got, err := ds.ListObjects(ctx, engine.ObjectQuery{Tenant: "globex", Name: "x"})
	require.NoError(t, err)
	assertIDs(t, []string{objs[2].ID}, got)
	got, err = ds.ListObjects(ctx, engine.ObjectQuery{Tenant: "acme", Name: "renamed"})
	require.NoError(t, err)
	assertIDs(t, []string{objs[0].ID}, got)
	gen, err := dst.(engine.IdentityStore).IdentityGeneration(ctx)
	require.NoError(t, err)
	assert.Equal(t, sum.Generation, gen)
	rep, err := audit.Verify(ctx, dst.(engine.AuditStore), audit.VerifyOptions{})
	require.NoError(t, err)
	assert.Nil(t, rep.Problem)
	assert.Equal(t, int64(3), rep.Records)
	assert.Equal(t, 1, rep.Checkpoints)

	// The restored store goes on: a new object gets a Seq above every Seq
	// the source handed out, the chain extends.
	n := mustCreate(t, ctx, ds, newObject("acme"))
	assert.Greater(t, n.Seq, sum.LastSeq)
	require.NoError(t, audit.NewLog(dst.(engine.AuditStore), "node-b").Record(ctx, []engine.AuditEvent{{Action: "admin.restore", Status: "success"}}))
	rep, err = audit.Verify(ctx, dst.(engine.AuditStore), audit.VerifyOptions{})
	require.NoError(t, err)
	assert.Nil(t, rep.Problem)
	assert.Equal(t, int64(4), rep.Records)

	// An empty store backs up to a summary alone, and restores.
	empty := open(t)
	e := snapshot(t, ctx, empty)
	require.Len(t, e, 1)
	assert.Equal(t, engine.BackupSummary{}, *e[0].Summary)
	require.NoError(t, open(t).Restore(ctx, seqOf(e, nil)))
}

func testRestoreNonEmpty(t *testing.T, open func(t *testing.T) engine.BackupStore) {
	ctx := testContext(t)
	src := open(t)
	fillForBackup(t, ctx, src)
	items := snapshot(t, ctx, src)

	// Each kind of content makes a store non-empty.
	for name, prepare := range map[string]func(s engine.BackupStore){
		"meta": func(s engine.BackupStore) {
			_, err := s.(engine.Store).InitMeta(ctx, "root.kcv.1", []byte("ffffffffffffffff"))
			require.NoError(t, err)
		},
		"object": func(s engine.BackupStore) { mustCreate(t, ctx, s.(engine.Store), newObject("other")) },
		"audit": func(s engine.BackupStore) {
			require.NoError(t, audit.NewLog(s.(engine.AuditStore), "n").Record(ctx, []engine.AuditEvent{{Action: "x", Status: "success"}}))
		},
		"client": func(s engine.BackupStore) {
			require.NoError(t, s.(engine.IdentityStore).RegisterClient(ctx, engine.ExternalClient{SPKIHash: "99", Tenant: "t", Member: "m", Role: engine.RoleApp}))
		},
	} {
		t.Run(name, func(t *testing.T) {
			dst := open(t)
			prepare(dst)
			before := snapshot(t, ctx, dst)
			err := dst.Restore(ctx, seqOf(items, nil))
			require.ErrorIs(t, err, engine.ErrNotEmpty)
			assert.Equal(t, before, snapshot(t, ctx, dst), "a refused restore changed the store")
		})
	}
}

func testRestoreAtomic(t *testing.T, open func(t *testing.T) engine.BackupStore) {
	ctx := testContext(t)
	src := open(t)
	fillForBackup(t, ctx, src)
	items := snapshot(t, ctx, src)
	emptyItems := snapshot(t, ctx, open(t))

	dst := open(t)
	// The source fails after most items (a corrupt backup file found late).
	bad := errors.New("backup file corrupted")
	err := dst.Restore(ctx, seqOf(items[:len(items)-1], bad))
	require.ErrorIs(t, err, bad)
	assert.Equal(t, emptyItems, snapshot(t, ctx, dst), "a failed restore left something behind")

	// The store fails on an item (a duplicate identifier).
	var dup []engine.BackupItem
	duplicated := false
	for _, it := range items {
		dup = append(dup, it)
		if it.Object != nil && !duplicated {
			o := *it.Object
			o.Seq += 1000
			dup = append(dup, engine.BackupItem{Object: &o})
			duplicated = true
		}
	}
	err = dst.Restore(ctx, seqOf(dup, nil))
	require.ErrorIs(t, err, engine.ErrExists)
	assert.Equal(t, emptyItems, snapshot(t, ctx, dst), "a failed restore left something behind")

	// A canceled restore writes nothing either.
	cctx, cancel := context.WithCancel(ctx)
	err = dst.Restore(cctx, func(yield func(engine.BackupItem, error) bool) {
		for i, it := range items {
			if i == len(items)/2 {
				cancel()
			}
			if !yield(it, nil) {
				return
			}
		}
	})
	require.Error(t, err)
	assert.Equal(t, emptyItems, snapshot(t, ctx, dst), "a canceled restore left something behind")

	// Then the whole backup restores into the same store.
	require.NoError(t, dst.Restore(ctx, seqOf(items, nil)))
	assert.Equal(t, items, snapshot(t, ctx, dst))
}

// testBackupConsistent backs up while a writer creates objects, each
// followed by its audit record (as the KMIP layer does): the snapshot must
// be one state of the store. Its summary (read first) counts exactly the
// items that follow (read last), every audit record's object is in it, and
// of its objects at most the one being created when the snapshot was
// taken lacks its audit record.
func testBackupConsistent(t *testing.T, open func(t *testing.T) engine.BackupStore) {
	ctx := testContext(t)
	s := open(t)
	st, as := s.(engine.Store), s.(engine.AuditStore)
	l := audit.NewLog(as, "writer")
	create := func() error {
		o := newObject("acme")
		if err := st.CreateObject(ctx, o); err != nil {
			return err
		}
		return l.Record(ctx, []engine.AuditEvent{{Tenant: "acme", Action: "kmip.Create", Object: o.ID, Status: "success"}})
	}
	for range 20 {
		require.NoError(t, create())
	}
	var (
		wg      sync.WaitGroup
		stop    atomic.Bool
		written atomic.Int64
		werr    error
	)
	wg.Add(1)
	go func() {
		defer wg.Done()
		for !stop.Load() {
			if err := create(); err != nil {
				werr = err
				return
			}
			written.Add(1)
		}
	}()
	// Slow reading of the snapshot: the writer commits between every item.
	for written.Load() < 3 {
		time.Sleep(time.Millisecond)
	}
	var items []engine.BackupItem
	require.NoError(t, s.Backup(ctx, func(it engine.BackupItem) error {
		items = append(items, it)
		if it.Object != nil || it.Audit != nil {
			time.Sleep(200 * time.Microsecond)
		}
		return nil
	}))
	during := written.Load()
	stop.Store(true)
	wg.Wait()
	require.NoError(t, werr)
	require.Greater(t, during, int64(5), "the writer wrote too little during the backup to test anything")

	checkShape(t, items)
	objects, audited := map[string]bool{}, map[string]bool{}
	for _, it := range items {
		switch {
		case it.Object != nil:
			objects[it.Object.ID] = true
		case it.Audit != nil:
			audited[it.Audit.Object] = true
		}
	}
	for id := range audited {
		assert.True(t, objects[id], "audit record of %s, but no object: not one snapshot", id)
	}
	missing := 0
	for id := range objects {
		if !audited[id] {
			missing++
		}
	}
	assert.LessOrEqual(t, missing, 1, "objects without their audit record: not one snapshot")

	dst := open(t)
	require.NoError(t, dst.Restore(ctx, seqOf(items, nil)))
	rep, err := audit.Verify(ctx, dst.(engine.AuditStore), audit.VerifyOptions{})
	require.NoError(t, err)
	assert.Nil(t, rep.Problem)
}
