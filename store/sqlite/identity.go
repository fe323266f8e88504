package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/minikms/minikms/engine"
)

var _ engine.IdentityStore = (*Store)(nil)

const sqlBumpGeneration = `UPDATE pki_generation SET gen = gen + 1 WHERE id = 1`

// RecordCertificate implements engine.IdentityStore.
func (s *Store) RecordCertificate(ctx context.Context, c engine.CertRecord) error {
	if c.Serial == "" || len(c.DER) == 0 {
		return fmt.Errorf("%w: certificate record needs a serial and the certificate", engine.ErrMissingData)
	}
	return s.Write(ctx, func(ctx context.Context, tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO pki_certificates (serial, tenant, member, role, kind, not_before, not_after, der, issued_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			c.Serial, c.Tenant, c.Member, string(c.Role), c.Kind, c.NotBefore.Unix(), c.NotAfter.Unix(), c.DER, c.IssuedAt.Unix())
		return mapErr(err)
	})
}

// Certificates implements engine.IdentityStore: the tenant's certificates,
// oldest first ("" lists every tenant's).
func (s *Store) Certificates(ctx context.Context, tenant string) ([]engine.CertRecord, error) {
	q := `SELECT serial, tenant, member, role, kind, not_before, not_after, der, issued_at FROM pki_certificates`
	var args []any
	if tenant != "" {
		q += ` WHERE tenant = ?`
		args = append(args, tenant)
	}
	q += ` ORDER BY issued_at, serial`
	var out []engine.CertRecord
	err := s.read(ctx, func(tx *sql.Tx) error {
		rows, err := tx.QueryContext(ctx, q, args...)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var c engine.CertRecord
			var role string
			var nb, na, at int64
			if err := rows.Scan(&c.Serial, &c.Tenant, &c.Member, &role, &c.Kind, &nb, &na, &c.DER, &at); err != nil {
				return err
			}
			c.Role = engine.Role(role)
			c.NotBefore, c.NotAfter, c.IssuedAt = time.Unix(nb, 0).UTC(), time.Unix(na, 0).UTC(), time.Unix(at, 0).UTC()
			out = append(out, c)
		}
		return rows.Err()
	})
	return out, err
}

// Revoke implements engine.IdentityStore.
func (s *Store) Revoke(ctx context.Context, r engine.Revocation) (bool, error) {
	if r.Serial == "" {
		return false, fmt.Errorf("%w: revocation needs a serial", engine.ErrMissingData)
	}
	var added bool
	err := s.Write(ctx, func(ctx context.Context, tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `INSERT INTO pki_revocations (tenant, serial, reason, revoked_at) VALUES (?, ?, ?, ?)
			ON CONFLICT (tenant, serial) DO NOTHING`, r.Tenant, r.Serial, r.Reason, r.RevokedAt.Unix())
		if err != nil {
			return mapErr(err)
		}
		n, err := res.RowsAffected()
		if err != nil {
			return err
		}
		added = n == 1
		if added {
			if _, err := tx.ExecContext(ctx, sqlBumpGeneration); err != nil {
				return mapErr(err)
			}
		}
		return nil
	})
	return added, err
}

// Revocations implements engine.IdentityStore.
func (s *Store) Revocations(ctx context.Context, tenant string) ([]engine.Revocation, error) {
	var out []engine.Revocation
	err := s.read(ctx, func(tx *sql.Tx) error {
		rows, err := tx.QueryContext(ctx, `SELECT tenant, serial, reason, revoked_at FROM pki_revocations WHERE tenant = ? ORDER BY revoked_at, serial`, tenant)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var r engine.Revocation
			var at int64
			if err := rows.Scan(&r.Tenant, &r.Serial, &r.Reason, &at); err != nil {
				return err
			}
			r.RevokedAt = time.Unix(at, 0).UTC()
			out = append(out, r)
		}
		return rows.Err()
	})
	return out, err
}

// RegisterClient implements engine.IdentityStore: a new registration, or a
// replacement of the one with the same public key.
func (s *Store) RegisterClient(ctx context.Context, c engine.ExternalClient) error {
	if c.SPKIHash == "" || c.Tenant == "" {
		return fmt.Errorf("%w: client registration needs a key hash and a tenant", engine.ErrMissingData)
	}
	return s.Write(ctx, func(ctx context.Context, tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `INSERT INTO pki_clients (spki_hash, tenant, member, role, subject, registered_at) VALUES (?, ?, ?, ?, ?, ?)
			ON CONFLICT (spki_hash) DO UPDATE SET tenant = excluded.tenant, member = excluded.member, role = excluded.role,
			subject = excluded.subject, registered_at = excluded.registered_at`,
			c.SPKIHash, c.Tenant, c.Member, string(c.Role), c.Subject, c.RegisteredAt.Unix()); err != nil {
			return mapErr(err)
		}
		_, err := tx.ExecContext(ctx, sqlBumpGeneration)
		return mapErr(err)
	})
}

// UnregisterClient implements engine.IdentityStore.
func (s *Store) UnregisterClient(ctx context.Context, spkiHash string) error {
	return s.Write(ctx, func(ctx context.Context, tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM pki_clients WHERE spki_hash = ?`, spkiHash)
		if err != nil {
			return mapErr(err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return engine.ErrNotFound
		}
		_, err = tx.ExecContext(ctx, sqlBumpGeneration)
		return mapErr(err)
	})
}

// Clients implements engine.IdentityStore.
func (s *Store) Clients(ctx context.Context) ([]engine.ExternalClient, error) {
	var out []engine.ExternalClient
	err := s.read(ctx, func(tx *sql.Tx) error {
		rows, err := tx.QueryContext(ctx, `SELECT spki_hash, tenant, member, role, subject, registered_at FROM pki_clients ORDER BY tenant, member`)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var c engine.ExternalClient
			var role string
			var at int64
			if err := rows.Scan(&c.SPKIHash, &c.Tenant, &c.Member, &role, &c.Subject, &at); err != nil {
				return err
			}
			c.Role = engine.Role(role)
			c.RegisteredAt = time.Unix(at, 0).UTC()
			out = append(out, c)
		}
		return rows.Err()
	})
	return out, err
}

// IdentityGeneration implements engine.IdentityStore.
func (s *Store) IdentityGeneration(ctx context.Context) (int64, error) {
	var gen int64
	err := s.read(ctx, func(tx *sql.Tx) error {
		return tx.QueryRowContext(ctx, `SELECT gen FROM pki_generation WHERE id = 1`).Scan(&gen)
	})
	if errors.Is(err, sql.ErrNoRows) {
		return 0, errors.New("sqlite: identity generation row is missing")
	}
	return gen, err
}
