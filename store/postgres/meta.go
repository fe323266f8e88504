package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/minikms/minikms/engine"
)

const (
	sqlInsertMeta = `INSERT INTO meta (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING RETURNING value`
	sqlGetMeta    = `SELECT value FROM meta WHERE key = $1`
	sqlListMeta   = `SELECT key, value FROM meta WHERE starts_with(key, $1) ORDER BY key`
)

// InitMeta stores value under key unless the key is present, and returns
// the value stored under key afterwards. Concurrent calls, on any node,
// all see the first value committed: an insert that meets a concurrent
// insert of the same key waits for it and then does nothing, and the read
// that follows (a new statement, a new snapshot) sees the winner's value.
func (s *Store) InitMeta(ctx context.Context, key string, value []byte) ([]byte, error) {
	if key == "" {
		return nil, fmt.Errorf("%w: metadata key is empty", engine.ErrMissingData)
	}
	ctx, cancel, err := s.op(ctx)
	if err != nil {
		return nil, err
	}
	defer cancel()
	var stored []byte
	err = s.pool.QueryRow(ctx, sqlInsertMeta, key, nonNil(value)).Scan(&stored)
	if errors.Is(err, pgx.ErrNoRows) {
		err = s.pool.QueryRow(ctx, sqlGetMeta, key).Scan(&stored)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil, fmt.Errorf("postgres: metadata %q vanished after a conflicting insert", key)
		}
	} else if err == nil {
		s.stats.commits.Add(1)
	}
	if err != nil {
		return nil, s.mapErr(err)
	}
	return nonNil(stored), nil
}

// GetMeta returns the value under key, or engine.ErrNotFound.
func (s *Store) GetMeta(ctx context.Context, key string) ([]byte, error) {
	ctx, cancel, err := s.op(ctx)
	if err != nil {
		return nil, err
	}
	defer cancel()
	var v []byte
	err = s.pool.QueryRow(ctx, sqlGetMeta, key).Scan(&v)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, engine.ErrNotFound
	}
	if err != nil {
		return nil, s.mapErr(err)
	}
	return nonNil(v), nil
}

// ListMeta returns every key (with its value) that starts with prefix.
func (s *Store) ListMeta(ctx context.Context, prefix string) (map[string][]byte, error) {
	ctx, cancel, err := s.op(ctx)
	if err != nil {
		return nil, err
	}
	defer cancel()
	rows, err := s.pool.Query(ctx, sqlListMeta, prefix)
	if err != nil {
		return nil, s.mapErr(err)
	}
	defer rows.Close()
	out := map[string][]byte{}
	for rows.Next() {
		var k string
		var v []byte
		if err := rows.Scan(&k, &v); err != nil {
			return nil, s.mapErr(err)
		}
		out[k] = nonNil(v)
	}
	if err := rows.Err(); err != nil {
		return nil, s.mapErr(err)
	}
	return out, nil
}
