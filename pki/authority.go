package pki

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/minikms/minikms/engine"
)

// MetaStore is the part of the store the authority persists CAs in.
type MetaStore interface {
	InitMeta(ctx context.Context, key string, value []byte) ([]byte, error)
	GetMeta(ctx context.Context, key string) ([]byte, error)
	ListMeta(ctx context.Context, prefix string) (map[string][]byte, error)
}

// KeySource makes and loads CA signing keys (ECDSA P-384). The software
// source seals PKCS#8 keys with the root-derived system key; the HSM source
// keeps them in the token. ref is what the authority persists to find the
// key again; it is never the plaintext key.
type KeySource interface {
	Generate(ctx context.Context, label string) (signer crypto.Signer, ref []byte, err error)
	Load(ctx context.Context, label string, ref []byte) (crypto.Signer, error)
}

// Sealer wraps server secrets (implemented by *engine.Engine).
type Sealer interface {
	SealSystem(ctx context.Context, label string, plaintext []byte) ([]byte, error)
	OpenSystem(ctx context.Context, label string, sealed []byte) ([]byte, error)
}

// SealedKeys is the software KeySource: keys generated in process, stored
// sealed under the root-derived system key.
type SealedKeys struct{ Sealer Sealer }

// Generate implements KeySource.
func (s SealedKeys) Generate(ctx context.Context, label string) (crypto.Signer, []byte, error) {
	k, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		return nil, nil, err
	}
	defer clear(der)
	ref, err := s.Sealer.SealSystem(ctx, "pki/"+label, der)
	if err != nil {
		return nil, nil, err
	}
	return k, ref, nil
}

// Load implements KeySource.
func (s SealedKeys) Load(ctx context.Context, label string, ref []byte) (crypto.Signer, error) {
	der, err := s.Sealer.OpenSystem(ctx, "pki/"+label, ref)
	if err != nil {
		return nil, fmt.Errorf("open CA key %s: %w", label, err)
	}
	defer clear(der)
	k, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		return nil, fmt.Errorf("CA key %s: %w", label, err)
	}
	signer, ok := k.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("CA key %s is not a signing key", label)
	}
	return signer, nil
}

const (
	metaRootCA   = "pki.ca.root"
	metaTenantCA = "pki.ca.tenant."
)

type caRecord struct {
	Cert []byte `json:"cert"`
	Key  []byte `json:"key"`
}

// Authority keeps the root CA and the tenant CAs: it creates each once,
// persists it (certificate and key reference) and loads it afterwards.
type Authority struct {
	store MetaStore
	keys  KeySource
	now   func() time.Time

	mu      sync.Mutex
	root    *CA
	tenants map[string]*CA

	crls sync.Map // tenant ("" = root) -> cachedCRL
}

// NewAuthority returns an authority over store and keys.
func NewAuthority(store MetaStore, keys KeySource, now func() time.Time) *Authority {
	if now == nil {
		now = time.Now
	}
	return &Authority{store: store, keys: keys, now: now, tenants: map[string]*CA{}}
}

// Root returns the root CA, creating it on first use.
func (a *Authority) Root(ctx context.Context) (*CA, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.rootLocked(ctx)
}

func (a *Authority) rootLocked(ctx context.Context) (*CA, error) {
	if a.root != nil {
		return a.root, nil
	}
	ca, err := a.loadOrCreate(ctx, metaRootCA, "root", func(s crypto.Signer) (*CA, error) {
		return NewRootCA(s, a.now())
	})
	if err != nil {
		return nil, err
	}
	a.root = ca
	return ca, nil
}

// ErrNoTenant is returned for a tenant that has no CA.
var ErrNoTenant = errors.New("no such tenant")

// Tenant returns a tenant's CA; with create, it is made if absent.
func (a *Authority) Tenant(ctx context.Context, tenant string, create bool) (*CA, error) {
	if !engine.ValidTenantID(tenant) {
		return nil, fmt.Errorf("invalid tenant id %q: 1-63 characters of a-z, 0-9 and '-'", tenant)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if ca, ok := a.tenants[tenant]; ok {
		return ca, nil
	}
	root, err := a.rootLocked(ctx)
	if err != nil {
		return nil, err
	}
	key := metaTenantCA + tenant
	if !create {
		if _, err := a.store.GetMeta(ctx, key); errors.Is(err, engine.ErrNotFound) {
			return nil, fmt.Errorf("%w %q", ErrNoTenant, tenant)
		}
	}
	ca, err := a.loadOrCreate(ctx, key, "tenant/"+tenant, func(s crypto.Signer) (*CA, error) {
		return NewTenantCA(root, tenant, s, a.now())
	})
	if err != nil {
		return nil, err
	}
	a.tenants[tenant] = ca
	return ca, nil
}

// Tenants lists the tenants that have a CA.
func (a *Authority) Tenants(ctx context.Context) ([]string, error) {
	m, err := a.store.ListMeta(ctx, metaTenantCA)
	if err != nil {
		return nil, err
	}
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, strings.TrimPrefix(k, metaTenantCA))
	}
	return out, nil
}

// TenantCertificates returns every tenant CA certificate (the
// intermediates client chains are verified with).
func (a *Authority) TenantCertificates(ctx context.Context) ([]*x509.Certificate, error) {
	m, err := a.store.ListMeta(ctx, metaTenantCA)
	if err != nil {
		return nil, err
	}
	out := make([]*x509.Certificate, 0, len(m))
	for k, v := range m {
		var rec caRecord
		if err := json.Unmarshal(v, &rec); err != nil {
			return nil, fmt.Errorf("%s: %w", k, err)
		}
		c, err := x509.ParseCertificate(rec.Cert)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", k, err)
		}
		out = append(out, c)
	}
	return out, nil
}

// loadOrCreate loads the CA under key, or creates it with make. When two
// processes create at once, the first record stored wins and the other's
// key is discarded.
func (a *Authority) loadOrCreate(ctx context.Context, key, label string, make func(crypto.Signer) (*CA, error)) (*CA, error) {
	raw, err := a.store.GetMeta(ctx, key)
	if errors.Is(err, engine.ErrNotFound) {
		signer, ref, err := a.keys.Generate(ctx, label)
		if err != nil {
			return nil, fmt.Errorf("generate %s CA key: %w", label, err)
		}
		ca, err := make(signer)
		if err != nil {
			return nil, err
		}
		rec, err := json.Marshal(caRecord{Cert: ca.Cert.Raw, Key: ref})
		if err != nil {
			return nil, err
		}
		raw, err = a.store.InitMeta(ctx, key, rec)
		if err != nil {
			return nil, fmt.Errorf("store %s CA: %w", label, err)
		}
		if string(raw) == string(rec) {
			return ca, nil
		}
	} else if err != nil {
		return nil, err
	}
	var rec caRecord
	if err := json.Unmarshal(raw, &rec); err != nil {
		return nil, fmt.Errorf("stored %s CA: %w", label, err)
	}
	cert, err := x509.ParseCertificate(rec.Cert)
	if err != nil {
		return nil, fmt.Errorf("stored %s CA certificate: %w", label, err)
	}
	signer, err := a.keys.Load(ctx, label, rec.Key)
	if err != nil {
		return nil, err
	}
	if pub, ok := signer.Public().(interface{ Equal(crypto.PublicKey) bool }); !ok || !pub.Equal(cert.PublicKey) {
		return nil, fmt.Errorf("stored %s CA key does not match its certificate", label)
	}
	return &CA{Cert: cert, Signer: signer}, nil
}

// metaSigningKey prefixes the server signing keys (not CAs) in meta.
const metaSigningKey = "pki.key."

type keyRecord struct {
	Key  []byte `json:"key"`  // KeySource reference
	SPKI []byte `json:"spki"` // public key, to check what Load returns
}

// SigningKey returns the server signing key named label (for example the
// audit checkpoint key), creating it on first use. It lives where the CA
// keys do: sealed under the root key, or in the HSM.
func (a *Authority) SigningKey(ctx context.Context, label string) (crypto.Signer, error) {
	return a.signingKey(ctx, label, true)
}

// LoadSigningKey returns the signing key named label; engine.ErrNotFound
// when it was never made.
func (a *Authority) LoadSigningKey(ctx context.Context, label string) (crypto.Signer, error) {
	return a.signingKey(ctx, label, false)
}

// SigningPublicKey returns the public key stored beside the signing key
// named label without opening the key (no root key needed). It is not
// authenticated: whoever can write the store can replace it.
func SigningPublicKey(ctx context.Context, store MetaStore, label string) (crypto.PublicKey, error) {
	raw, err := store.GetMeta(ctx, metaSigningKey+label)
	if err != nil {
		return nil, err
	}
	var rec keyRecord
	if err := json.Unmarshal(raw, &rec); err != nil {
		return nil, fmt.Errorf("stored %s key: %w", label, err)
	}
	return x509.ParsePKIXPublicKey(rec.SPKI)
}

func (a *Authority) signingKey(ctx context.Context, label string, create bool) (crypto.Signer, error) {
	key := metaSigningKey + label
	raw, err := a.store.GetMeta(ctx, key)
	if errors.Is(err, engine.ErrNotFound) && create {
		signer, ref, err := a.keys.Generate(ctx, "key/"+label)
		if err != nil {
			return nil, fmt.Errorf("generate %s key: %w", label, err)
		}
		spki, err := x509.MarshalPKIXPublicKey(signer.Public())
		if err != nil {
			return nil, err
		}
		rec, err := json.Marshal(keyRecord{Key: ref, SPKI: spki})
		if err != nil {
			return nil, err
		}
		if raw, err = a.store.InitMeta(ctx, key, rec); err != nil {
			return nil, fmt.Errorf("store %s key: %w", label, err)
		}
		if string(raw) == string(rec) {
			return signer, nil
		}
	} else if err != nil {
		return nil, err
	}
	var rec keyRecord
	if err := json.Unmarshal(raw, &rec); err != nil {
		return nil, fmt.Errorf("stored %s key: %w", label, err)
	}
	signer, err := a.keys.Load(ctx, "key/"+label, rec.Key)
	if err != nil {
		return nil, err
	}
	spki, err := x509.MarshalPKIXPublicKey(signer.Public())
	if err != nil {
		return nil, err
	}
	if string(spki) != string(rec.SPKI) {
		return nil, fmt.Errorf("stored %s key does not match its public key", label)
	}
	return signer, nil
}
