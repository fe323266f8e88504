package loadgen

import (
	"context"
	"crypto/tls"
	"net"
	"sync/atomic"
	"time"
)

// Phases of a run.
const (
	phaseWarmup int32 = iota
	phaseMeasure
	phaseDone
)

// reconnectDelay is the pause after a failed dial, so a server that is
// down is not hammered in a tight loop.
const reconnectDelay = 50 * time.Millisecond

// past is a deadline that has expired: setting it unblocks any read or
// write on a connection.
var past = time.Unix(1, 0)

// worker drives one connection (or, for the connect operations, one
// stream of new connections).
type worker struct {
	r     *runner
	sched []*request
	next  int
	buf   []byte
	// hist is written only by the goroutine that reads responses.
	hist Histogram
	// resumed counts measured handshakes that resumed a session.
	resumed int64

	// Counters read live by the supervisor: all phases, and the
	// measured window.
	okTotal, errTotal       atomic.Int64
	okMeasured, errMeasured atomic.Int64
}

func (w *worker) nextRequest() *request {
	q := w.sched[w.next]
	w.next++
	if w.next == len(w.sched) {
		w.next = 0
	}
	return q
}

// finish accounts one operation that started in phase p0. Operations that
// end after the run stopped are not counted at all; only those that start
// and end inside the measured window are measured.
func (w *worker) finish(p0 int32, start, end time.Time, err error) (measured bool) {
	now := w.r.phase.Load()
	if now == phaseDone {
		return false
	}
	measured = p0 == phaseMeasure && now == phaseMeasure
	if err == nil {
		w.okTotal.Add(1)
		if measured {
			w.okMeasured.Add(1)
			w.hist.Record(end.Sub(start))
		}
		return measured
	}
	w.errTotal.Add(1)
	if measured {
		w.errMeasured.Add(1)
	}
	w.r.errs.record(err, measured)
	return measured
}

func (w *worker) run(ctx context.Context) {
	switch {
	case w.r.cfg.Op.connects():
		w.runConnect(ctx)
	case w.r.cfg.Pipeline > 1:
		w.runPersistent(ctx, w.pipeline)
	default:
		w.runPersistent(ctx, w.serial)
	}
}

// dial opens a TLS connection and completes the handshake within the
// configured timeout.
func dial(ctx context.Context, cfg Config, tlsCfg *tls.Config) (*tls.Conn, error) {
	d := tls.Dialer{NetDialer: &net.Dialer{Timeout: cfg.Timeout}, Config: tlsCfg}
	c, err := d.DialContext(ctx, "tcp", cfg.Addr)
	if err != nil {
		return nil, err
	}
	return c.(*tls.Conn), nil
}

// sleep waits for d or until ctx ends.
func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}

// runPersistent keeps one connection open and hands it to serve until
// the run ends; a connection that fails is replaced.
func (w *worker) runPersistent(ctx context.Context, serve func(context.Context, *tls.Conn)) {
	for ctx.Err() == nil {
		p0 := w.r.phase.Load()
		t := time.Now()
		conn, err := dial(ctx, w.r.cfg, w.r.tls)
		if err != nil {
			if ctx.Err() == nil {
				w.finish(p0, t, t, err)
				sleep(ctx, reconnectDelay)
			}
			continue
		}
		// Ending the run unblocks any read or write at once.
		stop := context.AfterFunc(ctx, func() { conn.SetDeadline(past) })
		serve(ctx, conn)
		stop()
		conn.Close()
	}
}

// serial sends one request at a time until the connection fails or the
// run ends.
func (w *worker) serial(ctx context.Context, conn *tls.Conn) {
	for ctx.Err() == nil {
		q := w.nextRequest()
		// A request made per send (certify) is made before the clock starts.
		raw, err := q.bytes()
		p0 := w.r.phase.Load()
		start := time.Now()
		if err == nil {
			err = w.roundTrip(ctx, conn, q, raw)
		}
		end := time.Now()
		if ctx.Err() != nil {
			return
		}
		w.finish(p0, start, end, err)
		if err != nil && fatalForConn(err) {
			return
		}
	}
}

// roundTrip writes one encoded request of q and reads and checks its answer.
func (w *worker) roundTrip(ctx context.Context, conn *tls.Conn, q *request, raw []byte) error {
	conn.SetDeadline(time.Now().Add(w.r.cfg.Timeout))
	if err := ctx.Err(); err != nil {
		// Checked after setting the deadline: a stop that came earlier
		// may have had its expired deadline overwritten.
		return err
	}
	if _, err := conn.Write(raw); err != nil {
		return err
	}
	var err error
	if w.buf, err = readFrame(conn, w.buf); err != nil {
		return err
	}
	return q.verify(w.buf)
}

// sent is a request in flight on a pipelined connection.
type sent struct {
	q     *request
	p0    int32
	start time.Time
}

// pipeline keeps up to Pipeline requests in flight: this goroutine writes,
// another reads the answers, which come in request order. A token in slots
// is taken per request and returned when its answer is read.
func (w *worker) pipeline(ctx context.Context, conn *tls.Conn) {
	n := w.r.cfg.Pipeline
	slots := make(chan struct{}, n)
	queue := make(chan sent, n)
	stopping := make(chan struct{})
	readDone := make(chan struct{})
	go func() {
		defer close(readDone)
		w.readAnswers(ctx, conn, queue, slots, stopping)
	}()
	defer func() {
		close(stopping)
		conn.SetDeadline(past)
		<-readDone
	}()
	for ctx.Err() == nil {
		select {
		case slots <- struct{}{}:
		case <-readDone:
			return
		case <-ctx.Done():
			return
		}
		q := w.nextRequest()
		raw, err := q.bytes()
		if err != nil {
			// Nothing was sent: count it and give the slot back.
			now := time.Now()
			w.finish(w.r.phase.Load(), now, now, err)
			<-slots
			continue
		}
		s := sent{q: q, p0: w.r.phase.Load(), start: time.Now()}
		queue <- s // never blocks: there are only n tokens
		conn.SetWriteDeadline(time.Now().Add(w.r.cfg.Timeout))
		if ctx.Err() != nil {
			return
		}
		if _, err := conn.Write(raw); err != nil {
			if ctx.Err() == nil {
				w.finish(s.p0, s.start, time.Now(), err)
			}
			return
		}
	}
}

// readAnswers reads and checks answers in order until the connection fails
// or the writer stops.
func (w *worker) readAnswers(ctx context.Context, conn *tls.Conn, queue <-chan sent, slots <-chan struct{}, stopping <-chan struct{}) {
	// On the way out, unblock a writer waiting on a full socket.
	defer conn.SetDeadline(past)
	for {
		var s sent
		select {
		case s = <-queue:
		case <-stopping:
			return
		}
		conn.SetReadDeadline(time.Now().Add(w.r.cfg.Timeout))
		select {
		case <-stopping:
			return
		default:
		}
		if ctx.Err() != nil {
			return
		}
		var err error
		w.buf, err = readFrame(conn, w.buf)
		end := time.Now()
		if err == nil {
			err = s.q.verify(w.buf)
		}
		select {
		case <-stopping:
			return // the writer failed first and counted it
		default:
		}
		if ctx.Err() != nil {
			return
		}
		w.finish(s.p0, s.start, end, err)
		if err != nil && fatalForConn(err) {
			return
		}
		<-slots
	}
}

// runConnect measures new connections: each operation is a dial, a full
// (or, with a session cache, resumed) mutual-TLS handshake, one Query
// round trip and a close.
func (w *worker) runConnect(ctx context.Context) {
	q := w.sched[0]
	for ctx.Err() == nil {
		p0 := w.r.phase.Load()
		start := time.Now()
		resumed, dialed, err := w.connectOnce(ctx, q)
		end := time.Now()
		if ctx.Err() != nil {
			return
		}
		if w.finish(p0, start, end, err) && err == nil && resumed {
			w.resumed++
		}
		if !dialed {
			sleep(ctx, reconnectDelay)
		}
	}
}

func (w *worker) connectOnce(ctx context.Context, q *request) (resumed, dialed bool, err error) {
	conn, err := dial(ctx, w.r.cfg, w.r.tls)
	if err != nil {
		return false, false, err
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(past) })
	defer stop()
	// Reading the answer also processes the TLS 1.3 session ticket the
	// server sent after the handshake, so the next dial can resume.
	err = w.roundTrip(ctx, conn, q, q.raw)
	return conn.ConnectionState().DidResume, true, err
}
