package httpapi

import (
	"bufio"
	"crypto/tls"
	"errors"
	"net"
	"sync"
	"time"
)

// sniffTimeout bounds how long a new connection may take to send its first
// byte; maxSniffing bounds the connections waiting for it (beyond, new
// connections are closed at once).
const (
	sniffTimeout = 10 * time.Second
	maxSniffing  = 1024
)

// Listen wraps ln so that one port serves plain HTTP and HTTPS: a
// connection whose first byte is a TLS handshake record is served over
// TLS with cfg, any other as plain HTTP. http.Server recognises the
// *tls.Conn it gets and fills Request.TLS. The first byte is awaited off
// the accept loop, so slow clients do not hold others up.
func Listen(ln net.Listener, cfg *tls.Config) net.Listener {
	l := &sniffListener{Listener: ln, cfg: cfg, conns: make(chan net.Conn), done: make(chan struct{}), sniffing: map[net.Conn]struct{}{}}
	go l.acceptLoop()
	return l
}

type sniffListener struct {
	net.Listener
	cfg   *tls.Config
	conns chan net.Conn
	done  chan struct{}

	once     sync.Once
	mu       sync.Mutex
	err      error
	closed   bool
	sniffing map[net.Conn]struct{} // waiting for their first byte
}

func (l *sniffListener) acceptLoop() {
	var delay time.Duration
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				delay = min(max(2*delay, 5*time.Millisecond), time.Second)
				select {
				case <-time.After(delay):
					continue
				case <-l.done:
					return
				}
			}
			l.mu.Lock()
			l.err = err
			l.mu.Unlock()
			l.Close()
			return
		}
		delay = 0
		l.mu.Lock()
		admit := !l.closed && len(l.sniffing) < maxSniffing
		if admit {
			l.sniffing[c] = struct{}{}
		}
		l.mu.Unlock()
		if !admit {
			c.Close()
			continue
		}
		go l.sniff(c)
	}
}

func (l *sniffListener) sniff(c net.Conn) {
	c.SetReadDeadline(time.Now().Add(sniffTimeout))
	br := bufio.NewReaderSize(c, 1024)
	first, err := br.Peek(1)
	l.mu.Lock()
	delete(l.sniffing, c)
	l.mu.Unlock()
	if err != nil {
		c.Close()
		return
	}
	c.SetReadDeadline(time.Time{})
	var out net.Conn = &peekedConn{Conn: c, r: br}
	if first[0] == 0x16 { // TLS handshake record
		out = tls.Server(out, l.cfg)
	}
	select {
	case l.conns <- out:
	case <-l.done:
		c.Close()
	}
}

// Accept returns the next sniffed connection.
func (l *sniffListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.done:
		l.mu.Lock()
		defer l.mu.Unlock()
		if l.err != nil {
			return nil, l.err
		}
		return nil, net.ErrClosed
	}
}

// Close stops accepting.
func (l *sniffListener) Close() error {
	var err error
	l.once.Do(func() {
		close(l.done)
		err = l.Listener.Close()
		l.mu.Lock()
		l.closed = true
		for c := range l.sniffing {
			c.Close()
		}
		clear(l.sniffing)
		l.mu.Unlock()
	})
	return err
}

// peekedConn replays the bytes read while sniffing.
type peekedConn struct {
	net.Conn
	r *bufio.Reader
}

func (c *peekedConn) Read(p []byte) (int, error) { return c.r.Read(p) }
