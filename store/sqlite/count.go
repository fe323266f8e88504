package sqlite

import (
	"context"
	"database/sql"

	"github.com/minikms/minikms/engine"
)

var _ engine.ObjectCounter = (*Store)(nil)

// CountObjects counts the objects of every tenant by type and state (a
// scan of the objects_by_tenant_type_state index, no table rows).
func (s *Store) CountObjects(ctx context.Context) ([]engine.ObjectCount, error) {
	if s.closed.Load() {
		return nil, ErrClosed
	}
	var out []engine.ObjectCount
	err := s.read(ctx, func(tx *sql.Tx) error {
		rows, err := tx.QueryContext(ctx, `SELECT type, state, count(*) FROM objects GROUP BY type, state ORDER BY type, state`)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var typ, state, n int64
			if err := rows.Scan(&typ, &state, &n); err != nil {
				return err
			}
			out = append(out, engine.ObjectCount{Type: engine.ObjectType(typ), State: engine.State(state), Count: n})
		}
		return rows.Err()
	})
	return out, err
}
