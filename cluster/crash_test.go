package cluster

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/x509"
	"encoding/hex"
	"math/big"
	"path/filepath"
	"sync"
	"testing"
	"time"

	okmip "github.com/ovh/kmip-go"
	"github.com/ovh/kmip-go/kmipclient"
	"github.com/ovh/kmip-go/payloads"
	"github.com/stretchr/testify/require"

	"github.com/minikms/minikms/engine"
	"github.com/minikms/minikms/pki"
	"github.com/minikms/minikms/store/sqlite"
)

// crashTrials is how many times TestCrashSafetySQLite kills the server
// under load.
const crashTrials = 20

// TestCrashSafetySQLite: a `minikms serve` on SQLite runs Create, Register
// and ReKey load from several clients and is killed with SIGKILL at a
// random moment, 20 times. After each restart every acknowledged object is
// readable with the right material (registered bytes, rekeyed links),
// every object Locate shows is complete (its material unwraps), and at the
// end `minikms audit verify` accepts the chain.
func TestCrashSafetySQLite(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and kills a server 20 times")
	}
	dir := t.TempDir()
	c := &cluster{t: t, dir: dir, dbURL: filepath.Join(dir, "kms.db")}
	var k [32]byte
	_, _ = rand.Read(k[:])
	c.root = hex.EncodeToString(k[:])
	c.bin = buildBinary(t, dir)
	// serve creates the store (the other commands never do).
	c.start("init").kill(t)
	c.mustMinikms("tenant", "create", "acme")
	c.mustMinikms("member", "issue", "--tenant=acme", "--member=app", "--role=app", "--out="+dir)
	root := sqliteRootCA(t, c)

	var (
		mu         sync.Mutex
		registered = map[string][]byte{} // acknowledged Register: id → key bytes
		created    []string              // acknowledged Create
		rekeyed    = map[string]string{} // acknowledged ReKey: new id → old id
	)
	for trial := range crashTrials {
		n := c.start("crash")
		cl := c.client(n, "app", root)
		ctx, cancel := context.WithCancel(t.Context())
		// Keys to rekey, created and activated before the load.
		var seeds []string
		for range 3 {
			r, err := cl.Create().AES(128, usage).ExecContext(ctx)
			require.NoError(t, err)
			_, err = cl.Activate(r.UniqueIdentifier).ExecContext(ctx)
			require.NoError(t, err)
			seeds = append(seeds, r.UniqueIdentifier)
			mu.Lock()
			created = append(created, r.UniqueIdentifier)
			mu.Unlock()
		}
		var wg sync.WaitGroup
		worker := func(do func(cl *kmipclient.Client) bool) {
			defer wg.Done()
			wcl := c.client(n, "app", root)
			for ctx.Err() == nil && do(wcl) {
			}
		}
		wg.Add(3)
		go worker(func(cl *kmipclient.Client) bool {
			r, err := cl.Create().AES(256, usage).ExecContext(ctx)
			if err != nil {
				return false
			}
			mu.Lock()
			created = append(created, r.UniqueIdentifier)
			mu.Unlock()
			return true
		})
		go worker(func(cl *kmipclient.Client) bool {
			key := make([]byte, 32)
			_, _ = rand.Read(key)
			r, err := cl.Register().Object(&okmip.SymmetricKey{KeyBlock: okmip.KeyBlock{KeyFormatType: okmip.KeyFormatTypeRaw,
				KeyValue:               &okmip.KeyValue{Plain: &okmip.PlainKeyValue{KeyMaterial: okmip.KeyMaterial{Bytes: &key}}},
				CryptographicAlgorithm: okmip.CryptographicAlgorithmAES, CryptographicLength: 256}}).ExecContext(ctx)
			if err != nil {
				return false
			}
			mu.Lock()
			registered[r.UniqueIdentifier] = key
			mu.Unlock()
			return true
		})
		go worker(func(cl *kmipclient.Client) bool {
			i, _ := rand.Int(rand.Reader, big.NewInt(int64(len(seeds))))
			old := seeds[i.Int64()]
			resp, err := cl.Request(ctx, &payloads.RekeyRequestPayload{UniqueIdentifier: old})
			if err != nil {
				return false
			}
			id := resp.(*payloads.RekeyResponsePayload).UniqueIdentifier
			mu.Lock()
			rekeyed[id] = old
			mu.Unlock()
			seeds[i.Int64()] = id
			return true
		})
		d, _ := rand.Int(rand.Reader, big.NewInt(600))
		time.Sleep(200*time.Millisecond + time.Duration(d.Int64())*time.Millisecond)
		n.kill(t)
		cancel()
		wg.Wait()
		t.Logf("trial %d: killed after load; %d created, %d registered, %d rekeyed acknowledged so far", trial+1, len(created), len(registered), len(rekeyed))
	}

	// Restart and check every acknowledged object, and every visible one.
	n := c.start("after")
	cl := c.client(n, "app", root)
	ctx := t.Context()
	keyOf := func(id string) []byte {
		g, err := cl.Get(id).ExecContext(ctx)
		require.NoError(t, err, "object %s is not readable after the crashes", id)
		sk, ok := g.Object.(*okmip.SymmetricKey)
		require.True(t, ok, "object %s is a %T", id, g.Object)
		b, err := sk.KeyMaterial()
		require.NoError(t, err)
		return b
	}
	for _, id := range created {
		if k := keyOf(id); len(k) != 16 && len(k) != 32 {
			t.Fatalf("created object %s has %d bytes of material", id, len(k))
		}
	}
	for id, key := range registered {
		require.True(t, bytes.Equal(keyOf(id), key), "registered object %s has other material after the crashes", id)
	}
	for id, old := range rekeyed {
		keyOf(id)
		attrs, err := cl.GetAttributes(id, okmip.AttributeNameLink).ExecContext(ctx)
		require.NoError(t, err)
		found := false
		for _, a := range attrs.Attribute {
			if l, ok := a.AttributeValue.(okmip.Link); ok && l.LinkType == okmip.LinkTypeReplacedObjectLink && l.LinkedObjectIdentifier == old {
				found = true
			}
		}
		require.True(t, found, "rekeyed object %s lost its link to %s", id, old)
	}
	// Nothing half-written: every object Locate finds is complete.
	loc, err := cl.Locate().ExecContext(ctx)
	require.NoError(t, err)
	require.GreaterOrEqual(t, len(loc.UniqueIdentifier), len(created)+len(registered)+len(rekeyed))
	for _, id := range loc.UniqueIdentifier {
		keyOf(id)
	}
	n.kill(t)
	out := c.mustMinikms("audit", "verify", "--db-url", c.dbURL)
	t.Logf("audit verify: %s", out)
}

// sqliteRootCA reads the root CA from the SQLite store.
func sqliteRootCA(t *testing.T, c *cluster) *x509.Certificate {
	t.Helper()
	ctx := t.Context()
	st, err := sqlite.Open(ctx, c.dbURL)
	require.NoError(t, err)
	defer st.Close()
	key, err := hex.DecodeString(c.root)
	require.NoError(t, err)
	kr, err := engine.NewSoftKeyring(key)
	require.NoError(t, err)
	defer kr.Close()
	eng, err := engine.Open(ctx, engine.Config{Store: st, Keyring: kr})
	require.NoError(t, err)
	defer eng.Close()
	root, err := pki.NewAuthority(st, pki.SealedKeys{Sealer: eng}, nil).Root(ctx)
	require.NoError(t, err)
	return root.Cert
}
