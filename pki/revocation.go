package pki

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"strings"
	"time"

	"github.com/minikms/minikms/engine"
)

// ErrNoRecords is returned when the authority's store keeps no identity
// records (issued certificates, revocations, registrations).
var ErrNoRecords = errors.New("this store keeps no identity records")

func (a *Authority) records() (engine.IdentityStore, error) {
	ids, ok := a.store.(engine.IdentityStore)
	if !ok {
		return nil, ErrNoRecords
	}
	return ids, nil
}

// IssueMember issues a member certificate with the tenant's CA and records
// it. The tenant must exist.
func (a *Authority) IssueMember(ctx context.Context, spec MemberSpec) (*x509.Certificate, error) {
	ids, err := a.records()
	if err != nil {
		return nil, err
	}
	ca, err := a.Tenant(ctx, spec.Tenant, false)
	if err != nil {
		return nil, err
	}
	now := a.now()
	c, err := IssueMember(ca, spec, now)
	if err != nil {
		return nil, err
	}
	rec := engine.CertRecord{Serial: SerialHex(c), Tenant: spec.Tenant, Member: spec.Member, Role: spec.Role, Kind: "member",
		NotBefore: c.NotBefore, NotAfter: c.NotAfter, DER: c.Raw, IssuedAt: now.UTC()}
	if err := ids.RecordCertificate(ctx, rec); err != nil {
		return nil, fmt.Errorf("record certificate: %w", err)
	}
	return c, nil
}

// CRL reasons (RFC 5280 §5.3.1) accepted on revocation.
const (
	ReasonUnspecified          = 0
	ReasonKeyCompromise        = 1
	ReasonCACompromise         = 2
	ReasonAffiliationChanged   = 3
	ReasonSuperseded           = 4
	ReasonCessationOfOperation = 5
	ReasonPrivilegeWithdrawn   = 9
)

// Revoke puts a serial of the tenant's CA on its CRL ("" = the root CA's:
// a tenant CA's serial). Revoking twice keeps the first record.
func (a *Authority) Revoke(ctx context.Context, tenant, serialHex string, reason int) (bool, error) {
	ids, err := a.records()
	if err != nil {
		return false, err
	}
	serialHex = strings.ToLower(strings.TrimPrefix(strings.TrimPrefix(serialHex, "0x"), "0X"))
	if _, ok := new(big.Int).SetString(serialHex, 16); !ok || serialHex == "" {
		return false, fmt.Errorf("serial %q is not a hexadecimal number", serialHex)
	}
	switch reason {
	case ReasonUnspecified, ReasonKeyCompromise, ReasonCACompromise, ReasonAffiliationChanged, ReasonSuperseded,
		ReasonCessationOfOperation, ReasonPrivilegeWithdrawn:
	default:
		return false, fmt.Errorf("revocation reason %d is not supported", reason)
	}
	if tenant != "" {
		if _, err := a.Tenant(ctx, tenant, false); err != nil {
			return false, err
		}
	}
	return ids.Revoke(ctx, engine.Revocation{Tenant: tenant, Serial: serialHex, Reason: reason, RevokedAt: a.now().UTC()})
}

// CRL validity.
const (
	crlValidity = 24 * time.Hour
	// crlRefresh is how old a cached CRL may get before it is re-signed.
	crlRefresh = time.Hour
)

type cachedCRL struct {
	gen  int64
	at   time.Time
	data []byte
}

// CRL returns the DER CRL of a tenant's CA ("" = the root CA's), signed
// now, numbered with the store's identity generation, valid a day.
func (a *Authority) CRL(ctx context.Context, tenant string) ([]byte, error) {
	ids, err := a.records()
	if err != nil {
		return nil, err
	}
	var ca *CA
	if tenant == "" {
		ca, err = a.Root(ctx)
	} else {
		ca, err = a.Tenant(ctx, tenant, false)
	}
	if err != nil {
		return nil, err
	}
	gen, err := ids.IdentityGeneration(ctx)
	if err != nil {
		return nil, err
	}
	now := a.now()
	if v, ok := a.crls.Load(tenant); ok {
		c := v.(cachedCRL)
		if c.gen == gen && now.Sub(c.at) < crlRefresh {
			return c.data, nil
		}
	}
	revs, err := ids.Revocations(ctx, tenant)
	if err != nil {
		return nil, err
	}
	tmpl := &x509.RevocationList{Number: big.NewInt(gen), ThisUpdate: now.Add(-backdate), NextUpdate: now.Add(crlValidity)}
	for _, r := range revs {
		sn, ok := new(big.Int).SetString(r.Serial, 16)
		if !ok {
			return nil, fmt.Errorf("stored revocation has a bad serial %q", r.Serial)
		}
		tmpl.RevokedCertificateEntries = append(tmpl.RevokedCertificateEntries, x509.RevocationListEntry{
			SerialNumber: sn, RevocationTime: r.RevokedAt, ReasonCode: r.Reason,
		})
	}
	der, err := x509.CreateRevocationList(rand.Reader, tmpl, ca.Cert, ca.Signer)
	if err != nil {
		return nil, fmt.Errorf("sign CRL: %w", err)
	}
	a.crls.Store(tenant, cachedCRL{gen: gen, at: now, data: der})
	return der, nil
}

// Watch keeps the verifier in step with the store until ctx ends:
// revocations, client registrations and tenant CAs made by any process
// (another node, the command line) apply within one interval.
func (a *Authority) Watch(ctx context.Context, v *Verifier, interval time.Duration, log *slog.Logger) {
	if log == nil {
		log = slog.Default()
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	known := map[string]bool{}
	for {
		if err := a.Refresh(ctx, v, known); err != nil && ctx.Err() == nil {
			log.Warn("identity refresh failed; keeping the previous revocations and registrations", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Refresh applies the store's current identity records to v if they
// changed since the last call with the same known map (tenant CAs already
// known to v).
func (a *Authority) Refresh(ctx context.Context, v *Verifier, known map[string]bool) error {
	ids, err := a.records()
	if err != nil {
		return err
	}
	cas, err := a.store.ListMeta(ctx, metaTenantCA)
	if err != nil {
		return err
	}
	for k := range cas {
		if known[k] {
			continue
		}
		tenant := strings.TrimPrefix(k, metaTenantCA)
		ca, err := a.Tenant(ctx, tenant, false)
		if err != nil {
			return err
		}
		v.AddTenantCA(ca.Cert)
		known[k] = true
	}
	gen, err := ids.IdentityGeneration(ctx)
	if err != nil {
		return err
	}
	if gen == v.IdentityGeneration() && v.identityLoaded() {
		return nil
	}
	var revs []engine.Revocation
	for _, tenant := range append([]string{""}, keysTrimmed(cas)...) {
		r, err := ids.Revocations(ctx, tenant)
		if err != nil {
			return err
		}
		revs = append(revs, r...)
	}
	clients, err := ids.Clients(ctx)
	if err != nil {
		return err
	}
	v.SetIdentity(revs, clients, gen)
	return nil
}

func keysTrimmed(m map[string][]byte) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, strings.TrimPrefix(k, metaTenantCA))
	}
	return out
}

// CertifyMember issues and records a member certificate for pub in the
// tenant (the KMIP Certify operation).
func (a *Authority) CertifyMember(ctx context.Context, tenant, member string, role engine.Role, pub crypto.PublicKey, subject *pkix.Name) (*x509.Certificate, error) {
	return a.IssueMember(ctx, MemberSpec{Tenant: tenant, Member: member, Role: role, PublicKey: pub, Subject: subject})
}

// RevokeIssued revokes a certificate the tenant's CA issued. A certificate
// another CA issued is refused: it is not on this CA's CRL to revoke.
func (a *Authority) RevokeIssued(ctx context.Context, tenant string, c *x509.Certificate, reason int) error {
	ca, err := a.Tenant(ctx, tenant, false)
	if err != nil {
		return err
	}
	if err := c.CheckSignatureFrom(ca.Cert); err != nil {
		return foreignError{}
	}
	_, err = a.Revoke(ctx, tenant, SerialHex(c), reason)
	return err
}

// foreignError is RevokeIssued's answer for a certificate another CA
// issued: there is no CRL of ours to put it on.
type foreignError struct{}

func (foreignError) Error() string            { return "the certificate was not issued by this tenant's CA" }
func (foreignError) ForeignCertificate() bool { return true }

// MemberOf reads the identity a member certificate carries.
func (a *Authority) MemberOf(c *x509.Certificate) (tenant, member string, role engine.Role, err error) {
	return MemberOf(c)
}

// MemberOf reads the identity a member certificate carries.
func MemberOf(c *x509.Certificate) (tenant, member string, role engine.Role, err error) {
	if tenant, err = extensionText(c, OIDTenant); err != nil {
		return
	}
	if member, err = extensionText(c, OIDMember); err != nil {
		return
	}
	var r string
	r, err = extensionText(c, OIDRole)
	return tenant, member, engine.Role(r), err
}
