package postgres

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/minikms/minikms/engine"
)

// maxLabels caps the Names (and, separately, the Groups) of one object.
// The engine's own attribute limit is far lower; this one only keeps a
// malformed object from turning into an unbounded write.
const maxLabels = 1024

// objectColumns is the select list scanObject reads, for table alias o:
// the row, "wrapped IS NULL" (to tell no material from empty material
// whatever the driver does with an empty bytea), and the Names and Groups
// in order, read in the same statement and so from the same snapshot.
const objectColumns = `o.seq, o.id, o.tenant, o.type, o.state, o.created, o.rev, o.attrs, o.wrapped, o.wrapped IS NULL, o.root_version,
	ARRAY(SELECT n.value FROM object_names AS n WHERE n.seq = o.seq ORDER BY n.pos),
	ARRAY(SELECT g.value FROM object_groups AS g WHERE g.seq = o.seq ORDER BY g.pos)`

const (
	sqlGetObject = `SELECT ` + objectColumns + ` FROM objects AS o WHERE o.id = $1 AND o.tenant = $2`

	// sqlCreateObject inserts the object and its labels in one statement
	// (one round trip, one implicit transaction). $10..$15 are the Names,
	// their lookups and first flags, then the same of the Groups.
	sqlCreateObject = `WITH o AS (
		INSERT INTO objects (id, tenant, type, state, created, rev, attrs, wrapped, root_version)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
		RETURNING seq
	), n AS (
		INSERT INTO object_names (seq, pos, tenant, value, lookup, first)
		SELECT o.seq, l.pos - 1, $2, l.value, l.lookup, l.first
		FROM o, unnest($10::bytea[], $11::bytea[], $12::boolean[]) WITH ORDINALITY AS l (value, lookup, first, pos)
	), g AS (
		INSERT INTO object_groups (seq, pos, tenant, value, lookup, first)
		SELECT o.seq, l.pos - 1, $2, l.value, l.lookup, l.first
		FROM o, unnest($13::bytea[], $14::bytea[], $15::boolean[]) WITH ORDINALITY AS l (value, lookup, first, pos)
	)
	SELECT seq FROM o`

	// sqlUpdateObject is the compare-and-swap: it changes the row only if
	// its revision is still $3, and then drops the row's labels (other
	// tables: no conflict between the parts of the statement).
	sqlUpdateObject = `WITH u AS (
		UPDATE objects SET type = $4, state = $5, created = $6, rev = $7, attrs = $8, wrapped = $9, root_version = $10
		WHERE id = $1 AND tenant = $2 AND rev = $3
		RETURNING seq
	), dn AS (
		DELETE FROM object_names WHERE seq IN (SELECT seq FROM u)
	), dg AS (
		DELETE FROM object_groups WHERE seq IN (SELECT seq FROM u)
	)
	SELECT seq FROM u`

	// sqlInsertLabels writes the labels of the object updated by
	// sqlUpdateObject (revision $3 = the new one) in the same transaction.
	// If the update lost, the transaction is rolled back whatever this
	// statement did.
	sqlInsertLabels = `WITH o AS (
		SELECT seq, tenant FROM objects WHERE id = $1 AND tenant = $2 AND rev = $3
	), n AS (
		INSERT INTO object_names (seq, pos, tenant, value, lookup, first)
		SELECT o.seq, l.pos - 1, o.tenant, l.value, l.lookup, l.first
		FROM o, unnest($4::bytea[], $5::bytea[], $6::boolean[]) WITH ORDINALITY AS l (value, lookup, first, pos)
	)
	INSERT INTO object_groups (seq, pos, tenant, value, lookup, first)
	SELECT o.seq, l.pos - 1, o.tenant, l.value, l.lookup, l.first
	FROM o, unnest($7::bytea[], $8::bytea[], $9::boolean[]) WITH ORDINALITY AS l (value, lookup, first, pos)`

	sqlObjectRev = `SELECT rev FROM objects WHERE id = $1 AND tenant = $2`

	// sqlDeleteObject removes the object if its revision is still $3; its
	// labels go with it (ON DELETE CASCADE).
	sqlDeleteObject = `WITH d AS (DELETE FROM objects WHERE id = $1 AND tenant = $2 AND rev = $3 RETURNING seq) SELECT count(*) FROM d`
)

// scanObject reads one row of objectColumns.
func scanObject(row pgx.Row) (*engine.StoredObject, error) {
	var (
		o                 engine.StoredObject
		typ, state, rootV int64
		created           int64
		wrapped           []byte
		wrappedNull       bool
		names, groups     [][]byte
	)
	if err := row.Scan(&o.Seq, &o.ID, &o.Tenant, &typ, &state, &created, &o.Rev, &o.Attrs, &wrapped, &wrappedNull, &rootV, &names, &groups); err != nil {
		return nil, err
	}
	for _, v := range []int64{typ, state, rootV} {
		if v < 0 || v > math.MaxUint32 {
			return nil, fmt.Errorf("postgres: object row %d: value %d out of range", o.Seq, v)
		}
	}
	o.Type = engine.ObjectType(typ)
	o.State = engine.State(state)
	o.RootVersion = uint32(rootV)
	o.Created = time.Unix(created, 0).UTC()
	switch {
	case wrappedNull:
		wrapped = nil
	case wrapped == nil:
		wrapped = []byte{}
	}
	o.Wrapped = wrapped
	o.Attrs = nonNil(o.Attrs)
	o.Names = labelStrings(names)
	o.Groups = labelStrings(groups)
	return &o, nil
}

// labelStrings converts label values; no labels is nil.
func labelStrings(vs [][]byte) []string {
	if len(vs) == 0 {
		return nil
	}
	out := make([]string, len(vs))
	for i, v := range vs {
		out[i] = string(v)
	}
	return out
}

// labelArgs returns the values of one label list, their lookups, and for
// each whether it is the value's first position in the list (the lookup
// index covers only those, so that an object is found once per value).
func labelArgs(vs []string) (values, lookups [][]byte, first []bool) {
	values = make([][]byte, len(vs))
	lookups = make([][]byte, len(vs))
	first = make([]bool, len(vs))
	seen := make(map[string]bool, len(vs))
	for i, v := range vs {
		values[i] = []byte(v)
		lookups[i] = labelLookup(values[i])
		if !seen[v] {
			seen[v] = true
			first[i] = true
		}
	}
	return values, lookups, first
}

const (
	// maxShortLabel is the longest label value that is its own lookup.
	maxShortLabel = 255
	// longLabelPrefix is how much of a longer value its lookup keeps,
	// before the value's SHA-256: 224 + 32 = 256 bytes, longer than any
	// short lookup, so that the two kinds never meet.
	longLabelPrefix = 224
)

// labelLookup is the indexed form of a label value (the lookup column):
// the value itself if short, else a prefix and the SHA-256 of the whole.
// Either way it stands for one value (but for a SHA-256 collision, which
// queries for long values rule out by comparing the value too) and fits
// in a btree entry.
func labelLookup(v []byte) []byte {
	if len(v) <= maxShortLabel {
		return v
	}
	h := sha256.Sum256(v)
	out := make([]byte, 0, longLabelPrefix+len(h))
	return append(append(out, v[:longLabelPrefix]...), h[:]...)
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
	case len(o.Names) > maxLabels || len(o.Groups) > maxLabels:
		return fmt.Errorf("%w: more than %d names or groups on one object", engine.ErrLimit, maxLabels)
	}
	return nil
}

// CreateObject inserts o and sets o.Seq once the insert is durable.
// engine.ErrExists if the identifier is taken, in any tenant.
func (s *Store) CreateObject(ctx context.Context, o *engine.StoredObject) error {
	if err := validateObject(o); err != nil {
		return err
	}
	ctx, cancel, err := s.op(ctx)
	if err != nil {
		return err
	}
	defer cancel()
	names, namesLookup, namesFirst := labelArgs(o.Names)
	groups, groupsLookup, groupsFirst := labelArgs(o.Groups)
	var seq int64
	err = s.pool.QueryRow(ctx, sqlCreateObject,
		o.ID, o.Tenant, int64(o.Type), int64(o.State), o.Created.Unix(), o.Rev, nonNil(o.Attrs), o.Wrapped, int64(o.RootVersion),
		names, namesLookup, namesFirst, groups, groupsLookup, groupsFirst).Scan(&seq)
	if err != nil {
		return s.mapErr(err)
	}
	s.stats.commits.Add(1)
	o.Seq = seq
	return nil
}

// GetObject returns the object of tenant with identifier id, or
// engine.ErrNotFound if there is none in that tenant.
func (s *Store) GetObject(ctx context.Context, tenant, id string) (*engine.StoredObject, error) {
	ctx, cancel, err := s.op(ctx)
	if err != nil {
		return nil, err
	}
	defer cancel()
	o, err := scanObject(s.pool.QueryRow(ctx, sqlGetObject, id, tenant))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, engine.ErrNotFound
	}
	if err != nil {
		return nil, s.mapErr(err)
	}
	return o, nil
}

// UpdateObject replaces the object if its stored revision is prevRev.
// o.Rev must be prevRev+1. engine.ErrConflict if the revision differs,
// engine.ErrNotFound if the object is not in o.Tenant. Seq, ID and Tenant
// never change.
//
// The revision check and the write are one UPDATE: a concurrent update of
// the same object (on any node) holds the row lock until it commits, and
// then this one sees the new revision and matches nothing. The whole
// update is one round trip (begin, update, labels) and the commit.
func (s *Store) UpdateObject(ctx context.Context, o *engine.StoredObject, prevRev int64) error {
	if err := validateObject(o); err != nil {
		return err
	}
	if o.Rev != prevRev+1 {
		return fmt.Errorf("%w: new revision %d does not follow %d", engine.ErrInvalidField, o.Rev, prevRev)
	}
	ctx, cancel, err := s.op(ctx)
	if err != nil {
		return err
	}
	defer cancel()
	names, namesLookup, namesFirst := labelArgs(o.Names)
	groups, groupsLookup, groupsFirst := labelArgs(o.Groups)

	b := &pgx.Batch{}
	b.BeginTx(pgx.TxOptions{})
	b.Queue(sqlUpdateObject, o.ID, o.Tenant, prevRev,
		int64(o.Type), int64(o.State), o.Created.Unix(), o.Rev, nonNil(o.Attrs), o.Wrapped, int64(o.RootVersion))
	b.Queue(sqlInsertLabels, o.ID, o.Tenant, o.Rev, names, namesLookup, namesFirst, groups, groupsLookup, groupsFirst)
	br := s.pool.SendBatch(ctx, b)
	tx := br.Tx()
	if tx != nil {
		defer rollback(ctx, tx)
	}
	_, err = br.Exec() // BEGIN
	var seq int64
	if err == nil {
		err = br.QueryRow().Scan(&seq)
	}
	updated := err == nil
	if updated {
		_, err = br.Exec()
	}
	if cerr := br.Close(); err == nil && updated {
		err = cerr
	}
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return s.mapErr(err)
	}
	if !updated {
		// The revision did not match: a conflict, or no such object. The
		// rollback (deferred) undoes whatever the label statement did.
		return s.missOrConflict(ctx, tx, o.ID, o.Tenant)
	}
	if err := tx.Commit(ctx); err != nil {
		return s.mapErr(err)
	}
	s.stats.commits.Add(1)
	return nil
}

// missOrConflict tells why an update matched no row: ErrConflict if the
// object exists (with another revision), else ErrNotFound.
func (s *Store) missOrConflict(ctx context.Context, tx pgx.Tx, id, tenant string) error {
	if tx != nil {
		if err := tx.Rollback(ctx); err != nil && !errors.Is(err, pgx.ErrTxClosed) {
			return s.mapErr(err)
		}
	}
	var rev int64
	err := s.pool.QueryRow(ctx, sqlObjectRev, id, tenant).Scan(&rev)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return engine.ErrNotFound
	case err != nil:
		return s.mapErr(err)
	}
	return engine.ErrConflict
}

// DeleteObject removes the object if its stored revision is rev
// (engine.ObjectDeleter: undoing a creation). engine.ErrConflict if it
// changed since, engine.ErrNotFound if it is not in tenant. The seq is
// never handed out again; the identifier is free again.
func (s *Store) DeleteObject(ctx context.Context, tenant, id string, rev int64) error {
	ctx, cancel, err := s.op(ctx)
	if err != nil {
		return err
	}
	defer cancel()
	var n int64
	if err := s.pool.QueryRow(ctx, sqlDeleteObject, id, tenant, rev).Scan(&n); err != nil {
		return s.mapErr(err)
	}
	if n == 0 {
		return s.missOrConflict(ctx, nil, id, tenant)
	}
	s.stats.commits.Add(1)
	return nil
}
