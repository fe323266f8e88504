package engine_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/minikms/minikms/engine"
	"github.com/minikms/minikms/pki"
	"github.com/minikms/minikms/store/sqlite"
)

// rotEnv opens engines on one store file with chosen root keys.
type rotEnv struct {
	path, salt string
	logs       *syncBuffer
}

// open returns an engine whose current root is cur (previous ones too).
func (r *rotEnv) open(t *testing.T, cur []byte, prev ...[]byte) (*engine.Engine, *sqlite.Store, error) {
	t.Helper()
	s, err := sqlite.Open(context.Background(), r.path)
	require.NoError(t, err)
	kr, err := engine.NewSoftKeyringWithPrevious(cur, prev...)
	require.NoError(t, err)
	eng, err := engine.Open(context.Background(), engine.Config{Store: s, Keyring: kr, Salt: r.salt, Logger: slog.New(slog.NewTextHandler(r.logs, nil))})
	if err != nil {
		s.Close()
		kr.Close()
		return nil, nil, err
	}
	t.Cleanup(func() { eng.Close(); s.Close(); kr.Close() })
	return eng, s, nil
}

type rotFixture struct {
	keys []*engine.Object
	cts  []engine.EncryptResult
	who  []engine.Principal
	caDN string
}

// populate creates keys in two tenants, encrypts with each, and creates
// the root CA and a tenant CA (sealed under the root).
func populate(t *testing.T, eng *engine.Engine, s *sqlite.Store, n int) *rotFixture {
	t.Helper()
	ctx := t.Context()
	f := &rotFixture{}
	for i := range n {
		p := []engine.Principal{acmeApp, globexAdmin}[i%2]
		o, err := eng.Create(ctx, p, engine.CreateRequest{Type: engine.TypeSymmetricKey, Attrs: aesAttrs(256)})
		require.NoError(t, err)
		o, err = eng.Activate(ctx, p, o.ID)
		require.NoError(t, err)
		res, err := eng.Encrypt(ctx, p, engine.EncryptRequest{ID: o.ID, Data: fmt.Appendf(nil, "secret %d", i)})
		require.NoError(t, err)
		f.keys, f.cts, f.who = append(f.keys, o), append(f.cts, res), append(f.who, p)
	}
	a := pki.NewAuthority(s, pki.SealedKeys{Sealer: eng}, nil)
	root, err := a.Root(ctx)
	require.NoError(t, err)
	_, err = a.Tenant(ctx, "acme", true)
	require.NoError(t, err)
	_, err = a.SigningKey(ctx, "audit-checkpoint")
	require.NoError(t, err)
	f.caDN = root.Cert.Subject.String()
	return f
}

// checkReadable decrypts every fixture ciphertext and loads every CA key.
func (f *rotFixture) checkReadable(t *testing.T, eng *engine.Engine, s *sqlite.Store) {
	t.Helper()
	ctx := t.Context()
	for i, k := range f.keys {
		_, pt, err := eng.Decrypt(ctx, f.who[i], engine.DecryptRequest{ID: k.ID, Data: f.cts[i].Ciphertext, IV: f.cts[i].IV, Tag: f.cts[i].Tag})
		require.NoError(t, err, "key %d", i)
		require.Equal(t, fmt.Sprintf("secret %d", i), string(pt))
	}
	a := pki.NewAuthority(s, pki.SealedKeys{Sealer: eng}, nil)
	root, err := a.Root(ctx)
	require.NoError(t, err)
	require.Equal(t, f.caDN, root.Cert.Subject.String())
	_, err = a.Tenant(ctx, "acme", false)
	require.NoError(t, err)
	_, err = a.LoadSigningKey(ctx, "audit-checkpoint")
	require.NoError(t, err)
}

var errCrash = errors.New("simulated crash")

func TestRootRotationResumable(t *testing.T) {
	r := &rotEnv{path: t.TempDir() + "/db", salt: "s", logs: &syncBuffer{}}
	oldRoot, newRoot := randomBytes(t, 32), randomBytes(t, 32)
	ctx := t.Context()

	eng, s, err := r.open(t, oldRoot)
	require.NoError(t, err)
	f := populate(t, eng, s, 30)
	v, err := eng.RegisterRoot(ctx, newRoot)
	require.NoError(t, err)
	require.EqualValues(t, 2, v)
	v, err = eng.RegisterRoot(ctx, newRoot)
	require.NoError(t, err)
	require.EqualValues(t, 2, v, "registering again is idempotent")

	// A server with the new root (and the old as previous) writes under
	// version 2 and reads version 1.
	eng2, s2, err := r.open(t, newRoot, oldRoot)
	require.NoError(t, err)
	f.checkReadable(t, eng2, s2)

	// The job dies after 12 objects (a panic stands in for kill -9: no
	// cleanup runs).
	func() {
		defer func() { require.Equal(t, errCrash, recover()) }()
		_, _ = eng2.RotateRoot(ctx, engine.RotateOptions{BatchSize: 5, AfterObject: func(done int64) {
			if done == 12 {
				panic(errCrash)
			}
		}})
	}()
	st, err := eng2.RotationStatus(ctx)
	require.NoError(t, err)
	require.NotNil(t, st.State)
	assert.EqualValues(t, 10, st.State.AfterSeq-f.keys[0].Seq+1, "checkpoint after two batches of 5")
	assert.EqualValues(t, 30-12, st.Remaining)
	assert.False(t, st.State.Complete)
	f.checkReadable(t, eng2, s2) // mixed versions are readable

	_, err = eng2.FinishRootRotation(ctx)
	assert.ErrorContains(t, err, "not complete")

	// Resume: only what is left is re-wrapped.
	var progress []int64
	res, err := eng2.RotateRoot(ctx, engine.RotateOptions{BatchSize: 7, Progress: func(done, total int64) {
		progress = append(progress, done)
		assert.EqualValues(t, 18, total)
	}})
	require.NoError(t, err)
	assert.True(t, res.Complete)
	// 10 checkpointed by the killed run (its last 2 were done but not
	// checkpointed: not counted, not redone) + 18 now.
	assert.EqualValues(t, 28, res.Rewrapped)
	assert.Equal(t, int64(18), progress[len(progress)-1])
	st, err = eng2.RotationStatus(ctx)
	require.NoError(t, err)
	assert.Zero(t, st.Remaining)
	assert.Equal(t, 30+3, st.Backups, "objects and sealed CA/signing keys backed up")
	f.checkReadable(t, eng2, s2)

	dropped, err := eng2.FinishRootRotation(ctx)
	require.NoError(t, err)
	assert.Equal(t, []uint32{1}, dropped)
	st, err = eng2.RotationStatus(ctx)
	require.NoError(t, err)
	assert.Zero(t, st.Backups)
	assert.Nil(t, st.State)
	assert.Equal(t, map[uint32]string{2: engine.KeyCheckValueOf(newRoot)}, st.Versions)

	// The new root alone reads everything; the old root alone is refused.
	eng3, s3, err := r.open(t, newRoot)
	require.NoError(t, err)
	f.checkReadable(t, eng3, s3)
	_, _, err = r.open(t, oldRoot)
	require.ErrorIs(t, err, engine.ErrWrongRootKey)
	// An old previous root left configured is ignored with a warning.
	eng4, s4, err := r.open(t, newRoot, oldRoot)
	require.NoError(t, err)
	f.checkReadable(t, eng4, s4)
	assert.Contains(t, r.logs.String(), "matches no root version")

	// A second rotation gets version 3.
	third := randomBytes(t, 32)
	v, err = eng3.RegisterRoot(ctx, third)
	require.NoError(t, err)
	assert.EqualValues(t, 3, v)
}

func TestRootRotationConcurrentWrites(t *testing.T) {
	r := &rotEnv{path: t.TempDir() + "/db", salt: "s", logs: &syncBuffer{}}
	oldRoot, newRoot := randomBytes(t, 32), randomBytes(t, 32)
	ctx := t.Context()
	eng, s, err := r.open(t, oldRoot)
	require.NoError(t, err)
	f := populate(t, eng, s, 40)
	_, err = eng.RegisterRoot(ctx, newRoot)
	require.NoError(t, err)

	// The "server": the old-root engine keeps adding attributes (updates)
	// and creating keys under version 1 while the job runs on another
	// engine over the same store.
	srv, srvStore, err := r.open(t, newRoot, oldRoot)
	require.NoError(t, err)
	job, _, err := r.open(t, newRoot, oldRoot)
	require.NoError(t, err)
	var stop atomic.Bool
	var wg sync.WaitGroup
	var adds atomic.Int64
	created := make(chan *engine.Object, 100)
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; !stop.Load() || i < 20; i++ {
			k := f.keys[i%len(f.keys)]
			_, _, err := srv.AddAttribute(ctx, f.who[i%len(f.keys)], k.ID, attr("x-n", textItem(fmt.Sprint(i))))
			if !assert.NoError(t, err) {
				return
			}
			adds.Add(1)
			if i%10 == 0 {
				o, err := eng.Create(ctx, acmeApp, engine.CreateRequest{Type: engine.TypeSymmetricKey, Attrs: aesAttrs(128)})
				if assert.NoError(t, err) {
					select {
					case created <- o:
					default:
					}
				}
			}
		}
	}()
	res, err := job.RotateRoot(ctx, engine.RotateOptions{BatchSize: 3, AfterObject: func(int64) {}})
	stop.Store(true)
	wg.Wait()
	require.NoError(t, err)
	require.True(t, res.Complete)
	// Whatever the old-root writer created after the last pass: run again.
	_, err = job.RotateRoot(ctx, engine.RotateOptions{})
	require.NoError(t, err)
	_, err = job.FinishRootRotation(ctx)
	require.NoError(t, err)
	close(created)

	// Every update survived, and everything reads with the new root only.
	eng3, s3, err := r.open(t, newRoot)
	require.NoError(t, err)
	f.checkReadable(t, eng3, s3)
	var total int64
	for i, k := range f.keys {
		_, attrs, err := eng3.GetAttributes(ctx, f.who[i], k.ID, []string{"x-n"})
		require.NoError(t, err)
		total += int64(len(attrs))
	}
	assert.Equal(t, adds.Load(), total, "no concurrent update lost")
	n := 0
	for o := range created {
		_, m, err := eng3.Get(ctx, acmeAdmin, o.ID)
		require.NoError(t, err)
		require.Len(t, m.Bytes, 16)
		n++
	}
	require.Positive(t, n)
	_ = srvStore
}
