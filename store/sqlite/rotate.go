package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/minikms/minikms/engine"
)

// Root rotation support (engine.RotationStore).

var _ engine.RotationStore = (*Store)(nil)

const (
	sqlObjectsToRewrap = `SELECT ` + objectColumns + ` FROM objects AS o
		WHERE o.wrapped IS NOT NULL AND o.root_version != ? AND o.seq > ? ORDER BY o.seq LIMIT ?`
	sqlCountToRewrap = `SELECT count(*) FROM objects WHERE wrapped IS NOT NULL AND root_version != ?`
	sqlRewrapObject  = `UPDATE objects SET wrapped = ?, root_version = ?, rev = ? WHERE id = ? AND tenant = ? AND rev = ?`
	sqlPutMeta       = `INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value`
	sqlSwapMeta      = `UPDATE meta SET value = ? WHERE key = ? AND value = ?`
	sqlDeleteMeta    = `DELETE FROM meta WHERE key = ?`
	sqlDeleteMetaPfx = `DELETE FROM meta WHERE key >= ? AND key < ?`
)

// ObjectsToRewrap implements engine.RotationStore.
func (s *Store) ObjectsToRewrap(ctx context.Context, version uint32, afterSeq int64, limit int) ([]*engine.StoredObject, error) {
	if s.closed.Load() {
		return nil, ErrClosed
	}
	if limit <= 0 || limit > 10000 {
		limit = 10000
	}
	var out []*engine.StoredObject
	err := s.read(ctx, func(tx *sql.Tx) error {
		rows, err := tx.QueryContext(ctx, sqlObjectsToRewrap, int64(version), afterSeq, limit)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			o, err := scanObject(rows)
			if err != nil {
				return err
			}
			out = append(out, o)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, mapErr(err)
	}
	return out, nil
}

// CountObjectsToRewrap implements engine.RotationStore.
func (s *Store) CountObjectsToRewrap(ctx context.Context, version uint32) (int64, error) {
	if s.closed.Load() {
		return 0, ErrClosed
	}
	var n int64
	err := s.read(ctx, func(tx *sql.Tx) error {
		return tx.QueryRowContext(ctx, sqlCountToRewrap, int64(version)).Scan(&n)
	})
	return n, mapErr(err)
}

// RewrapObject implements engine.RotationStore.
func (s *Store) RewrapObject(ctx context.Context, tenant, id string, prevRev int64, wrapped []byte, rootVersion uint32, backupKey string, backup []byte) error {
	if wrapped == nil || backupKey == "" {
		return fmt.Errorf("%w: re-wrap needs material and a backup key", engine.ErrMissingData)
	}
	return s.Write(ctx, func(ctx context.Context, tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, sqlRewrapObject, wrapped, int64(rootVersion), prevRev+1, id, tenant, prevRev)
		if err != nil {
			return mapErr(err)
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n == 0 {
			var rev int64
			err := tx.QueryRowContext(ctx, `SELECT rev FROM objects WHERE id = ? AND tenant = ?`, id, tenant).Scan(&rev)
			if errors.Is(err, sql.ErrNoRows) {
				return engine.ErrNotFound
			}
			if err != nil {
				return mapErr(err)
			}
			return engine.ErrConflict
		}
		_, err = tx.ExecContext(ctx, sqlPutMeta, backupKey, nonNilBytes(backup))
		return mapErr(err)
	})
}

// PutMeta implements engine.RotationStore.
func (s *Store) PutMeta(ctx context.Context, key string, value []byte) error {
	if key == "" {
		return fmt.Errorf("%w: metadata key is empty", engine.ErrMissingData)
	}
	return s.Write(ctx, func(ctx context.Context, tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, sqlPutMeta, key, nonNilBytes(value))
		return mapErr(err)
	})
}

// SwapMeta implements engine.RotationStore.
func (s *Store) SwapMeta(ctx context.Context, key string, old, value []byte) error {
	return s.Write(ctx, func(ctx context.Context, tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, sqlSwapMeta, nonNilBytes(value), key, nonNilBytes(old))
		if err != nil {
			return mapErr(err)
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n == 1 {
			return nil
		}
		var v []byte
		if err := tx.QueryRowContext(ctx, sqlGetMeta, key).Scan(&v); errors.Is(err, sql.ErrNoRows) {
			return engine.ErrNotFound
		} else if err != nil {
			return mapErr(err)
		}
		return engine.ErrConflict
	})
}

// DeleteMeta implements engine.RotationStore.
func (s *Store) DeleteMeta(ctx context.Context, keys ...string) error {
	if len(keys) == 0 {
		return nil
	}
	return s.Write(ctx, func(ctx context.Context, tx *sql.Tx) error {
		for _, k := range keys {
			if _, err := tx.ExecContext(ctx, sqlDeleteMeta, k); err != nil {
				return mapErr(err)
			}
		}
		return nil
	})
}

// DeleteMetaPrefix implements engine.RotationStore.
func (s *Store) DeleteMetaPrefix(ctx context.Context, prefix string) (int64, error) {
	if prefix == "" {
		return 0, fmt.Errorf("%w: refusing to delete every metadata key", engine.ErrInvalidField)
	}
	var n int64
	err := s.Write(ctx, func(ctx context.Context, tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, sqlDeleteMetaPfx, prefix, prefix+"\U0010FFFF")
		if err != nil {
			return mapErr(err)
		}
		n, err = res.RowsAffected()
		return err
	})
	return n, err
}

func nonNilBytes(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}
