package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"strconv"

	"github.com/minikms/minikms/engine"
)

// Labels are the values of the multi-valued Name and Object Group
// attributes, kept in object_names and object_groups with their position
// so that their order round-trips, and a first flag so that the lookup
// index lists an object once even if a value repeats.

// maxLabels caps the Names (and, separately, the Groups) of one object.
// The engine's own attribute limit is far lower; this one only keeps a
// malformed object from turning into an unbounded write.
const maxLabels = 1024

// label kinds, in the order readLabels reports them.
const (
	kindName  = 0
	kindGroup = 1
)

const (
	sqlInsertName   = `INSERT INTO object_names (seq, pos, tenant, value, first) VALUES (?, ?, ?, ?, ?)`
	sqlInsertGroup  = `INSERT INTO object_groups (seq, pos, tenant, value, first) VALUES (?, ?, ?, ?, ?)`
	sqlDeleteNames  = `DELETE FROM object_names WHERE seq = ?`
	sqlDeleteGroups = `DELETE FROM object_groups WHERE seq = ?`

	// sqlLabelsOf reads the labels of one object; sqlLabelsOfMany those of
	// the objects whose seqs are in a JSON array, so that the text (and
	// its prepared statement) is the same for any number of objects.
	sqlLabelsOf = `SELECT seq, 0 AS kind, pos, value FROM object_names WHERE seq = ?1
		UNION ALL SELECT seq, 1, pos, value FROM object_groups WHERE seq = ?1
		ORDER BY 2, 3`
	sqlLabelsOfMany = `SELECT seq, 0 AS kind, pos, value FROM object_names WHERE seq IN (SELECT value FROM json_each(?1))
		UNION ALL SELECT seq, 1, pos, value FROM object_groups WHERE seq IN (SELECT value FROM json_each(?1))
		ORDER BY 1, 2, 3`
)

func validateLabels(o *engine.StoredObject) error {
	if len(o.Names) > maxLabels || len(o.Groups) > maxLabels {
		return fmt.Errorf("%w: more than %d names or groups on one object", engine.ErrLimit, maxLabels)
	}
	return nil
}

// writeLabels inserts o's Names and Groups for the object row seq.
func (s *Store) writeLabels(ctx context.Context, tx *sql.Tx, seq int64, o *engine.StoredObject) error {
	for _, l := range []struct {
		insert string
		values []string
	}{{sqlInsertName, o.Names}, {sqlInsertGroup, o.Groups}} {
		var seen map[string]bool
		for pos, v := range l.values {
			first := 0
			if !seen[v] {
				if seen == nil {
					seen = make(map[string]bool, len(l.values))
				}
				seen[v] = true
				first = 1
			}
			if _, err := s.wstmts.exec(ctx, tx, l.insert, seq, pos, o.Tenant, v, first); err != nil {
				return mapErr(err)
			}
		}
	}
	return nil
}

// deleteLabels removes every Name and Group of the object row seq.
func (s *Store) deleteLabels(ctx context.Context, tx *sql.Tx, seq int64) error {
	for _, q := range []string{sqlDeleteNames, sqlDeleteGroups} {
		if _, err := s.wstmts.exec(ctx, tx, q, seq); err != nil {
			return mapErr(err)
		}
	}
	return nil
}

// readLabels fills Names and Groups of objs, in one statement.
func (s *Store) readLabels(ctx context.Context, tx *sql.Tx, objs []*engine.StoredObject) error {
	var (
		rows *sql.Rows
		err  error
	)
	bySeq := make(map[int64]*engine.StoredObject, len(objs))
	switch len(objs) {
	case 0:
		return nil
	case 1:
		bySeq[objs[0].Seq] = objs[0]
		rows, err = s.rstmts.query(ctx, tx, sqlLabelsOf, objs[0].Seq)
	default:
		seqs := make([]byte, 0, 12*len(objs))
		seqs = append(seqs, '[')
		for i, o := range objs {
			bySeq[o.Seq] = o
			if i > 0 {
				seqs = append(seqs, ',')
			}
			seqs = strconv.AppendInt(seqs, o.Seq, 10)
		}
		seqs = append(seqs, ']')
		rows, err = s.rstmts.query(ctx, tx, sqlLabelsOfMany, string(seqs))
	}
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var (
			seq, pos int64
			kind     int
			value    string
		)
		if err := rows.Scan(&seq, &kind, &pos, &value); err != nil {
			return err
		}
		o := bySeq[seq]
		if o == nil {
			return fmt.Errorf("sqlite: label row for unrequested object %d", seq)
		}
		switch kind {
		case kindName:
			o.Names = append(o.Names, value)
		case kindGroup:
			o.Groups = append(o.Groups, value)
		}
	}
	return rows.Err()
}
