package kmip

import (
	"context"
	"fmt"

	"github.com/minikms/minikms/engine"
	"github.com/ovh/kmip-go"
)

// Batches with the Undo continuation option (KMIP 1.0 §6.7): if an item
// fails, the effects of the items before it are reversed and they answer
// Operation Undone. The session snapshots the object each item names
// before running it, and notes the objects items create; reversal restores
// the snapshots and removes the created objects, newest first.

// creatingOps are the operations whose response names objects they made.
var creatingOps = map[kmip.Operation]bool{
	kmip.OperationCreate: true, kmip.OperationRegister: true, kmip.OperationCreateKeyPair: true,
	kmip.OperationReKey: true, kmip.OperationReKeyKeyPair: true, kmip.OperationDeriveKey: true,
	kmip.OperationCreateSplitKey: true, kmip.OperationJoinSplitKey: true,
}

// notUndoable are operations with effects outside the objects (a
// certificate issued and recorded for authentication): a batch that asks
// to undo them is refused as a whole.
var notUndoable = map[kmip.Operation]string{
	kmip.OperationCertify:   "Certify issues a certificate that is recorded outside the object store",
	kmip.OperationReCertify: "Re-certify issues a certificate that is recorded outside the object store",
}

// undoObject is one object a batch touched.
type undoObject struct {
	snap    *engine.Snapshot // state before the batch; nil when the batch created it
	created bool
	rev     int64 // revision after the batch's last change to it
}

// undoLog records what a batch changed.
type undoLog struct {
	objects map[string]*undoObject
	order   []string         // first touch order
	items   map[int][]string // object ids each item touched
}

func newUndoLog() *undoLog {
	return &undoLog{objects: map[string]*undoObject{}, items: map[int][]string{}}
}

// before snapshots the object item i names, the first time it is named.
func (u *undoLog) before(ctx context.Context, s *session, target string) error {
	if target == "" {
		return nil
	}
	if _, seen := u.objects[target]; seen {
		return nil
	}
	snap, err := s.eng.Snapshot(ctx, s.p, target)
	if err != nil {
		return err
	}
	if snap == nil {
		return nil // absent: the operation fails or does not change it
	}
	u.objects[target] = &undoObject{snap: snap, rev: snap.Rev()}
	u.order = append(u.order, target)
	return nil
}

// after notes what item i changed (its target) and created, with their
// revisions now.
func (u *undoLog) after(ctx context.Context, s *session, i int, op kmip.Operation, target string, payload kmip.OperationPayload) error {
	ids := []string{}
	if target != "" {
		ids = append(ids, target)
	}
	if creatingOps[op] {
		id, details := objectOf(payload)
		for _, c := range []string{id, details["public_key"]} {
			if c == "" || c == target {
				continue
			}
			if _, seen := u.objects[c]; !seen {
				u.objects[c] = &undoObject{created: true}
				u.order = append(u.order, c)
			}
			ids = append(ids, c)
		}
	}
	for _, id := range ids {
		o, ok := u.objects[id]
		if !ok {
			continue
		}
		rev, err := s.eng.CurrentRev(ctx, s.p, id)
		if err != nil {
			return err
		}
		o.rev = rev
		u.items[i] = append(u.items[i], id)
	}
	return nil
}

// rollback reverses the batch, newest object first, and reports which
// items are fully undone.
func (u *undoLog) rollback(ctx context.Context, s *session) map[int]bool {
	failed := map[string]bool{}
	for k := len(u.order) - 1; k >= 0; k-- {
		id := u.order[k]
		o := u.objects[id]
		var err error
		switch {
		case o.created && o.rev != 0:
			err = s.eng.Purge(ctx, s.p, id, o.rev)
		case o.snap != nil:
			err = s.eng.Restore(ctx, o.snap, o.rev)
		}
		if err != nil {
			failed[id] = true
			s.log.Error("undo: an operation of the batch could not be reversed", "object", id, "err", err)
		}
	}
	undone := map[int]bool{}
	for i, ids := range u.items {
		ok := true
		for _, id := range ids {
			ok = ok && !failed[id]
		}
		undone[i] = ok
	}
	return undone
}

// checkUndoable refuses an Undo batch the server cannot reverse.
func (s *session) checkUndoable(items []rawBatchItem) error {
	if !s.eng.CanUndoCreate() {
		return errReason(kmip.ResultReasonFeatureNotSupported, "the Undo batch error continuation option is not supported by this store")
	}
	for _, bi := range items {
		if why, ok := notUndoable[kmip.Operation(bi.operation)]; ok {
			return errReason(kmip.ResultReasonFeatureNotSupported, fmt.Sprintf("the Undo batch error continuation option cannot be honoured: %s", why))
		}
	}
	return nil
}
