package certs_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/x509"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/minikms/minikms/certs"
	"github.com/minikms/minikms/engine"
	"github.com/minikms/minikms/pki"
)

var devHosts = []string{"localhost", "127.0.0.1"}

// writeDev writes the bundle into dir with e's authority.
func writeDev(t *testing.T, e *env, dir string, hosts []string) certs.Bundle {
	t.Helper()
	b := certs.Bundle{Dir: dir}
	_, err := b.WriteDev(context.Background(), e.auth, hosts, "5696")
	require.NoError(t, err)
	return b
}

// fileState is what "rewritten" is judged by.
type fileState struct {
	content string
	mtime   time.Time
	mode    fs.FileMode
}

// snapshot records every regular file under dir.
func snapshot(t *testing.T, dir string) map[string]fileState {
	t.Helper()
	out := map[string]fileState{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		out[rel] = fileState{content: string(b), mtime: info.ModTime(), mode: info.Mode().Perm()}
		return nil
	})
	require.NoError(t, err)
	return out
}

// age sets the mtime of every file under dir to a fixed past instant, so
// that any rewrite is visible whatever the file system's time resolution.
func age(t *testing.T, dir string) {
	t.Helper()
	past := time.Date(2020, 1, 2, 3, 4, 5, 0, time.UTC)
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		return os.Chtimes(p, past, past)
	})
	require.NoError(t, err)
}

// bundleFiles are the files WriteDev must produce, relative to the dir.
func bundleFiles() []string {
	files := []string{"ca.crt", "server.crt", "server.key", "pykmip.conf"}
	for _, m := range certs.DevMembers {
		files = append(files, filepath.Join(m.Tenant, m.Member+".crt"), filepath.Join(m.Tenant, m.Member+".key"))
	}
	return files
}

// assertMember checks a member's files: a chain of leaf and its tenant CA,
// a matching P-256 key, and a chain that verifies to the right principal.
func assertMember(t *testing.T, e *env, b certs.Bundle, m certs.DevMember) *x509.Certificate {
	t.Helper()
	certFile, keyFile := b.MemberFiles(m.Tenant, m.Member)
	chain := readCerts(t, certFile)
	require.Len(t, chain, 2, "%s holds leaf and tenant CA", certFile)
	leaf, ca := chain[0], chain[1]
	assert.Equal(t, e.tenant(t, m.Tenant).Cert.Raw, ca.Raw, "second certificate is the tenant CA")
	assert.Equal(t, []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}, leaf.ExtKeyUsage)

	key := readKey(t, keyFile)
	assert.Equal(t, elliptic.P256(), key.Public().(*ecdsa.PublicKey).Curve, "member keys are P-256")
	assert.True(t, publicKeyEqual(key.Public(), leaf.PublicKey), "key matches certificate")
	info, err := os.Stat(keyFile)
	require.NoError(t, err)
	assert.Equal(t, fs.FileMode(0o600), info.Mode().Perm(), "%s mode", keyFile)

	// The pair loads as TLS material.
	pairCert, err := certs.LoadKeyPair(certFile, keyFile)
	require.NoError(t, err)
	require.NotNil(t, pairCert.Leaf)
	assert.Equal(t, leaf.Raw, pairCert.Leaf.Raw)
	assert.Len(t, pairCert.Certificate, 2)

	// Verified by a verifier that knows no tenant CA: the file's chain is enough.
	want := engine.Principal{Tenant: m.Tenant, Member: m.Member, Role: m.Role}
	p, err := pki.NewVerifier(e.root(t).Cert, nil, nil).Verify(rawChain(chain...))
	require.NoError(t, err)
	assert.Equal(t, want, withoutHash(p))

	// And Identify on the chain x509 builds.
	roots, inter := x509.NewCertPool(), x509.NewCertPool()
	roots.AddCert(e.root(t).Cert)
	inter.AddCert(ca)
	chains, err := leaf.Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}})
	require.NoError(t, err)
	p, err = pki.Identify(chains[0])
	require.NoError(t, err)
	assert.Equal(t, want, withoutHash(p))
	return leaf
}

func withoutHash(p engine.Principal) engine.Principal {
	p.CertHash = ""
	return p
}

// assertServer checks the server files against hosts.
func assertServer(t *testing.T, e *env, b certs.Bundle, hosts []string) *x509.Certificate {
	t.Helper()
	certFile, keyFile := b.ServerFiles()
	chain := readCerts(t, certFile)
	require.Len(t, chain, 1)
	leaf := chain[0]
	assert.Equal(t, []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, leaf.ExtKeyUsage)
	var names []string
	names = append(names, leaf.DNSNames...)
	for _, ip := range leaf.IPAddresses {
		names = append(names, ip.String())
	}
	var want []string
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			h = ip.String()
		}
		want = append(want, h)
	}
	assert.ElementsMatch(t, want, names, "the server certificate names exactly the hosts")
	roots := x509.NewCertPool()
	roots.AddCert(e.root(t).Cert)
	for _, h := range hosts {
		_, err := leaf.Verify(x509.VerifyOptions{Roots: roots, DNSName: h})
		assert.NoError(t, err, "host %s", h)
	}
	key := readKey(t, keyFile)
	assert.True(t, publicKeyEqual(key.Public(), leaf.PublicKey))
	info, err := os.Stat(keyFile)
	require.NoError(t, err)
	assert.Equal(t, fs.FileMode(0o600), info.Mode().Perm(), "%s mode", keyFile)
	return leaf
}

func TestWriteDevWritesBundle(t *testing.T) {
	e := newEnv(t)
	dir := filepath.Join(t.TempDir(), "certs")
	b := certs.Bundle{Dir: dir}
	serverCert, err := b.WriteDev(t.Context(), e.auth, devHosts, "15696")
	require.NoError(t, err)

	files := snapshot(t, dir)
	assert.ElementsMatch(t, bundleFiles(), slices.Collect(mapKeys(files)), "exactly the bundle's files, no temporary leftovers")
	for name, f := range files {
		want := fs.FileMode(0o644)
		if strings.HasSuffix(name, ".key") {
			want = 0o600
		}
		assert.Equal(t, want, f.mode, "mode of %s", name)
	}

	// Paths of the automation contract.
	assert.Equal(t, filepath.Join(dir, "ca.crt"), b.CAFile())
	c, k := b.MemberFiles("acme", "app")
	assert.Equal(t, filepath.Join(dir, "acme", "app.crt"), c)
	assert.Equal(t, filepath.Join(dir, "acme", "app.key"), k)

	ca := readCerts(t, b.CAFile())
	require.Len(t, ca, 1)
	assert.Equal(t, e.root(t).Cert.Raw, ca[0].Raw, "ca.crt is the root CA")

	for _, m := range certs.DevMembers {
		t.Run(m.Tenant+"/"+m.Member, func(t *testing.T) {
			assertMember(t, e, b, m)
		})
	}
	leaf := assertServer(t, e, b, devHosts)
	require.NotNil(t, serverCert.Leaf)
	assert.Equal(t, leaf.Raw, serverCert.Leaf.Raw, "WriteDev returns the server certificate it wrote")
	assert.NotNil(t, serverCert.PrivateKey)

	conf := files["pykmip.conf"].content
	for _, m := range certs.DevMembers {
		certFile, keyFile := b.MemberFiles(m.Tenant, m.Member)
		section := pykmipSection(t, conf, m.Tenant+"-"+m.Member)
		assert.Equal(t, "127.0.0.1", section["host"])
		assert.Equal(t, "15696", section["port"])
		assert.Equal(t, certFile, section["certfile"])
		assert.Equal(t, keyFile, section["keyfile"])
		assert.Equal(t, b.CAFile(), section["ca_certs"])
		assert.Equal(t, "CERT_REQUIRED", section["cert_reqs"])
		for _, p := range []string{section["certfile"], section["keyfile"], section["ca_certs"]} {
			assert.True(t, filepath.IsAbs(p), "%s is absolute", p)
			assert.FileExists(t, p)
		}
	}
}

func mapKeys[V any](m map[string]V) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// pykmipSection returns the key=value pairs of [name] in an INI text.
func pykmipSection(t *testing.T, conf, name string) map[string]string {
	t.Helper()
	out := map[string]string{}
	in := false
	for _, line := range strings.Split(conf, "\n") {
		line = strings.TrimSpace(line)
		switch {
		case strings.HasPrefix(line, "["):
			in = line == "["+name+"]"
		case in && strings.Contains(line, "="):
			k, v, _ := strings.Cut(line, "=")
			out[k] = v
		}
	}
	require.NotEmpty(t, out, "section [%s] in pykmip.conf", name)
	return out
}

// TestWriteDevBundleVerifiesWithOpenSSL checks the files as written with an
// independent implementation.
func TestWriteDevBundleVerifiesWithOpenSSL(t *testing.T) {
	if _, err := exec.LookPath("openssl"); err != nil {
		t.Skip("openssl is not installed: cannot cross-check the bundle")
	}
	e := newEnv(t)
	b := writeDev(t, e, filepath.Join(t.TempDir(), "certs"), devHosts)
	for _, m := range certs.DevMembers {
		t.Run(m.Tenant+"/"+m.Member, func(t *testing.T) {
			certFile, keyFile := b.MemberFiles(m.Tenant, m.Member)
			out, err := exec.Command("openssl", "verify", "-x509_strict", "-purpose", "sslclient", "-CAfile", b.CAFile(), "-untrusted", certFile, certFile).CombinedOutput()
			require.NoError(t, err, "%s", out)
			out, err = exec.Command("openssl", "pkey", "-in", keyFile, "-noout").CombinedOutput()
			require.NoError(t, err, "openssl reads the key: %s", out)
		})
	}
	certFile, _ := b.ServerFiles()
	out, err := exec.Command("openssl", "verify", "-x509_strict", "-purpose", "sslserver", "-CAfile", b.CAFile(), certFile).CombinedOutput()
	require.NoError(t, err, "%s", out)
}

func TestWriteDevRewritesNothingTheSecondTime(t *testing.T) {
	e := newEnv(t)
	dir := filepath.Join(t.TempDir(), "certs")
	first := certs.Bundle{Dir: dir}
	server1, err := first.WriteDev(t.Context(), e.auth, devHosts, "5696")
	require.NoError(t, err)
	age(t, dir)
	before := snapshot(t, dir)

	tests := []struct {
		name string
		auth func() *pki.Authority
	}{
		{"same authority", func() *pki.Authority { return e.auth }},
		{"new authority over the same store", func() *pki.Authority {
			return pki.NewAuthority(e.store, pki.SealedKeys{Sealer: e.eng}, nil)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			server2, err := certs.Bundle{Dir: dir}.WriteDev(t.Context(), tt.auth(), devHosts, "5696")
			require.NoError(t, err)
			assert.Equal(t, before, snapshot(t, dir), "a second WriteDev rewrote files")
			assert.Equal(t, server1.Certificate, server2.Certificate, "same server certificate")
		})
	}
}

// replaceMember overwrites a member's files with cert (chain) and key PEM.
func replaceMember(t *testing.T, b certs.Bundle, tenant, member string, chain, key []byte) {
	t.Helper()
	certFile, keyFile := b.MemberFiles(tenant, member)
	if chain != nil {
		require.NoError(t, os.WriteFile(certFile, chain, 0o644))
	}
	if key != nil {
		require.NoError(t, os.WriteFile(keyFile, key, 0o600))
	}
}

func TestWriteDevReissues(t *testing.T) {
	now := time.Now()
	acmeApp := []string{filepath.Join("acme", "app.crt"), filepath.Join("acme", "app.key")}
	server := []string{"server.crt", "server.key"}
	tests := []struct {
		name    string
		damage  func(t *testing.T, e *env, b certs.Bundle)
		changed []string // files that must be rewritten; every other file must not be
	}{
		{"member within 30 days of expiry", func(t *testing.T, e *env, b certs.Bundle) {
			c, k := e.issueMember(t, "acme", "app", engine.RoleApp, now, 29*24*time.Hour)
			replaceMember(t, b, "acme", "app", pemCerts(c, e.tenant(t, "acme").Cert), pemKey(t, k))
		}, acmeApp},
		{"expired member", func(t *testing.T, e *env, b certs.Bundle) {
			c, k := e.issueMember(t, "acme", "app", engine.RoleApp, now.Add(-48*time.Hour), time.Hour)
			replaceMember(t, b, "acme", "app", pemCerts(c, e.tenant(t, "acme").Cert), pemKey(t, k))
		}, acmeApp},
		{"key of another member", func(t *testing.T, e *env, b certs.Bundle) {
			_, adminKey := b.MemberFiles("acme", "admin")
			k, err := os.ReadFile(adminKey)
			require.NoError(t, err)
			replaceMember(t, b, "acme", "app", nil, k)
		}, acmeApp},
		{"fresh key that matches nothing", func(t *testing.T, e *env, b certs.Bundle) {
			replaceMember(t, b, "acme", "app", nil, pemKey(t, newP256(t)))
		}, acmeApp},
		{"key file is garbage", func(t *testing.T, e *env, b certs.Bundle) {
			replaceMember(t, b, "acme", "app", nil, []byte("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"))
		}, acmeApp},
		{"key file removed", func(t *testing.T, e *env, b certs.Bundle) {
			_, keyFile := b.MemberFiles("acme", "app")
			require.NoError(t, os.Remove(keyFile))
		}, acmeApp},
		{"certificate file is garbage", func(t *testing.T, e *env, b certs.Bundle) {
			replaceMember(t, b, "acme", "app", []byte("not a certificate"), nil)
		}, acmeApp},
		{"certificate bit-flipped", func(t *testing.T, e *env, b certs.Bundle) {
			certFile, _ := b.MemberFiles("acme", "app")
			chain := readCerts(t, certFile)
			der := append([]byte{}, chain[0].Raw...)
			der[len(der)-3] ^= 1 // inside the signature
			leaf, err := x509.ParseCertificate(der)
			if err != nil {
				replaceMember(t, b, "acme", "app", []byte("broken"), nil)
				return
			}
			replaceMember(t, b, "acme", "app", pemCerts(leaf, chain[1]), nil)
		}, acmeApp},
		{"files of a member of another tenant", func(t *testing.T, e *env, b certs.Bundle) {
			c, k := b.MemberFiles("globex", "app")
			chain, err := os.ReadFile(c)
			require.NoError(t, err)
			key, err := os.ReadFile(k)
			require.NoError(t, err)
			replaceMember(t, b, "acme", "app", chain, key)
		}, acmeApp},
		{"member with another role", func(t *testing.T, e *env, b certs.Bundle) {
			c, k := e.issueMember(t, "acme", "app", engine.RoleAuditor, now, 0)
			replaceMember(t, b, "acme", "app", pemCerts(c, e.tenant(t, "acme").Cert), pemKey(t, k))
		}, acmeApp},
		{"member issued under a foreign root", func(t *testing.T, e *env, b certs.Bundle) {
			other := newEnv(t)
			c, k := other.issueMember(t, "acme", "app", engine.RoleApp, now, 0)
			replaceMember(t, b, "acme", "app", pemCerts(c, other.tenant(t, "acme").Cert), pemKey(t, k))
		}, acmeApp},
		{"server within 30 days of expiry", func(t *testing.T, e *env, b certs.Bundle) {
			s := e.issueServer(t, devHosts, now.Add(-pki.ServerValidity+20*24*time.Hour))
			certFile, keyFile := b.ServerFiles()
			require.NoError(t, os.WriteFile(certFile, pemCerts(s.Leaf), 0o644))
			require.NoError(t, os.WriteFile(keyFile, pemKey(t, s.PrivateKey), 0o600))
		}, server},
		{"server key mismatched", func(t *testing.T, e *env, b certs.Bundle) {
			_, keyFile := b.ServerFiles()
			require.NoError(t, os.WriteFile(keyFile, pemKey(t, newP256(t)), 0o600))
		}, server},
		{"member certificate as server certificate", func(t *testing.T, e *env, b certs.Bundle) {
			c, k := b.MemberFiles("acme", "admin")
			certFile, keyFile := b.ServerFiles()
			chain, err := os.ReadFile(c)
			require.NoError(t, err)
			key, err := os.ReadFile(k)
			require.NoError(t, err)
			require.NoError(t, os.WriteFile(certFile, chain, 0o644))
			require.NoError(t, os.WriteFile(keyFile, key, 0o600))
		}, server},
		{"ca.crt replaced", func(t *testing.T, e *env, b certs.Bundle) {
			other := newEnv(t)
			require.NoError(t, os.WriteFile(b.CAFile(), pemCerts(other.root(t).Cert), 0o644))
		}, []string{"ca.crt"}},
		{"pykmip.conf edited", func(t *testing.T, e *env, b certs.Bundle) {
			require.NoError(t, os.WriteFile(filepath.Join(b.Dir, "pykmip.conf"), []byte("[x]\n"), 0o644))
		}, []string{"pykmip.conf"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			dir := filepath.Join(t.TempDir(), "certs")
			b := writeDev(t, e, dir, devHosts)
			age(t, dir)
			clean := snapshot(t, dir)
			tt.damage(t, e, b)
			age(t, dir)
			damaged := snapshot(t, dir)

			writeDev(t, e, dir, devHosts)
			after := snapshot(t, dir)
			assert.ElementsMatch(t, bundleFiles(), slices.Collect(mapKeys(after)))
			for name, st := range after {
				if slices.Contains(tt.changed, name) {
					assert.False(t, damaged[name].mtime.Equal(st.mtime), "%s must be rewritten", name)
					if strings.HasSuffix(name, ".crt") && name != "ca.crt" {
						assert.False(t, clean[name].content == st.content, "%s reissued, not restored", name)
					}
				} else {
					assert.True(t, damaged[name] == st, "%s must not be touched", name)
				}
			}
			for _, m := range certs.DevMembers {
				leaf := assertMember(t, e, b, m)
				assert.True(t, leaf.NotAfter.After(time.Now().Add(300*24*time.Hour)), "%s/%s valid for about a year", m.Tenant, m.Member)
			}
			assertServer(t, e, b, devHosts)
			assert.Equal(t, clean["ca.crt"], after["ca.crt"].withMtime(clean["ca.crt"].mtime))
		})
	}
}

func (f fileState) withMtime(t time.Time) fileState {
	f.mtime = t
	return f
}

// TestWriteDevKeepsMemberOutsideRenewalWindow: 31 days before expiry is
// not "about to expire"; the member is kept.
func TestWriteDevKeepsMemberOutsideRenewalWindow(t *testing.T) {
	e := newEnv(t)
	dir := filepath.Join(t.TempDir(), "certs")
	b := writeDev(t, e, dir, devHosts)
	c, k := e.issueMember(t, "acme", "app", engine.RoleApp, time.Now(), 31*24*time.Hour)
	replaceMember(t, b, "acme", "app", pemCerts(c, e.tenant(t, "acme").Cert), pemKey(t, k))
	age(t, dir)
	before := snapshot(t, dir)
	writeDev(t, e, dir, devHosts)
	assert.Equal(t, before, snapshot(t, dir))
}

func TestWriteDevServerHosts(t *testing.T) {
	tests := []struct {
		name    string
		first   []string
		second  []string
		reissue bool
	}{
		{"same hosts", []string{"localhost", "127.0.0.1"}, []string{"localhost", "127.0.0.1"}, false},
		{"host added", []string{"localhost"}, []string{"localhost", "kms.example"}, true},
		{"IP added", []string{"localhost", "127.0.0.1"}, []string{"localhost", "127.0.0.1", "::1"}, true},
		{"host replaced", []string{"localhost", "kms-a.example"}, []string{"localhost", "kms-b.example"}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assertServerReissue(t, tt.first, tt.second, tt.reissue)
		})
	}
}

// TestWriteDevServerDropsRemovedHosts: when a host is removed from the
// list, the kept certificate still names it, because ensureLeaf only checks
// that every requested host is covered, not that nothing else is.
func TestWriteDevServerDropsRemovedHosts(t *testing.T) {
	tests := []struct {
		name          string
		first, second []string
	}{
		{"host removed", []string{"localhost", "kms-old.example"}, []string{"localhost"}},
		{"IP removed", []string{"localhost", "127.0.0.1", "10.0.0.7"}, []string{"localhost", "127.0.0.1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assertServerReissue(t, tt.first, tt.second, true)
		})
	}
}

func assertServerReissue(t *testing.T, first, second []string, reissue bool) {
	t.Helper()
	e := newEnv(t)
	dir := filepath.Join(t.TempDir(), "certs")
	b := writeDev(t, e, dir, first)
	assertServer(t, e, b, first)
	age(t, dir)
	before := snapshot(t, dir)

	writeDev(t, e, dir, second)
	after := snapshot(t, dir)
	for name, st := range after {
		if reissue && (name == "server.crt" || name == "server.key") {
			assert.False(t, before[name].content == st.content, "%s must be reissued for hosts %v (was %v)", name, second, first)
			continue
		}
		assert.True(t, before[name] == st, "%s must not be touched", name)
	}
	assertServer(t, e, b, second)
}

func TestWriteDevFailsCleanly(t *testing.T) {
	tests := []struct {
		name  string
		setup func(t *testing.T, e *env, dir string) (certs.Bundle, []string)
	}{
		{"bundle directory is a file", func(t *testing.T, e *env, dir string) (certs.Bundle, []string) {
			writeFile(t, dir, []byte("x"), 0o644)
			return certs.Bundle{Dir: dir}, devHosts
		}},
		{"tenant directory is a file", func(t *testing.T, e *env, dir string) (certs.Bundle, []string) {
			require.NoError(t, os.MkdirAll(dir, 0o755))
			writeFile(t, filepath.Join(dir, "globex"), []byte("x"), 0o644)
			return certs.Bundle{Dir: dir}, devHosts
		}},
		{"no server hosts", func(t *testing.T, e *env, dir string) (certs.Bundle, []string) {
			return certs.Bundle{Dir: dir}, nil
		}},
		{"store closed", func(t *testing.T, e *env, dir string) (certs.Bundle, []string) {
			require.NoError(t, e.store.Close())
			return certs.Bundle{Dir: dir}, devHosts
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			dir := filepath.Join(t.TempDir(), "certs")
			b, hosts := tt.setup(t, e, dir)
			_, err := b.WriteDev(t.Context(), e.auth, hosts, "5696")
			require.Error(t, err)
			// Whatever was written is complete: no temporary files, keys 0600.
			_ = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
				if err != nil || d.IsDir() {
					return nil
				}
				assert.NotContains(t, d.Name(), ".tmp-", "temporary file left behind")
				if strings.HasSuffix(p, ".key") {
					info, err := d.Info()
					require.NoError(t, err)
					assert.Equal(t, fs.FileMode(0o600), info.Mode().Perm())
				}
				return nil
			})
		})
	}
}
