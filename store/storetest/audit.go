package storetest

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/minikms/minikms/audit"
	"github.com/minikms/minikms/engine"
)

// testAudit checks the engine.AuditStore contract: appends extend one
// chain (also when concurrent), reads page in order, queries filter,
// checkpoints persist.
func testAudit(t *testing.T, open func(t *testing.T) engine.Store) {
	as := func(t *testing.T) engine.AuditStore {
		s, ok := open(t).(engine.AuditStore)
		if !ok {
			t.Fatal("the store does not implement engine.AuditStore")
		}
		return s
	}
	t.Run("AppendAndRead", func(t *testing.T) {
		ctx := testContext(t)
		s := as(t)
		head, err := s.AuditHead(ctx)
		require.NoError(t, err)
		assert.Zero(t, head.Seq)
		l := audit.NewLog(s, "node-a")
		ev := []engine.AuditEvent{
			{Tenant: "acme", Member: "app", CertHash: "ab12", Role: "app", Remote: "10.0.0.1:4242", Action: "kmip.Encrypt", Object: "k1", Status: "success"},
			{Tenant: "acme", Member: "app", Action: "kmip.Get", Object: "k2", Status: "failure", Reason: "Item Not Found",
				Details: map[string]string{"message": "no such object", "ünïcode": "✓"}},
			{Tenant: "globex", Member: "admin", Action: "kmip.Destroy", Object: "k3", Status: "success"},
			{Action: "tls.refused", Status: "failure", Reason: "bad certificate", Remote: "192.0.2.1:1"},
		}
		require.NoError(t, l.Record(ctx, ev))
		recs, err := s.AuditRecords(ctx, 0, 0)
		require.NoError(t, err)
		require.Len(t, recs, 4)
		for i, r := range recs {
			assert.Equal(t, int64(i+1), r.Seq)
			assert.Equal(t, "node-a", r.Node)
			assert.Equal(t, ev[i].Action, r.Action)
			assert.Equal(t, audit.Hash(&r), r.Hash, "stored content hashes back to the stored hash (record %d)", r.Seq)
		}
		assert.Equal(t, "10.0.0.1:4242", recs[0].Remote)
		assert.Equal(t, map[string]string{"message": "no such object", "ünïcode": "✓"}, recs[1].Details)
		assert.Equal(t, audit.Genesis, recs[0].PrevHash)
		assert.Equal(t, recs[0].Hash, recs[1].PrevHash)

		head, err = s.AuditHead(ctx)
		require.NoError(t, err)
		assert.Equal(t, engine.AuditHead{Seq: 4, Hash: recs[3].Hash}, head)

		page, err := s.AuditRecords(ctx, 2, 1)
		require.NoError(t, err)
		require.Len(t, page, 1)
		assert.Equal(t, int64(3), page[0].Seq)

		rep, err := audit.Verify(ctx, s, audit.VerifyOptions{})
		require.NoError(t, err)
		assert.Nil(t, rep.Problem)
		assert.Equal(t, int64(4), rep.Records)
	})
	t.Run("Query", func(t *testing.T) {
		ctx := testContext(t)
		s := as(t)
		l := audit.NewLog(s, "n")
		t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
		var ev []engine.AuditEvent
		for i := range 20 {
			tenant := []string{"acme", "globex", ""}[i%3]
			ev = append(ev, engine.AuditEvent{Time: t0.Add(time.Duration(i) * time.Minute), Tenant: tenant, Member: fmt.Sprintf("m%d", i%2),
				Action: []string{"kmip.Encrypt", "kmip.Get"}[i%2], Object: fmt.Sprintf("obj-%d", i%4), Status: "success"})
		}
		require.NoError(t, l.Record(ctx, ev))
		count := func(q engine.AuditQuery) int {
			t.Helper()
			recs, err := s.QueryAudit(ctx, q)
			require.NoError(t, err)
			for _, r := range recs {
				if !q.AnyTenant || q.Tenant != "" {
					assert.Equal(t, q.Tenant, r.Tenant)
				}
			}
			return len(recs)
		}
		assert.Equal(t, 7, count(engine.AuditQuery{Tenant: "acme"}))
		assert.Equal(t, 6, count(engine.AuditQuery{Tenant: ""}), "tenant \"\" without AnyTenant selects server-wide records")
		assert.Equal(t, 20, count(engine.AuditQuery{AnyTenant: true}))
		assert.Equal(t, 4, count(engine.AuditQuery{Tenant: "acme", Action: "kmip.Encrypt"}))
		assert.Equal(t, 5, count(engine.AuditQuery{AnyTenant: true, Object: "obj-1"}))
		assert.Equal(t, 10, count(engine.AuditQuery{AnyTenant: true, Member: "m1"}))
		assert.Equal(t, 5, count(engine.AuditQuery{AnyTenant: true, From: t0.Add(5 * time.Minute), To: t0.Add(10 * time.Minute)}))
		assert.Equal(t, 3, count(engine.AuditQuery{AnyTenant: true, AfterSeq: 17}))
		assert.Equal(t, 2, count(engine.AuditQuery{AnyTenant: true, Limit: 2}))
		assert.Equal(t, 0, count(engine.AuditQuery{Tenant: "nobody"}))
	})
	t.Run("ConcurrentAppendsFormOneChain", func(t *testing.T) {
		ctx := testContext(t)
		s := as(t)
		// Two logs (two nodes) appending at once to one store.
		logs := []*audit.Log{audit.NewLog(s, "node-a"), audit.NewLog(s, "node-b")}
		var wg sync.WaitGroup
		const writers, each = 8, 25
		for w := range writers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range each {
					err := logs[w%2].Record(ctx, []engine.AuditEvent{{Tenant: "acme", Action: "kmip.Encrypt", Object: fmt.Sprintf("w%d-%d", w, i), Status: "success"}})
					assert.NoError(t, err)
				}
			}()
		}
		wg.Wait()
		rep, err := audit.Verify(ctx, s, audit.VerifyOptions{})
		require.NoError(t, err)
		assert.Nil(t, rep.Problem)
		assert.Equal(t, int64(writers*each), rep.Records)
	})
	t.Run("Checkpoints", func(t *testing.T) {
		ctx := testContext(t)
		s := as(t)
		cps, err := s.AuditCheckpoints(ctx)
		require.NoError(t, err)
		assert.Empty(t, cps)
		key, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
		require.NoError(t, err)
		cp, err := audit.NewCheckpointer(s, key)
		require.NoError(t, err)
		require.NoError(t, cp.Checkpoint(ctx), "an empty chain is not checkpointed, without error")
		l := audit.NewLog(s, "n")
		require.NoError(t, l.Record(ctx, []engine.AuditEvent{{Action: "a", Status: "success"}}))
		require.NoError(t, cp.Checkpoint(ctx))
		require.NoError(t, cp.Checkpoint(ctx), "an unchanged head is not signed twice")
		require.NoError(t, l.Record(ctx, []engine.AuditEvent{{Action: "b", Status: "success"}}))
		require.NoError(t, cp.Checkpoint(ctx))
		cps, err = s.AuditCheckpoints(ctx)
		require.NoError(t, err)
		require.Len(t, cps, 2)
		assert.Equal(t, []int64{1, 2}, []int64{cps[0].Seq, cps[1].Seq})
		for _, c := range cps {
			assert.Equal(t, cp.KeyID(), c.KeyID)
			assert.NoError(t, audit.VerifyCheckpoint(c, key.Public()))
		}
		// Storing the same checkpoint again is harmless (two nodes).
		require.NoError(t, s.PutAuditCheckpoint(ctx, cps[1]))
		rep, err := audit.Verify(ctx, s, audit.VerifyOptions{CheckpointKey: key.Public()})
		require.NoError(t, err)
		assert.Nil(t, rep.Problem)
		assert.Equal(t, 2, rep.Checkpoints)
		assert.Zero(t, rep.Unsigned)
	})
}

// Tamperer changes a store's audit tables behind the application's back,
// as an attacker with write access to the database would. Each backend
// implements it with its own SQL in its tests.
type Tamperer interface {
	// SetColumn sets one column of record seq (columns as in
	// kms_audit_log: action, object, tenant, time, prev_hash, ...).
	SetColumn(ctx context.Context, seq int64, column string, value any) error
	// Delete removes records with from <= seq <= to.
	Delete(ctx context.Context, from, to int64) error
	// Renumber adds delta to the seq of every record with seq >= from.
	Renumber(ctx context.Context, from, delta int64) error
	// Insert stores a record as given.
	Insert(ctx context.Context, r engine.AuditRecord) error
	// Swap exchanges the content (every column but seq) of two records.
	Swap(ctx context.Context, a, b int64) error
	// DeleteCheckpoints removes every checkpoint.
	DeleteCheckpoints(ctx context.Context) error
}

// RunAuditTamper checks that audit.Verify names each kind of tampering. open
// returns a fresh, empty store and its Tamperer.
func RunAuditTamper(t *testing.T, open func(t *testing.T) (engine.AuditStore, Tamperer)) {
	const n = 12
	// setup writes n records and a checkpoint at record 10, and returns
	// the store, its tamperer and the checkpoint key.
	setup := func(t *testing.T) (context.Context, engine.AuditStore, Tamperer, *ecdsa.PrivateKey) {
		ctx := testContext(t)
		s, tam := open(t)
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		require.NoError(t, err)
		cp, err := audit.NewCheckpointer(s, key)
		require.NoError(t, err)
		l := audit.NewLog(s, "node")
		for i := range n {
			require.NoError(t, l.Record(ctx, []engine.AuditEvent{{Tenant: "acme", Member: "app", Action: "kmip.Encrypt",
				Object: fmt.Sprintf("key-%d", i+1), Status: "success", Details: map[string]string{"i": fmt.Sprint(i + 1)}}}))
			if i+1 == 10 {
				require.NoError(t, cp.Checkpoint(ctx))
			}
		}
		rep, err := audit.Verify(ctx, s, audit.VerifyOptions{CheckpointKey: key.Public()})
		require.NoError(t, err)
		require.Nil(t, rep.Problem, "the untouched chain verifies")
		require.Equal(t, int64(2), rep.Unsigned)
		return ctx, s, tam, key
	}
	expect := func(t *testing.T, ctx context.Context, s engine.AuditStore, key *ecdsa.PrivateKey, seq int64, kind string) {
		t.Helper()
		rep, err := audit.Verify(ctx, s, audit.VerifyOptions{CheckpointKey: key.Public()})
		require.NoError(t, err)
		require.NotNil(t, rep.Problem, "tampering went unnoticed")
		assert.Equal(t, kind, rep.Problem.Kind, "%s", rep.Problem)
		assert.Equal(t, seq, rep.Problem.Seq, "%s", rep.Problem)
		assert.NotEmpty(t, rep.Problem.Detail)
	}

	t.Run("ModifyField", func(t *testing.T) {
		for _, c := range []struct {
			col string
			val any
		}{{"action", "kmip.Decrypt"}, {"object", "other-key"}, {"tenant", "globex"}, {"status", "failure"}, {"details", `{"i":"99"}`}, {"member", "admin"}} {
			t.Run(c.col, func(t *testing.T) {
				ctx, s, tam, key := setup(t)
				require.NoError(t, tam.SetColumn(ctx, 5, c.col, c.val))
				expect(t, ctx, s, key, 5, audit.Modified)
			})
		}
	})
	t.Run("ModifyAndRehashOne", func(t *testing.T) {
		ctx, s, tam, key := setup(t)
		recs, err := s.AuditRecords(ctx, 4, 1)
		require.NoError(t, err)
		r := recs[0]
		r.Object = "forged"
		require.NoError(t, tam.SetColumn(ctx, 5, "object", "forged"))
		require.NoError(t, tam.SetColumn(ctx, 5, "entry_hash", audit.Hash(&r)))
		expect(t, ctx, s, key, 5, audit.Modified)
	})
	t.Run("DeleteEntry", func(t *testing.T) {
		ctx, s, tam, key := setup(t)
		require.NoError(t, tam.Delete(ctx, 7, 7))
		expect(t, ctx, s, key, 7, audit.Removed)
	})
	t.Run("DeleteFirstEntries", func(t *testing.T) {
		ctx, s, tam, key := setup(t)
		require.NoError(t, tam.Delete(ctx, 1, 3))
		expect(t, ctx, s, key, 1, audit.Removed)
	})
	t.Run("DeleteAndRenumber", func(t *testing.T) {
		ctx, s, tam, key := setup(t)
		require.NoError(t, tam.Delete(ctx, 7, 7))
		require.NoError(t, tam.Renumber(ctx, 8, -1))
		expect(t, ctx, s, key, 7, audit.Removed)
	})
	t.Run("InsertEntry", func(t *testing.T) {
		// A well-formed record chained to record 6, placed at 7 and the
		// rest moved up by one.
		ctx, s, tam, key := setup(t)
		recs, err := s.AuditRecords(ctx, 5, 1)
		require.NoError(t, err)
		require.NoError(t, tam.Renumber(ctx, 7, 1))
		fake := engine.AuditRecord{Seq: 7, Node: "node", PrevHash: recs[0].Hash,
			AuditEvent: engine.AuditEvent{Time: time.Now().UTC().Truncate(time.Microsecond), Tenant: "acme", Member: "app", Action: "kmip.Get", Object: "alibi", Status: "success"}}
		fake.Hash = audit.Hash(&fake)
		require.NoError(t, tam.Insert(ctx, fake))
		expect(t, ctx, s, key, 7, audit.Inserted)
	})
	t.Run("SwapEntries", func(t *testing.T) {
		ctx, s, tam, key := setup(t)
		require.NoError(t, tam.Swap(ctx, 4, 5))
		expect(t, ctx, s, key, 4, audit.Reordered)
	})
	t.Run("TruncateTail", func(t *testing.T) {
		// Cut back to before the checkpoint at 10.
		ctx, s, tam, key := setup(t)
		require.NoError(t, tam.Delete(ctx, 9, n))
		expect(t, ctx, s, key, 9, audit.Truncated)
	})
	t.Run("TruncateUnsignedTail", func(t *testing.T) {
		// Records after the newest checkpoint are the documented blind
		// spot: the chain alone cannot miss what it never signed.
		ctx, s, tam, key := setup(t)
		require.NoError(t, tam.Delete(ctx, 11, n))
		rep, err := audit.Verify(ctx, s, audit.VerifyOptions{CheckpointKey: key.Public()})
		require.NoError(t, err)
		assert.Nil(t, rep.Problem)
		assert.Equal(t, int64(10), rep.Records)
	})
	t.Run("RewriteWholeChain", func(t *testing.T) {
		// Change record 3 and recompute every hash after it: the chain is
		// self-consistent, the checkpoint at 10 is not.
		ctx, s, tam, key := setup(t)
		recs, err := s.AuditRecords(ctx, 0, 0)
		require.NoError(t, err)
		prev := audit.Genesis
		for i := range recs {
			r := &recs[i]
			if r.Seq == 3 {
				r.Object = "forged"
				require.NoError(t, tam.SetColumn(ctx, 3, "object", "forged"))
			}
			r.PrevHash = prev
			r.Hash = audit.Hash(r)
			prev = r.Hash
			require.NoError(t, tam.SetColumn(ctx, r.Seq, "prev_hash", r.PrevHash))
			require.NoError(t, tam.SetColumn(ctx, r.Seq, "entry_hash", r.Hash))
		}
		expect(t, ctx, s, key, 10, audit.Rewritten)
	})
	t.Run("ForgedCheckpoint", func(t *testing.T) {
		// Rewrite the chain and sign it with the attacker's own key.
		ctx, s, tam, key := setup(t)
		require.NoError(t, tam.DeleteCheckpoints(ctx))
		other, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		require.NoError(t, err)
		cp, err := audit.NewCheckpointer(s, other)
		require.NoError(t, err)
		require.NoError(t, cp.Checkpoint(ctx))
		rep, err := audit.Verify(ctx, s, audit.VerifyOptions{CheckpointKey: key.Public()})
		require.NoError(t, err)
		require.NotNil(t, rep.Problem)
		assert.Equal(t, audit.BadSigning, rep.Problem.Kind)
		assert.True(t, strings.Contains(rep.Problem.Detail, cp.KeyID()), "%s", rep.Problem)
	})
	t.Run("CheckpointSignatureAltered", func(t *testing.T) {
		ctx, s, tam, key := setup(t)
		cps, err := s.AuditCheckpoints(ctx)
		require.NoError(t, err)
		c := cps[0]
		c.Seq, c.Hash = 12, bytes.Repeat([]byte{1}, 32) // claims a different head, same signature
		require.NoError(t, tam.DeleteCheckpoints(ctx))
		require.NoError(t, s.PutAuditCheckpoint(ctx, c))
		expect(t, ctx, s, key, 12, audit.BadSigning)
	})
}
