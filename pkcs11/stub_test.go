package pkcs11

import (
	"crypto"
	"crypto/aes"
	"crypto/cipher"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// stubDevice is a fake token that outlives connections: tests remove,
// reinsert or reset it, and inject errors and panics per operation.
type stubDevice struct {
	mu      sync.Mutex
	present bool
	epoch   int // connections of older epochs are dead (reset)
	pin     string
	secrets map[string]stubSecret
	pairs   map[string]*ecdsa.PrivateKey // label \x00 id
	fail    map[string]error             // op -> error returned once
	panics  map[string]any               // op -> panic value, once
	block   chan struct{}                // ping waits on it when non-nil

	opens   atomic.Int32
	hmacs   atomic.Int32
	pings   atomic.Int32
	closes  atomic.Int32
	corrupt bool // importSecret stores a different value
}

type stubSecret struct {
	kind     secretKind
	value    []byte
	imported bool
}

func newStubDevice() *stubDevice {
	return &stubDevice{present: true, pin: "1234", secrets: map[string]stubSecret{}, pairs: map[string]*ecdsa.PrivateKey{}, fail: map[string]error{}, panics: map[string]any{}}
}

// stubHSM returns an HSM over a new stub device opened with pin.
func stubHSM(t testing.TB, cfg Config) (*HSM, *stubDevice) {
	t.Helper()
	d := newStubDevice()
	h, err := d.hsm(cfg, "1234")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	return h, d
}

func (d *stubDevice) hsm(cfg Config, pin string) (*HSM, error) {
	cfg.Module, cfg.TokenLabel = "stub.so", "stub"
	if cfg.PIN == "" {
		cfg.PIN = pin
	}
	if cfg.ReconnectInterval == 0 {
		cfg.ReconnectInterval = time.Hour // tests opt in to faster retries
	}
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	return newHSM(cfg, func() (token, error) { return d.open(pin) })
}

func (d *stubDevice) open(pin string) (token, error) {
	d.opens.Add(1)
	d.mu.Lock()
	defer d.mu.Unlock()
	if p, ok := d.panics["open"]; ok {
		delete(d.panics, "open")
		panic(p)
	}
	if err, ok := d.fail["open"]; ok {
		delete(d.fail, "open")
		return nil, err
	}
	if !d.present {
		return nil, newErr(kindTokenNotFound, "find token", errors.New("no token labelled stub"))
	}
	if pin != d.pin {
		return nil, newErr(kindPIN, "log in", errors.New("CKR_PIN_INCORRECT"))
	}
	return &stubConn{d: d, epoch: d.epoch}, nil
}

func (d *stubDevice) setPresent(p bool) {
	d.mu.Lock()
	d.present = p
	if !p {
		d.epoch++
	}
	d.mu.Unlock()
}

// reset kills every connection (like C_CloseAllSessions or a token reset).
func (d *stubDevice) reset() {
	d.mu.Lock()
	d.epoch++
	d.mu.Unlock()
}

func (d *stubDevice) failOnce(op string, err error) {
	d.mu.Lock()
	d.fail[op] = err
	d.mu.Unlock()
}

func (d *stubDevice) panicOnce(op string, v any) {
	d.mu.Lock()
	d.panics[op] = v
	d.mu.Unlock()
}

func (d *stubDevice) putSecret(label string, kind secretKind, value []byte) {
	d.mu.Lock()
	d.secrets[label] = stubSecret{kind: kind, value: append([]byte(nil), value...)}
	d.mu.Unlock()
}

// stubConn is one connection to a stubDevice.
type stubConn struct {
	d      *stubDevice
	epoch  int
	closed atomic.Bool
}

// enter checks the connection and consumes injected faults for op.
func (c *stubConn) enter(op string) error {
	d := c.d
	d.mu.Lock()
	defer d.mu.Unlock()
	if p, ok := d.panics[op]; ok {
		delete(d.panics, op)
		panic(p)
	}
	if err, ok := d.fail[op]; ok {
		delete(d.fail, op)
		return err
	}
	if c.closed.Load() {
		return newErr(kindLost, op, errors.New("connection closed"))
	}
	if !d.present {
		return newErr(kindLost, op, errors.New("CKR_DEVICE_REMOVED"))
	}
	if c.epoch != d.epoch {
		return newErr(kindLost, op, errors.New("CKR_SESSION_HANDLE_INVALID"))
	}
	return nil
}

func (c *stubConn) info() TokenInfo {
	return TokenInfo{Module: "stub.so", Label: "stub", Serial: "0001", Manufacturer: "stub", Model: "stub"}
}

func (c *stubConn) ping() error {
	c.d.pings.Add(1)
	c.d.mu.Lock()
	block := c.d.block
	c.d.mu.Unlock()
	if block != nil {
		<-block
	}
	return c.enter("ping")
}

func (c *stubConn) objects(prefix string) ([]ObjectInfo, error) {
	if err := c.enter("objects"); err != nil {
		return nil, err
	}
	c.d.mu.Lock()
	defer c.d.mu.Unlock()
	var out []ObjectInfo
	for l, s := range c.d.secrets {
		if strings.HasPrefix(l, prefix) {
			kt := "generic-secret"
			if s.kind == secretWrap {
				kt = "aes"
			}
			out = append(out, ObjectInfo{Label: l, Class: "secret-key", KeyType: kt, Private: true, Sensitive: true,
				AlwaysSensitive: !s.imported, NeverExtractable: !s.imported, Local: !s.imported})
		}
	}
	for k := range c.d.pairs {
		l, id, _ := strings.Cut(k, "\x00")
		if strings.HasPrefix(l, prefix) {
			out = append(out, ObjectInfo{Label: l, ID: []byte(id), Class: "private-key", KeyType: "ec", Private: true, Sensitive: true, AlwaysSensitive: true, NeverExtractable: true, Local: true})
		}
	}
	return out, nil
}

func (c *stubConn) mechanisms() ([]MechanismInfo, error) {
	if err := c.enter("mechanisms"); err != nil {
		return nil, err
	}
	out := make([]MechanismInfo, len(RequiredMechanisms))
	for i, r := range RequiredMechanisms {
		out[i] = MechanismInfo{Name: r.Name, Use: r.Use, Supported: true}
	}
	return out, nil
}

func (c *stubConn) secret(label string, kind secretKind) ([]byte, error) {
	c.d.mu.Lock()
	defer c.d.mu.Unlock()
	s, ok := c.d.secrets[label]
	if !ok {
		return nil, newErr(kindNotFound, "find secret key "+label, nil)
	}
	if s.kind != kind {
		return nil, newErr(kindFailure, "find secret key "+label, errors.New("wrong key type"))
	}
	return s.value, nil
}

func (c *stubConn) hmacSHA256(label string, data []byte) ([]byte, error) {
	c.d.hmacs.Add(1)
	if err := c.enter("hmac"); err != nil {
		return nil, err
	}
	k, err := c.secret(label, secretRoot)
	if err != nil {
		return nil, err
	}
	m := hmac.New(sha256.New, k)
	m.Write(data)
	return m.Sum(nil), nil
}

func (c *stubConn) generateSecret(kind secretKind, label string, id []byte) error {
	if err := c.enter("generateSecret"); err != nil {
		return err
	}
	v := make([]byte, 32)
	rand.Read(v)
	c.d.putSecret(label, kind, v)
	return nil
}

func (c *stubConn) importSecret(label string, id, value []byte) error {
	if err := c.enter("importSecret"); err != nil {
		return err
	}
	v := append([]byte(nil), value...)
	c.d.mu.Lock()
	defer c.d.mu.Unlock()
	if c.d.corrupt {
		v[0] ^= 1
	}
	c.d.secrets[label] = stubSecret{kind: secretRoot, value: v, imported: true}
	return nil
}

func (c *stubConn) destroy(label string, id []byte) error {
	if err := c.enter("destroy"); err != nil {
		return err
	}
	c.d.mu.Lock()
	defer c.d.mu.Unlock()
	delete(c.d.secrets, label)
	delete(c.d.pairs, label+"\x00"+string(id))
	return nil
}

func (c *stubConn) aead(label string, nonce []byte) (cipher.AEAD, error) {
	if len(nonce) != nonceSize {
		return nil, newErr(kindFailure, "gcm", fmt.Errorf("nonce is %d bytes", len(nonce)))
	}
	k, err := c.secret(label, secretWrap)
	if err != nil {
		return nil, err
	}
	b, _ := aes.NewCipher(k)
	return cipher.NewGCM(b)
}

func (c *stubConn) gcmSeal(label string, nonce, plaintext, aad []byte) ([]byte, error) {
	if err := c.enter("gcmSeal"); err != nil {
		return nil, err
	}
	a, err := c.aead(label, nonce)
	if err != nil {
		return nil, err
	}
	return a.Seal(nil, nonce, plaintext, aad), nil
}

func (c *stubConn) gcmOpen(label string, nonce, ciphertext, aad []byte) ([]byte, error) {
	if err := c.enter("gcmOpen"); err != nil {
		return nil, err
	}
	a, err := c.aead(label, nonce)
	if err != nil {
		return nil, err
	}
	pt, err := a.Open(nil, nonce, ciphertext, aad)
	if err != nil {
		return nil, newErr(kindFailure, "gcm open", errors.New("CKR_ENCRYPTED_DATA_INVALID"))
	}
	return pt, nil
}

func (c *stubConn) generateECDSA(label string, id []byte) (crypto.Signer, error) {
	if err := c.enter("generateECDSA"); err != nil {
		return nil, err
	}
	k, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		return nil, err
	}
	c.d.mu.Lock()
	c.d.pairs[label+"\x00"+string(id)] = k
	c.d.mu.Unlock()
	return &stubSigner{c: c, k: k}, nil
}

func (c *stubConn) findECDSA(label string, id []byte) (crypto.Signer, error) {
	if err := c.enter("findECDSA"); err != nil {
		return nil, err
	}
	c.d.mu.Lock()
	k, ok := c.d.pairs[label+"\x00"+string(id)]
	c.d.mu.Unlock()
	if !ok {
		return nil, newErr(kindNotFound, "find key pair "+label, nil)
	}
	return &stubSigner{c: c, k: k}, nil
}

func (c *stubConn) close() error {
	c.closed.Store(true)
	c.d.closes.Add(1)
	return nil
}

type stubSigner struct {
	c *stubConn
	k *ecdsa.PrivateKey
}

func (s *stubSigner) Public() crypto.PublicKey { return &s.k.PublicKey }

func (s *stubSigner) Sign(r io.Reader, digest []byte, opts crypto.SignerOpts) ([]byte, error) {
	if err := s.c.enter("sign"); err != nil {
		return nil, err
	}
	return ecdsa.SignASN1(rand.Reader, s.k, digest)
}
