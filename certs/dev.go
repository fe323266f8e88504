package certs

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"maps"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/minikms/minikms/engine"
	"github.com/minikms/minikms/pki"
)

// DevMember is one client identity of the development bundle.
type DevMember struct {
	Tenant, Member string
	Role           engine.Role
}

// DevMembers are the identities `minikms dev` provides.
var DevMembers = []DevMember{
	{"acme", "admin", engine.RoleAdmin}, {"acme", "app", engine.RoleApp},
	{"globex", "admin", engine.RoleAdmin}, {"globex", "app", engine.RoleApp},
}

// renewBefore is how close to expiry a dev certificate is reissued.
const renewBefore = 30 * 24 * time.Hour

// Bundle describes where the development bundle lives.
type Bundle struct {
	Dir string // <data-dir>/certs
}

// CAFile is the trust anchor clients use to verify the server.
func (b Bundle) CAFile() string { return filepath.Join(b.Dir, "ca.crt") }

// MemberFiles returns the certificate (chain) and key paths of a member.
func (b Bundle) MemberFiles(tenant, member string) (certFile, keyFile string) {
	base := filepath.Join(b.Dir, tenant, member)
	return base + ".crt", base + ".key"
}

// ServerFiles returns the server certificate and key paths.
func (b Bundle) ServerFiles() (certFile, keyFile string) {
	return filepath.Join(b.Dir, "server.crt"), filepath.Join(b.Dir, "server.key")
}

// WriteDev writes (or keeps, when still valid) the development bundle:
// ca.crt, a certificate chain and key for every DevMember, a server
// certificate for hosts, and pykmip.conf with a section per member. It
// returns the server certificate.
func (b Bundle) WriteDev(ctx context.Context, auth *pki.Authority, hosts []string, kmipPort string) (tls.Certificate, error) {
	now := time.Now()
	root, err := auth.Root(ctx)
	if err != nil {
		return tls.Certificate{}, err
	}
	if err := os.MkdirAll(b.Dir, 0o755); err != nil {
		return tls.Certificate{}, err
	}
	if err := writeIfChanged(b.CAFile(), pemCert(root.Cert), 0o644); err != nil {
		return tls.Certificate{}, err
	}
	for _, m := range DevMembers {
		ca, err := auth.Tenant(ctx, m.Tenant, true)
		if err != nil {
			return tls.Certificate{}, err
		}
		certFile, keyFile := b.MemberFiles(m.Tenant, m.Member)
		err = ensureLeaf(certFile, keyFile, root.Cert, ca.Cert, now, func(leaf *x509.Certificate) bool {
			p, err := pki.Identify([]*x509.Certificate{leaf, ca.Cert, root.Cert})
			return err == nil && p.Tenant == m.Tenant && p.Member == m.Member && p.Role == m.Role
		}, func(pub crypto.PublicKey) (*x509.Certificate, error) {
			spec := pki.MemberSpec{Tenant: m.Tenant, Member: m.Member, Role: m.Role, PublicKey: pub}
			c, err := auth.IssueMember(ctx, spec)
			if errors.Is(err, pki.ErrNoRecords) {
				// A store without identity records: issue unrecorded.
				return pki.IssueMember(ca, spec, now)
			}
			return c, err
		})
		if err != nil {
			return tls.Certificate{}, fmt.Errorf("dev certificate %s/%s: %w", m.Tenant, m.Member, err)
		}
	}
	certFile, keyFile := b.ServerFiles()
	err = ensureLeaf(certFile, keyFile, root.Cert, nil, now, func(leaf *x509.Certificate) bool {
		return sameHosts(leaf, hosts) && slices.Contains(leaf.ExtKeyUsage, x509.ExtKeyUsageServerAuth)
	}, func(pub crypto.PublicKey) (*x509.Certificate, error) {
		return pki.IssueServer(root, hosts, pub, now)
	})
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("dev server certificate: %w", err)
	}
	if err := writeIfChanged(filepath.Join(b.Dir, "pykmip.conf"), []byte(b.pykmipConf(kmipPort)), 0o644); err != nil {
		return tls.Certificate{}, err
	}
	return LoadKeyPair(certFile, keyFile)
}

// sameHosts reports whether the certificate names exactly hosts.
func sameHosts(leaf *x509.Certificate, hosts []string) bool {
	want := map[string]bool{}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			want["ip:"+ip.String()] = true
		} else {
			want["dns:"+strings.ToLower(h)] = true
		}
	}
	have := map[string]bool{}
	for _, d := range leaf.DNSNames {
		have["dns:"+strings.ToLower(d)] = true
	}
	for _, ip := range leaf.IPAddresses {
		have["ip:"+ip.String()] = true
	}
	return maps.Equal(want, have)
}

// ensureLeaf keeps an existing certificate and key when they still verify
// under root (via issuer when set), match each other, satisfy ok, are not
// about to expire, and the file holds exactly the leaf (and its issuer when
// set); otherwise it makes a new key and certificate.
func ensureLeaf(certFile, keyFile string, root, issuer *x509.Certificate, now time.Time, ok func(*x509.Certificate) bool, issue func(crypto.PublicKey) (*x509.Certificate, error)) error {
	if pair, err := tls.LoadX509KeyPair(certFile, keyFile); err == nil && exactChain(pair.Certificate, issuer) {
		leaf, err := x509.ParseCertificate(pair.Certificate[0])
		if err == nil && leaf.NotAfter.After(now.Add(renewBefore)) && ok(leaf) {
			roots := x509.NewCertPool()
			roots.AddCert(root)
			inter := x509.NewCertPool()
			if issuer != nil {
				inter.AddCert(issuer)
			}
			if _, err := leaf.Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter, CurrentTime: now, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err == nil {
				return nil
			}
		}
	}
	if err := os.MkdirAll(filepath.Dir(certFile), 0o755); err != nil {
		return err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	leaf, err := issue(key.Public())
	if err != nil {
		return err
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return err
	}
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
	clear(der)
	if err := writeAtomic(keyFile, keyPEM, 0o600); err != nil {
		return err
	}
	chain := pemCert(leaf)
	if issuer != nil {
		chain = append(chain, pemCert(issuer)...)
	}
	return writeAtomic(certFile, chain, 0o644)
}

// exactChain reports whether the certificates are the leaf alone (issuer
// nil) or the leaf followed by exactly issuer.
func exactChain(chain [][]byte, issuer *x509.Certificate) bool {
	if issuer == nil {
		return len(chain) == 1
	}
	return len(chain) == 2 && bytes.Equal(chain[1], issuer.Raw)
}

func pemCert(c *x509.Certificate) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})
}

func writeIfChanged(path string, data []byte, perm os.FileMode) error {
	if old, err := os.ReadFile(path); err == nil && bytes.Equal(old, data) {
		return nil
	}
	return writeAtomic(path, data, perm)
}

// writeAtomic writes through a temporary file and a rename, so a crash
// never leaves half a key or certificate.
func writeAtomic(path string, data []byte, perm os.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".tmp-"+filepath.Base(path))
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(perm); err != nil {
		tmp.Close()
		return err
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// pykmipConf is a PyKMIP client configuration with one section per member.
func (b Bundle) pykmipConf(port string) string {
	var sb strings.Builder
	sb.WriteString("# PyKMIP client configuration for the miniKMS development bundle.\n")
	sb.WriteString("# Use: ProxyKmipClient(config='acme-app', config_file='" + filepath.Join(b.Dir, "pykmip.conf") + "')\n")
	for _, m := range DevMembers {
		certFile, keyFile := b.MemberFiles(m.Tenant, m.Member)
		fmt.Fprintf(&sb, "\n[%s-%s]\nhost=127.0.0.1\nport=%s\ncertfile=%s\nkeyfile=%s\nca_certs=%s\ncert_reqs=CERT_REQUIRED\nssl_version=PROTOCOL_SSLv23\ndo_handshake_on_connect=True\nsuppress_ragged_eofs=True\n",
			m.Tenant, m.Member, port, abs(certFile), abs(keyFile), abs(b.CAFile()))
	}
	return sb.String()
}

func abs(p string) string {
	if a, err := filepath.Abs(p); err == nil {
		return a
	}
	return p
}
