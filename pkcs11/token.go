package pkcs11

import "crypto"

// token is one open, logged-in connection to the HSM token. The cgo build
// implements it with crypto11 and miekg/pkcs11; tests use a stub. Every
// method returns *tokenError values (see errors.go) so the HSM can tell a
// failed operation from a lost token. Methods are safe for concurrent use.
type token interface {
	// info describes the token (constant for the connection).
	info() TokenInfo
	// ping checks that the token is present, is the same token and that
	// the application is still logged in.
	ping() error
	// objects lists the token objects whose label starts with prefix.
	objects(prefix string) ([]ObjectInfo, error)
	// mechanisms reports, for each mechanism miniKMS uses
	// (RequiredMechanisms), whether the token offers it.
	mechanisms() ([]MechanismInfo, error)

	// hmacSHA256 computes CKM_SHA256_HMAC over data with the secret key
	// labelled label (exactly one must exist).
	hmacSHA256(label string, data []byte) ([]byte, error)
	// generateSecret creates a sensitive, non-extractable secret key in the
	// token.
	generateSecret(kind secretKind, label string, id []byte) error
	// importSecret stores value as a sensitive, non-extractable
	// CKK_GENERIC_SECRET key usable only for signing (HMAC).
	importSecret(label string, id, value []byte) error
	// destroy deletes the objects labelled label with CKA_ID id.
	destroy(label string, id []byte) error
	// gcmSeal and gcmOpen run CKM_AES_GCM (12-byte nonce, 16-byte tag)
	// with the AES key labelled label.
	gcmSeal(label string, nonce, plaintext, aad []byte) ([]byte, error)
	gcmOpen(label string, nonce, ciphertext, aad []byte) ([]byte, error)

	// generateECDSA makes a P-384 key pair in the token; the private half
	// is sensitive and non-extractable.
	generateECDSA(label string, id []byte) (crypto.Signer, error)
	// findECDSA finds the key pair with the label and CKA_ID.
	findECDSA(label string, id []byte) (crypto.Signer, error)

	// close releases the connection. It may block until operations in
	// flight end.
	close() error
}

// secretKind says what a generated secret key is for.
type secretKind int

const (
	secretRoot secretKind = iota // CKK_GENERIC_SECRET, 32 bytes, CKA_SIGN only (HMAC)
	secretWrap                   // CKK_AES, 32 bytes, CKA_ENCRYPT/CKA_DECRYPT only (AES-GCM)
)

// TokenInfo describes the token in use.
type TokenInfo struct {
	Module       string
	Label        string
	Serial       string
	Manufacturer string
	Model        string
}

// ObjectInfo describes one token object (never its value).
type ObjectInfo struct {
	Label string
	ID    []byte
	// Class is "secret-key", "private-key", "public-key" or another
	// CKO_ name.
	Class string
	// KeyType is "generic-secret", "aes", "ec" or another CKK_ name.
	KeyType string
	// Token objects only: Private (CKA_PRIVATE: needs login to be seen).
	Private bool
	// Secret and private keys only.
	Sensitive        bool // CKA_SENSITIVE
	Extractable      bool // CKA_EXTRACTABLE
	AlwaysSensitive  bool // CKA_ALWAYS_SENSITIVE
	NeverExtractable bool // CKA_NEVER_EXTRACTABLE (false for imported keys, by definition)
	Local            bool // CKA_LOCAL: generated in the token
}

// Protected reports whether the key value cannot leave the token: sensitive
// and not extractable.
func (o ObjectInfo) Protected() bool { return o.Sensitive && !o.Extractable }

// MechanismInfo says whether the token offers one PKCS#11 mechanism.
type MechanismInfo struct {
	Name      string // CKM_ name
	Use       string // what miniKMS uses it for
	Supported bool
}

// RequiredMechanisms are the mechanisms miniKMS uses, by CKM_ name, with
// what for. The values are PKCS#11 constants (kept here so that a build
// without cgo can name them too).
var RequiredMechanisms = []struct {
	Name string
	Code uint
	Use  string
}{
	{"CKM_SHA256_HMAC", 0x251, "tenant master key derivation with the root key"},
	{"CKM_GENERIC_SECRET_KEY_GEN", 0x350, "root key generation (hsm init)"},
	{"CKM_EC_KEY_PAIR_GEN", 0x1040, "CA and signing key generation (P-384)"},
	{"CKM_ECDSA", 0x1041, "CA, CRL and audit checkpoint signatures"},
	{"CKM_AES_KEY_GEN", 0x1080, "unseal mode: wrapping key generation"},
	{"CKM_AES_GCM", 0x1087, "unseal mode: sealing the root key"},
}
