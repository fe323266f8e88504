package engine

import (
	"context"
	"time"
)

// The identity records the PKI keeps next to the managed objects. They are
// declared here, with the domain's other types, so that stores implement
// them without importing the PKI.

// CertRecord is a certificate the server issued (member or server).
type CertRecord struct {
	Serial    string // lower-case hex, no leading zeros
	Tenant    string // "" for certificates outside tenants (server)
	Member    string
	Role      Role
	Kind      string // "member", "server"
	NotBefore time.Time
	NotAfter  time.Time
	DER       []byte
	IssuedAt  time.Time
}

// Revocation is a revoked certificate serial of a tenant's CA ("" = the
// root CA's own revocations).
type Revocation struct {
	Tenant    string
	Serial    string // lower-case hex
	Reason    int    // RFC 5280 CRLReason
	RevokedAt time.Time
}

// ExternalClient is a client certificate issued elsewhere (storage arrays
// often bring their own), pinned by the SHA-256 of its SubjectPublicKeyInfo
// and mapped to a tenant, member name and role.
type ExternalClient struct {
	SPKIHash     string // lower-case hex SHA-256 of the SubjectPublicKeyInfo
	Tenant       string
	Member       string
	Role         Role
	Subject      string // for listings only
	RegisteredAt time.Time
}

// IdentityStore persists the PKI's records. Every write returns once
// durable and advances the generation, which servers poll to notice
// revocations and registrations made by other processes.
type IdentityStore interface {
	RecordCertificate(ctx context.Context, c CertRecord) error
	Certificates(ctx context.Context, tenant string) ([]CertRecord, error)
	// Revoke records a revocation; revoking twice keeps the first record
	// and reports added=false.
	Revoke(ctx context.Context, r Revocation) (added bool, err error)
	Revocations(ctx context.Context, tenant string) ([]Revocation, error)
	RegisterClient(ctx context.Context, c ExternalClient) error
	UnregisterClient(ctx context.Context, spkiHash string) error
	Clients(ctx context.Context) ([]ExternalClient, error)
	// IdentityGeneration changes whenever a revocation or client
	// registration changes.
	IdentityGeneration(ctx context.Context) (int64, error)
}
