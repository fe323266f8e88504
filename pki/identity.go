package pki

import (
	"crypto/sha256"
	"crypto/x509"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/minikms/minikms/engine"
)

// ErrNotAuthenticated wraps every reason a client certificate is refused.
var ErrNotAuthenticated = errors.New("client certificate not accepted")

// Identify returns the principal of a verified member chain
// [member, tenant CA, root]. The chain must already be verified.
func Identify(chain []*x509.Certificate) (engine.Principal, error) {
	var p engine.Principal
	if len(chain) != 3 {
		return p, fmt.Errorf("%w: a member certificate must be issued by a tenant CA under the root (chain of 3, got %d)", ErrNotAuthenticated, len(chain))
	}
	leaf, ca := chain[0], chain[1]
	if leaf.IsCA {
		return p, fmt.Errorf("%w: a CA certificate cannot be used as a client certificate", ErrNotAuthenticated)
	}
	if !slices.Contains(leaf.ExtKeyUsage, x509.ExtKeyUsageClientAuth) {
		return p, fmt.Errorf("%w: the certificate does not allow client authentication (ExtKeyUsage ClientAuth)", ErrNotAuthenticated)
	}
	tenant, err := extensionText(leaf, OIDTenant)
	if err != nil {
		return p, fmt.Errorf("%w: %v", ErrNotAuthenticated, err)
	}
	caTenant, err := extensionText(ca, OIDTenant)
	if err != nil {
		return p, fmt.Errorf("%w: issuing CA: %v", ErrNotAuthenticated, err)
	}
	member, err := extensionText(leaf, OIDMember)
	if err != nil {
		return p, fmt.Errorf("%w: %v", ErrNotAuthenticated, err)
	}
	role, err := extensionText(leaf, OIDRole)
	if err != nil {
		return p, fmt.Errorf("%w: %v", ErrNotAuthenticated, err)
	}
	switch {
	case tenant == "" || member == "" || role == "":
		return p, fmt.Errorf("%w: the certificate carries no miniKMS identity (tenant, member, role)", ErrNotAuthenticated)
	case caTenant == "":
		return p, fmt.Errorf("%w: the issuing CA is not a tenant CA", ErrNotAuthenticated)
	case tenant != caTenant:
		return p, fmt.Errorf("%w: the certificate's tenant does not match its issuing tenant CA", ErrNotAuthenticated)
	case !engine.ValidTenantID(tenant):
		return p, fmt.Errorf("%w: invalid tenant id", ErrNotAuthenticated)
	case !ValidMemberID(member):
		return p, fmt.Errorf("%w: invalid member id", ErrNotAuthenticated)
	case !engine.Role(role).Valid():
		return p, fmt.Errorf("%w: unknown role %q", ErrNotAuthenticated, role)
	}
	sum := sha256.Sum256(leaf.Raw)
	return engine.Principal{Tenant: tenant, Member: member, Role: engine.Role(role), CertHash: hex.EncodeToString(sum[:])}, nil
}

// maxPresentedCerts bounds the certificates a client may present.
const maxPresentedCerts = 8

// maxVerifiedCache bounds the cache of verified chains.
const maxVerifiedCache = 10_000

// Verifier verifies client certificate chains against the root CA, with the
// tenant CAs as known intermediates (clients may send only their leaf), and
// caches the identities of chains it verified: a reconnecting client does
// not pay for chain verification again until its certificate expires or
// the trust material changes.
type Verifier struct {
	now func() time.Time

	mu            sync.RWMutex
	roots         *x509.CertPool
	intermediates *x509.CertPool
	cache         map[[32]byte]verified
	// gen changes whenever trust changes, so a verification that raced a
	// change is not cached under the new trust.
	gen uint64
	// revoked lists revoked serials (lower-case hex) per tenant; "" holds
	// the root CA's revocations (tenant CAs).
	revoked map[string]map[string]bool
	// clients are externally issued certificates, by SPKI hash.
	clients map[string]engine.ExternalClient
	// identGen is the store's identity generation the sets above reflect.
	identGen int64
}

// SerialHex is how certificate serials are written in revocation records.
func SerialHex(c *x509.Certificate) string { return c.SerialNumber.Text(16) }

// SPKIHash is the lower-case hex SHA-256 of a certificate's
// SubjectPublicKeyInfo: the identity of a registered external client.
func SPKIHash(c *x509.Certificate) string {
	sum := sha256.Sum256(c.RawSubjectPublicKeyInfo)
	return hex.EncodeToString(sum[:])
}

// SetIdentity replaces the revoked serials and the registered clients
// (as of store generation gen) and drops every cached verification.
func (v *Verifier) SetIdentity(revoked []engine.Revocation, clients []engine.ExternalClient, gen int64) {
	rv := map[string]map[string]bool{}
	for _, r := range revoked {
		if rv[r.Tenant] == nil {
			rv[r.Tenant] = map[string]bool{}
		}
		rv[r.Tenant][r.Serial] = true
	}
	cl := make(map[string]engine.ExternalClient, len(clients))
	for _, c := range clients {
		cl[c.SPKIHash] = c
	}
	v.mu.Lock()
	v.revoked, v.clients, v.identGen = rv, cl, gen
	v.cache = map[[32]byte]verified{}
	v.gen++
	v.mu.Unlock()
}

func (v *Verifier) identityLoaded() bool {
	v.mu.RLock()
	defer v.mu.RUnlock()
	return v.clients != nil
}

// Generation returns a number that changes whenever the verifier's trust,
// revocations or registrations change: a connection verified under an
// older generation must be verified again.
func (v *Verifier) Generation() uint64 {
	v.mu.RLock()
	defer v.mu.RUnlock()
	return v.gen
}

// IdentityGeneration is the store generation SetIdentity last applied.
func (v *Verifier) IdentityGeneration() int64 {
	v.mu.RLock()
	defer v.mu.RUnlock()
	return v.identGen
}

func (v *Verifier) isRevoked(tenant string, c *x509.Certificate) bool {
	v.mu.RLock()
	defer v.mu.RUnlock()
	return v.revoked[tenant][SerialHex(c)]
}

// registered returns the principal of an externally issued certificate
// pinned by its public key, if it is registered and usable now.
func (v *Verifier) registered(leaf *x509.Certificate, now time.Time) (engine.Principal, bool, error) {
	v.mu.RLock()
	c, ok := v.clients[SPKIHash(leaf)]
	v.mu.RUnlock()
	if !ok {
		return engine.Principal{}, false, nil
	}
	switch {
	case leaf.IsCA:
		return engine.Principal{}, true, fmt.Errorf("%w: a CA certificate cannot be used as a client certificate", ErrNotAuthenticated)
	case now.Before(leaf.NotBefore):
		return engine.Principal{}, true, fmt.Errorf("%w: the registered certificate is not valid yet", ErrNotAuthenticated)
	case now.After(leaf.NotAfter):
		return engine.Principal{}, true, fmt.Errorf("%w: the registered certificate has expired", ErrNotAuthenticated)
	case len(leaf.ExtKeyUsage) > 0 && !slices.Contains(leaf.ExtKeyUsage, x509.ExtKeyUsageClientAuth) && !slices.Contains(leaf.ExtKeyUsage, x509.ExtKeyUsageAny):
		return engine.Principal{}, true, fmt.Errorf("%w: the certificate does not allow client authentication (ExtKeyUsage ClientAuth)", ErrNotAuthenticated)
	}
	sum := sha256.Sum256(leaf.Raw)
	return engine.Principal{Tenant: c.Tenant, Member: c.Member, Role: c.Role, CertHash: hex.EncodeToString(sum[:])}, true, nil
}

type verified struct {
	p         engine.Principal
	notBefore time.Time
	notAfter  time.Time
}

// NewVerifier trusts root and knows tenantCAs as intermediates.
func NewVerifier(root *x509.Certificate, tenantCAs []*x509.Certificate, now func() time.Time) *Verifier {
	if now == nil {
		now = time.Now
	}
	v := &Verifier{now: now}
	v.SetTrust(root, tenantCAs)
	return v
}

// SetTrust replaces the trust material and drops every cached verification.
func (v *Verifier) SetTrust(root *x509.Certificate, tenantCAs []*x509.Certificate) {
	roots := x509.NewCertPool()
	roots.AddCert(root)
	inter := x509.NewCertPool()
	for _, c := range tenantCAs {
		inter.AddCert(c)
	}
	v.mu.Lock()
	v.roots, v.intermediates, v.cache = roots, inter, map[[32]byte]verified{}
	v.gen++
	v.mu.Unlock()
}

// AddTenantCA makes a new tenant CA known as an intermediate. Pools are
// copied on write: verifications in flight keep the snapshot they took.
func (v *Verifier) AddTenantCA(c *x509.Certificate) {
	v.mu.Lock()
	inter := v.intermediates.Clone()
	inter.AddCert(c)
	v.intermediates = inter
	v.mu.Unlock()
}

// Flush drops cached verifications (after a revocation).
func (v *Verifier) Flush() {
	v.mu.Lock()
	v.cache = map[[32]byte]verified{}
	v.gen++
	v.mu.Unlock()
}

// Verify verifies the certificates a client presented (leaf first) and
// returns its principal.
func (v *Verifier) Verify(rawCerts [][]byte) (engine.Principal, error) {
	if len(rawCerts) == 0 {
		return engine.Principal{}, fmt.Errorf("%w: no client certificate", ErrNotAuthenticated)
	}
	if len(rawCerts) > maxPresentedCerts {
		return engine.Principal{}, fmt.Errorf("%w: more than %d certificates presented", ErrNotAuthenticated, maxPresentedCerts)
	}
	// The cache key is over every certificate with its length, so the same
	// bytes split differently are another key.
	h := sha256.New()
	var n [4]byte
	for _, c := range rawCerts {
		binary.BigEndian.PutUint32(n[:], uint32(len(c)))
		h.Write(n[:])
		h.Write(c)
	}
	var key [32]byte
	h.Sum(key[:0])
	now := v.now()
	v.mu.RLock()
	hit, ok := v.cache[key]
	roots, inter, gen := v.roots, v.intermediates, v.gen
	v.mu.RUnlock()
	if ok && now.Before(hit.notAfter) && !now.Before(hit.notBefore) {
		return hit.p, nil
	}

	certs := make([]*x509.Certificate, len(rawCerts))
	for i, raw := range rawCerts {
		c, err := x509.ParseCertificate(raw)
		if err != nil {
			return engine.Principal{}, fmt.Errorf("%w: unparsable certificate: %v", ErrNotAuthenticated, err)
		}
		certs[i] = c
	}
	pool := inter
	if len(certs) > 1 {
		pool = inter.Clone()
		for _, c := range certs[1:] {
			pool.AddCert(c)
		}
	}
	chains, err := certs[0].Verify(x509.VerifyOptions{
		Roots: roots, Intermediates: pool, CurrentTime: now,
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	})
	if err != nil {
		// Not ours: an externally issued certificate may be registered.
		p, found, rerr := v.registered(certs[0], now)
		if !found {
			return engine.Principal{}, fmt.Errorf("%w: %v", ErrNotAuthenticated, err)
		}
		if rerr != nil {
			return engine.Principal{}, rerr
		}
		v.remember(key, gen, p, certs[0].NotBefore, certs[0].NotAfter)
		return p, nil
	}
	var p engine.Principal
	var lastErr error
	var chain []*x509.Certificate
	for _, ch := range chains {
		if p, lastErr = Identify(ch); lastErr == nil {
			chain = ch
			break
		}
	}
	if chain == nil {
		return engine.Principal{}, lastErr
	}
	if v.isRevoked(p.Tenant, chain[0]) {
		return engine.Principal{}, fmt.Errorf("%w: the certificate is revoked", ErrNotAuthenticated)
	}
	if v.isRevoked("", chain[1]) {
		return engine.Principal{}, fmt.Errorf("%w: the issuing tenant CA is revoked", ErrNotAuthenticated)
	}
	notBefore, notAfter := chain[0].NotBefore, chain[0].NotAfter
	for _, c := range chain[1:] {
		if c.NotAfter.Before(notAfter) {
			notAfter = c.NotAfter
		}
		if c.NotBefore.After(notBefore) {
			notBefore = c.NotBefore
		}
	}
	v.remember(key, gen, p, notBefore, notAfter)
	return p, nil
}

// remember caches a verification made under trust generation gen.
func (v *Verifier) remember(key [32]byte, gen uint64, p engine.Principal, notBefore, notAfter time.Time) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.gen != gen {
		return
	}
	if len(v.cache) >= maxVerifiedCache {
		for k := range v.cache { // drop an arbitrary entry
			delete(v.cache, k)
			break
		}
	}
	v.cache[key] = verified{p: p, notBefore: notBefore, notAfter: notAfter}
}
