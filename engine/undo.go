package engine

import (
	"context"
	"errors"
	"fmt"
)

// Undo support for batches sent with the Undo continuation option: before
// each operation the protocol layer takes a Snapshot of the object the
// operation names, and notes the objects it creates; if a later operation
// fails, it reverses them in the opposite order (restore each snapshot,
// remove each created object).
//
// What cannot be reversed: usage counters and GCM invocation counters
// (they may over-count, never under-count), and records kept outside the
// object (audit records, issued certificates). The protocol layer refuses
// Undo for operations whose effects live outside the object.

// Snapshot is an object's stored state before a batch operation.
type Snapshot struct {
	stored *StoredObject
}

// Snapshot returns the current stored state of the caller's object, nil
// when there is none (the operation will fail, or create it).
func (e *Engine) Snapshot(ctx context.Context, p Principal, id string) (*Snapshot, error) {
	if id == "" || len(id) > maxIDLength {
		return nil, nil
	}
	so, err := e.store.GetObject(ctx, p.Tenant, id)
	if errors.Is(err, ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return &Snapshot{stored: so}, nil
}

// CanUndoCreate reports whether created objects can be removed again.
func (e *Engine) CanUndoCreate() bool {
	_, ok := e.store.(ObjectDeleter)
	return ok
}

// Restore puts the object back as it was in s. ourRev is its revision
// after the batch's own changes: if it has another, someone else changed
// it meanwhile, and Restore fails with ErrConflict, leaving it as it is.
func (e *Engine) Restore(ctx context.Context, s *Snapshot, ourRev int64) error {
	so, err := e.store.GetObject(ctx, s.stored.Tenant, s.stored.ID)
	if err != nil {
		return err
	}
	if so.Rev == s.stored.Rev {
		return nil
	}
	if so.Rev != ourRev {
		return fmt.Errorf("%w: object %s was changed by another request during the batch; it cannot be restored", ErrConflict, s.stored.ID)
	}
	back := *s.stored
	back.Rev = so.Rev + 1
	back.Seq = so.Seq
	if err := e.store.UpdateObject(ctx, &back, so.Rev); err != nil {
		return err
	}
	o, err := objectFromStored(&back)
	if err != nil {
		return err
	}
	e.Invalidate(o.Tenant, o.ID)
	e.cacheUpdated(o)
	return nil
}

// Rev is the snapshot's revision.
func (s *Snapshot) Rev() int64 { return s.stored.Rev }

// ID is the snapshot's object.
func (s *Snapshot) ID() string { return s.stored.ID }

// Purge removes an object the batch created, if nothing changed it since
// the batch's own changes (ourRev is its revision after them).
func (e *Engine) Purge(ctx context.Context, p Principal, id string, ourRev int64) error {
	d, ok := e.store.(ObjectDeleter)
	if !ok {
		return errf(ErrNotSupported, "this store cannot remove objects")
	}
	if err := d.DeleteObject(ctx, p.Tenant, id, ourRev); err != nil {
		return err
	}
	e.Invalidate(p.Tenant, id) // the cache zeroizes its material
	return nil
}

// CurrentRev returns an object's stored revision (0 when absent).
func (e *Engine) CurrentRev(ctx context.Context, p Principal, id string) (int64, error) {
	so, err := e.store.GetObject(ctx, p.Tenant, id)
	if errors.Is(err, ErrNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	return so.Rev, nil
}
