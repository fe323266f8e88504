package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/minikms/minikms/engine"
)

// Each identity write is one statement: the change and, when something
// changed, the generation bump, so that the two commit together. The bump
// takes the one pki_generation row's lock, which orders identity writers
// across nodes as SQLite's write lock does.

const (
	sqlRecordCertificate = `INSERT INTO pki_certificates (serial, tenant, member, role, kind, not_before, not_after, der, issued_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`
	sqlCertificates = `SELECT serial, tenant, member, role, kind, not_before, not_after, der, issued_at FROM pki_certificates`
	sqlRevoke       = `WITH ins AS (
		INSERT INTO pki_revocations (tenant, serial, reason, revoked_at) VALUES ($1, $2, $3, $4)
		ON CONFLICT (tenant, serial) DO NOTHING
		RETURNING 1
	), bump AS (
		UPDATE pki_generation SET gen = gen + 1 WHERE id = 1 AND EXISTS (SELECT 1 FROM ins)
	)
	SELECT count(*) FROM ins`
	sqlRevocations    = `SELECT tenant, serial, reason, revoked_at FROM pki_revocations WHERE tenant = $1 ORDER BY revoked_at, serial`
	sqlRegisterClient = `WITH up AS (
		INSERT INTO pki_clients (spki_hash, tenant, member, role, subject, registered_at) VALUES ($1, $2, $3, $4, $5, $6)
		ON CONFLICT (spki_hash) DO UPDATE SET tenant = excluded.tenant, member = excluded.member, role = excluded.role,
			subject = excluded.subject, registered_at = excluded.registered_at
		RETURNING 1
	)
	UPDATE pki_generation SET gen = gen + 1 WHERE id = 1 AND EXISTS (SELECT 1 FROM up)`
	sqlUnregisterClient = `WITH del AS (
		DELETE FROM pki_clients WHERE spki_hash = $1 RETURNING 1
	), bump AS (
		UPDATE pki_generation SET gen = gen + 1 WHERE id = 1 AND EXISTS (SELECT 1 FROM del)
	)
	SELECT count(*) FROM del`
	sqlClients    = `SELECT spki_hash, tenant, member, role, subject, registered_at FROM pki_clients ORDER BY tenant, member`
	sqlGeneration = `SELECT gen FROM pki_generation WHERE id = 1`
)

// RecordCertificate implements engine.IdentityStore.
func (s *Store) RecordCertificate(ctx context.Context, c engine.CertRecord) error {
	if c.Serial == "" || len(c.DER) == 0 {
		return fmt.Errorf("%w: certificate record needs a serial and the certificate", engine.ErrMissingData)
	}
	ctx, cancel, err := s.op(ctx)
	if err != nil {
		return err
	}
	defer cancel()
	if _, err := s.pool.Exec(ctx, sqlRecordCertificate,
		c.Serial, c.Tenant, c.Member, string(c.Role), c.Kind, c.NotBefore.Unix(), c.NotAfter.Unix(), c.DER, c.IssuedAt.Unix()); err != nil {
		return s.mapErr(err)
	}
	s.stats.commits.Add(1)
	return nil
}

// Certificates implements engine.IdentityStore: the tenant's certificates,
// oldest first ("" lists every tenant's).
func (s *Store) Certificates(ctx context.Context, tenant string) ([]engine.CertRecord, error) {
	ctx, cancel, err := s.op(ctx)
	if err != nil {
		return nil, err
	}
	defer cancel()
	q := sqlCertificates
	var args []any
	if tenant != "" {
		q += ` WHERE tenant = $1`
		args = append(args, tenant)
	}
	q += ` ORDER BY issued_at, serial`
	rows, err := s.pool.Query(ctx, q, args...)
	if err != nil {
		return nil, s.mapErr(err)
	}
	defer rows.Close()
	var out []engine.CertRecord
	for rows.Next() {
		var c engine.CertRecord
		var role string
		var nb, na, at int64
		if err := rows.Scan(&c.Serial, &c.Tenant, &c.Member, &role, &c.Kind, &nb, &na, &c.DER, &at); err != nil {
			return nil, s.mapErr(err)
		}
		c.Role = engine.Role(role)
		c.NotBefore, c.NotAfter, c.IssuedAt = time.Unix(nb, 0).UTC(), time.Unix(na, 0).UTC(), time.Unix(at, 0).UTC()
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, s.mapErr(err)
	}
	return out, nil
}

// Revoke implements engine.IdentityStore.
func (s *Store) Revoke(ctx context.Context, r engine.Revocation) (bool, error) {
	if r.Serial == "" {
		return false, fmt.Errorf("%w: revocation needs a serial", engine.ErrMissingData)
	}
	ctx, cancel, err := s.op(ctx)
	if err != nil {
		return false, err
	}
	defer cancel()
	var n int64
	if err := s.pool.QueryRow(ctx, sqlRevoke, r.Tenant, r.Serial, int64(r.Reason), r.RevokedAt.Unix()).Scan(&n); err != nil {
		return false, s.mapErr(err)
	}
	s.stats.commits.Add(1)
	return n == 1, nil
}

// Revocations implements engine.IdentityStore.
func (s *Store) Revocations(ctx context.Context, tenant string) ([]engine.Revocation, error) {
	ctx, cancel, err := s.op(ctx)
	if err != nil {
		return nil, err
	}
	defer cancel()
	rows, err := s.pool.Query(ctx, sqlRevocations, tenant)
	if err != nil {
		return nil, s.mapErr(err)
	}
	defer rows.Close()
	var out []engine.Revocation
	for rows.Next() {
		var r engine.Revocation
		var reason, at int64
		if err := rows.Scan(&r.Tenant, &r.Serial, &reason, &at); err != nil {
			return nil, s.mapErr(err)
		}
		r.Reason = int(reason)
		r.RevokedAt = time.Unix(at, 0).UTC()
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, s.mapErr(err)
	}
	return out, nil
}

// RegisterClient implements engine.IdentityStore: a new registration, or a
// replacement of the one with the same public key.
func (s *Store) RegisterClient(ctx context.Context, c engine.ExternalClient) error {
	if c.SPKIHash == "" || c.Tenant == "" {
		return fmt.Errorf("%w: client registration needs a key hash and a tenant", engine.ErrMissingData)
	}
	ctx, cancel, err := s.op(ctx)
	if err != nil {
		return err
	}
	defer cancel()
	if _, err := s.pool.Exec(ctx, sqlRegisterClient,
		c.SPKIHash, c.Tenant, c.Member, string(c.Role), c.Subject, c.RegisteredAt.Unix()); err != nil {
		return s.mapErr(err)
	}
	s.stats.commits.Add(1)
	return nil
}

// UnregisterClient implements engine.IdentityStore.
func (s *Store) UnregisterClient(ctx context.Context, spkiHash string) error {
	ctx, cancel, err := s.op(ctx)
	if err != nil {
		return err
	}
	defer cancel()
	var n int64
	if err := s.pool.QueryRow(ctx, sqlUnregisterClient, spkiHash).Scan(&n); err != nil {
		return s.mapErr(err)
	}
	s.stats.commits.Add(1)
	if n == 0 {
		return engine.ErrNotFound
	}
	return nil
}

// Clients implements engine.IdentityStore.
func (s *Store) Clients(ctx context.Context) ([]engine.ExternalClient, error) {
	ctx, cancel, err := s.op(ctx)
	if err != nil {
		return nil, err
	}
	defer cancel()
	rows, err := s.pool.Query(ctx, sqlClients)
	if err != nil {
		return nil, s.mapErr(err)
	}
	defer rows.Close()
	var out []engine.ExternalClient
	for rows.Next() {
		var c engine.ExternalClient
		var role string
		var at int64
		if err := rows.Scan(&c.SPKIHash, &c.Tenant, &c.Member, &role, &c.Subject, &at); err != nil {
			return nil, s.mapErr(err)
		}
		c.Role = engine.Role(role)
		c.RegisteredAt = time.Unix(at, 0).UTC()
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, s.mapErr(err)
	}
	return out, nil
}

// IdentityGeneration implements engine.IdentityStore.
func (s *Store) IdentityGeneration(ctx context.Context) (int64, error) {
	ctx, cancel, err := s.op(ctx)
	if err != nil {
		return 0, err
	}
	defer cancel()
	var gen int64
	err = s.pool.QueryRow(ctx, sqlGeneration).Scan(&gen)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, errors.New("postgres: identity generation row is missing")
	}
	return gen, s.mapErr(err)
}
