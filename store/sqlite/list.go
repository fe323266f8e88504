package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"strings"

	"github.com/minikms/minikms/engine"
)

const (
	// maxListLimit caps the objects one ListObjects call returns. It is
	// above the engine's Locate page (512), which stops paging at the first
	// short page.
	maxListLimit = 1000
	// maxFilterValues caps the distinct Types (and States) of one query,
	// each a bound parameter. KMIP has 9 object types and 6 states.
	maxFilterValues = 64
)

// ListObjects returns q.Tenant's objects matching q, newest first. A query
// for another tenant, or for the empty tenant, never returns objects of a
// tenant other than q.Tenant.
func (s *Store) ListObjects(ctx context.Context, q engine.ObjectQuery) ([]*engine.StoredObject, error) {
	if s.closed.Load() {
		return nil, ErrClosed
	}
	query, args, err := listQuery(q)
	if err != nil {
		return nil, err
	}
	// Prepare before the read transaction takes a connection.
	if _, err := s.rstmts.get(ctx, query); err != nil {
		return nil, mapErr(err)
	}
	var objs []*engine.StoredObject
	err = s.read(ctx, func(tx *sql.Tx) error {
		rows, err := s.rstmts.query(ctx, tx, query, args...)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			o, err := scanObject(rows)
			if err != nil {
				return err
			}
			objs = append(objs, o)
		}
		if err := rows.Err(); err != nil {
			return err
		}
		rows.Close()
		return s.readLabels(ctx, tx, objs)
	})
	if err != nil {
		return nil, err
	}
	return objs, nil
}

// listQuery builds the statement for q. Values are always bound, never
// spliced into the text.
//
// The driving index is named (INDEXED BY, and CROSS JOIN to fix the join
// order) instead of left to the planner: with statistics from ANALYZE the
// planner sees one big tenant, estimates that tenant = ? matches half the
// table, and scans the whole table in seq order, which for every small
// tenant means reading every other tenant's rows. Each index named here
// yields the tenant's rows in seq order (an index ends with the rowid), so
// the statement walks it backwards and stops at the limit, with no sort.
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
	b.WriteString("SELECT " + objectColumns + " FROM ")
	switch {
	case q.Name != "":
		b.WriteString("object_names AS l INDEXED BY object_names_lookup CROSS JOIN objects AS o ON o.seq = l.seq" +
			" WHERE l.tenant = ? AND l.value = ? AND l.first = 1 AND o.tenant = ?")
		args = append(args, q.Tenant, q.Name, q.Tenant)
		seq = "l.seq"
		if q.Group != "" {
			b.WriteString(" AND EXISTS (SELECT 1 FROM object_groups AS g WHERE g.seq = o.seq AND g.value = ?)")
			args = append(args, q.Group)
		}
	case q.Group != "":
		b.WriteString("object_groups AS l INDEXED BY object_groups_lookup CROSS JOIN objects AS o ON o.seq = l.seq" +
			" WHERE l.tenant = ? AND l.value = ? AND l.first = 1 AND o.tenant = ?")
		args = append(args, q.Tenant, q.Group, q.Tenant)
		seq = "l.seq"
	default:
		b.WriteString("objects AS o INDEXED BY " + objectsIndex(len(types), len(states)) + " WHERE o.tenant = ?")
		args = append(args, q.Tenant)
	}
	if q.BeforeSeq > 0 {
		b.WriteString(" AND " + seq + " < ?")
		args = append(args, q.BeforeSeq)
	}
	if len(types) > 0 {
		b.WriteString(" AND o.type IN (" + placeholders(len(types)) + ")")
		for _, t := range types {
			args = append(args, int64(t))
		}
	}
	if len(states) > 0 {
		b.WriteString(" AND o.state IN (" + placeholders(len(states)) + ")")
		for _, st := range states {
			args = append(args, int64(st))
		}
	}
	b.WriteString(" ORDER BY " + seq + " DESC LIMIT ?")
	args = append(args, limit)
	return b.String(), args, nil
}

// objectsIndex names the objects index for a query with that many
// distinct types and states. Only an equality on every column before the
// rowid keeps an index in seq order, so a filter with several values is
// checked row by row instead.
func objectsIndex(types, states int) string {
	switch {
	case types == 1 && states == 1:
		return "objects_by_tenant_type_state"
	case types == 1:
		return "objects_by_tenant_type"
	case states == 1:
		return "objects_by_tenant_state"
	default:
		return "objects_by_tenant"
	}
}

// compact returns the distinct values of vs, sorted.
func compact[T engine.ObjectType | engine.State](vs []T) []T {
	if len(vs) == 0 {
		return nil
	}
	vs = slices.Clone(vs)
	slices.Sort(vs)
	return slices.Compact(vs)
}

func placeholders(n int) string {
	return strings.TrimSuffix(strings.Repeat("?, ", n), ", ")
}
