package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/minikms/minikms/engine"
)

// objectColumns is the select list scanObject reads, for table alias o.
// "wrapped IS NULL" tells a NULL (no material) from an empty blob, which
// the driver returns alike as a nil slice.
const objectColumns = `o.seq, o.id, o.tenant, o.type, o.state, o.created, o.rev, o.attrs, o.wrapped, o.wrapped IS NULL, o.root_version`

const (
	sqlGetObject    = `SELECT ` + objectColumns + ` FROM objects AS o WHERE o.id = ? AND o.tenant = ?`
	sqlInsertObject = `INSERT INTO objects (id, tenant, type, state, created, rev, attrs, wrapped, root_version)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`
	sqlObjectRev    = `SELECT seq, rev FROM objects WHERE id = ? AND tenant = ?`
	sqlUpdateObject = `UPDATE objects SET type = ?, state = ?, created = ?, rev = ?, attrs = ?, wrapped = ?, root_version = ?
		WHERE seq = ?`
	sqlDeleteObject = `DELETE FROM objects WHERE seq = ?`
)

type rowScanner interface {
	Scan(dest ...any) error
}

// scanObject reads one row of objectColumns. Names and Groups are filled
// separately (readLabels).
func scanObject(sc rowScanner) (*engine.StoredObject, error) {
	var (
		o                 engine.StoredObject
		typ, state, rootV int64
		created           int64
		wrapped           []byte
		wrappedNull       bool
	)
	if err := sc.Scan(&o.Seq, &o.ID, &o.Tenant, &typ, &state, &created, &o.Rev, &o.Attrs, &wrapped, &wrappedNull, &rootV); err != nil {
		return nil, err
	}
	for _, v := range []int64{typ, state, rootV} {
		if v < 0 || v > math.MaxUint32 {
			return nil, fmt.Errorf("sqlite: object row %d: value %d out of range", o.Seq, v)
		}
	}
	o.Type = engine.ObjectType(typ)
	o.State = engine.State(state)
	o.RootVersion = uint32(rootV)
	o.Created = time.Unix(created, 0).UTC()
	if !wrappedNull && wrapped == nil {
		wrapped = []byte{}
	}
	o.Wrapped = wrapped
	if o.Attrs == nil {
		o.Attrs = []byte{}
	}
	return &o, nil
}

// validateObject checks what the schema relies on before a write.
func validateObject(o *engine.StoredObject) error {
	switch {
	case o == nil:
		return fmt.Errorf("%w: no object", engine.ErrMissingData)
	case o.Tenant == "":
		return fmt.Errorf("%w: object has no tenant", engine.ErrMissingData)
	case o.ID == "":
		return fmt.Errorf("%w: object has no unique identifier", engine.ErrMissingData)
	case o.Rev < 1:
		return fmt.Errorf("%w: object revision %d is below 1", engine.ErrInvalidField, o.Rev)
	}
	return validateLabels(o)
}

// attrsValue is never NULL: the column is NOT NULL.
func attrsValue(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}

// CreateObject inserts o and sets o.Seq once the insert is durable.
// engine.ErrExists if the identifier is taken, in any tenant.
func (s *Store) CreateObject(ctx context.Context, o *engine.StoredObject) error {
	if err := validateObject(o); err != nil {
		return err
	}
	var seq int64
	err := s.Write(ctx, func(ctx context.Context, tx *sql.Tx) (err error) {
		seq, err = s.insertObject(ctx, tx, o)
		return err
	})
	if err != nil {
		return err
	}
	o.Seq = seq
	return nil
}

// insertObject inserts a validated o with its labels and returns its seq.
func (s *Store) insertObject(ctx context.Context, tx *sql.Tx, o *engine.StoredObject) (int64, error) {
	res, err := s.wstmts.exec(ctx, tx, sqlInsertObject,
		o.ID, o.Tenant, int64(o.Type), int64(o.State), o.Created.Unix(), o.Rev, attrsValue(o.Attrs), o.Wrapped, int64(o.RootVersion))
	if err != nil {
		return 0, mapErr(err)
	}
	seq, err := res.LastInsertId()
	if err != nil {
		return 0, err
	}
	return seq, s.writeLabels(ctx, tx, seq, o)
}

// GetObject returns the object of tenant with identifier id, or
// engine.ErrNotFound if there is none in that tenant.
func (s *Store) GetObject(ctx context.Context, tenant, id string) (*engine.StoredObject, error) {
	if s.closed.Load() {
		return nil, ErrClosed
	}
	var o *engine.StoredObject
	err := s.read(ctx, func(tx *sql.Tx) error {
		var err error
		o, err = scanObject(s.rstmts.queryRow(ctx, tx, sqlGetObject, id, tenant))
		if errors.Is(err, sql.ErrNoRows) {
			return engine.ErrNotFound
		}
		if err != nil {
			return err
		}
		return s.readLabels(ctx, tx, []*engine.StoredObject{o})
	})
	if err != nil {
		return nil, err
	}
	return o, nil
}

// UpdateObject replaces the object if its stored revision is prevRev.
// o.Rev must be prevRev+1. engine.ErrConflict if the revision differs,
// engine.ErrNotFound if the object is not in o.Tenant. Seq, ID and Tenant
// never change.
func (s *Store) UpdateObject(ctx context.Context, o *engine.StoredObject, prevRev int64) error {
	if err := validateObject(o); err != nil {
		return err
	}
	if o.Rev != prevRev+1 {
		return fmt.Errorf("%w: new revision %d does not follow %d", engine.ErrInvalidField, o.Rev, prevRev)
	}
	return s.Write(ctx, func(ctx context.Context, tx *sql.Tx) error {
		var seq, rev int64
		err := s.wstmts.queryRow(ctx, tx, sqlObjectRev, o.ID, o.Tenant).Scan(&seq, &rev)
		if errors.Is(err, sql.ErrNoRows) {
			return engine.ErrNotFound
		}
		if err != nil {
			return err
		}
		if rev != prevRev {
			return engine.ErrConflict
		}
		if _, err := s.wstmts.exec(ctx, tx, sqlUpdateObject, int64(o.Type), int64(o.State), o.Created.Unix(), o.Rev, attrsValue(o.Attrs), o.Wrapped, int64(o.RootVersion), seq); err != nil {
			return mapErr(err)
		}
		if err := s.deleteLabels(ctx, tx, seq); err != nil {
			return err
		}
		return s.writeLabels(ctx, tx, seq, o)
	})
}

// DeleteObject removes the object if its stored revision is rev
// (engine.ObjectDeleter: undoing a creation). engine.ErrConflict if it
// changed since, engine.ErrNotFound if it is not in tenant.
func (s *Store) DeleteObject(ctx context.Context, tenant, id string, rev int64) error {
	return s.Write(ctx, func(ctx context.Context, tx *sql.Tx) error {
		var seq, cur int64
		err := s.wstmts.queryRow(ctx, tx, sqlObjectRev, id, tenant).Scan(&seq, &cur)
		if errors.Is(err, sql.ErrNoRows) {
			return engine.ErrNotFound
		}
		if err != nil {
			return err
		}
		if cur != rev {
			return engine.ErrConflict
		}
		if err := s.deleteLabels(ctx, tx, seq); err != nil {
			return err
		}
		_, err = s.wstmts.exec(ctx, tx, sqlDeleteObject, seq)
		return mapErr(err)
	})
}

// read runs fn in a read transaction on the read pool, so that every
// statement of fn sees the same snapshot.
func (s *Store) read(ctx context.Context, fn func(tx *sql.Tx) error) error {
	tx, err := s.rdb.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return mapErr(err)
	}
	defer tx.Rollback() //nolint:errcheck // read-only: nothing to lose
	return mapErr(fn(tx))
}
