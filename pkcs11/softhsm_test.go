//go:build cgo

package pkcs11

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha512"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/minikms/minikms/engine"
	"github.com/minikms/minikms/pki"
	"github.com/minikms/minikms/store/sqlite"
)

// Integration tests against a real SoftHSM2 token (see
// softhsm_helpers_test.go). They skip when SoftHSM2 is not installed unless
// MINIKMS_REQUIRE_HSM=1.

// addToken initialises another token in the same SoftHSM2 directory.
func (st *softToken) addToken(tb testing.TB, label, pin string) {
	tb.Helper()
	out, err := exec.Command("softhsm2-util", "--init-token", "--free", "--label", label, "--pin", pin, "--so-pin", "5678-so").CombinedOutput()
	if err != nil {
		tb.Fatalf("softhsm2-util --init-token: %v\n%s", err, out)
	}
}

func object(t *testing.T, st Status, label, class string) ObjectInfo {
	t.Helper()
	for _, o := range st.Objects {
		if o.Label == label && o.Class == class {
			return o
		}
	}
	t.Fatalf("no %s %q in the token; objects: %+v", class, label, st.Objects)
	return ObjectInfo{}
}

// TestSoftHSMImportedRootDerivesLikeSoftware: the tenant master keys the
// token derives with CKM_SHA256_HMAC from an imported root key are the
// software HKDF-Expand derivation (DESIGN.md), byte for byte, so data
// stored under the software root stays readable.
func TestSoftHSMImportedRootDerivesLikeSoftware(t *testing.T) {
	st := newSoftToken(t)
	h := st.open(t)
	ctx := context.Background()
	root := make([]byte, engine.RootKeySize)
	rand.Read(root)
	soft, err := engine.NewSoftKeyring(root)
	if err != nil {
		t.Fatal(err)
	}
	defer soft.Close()

	res, err := h.ImportRoot(ctx, root)
	if err != nil {
		t.Fatalf("ImportRoot: %v", err)
	}
	if !res.Created || res.Label != "minikms-root-v1" || res.Version != 1 {
		t.Fatalf("ImportRoot result %+v", res)
	}
	wantKCV, _ := engine.KeyCheckValue(ctx, soft, 1)
	if res.KeyCheckValue != wantKCV {
		t.Fatalf("check value in token %s, software %s", res.KeyCheckValue, wantKCV)
	}
	// Imported: sensitive and not extractable now, but PKCS#11 records that
	// it was not always so.
	k := res.Key
	if !k.Sensitive || k.Extractable || k.AlwaysSensitive || k.NeverExtractable || k.Local || k.KeyType != "generic-secret" || !k.Private {
		t.Fatalf("imported root key attributes: %+v", k)
	}

	kr, err := h.Keyring(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ salt, tenant string }{{"", "acme"}, {"", "globex"}, {"prod-salt", "acme"}, {"s", strings.Repeat("t", 63)}} {
		info := engine.TenantInfo(c.salt, c.tenant)
		got, err := kr.Derive(ctx, 1, info)
		if err != nil {
			t.Fatalf("Derive %q: %v", info, err)
		}
		want, _ := soft.Derive(ctx, 1, info)
		if !bytes.Equal(got, want) {
			t.Fatalf("tenant key %q: token %x, software %x", info, got, want)
		}
	}
	// An unknown version is refused, not derived from another.
	if _, err := kr.Derive(ctx, 2, []byte("x")); !errors.Is(err, ErrKeyNotFound) {
		t.Fatalf("Derive version 2: %v", err)
	}
	// Importing the same key again changes nothing; another key is refused.
	if r, err := h.ImportRoot(ctx, root); err != nil || r.Created {
		t.Fatalf("second import of the same key: %+v %v", r, err)
	}
	other := make([]byte, engine.RootKeySize)
	rand.Read(other)
	if _, err := h.ImportRoot(ctx, other); !errors.Is(err, ErrRootExists) {
		t.Fatalf("import of another key over the root: %v", err)
	}
	if _, err := h.Init(ctx, InitOptions{}); !errors.Is(err, ErrRootExists) {
		t.Fatalf("Init over an imported root: %v", err)
	}
	if err := kr.Ready(ctx); err != nil {
		t.Fatalf("Ready: %v", err)
	}
}

// TestSoftHSMInitRoot: a generated root key is sensitive, never
// extractable and local; its derivations are stable across connections;
// the status names module, token, labels and mechanisms.
func TestSoftHSMInitRoot(t *testing.T) {
	st := newSoftToken(t)
	ctx := context.Background()
	cfg := st.config()
	h, err := Open(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	res, err := h.Init(ctx, InitOptions{})
	if err != nil {
		t.Fatal(err)
	}
	k := res.Key
	if !res.Created || !k.Sensitive || k.Extractable || !k.AlwaysSensitive || !k.NeverExtractable || !k.Local || k.KeyType != "generic-secret" {
		t.Fatalf("generated root key: %+v", res)
	}
	if r, err := h.Init(ctx, InitOptions{ExistingOK: true}); err != nil || r.Created || r.KeyCheckValue != res.KeyCheckValue {
		t.Fatalf("Init ExistingOK: %+v %v", r, err)
	}
	kr, _ := h.Keyring(ctx)
	d1, err := kr.Derive(ctx, 1, engine.TenantInfo("", "acme"))
	if err != nil {
		t.Fatal(err)
	}
	stat, err := h.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := h.Close(); err != nil {
		t.Fatal(err)
	}

	txt := stat.String()
	for _, want := range []string{softhsmModule, st.label, "minikms-root-v1", "SoftHSM", "check value " + res.KeyCheckValue, "never-extractable=true"} {
		if !strings.Contains(txt, want) {
			t.Errorf("status lacks %q:\n%s", want, txt)
		}
	}
	for _, m := range stat.Mechanisms {
		if !m.Supported {
			t.Errorf("SoftHSM2 lacks %s?\n%s", m.Name, txt)
		}
	}
	if len(stat.Mechanisms) != len(RequiredMechanisms) {
		t.Errorf("mechanisms: %+v", stat.Mechanisms)
	}

	h2 := st.open(t)
	kr2, err := h2.Keyring(ctx)
	if err != nil {
		t.Fatal(err)
	}
	d2, err := kr2.Derive(ctx, 1, engine.TenantInfo("", "acme"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(d1, d2) {
		t.Fatal("the derivation changed across connections")
	}
}

// TestSoftHSMCAKeys: CA keys generated in the token (ECDSA P-384, private
// half sensitive and never extractable) sign the root CA, a tenant CA,
// member certificates and CRLs that verify; they load again from their
// stored reference on a new connection.
func TestSoftHSMCAKeys(t *testing.T) {
	st := newSoftToken(t)
	ctx := context.Background()
	db, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "pki.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()

	h, err := Open(ctx, st.config())
	if err != nil {
		t.Fatal(err)
	}
	auth := pki.NewAuthority(db, h.KeySource(), nil)
	root, err := auth.Root(ctx)
	if err != nil {
		t.Fatal(err)
	}
	tca, err := auth.Tenant(ctx, "acme", true)
	if err != nil {
		t.Fatal(err)
	}
	for _, ca := range []*pki.CA{root, tca} {
		pub, ok := ca.Cert.PublicKey.(*ecdsa.PublicKey)
		if !ok || pub.Curve != elliptic.P384() {
			t.Fatalf("CA key is %T, want ECDSA P-384", ca.Cert.PublicKey)
		}
		if _, soft := ca.Signer.(*ecdsa.PrivateKey); soft {
			t.Fatal("the CA signer is a software key")
		}
	}
	if err := tca.Cert.CheckSignatureFrom(root.Cert); err != nil {
		t.Fatalf("tenant CA does not verify against the root: %v", err)
	}
	memberKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	leaf, err := auth.IssueMember(ctx, pki.MemberSpec{Tenant: "acme", Member: "alice", Role: engine.RoleApp, PublicKey: memberKey.Public()})
	if err != nil {
		t.Fatal(err)
	}
	inter := x509.NewCertPool()
	inter.AddCert(tca.Cert)
	roots := x509.NewCertPool()
	roots.AddCert(root.Cert)
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		t.Fatalf("member certificate does not verify: %v", err)
	}
	if _, err := auth.Revoke(ctx, "acme", pki.SerialHex(leaf), 1); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		tenant string
		ca     *pki.CA
	}{{"", root}, {"acme", tca}} {
		der, err := auth.CRL(ctx, c.tenant)
		if err != nil {
			t.Fatalf("CRL %q: %v", c.tenant, err)
		}
		crl, err := x509.ParseRevocationList(der)
		if err != nil {
			t.Fatal(err)
		}
		if err := crl.CheckSignatureFrom(c.ca.Cert); err != nil {
			t.Fatalf("CRL %q does not verify: %v", c.tenant, err)
		}
		if c.tenant == "acme" && (len(crl.RevokedCertificateEntries) != 1 || crl.RevokedCertificateEntries[0].SerialNumber.Cmp(leaf.SerialNumber) != 0) {
			t.Fatalf("tenant CRL entries: %+v", crl.RevokedCertificateEntries)
		}
	}
	chk, err := auth.SigningKey(ctx, "audit-checkpoint")
	if err != nil {
		t.Fatal(err)
	}
	digest := sha512.Sum384([]byte("chain head"))
	sig, err := chk.Sign(rand.Reader, digest[:], crypto384{})
	if err != nil || !ecdsa.VerifyASN1(chk.Public().(*ecdsa.PublicKey), digest[:], sig) {
		t.Fatalf("checkpoint key signature: %v", err)
	}

	stat, err := h.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, label := range []string{"minikms-pki-root", "minikms-pki-tenant/acme", "minikms-pki-key/audit-checkpoint"} {
		o := object(t, stat, label, "private-key")
		if !o.Sensitive || o.Extractable || !o.AlwaysSensitive || !o.NeverExtractable || !o.Local || o.KeyType != "ec" || !o.Private {
			t.Errorf("%s attributes: %+v", label, o)
		}
		if p := object(t, stat, label, "public-key"); p.KeyType != "ec" || !bytes.Equal(p.ID, o.ID) {
			t.Errorf("%s public half: %+v", label, p)
		}
	}
	if err := h.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := root.Signer.Sign(rand.Reader, digest[:], crypto384{}); !errors.Is(err, ErrClosed) {
		t.Fatalf("signing after Close: %v", err)
	}

	// A new connection (a restarted server) loads the same keys from the
	// references in the store and keeps signing.
	h2 := st.open(t)
	auth2 := pki.NewAuthority(db, h2.KeySource(), nil)
	tca2, err := auth2.Tenant(ctx, "acme", false)
	if err != nil {
		t.Fatal(err)
	}
	if !tca2.Cert.Equal(tca.Cert) {
		t.Fatal("another tenant CA after restart")
	}
	der, err := auth2.CRL(ctx, "acme")
	if err != nil {
		t.Fatal(err)
	}
	crl, _ := x509.ParseRevocationList(der)
	if err := crl.CheckSignatureFrom(tca.Cert); err != nil {
		t.Fatalf("CRL after restart: %v", err)
	}
}

type crypto384 struct{}

func (crypto384) HashFunc() crypto.Hash { return crypto.SHA384 }

// TestSoftHSMUnseal: unseal mode seals a software root with an AES key
// made in the token (sensitive, never extractable) and opens it again;
// tampered or foreign sealed roots are refused.
func TestSoftHSMUnseal(t *testing.T) {
	st := newSoftToken(t)
	h := st.open(t)
	ctx := context.Background()
	root := make([]byte, engine.RootKeySize)
	rand.Read(root)
	sealed, err := h.SealRoot(ctx, root)
	if err != nil {
		t.Fatalf("SealRoot: %v", err)
	}
	if strings.Contains(sealed, fmt.Sprintf("%x", root)) {
		t.Fatal("the sealed root contains the root key")
	}
	kr, err := h.UnsealRoot(ctx, sealed)
	if err != nil {
		t.Fatalf("UnsealRoot: %v", err)
	}
	defer kr.Close()
	soft, _ := engine.NewSoftKeyring(root)
	info := engine.TenantInfo("", "acme")
	a, _ := kr.Derive(ctx, 1, info)
	b, _ := soft.Derive(ctx, 1, info)
	if !bytes.Equal(a, b) {
		t.Fatal("the unsealed root derives another key")
	}
	stat, err := h.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	w := object(t, stat, "minikms-wrap-v1", "secret-key")
	if w.KeyType != "aes" || !w.Sensitive || w.Extractable || !w.NeverExtractable || !w.Local {
		t.Fatalf("wrapping key attributes: %+v", w)
	}
	// A second seal reuses the wrapping key and uses a fresh nonce.
	sealed2, err := h.SealRoot(ctx, root)
	if err != nil || sealed2 == sealed {
		t.Fatalf("second seal: %v (same text: %v)", err, sealed2 == sealed)
	}
	stat, _ = h.Status(ctx)
	if len(stat.Objects) != 1 {
		t.Fatalf("objects after two seals: %+v", stat.Objects)
	}
	// Flip one bit of the ciphertext: the tag check fails in the token.
	i := len(sealed) - 5
	c := byte('A')
	if sealed[i] == 'A' {
		c = 'B'
	}
	if _, err := h.UnsealRoot(ctx, sealed[:i]+string(c)+sealed[i+1:]); err == nil {
		t.Fatal("a tampered sealed root opened")
	}
	for _, bad := range []string{"", "minikms-sealed-root:v1:other-wrap:AAAA", strings.TrimPrefix(sealed, "minikms-")} {
		if _, err := h.UnsealRoot(ctx, bad); !errors.Is(err, ErrConfig) {
			t.Errorf("UnsealRoot(%q): %v", bad, err)
		}
	}
	if err := h.Close(); err != nil {
		t.Fatal(err)
	}

	// Another token has no wrapping key: the sealed root is useless there.
	other := newSoftToken(t)
	h2 := other.open(t)
	if _, err := h2.UnsealRoot(ctx, sealed); !errors.Is(err, ErrKeyNotFound) {
		t.Fatalf("unseal on another token: %v", err)
	}
}

// TestSoftHSMOpenErrors: a wrong module path, a file that is not a
// PKCS#11 library, an absent token label, a second PIN in one process.
func TestSoftHSMOpenErrors(t *testing.T) {
	st := newSoftToken(t)
	ctx := context.Background()
	notLib := filepath.Join(t.TempDir(), "not-a-library.so")
	os.WriteFile(notLib, []byte("hello"), 0o600)
	for _, c := range []struct {
		name string
		mod  func(*Config)
		want error
		text string
	}{
		{"module missing", func(c *Config) { c.Module = "/nonexistent/libpkcs11.so" }, ErrModule, "/nonexistent/libpkcs11.so"},
		{"not a library", func(c *Config) { c.Module = notLib }, ErrModule, "not a loadable PKCS#11 library"},
		{"token absent", func(c *Config) { c.TokenLabel = "no-such-token" }, ErrTokenNotFound, st.label},
		{"PIN file missing", func(c *Config) { c.PIN, c.PINFile = "", "/nonexistent/pin" }, ErrConfig, "read PIN file"},
	} {
		t.Run(c.name, func(t *testing.T) {
			cfg := st.config()
			c.mod(&cfg)
			h, err := Open(ctx, cfg)
			if err == nil {
				h.Close()
			}
			if !errors.Is(err, c.want) || !strings.Contains(err.Error(), c.text) {
				t.Fatalf("got %v, want %v mentioning %q", err, c.want, c.text)
			}
		})
	}
	// The PIN from a file (trailing newline ignored) works.
	pinFile := filepath.Join(t.TempDir(), "pin")
	os.WriteFile(pinFile, []byte(st.pin+"\n"), 0o600)
	h := st.open(t, func(c *Config) { c.PIN, c.PINFile = "", pinFile })
	// While this process is logged in the token accepts any PIN
	// (CKR_USER_ALREADY_LOGGED_IN): the second connection must still be
	// refused.
	cfg := st.config()
	cfg.PIN = "wrong-pin"
	if h2, err := Open(ctx, cfg); !errors.Is(err, ErrPINIncorrect) {
		if err == nil {
			h2.Close()
		}
		t.Fatalf("second connection with another PIN: %v", err)
	}
	if err := h.Ready(ctx); err != nil {
		t.Fatal(err)
	}
}

// TestSoftHSMWrongPIN runs Open with a wrong PIN in a fresh process (in
// this one the token would accept it while another test is logged in).
func TestSoftHSMWrongPIN(t *testing.T) {
	st := newSoftToken(t)
	for _, c := range []struct{ pin, want string }{{"wrong-pin", "ErrPINIncorrect"}, {st.pin, "opened"}} {
		cmd := exec.Command(os.Args[0], "-test.run=^TestSoftHSMChildOpen$", "-test.v")
		cmd.Env = append(os.Environ(), "MINIKMS_HSM_CHILD=1", "MINIKMS_HSM_CHILD_LABEL="+st.label, "MINIKMS_HSM_CHILD_PIN="+c.pin)
		out, _ := cmd.CombinedOutput()
		if !strings.Contains(string(out), "child: "+c.want) {
			t.Fatalf("PIN %q: child output lacks %q:\n%s", c.pin, c.want, out)
		}
	}
}

// TestSoftHSMChildOpen is the child process of TestSoftHSMWrongPIN.
func TestSoftHSMChildOpen(t *testing.T) {
	if os.Getenv("MINIKMS_HSM_CHILD") != "1" {
		t.Skip("child process of TestSoftHSMWrongPIN")
	}
	cfg := Config{Module: softhsmModule, TokenLabel: os.Getenv("MINIKMS_HSM_CHILD_LABEL"), PIN: os.Getenv("MINIKMS_HSM_CHILD_PIN")}
	h, err := Open(context.Background(), cfg)
	switch {
	case err == nil:
		h.Close()
		fmt.Println("child: opened")
	case errors.Is(err, ErrPINIncorrect):
		fmt.Println("child: ErrPINIncorrect:", err)
	default:
		fmt.Println("child: other error:", err)
	}
}

// TestSoftHSMTokenLostAndBack: the token's files vanish under a running
// connection (as a token removed from its slot): operations fail with
// ErrTokenUnavailable, readiness turns false, nothing panics; when the
// files return the connection is reopened and derives the same keys.
func TestSoftHSMTokenLostAndBack(t *testing.T) {
	st := newSoftToken(t)
	ctx := context.Background()
	h := st.open(t)
	if _, err := h.Init(ctx, InitOptions{}); err != nil {
		t.Fatal(err)
	}
	kr, err := h.Keyring(ctx)
	if err != nil {
		t.Fatal(err)
	}
	info := engine.TenantInfo("", "acme")
	before, err := kr.Derive(ctx, 1, info)
	if err != nil {
		t.Fatal(err)
	}
	dirs, _ := filepath.Glob(filepath.Join(st.dir, "tokens", "*"))
	if len(dirs) != 1 {
		t.Fatalf("token directories: %v", dirs)
	}
	away := filepath.Join(st.dir, "away")
	if err := os.Rename(dirs[0], away); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		_, derr := kr.Derive(ctx, 1, info)
		rerr := kr.Ready(ctx)
		if derr != nil && rerr != nil {
			if !errors.Is(rerr, ErrTokenUnavailable) || h.Healthy() == nil {
				t.Fatalf("token gone: derive %v, ready %v, healthy %v", derr, rerr, h.Healthy())
			}
			t.Logf("token gone: derive: %v; ready: %v", derr, rerr)
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the removed token still answers: derive %v, ready %v", derr, rerr)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := os.Rename(away, dirs[0]); err != nil {
		t.Fatal(err)
	}
	deadline = time.Now().Add(5 * time.Second)
	for kr.Ready(ctx) != nil {
		if time.Now().After(deadline) {
			t.Fatalf("the token came back but readiness stays false: %v", kr.Ready(ctx))
		}
		time.Sleep(20 * time.Millisecond)
	}
	after, err := kr.Derive(ctx, 1, info)
	if err != nil || !bytes.Equal(before, after) {
		t.Fatalf("after recovery: %v (same key: %v)", err, bytes.Equal(before, after))
	}
	if h.Healthy() != nil {
		t.Fatalf("healthy after recovery: %v", h.Healthy())
	}
}

// TestSoftHSMTokenDeletedAtRuntime: the token disappears under a running
// connection (deleted by another process): operations fail with
// ErrTokenUnavailable or ErrKeyNotFound, readiness turns false, nothing
// panics.
func TestSoftHSMReadinessAfterTokenDeleted(t *testing.T) {
	st := newSoftToken(t)
	ctx := context.Background()
	h := st.open(t)
	if _, err := h.Init(ctx, InitOptions{}); err != nil {
		t.Fatal(err)
	}
	kr, err := h.Keyring(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := kr.Ready(ctx); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("softhsm2-util", "--delete-token", "--token", st.label).CombinedOutput()
	if err != nil {
		t.Fatalf("softhsm2-util --delete-token: %v\n%s", err, out)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		_, derr := kr.Derive(ctx, 1, engine.TenantInfo("", "acme"))
		rerr := kr.Ready(ctx)
		if derr != nil && rerr != nil {
			t.Logf("derive: %v; ready: %v", derr, rerr)
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the deleted token still answers: derive %v, ready %v", derr, rerr)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestSoftHSMSessionsExhausted: with one pooled session and a 1 ms wait,
// concurrent derivations that find it busy fail with ErrSessionsExhausted
// (naming the setting to raise); the others succeed, and the pool works
// normally afterwards.
func TestSoftHSMSessionsExhausted(t *testing.T) {
	st := newSoftToken(t)
	ctx := context.Background()
	h0, err := Open(ctx, st.config())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h0.Init(ctx, InitOptions{}); err != nil {
		t.Fatal(err)
	}
	h0.Close()
	h := st.open(t, func(c *Config) { c.MaxSessions, c.SessionWait = 2, time.Millisecond })
	kr, err := h.Keyring(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// The first use opens the pooled session, which may itself take more
	// than the 1 ms wait (race detector).
	var want []byte
	for i := 0; ; i++ {
		if want, err = kr.Derive(ctx, 1, []byte("x")); err == nil {
			break
		}
		if !errors.Is(err, ErrSessionsExhausted) || i == 100 {
			t.Fatal(err)
		}
	}
	errs := make(chan error, 400)
	for range 16 {
		go func() {
			for range 25 {
				got, err := kr.Derive(ctx, 1, []byte("x"))
				if err == nil && !bytes.Equal(got, want) {
					err = errors.New("another key")
				}
				errs <- err
			}
		}()
	}
	var ok, busy int
	for range 400 {
		switch err := <-errs; {
		case err == nil:
			ok++
		case errors.Is(err, ErrSessionsExhausted) && strings.Contains(err.Error(), "MaxSessions 2"):
			busy++
		default:
			t.Fatalf("unexpected error: %v", err)
		}
	}
	t.Logf("%d succeeded, %d found every session busy", ok, busy)
	if busy == 0 || ok == 0 {
		t.Fatalf("%d succeeded, %d busy: want both", ok, busy)
	}
	if h.Healthy() != nil {
		t.Fatalf("a busy pool is not a lost token: %v", h.Healthy())
	}
	for range 20 {
		if _, err := kr.Derive(ctx, 1, []byte("x")); err != nil {
			t.Fatalf("after the burst: %v", err)
		}
	}
}

// TestSoftHSMSealPanicRecovered: crypto11's AEAD Seal panics when the
// token fails the operation. Delete the wrapping key from another process
// while this one holds its handle: Seal must return an error, not panic.
func TestSoftHSMSealPanicRecovered(t *testing.T) {
	st := newSoftToken(t)
	ctx := context.Background()
	h := st.open(t)
	root := make([]byte, engine.RootKeySize)
	if _, err := h.SealRoot(ctx, root); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("pkcs11-tool", "--module", softhsmModule, "--token-label", st.label, "--login", "--pin", st.pin,
		"--delete-object", "--type", "secrkey", "--label", "minikms-wrap-v1").CombinedOutput()
	if err != nil {
		t.Skipf("pkcs11-tool --delete-object: %v\n%s", err, out)
	}
	nonce := make([]byte, nonceSize)
	err = h.do(ctx, "seal", false, func(tok token) error {
		_, err := tok.gcmSeal("minikms-wrap-v1", nonce, root, nil)
		return err
	})
	if err == nil {
		t.Fatal("Seal with a deleted key succeeded")
	}
	t.Logf("Seal with a deleted key: %v", err)
	if !errors.Is(err, ErrTokenUnavailable) && !errors.Is(err, ErrTokenFailure) {
		t.Fatalf("want ErrTokenUnavailable or ErrTokenFailure: %v", err)
	}
	// The connection recovers: the next seal makes a new wrapping key.
	if _, err := h.SealRoot(ctx, root); err != nil {
		t.Fatalf("SealRoot after the failure: %v", err)
	}
}
