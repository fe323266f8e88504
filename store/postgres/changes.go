package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgconn/ctxwatch"

	"github.com/minikms/minikms/engine"
)

var _ engine.ChangeFeed = (*Store)(nil)

// The change feed (engine.ChangeFeed): migration 0004's trigger appends
// every object update or deletion to object_changes and sends it on
// changesChannel. A follower holds one connection of its own (not the
// pool's) that LISTENs, hands each notification to the engine at once,
// and every ChangePoll also reads the rows after the last one it saw (and
// the seqs it has not seen yet below it), which both proves the connection
// alive and replays whatever a broken connection missed. So a change
// reaches every node within milliseconds while the connection is up, and
// within one poll after it comes back.
//
// Seqs are handed out when a transaction writes its row, but become
// visible when it commits: a follower that sees seq 12 before 11 keeps 11
// as a gap and looks for it in every poll until it shows up or gapWait has
// passed (a transaction that rolled back leaves a gap for ever).

const (
	changesChannel  = "minikms_changes"
	identityChannel = "minikms_identity"

	// DefaultChangePoll is how often a follower reads object_changes
	// besides listening.
	DefaultChangePoll = time.Second
	// changeRetention is how long object_changes keeps a row; a follower
	// disconnected for more than half of it cannot be sure to replay
	// every change and purges its engine's cache instead.
	changeRetention = time.Hour
	// pruneEvery is how often a follower prunes old rows (with jitter).
	pruneEvery = time.Minute
	// gapWait is how long an unseen seq below the newest seen is looked
	// for (longer than any write transaction: the store's timeout).
	gapWait = 2 * time.Minute
	// maxGaps bounds the unseen seqs; beyond it the follower declares the
	// changes lost.
	maxGaps = 10_000
	// pollBatch is the most rows one poll query returns.
	pollBatch = 1000
	// maxReconnectWait caps the backoff between reconnection attempts.
	maxReconnectWait = 5 * time.Second
)

const (
	sqlChangesHead  = `SELECT coalesce(max(seq), 0) FROM object_changes`
	sqlChangesPoll  = `SELECT seq, tenant, id, rev FROM object_changes WHERE seq > $1 OR seq = ANY($2::bigint[]) ORDER BY seq LIMIT 1000`
	sqlChangeBySeq  = `SELECT seq, tenant, id, rev FROM object_changes WHERE seq = $1`
	sqlChangesPrune = `DELETE FROM object_changes WHERE changed < now() - make_interval(secs => $1)`
)

// SetChangePoll sets the poll interval of the followers this store starts
// from now on (default DefaultChangePoll).
func (s *Store) SetChangePoll(d time.Duration) {
	s.feedMu.Lock()
	s.changePoll = d
	s.feedMu.Unlock()
}

// SetLogger sets the logger of the change feed.
func (s *Store) SetLogger(l *slog.Logger) {
	s.feedMu.Lock()
	s.log = l
	s.feedMu.Unlock()
}

// IdentityChanged returns a channel that receives (coalesced) when another
// process changed identity records or added a tenant, while a follower
// runs; and after a follower reconnects (something may have been missed).
func (s *Store) IdentityChanged() <-chan struct{} { return s.identityChan() }

func (s *Store) identityChan() chan struct{} {
	s.feedMu.Lock()
	defer s.feedMu.Unlock()
	if s.identityKick == nil {
		s.identityKick = make(chan struct{}, 1)
	}
	return s.identityKick
}

func (s *Store) kickIdentity() {
	ch := s.identityChan()
	select {
	case ch <- struct{}{}:
	default:
	}
}

// FollowChanges implements engine.ChangeFeed.
func (s *Store) FollowChanges(ctx context.Context, h engine.ChangeHandler) (func(), error) {
	if s.closed.Load() {
		return nil, ErrClosed
	}
	s.feedMu.Lock()
	poll, log := s.changePoll, s.log
	s.feedMu.Unlock()
	if poll <= 0 {
		poll = DefaultChangePoll
	}
	if log == nil {
		log = slog.Default()
	}
	cc := s.pool.Config().ConnConfig.Copy()
	// This connection waits for notifications with a deadline: the
	// default watcher (a read deadline) ends the wait and keeps the
	// connection, where the pool's (a cancel request) would not.
	cc.BuildContextWatcherHandler = func(c *pgconn.PgConn) ctxwatch.Handler {
		return &pgconn.DeadlineContextWatcherHandler{Conn: c.Conn()}
	}
	cc.RuntimeParams["application_name"] = "minikms-changes"
	f := &follower{s: s, h: h, cc: cc, poll: poll, log: log, gaps: map[int64]time.Time{}}
	sctx, cancel, err := s.op(ctx)
	if err != nil {
		return nil, err
	}
	err = f.connect(sctx, true)
	cancel()
	if err != nil {
		return nil, fmt.Errorf("%w: postgres change feed: %w", engine.ErrUnavailable, err)
	}
	runCtx, stopRun := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		f.run(runCtx)
	}()
	stop := sync.OnceFunc(func() {
		stopRun()
		<-done
	})
	s.feedMu.Lock()
	s.followers = append(s.followers, stop)
	s.feedMu.Unlock()
	return stop, nil
}

// stopFollowers ends every follower (Close).
func (s *Store) stopFollowers() {
	s.feedMu.Lock()
	fs := s.followers
	s.followers = nil
	s.feedMu.Unlock()
	for _, stop := range fs {
		stop()
	}
}

// follower is one running change feed.
type follower struct {
	s    *Store
	h    engine.ChangeHandler
	cc   *pgx.ConnConfig
	poll time.Duration
	log  *slog.Logger

	conn      *pgx.Conn
	last      int64               // newest seq seen
	gaps      map[int64]time.Time // unseen seqs below last, since when
	lastPoll  time.Time           // last successful poll
	nextPrune time.Time
}

// connect opens the connection, LISTENs, and then either takes the
// current head as its position (initial) or replays what it missed.
func (f *follower) connect(ctx context.Context, initial bool) error {
	conn, err := pgx.ConnectConfig(ctx, f.cc)
	if err != nil {
		return err
	}
	for _, ch := range []string{changesChannel, identityChannel} {
		if _, err := conn.Exec(ctx, "LISTEN "+ch); err != nil {
			closeConn(conn)
			return err
		}
	}
	f.conn = conn
	// LISTEN is in effect: every commit from now on is notified; what
	// committed before is in the table.
	if initial {
		if err := conn.QueryRow(ctx, sqlChangesHead).Scan(&f.last); err != nil {
			f.drop()
			return err
		}
		f.lastPoll = time.Now()
		f.nextPrune = time.Now().Add(jitter(pruneEvery))
		return nil
	}
	if time.Since(f.lastPoll) > changeRetention/2 {
		// Rows we never saw may be pruned already: start afresh.
		var head int64
		if err := conn.QueryRow(ctx, sqlChangesHead).Scan(&head); err != nil {
			f.drop()
			return err
		}
		f.last, f.gaps = head, map[int64]time.Time{}
		f.lastPoll = time.Now()
		f.h.ChangesLost()
	} else if err := f.pollOnce(ctx); err != nil {
		f.drop()
		return err
	}
	f.s.kickIdentity()
	return nil
}

func closeConn(c *pgx.Conn) {
	ctx, cancel := context.WithTimeout(context.Background(), cleanupTimeout)
	defer cancel()
	_ = c.Close(ctx)
}

func (f *follower) drop() {
	if f.conn != nil {
		closeConn(f.conn)
		f.conn = nil
	}
}

func jitter(d time.Duration) time.Duration {
	return d/2 + rand.N(d)
}

// run listens and polls until ctx ends, reconnecting with backoff.
func (f *follower) run(ctx context.Context) {
	defer f.drop()
	wait := 100 * time.Millisecond
	for ctx.Err() == nil {
		if f.conn == nil {
			cctx, cancel := context.WithTimeout(ctx, defaultConnectTimeout+f.poll)
			err := f.connect(cctx, false)
			cancel()
			if err != nil {
				if ctx.Err() != nil {
					return
				}
				f.log.Warn("store change feed: reconnect failed; retrying", "err", err, "retry_in", wait)
				select {
				case <-ctx.Done():
					return
				case <-time.After(wait):
				}
				wait = min(2*wait, maxReconnectWait)
				continue
			}
			f.log.Info("store change feed: reconnected")
			wait = 100 * time.Millisecond
		}
		due := f.lastPoll.Add(f.poll)
		if d := time.Until(due); d > 0 {
			wctx, cancel := context.WithTimeout(ctx, d)
			n, err := f.conn.WaitForNotification(wctx)
			cancel()
			if ctx.Err() != nil {
				return
			}
			if err == nil {
				if err := f.notice(ctx, n); err != nil {
					f.broken(err)
				}
				continue
			}
			if !errors.Is(err, context.DeadlineExceeded) && !pgconn.Timeout(err) {
				f.broken(err)
				continue
			}
		}
		pctx, cancel := context.WithTimeout(ctx, max(5*time.Second, 2*f.poll))
		err := f.pollOnce(pctx)
		if err == nil && time.Now().After(f.nextPrune) {
			err = f.prune(pctx)
		}
		cancel()
		if err != nil && ctx.Err() == nil {
			f.broken(err)
		}
	}
}

func (f *follower) broken(err error) {
	f.log.Warn("store change feed: connection lost; caches are kept coherent by replay once it is back", "err", err)
	f.drop()
}

// notice handles one notification.
func (f *follower) notice(ctx context.Context, n *pgconn.Notification) error {
	switch n.Channel {
	case identityChannel:
		f.s.kickIdentity()
		return nil
	case changesChannel:
	default:
		return nil
	}
	var c struct {
		Seq    int64   `json:"s"`
		Rev    int64   `json:"r"`
		Tenant *string `json:"t"`
		ID     *string `json:"i"`
	}
	if err := json.Unmarshal([]byte(n.Payload), &c); err != nil || c.Seq <= 0 {
		// Not ours, or damaged: the next poll finds the rows anyway.
		return nil
	}
	if c.Tenant == nil || c.ID == nil {
		// Too long for a notification: read the row.
		qctx, cancel := context.WithTimeout(ctx, max(5*time.Second, 2*f.poll))
		defer cancel()
		var tenant, id string
		err := f.conn.QueryRow(qctx, sqlChangeBySeq, c.Seq).Scan(&c.Seq, &tenant, &id, &c.Rev)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil // pruned already
		}
		if err != nil {
			return err
		}
		c.Tenant, c.ID = &tenant, &id
	}
	f.apply(c.Seq, *c.Tenant, *c.ID, c.Rev)
	return nil
}

// apply hands one change to the engine and moves the position.
func (f *follower) apply(seq int64, tenant, id string, rev int64) {
	switch {
	case seq > f.last:
		if missing := seq - f.last - 1; missing > 0 {
			if int64(len(f.gaps))+missing > maxGaps {
				f.gaps = map[int64]time.Time{}
				f.h.ChangesLost()
			} else {
				now := time.Now()
				for s := f.last + 1; s < seq; s++ {
					f.gaps[s] = now
				}
			}
		}
		f.last = seq
	default:
		if _, ok := f.gaps[seq]; !ok {
			return // seen already
		}
		delete(f.gaps, seq)
	}
	f.h.ObjectChanged(tenant, id, rev)
}

// pollOnce reads the rows after the position and the gaps.
func (f *follower) pollOnce(ctx context.Context) error {
	for {
		now := time.Now()
		gaps := make([]int64, 0, len(f.gaps))
		for s, since := range f.gaps {
			if now.Sub(since) > gapWait {
				delete(f.gaps, s)
				continue
			}
			gaps = append(gaps, s)
		}
		rows, err := f.conn.Query(ctx, sqlChangesPoll, f.last, gaps)
		if err != nil {
			return err
		}
		n := 0
		for rows.Next() {
			var (
				seq, rev   int64
				tenant, id string
			)
			if err := rows.Scan(&seq, &tenant, &id, &rev); err != nil {
				rows.Close()
				return err
			}
			f.apply(seq, tenant, id, rev)
			n++
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		if n < pollBatch {
			f.lastPoll = now
			return nil
		}
	}
}

// prune deletes rows older than changeRetention (any node may; they
// agree).
func (f *follower) prune(ctx context.Context) error {
	f.nextPrune = time.Now().Add(jitter(pruneEvery))
	_, err := f.conn.Exec(ctx, sqlChangesPrune, changeRetention.Seconds())
	return err
}
