package audit

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/minikms/minikms/engine"
)

// memStore is an in-memory engine.AuditStore whose appends can be made
// to fail.
type memStore struct {
	mu   sync.Mutex
	recs []engine.AuditRecord
	cps  []engine.AuditCheckpoint
	fail error
}

func (m *memStore) AppendAudit(_ context.Context, build func(engine.AuditHead) ([]engine.AuditRecord, error)) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.fail != nil {
		return m.fail
	}
	var head engine.AuditHead
	if n := len(m.recs); n > 0 {
		head = engine.AuditHead{Seq: m.recs[n-1].Seq, Hash: m.recs[n-1].Hash}
	}
	recs, err := build(head)
	if err != nil {
		return err
	}
	m.recs = append(m.recs, recs...)
	return nil
}

func (m *memStore) AuditRecords(_ context.Context, after int64, limit int) ([]engine.AuditRecord, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []engine.AuditRecord
	for _, r := range m.recs {
		if r.Seq > after && (limit <= 0 || len(out) < limit) {
			out = append(out, r)
		}
	}
	return out, nil
}

func (m *memStore) QueryAudit(context.Context, engine.AuditQuery) ([]engine.AuditRecord, error) {
	return nil, errors.New("not used")
}

func (m *memStore) AuditHead(context.Context) (engine.AuditHead, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if n := len(m.recs); n > 0 {
		return engine.AuditHead{Seq: m.recs[n-1].Seq, Hash: m.recs[n-1].Hash}, nil
	}
	return engine.AuditHead{}, nil
}

func (m *memStore) PutAuditCheckpoint(_ context.Context, c engine.AuditCheckpoint) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.cps = append(m.cps, c)
	return nil
}

func (m *memStore) AuditCheckpoints(context.Context) ([]engine.AuditCheckpoint, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]engine.AuditCheckpoint(nil), m.cps...), nil
}

func (m *memStore) setFail(err error) {
	m.mu.Lock()
	m.fail = err
	m.mu.Unlock()
}

// TestCanonicalIsStable pins the version 1 encoding (the expected hash was
// computed by an independent Python implementation of the format described
// in doc.go): a change breaks every
// existing chain, so it must be a new version, not an edit.
func TestCanonicalIsStable(t *testing.T) {
	r := engine.AuditRecord{Seq: 7, Node: "n1", PrevHash: Genesis, AuditEvent: engine.AuditEvent{
		Time: time.Date(2026, 11, 23, 12, 0, 0, 123456000, time.UTC), Tenant: "acme", Member: "app", CertHash: "ab",
		Role: "app", Remote: "10.0.0.1:5", Action: "kmip.Encrypt", Object: "k1", Status: "success",
		Details: map[string]string{"b": "2", "a": "1"},
	}}
	assert.Equal(t, "minikms-audit/v1", string(Canonical(&r)[:16]))
	assert.Equal(t, "9dea0ef50dd9475036cf0d2e057c3bb0e6463871cffd7fe6e9c8c41acc80da67", hex.EncodeToString(Hash(&r)))
	// Details order does not matter; every field does.
	r2 := r
	r2.Details = map[string]string{"a": "1", "b": "2"}
	assert.Equal(t, Hash(&r), Hash(&r2))
	for _, mutate := range []func(*engine.AuditRecord){
		func(x *engine.AuditRecord) { x.Seq++ },
		func(x *engine.AuditRecord) { x.Time = x.Time.Add(time.Microsecond) },
		func(x *engine.AuditRecord) { x.Node = "n2" },
		func(x *engine.AuditRecord) { x.Tenant = "acm"; x.Member = "eapp" }, // length prefixes: no ambiguity
		func(x *engine.AuditRecord) { x.Remote = "" },
		func(x *engine.AuditRecord) { x.Reason = "x" },
		func(x *engine.AuditRecord) { x.Details = map[string]string{"a": "1", "b": "3"} },
		func(x *engine.AuditRecord) { x.PrevHash = make([]byte, 32); x.PrevHash[0] = 1 },
	} {
		m := r
		mutate(&m)
		assert.NotEqual(t, Hash(&r), Hash(&m))
	}
}

func TestLogFailsClosedAndRecovers(t *testing.T) {
	ctx := context.Background()
	st := &memStore{}
	l := NewLog(st, "n")
	require.NoError(t, l.Record(ctx, []engine.AuditEvent{{Action: "kmip.Create", Status: StatusSuccess, Object: "k1"}}))
	require.NoError(t, l.Healthy())

	st.setFail(errors.New("disk full"))
	err := l.Record(ctx, []engine.AuditEvent{{Action: "kmip.Destroy", Status: StatusSuccess, Object: "k1"}})
	require.ErrorIs(t, err, ErrUnavailable)
	assert.Contains(t, err.Error(), "disk full")
	require.Error(t, l.Healthy())
	assert.Contains(t, l.Healthy().Error(), "disk full")
	require.Error(t, l.Probe(ctx), "still failing")

	st.setFail(nil)
	require.NoError(t, l.Probe(ctx))
	require.NoError(t, l.Healthy())
	recs, _ := st.AuditRecords(ctx, 0, 0)
	require.Len(t, recs, 3)
	assert.Equal(t, "kmip.Destroy", recs[1].Action, "the withheld event is recorded after recovery")
	assert.Contains(t, recs[1].Details["response"], "withheld")
	assert.Equal(t, "audit.recovered", recs[2].Action)
	assert.Equal(t, "1", recs[2].Details["withheld_events"])
	rep, err := Verify(ctx, st, VerifyOptions{})
	require.NoError(t, err)
	assert.Nil(t, rep.Problem)
	require.NoError(t, l.Probe(ctx), "nothing to do when healthy")
	recs, _ = st.AuditRecords(ctx, 0, 0)
	assert.Len(t, recs, 3)
}

func TestRecordRefusesMalformedEventsOnly(t *testing.T) {
	ctx := context.Background()
	st := &memStore{}
	l := NewLog(st, "n")
	require.Error(t, l.Record(ctx, []engine.AuditEvent{{Status: StatusSuccess}}), "no action")
	require.Error(t, l.Record(ctx, []engine.AuditEvent{{Action: "a", Status: "ok"}}), "unknown status")
	// Client-chosen text never makes a record fail: it is made storable.
	long := strings.Repeat("é", MaxField)
	ev := engine.AuditEvent{Action: "kmip.Get", Status: StatusFailure, Object: "bad\x00id\xff" + long,
		Details: map[string]string{"message\xfe": "x\x00y"}}
	require.NoError(t, l.Record(ctx, []engine.AuditEvent{ev}))
	recs, _ := st.AuditRecords(ctx, 0, 0)
	require.Len(t, recs, 1)
	r := recs[0]
	assert.LessOrEqual(t, len(r.Object), MaxField)
	assert.True(t, utf8.ValidString(r.Object))
	assert.NotContains(t, r.Object, "\x00")
	assert.True(t, strings.HasPrefix(r.Object, "bad\ufffdid\ufffd"))
	assert.True(t, strings.HasSuffix(r.Object, "…"))
	assert.Equal(t, map[string]string{"message\ufffd": "x\ufffdy"}, r.Details)
	assert.Nil(t, healthyErr(l))
}

func healthyErr(l *Log) error { return l.Healthy() }

func TestRedactedChainVerifies(t *testing.T) {
	ctx := context.Background()
	st := &memStore{}
	l := NewLog(st, "n")
	for i, tenant := range []string{"acme", "globex", "acme", "", "globex"} {
		require.NoError(t, l.Record(ctx, []engine.AuditEvent{{Tenant: tenant, Action: "kmip.Get", Object: string(rune('a' + i)), Status: StatusSuccess}}))
	}
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	cp, err := NewCheckpointer(st, key)
	require.NoError(t, err)
	require.NoError(t, cp.Checkpoint(ctx))

	// acme's auditor sees its own records and the others' hashes.
	view := &memStore{cps: st.cps}
	for _, r := range st.recs {
		if r.Tenant != "acme" {
			red := Redact(&r)
			assert.Empty(t, red.Action)
			assert.Empty(t, red.Tenant)
			r = red
		}
		// Through JSON, as the API serves it.
		b, err := json.Marshal(ToJSON(&r))
		require.NoError(t, err)
		var j JSONRecord
		require.NoError(t, json.Unmarshal(b, &j))
		back, err := FromJSON(j)
		require.NoError(t, err)
		view.recs = append(view.recs, back)
	}
	rep, err := Verify(ctx, view, VerifyOptions{CheckpointKey: key.Public()})
	require.NoError(t, err)
	assert.Nil(t, rep.Problem)
	assert.Equal(t, int64(5), rep.Records)

	// Its own record altered by the server: named.
	view.recs[2].Object = "z"
	rep, err = Verify(ctx, view, VerifyOptions{CheckpointKey: key.Public()})
	require.NoError(t, err)
	require.NotNil(t, rep.Problem)
	assert.Equal(t, Modified, rep.Problem.Kind)
	assert.Equal(t, int64(3), rep.Problem.Seq)
	view.recs[2].Object = "c"

	// A redacted record's content hash altered: the chain breaks there.
	view.recs[1].ContentHash = make([]byte, 32)
	rep, err = Verify(ctx, view, VerifyOptions{CheckpointKey: key.Public()})
	require.NoError(t, err)
	require.NotNil(t, rep.Problem)
	assert.Equal(t, int64(2), rep.Problem.Seq)
}

func TestJSONRejectsMalformed(t *testing.T) {
	for _, j := range []JSONRecord{
		{Seq: 1, PrevHash: "zz", EntryHash: strings.Repeat("00", 32)},
		{Seq: 1, PrevHash: strings.Repeat("00", 31), EntryHash: strings.Repeat("00", 32)},
		{Seq: 1, PrevHash: strings.Repeat("00", 32), EntryHash: strings.Repeat("00", 32)}, // no time
		{Seq: 1, PrevHash: strings.Repeat("00", 32), EntryHash: strings.Repeat("00", 32), Redacted: true},
	} {
		_, err := FromJSON(j)
		assert.Error(t, err, "%+v", j)
	}
}

func TestCheckpointerRunSignsAtEnd(t *testing.T) {
	st := &memStore{}
	l := NewLog(st, "n")
	require.NoError(t, l.Record(context.Background(), []engine.AuditEvent{{Action: "a", Status: StatusSuccess}}))
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	cp, err := NewCheckpointer(st, key)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { cp.Run(ctx, time.Hour, testLogger(t)); close(done) }()
	cancel()
	<-done
	cps, _ := st.AuditCheckpoints(context.Background())
	require.Len(t, cps, 1)
	assert.Equal(t, int64(1), cps[0].Seq)
	assert.NoError(t, VerifyCheckpoint(cps[0], key.Public()))
	other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	assert.Error(t, VerifyCheckpoint(cps[0], other.Public()))
}

func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, nil))
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}
