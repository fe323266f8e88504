package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/minikms/minikms/engine"
)

const (
	sqlInsertMeta = `INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO NOTHING`
	sqlGetMeta    = `SELECT value FROM meta WHERE key = ?`
)

// InitMeta stores value under key unless the key is present, and returns
// the value stored under key afterwards. Concurrent calls for one key are
// serialized by the writer, so they all see the first value written.
func (s *Store) InitMeta(ctx context.Context, key string, value []byte) ([]byte, error) {
	if key == "" {
		return nil, fmt.Errorf("%w: metadata key is empty", engine.ErrMissingData)
	}
	if value == nil {
		value = []byte{} // the column is NOT NULL; nil and empty mean the same here
	}
	var stored []byte
	err := s.Write(ctx, func(ctx context.Context, tx *sql.Tx) error {
		if _, err := s.wstmts.exec(ctx, tx, sqlInsertMeta, key, value); err != nil {
			return mapErr(err)
		}
		return s.wstmts.queryRow(ctx, tx, sqlGetMeta, key).Scan(&stored)
	})
	if err != nil {
		return nil, err
	}
	if stored == nil {
		stored = []byte{}
	}
	return stored, nil
}

// GetMeta returns the value under key, or engine.ErrNotFound.
func (s *Store) GetMeta(ctx context.Context, key string) ([]byte, error) {
	if s.closed.Load() {
		return nil, ErrClosed
	}
	var v []byte
	err := s.read(ctx, func(tx *sql.Tx) error {
		return s.rstmts.queryRow(ctx, tx, sqlGetMeta, key).Scan(&v)
	})
	if errors.Is(err, sql.ErrNoRows) {
		return nil, engine.ErrNotFound
	}
	if err != nil {
		return nil, mapErr(err)
	}
	if v == nil {
		v = []byte{}
	}
	return v, nil
}

const sqlListMeta = `SELECT key, value FROM meta WHERE key >= ? AND key < ? ORDER BY key`

// ListMeta returns every key (with its value) that starts with prefix.
func (s *Store) ListMeta(ctx context.Context, prefix string) (map[string][]byte, error) {
	if s.closed.Load() {
		return nil, ErrClosed
	}
	out := map[string][]byte{}
	err := s.read(ctx, func(tx *sql.Tx) error {
		// Keys are compared as byte strings: [prefix, prefix+0xFF...) covers
		// every key with the prefix.
		rows, err := tx.QueryContext(ctx, sqlListMeta, prefix, prefix+"\U0010FFFF")
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var k string
			var v []byte
			if err := rows.Scan(&k, &v); err != nil {
				return err
			}
			if v == nil {
				v = []byte{}
			}
			out[k] = v
		}
		return rows.Err()
	})
	if err != nil {
		return nil, mapErr(err)
	}
	return out, nil
}
