package pkcs11

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"fmt"
	"strings"

	"github.com/minikms/minikms/engine"
)

// Unseal mode (optional, off by default).
//
// The root key is a software key (as with MINIKMS_ROOT_KEY) stored only
// sealed by an AES-256 key in the token (<prefix>wrap-v1, CKA_SENSITIVE,
// not extractable, CKA_ENCRYPT/CKA_DECRYPT only) with CKM_AES_GCM. At start
// UnsealRoot decrypts it in the token and returns an engine.SoftKeyring.
//
// Trade-off: the token is needed only at start, derivation runs at
// software speed and an HSM outage after start does not stop the server;
// the sealed root is useless without the token (a stolen disk or backup
// holds no usable root key). But the root key is in process memory for the
// whole run, exactly as with a plain software root key: whoever can read
// the process memory (core dump, swap, debugger) gets the root key. In the
// default mode (Keyring) the root key never leaves the token.

const sealedRootPrefix = "minikms-sealed-root:v1:"

// nonceSize is the AES-GCM nonce size. crypto11 defaults to 16; the token
// connection is configured for 12 and the size is checked here.
const nonceSize = 12

func sealedRootAAD(label string) []byte {
	return []byte("minikms/v1|sealed-root|" + label)
}

// SealRoot seals a 32-byte root key with the token's wrapping key, making
// that key first if the token has none, and checks the result opens again.
// The result is text: minikms-sealed-root:v1:<wrap key label>:<base64url
// of nonce || ciphertext || tag>. It is not secret without the token.
func (h *HSM) SealRoot(ctx context.Context, root []byte) (string, error) {
	if len(root) != engine.RootKeySize {
		return "", fmt.Errorf("root key must be %d bytes, got %d", engine.RootKeySize, len(root))
	}
	label := wrapLabel(h.cfg.LabelPrefix)
	nonce := make([]byte, nonceSize)
	if _, err := rand.Read(nonce); err != nil {
		return "", err
	}
	var ct []byte
	err := h.do(ctx, "seal root key with "+label, false, func(t token) error {
		objs, err := t.objects(label)
		if err != nil {
			return err
		}
		if !hasExact(objs, label, "secret-key") {
			if err := t.generateSecret(secretWrap, label, []byte("wrap-v1")); err != nil {
				return err
			}
		}
		ct, err = t.gcmSeal(label, nonce, root, sealedRootAAD(label))
		return err
	})
	if err != nil {
		return "", err
	}
	sealed := sealedRootPrefix + label + ":" + base64.RawURLEncoding.EncodeToString(append(nonce, ct...))
	got, err := h.openSealed(ctx, sealed)
	if err != nil {
		return "", fmt.Errorf("the sealed root key does not open again: %w", err)
	}
	defer clear(got)
	if subtle.ConstantTimeCompare(got, root) != 1 {
		return "", newErr(kindFailure, "seal root key", fmt.Errorf("the sealed root key opens to a different key"))
	}
	return sealed, nil
}

// UnsealRoot opens a root key sealed by SealRoot and returns it as a
// software keyring (version 1). The plaintext root key is then in process
// memory until the keyring is closed.
func (h *HSM) UnsealRoot(ctx context.Context, sealed string) (*engine.SoftKeyring, error) {
	root, err := h.openSealed(ctx, sealed)
	if err != nil {
		return nil, err
	}
	defer clear(root)
	return engine.NewSoftKeyring(root)
}

func (h *HSM) openSealed(ctx context.Context, sealed string) ([]byte, error) {
	rest, ok := strings.CutPrefix(strings.TrimSpace(sealed), sealedRootPrefix)
	if !ok {
		return nil, fmt.Errorf("%w: not a sealed root key (it must start with %q)", ErrConfig, sealedRootPrefix)
	}
	label, b64, ok := strings.Cut(rest, ":")
	if !ok || label != wrapLabel(h.cfg.LabelPrefix) {
		return nil, fmt.Errorf("%w: the sealed root key names wrapping key %q, this configuration uses %q", ErrConfig, label, wrapLabel(h.cfg.LabelPrefix))
	}
	raw, err := base64.RawURLEncoding.DecodeString(b64)
	if err != nil || len(raw) != nonceSize+engine.RootKeySize+16 {
		return nil, fmt.Errorf("%w: the sealed root key is malformed", ErrConfig)
	}
	var pt []byte
	err = h.do(ctx, "unseal root key with "+label, true, func(t token) error {
		var err error
		pt, err = t.gcmOpen(label, raw[:nonceSize], raw[nonceSize:], sealedRootAAD(label))
		return err
	})
	if err != nil {
		return nil, err
	}
	if len(pt) != engine.RootKeySize {
		clear(pt)
		return nil, newErr(kindFailure, "unseal root key", fmt.Errorf("opened %d bytes, want %d", len(pt), engine.RootKeySize))
	}
	return pt, nil
}

func hasExact(objs []ObjectInfo, label, class string) bool {
	for _, o := range objs {
		if o.Label == label && o.Class == class {
			return true
		}
	}
	return false
}
