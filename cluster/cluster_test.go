// Package cluster holds the multi-node integration test: two `minikms
// serve` processes on one PostgreSQL database, driven over KMIP. It needs
// the test server (MINIKMS_TEST_DB_URL; `make test` starts one) and skips
// without it unless MINIKMS_REQUIRE_PG=1.
package cluster

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	okmip "github.com/ovh/kmip-go"
	"github.com/ovh/kmip-go/kmipclient"
	"github.com/ovh/kmip-go/payloads"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/minikms/minikms/engine"
	"github.com/minikms/minikms/internal/pgtest"
	"github.com/minikms/minikms/pki"
	"github.com/minikms/minikms/store/postgres"
)

// cluster is the shared configuration of the nodes.
type cluster struct {
	t     *testing.T
	bin   string
	dir   string
	dbURL string
	root  string // MINIKMS_ROOT_KEY
	ca    []byte // root CA, PEM
}

// node is one running `minikms serve`.
type node struct {
	name     string
	kmipAddr string
	cmd      *exec.Cmd
	log      *bytes.Buffer
	done     chan error
}

func newCluster(t *testing.T) *cluster {
	t.Helper()
	dbURL := pgtest.NewDatabase(t)
	c := &cluster{t: t, dir: t.TempDir(), dbURL: dbURL}
	var k [32]byte
	_, _ = rand.Read(k[:])
	c.root = hex.EncodeToString(k[:])
	c.bin = buildBinary(t, c.dir)
	return c
}

// buildBinary builds cmd/minikms into dir.
func buildBinary(t *testing.T, dir string) string {
	t.Helper()
	bin := filepath.Join(dir, "minikms")
	goTool := filepath.Join(runtime.GOROOT(), "bin", "go")
	cmd := exec.Command(goTool, "build", "-o", bin, "github.com/minikms/minikms/cmd/minikms")
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "go build:\n%s", out)
	return bin
}

func (c *cluster) env(extra ...string) []string {
	env := []string{"PATH=" + os.Getenv("PATH"), "HOME=" + c.dir, "MINIKMS_ROOT_KEY=" + c.root, "MINIKMS_DB_URL=" + c.dbURL}
	return append(env, extra...)
}

// minikms runs a command line of the binary and returns its output.
func (c *cluster) minikms(args ...string) (string, error) {
	cmd := exec.Command(c.bin, args...)
	cmd.Env = c.env()
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func (c *cluster) mustMinikms(args ...string) string {
	c.t.Helper()
	out, err := c.minikms(args...)
	require.NoError(c.t, err, "minikms %s:\n%s", strings.Join(args, " "), out)
	return out
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer l.Close()
	return l.Addr().String()
}

// start starts a node and waits until it accepts KMIP connections.
func (c *cluster) start(name string) *node {
	c.t.Helper()
	n := &node{name: name, kmipAddr: freeAddr(c.t), log: &bytes.Buffer{}, done: make(chan error, 1)}
	n.cmd = exec.Command(c.bin, "serve")
	n.cmd.Env = c.env("MINIKMS_KMIP_ADDR="+n.kmipAddr, "MINIKMS_HTTP_ADDR="+freeAddr(c.t), "MINIKMS_NODE_NAME="+name)
	n.cmd.Stdout, n.cmd.Stderr = n.log, n.log
	require.NoError(c.t, n.cmd.Start())
	go func() { n.done <- n.cmd.Wait() }()
	c.t.Cleanup(func() {
		if n.cmd.ProcessState == nil {
			_ = n.cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-n.done:
			case <-time.After(20 * time.Second):
				_ = n.cmd.Process.Kill()
				<-n.done
			}
		}
		if c.t.Failed() {
			c.t.Logf("node %s log:\n%s", n.name, n.log.String())
		}
	})
	deadline := time.Now().Add(30 * time.Second)
	for {
		conn, err := net.DialTimeout("tcp", n.kmipAddr, time.Second)
		if err == nil {
			conn.Close()
			return n
		}
		select {
		case err := <-n.done:
			c.t.Fatalf("node %s exited: %v\n%s", name, err, n.log.String())
		default:
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("node %s does not listen on %s:\n%s", name, n.kmipAddr, n.log.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// kill stops the node with SIGKILL, as a crash would.
func (n *node) kill(t *testing.T) {
	t.Helper()
	require.NoError(t, n.cmd.Process.Kill())
	<-n.done
}

// rootCA reads the root CA certificate from the store (as the server
// does), to trust the nodes' auto-issued server certificates.
func (c *cluster) rootCA() *x509.Certificate {
	c.t.Helper()
	ctx := c.t.Context()
	st, err := postgres.Open(ctx, c.dbURL)
	require.NoError(c.t, err)
	defer st.Close()
	key, err := hex.DecodeString(c.root)
	require.NoError(c.t, err)
	kr, err := engine.NewSoftKeyring(key)
	require.NoError(c.t, err)
	defer kr.Close()
	eng, err := engine.Open(ctx, engine.Config{Store: st, Keyring: kr})
	require.NoError(c.t, err)
	defer eng.Close()
	root, err := pki.NewAuthority(st, pki.SealedKeys{Sealer: eng}, nil).Root(ctx)
	require.NoError(c.t, err)
	return root.Cert
}

// client connects to a node as a member whose certificate is in dir.
func (c *cluster) client(n *node, member string, root *x509.Certificate) *kmipclient.Client {
	c.t.Helper()
	pool := x509.NewCertPool()
	pool.AddCert(root)
	cert, err := tls.LoadX509KeyPair(filepath.Join(c.dir, member+".crt"), filepath.Join(c.dir, member+".key"))
	require.NoError(c.t, err)
	cl, err := kmipclient.Dial(n.kmipAddr,
		kmipclient.WithTlsConfig(&tls.Config{RootCAs: pool, Certificates: []tls.Certificate{cert}, ServerName: "127.0.0.1", MinVersion: tls.VersionTLS12}),
		kmipclient.WithKmipVersions(okmip.V1_4))
	require.NoError(c.t, err)
	c.t.Cleanup(func() { cl.Close() })
	return cl
}

const usage = okmip.CryptographicUsageEncrypt | okmip.CryptographicUsageDecrypt

func encrypt(ctx context.Context, cl *kmipclient.Client, id string) error {
	_, err := cl.Request(ctx, &payloads.EncryptRequestPayload{UniqueIdentifier: id, Data: []byte("two nodes")})
	return err
}

func TestTwoNodesOnePostgres(t *testing.T) {
	c := newCluster(t)
	ctx := t.Context()

	// Tenant and members, made with the command line on the shared store.
	c.mustMinikms("tenant", "create", "acme")
	c.mustMinikms("member", "issue", "--tenant=acme", "--member=app", "--role=app", "--out="+c.dir)
	c.mustMinikms("member", "issue", "--tenant=acme", "--member=admin", "--role=admin", "--out="+c.dir)
	root := c.rootCA()

	a, b := c.start("node-a"), c.start("node-b")
	appA, appB := c.client(a, "app", root), c.client(b, "app", root)
	adminA := c.client(a, "admin", root)

	// Create on A, Get on B: the same key.
	cr, err := appA.Create().AES(256, usage).ExecContext(ctx)
	require.NoError(t, err)
	gA, err := appA.Get(cr.UniqueIdentifier).ExecContext(ctx)
	require.NoError(t, err)
	gB, err := appB.Get(cr.UniqueIdentifier).ExecContext(ctx)
	require.NoError(t, err, "an object created on A is not readable on B")
	kA, err := gA.Object.(*okmip.SymmetricKey).KeyMaterial()
	require.NoError(t, err)
	kB, err := gB.Object.(*okmip.SymmetricKey).KeyMaterial()
	require.NoError(t, err)
	require.Equal(t, kA, kB)

	// Revoke on A: B, which has the key cached, refuses it within 1 s.
	_, err = appA.Activate(cr.UniqueIdentifier).ExecContext(ctx)
	require.NoError(t, err)
	require.NoError(t, encrypt(ctx, appB, cr.UniqueIdentifier))
	require.NoError(t, encrypt(ctx, appB, cr.UniqueIdentifier))
	_, err = adminA.Revoke(cr.UniqueIdentifier).WithRevocationReasonCode(okmip.RevocationReasonCodeKeyCompromise).ExecContext(ctx)
	require.NoError(t, err)
	revoked := time.Now()
	for {
		err := encrypt(ctx, appB, cr.UniqueIdentifier)
		if err != nil {
			require.Contains(t, err.Error(), "the key is Compromised", "B refused the revoked key for another reason")
			break
		}
		require.Less(t, time.Since(revoked), time.Second, "B still encrypts with a key revoked on A")
		time.Sleep(5 * time.Millisecond)
	}
	t.Logf("revoked on A, refused by B %s after the Revoke returned", time.Since(revoked).Round(time.Microsecond))

	// Create on both nodes; kill -9 A in the middle.
	var (
		mu    sync.Mutex
		acked []string
	)
	var wg sync.WaitGroup
	stopB := make(chan struct{})
	loop := func(cl *kmipclient.Client, stop <-chan struct{}) {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			r, err := cl.Create().AES(128, usage).ExecContext(ctx)
			if err != nil {
				return // the node is gone
			}
			mu.Lock()
			acked = append(acked, r.UniqueIdentifier)
			mu.Unlock()
		}
	}
	for range 4 {
		clA := c.client(a, "app", root)
		wg.Add(1)
		go loop(clA, nil)
	}
	clB := c.client(b, "app", root)
	wg.Add(1)
	go loop(clB, stopB)
	time.Sleep(time.Second)
	a.kill(t)
	time.Sleep(200 * time.Millisecond)
	close(stopB)
	wg.Wait()
	t.Logf("%d creates acknowledged before and around kill -9 of node A", len(acked))
	require.NotEmpty(t, acked)

	// Every acknowledged object is readable through B.
	for _, id := range acked {
		_, err := appB.Get(id).ExecContext(ctx)
		require.NoError(t, err, "acknowledged object %s is not readable through B", id)
	}
	// Nothing is half-written: every object of the tenant (acknowledged or
	// not) reads back complete through B.
	loc, err := appB.Locate().WithMaxItems(100000).ExecContext(ctx)
	require.NoError(t, err)
	assert.GreaterOrEqual(t, len(loc.UniqueIdentifier), len(acked)+1)
	for _, id := range loc.UniqueIdentifier {
		g, err := appB.Get(id).ExecContext(ctx)
		if err != nil && strings.Contains(err.Error(), "WrongKeyLifecycleState") {
			continue
		}
		require.NoError(t, err, "object %s in the store is not readable", id)
		_, err = g.Object.(*okmip.SymmetricKey).KeyMaterial()
		require.NoError(t, err, "object %s has no usable material", id)
	}

	// The audit chain both nodes wrote (A killed mid-append) is one
	// valid chain.
	out := c.mustMinikms("audit", "verify")
	require.Contains(t, out, "audit chain intact")
	t.Logf("audit verify: %s", strings.SplitN(out, "\n", 2)[0])
	nodes := map[string]bool{}
	q := c.mustMinikms("audit", "export")
	for _, nm := range []string{"node-a", "node-b"} {
		nodes[nm] = strings.Contains(q, nm)
	}
	assert.Equal(t, map[string]bool{"node-a": true, "node-b": true}, nodes, "audit records by node")

	// B stops cleanly.
	require.NoError(t, b.cmd.Process.Signal(syscall.SIGTERM))
	select {
	case err := <-b.done:
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			t.Fatalf("node B exited with %v:\n%s", err, b.log.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatal("node B did not stop")
	}
}
