package kmip_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"math/big"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/minikms/minikms/engine"
	"github.com/minikms/minikms/internal/testkms"
	"github.com/minikms/minikms/kmip"
	okmip "github.com/ovh/kmip-go"
	"github.com/ovh/kmip-go/payloads"
	"github.com/ovh/kmip-go/ttlv"
)

func selfSignedClient(t *testing.T) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "acme/admin"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

// TestClientCertificateRefused: a client without a certificate of this
// server's PKI is never served.
func TestClientCertificateRefused(t *testing.T) {
	env := startKMS(t, nil)
	// A second miniKMS has its own root: its member certificates carry a
	// well-formed identity (tenant acme, role admin) under a foreign CA.
	foreignEnv := startKMS(t, nil)
	cases := []struct {
		name  string
		certs []tls.Certificate
	}{
		{"no certificate", nil},
		{"self-signed", []tls.Certificate{selfSignedClient(t)}},
		{"member of a foreign miniKMS", []tls.Certificate{foreignEnv.ClientCertificate(t, "acme", "admin", engine.RoleAdmin)}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			name := uniqueName(t)
			cfg := &tls.Config{RootCAs: env.Roots, ServerName: "127.0.0.1", Certificates: c.certs}
			conn, err := tls.Dial("tcp", env.Addr, cfg)
			if err == nil {
				// TLS 1.3: the client finishes its handshake before the server
				// checks the certificate; the refusal shows on the first read.
				w := &wireConn{t: t, conn: conn}
				conn.SetWriteDeadline(time.Now().Add(5 * time.Second))
				conn.Write(ttlv.MarshalTTLV(newRequest(v14, createAES(nameAttr(name)))))
				raw, err := w.readRaw(5 * time.Second)
				if err == nil {
					t.Fatalf("a refused client was answered: %x", raw)
				}
				if !isClosed(err) {
					t.Fatalf("the connection was not closed: %v", err)
				}
				conn.Close()
			}
			waitConns(t, env, 0, 2*time.Second)
			// The Create was not executed in acme's tenant.
			admin := dialAdmin(t, env)
			if ids := admin.locate(nameAttr(name)); len(ids) != 0 {
				t.Fatalf("a refused client's Create ran: %v", ids)
			}
			admin.conn.Close()
		})
	}
}

func TestIdleTimeout(t *testing.T) {
	const idle = 300 * time.Millisecond
	env := startKMS(t, func(c *kmip.Config) { c.IdleTimeout = idle })
	cases := []struct {
		name  string
		first bool // one request before going idle
	}{
		{"sends nothing", false},
		{"idle after a request", true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			w := dialAdmin(t, env)
			if c.first {
				w.servesOK()
			}
			start := time.Now()
			w.expectClosed(idle + 3*time.Second)
			if d := time.Since(start); d < idle-50*time.Millisecond {
				t.Fatalf("dropped after %v, before the idle timeout %v", d, idle)
			}
			waitConns(t, env, 0, 2*time.Second)
			servesNew(t, env)
		})
	}
	t.Run("active connection is kept", func(t *testing.T) {
		w := dialAdmin(t, env)
		for range 5 {
			time.Sleep(idle / 2)
			w.servesOK()
		}
	})
}

// TestSlowloris: a client that sends a header then trickles the body is
// dropped after ReadTimeout, however steadily it trickles.
func TestSlowloris(t *testing.T) {
	const readTimeout = 400 * time.Millisecond
	env := startKMS(t, func(c *kmip.Config) { c.ReadTimeout = readTimeout; c.IdleTimeout = 30 * time.Second })
	msg := append(header8(okmip.TagRequestMessage, 0x01, 1024), make([]byte, 1024)...)
	cases := []struct {
		name  string
		first int // bytes sent at once, the rest trickles
	}{
		{"header then trickled body", 8},
		// The read deadline runs from the first byte of a message.
		{"trickled header", 1},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			w := dialAdmin(t, env)
			w.write(msg[:c.first])
			rest := msg[c.first:]
			start := time.Now()
			stop := make(chan struct{})
			var wg sync.WaitGroup
			wg.Add(1)
			go func() {
				defer wg.Done()
				tick := time.NewTicker(50 * time.Millisecond)
				defer tick.Stop()
				for {
					select {
					case <-stop:
						return
					case <-tick.C:
						w.conn.SetWriteDeadline(time.Now().Add(time.Second))
						if _, err := w.conn.Write(rest[:1]); err != nil {
							return
						}
						rest = rest[1:]
					}
				}
			}()
			w.expectClosed(readTimeout + 3*time.Second)
			close(stop)
			wg.Wait()
			if d := time.Since(start); d < readTimeout-50*time.Millisecond {
				t.Fatalf("dropped after %v, before the read timeout %v", d, readTimeout)
			}
			waitConns(t, env, 0, 2*time.Second)
			servesNew(t, env)
		})
	}
}

func TestMaxConns(t *testing.T) {
	env := startKMS(t, func(c *kmip.Config) { c.MaxConns = 2 })
	a, b := dialAdmin(t, env), dialAs(t, env, "acme", "app", engine.RoleApp)
	a.servesOK()
	b.servesOK()
	waitConns(t, env, 2, time.Second)
	for range 3 {
		refusedConnection(t, env, "globex", "admin", engine.RoleAdmin)
	}
	a.servesOK()
	b.servesOK()
	a.conn.Close()
	waitConns(t, env, 1, 2*time.Second)
	c := dialAs(t, env, "globex", "admin", engine.RoleAdmin)
	c.servesOK()
}

// refusedConnection asserts a connection as member is closed without
// being served, during or right after the handshake.
func refusedConnection(t *testing.T, env *testkms.Env, tenant, member string, role engine.Role) {
	t.Helper()
	conn, err := tls.Dial("tcp", env.Addr, env.ClientTLS(t, tenant, member, role))
	if err != nil {
		return
	}
	defer conn.Close()
	w := &wireConn{t: t, conn: conn}
	conn.SetWriteDeadline(time.Now().Add(5 * time.Second))
	conn.Write(validRequest())
	raw, err := w.readRaw(5 * time.Second)
	if err == nil {
		t.Fatalf("a connection over the limit was served: %x", raw)
	}
	if !isClosed(err) {
		t.Fatalf("a connection over the limit was not closed: %v", err)
	}
}

func TestMaxConnsPerClient(t *testing.T) {
	env := startKMS(t, func(c *kmip.Config) { c.MaxConnsPerClient = 2 })
	app1, app2 := dialAs(t, env, "acme", "app", engine.RoleApp), dialAs(t, env, "acme", "app", engine.RoleApp)
	app1.servesOK()
	app2.servesOK()
	refusedConnection(t, env, "acme", "app", engine.RoleApp)
	// Another certificate of the same tenant has its own allowance.
	admin := dialAdmin(t, env)
	admin.servesOK()
	app1.servesOK()
	app2.conn.Close()
	waitConns(t, env, 2, 2*time.Second)
	app3 := dialAs(t, env, "acme", "app", engine.RoleApp)
	app3.servesOK()
	refusedConnection(t, env, "acme", "app", engine.RoleApp)
}

// TestShutdown: Shutdown closes idle connections at once, refuses new
// ones, and waits for a request in progress, which is answered.
func TestShutdown(t *testing.T) {
	env := startKMS(t, nil)
	idle := dialAdmin(t, env)
	idle.servesOK()
	busy := dialAs(t, env, "acme", "app", engine.RoleApp)
	busy.servesOK()
	name := uniqueName(t)
	req := ttlv.MarshalTTLV(newRequest(v14, createAES(nameAttr(name))))
	busy.write(req[:len(req)/2])
	// Let the server read the start of the message: the connection is then
	// busy with a request, not idle.
	time.Sleep(250 * time.Millisecond)

	done := make(chan error, 1)
	go func() { done <- env.Server.Shutdown(context.Background()) }()
	idle.expectClosed(2 * time.Second)
	if nc, err := net.DialTimeout("tcp", env.Addr, time.Second); err == nil {
		nc.Close()
		// The listener may still be closing; a TLS client must fail.
		if c, err := tls.Dial("tcp", env.Addr, env.ClientTLS(t, "acme", "admin", engine.RoleAdmin)); err == nil {
			c.Close()
			t.Fatal("a new connection was accepted after Shutdown")
		}
	}
	select {
	case err := <-done:
		t.Fatalf("Shutdown returned (%v) while a request was in progress", err)
	case <-time.After(300 * time.Millisecond):
	}
	busy.write(req[len(req)/2:])
	resp, _ := busy.response()
	wantSuccess(t, resp.BatchItem[0])
	busy.expectClosed(2 * time.Second)
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Shutdown: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Shutdown did not return after the last request")
	}
	if n := env.Server.ActiveConnections(); n != 0 {
		t.Fatalf("%d connections after Shutdown", n)
	}
	// The answered Create is durable.
	res, err := env.Engine.Locate(context.Background(), engine.Principal{Tenant: "acme", Member: "admin", Role: engine.RoleAdmin},
		engine.LocateRequest{Attrs: []engine.Attribute{{Name: engine.AttrName, Value: engine.Name{NameValue: name, NameType: engine.NameUninterpretedText}}}})
	if err != nil || len(res.IDs) != 1 {
		t.Fatalf("the answered Create left %v (%v)", res.IDs, err)
	}
}

// TestShutdownDeadline: when its context ends first, Shutdown closes the
// connections still busy and reports the context's error.
func TestShutdownDeadline(t *testing.T) {
	env := startKMS(t, nil)
	busy := dialAdmin(t, env)
	busy.servesOK()
	busy.write(header8(okmip.TagRequestMessage, 0x01, 64))
	time.Sleep(250 * time.Millisecond)
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	err := env.Server.Shutdown(ctx)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Shutdown: %v, want the context's deadline", err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("Shutdown took %v", d)
	}
	busy.expectClosed(2 * time.Second)
	if n := env.Server.ActiveConnections(); n != 0 {
		t.Fatalf("%d connections after Shutdown", n)
	}
}

// TestConcurrentClients: many connections of several tenants at once,
// each seeing only its own objects (run with -race).
func TestConcurrentClients(t *testing.T) {
	env := startKMS(t, nil)
	tenants := []string{"acme", "globex"}
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for i := range 8 {
		tenant := tenants[i%2]
		w := dialAs(t, env, tenant, "admin", engine.RoleAdmin)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 5 {
				m := newRequest(v14, createAES(), &payloads.ActivateRequestPayload{},
					&payloads.EncryptRequestPayload{CryptographicParameters: gcmParams(), Data: []byte("hello")},
					&payloads.GetAttributesRequestPayload{AttributeName: []okmip.AttributeName{okmip.AttributeNameState}})
				w.conn.SetWriteDeadline(time.Now().Add(10 * time.Second))
				if _, err := w.conn.Write(ttlv.MarshalTTLV(m)); err != nil {
					errs <- err
					return
				}
				raw, err := w.readRaw(20 * time.Second)
				if err != nil {
					errs <- err
					return
				}
				var resp okmip.ResponseMessage
				if err := ttlv.UnmarshalTTLV(raw, &resp); err != nil {
					errs <- err
					return
				}
				for _, bi := range resp.BatchItem {
					if bi.ResultStatus != okmip.ResultStatusSuccess {
						errs <- errors.New(bi.ResultMessage)
						return
					}
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// TestHandshakeTimeout: a TCP client that never starts TLS holds its slot
// only for HandshakeTimeout.
func TestHandshakeTimeout(t *testing.T) {
	const timeout = 300 * time.Millisecond
	env := startKMS(t, func(c *kmip.Config) { c.HandshakeTimeout = timeout; c.MaxConns = 1 })
	nc, err := net.Dial("tcp", env.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	waitConns(t, env, 1, time.Second)
	start := time.Now()
	nc.SetReadDeadline(time.Now().Add(timeout + 3*time.Second))
	var b [1]byte
	if _, err := nc.Read(b[:]); !isClosed(err) {
		t.Fatalf("the silent connection was not closed: %v", err)
	}
	if d := time.Since(start); d < timeout-50*time.Millisecond {
		t.Fatalf("closed after %v, before the handshake timeout", d)
	}
	waitConns(t, env, 0, 2*time.Second)
	servesNew(t, env)
}

// TestWriteTimeout: a client that sends requests but never reads the
// answers is dropped once a write blocks for WriteTimeout.
func TestWriteTimeout(t *testing.T) {
	env := startKMS(t, func(c *kmip.Config) { c.WriteTimeout = 300 * time.Millisecond })
	w := dialAdmin(t, env)
	// One request of MaxBatchItems Query items answers about 100 KiB.
	pls := make([]okmip.OperationPayload, kmip.MaxBatchItems)
	for i := range pls {
		pls[i] = &payloads.QueryRequestPayload{QueryFunction: []okmip.QueryFunction{okmip.QueryFunctionOperations, okmip.QueryFunctionProfiles}}
	}
	req := ttlv.MarshalTTLV(newRequest(v14, pls...))
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			// A write that times out means the server stopped reading: it
			// is blocked writing answers nobody reads.
			w.conn.SetWriteDeadline(time.Now().Add(time.Second))
			if _, err := w.conn.Write(req); err != nil {
				return
			}
		}
	}()
	waitConns(t, env, 0, 20*time.Second)
	close(stop)
	wg.Wait()
	servesNew(t, env)
}
