package audit

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"sync"
	"time"

	"github.com/minikms/minikms/engine"
)

// Log appends events to the chain. It implements engine.AuditLog.
type Log struct {
	store engine.AuditStore
	node  string
	now   func() time.Time

	mu      sync.Mutex
	lastErr error
	failed  time.Time
	// withheld holds events whose append failed: the client got an error
	// instead of the result, but a change the action made may already
	// have been committed. Probe appends them, marked, once the store
	// recovers; a process that dies before then loses them (the objects'
	// own timestamps still show the changes).
	withheld []engine.AuditEvent
	dropped  int // events beyond maxWithheld

	// Batching: concurrent Records share one append (one store write, one
	// head read, one commit). The caller that finds no append in progress
	// leads: it appends everything queued, then hands the lead to the
	// first caller that queued meanwhile.
	qmu    sync.Mutex
	queue  []*waiter
	active bool
}

// waiter is a Record call in the queue.
type waiter struct {
	events []engine.AuditEvent
	done   chan error    // the outcome of its events
	lead   chan struct{} // it is to lead the next append
}

var _ engine.AuditLog = (*Log)(nil)

// maxWithheld bounds the events kept while appends fail.
const maxWithheld = 10_000

// NewLog returns a log appending to store; node names this server in
// every record.
func NewLog(store engine.AuditStore, node string) *Log {
	return &Log{store: store, node: node, now: time.Now}
}

// ErrUnavailable wraps every failure to make events durable.
var ErrUnavailable = errors.New("audit log unavailable")

// Record appends the events, in order, and returns once they are durable.
// On error none is recorded and the caller must fail the action. ctx is
// not used to abandon an append once queued: the events of concurrent
// callers share it.
func (l *Log) Record(ctx context.Context, events []engine.AuditEvent) error {
	if len(events) == 0 {
		return nil
	}
	now := l.now().UTC().Truncate(timePrecision)
	for i := range events {
		if err := validate(&events[i]); err != nil {
			return fmt.Errorf("%w: %v", ErrUnavailable, err)
		}
		if events[i].Time.IsZero() {
			events[i].Time = now
		}
		events[i].Time = events[i].Time.UTC().Truncate(timePrecision)
	}
	if err := l.batch(events); err != nil {
		return fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	return nil
}

// appendTimeout bounds one batched append. It is not any caller's
// context: one caller giving up must not fail the others' records.
const appendTimeout = 30 * time.Second

// batch queues events and returns once the append that carries them
// ended.
func (l *Log) batch(events []engine.AuditEvent) error {
	w := &waiter{events: events, done: make(chan error, 1), lead: make(chan struct{}, 1)}
	l.qmu.Lock()
	l.queue = append(l.queue, w)
	leader := !l.active
	l.active = true
	l.qmu.Unlock()
	if !leader {
		select {
		case err := <-w.done:
			return err
		case <-w.lead:
		}
	}
	// Lead: take the queue (this caller's events are in it), append it.
	l.qmu.Lock()
	group := l.queue
	l.queue = nil
	l.qmu.Unlock()
	var all []engine.AuditEvent
	if len(group) == 1 {
		all = group[0].events
	} else {
		n := 0
		for _, g := range group {
			n += len(g.events)
		}
		all = make([]engine.AuditEvent, 0, n)
		for _, g := range group {
			all = append(all, g.events...)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), appendTimeout)
	err := l.append(ctx, all)
	cancel()
	l.mu.Lock()
	if err != nil {
		l.failing(err)
		for _, e := range all {
			l.withhold(e)
		}
	} else {
		l.lastErr = nil
	}
	l.mu.Unlock()
	for _, g := range group {
		if g != w {
			g.done <- err
		}
	}
	// Hand over: the first caller queued meanwhile leads the next append.
	l.qmu.Lock()
	if len(l.queue) > 0 {
		l.queue[0].lead <- struct{}{}
	} else {
		l.active = false
	}
	l.qmu.Unlock()
	return err
}

// append extends the chain with events in one store write.
func (l *Log) append(ctx context.Context, events []engine.AuditEvent) error {
	return l.store.AppendAudit(ctx, func(head engine.AuditHead) ([]engine.AuditRecord, error) {
		prev := head.Hash
		if head.Seq == 0 {
			prev = Genesis
		}
		out := make([]engine.AuditRecord, len(events))
		for i, e := range events {
			r := engine.AuditRecord{Seq: head.Seq + int64(i) + 1, Node: l.node, AuditEvent: e, PrevHash: bytes.Clone(prev)}
			r.Hash = Hash(&r)
			prev = r.Hash
			out[i] = r
		}
		return out, nil
	})
}

// failing notes a failed append; l.mu is held.
func (l *Log) failing(err error) {
	if l.lastErr == nil {
		l.failed = l.now()
	}
	l.lastErr = err
}

// withhold keeps e for Probe, marked; l.mu is held.
func (l *Log) withhold(e engine.AuditEvent) {
	if len(l.withheld) >= maxWithheld {
		l.dropped++
		return
	}
	d := make(map[string]string, len(e.Details)+1)
	maps.Copy(d, e.Details)
	d["response"] = "withheld: the audit log was unavailable"
	e.Details = d
	l.withheld = append(l.withheld, e)
}

// Healthy returns nil while appends succeed, else the last failure: the
// server is not ready, and performs no operation, while its audit log
// cannot record.
func (l *Log) Healthy() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.lastErr != nil {
		return fmt.Errorf("audit appends failing since %s: %v", l.failed.UTC().Format(time.RFC3339), l.lastErr)
	}
	return nil
}

// Probe retries after a failure, so the log recovers when the store does
// even though no request arrives (a server that is not ready gets none).
// It appends the withheld events and a record of the outage.
func (l *Log) Probe(ctx context.Context) error {
	l.mu.Lock()
	if l.lastErr == nil {
		l.mu.Unlock()
		return nil
	}
	events, dropped, since := l.withheld, l.dropped, l.failed
	l.withheld, l.dropped = nil, 0
	l.mu.Unlock()

	all := append(events[:len(events):len(events)], engine.AuditEvent{
		Time: l.now().UTC().Truncate(timePrecision), Action: "audit.recovered", Status: StatusSuccess,
		Details: map[string]string{
			"failing_since":   since.UTC().Format(time.RFC3339Nano),
			"withheld_events": fmt.Sprint(len(events)),
			"lost_events":     fmt.Sprint(dropped),
		}})
	err := l.append(ctx, all)
	l.mu.Lock()
	defer l.mu.Unlock()
	if err != nil {
		l.failing(err)
		l.withheld = append(events, l.withheld...)
		l.dropped += dropped
		return err
	}
	l.lastErr = nil
	return nil
}
