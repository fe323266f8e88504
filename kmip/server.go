package kmip

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/minikms/minikms/audit"
	"github.com/minikms/minikms/engine"
	"github.com/ovh/kmip-go"
)

// Identifier turns the certificates a client presented into a principal
// (implemented by pki.Verifier).
type Identifier interface {
	Verify(rawCerts [][]byte) (engine.Principal, error)
}

// generational is an Identifier whose trust changes over time
// (revocations): connections verified under an older generation are
// verified again before their next request.
type generational interface {
	Generation() uint64
}

// Defaults of the connection limits.
const (
	DefaultHandshakeTimeout  = 10 * time.Second
	DefaultIdleTimeout       = 5 * time.Minute
	DefaultReadTimeout       = 30 * time.Second
	DefaultWriteTimeout      = 30 * time.Second
	DefaultRequestTimeout    = 60 * time.Second
	DefaultMaxConns          = 4096
	DefaultMaxConnsPerClient = 256
)

// Config of a KMIP server. Zero values take the defaults above.
type Config struct {
	Engine     *engine.Engine
	TLS        *tls.Config
	Identifier Identifier
	// Certifier signs certificates for Certify; nil disables it.
	Certifier Certifier
	// Audit records every operation and refused client before the
	// response is sent (nil: no audit log, for tests and tools only).
	Audit  engine.AuditLog
	Logger *slog.Logger
	// Observer receives the server's measurements (nil: none).
	Observer Observer

	MaxMessageSize    int
	HandshakeTimeout  time.Duration
	IdleTimeout       time.Duration // between messages
	ReadTimeout       time.Duration // to receive a message once its header arrived
	WriteTimeout      time.Duration
	RequestTimeout    time.Duration
	MaxConns          int
	MaxConnsPerClient int
}

func (c *Config) defaults() {
	if c.MaxMessageSize <= 0 {
		c.MaxMessageSize = DefaultMaxMessageSize
	}
	setDur := func(d *time.Duration, def time.Duration) {
		if *d <= 0 {
			*d = def
		}
	}
	setDur(&c.HandshakeTimeout, DefaultHandshakeTimeout)
	setDur(&c.IdleTimeout, DefaultIdleTimeout)
	setDur(&c.ReadTimeout, DefaultReadTimeout)
	setDur(&c.WriteTimeout, DefaultWriteTimeout)
	setDur(&c.RequestTimeout, DefaultRequestTimeout)
	if c.MaxConns <= 0 {
		c.MaxConns = DefaultMaxConns
	}
	if c.MaxConnsPerClient <= 0 {
		c.MaxConnsPerClient = DefaultMaxConnsPerClient
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Observer == nil {
		c.Observer = nopObserver{}
	}
}

// Server serves KMIP over mutual TLS.
type Server struct {
	cfg Config
	log *slog.Logger

	closing  atomic.Bool
	wg       sync.WaitGroup
	refusals *audit.Limiter

	mu        sync.Mutex
	listeners map[net.Listener]struct{}
	conns     map[*conn]struct{}
	perClient map[string]int
}

// New returns a server; call Serve.
func New(cfg Config) (*Server, error) {
	if cfg.Engine == nil || cfg.TLS == nil || cfg.Identifier == nil {
		return nil, errors.New("kmip: engine, TLS configuration and identifier are required")
	}
	if err := checkHandlers(); err != nil { // handlers.go
		return nil, err
	}
	cfg.defaults()
	return &Server{cfg: cfg, log: cfg.Logger, refusals: audit.DefaultLimiter(), listeners: map[net.Listener]struct{}{}, conns: map[*conn]struct{}{}, perClient: map[string]int{}}, nil
}

// ErrServerClosed is returned by Serve after Shutdown.
var ErrServerClosed = errors.New("kmip: server closed")

// Serve accepts connections on ln (plain TCP; TLS is done per connection so
// the handshake runs under its own deadline) until Shutdown.
func (s *Server) Serve(ln net.Listener) error {
	s.mu.Lock()
	if s.closing.Load() {
		s.mu.Unlock()
		return ErrServerClosed
	}
	s.listeners[ln] = struct{}{}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.listeners, ln)
		s.mu.Unlock()
	}()
	var backoff time.Duration
	for {
		nc, err := ln.Accept()
		if err != nil {
			if s.closing.Load() {
				return ErrServerClosed
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() || errors.Is(err, os.ErrDeadlineExceeded) || isTemporary(err) {
				backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
				s.log.Warn("accept failed; retrying", "err", err, "backoff", backoff)
				time.Sleep(backoff)
				continue
			}
			return err
		}
		backoff = 0
		c := &conn{srv: s, nc: nc}
		if !s.track(c) {
			s.cfg.Observer.ConnectionRefused(refusalOf(s.closing.Load()))
			s.log.Warn("connection refused: too many connections", "remote", nc.RemoteAddr().String(), "max", s.cfg.MaxConns)
			nc.Close()
			continue
		}
		go c.serve()
	}
}

func isTemporary(err error) bool {
	var t interface{ Temporary() bool }
	return errors.As(err, &t) && t.Temporary()
}

func (s *Server) track(c *conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing.Load() || len(s.conns) >= s.cfg.MaxConns {
		return false
	}
	s.conns[c] = struct{}{}
	s.wg.Add(1)
	s.cfg.Observer.ConnectionOpened()
	return true
}

func (s *Server) untrack(c *conn) {
	s.mu.Lock()
	delete(s.conns, c)
	if c.client != "" {
		if s.perClient[c.client]--; s.perClient[c.client] <= 0 {
			delete(s.perClient, c.client)
		}
	}
	s.mu.Unlock()
	s.cfg.Observer.ConnectionClosed()
	s.wg.Done()
}

// admitClient counts a connection against its certificate's limit.
func (s *Server) admitClient(c *conn, client string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.perClient[client] >= s.cfg.MaxConnsPerClient {
		return false
	}
	s.perClient[client]++
	c.client = client
	return true
}

// ActiveConnections returns the number of open connections.
func (s *Server) ActiveConnections() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.conns)
}

// Shutdown stops accepting, lets requests in progress finish and closes
// idle connections; when ctx ends first, it closes everything.
func (s *Server) Shutdown(ctx context.Context) error {
	s.closing.Store(true)
	s.mu.Lock()
	for ln := range s.listeners {
		ln.Close()
	}
	for c := range s.conns {
		c.wakeIfIdle()
	}
	s.mu.Unlock()
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		s.mu.Lock()
		for c := range s.conns {
			c.nc.Close()
		}
		s.mu.Unlock()
		<-done
		return ctx.Err()
	}
}

// conn is one client connection.
type conn struct {
	srv    *Server
	nc     net.Conn
	client string // certificate hash, for the per-client limit

	mu   sync.Mutex
	idle bool // waiting for the next message header
}

func (c *conn) setIdle(idle bool) {
	c.mu.Lock()
	c.idle = idle
	c.mu.Unlock()
}

func (c *conn) wakeIfIdle() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.idle {
		c.nc.SetReadDeadline(time.Now())
	}
}

func (c *conn) serve() {
	s := c.srv
	defer s.untrack(c)
	defer c.nc.Close()
	remote := c.nc.RemoteAddr().String()
	log := s.log.With("remote", remote)
	defer func() {
		if r := recover(); r != nil {
			log.Error("connection handler panicked; connection closed", "panic", fmt.Sprint(r))
		}
	}()

	tc := tls.Server(c.nc, s.cfg.TLS)
	c.nc = tc
	tc.SetDeadline(time.Now().Add(s.cfg.HandshakeTimeout))
	if err := tc.Handshake(); err != nil {
		if errors.Is(err, io.EOF) {
			// Closed before a ClientHello: a port probe, not an
			// authentication attempt.
			log.Debug("connection closed before the TLS handshake", "err", err)
			return
		}
		log.Warn("TLS handshake failed", "err", err)
		s.cfg.Observer.HandshakeFailed(err)
		s.recordRefusal(remote, peerCerts(tc.ConnectionState()), nil, "TLS handshake failed: "+err.Error())
		return
	}
	tc.SetDeadline(time.Time{})
	state := tc.ConnectionState()
	raw := peerCerts(state)
	gen, genOK := s.cfg.Identifier.(generational)
	var verifiedAt uint64
	if genOK {
		verifiedAt = gen.Generation()
	}
	p, err := s.cfg.Identifier.Verify(raw)
	if err != nil {
		log.Warn("client refused", "err", err)
		s.cfg.Observer.ConnectionRefused(RefusedCertificate)
		s.recordRefusal(remote, raw, nil, "client certificate refused: "+err.Error())
		return
	}
	if !s.admitClient(c, p.CertHash) {
		log.Warn("client refused: too many connections for this certificate", "tenant", p.Tenant, "member", p.Member, "max", s.cfg.MaxConnsPerClient)
		s.cfg.Observer.ConnectionRefused(RefusedMaxPerClient)
		s.recordRefusal(remote, raw, &p, fmt.Sprintf("more than %d connections with this certificate", s.cfg.MaxConnsPerClient))
		return
	}
	log = log.With("tenant", p.Tenant, "member", p.Member)
	log.Debug("client connected", "tls", tls.VersionName(state.Version), "resumed", state.DidResume)

	sess := &session{srv: s, eng: s.cfg.Engine, p: p, remote: remote}
	sess.log = slog.New(requestIDHandler{inner: log.Handler(), id: &sess.reqID}) // observer.go
	defer sess.closeStreams()
	var hdr [ttlvHeader]byte
	for !s.closing.Load() {
		// Deadline first, then idle, then the closing check: a Shutdown
		// that marks this connection after the check finds it idle and
		// its wake-up deadline is not overwritten.
		tc.SetReadDeadline(time.Now().Add(s.cfg.IdleTimeout))
		c.setIdle(true)
		if s.closing.Load() {
			return
		}
		if _, err := io.ReadFull(tc, hdr[:1]); err != nil {
			c.setIdle(false)
			if !errors.Is(err, io.EOF) && !s.closing.Load() {
				log.Debug("connection closed while idle", "err", err)
			}
			return
		}
		c.setIdle(false)
		if genOK && gen.Generation() != verifiedAt {
			// Trust changed (a revocation, a registration removed): this
			// connection's identity must still hold.
			verifiedAt = gen.Generation()
			if np, err := s.cfg.Identifier.Verify(raw); err != nil || np != p {
				log.Warn("client no longer accepted; connection closed", "err", err)
				s.cfg.Observer.ConnectionRefused(RefusedTrustChanged)
				why := "identity changed"
				if err != nil {
					why = err.Error()
				}
				s.recordRefusal(remote, raw, &p, "connection closed: the client certificate is no longer accepted: "+why)
				return
			}
		}
		sess.begin() // a request id (observer.go)
		tc.SetReadDeadline(time.Now().Add(s.cfg.ReadTimeout))
		msg, err := readMessage(io.MultiReader(bytesReader(hdr[:1]), tc), s.cfg.MaxMessageSize, &hdr)
		if err != nil {
			if errors.Is(err, errTooLarge) || errors.Is(err, errFraming) {
				sess.log.Warn("unreadable request; answering and closing", "err", err)
				s.cfg.Observer.Message(kmip.ResultReasonInvalidMessage, 0)
				c.writeResponse(sess, messageError(kmip.V1_0, nil, kmip.ResultReasonInvalidMessage, err.Error()))
			} else {
				log.Debug("read failed; closing", "err", err)
			}
			return
		}
		start := time.Now()
		resp := sess.handleMessage(msg)
		clear(msg)
		s.cfg.Observer.Message(sess.refused, time.Since(start))
		if !c.writeResponse(sess, resp) {
			return
		}
	}
}

func (c *conn) writeResponse(sess *session, resp []byte) bool {
	c.nc.SetWriteDeadline(time.Now().Add(c.srv.cfg.WriteTimeout))
	_, err := c.nc.Write(resp)
	clear(resp)
	sess.scrub()
	if err != nil {
		sess.log.Debug("write failed; closing", "err", err)
		return false
	}
	return true
}

// peerCerts returns the DER certificates a client presented.
func peerCerts(state tls.ConnectionState) [][]byte {
	raw := make([][]byte, len(state.PeerCertificates))
	for i, pc := range state.PeerCertificates {
		raw[i] = pc.Raw
	}
	return raw
}

type byteReader struct{ b []byte }

func bytesReader(b []byte) io.Reader { return &byteReader{b} }

func (r *byteReader) Read(p []byte) (int, error) {
	if len(r.b) == 0 {
		return 0, io.EOF
	}
	n := copy(p, r.b)
	r.b = r.b[n:]
	return n, nil
}
