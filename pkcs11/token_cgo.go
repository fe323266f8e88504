//go:build cgo

package pkcs11

import (
	"crypto"
	"crypto/elliptic"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/ThalesGroup/crypto11"
	p11 "github.com/miekg/pkcs11"
)

// cgoEnabled tells Open whether PKCS#11 support is compiled in.
const cgoEnabled = true

// The real token: a crypto11 context (module loading, token selection by
// label, login, session pool, HMAC, AES-GCM, ECDSA key pairs and signing)
// plus a miekg/pkcs11 handle on the same, already initialised module for
// what crypto11 lacks: token information, the login check of ping, object
// listing with attributes, importing a key value, deleting objects. The
// raw handle never initialises or finalises the module (crypto11 owns
// that), so it is opened after and closed with the crypto11 context.

var (
	// openMu serialises opening and closing connections: crypto11 must be
	// the first to initialise a module, and the PIN registry below.
	openMu sync.Mutex
	// logins maps module path and token label to the hash of the PIN the
	// process is logged in with. PKCS#11 login state belongs to the whole
	// process, so crypto11 accepts any PIN (CKR_USER_ALREADY_LOGGED_IN)
	// while another connection to the token is logged in; this registry
	// refuses a PIN that differs from the one that logged in.
	logins = map[string]*loginRef{}
)

type loginRef struct {
	pin [sha256.Size]byte
	n   int
}

type p11token struct {
	cfg  Config
	c11  *crypto11.Context
	raw  *p11.Ctx
	slot uint
	inf  TokenInfo
	key  string // in logins

	mu      sync.Mutex
	secrets map[string]*crypto11.SecretKey
	signers map[string]*p11signer

	closeOnce sync.Once
	closeErr  error
}

var _ token = (*p11token)(nil)

func openToken(cfg Config, pin string) (token, error) {
	openMu.Lock()
	defer openMu.Unlock()

	fi, err := os.Stat(cfg.Module)
	if err != nil {
		return nil, newErr(kindModule, "load "+cfg.Module, err)
	}
	if fi.IsDir() {
		return nil, newErr(kindModule, "load "+cfg.Module, errors.New("is a directory, not a PKCS#11 library"))
	}
	// crypto11 shares one module instance per path string: resolve links
	// so two spellings of one library are one instance.
	path, err := filepath.EvalSymlinks(cfg.Module)
	if err != nil {
		return nil, newErr(kindModule, "load "+cfg.Module, err)
	}
	if path, err = filepath.Abs(path); err != nil {
		return nil, newErr(kindModule, "load "+cfg.Module, err)
	}
	key := path + "\x00" + cfg.TokenLabel
	sum := sha256.Sum256([]byte(pin))
	if ref := logins[key]; ref != nil && subtle.ConstantTimeCompare(ref.pin[:], sum[:]) != 1 {
		return nil, newErr(kindPIN, fmt.Sprintf("log in to token %q", cfg.TokenLabel),
			errors.New("the PIN differs from the PIN this process is already logged in with (the token would not check it again)"))
	}

	c, err := configure(&crypto11.Config{
		Path:            path,
		TokenLabel:      cfg.TokenLabel,
		Pin:             pin,
		MaxSessions:     cfg.MaxSessions,
		PoolWaitTimeout: cfg.SessionWait,
		GCMIVLength:     nonceSize,
	})
	if err != nil {
		return nil, openError(cfg, path, err)
	}
	t := &p11token{cfg: cfg, c11: c, key: key, secrets: map[string]*crypto11.SecretKey{}, signers: map[string]*p11signer{}}
	fail := func(err error) (token, error) {
		_ = c.Close()
		if t.raw != nil {
			t.raw.Destroy()
		}
		return nil, err
	}
	t.raw = p11.New(path)
	if t.raw == nil {
		return fail(newErr(kindModule, "load "+cfg.Module, errors.New("the library loaded once but not twice")))
	}
	if err := t.raw.Initialize(); err != nil && !isCode(err, p11.CKR_CRYPTOKI_ALREADY_INITIALIZED) {
		return fail(classify("initialise module", err))
	}
	slots, err := t.raw.GetSlotList(true)
	if err != nil {
		return fail(classify("list slots", err))
	}
	n := 0
	for _, s := range slots {
		ti, err := t.raw.GetTokenInfo(s)
		if err != nil || ti.Label != cfg.TokenLabel {
			continue
		}
		if n == 0 {
			t.slot = s
			t.inf = TokenInfo{Module: cfg.Module, Label: ti.Label, Serial: ti.SerialNumber, Manufacturer: ti.ManufacturerID, Model: ti.Model}
		}
		n++
	}
	switch {
	case n == 0:
		return fail(newErr(kindTokenNotFound, "find token", fmt.Errorf("token %q vanished while opening", cfg.TokenLabel)))
	case n > 1:
		return fail(newErr(kindConfig, "find token", fmt.Errorf("%d tokens are labelled %q in %s: labels must be unique", n, cfg.TokenLabel, cfg.Module)))
	}
	ref := logins[key]
	if ref == nil {
		ref = &loginRef{pin: sum}
		logins[key] = ref
	}
	ref.n++
	return t, nil
}

// configure is crypto11.Configure with panics (its session pool panics on
// a token allowing a single session) turned into errors.
func configure(cfg *crypto11.Config) (c *crypto11.Context, err error) {
	defer func() {
		if r := recover(); r != nil {
			c, err = nil, fmt.Errorf("crypto11 panic: %v", r)
		}
	}()
	return crypto11.Configure(cfg)
}

// openError explains why crypto11.Configure failed.
func openError(cfg Config, path string, err error) error {
	msg := err.Error()
	switch {
	case strings.Contains(msg, "could not find PKCS#11 token"):
		return newErr(kindTokenNotFound, fmt.Sprintf("find token %q", cfg.TokenLabel), fmt.Errorf("no token with this label in %s (%s)", cfg.Module, listTokens(path)))
	case strings.Contains(msg, "failed to open module"):
		return newErr(kindModule, "load "+cfg.Module, errors.New("not a loadable PKCS#11 library (dlopen or C_GetFunctionList failed: wrong file, architecture or missing dependencies)"))
	case strings.Contains(msg, "failed to initialize module"):
		return newErr(kindModule, "initialise "+cfg.Module, err)
	}
	e := classify(fmt.Sprintf("log in to token %q", cfg.TokenLabel), err)
	if kindOf(e) == kindLost {
		// Nothing to lose yet: the token is there but does not work.
		return newErr(kindFailure, fmt.Sprintf("open token %q", cfg.TokenLabel), err)
	}
	return e
}

// listTokens names the tokens in a module for error messages.
func listTokens(path string) string {
	raw := p11.New(path)
	if raw == nil {
		return "cannot list its tokens"
	}
	defer raw.Destroy()
	err := raw.Initialize()
	switch {
	case err == nil:
		defer raw.Finalize()
	case !isCode(err, p11.CKR_CRYPTOKI_ALREADY_INITIALIZED):
		return "cannot list its tokens: " + err.Error()
	}
	slots, err := raw.GetSlotList(true)
	if err != nil {
		return "cannot list its tokens: " + err.Error()
	}
	var labels []string
	for _, s := range slots {
		if ti, err := raw.GetTokenInfo(s); err == nil && ti.Flags&p11.CKF_TOKEN_INITIALIZED != 0 {
			labels = append(labels, fmt.Sprintf("%q", ti.Label))
		}
	}
	if len(labels) == 0 {
		return "it has no initialised token"
	}
	return "tokens present: " + strings.Join(labels, ", ")
}

func isCode(err error, code uint) bool {
	var pe p11.Error
	return errors.As(err, &pe) && uint(pe) == code
}

// codeKind classifies a PKCS#11 return value.
func codeKind(code uint) errKind {
	switch code {
	case p11.CKR_PIN_INCORRECT, p11.CKR_PIN_INVALID, p11.CKR_PIN_LEN_RANGE:
		return kindPIN
	case p11.CKR_PIN_LOCKED, p11.CKR_PIN_EXPIRED:
		return kindPINLocked
	case p11.CKR_SESSION_COUNT:
		return kindPool
	case p11.CKR_DEVICE_REMOVED, p11.CKR_DEVICE_ERROR, p11.CKR_TOKEN_NOT_PRESENT, p11.CKR_TOKEN_NOT_RECOGNIZED,
		p11.CKR_SESSION_HANDLE_INVALID, p11.CKR_SESSION_CLOSED, p11.CKR_USER_NOT_LOGGED_IN,
		p11.CKR_CRYPTOKI_NOT_INITIALIZED, p11.CKR_SLOT_ID_INVALID, p11.CKR_GENERAL_ERROR,
		// Handles go stale when the token is reset or the key deleted:
		// reopening finds the key again (or reports it missing).
		p11.CKR_KEY_HANDLE_INVALID, p11.CKR_OBJECT_HANDLE_INVALID:
		return kindLost
	}
	return kindFailure
}

// textCodes are the return values looked for in errors crypto11 formats
// with %v (losing the type).
var textCodes = []uint{
	p11.CKR_DEVICE_REMOVED, p11.CKR_DEVICE_ERROR, p11.CKR_TOKEN_NOT_PRESENT, p11.CKR_TOKEN_NOT_RECOGNIZED,
	p11.CKR_SESSION_HANDLE_INVALID, p11.CKR_SESSION_CLOSED, p11.CKR_USER_NOT_LOGGED_IN,
	p11.CKR_CRYPTOKI_NOT_INITIALIZED, p11.CKR_SLOT_ID_INVALID, p11.CKR_GENERAL_ERROR,
	p11.CKR_KEY_HANDLE_INVALID, p11.CKR_OBJECT_HANDLE_INVALID, p11.CKR_SESSION_COUNT,
}

// classify turns an error of crypto11 or miekg/pkcs11 into a tokenError.
func classify(op string, err error) error {
	if err == nil {
		return nil
	}
	var te *tokenError
	if errors.As(err, &te) {
		return err
	}
	var pe p11.Error
	if errors.As(err, &pe) {
		return newErr(codeKind(uint(pe)), op, err)
	}
	msg := err.Error()
	switch {
	case strings.Contains(msg, "resource pool timed out"):
		return newErr(kindPool, op, err)
	case strings.Contains(msg, "resource pool is closed"), strings.Contains(msg, "context is closed"), strings.Contains(msg, "closed Context"):
		return newErr(kindLost, op, err)
	}
	for _, c := range textCodes {
		if strings.Contains(msg, p11.Error(c).Error()) {
			return newErr(codeKind(c), op, err)
		}
	}
	return newErr(kindFailure, op, err)
}

// classify adds the pool settings to pool errors.
func (t *p11token) classify(op string, err error) error {
	e := classify(op, err)
	if kindOf(e) == kindPool && !errors.As(err, new(*tokenError)) {
		return newErr(kindPool, op, fmt.Errorf("no PKCS#11 session free within %v (MaxSessions %d; raise it or lower the load): %w", t.cfg.SessionWait, t.cfg.MaxSessions, err))
	}
	return e
}

// recovered turns a recovered panic value into an error.
func (t *p11token) recovered(op string, r any) error {
	if err, ok := r.(error); ok {
		e := t.classify(op, err)
		if kindOf(e) == kindFailure {
			return newErr(kindFailure, op, fmt.Errorf("panic in crypto11: %w", err))
		}
		return e
	}
	return newErr(kindFailure, op, fmt.Errorf("panic in crypto11: %v", r))
}

func (t *p11token) info() TokenInfo { return t.inf }

func (t *p11token) ping() error {
	const op = "ping token"
	ti, err := t.raw.GetTokenInfo(t.slot)
	if err != nil {
		return t.classify(op, err)
	}
	if ti.Label != t.inf.Label || ti.SerialNumber != t.inf.Serial {
		return newErr(kindLost, op, fmt.Errorf("the slot now holds token %q (serial %s)", ti.Label, ti.SerialNumber))
	}
	s, err := t.raw.OpenSession(t.slot, p11.CKF_SERIAL_SESSION)
	if err != nil {
		return t.classify(op, err)
	}
	defer t.raw.CloseSession(s)
	si, err := t.raw.GetSessionInfo(s)
	if err != nil {
		return t.classify(op, err)
	}
	if si.State != p11.CKS_RO_USER_FUNCTIONS && si.State != p11.CKS_RW_USER_FUNCTIONS {
		return newErr(kindLost, op, errors.New("the process is no longer logged in to the token"))
	}
	return nil
}

// session opens a raw session (logged in: login belongs to the process).
func (t *p11token) session(op string, rw bool) (p11.SessionHandle, func(), error) {
	flags := uint(p11.CKF_SERIAL_SESSION)
	if rw {
		flags |= p11.CKF_RW_SESSION
	}
	s, err := t.raw.OpenSession(t.slot, flags)
	if err != nil {
		return 0, nil, t.classify(op, err)
	}
	return s, func() { _ = t.raw.CloseSession(s) }, nil
}

func (t *p11token) find(s p11.SessionHandle, template []*p11.Attribute) ([]p11.ObjectHandle, error) {
	if err := t.raw.FindObjectsInit(s, template); err != nil {
		return nil, err
	}
	var out []p11.ObjectHandle
	for {
		hs, _, err := t.raw.FindObjects(s, 64)
		if err != nil {
			_ = t.raw.FindObjectsFinal(s)
			return nil, err
		}
		if len(hs) == 0 {
			break
		}
		out = append(out, hs...)
	}
	return out, t.raw.FindObjectsFinal(s)
}

func (t *p11token) objects(prefix string) ([]ObjectInfo, error) {
	const op = "list objects"
	s, done, err := t.session(op, false)
	if err != nil {
		return nil, err
	}
	defer done()
	hs, err := t.find(s, nil)
	if err != nil {
		return nil, t.classify(op, err)
	}
	var out []ObjectInfo
	for _, h := range hs {
		a, err := t.raw.GetAttributeValue(s, h, []*p11.Attribute{p11.NewAttribute(p11.CKA_CLASS, nil), p11.NewAttribute(p11.CKA_LABEL, nil)})
		if err != nil {
			if k := kindOf(t.classify(op, err)); k == kindLost {
				return nil, t.classify(op, err)
			}
			continue // an object we may not read
		}
		label := string(a[1].Value)
		if !strings.HasPrefix(label, prefix) {
			continue
		}
		class := attrUint(a[0].Value)
		o := ObjectInfo{Label: label, Class: className(class)}
		if class == p11.CKO_SECRET_KEY || class == p11.CKO_PRIVATE_KEY || class == p11.CKO_PUBLIC_KEY {
			a, err := t.raw.GetAttributeValue(s, h, []*p11.Attribute{
				p11.NewAttribute(p11.CKA_KEY_TYPE, nil), p11.NewAttribute(p11.CKA_ID, nil),
				p11.NewAttribute(p11.CKA_PRIVATE, nil), p11.NewAttribute(p11.CKA_LOCAL, nil),
			})
			if err != nil {
				return nil, t.classify(op+" ("+label+")", err)
			}
			o.KeyType, o.ID, o.Private, o.Local = keyTypeName(attrUint(a[0].Value)), a[1].Value, attrBool(a[2].Value), attrBool(a[3].Value)
		}
		if class == p11.CKO_SECRET_KEY || class == p11.CKO_PRIVATE_KEY {
			a, err := t.raw.GetAttributeValue(s, h, []*p11.Attribute{
				p11.NewAttribute(p11.CKA_SENSITIVE, nil), p11.NewAttribute(p11.CKA_EXTRACTABLE, nil),
				p11.NewAttribute(p11.CKA_ALWAYS_SENSITIVE, nil), p11.NewAttribute(p11.CKA_NEVER_EXTRACTABLE, nil),
			})
			if err != nil {
				return nil, t.classify(op+" ("+label+")", err)
			}
			o.Sensitive, o.Extractable, o.AlwaysSensitive, o.NeverExtractable = attrBool(a[0].Value), attrBool(a[1].Value), attrBool(a[2].Value), attrBool(a[3].Value)
		}
		out = append(out, o)
	}
	return out, nil
}

func (t *p11token) mechanisms() ([]MechanismInfo, error) {
	ms, err := t.raw.GetMechanismList(t.slot)
	if err != nil {
		return nil, t.classify("list mechanisms", err)
	}
	have := map[uint]bool{}
	for _, m := range ms {
		have[m.Mechanism] = true
	}
	out := make([]MechanismInfo, len(RequiredMechanisms))
	for i, r := range RequiredMechanisms {
		out[i] = MechanismInfo{Name: r.Name, Use: r.Use, Supported: have[r.Code]}
	}
	return out, nil
}

func attrUint(b []byte) uint {
	switch len(b) {
	case 8:
		return uint(binary.NativeEndian.Uint64(b))
	case 4:
		return uint(binary.NativeEndian.Uint32(b))
	}
	return ^uint(0)
}

func attrBool(b []byte) bool { return len(b) > 0 && b[0] != 0 }

func className(c uint) string {
	switch c {
	case p11.CKO_SECRET_KEY:
		return "secret-key"
	case p11.CKO_PRIVATE_KEY:
		return "private-key"
	case p11.CKO_PUBLIC_KEY:
		return "public-key"
	case p11.CKO_CERTIFICATE:
		return "certificate"
	case p11.CKO_DATA:
		return "data"
	}
	return fmt.Sprintf("class-%#x", c)
}

func keyTypeName(k uint) string {
	switch k {
	case p11.CKK_GENERIC_SECRET:
		return "generic-secret"
	case p11.CKK_AES:
		return "aes"
	case p11.CKK_EC:
		return "ec"
	case p11.CKK_RSA:
		return "rsa"
	}
	return fmt.Sprintf("type-%#x", k)
}

// secret finds the one secret key labelled label (cached per connection).
func (t *p11token) secret(label string) (*crypto11.SecretKey, error) {
	t.mu.Lock()
	k := t.secrets[label]
	t.mu.Unlock()
	if k != nil {
		return k, nil
	}
	op := "find secret key " + label
	keys, err := t.c11.FindKeys(nil, []byte(label))
	if err != nil {
		return nil, t.classify(op, err)
	}
	switch len(keys) {
	case 0:
		return nil, newErr(kindNotFound, op, nil)
	case 1:
	default:
		return nil, newErr(kindFailure, op, fmt.Errorf("%d secret keys carry this label; refusing to guess", len(keys)))
	}
	t.mu.Lock()
	t.secrets[label] = keys[0]
	t.mu.Unlock()
	return keys[0], nil
}

func (t *p11token) hmacSHA256(label string, data []byte) (out []byte, err error) {
	op := "HMAC-SHA256 with " + label
	k, err := t.secret(label)
	if err != nil {
		return nil, err
	}
	if k.Cipher != crypto11.CipherGeneric {
		return nil, newErr(kindFailure, op, errors.New("the key is not a CKK_GENERIC_SECRET key"))
	}
	// crypto11's HMAC panics in Sum when the token fails.
	defer func() {
		if r := recover(); r != nil {
			out, err = nil, t.recovered(op, r)
		}
	}()
	h, err := k.NewHMAC(p11.CKM_SHA256_HMAC, 0)
	if err != nil {
		return nil, t.classify(op, err)
	}
	if _, err := h.Write(data); err != nil {
		// crypto11 cannot give back the session of an HMAC whose update
		// failed (its Sum panics before returning it to the pool): drop
		// the whole connection so the pool does not shrink for good.
		return nil, newErr(kindLost, op, err)
	}
	return h.Sum(nil), nil
}

func (t *p11token) generateSecret(kind secretKind, label string, id []byte) error {
	op := "generate secret key " + label
	a, err := crypto11.NewAttributeSetWithIDAndLabel(id, []byte(label))
	if err != nil {
		return newErr(kindFailure, op, err)
	}
	set := func(typ uint, v any) {
		if err == nil {
			err = a.Set(typ, v)
		}
	}
	set(p11.CKA_TOKEN, true)
	set(p11.CKA_PRIVATE, true)
	set(p11.CKA_SENSITIVE, true)
	set(p11.CKA_EXTRACTABLE, false)
	set(p11.CKA_WRAP, false)
	set(p11.CKA_UNWRAP, false)
	set(p11.CKA_DERIVE, false)
	cipher := crypto11.CipherGeneric
	switch kind {
	case secretRoot:
		set(p11.CKA_SIGN, true)
		set(p11.CKA_VERIFY, false)
		set(p11.CKA_ENCRYPT, false)
		set(p11.CKA_DECRYPT, false)
	case secretWrap:
		cipher = crypto11.CipherAES
		set(p11.CKA_SIGN, false)
		set(p11.CKA_VERIFY, false)
		set(p11.CKA_ENCRYPT, true)
		set(p11.CKA_DECRYPT, true)
	}
	if err != nil {
		return newErr(kindFailure, op, err)
	}
	k, err := t.c11.GenerateSecretKeyWithAttributes(a, 256, cipher)
	if err != nil {
		return t.classify(op, err)
	}
	t.mu.Lock()
	t.secrets[label] = k
	t.mu.Unlock()
	return nil
}

func (t *p11token) importSecret(label string, id, value []byte) error {
	op := "import secret key " + label
	s, done, err := t.session(op, true)
	if err != nil {
		return err
	}
	defer done()
	v := append([]byte(nil), value...)
	defer clear(v)
	template := []*p11.Attribute{
		p11.NewAttribute(p11.CKA_CLASS, p11.CKO_SECRET_KEY),
		p11.NewAttribute(p11.CKA_KEY_TYPE, p11.CKK_GENERIC_SECRET),
		p11.NewAttribute(p11.CKA_TOKEN, true),
		p11.NewAttribute(p11.CKA_PRIVATE, true),
		p11.NewAttribute(p11.CKA_SENSITIVE, true),
		p11.NewAttribute(p11.CKA_EXTRACTABLE, false),
		p11.NewAttribute(p11.CKA_SIGN, true),
		p11.NewAttribute(p11.CKA_VERIFY, false),
		p11.NewAttribute(p11.CKA_ENCRYPT, false),
		p11.NewAttribute(p11.CKA_DECRYPT, false),
		p11.NewAttribute(p11.CKA_WRAP, false),
		p11.NewAttribute(p11.CKA_UNWRAP, false),
		p11.NewAttribute(p11.CKA_DERIVE, false),
		p11.NewAttribute(p11.CKA_LABEL, label),
		p11.NewAttribute(p11.CKA_ID, id),
		p11.NewAttribute(p11.CKA_VALUE, v),
	}
	if _, err := t.raw.CreateObject(s, template); err != nil {
		return t.classify(op, err)
	}
	return nil
}

func (t *p11token) destroy(label string, id []byte) error {
	op := "delete " + label
	s, done, err := t.session(op, true)
	if err != nil {
		return err
	}
	defer done()
	hs, err := t.find(s, []*p11.Attribute{p11.NewAttribute(p11.CKA_LABEL, label), p11.NewAttribute(p11.CKA_ID, id)})
	if err != nil {
		return t.classify(op, err)
	}
	for _, h := range hs {
		if err := t.raw.DestroyObject(s, h); err != nil {
			return t.classify(op, err)
		}
	}
	t.mu.Lock()
	delete(t.secrets, label)
	for k, sg := range t.signers {
		if sg.label == label {
			delete(t.signers, k)
		}
	}
	t.mu.Unlock()
	return nil
}

func (t *p11token) gcm(op, label string, nonce []byte) (interface {
	Seal(dst, nonce, plaintext, additionalData []byte) []byte
	Open(dst, nonce, ciphertext, additionalData []byte) ([]byte, error)
}, error) {
	if len(nonce) != nonceSize {
		return nil, newErr(kindFailure, op, fmt.Errorf("nonce is %d bytes, want %d", len(nonce), nonceSize))
	}
	k, err := t.secret(label)
	if err != nil {
		return nil, err
	}
	if k.Cipher != crypto11.CipherAES {
		return nil, newErr(kindFailure, op, errors.New("the key is not an AES key"))
	}
	aead, err := k.NewGCM()
	if err != nil {
		return nil, t.classify(op, err)
	}
	if aead.NonceSize() != nonceSize {
		return nil, newErr(kindFailure, op, fmt.Errorf("crypto11 GCM nonce size is %d, want %d", aead.NonceSize(), nonceSize))
	}
	return aead, nil
}

func (t *p11token) gcmSeal(label string, nonce, plaintext, aad []byte) (out []byte, err error) {
	op := "AES-GCM seal with " + label
	aead, err := t.gcm(op, label, nonce)
	if err != nil {
		return nil, err
	}
	// crypto11's Seal panics when the token fails.
	defer func() {
		if r := recover(); r != nil {
			out, err = nil, t.recovered(op, r)
		}
	}()
	return aead.Seal(nil, nonce, plaintext, aad), nil
}

func (t *p11token) gcmOpen(label string, nonce, ciphertext, aad []byte) (out []byte, err error) {
	op := "AES-GCM open with " + label
	aead, err := t.gcm(op, label, nonce)
	if err != nil {
		return nil, err
	}
	defer func() {
		if r := recover(); r != nil {
			out, err = nil, t.recovered(op, r)
		}
	}()
	out, err = aead.Open(nil, nonce, ciphertext, aad)
	if err != nil {
		return nil, t.classify(op, err)
	}
	return out, nil
}

func (t *p11token) generateECDSA(label string, id []byte) (crypto.Signer, error) {
	op := "generate ECDSA P-384 key " + label
	pub, err := crypto11.NewAttributeSetWithIDAndLabel(id, []byte(label))
	if err != nil {
		return nil, newErr(kindFailure, op, err)
	}
	priv := pub.Copy()
	for _, s := range []struct {
		a   crypto11.AttributeSet
		typ uint
		v   bool
	}{
		{pub, p11.CKA_TOKEN, true}, {pub, p11.CKA_PRIVATE, false}, {pub, p11.CKA_VERIFY, true},
		{pub, p11.CKA_ENCRYPT, false}, {pub, p11.CKA_WRAP, false}, {pub, p11.CKA_DERIVE, false},
		{priv, p11.CKA_TOKEN, true}, {priv, p11.CKA_PRIVATE, true}, {priv, p11.CKA_SIGN, true},
		{priv, p11.CKA_SENSITIVE, true}, {priv, p11.CKA_EXTRACTABLE, false}, {priv, p11.CKA_DERIVE, false},
		// Signing only (crypto11's defaults would allow decrypt and unwrap).
		{priv, p11.CKA_DECRYPT, false}, {priv, p11.CKA_UNWRAP, false},
	} {
		if err := s.a.Set(s.typ, s.v); err != nil {
			return nil, newErr(kindFailure, op, err)
		}
	}
	k, err := t.c11.GenerateECDSAKeyPairWithAttributes(pub, priv, elliptic.P384())
	if err != nil {
		return nil, t.classify(op, err)
	}
	s := &p11signer{t: t, s: k, label: label}
	t.mu.Lock()
	t.signers[label+"\x00"+string(id)] = s
	t.mu.Unlock()
	return s, nil
}

func (t *p11token) findECDSA(label string, id []byte) (crypto.Signer, error) {
	ck := label + "\x00" + string(id)
	t.mu.Lock()
	s := t.signers[ck]
	t.mu.Unlock()
	if s != nil {
		return s, nil
	}
	op := "find key pair " + label
	ks, err := t.c11.FindKeyPairs(id, []byte(label))
	if err != nil {
		return nil, t.classify(op, err)
	}
	switch len(ks) {
	case 0:
		return nil, newErr(kindNotFound, op, fmt.Errorf("no key pair with CKA_ID %x", id))
	case 1:
	default:
		return nil, newErr(kindFailure, op, fmt.Errorf("%d key pairs carry this label and CKA_ID; refusing to guess", len(ks)))
	}
	s = &p11signer{t: t, s: ks[0], label: label}
	t.mu.Lock()
	t.signers[ck] = s
	t.mu.Unlock()
	return s, nil
}

// p11signer is a crypto11 signer whose errors are classified and whose
// panics are recovered.
type p11signer struct {
	t     *p11token
	s     crypto11.Signer
	label string
}

func (s *p11signer) Public() crypto.PublicKey { return s.s.Public() }

func (s *p11signer) Sign(r io.Reader, digest []byte, opts crypto.SignerOpts) (sig []byte, err error) {
	op := "sign with " + s.label
	defer func() {
		if rec := recover(); rec != nil {
			sig, err = nil, s.t.recovered(op, rec)
		}
	}()
	sig, err = s.s.Sign(r, digest, opts)
	if err != nil {
		return nil, s.t.classify(op, err)
	}
	return sig, nil
}

func (t *p11token) close() error {
	t.closeOnce.Do(func() {
		t.closeErr = t.c11.Close() // waits for sessions in use
		t.raw.Destroy()
		openMu.Lock()
		if ref := logins[t.key]; ref != nil {
			if ref.n--; ref.n <= 0 {
				delete(logins, t.key)
			}
		}
		openMu.Unlock()
	})
	return t.closeErr
}
