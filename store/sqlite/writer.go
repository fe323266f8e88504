package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync/atomic"
)

const (
	// maxGroupSize caps the jobs committed together: a larger group holds
	// the write lock longer and delays its first job's answer.
	maxGroupSize = 256
	// writeQueueSize is how many jobs may wait for the writer before Write
	// blocks (back-pressure).
	writeQueueSize = 4 * maxGroupSize
)

// The savepoint around each job. Jobs may nest savepoints of their own
// under other names.
const (
	sqlSavepoint  = `SAVEPOINT minikms_job`
	sqlRollbackTo = `ROLLBACK TO minikms_job`
	sqlRelease    = `RELEASE minikms_job`
)

// WriteFunc is one write job. It runs on the writer goroutine inside its
// own SAVEPOINT of a group transaction, after the jobs queued before it:
// it sees their writes, and every job sees a database no other writer
// changes meanwhile. If it returns an error, only its own changes are
// rolled back and Write returns that error.
//
// ctx is the writer's, not the caller's: a job that has started always
// runs to the end. fn must not commit or roll back tx, must not keep tx or
// rows past its return, must not call Write (the writer would wait for
// itself), and should be short: the whole group waits for it.
type WriteFunc func(ctx context.Context, tx *sql.Tx) error

// job states. A job goes from pending to exactly one of taken (by the
// writer) or canceled (by its caller), whichever CAS wins.
const (
	jobPending int32 = iota
	jobTaken
	jobCanceled
)

type job struct {
	fn    WriteFunc
	state atomic.Int32
	done  chan error // buffered: the writer never blocks on an answer
}

// writeStats counts the writer's work, for tests and metrics.
type writeStats struct {
	commits atomic.Int64 // group transactions committed
	jobs    atomic.Int64 // jobs run (successful or not)
}

// Write runs fn in the next group transaction and returns once that
// transaction is durable (or has failed). It is how every write of this
// package reaches the database, and how other packages that keep tables in
// the same file (the audit log) make their writes share its group commit.
//
// Cancellation: if ctx ends while the job is still queued, the job is
// withdrawn and will never run, and Write returns ctx.Err(). If the writer
// has already taken the job into a group, the job completes and Write
// waits for and returns its real result, so an error from Write always
// means the job's changes are not in the database, and nil means they are
// durable.
func (s *Store) Write(ctx context.Context, fn WriteFunc) error {
	if fn == nil {
		return errors.New("sqlite: nil write job")
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	j := &job{fn: fn, done: make(chan error, 1)}
	if err := s.enqueue(ctx, j); err != nil {
		return err
	}
	select {
	case err := <-j.done:
		return err
	case <-ctx.Done():
		if j.state.CompareAndSwap(jobPending, jobCanceled) {
			return ctx.Err()
		}
		return <-j.done
	}
}

// enqueue hands j to the writer unless the store is closed.
func (s *Store) enqueue(ctx context.Context, j *job) error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed.Load() {
		return ErrClosed
	}
	select {
	case s.queue <- j:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// runWriter is the writer goroutine. It takes whatever jobs are queued (up
// to maxGroupSize, never waiting for more to arrive), commits them as one
// transaction, answers them, and repeats. When Close closes the queue it
// finishes the jobs still in it and exits.
func (s *Store) runWriter() {
	defer close(s.writerDone)
	group := make([]*job, 0, maxGroupSize)
	for first := range s.queue {
		group = append(group[:0], first)
	fill:
		for len(group) < maxGroupSize {
			select {
			case j, ok := <-s.queue:
				if !ok {
					break fill
				}
				group = append(group, j)
			default:
				break fill
			}
		}
		s.commitGroup(group)
		clear(group)
	}
}

// commitGroup runs the jobs of one group and answers each of them.
func (s *Store) commitGroup(group []*job) {
	live := make([]*job, 0, len(group))
	for _, j := range group {
		if j.state.CompareAndSwap(jobPending, jobTaken) {
			live = append(live, j)
		}
	}
	if len(live) == 0 {
		return
	}
	errs := make([]error, len(live))
	groupErr := s.runGroup(live, errs)
	for i, j := range live {
		err := errs[i]
		if err == nil && groupErr != nil {
			err = groupErr
		}
		j.done <- err
	}
}

// runGroup runs jobs in one transaction, each in its own savepoint, and
// commits once. errs[i] receives job i's own error; the result is the
// error that undid the whole group (begin, savepoint handling, commit), if
// any.
func (s *Store) runGroup(jobs []*job, errs []error) error {
	// The group is not any caller's: no caller's cancellation may abort
	// the jobs of the others.
	ctx := context.Background()
	tx, err := s.wdb.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("sqlite: begin group: %w", mapErr(err))
	}
	for i, j := range jobs {
		s.stats.jobs.Add(1)
		if _, err := s.wstmts.exec(ctx, tx, sqlSavepoint); err != nil {
			_ = tx.Rollback()
			return fmt.Errorf("sqlite: savepoint: %w", mapErr(err))
		}
		if errs[i] = j.fn(ctx, tx); errs[i] != nil {
			if _, err := s.wstmts.exec(ctx, tx, sqlRollbackTo); err != nil {
				_ = tx.Rollback()
				return fmt.Errorf("sqlite: roll back failed job: %w", mapErr(err))
			}
		}
		if _, err := s.wstmts.exec(ctx, tx, sqlRelease); err != nil {
			_ = tx.Rollback()
			return fmt.Errorf("sqlite: release savepoint: %w", mapErr(err))
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("sqlite: commit: %w", mapErr(err))
	}
	s.stats.commits.Add(1)
	return nil
}
