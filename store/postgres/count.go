package postgres

import (
	"context"

	"github.com/minikms/minikms/engine"
)

var _ engine.ObjectCounter = (*Store)(nil)

// CountObjects counts the objects of every tenant by type and state in one
// aggregate query.
func (s *Store) CountObjects(ctx context.Context) ([]engine.ObjectCount, error) {
	ctx, cancel, err := s.op(ctx)
	if err != nil {
		return nil, err
	}
	defer cancel()
	rows, err := s.pool.Query(ctx, `SELECT type, state, count(*) FROM objects GROUP BY type, state ORDER BY type, state`)
	if err != nil {
		return nil, s.mapErr(err)
	}
	defer rows.Close()
	var out []engine.ObjectCount
	for rows.Next() {
		var typ, state, n int64
		if err := rows.Scan(&typ, &state, &n); err != nil {
			return nil, s.mapErr(err)
		}
		out = append(out, engine.ObjectCount{Type: engine.ObjectType(typ), State: engine.State(state), Count: n})
	}
	if err := rows.Err(); err != nil {
		return nil, s.mapErr(err)
	}
	return out, nil
}
