package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/minikms/minikms/store/sqlite"
	okmip "github.com/ovh/kmip-go"
	"github.com/ovh/kmip-go/kmipclient"
)

const softhsmModule = "/usr/lib/softhsm/libsofthsm2.so"

// hsmEnvVars are every variable the HSM tests set or clear.
var hsmEnvVars = []string{envRootKey, envDBURL, envSalt, envKMIPAddr, envHTTPAddr, envTLSCert, envTLSKey,
	envPKCS11Mod, envPKCS11Token, envPKCS11PIN, envPKCS11PINFile, envPKCS11SealedRoot}

func clearEnv(t *testing.T) {
	t.Helper()
	for _, k := range hsmEnvVars {
		t.Setenv(k, "")
		os.Unsetenv(k)
	}
}

func TestHSMConfigValidation(t *testing.T) {
	good := strings.Repeat("ab", 32)
	pinFile := filepath.Join(t.TempDir(), "pin")
	os.WriteFile(pinFile, []byte("1234\n"), 0o600)
	hsm := map[string]string{envPKCS11Mod: softhsmModule, envPKCS11Token: "t", envPKCS11PIN: "1234", envDBURL: "x.db"}
	with := func(kv ...string) map[string]string {
		m := map[string]string{}
		for k, v := range hsm {
			m[k] = v
		}
		for i := 0; i < len(kv); i += 2 {
			if kv[i+1] == "-" {
				delete(m, kv[i])
			} else {
				m[kv[i]] = kv[i+1]
			}
		}
		return m
	}
	cases := []struct {
		name  string
		env   map[string]string
		nocgo bool
		want  string
	}{
		{"root key with HSM", with(envRootKey, good), false, envRootKey + " must not be set when an HSM is configured"},
		{"module missing", with(envPKCS11Mod, "-"), false, envPKCS11Mod + " is required"},
		{"token missing", with(envPKCS11Token, "-"), false, envPKCS11Token + " is required"},
		{"PIN and PIN file", with(envPKCS11PINFile, pinFile), false, "exactly one of " + envPKCS11PIN},
		{"no PIN", with(envPKCS11PIN, "-"), false, "exactly one of " + envPKCS11PIN},
		{"only a PIN", map[string]string{envPKCS11PIN: "1", envDBURL: "x.db"}, false, envPKCS11Mod + " is required"},
		{"sealed root file missing", with(envPKCS11SealedRoot, "/nonexistent/sealed"), false, envPKCS11SealedRoot},
		{"build without cgo", hsm, true, "built without cgo"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			clearEnv(t)
			for k, v := range c.env {
				t.Setenv(k, v)
			}
			if c.nocgo {
				old := pkcs11Available
				pkcs11Available = func() bool { return false }
				defer func() { pkcs11Available = old }()
			}
			err := runServe(context.Background(), nil)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("got %v, want an error containing %q", err, c.want)
			}
		})
	}
	t.Run("hsm without configuration", func(t *testing.T) {
		clearEnv(t)
		if _, err := run(t, "hsm", "status"); err == nil || !strings.Contains(err.Error(), "no HSM configured") {
			t.Fatalf("got %v", err)
		}
		if _, err := run(t, "hsm", "rotate"); !errors.Is(err, errUsage) {
			t.Fatalf("unknown subcommand: %v", err)
		}
	})
}

// hsmFixture is a SoftHSM2 token in a temporary directory plus the
// environment that selects it (SOFTHSM2_CONF, MINIKMS_PKCS11_*).
type hsmFixture struct {
	dir, conf, label, pin, pinFile string
}

// newHSMFixture skips when SoftHSM2 is absent, unless MINIKMS_REQUIRE_HSM=1.
func newHSMFixture(t *testing.T) *hsmFixture {
	t.Helper()
	if _, err := os.Stat(softhsmModule); err != nil {
		if os.Getenv("MINIKMS_REQUIRE_HSM") == "1" {
			t.Fatalf("%s is missing and MINIKMS_REQUIRE_HSM=1 (apt-get install softhsm2)", softhsmModule)
		}
		t.Skipf("%s is missing (apt-get install softhsm2; MINIKMS_REQUIRE_HSM=1 fails instead)", softhsmModule)
	}
	clearEnv(t)
	dir := t.TempDir()
	f := &hsmFixture{dir: dir, conf: filepath.Join(dir, "softhsm2.conf"), pin: "4321-user", pinFile: filepath.Join(dir, "pin")}
	os.Mkdir(filepath.Join(dir, "tokens"), 0o700)
	os.WriteFile(f.conf, []byte(fmt.Sprintf("directories.tokendir = %s\nobjectstore.backend = file\nlog.level = ERROR\n", filepath.Join(dir, "tokens"))), 0o600)
	os.WriteFile(f.pinFile, []byte(f.pin+"\n"), 0o600)
	rnd := make([]byte, 4)
	rand.Read(rnd)
	f.label = "minikms-cmd-" + hex.EncodeToString(rnd)
	t.Setenv("SOFTHSM2_CONF", f.conf)
	out, err := exec.Command("softhsm2-util", "--init-token", "--free", "--label", f.label, "--pin", f.pin, "--so-pin", "8765-so").CombinedOutput()
	if err != nil {
		t.Fatalf("softhsm2-util: %v\n%s", err, out)
	}
	t.Setenv(envPKCS11Mod, softhsmModule)
	t.Setenv(envPKCS11Token, f.label)
	t.Setenv(envPKCS11PINFile, f.pinFile)
	t.Setenv(envDBURL, filepath.Join(dir, "minikms.db"))
	return f
}

// server is a `minikms serve` running in this process.
type server struct {
	kmipAddr, httpAddr string
	stop               func() error
}

func startServe(t *testing.T) *server {
	t.Helper()
	s := &server{kmipAddr: freePort(t), httpAddr: freePort(t)}
	t.Setenv(envKMIPAddr, s.kmipAddr)
	t.Setenv(envHTTPAddr, s.httpAddr)
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- runServe(ctx, nil) }()
	stopped := false
	s.stop = func() error {
		if stopped {
			return nil
		}
		stopped = true
		cancel()
		return <-errc
	}
	t.Cleanup(func() { s.stop() })
	deadline := time.Now().Add(20 * time.Second)
	for {
		if code, _ := s.ready(); code == http.StatusOK {
			return s
		}
		select {
		case err := <-errc:
			stopped = true
			t.Fatalf("serve stopped: %v", err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatal("serve did not become ready")
		}
		time.Sleep(30 * time.Millisecond)
	}
}

// ready GETs /readyz (plain HTTP is served next to HTTPS on the port).
func (s *server) ready() (int, string) {
	c := &http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get("http://" + s.httpAddr + "/readyz")
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// member issues a member certificate with the CLI and returns a KMIP
// client for it.
func kmipClientFor(t *testing.T, s *server, dir, tenant, member string) *kmipclient.Client {
	t.Helper()
	out := filepath.Join(dir, tenant)
	if _, err := os.Stat(filepath.Join(out, member+".crt")); err != nil {
		mustRun(t, "member", "issue", "--tenant", tenant, "--member", member, "--role", "admin", "--out", out)
	}
	pair, err := tls.LoadX509KeyPair(filepath.Join(out, member+".crt"), filepath.Join(out, member+".key"))
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(storedRootCA(t))
	tlsCfg := &tls.Config{Certificates: []tls.Certificate{pair}, ServerName: "127.0.0.1", RootCAs: pool}
	c, err := kmipclient.Dial(s.kmipAddr, kmipclient.WithTlsConfig(tlsCfg))
	if err != nil {
		t.Fatalf("KMIP dial as %s/%s: %v", tenant, member, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

var gcm = okmip.CryptographicParameters{BlockCipherMode: okmip.BlockCipherModeGCM}

// roundTrip creates an AES key and encrypts and decrypts with it.
func roundTrip(t *testing.T, c *kmipclient.Client) (id string, material, plain, ct, iv, tag []byte) {
	t.Helper()
	ctx := context.Background()
	cr, err := c.Create().AES(256, okmip.CryptographicUsageEncrypt|okmip.CryptographicUsageDecrypt).ExecContext(ctx)
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	if _, err := c.Activate(cr.UniqueIdentifier).ExecContext(ctx); err != nil {
		t.Fatalf("Activate: %v", err)
	}
	plain = []byte("data protected by an HSM-derived tenant key")
	enc, err := c.Encrypt(cr.UniqueIdentifier).WithCryptographicParameters(gcm).Data(plain).ExecContext(ctx)
	if err != nil {
		t.Fatalf("Encrypt: %v", err)
	}
	dec, err := c.Decrypt(cr.UniqueIdentifier).WithCryptographicParameters(gcm).WithIvCounterNonce(enc.IVCounterNonce).
		WithAuthTag(enc.AuthenticatedEncryptionTag).Data(enc.Data).ExecContext(ctx)
	if err != nil || !bytes.Equal(dec.Data, plain) {
		t.Fatalf("Decrypt: %v", err)
	}
	return cr.UniqueIdentifier, getMaterial(t, c, cr.UniqueIdentifier), plain, enc.Data, enc.IVCounterNonce, enc.AuthenticatedEncryptionTag
}

func getMaterial(t *testing.T, c *kmipclient.Client, id string) []byte {
	t.Helper()
	g, err := c.Get(id).ExecContext(context.Background())
	if err != nil {
		t.Fatalf("Get %s: %v", id, err)
	}
	sk, ok := g.Object.(*okmip.SymmetricKey)
	if !ok {
		t.Fatalf("Get %s: %T", id, g.Object)
	}
	b, err := sk.KeyBlock.GetBytes()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestHSMServeEndToEnd: hsm init, then serve with the root key and CA keys
// in SoftHSM2: a tenant, a member certificate issued by the token-held CA,
// KMIP Create/Encrypt/Decrypt through keys derived in the token, the audit
// checkpoint key in the token, readiness following the token.
func TestHSMServeEndToEnd(t *testing.T) {
	f := newHSMFixture(t)
	out := mustRun(t, "hsm", "init")
	for _, want := range []string{"root key minikms-root-v1 created", "minikms-pki-root", "minikms-pki-key/audit-checkpoint"} {
		if !strings.Contains(out, want) {
			t.Fatalf("hsm init output lacks %q:\n%s", want, out)
		}
	}
	if _, err := run(t, "hsm", "init"); err == nil || !strings.Contains(err.Error(), "already in the HSM token") {
		t.Fatalf("second hsm init: %v", err)
	}
	mustRun(t, "tenant", "create", "acme")
	s := startServe(t)
	c := kmipClientFor(t, s, f.dir, "acme", "admin")
	id, material, _, _, _, _ := roundTrip(t, c)
	if len(material) != 32 {
		t.Fatalf("material of %s: %d bytes", id, len(material))
	}
	// A tenant created while the server runs gets its CA key in the token.
	mustRun(t, "tenant", "create", "globex")
	time.Sleep(1500 * time.Millisecond) // the server reloads tenant CAs every second
	roundTrip(t, kmipClientFor(t, s, f.dir, "globex", "admin"))

	st := mustRun(t, "hsm", "status")
	for _, label := range []string{"minikms-root-v1", "minikms-pki-root", "minikms-pki-tenant/acme", "minikms-pki-tenant/globex", "minikms-pki-key/audit-checkpoint"} {
		line := ""
		for _, l := range strings.Split(st, "\n") {
			if strings.Contains(l, " "+label+" ") && (strings.Contains(l, "private-key") || strings.Contains(l, "secret-key")) {
				line = l
			}
		}
		if !strings.Contains(line, "sensitive=true extractable=false always-sensitive=true never-extractable=true") {
			t.Errorf("hsm status: %s is not a protected token key:\n%s", label, st)
		}
	}
	if code, body := s.ready(); code != http.StatusOK {
		t.Fatalf("/readyz %d %s", code, body)
	}

	// The token goes away: readiness turns false naming the HSM, a tenant
	// whose key is not cached gets a precise KMIP failure, nothing panics;
	// when the token returns the server recovers.
	mustRun(t, "tenant", "create", "initech")
	time.Sleep(1500 * time.Millisecond)
	ci := kmipClientFor(t, s, f.dir, "initech", "admin")
	dirs, _ := filepath.Glob(filepath.Join(f.dir, "tokens", "*"))
	away := filepath.Join(f.dir, "away")
	if err := os.Rename(dirs[0], away); err != nil {
		t.Fatal(err)
	}
	code, body := s.ready()
	if code != http.StatusServiceUnavailable || !strings.Contains(body, "HSM") {
		t.Fatalf("/readyz without the token: %d %s", code, body)
	}
	// acme's tenant key is cached: its clients keep working.
	if _, err := c.Encrypt(id).WithCryptographicParameters(gcm).Data([]byte("still served")).ExecContext(context.Background()); err != nil {
		t.Fatalf("Encrypt with a cached tenant key while the token is away: %v", err)
	}
	_, err := ci.Create().AES(256, okmip.CryptographicUsageEncrypt).ExecContext(context.Background())
	if err == nil || !strings.Contains(err.Error(), "GeneralFailure") || !strings.Contains(err.Error(), "cannot reach a backend") {
		t.Fatalf("Create without the token: %v", err)
	}
	if err := os.Rename(away, dirs[0]); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		if code, _ := s.ready(); code == http.StatusOK {
			break
		}
		if time.Now().After(deadline) {
			code, body := s.ready()
			t.Fatalf("/readyz after the token returned: %d %s", code, body)
		}
		time.Sleep(50 * time.Millisecond)
	}
	roundTrip(t, ci)
	if !bytes.Equal(getMaterial(t, c, id), material) {
		t.Fatal("the material changed")
	}

	if err := s.stop(); err != nil {
		t.Fatalf("serve: %v", err)
	}
	// The audit chain verifies with the checkpoint key opened through the
	// token (authenticated, not just as stored).
	out = mustRun(t, "audit", "verify")
	if !strings.Contains(out, "audit chain intact") || !strings.Contains(out, "opened with the root key") {
		t.Fatalf("audit verify: %s", out)
	}
}

// TestHSMImportRootKeepsData: data made with a software root key stays
// readable after `hsm import-root`: same key material, old ciphertext
// decrypts, old member certificates (CA keys sealed under the root) still
// work, new tenants get token CA keys; the software root key is refused
// next to the HSM.
func TestHSMImportRootKeepsData(t *testing.T) {
	f := newHSMFixture(t)
	root := make([]byte, 32)
	rand.Read(root)
	rootHex := hex.EncodeToString(root)

	// Software mode.
	for _, k := range []string{envPKCS11Mod, envPKCS11Token, envPKCS11PINFile} {
		os.Unsetenv(k)
	}
	t.Setenv(envRootKey, rootHex)
	s := startServe(t) // creates the store
	mustRun(t, "tenant", "create", "acme")
	time.Sleep(1500 * time.Millisecond)
	c := kmipClientFor(t, s, f.dir, "acme", "admin")
	id, material, plain, ct, iv, tag := roundTrip(t, c)
	c.Close()
	if err := s.stop(); err != nil {
		t.Fatal(err)
	}

	// Import, with the software key in the environment.
	t.Setenv(envPKCS11Mod, softhsmModule)
	t.Setenv(envPKCS11Token, f.label)
	t.Setenv(envPKCS11PINFile, f.pinFile)
	out := mustRun(t, "hsm", "import-root")
	for _, want := range []string{"imported into token", "existing data stays readable", "opens with the token's root key"} {
		if !strings.Contains(out, want) {
			t.Fatalf("import-root output lacks %q:\n%s", want, out)
		}
	}
	// Serving with both is refused.
	if err := runServe(context.Background(), nil); err == nil || !strings.Contains(err.Error(), "must not be set") {
		t.Fatalf("serve with root key and HSM: %v", err)
	}
	os.Unsetenv(envRootKey)
	// Importing again from a file is a no-op; another key is refused.
	keyFile := filepath.Join(f.dir, "root.hex")
	os.WriteFile(keyFile, []byte(rootHex+"\n"), 0o600)
	if out := mustRun(t, "hsm", "import-root", "--root-key-file", keyFile); !strings.Contains(out, "already in token") {
		t.Fatalf("second import: %s", out)
	}
	rand.Read(root)
	os.WriteFile(keyFile, []byte(hex.EncodeToString(root)+"\n"), 0o600)
	if _, err := run(t, "hsm", "import-root", "--root-key-file", keyFile); err == nil || !strings.Contains(err.Error(), "different key") {
		t.Fatalf("import of another key: %v", err)
	}

	// HSM mode: everything made before is readable.
	s = startServe(t)
	c = kmipClientFor(t, s, f.dir, "acme", "admin")
	if !bytes.Equal(getMaterial(t, c, id), material) {
		t.Fatal("Get returns other material after the import")
	}
	dec, err := c.Decrypt(id).WithCryptographicParameters(gcm).WithIvCounterNonce(iv).WithAuthTag(tag).Data(ct).ExecContext(context.Background())
	if err != nil || !bytes.Equal(dec.Data, plain) {
		t.Fatalf("Decrypt of old ciphertext: %v", err)
	}
	mustRun(t, "tenant", "create", "globex")
	time.Sleep(1500 * time.Millisecond)
	roundTrip(t, kmipClientFor(t, s, f.dir, "globex", "admin"))
	st := mustRun(t, "hsm", "status")
	if !strings.Contains(st, "minikms-pki-tenant/globex") || strings.Contains(st, "minikms-pki-tenant/acme") {
		t.Fatalf("status: new tenant CA keys belong in the token, old ones stay sealed:\n%s", st)
	}
	if !strings.Contains(st, "always-sensitive=false never-extractable=false") {
		t.Fatalf("status: the imported root key must show it was not generated in the token:\n%s", st)
	}
	if err := s.stop(); err != nil {
		t.Fatal(err)
	}
}

// TestHSMUnsealMode: hsm init --unseal writes a root key sealed by the
// token; serve unseals it at start; status checks the file opens.
func TestHSMUnsealMode(t *testing.T) {
	f := newHSMFixture(t)
	sealed := filepath.Join(f.dir, "sealed-root")
	out := mustRun(t, "hsm", "init", "--unseal", sealed)
	if !strings.Contains(out, "sealed by the token into "+sealed) {
		t.Fatalf("hsm init --unseal: %s", out)
	}
	b, err := os.ReadFile(sealed)
	if err != nil || !strings.HasPrefix(string(b), "minikms-sealed-root:v1:minikms-wrap-v1:") {
		t.Fatalf("sealed root file: %q %v", b, err)
	}
	if st, _ := os.Stat(sealed); st.Mode().Perm() != 0o600 {
		t.Fatalf("sealed root file mode %v", st.Mode().Perm())
	}
	if _, err := run(t, "hsm", "init", "--unseal", sealed); err == nil {
		t.Fatal("hsm init --unseal overwrote the sealed root")
	}
	t.Setenv(envPKCS11SealedRoot, sealed)
	st := mustRun(t, "hsm", "status")
	if !strings.Contains(st, "unseal mode:  "+sealed+" opens in this token") || strings.Contains(st, "minikms-root-v1") {
		t.Fatalf("status:\n%s", st)
	}
	mustRun(t, "tenant", "create", "acme")
	s := startServe(t)
	roundTrip(t, kmipClientFor(t, s, f.dir, "acme", "admin"))
	if err := s.stop(); err != nil {
		t.Fatal(err)
	}
	// A damaged sealed root stops the start.
	os.WriteFile(sealed, bytes.Replace(b, []byte("minikms-sealed-root:v1:"), []byte("minikms-sealed-root:v9:"), 1), 0o600)
	if err := runServe(context.Background(), nil); err == nil || !strings.Contains(err.Error(), "unseal") {
		t.Fatalf("serve with a damaged sealed root: %v", err)
	}
}

// TestHSMErrorsInAnotherProcess runs `minikms hsm status` in child
// processes (a wrong PIN is only checked by the token in a process not yet
// logged in): wrong PIN, absent token, wrong module.
func TestHSMErrorsInAnotherProcess(t *testing.T) {
	f := newHSMFixture(t)
	mustRun(t, "hsm", "init")
	cases := []struct {
		name string
		env  []string
		want string
		rc   int
	}{
		{"right PIN", nil, "root key:     version 1", 0},
		{"wrong PIN", []string{envPKCS11PINFile + "=", envPKCS11PIN + "=0000-wrong"}, "PIN incorrect", 1},
		{"token absent", []string{envPKCS11Token + "=no-such-token"}, `token not found: find token "no-such-token": no token with this label in ` + softhsmModule + ` (tokens present: "` + f.label + `")`, 1},
		{"module wrong", []string{envPKCS11Mod + "=/nonexistent/libnothing.so"}, "cannot load the PKCS#11 module", 1},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cmd := exec.Command(os.Args[0], "-test.run=^TestHSMChildMain$")
			cmd.Env = append(append(os.Environ(), "MINIKMS_TEST_MAIN=hsm status"), c.env...)
			out, err := cmd.CombinedOutput()
			rc := 0
			var ee *exec.ExitError
			if errors.As(err, &ee) {
				rc = ee.ExitCode()
			}
			if rc != c.rc || !strings.Contains(string(out), c.want) {
				t.Fatalf("exit %d (want %d), output lacks %q:\n%s", rc, c.rc, c.want, out)
			}
		})
	}
}

// TestHSMChildMain runs main() with the arguments of MINIKMS_TEST_MAIN in
// a child process of TestHSMErrorsInAnotherProcess.
func TestHSMChildMain(t *testing.T) {
	args := os.Getenv("MINIKMS_TEST_MAIN")
	if args == "" {
		t.Skip("child process only")
	}
	for _, kv := range []string{envPKCS11PINFile, envPKCS11PIN} {
		if v, ok := os.LookupEnv(kv); ok && v == "" {
			os.Unsetenv(kv)
		}
	}
	os.Args = append([]string{"minikms"}, strings.Fields(args)...)
	main()
	os.Exit(0)
}

// storedRootCA reads the root CA certificate from the store of the
// environment (the server certificate chains to it).
func storedRootCA(t *testing.T) *x509.Certificate {
	t.Helper()
	st, err := sqlite.Open(context.Background(), os.Getenv(envDBURL))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	raw, err := st.GetMeta(context.Background(), "pki.ca.root")
	if err != nil {
		t.Fatal(err)
	}
	var rec struct{ Cert []byte }
	if err := json.Unmarshal(raw, &rec); err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(rec.Cert)
	if err != nil {
		t.Fatal(err)
	}
	return c
}
