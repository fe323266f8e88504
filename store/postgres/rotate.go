package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/minikms/minikms/engine"
)

// Root rotation support (engine.RotationStore).

var _ engine.RotationStore = (*Store)(nil)

const (
	sqlObjectsToRewrap = `SELECT ` + objectColumns + ` FROM objects AS o
		WHERE o.wrapped IS NOT NULL AND o.root_version <> $1 AND o.seq > $2 ORDER BY o.seq LIMIT $3`
	sqlCountToRewrap = `SELECT count(*) FROM objects WHERE wrapped IS NOT NULL AND root_version <> $1`
	sqlRewrapObject  = `UPDATE objects SET wrapped = $1, root_version = $2, rev = $3 WHERE id = $4 AND tenant = $5 AND rev = $6`
	sqlPutMeta       = `INSERT INTO meta (key, value) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET value = excluded.value`
	sqlSwapMeta      = `UPDATE meta SET value = $1 WHERE key = $2 AND value = $3`
	sqlDeleteMetaAny = `DELETE FROM meta WHERE key = ANY($1)`
	sqlDeleteMetaPfx = `DELETE FROM meta WHERE starts_with(key, $1)`
)

// ObjectsToRewrap implements engine.RotationStore.
func (s *Store) ObjectsToRewrap(ctx context.Context, version uint32, afterSeq int64, limit int) ([]*engine.StoredObject, error) {
	if limit <= 0 || limit > 10000 {
		limit = 10000
	}
	ctx, cancel, err := s.op(ctx)
	if err != nil {
		return nil, err
	}
	defer cancel()
	rows, err := s.pool.Query(ctx, sqlObjectsToRewrap, int64(version), afterSeq, limit)
	if err != nil {
		return nil, s.mapErr(err)
	}
	defer rows.Close()
	var out []*engine.StoredObject
	for rows.Next() {
		o, err := scanObject(rows)
		if err != nil {
			return nil, s.mapErr(err)
		}
		out = append(out, o)
	}
	if err := rows.Err(); err != nil {
		return nil, s.mapErr(err)
	}
	return out, nil
}

// CountObjectsToRewrap implements engine.RotationStore.
func (s *Store) CountObjectsToRewrap(ctx context.Context, version uint32) (int64, error) {
	ctx, cancel, err := s.op(ctx)
	if err != nil {
		return 0, err
	}
	defer cancel()
	var n int64
	if err := s.pool.QueryRow(ctx, sqlCountToRewrap, int64(version)).Scan(&n); err != nil {
		return 0, s.mapErr(err)
	}
	return n, nil
}

// RewrapObject implements engine.RotationStore: the compare-and-swap and
// the backup commit together. The change-feed trigger tells the other
// nodes, whose cached copy then goes.
func (s *Store) RewrapObject(ctx context.Context, tenant, id string, prevRev int64, wrapped []byte, rootVersion uint32, backupKey string, backup []byte) error {
	if wrapped == nil || backupKey == "" {
		return fmt.Errorf("%w: re-wrap needs material and a backup key", engine.ErrMissingData)
	}
	ctx, cancel, err := s.op(ctx)
	if err != nil {
		return err
	}
	defer cancel()
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return s.mapErr(err)
	}
	defer rollback(ctx, tx)
	tag, err := tx.Exec(ctx, sqlRewrapObject, wrapped, int64(rootVersion), prevRev+1, id, tenant, prevRev)
	if err != nil {
		return s.mapErr(err)
	}
	if tag.RowsAffected() == 0 {
		return s.missOrConflict(ctx, tx, id, tenant)
	}
	if _, err := tx.Exec(ctx, sqlPutMeta, backupKey, nonNil(backup)); err != nil {
		return s.mapErr(err)
	}
	if err := tx.Commit(ctx); err != nil {
		return s.mapErr(err)
	}
	s.stats.commits.Add(1)
	return nil
}

// PutMeta implements engine.RotationStore.
func (s *Store) PutMeta(ctx context.Context, key string, value []byte) error {
	if key == "" {
		return fmt.Errorf("%w: metadata key is empty", engine.ErrMissingData)
	}
	ctx, cancel, err := s.op(ctx)
	if err != nil {
		return err
	}
	defer cancel()
	if _, err := s.pool.Exec(ctx, sqlPutMeta, key, nonNil(value)); err != nil {
		return s.mapErr(err)
	}
	s.stats.commits.Add(1)
	return nil
}

// SwapMeta implements engine.RotationStore.
func (s *Store) SwapMeta(ctx context.Context, key string, old, value []byte) error {
	ctx, cancel, err := s.op(ctx)
	if err != nil {
		return err
	}
	defer cancel()
	tag, err := s.pool.Exec(ctx, sqlSwapMeta, nonNil(value), key, nonNil(old))
	if err != nil {
		return s.mapErr(err)
	}
	if tag.RowsAffected() == 1 {
		s.stats.commits.Add(1)
		return nil
	}
	var v []byte
	if err := s.pool.QueryRow(ctx, sqlGetMeta, key).Scan(&v); errors.Is(err, pgx.ErrNoRows) {
		return engine.ErrNotFound
	} else if err != nil {
		return s.mapErr(err)
	}
	return engine.ErrConflict
}

// DeleteMeta implements engine.RotationStore.
func (s *Store) DeleteMeta(ctx context.Context, keys ...string) error {
	if len(keys) == 0 {
		return nil
	}
	ctx, cancel, err := s.op(ctx)
	if err != nil {
		return err
	}
	defer cancel()
	if _, err := s.pool.Exec(ctx, sqlDeleteMetaAny, keys); err != nil {
		return s.mapErr(err)
	}
	s.stats.commits.Add(1)
	return nil
}

// DeleteMetaPrefix implements engine.RotationStore.
func (s *Store) DeleteMetaPrefix(ctx context.Context, prefix string) (int64, error) {
	if prefix == "" {
		return 0, fmt.Errorf("%w: refusing to delete every metadata key", engine.ErrInvalidField)
	}
	ctx, cancel, err := s.op(ctx)
	if err != nil {
		return 0, err
	}
	defer cancel()
	tag, err := s.pool.Exec(ctx, sqlDeleteMetaPfx, prefix)
	if err != nil {
		return 0, s.mapErr(err)
	}
	s.stats.commits.Add(1)
	return tag.RowsAffected(), nil
}
