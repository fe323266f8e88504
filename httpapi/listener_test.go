package httpapi_test

import (
	"bufio"
	"crypto/tls"
	"errors"
	"io"
	"log"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/minikms/minikms/engine"
	"github.com/minikms/minikms/httpapi"
	"github.com/minikms/minikms/internal/testkms"
)

func TestListenServesHTTPAndHTTPSOnOnePort(t *testing.T) {
	env := testkms.Start(t, testkms.Options{})
	s := startHTTP(t, env, nil)

	plain := s.plain(t)
	for i := range 2 {
		r := plain.get("/healthz")
		if r.status != http.StatusOK || string(r.body) != "public /healthz tls=false" {
			t.Fatalf("plain HTTP: %d %q", r.status, r.body)
		}
		if r.reused != (i == 1) {
			t.Errorf("plain HTTP request %d: reused=%v (keep-alive over the sniffed connection)", i, r.reused)
		}
	}

	// Health checks, scrapers and CRL fetchers have no certificate.
	anon := s.anonymous(t)
	for i := range 2 {
		r := anon.get("/crl/acme")
		if r.status != http.StatusOK || string(r.body) != "public /crl/acme tls=true" {
			t.Fatalf("HTTPS without a certificate: %d %q", r.status, r.body)
		}
		if r.reused != (i == 1) {
			t.Errorf("HTTPS request %d: reused=%v", i, r.reused)
		}
	}

	r := s.member(t, "acme", "aud1", engine.RoleAuditor).get("/metrics")
	if r.status != http.StatusOK || string(r.body) != "public /metrics tls=true" {
		t.Fatalf("HTTPS with a member certificate: %d %q", r.status, r.body)
	}

	// An HTTPS client speaking to the port gets the server certificate
	// issued by the root; a plain HTTP request gets no TLS.
	conn, err := tls.Dial("tcp", s.addr, &tls.Config{RootCAs: env.Roots, ServerName: "127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if st := conn.ConnectionState(); st.NegotiatedProtocol != "http/1.1" && st.NegotiatedProtocol != "" {
		t.Errorf("negotiated %q", st.NegotiatedProtocol)
	}
	if got := rawGet(t, conn, "/tls"); !strings.Contains(got, "public /tls tls=true") {
		t.Errorf("raw HTTPS response %q", got)
	}
}

// rawGet sends one HTTP/1.1 request with Connection: close on conn and
// returns the whole response.
func rawGet(t testing.TB, conn net.Conn, path string) string {
	t.Helper()
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(conn, "GET "+path+" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(conn)
	if err != nil {
		t.Fatalf("read response: %v (got %q)", err, b)
	}
	return string(b)
}

func TestListenSilentClientDoesNotBlockOthers(t *testing.T) {
	env := testkms.Start(t, testkms.Options{})
	s := startHTTP(t, env, nil)

	// Clients that connect and send nothing (yet).
	var silent []net.Conn
	for range 3 {
		c, err := net.Dial("tcp", s.addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		silent = append(silent, c)
	}

	start := time.Now()
	plain, anon := s.plain(t), s.anonymous(t)
	plain.hc.Timeout, anon.hc.Timeout = 3*time.Second, 3*time.Second
	for range 3 {
		if r := plain.get("/a"); string(r.body) != "public /a tls=false" {
			t.Fatalf("plain: %d %q", r.status, r.body)
		}
		if r := anon.get("/b"); string(r.body) != "public /b tls=true" {
			t.Fatalf("HTTPS: %d %q", r.status, r.body)
		}
	}
	r := s.member(t, "acme", "aud1", engine.RoleAuditor).get("/v1/audit/records")
	if r.status != http.StatusOK {
		t.Fatalf("API: %d %q", r.status, r.body)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("others were served in %v with silent clients connected", d)
	}

	// A silent client that speaks at last is served, the bytes read while
	// sniffing replayed to the HTTP server: plain HTTP sent in two pieces,
	// and a TLS handshake.
	if _, err := io.WriteString(silent[0], "G"); err != nil {
		t.Fatal(err)
	}
	time.Sleep(20 * time.Millisecond) // the sniffer reads the lone byte
	silent[0].SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(silent[0], "ET /late HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	if b, err := io.ReadAll(silent[0]); err != nil || !strings.HasPrefix(string(b), "HTTP/1.1 200") || !strings.HasSuffix(string(b), "public /late tls=false") {
		t.Errorf("late plain request sent in two pieces: %q, %v", b, err)
	}
	tc := tls.Client(silent[1], &tls.Config{RootCAs: env.Roots, ServerName: "127.0.0.1"})
	if got := rawGet(t, tc, "/late-tls"); !strings.HasPrefix(got, "HTTP/1.1 200") || !strings.HasSuffix(got, "public /late-tls tls=true") {
		t.Errorf("late HTTPS request: %q", got)
	}
	// silent[2] stays silent until the test ends.
}

// serveBare serves a public handler through Listen without the API.
func serveBare(t *testing.T, env *testkms.Env) (net.Listener, *http.Server, chan error) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hl := httpapi.Listen(ln, serverTLS(t, env))
	srv := &http.Server{Handler: publicHandler(), ErrorLog: log.New(io.Discard, "", 0)}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(hl) }()
	t.Cleanup(func() { srv.Close(); hl.Close() })
	return hl, srv, done
}

func waitServe(t *testing.T, done chan error) error {
	t.Helper()
	select {
	case err := <-done:
		return err
	case <-time.After(5 * time.Second):
		t.Fatal("Serve did not return")
		return nil
	}
}

func TestListenCloseStopsAcceptAndServe(t *testing.T) {
	env := testkms.Start(t, testkms.Options{})
	hl, _, done := serveBare(t, env)
	addr := hl.Addr().String()
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	hc := &http.Client{Transport: tr, Timeout: 5 * time.Second}
	resp, err := hc.Get("http://" + addr + "/up")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()

	if err := hl.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := waitServe(t, done); !errors.Is(err, net.ErrClosed) {
		t.Errorf("Serve returned %v after the listener closed, want net.ErrClosed", err)
	}
	for range 2 {
		if c, err := hl.Accept(); !errors.Is(err, net.ErrClosed) || c != nil {
			t.Errorf("Accept after Close: %v, %v; want net.ErrClosed", c, err)
		}
	}
	if err := hl.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		c.Close()
		t.Error("the port still accepts connections after Close")
	}
}

func TestListenCloseUnblocksAccept(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hl := httpapi.Listen(ln, &tls.Config{})
	errc := make(chan error, 1)
	go func() {
		c, err := hl.Accept()
		if c != nil {
			c.Close()
		}
		errc <- err
	}()
	time.Sleep(10 * time.Millisecond)
	hl.Close()
	select {
	case err := <-errc:
		if !errors.Is(err, net.ErrClosed) {
			t.Errorf("a pending Accept returned %v, want net.ErrClosed", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("a pending Accept did not return after Close")
	}
}

func TestListenShutdown(t *testing.T) {
	env := testkms.Start(t, testkms.Options{})
	hl, srv, done := serveBare(t, env)
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: env.Roots, ServerName: "127.0.0.1"}}
	defer tr.CloseIdleConnections()
	hc := &http.Client{Transport: tr, Timeout: 5 * time.Second}
	for _, u := range []string{"http://" + hl.Addr().String() + "/", "https://" + hl.Addr().String() + "/"} {
		resp, err := hc.Get(u)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	if err := srv.Shutdown(t.Context()); err != nil {
		t.Fatalf("Shutdown: %v (idle sniffed connections must close)", err)
	}
	if err := waitServe(t, done); !errors.Is(err, http.ErrServerClosed) {
		t.Errorf("Serve returned %v, want http.ErrServerClosed", err)
	}
	if _, err := hl.Accept(); !errors.Is(err, net.ErrClosed) {
		t.Errorf("Accept after Shutdown: %v", err)
	}
}

// TestListenCloseDropsUnsniffedConnections: connections still waiting for
// their first byte when the listener closes are never served; they should
// be closed at once rather than held (with a goroutine each) until the
// sniff timeout.
func TestListenCloseDropsUnsniffedConnections(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hl := httpapi.Listen(ln, &tls.Config{})
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	time.Sleep(20 * time.Millisecond) // accepted, sniffing
	hl.Close()
	c.SetReadDeadline(time.Now().Add(2 * time.Second))
	if _, err := c.Read(make([]byte, 1)); !errors.Is(err, io.EOF) {
		t.Errorf("a connection waiting for its first byte was not closed with the listener: %v", err)
	}
}

// fakeListener hands out what the test feeds it.
type fakeListener struct {
	next   chan acceptResult
	closed chan struct{}
	once   sync.Once
}

type acceptResult struct {
	c   net.Conn
	err error
}

func newFakeListener() *fakeListener {
	return &fakeListener{next: make(chan acceptResult), closed: make(chan struct{})}
}

func (f *fakeListener) Accept() (net.Conn, error) {
	select {
	case r := <-f.next:
		return r.c, r.err
	case <-f.closed:
		return nil, net.ErrClosed
	}
}

// feed makes the next Accept return r; the listener must be accepting.
func (f *fakeListener) feed(t *testing.T, r acceptResult) {
	t.Helper()
	select {
	case f.next <- r:
	case <-f.closed:
		t.Fatalf("the listener was closed; cannot hand it %v", r)
	case <-time.After(5 * time.Second):
		t.Fatalf("nobody accepts from the listener (fed %v)", r)
	}
}

func (f *fakeListener) Close() error {
	f.once.Do(func() { close(f.closed) })
	return nil
}

func (f *fakeListener) Addr() net.Addr { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)} }

func (f *fakeListener) isClosed() bool {
	select {
	case <-f.closed:
		return true
	default:
		return false
	}
}

type timeoutError struct{}

func (timeoutError) Error() string   { return "accept timeout" }
func (timeoutError) Timeout() bool   { return true }
func (timeoutError) Temporary() bool { return true }

// accepted returns the next connection Accept gives, in time.
func accepted(t *testing.T, l net.Listener) net.Conn {
	t.Helper()
	type res struct {
		c   net.Conn
		err error
	}
	ch := make(chan res, 1)
	go func() { c, err := l.Accept(); ch <- res{c, err} }()
	select {
	case r := <-ch:
		if r.err != nil {
			t.Fatalf("Accept: %v", r.err)
		}
		return r.c
	case <-time.After(5 * time.Second):
		t.Fatal("Accept did not return")
		return nil
	}
}

func TestListenAcceptErrors(t *testing.T) {
	f := newFakeListener()
	hl := httpapi.Listen(f, &tls.Config{})
	defer hl.Close()
	if hl.Addr().String() != f.Addr().String() {
		t.Errorf("Addr %v", hl.Addr())
	}

	// Timeouts are retried (with a short delay), not fatal.
	for range 3 {
		f.feed(t, acceptResult{err: timeoutError{}})
	}
	server, client := net.Pipe()
	defer client.Close()
	f.feed(t, acceptResult{c: server})
	go io.WriteString(client, "GET / HTTP/1.0\r\n\r\n")
	c := accepted(t, hl)
	defer c.Close()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, ok := c.(*tls.Conn); ok {
		t.Error("a connection starting with G was served as TLS")
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil || line != "GET / HTTP/1.0\r\n" {
		t.Errorf("the sniffed connection reads %q, %v: the first byte must be replayed", line, err)
	}
	if f.isClosed() {
		t.Fatal("a timeout closed the listener")
	}

	// A TLS ClientHello's first byte (0x16) makes a *tls.Conn.
	server2, client2 := net.Pipe()
	defer client2.Close()
	f.feed(t, acceptResult{c: server2})
	go client2.Write([]byte{0x16, 0x03, 0x01})
	c2 := accepted(t, hl)
	defer c2.Close()
	if _, ok := c2.(*tls.Conn); !ok {
		t.Errorf("a connection starting with 0x16 is a %T, want *tls.Conn", c2)
	}

	// Any other error is fatal: Accept returns it and the listener closes.
	boom := errors.New("boom: too many open files")
	f.feed(t, acceptResult{err: boom})
	if _, err := hl.Accept(); !errors.Is(err, boom) {
		t.Errorf("Accept returned %v, want the listener's error %v", err, boom)
	}
	if !f.isClosed() {
		t.Error("a failed listener was not closed")
	}
	if _, err := hl.Accept(); !errors.Is(err, boom) {
		t.Errorf("Accept again returned %v, want %v", err, boom)
	}
}

func TestListenSniffedConnectionAfterCloseIsClosed(t *testing.T) {
	f := newFakeListener()
	hl := httpapi.Listen(f, &tls.Config{})
	server, client := net.Pipe()
	defer client.Close()
	f.feed(t, acceptResult{c: server})
	hl.Close()
	// Nobody will accept it: it is closed, whether it spoke before the
	// listener closed it (the write fails) or not.
	client.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := client.Write([]byte("G")); err != nil {
		if !errors.Is(err, io.ErrClosedPipe) {
			t.Fatalf("write: %v, want the pipe closed", err)
		}
		return
	}
	if _, err := client.Read(make([]byte, 1)); !errors.Is(err, io.EOF) {
		t.Errorf("read on a connection sniffed after Close: %v, want EOF", err)
	}
}
