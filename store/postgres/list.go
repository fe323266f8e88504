package postgres

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/minikms/minikms/engine"
)

const (
	// maxListLimit caps the objects one ListObjects call returns. It is
	// above the engine's Locate page (512), which stops paging at the first
	// short page.
	maxListLimit = 1000
	// maxFilterValues caps the distinct Types (and States) of one query.
	// KMIP has 9 object types and 6 states.
	maxFilterValues = 64
)

// ListObjects returns q.Tenant's objects matching q, newest first. A query
// for another tenant, or for the empty tenant, never returns objects of a
// tenant other than q.Tenant. The objects and their labels come from one
// statement, so from one snapshot.
func (s *Store) ListObjects(ctx context.Context, q engine.ObjectQuery) ([]*engine.StoredObject, error) {
	query, args, err := listQuery(q)
	if err != nil {
		return nil, err
	}
	ctx, cancel, err := s.op(ctx)
	if err != nil {
		return nil, err
	}
	defer cancel()
	rows, err := s.pool.Query(ctx, query, args...)
	if err != nil {
		return nil, s.mapErr(err)
	}
	defer rows.Close()
	var objs []*engine.StoredObject
	for rows.Next() {
		o, err := scanObject(rows)
		if err != nil {
			return nil, s.mapErr(err)
		}
		objs = append(objs, o)
	}
	if err := rows.Err(); err != nil {
		return nil, s.mapErr(err)
	}
	return objs, nil
}

// listQuery builds the statement for q. Values are always bound, never
// spliced into the text, and the text depends only on which filters q
// uses (and whether a filter has one value or several), so the set of
// texts, each prepared once per connection, stays small.
//
// A Name (or Group) query walks that label's lookup index, (tenant,
// lookup, seq) for first positions, backwards from BeforeSeq: already in
// seq order, no sort, no other tenant's rows. Otherwise the objects
// indexes, (tenant[, type][, state], seq), do the same.
func listQuery(q engine.ObjectQuery) (string, []any, error) {
	types, states := compact(q.Types), compact(q.States)
	if len(types) > maxFilterValues || len(states) > maxFilterValues {
		return "", nil, fmt.Errorf("%w: more than %d object types or states in one query", engine.ErrLimit, maxFilterValues)
	}
	limit := q.Limit
	if limit <= 0 || limit > maxListLimit {
		limit = maxListLimit
	}
	var (
		b    strings.Builder
		args []any
		seq  = "o.seq"
	)
	arg := func(v any) string {
		args = append(args, v)
		return "$" + strconv.Itoa(len(args))
	}
	b.WriteString("SELECT " + objectColumns + " FROM ")
	byLabel := func(table, value string) {
		v := []byte(value)
		t := arg(q.Tenant)
		b.WriteString(table + " AS l JOIN objects AS o ON o.seq = l.seq WHERE l.tenant = " + t +
			" AND l.lookup = " + arg(labelLookup(v)) + " AND l.first AND o.tenant = " + t)
		if len(v) > maxShortLabel {
			b.WriteString(" AND l.value = " + arg(v))
		}
		seq = "l.seq"
	}
	switch {
	case q.Name != "":
		byLabel("object_names", q.Name)
		if q.Group != "" {
			b.WriteString(" AND EXISTS (SELECT 1 FROM object_groups AS g WHERE g.seq = o.seq AND g.value = " + arg([]byte(q.Group)) + ")")
		}
	case q.Group != "":
		byLabel("object_groups", q.Group)
	default:
		b.WriteString("objects AS o WHERE o.tenant = " + arg(q.Tenant))
	}
	if q.BeforeSeq > 0 {
		before := arg(q.BeforeSeq)
		b.WriteString(" AND " + seq + " < " + before)
		if seq != "o.seq" {
			// Also on the objects side: a merge join then starts both
			// backward walks at BeforeSeq, not at the newest object.
			b.WriteString(" AND o.seq < " + before)
		}
	}
	writeIn := func(col string, vs []int64) {
		switch len(vs) {
		case 0:
		case 1:
			b.WriteString(" AND " + col + " = " + arg(vs[0]))
		default:
			b.WriteString(" AND " + col + " = ANY(" + arg(vs) + "::bigint[])")
		}
	}
	writeIn("o.type", types)
	writeIn("o.state", states)
	b.WriteString(" ORDER BY " + seq + " DESC LIMIT " + arg(limit))
	return b.String(), args, nil
}

// compact returns the distinct values of vs, sorted, as int64.
func compact[T engine.ObjectType | engine.State](vs []T) []int64 {
	if len(vs) == 0 {
		return nil
	}
	vs = slices.Clone(vs)
	slices.Sort(vs)
	vs = slices.Compact(vs)
	out := make([]int64, len(vs))
	for i, v := range vs {
		out[i] = int64(v)
	}
	return out
}
