package pkcs11

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net/url"
	"strings"
)

// KeySource is the pki.KeySource that keeps CA and signing keys in the
// token: ECDSA P-384 key pairs generated there (private half CKA_SENSITIVE,
// not extractable, CKA_SIGN only), labelled <prefix>pki-<label> with a
// random 16-byte CKA_ID. The reference the PKI stores is an RFC 7512
// PKCS#11 URI naming the object label and CKA_ID; it holds no key material.
// Signing sends the digest to the token (CKM_ECDSA: the hash is computed in
// software by the caller, as crypto.Signer requires).
type KeySource struct{ h *HSM }

// KeySource returns the token key source.
func (h *HSM) KeySource() *KeySource { return &KeySource{h: h} }

// idSize is the size of the random CKA_ID of generated key pairs.
const idSize = 16

// Generate implements pki.KeySource.
func (s *KeySource) Generate(ctx context.Context, label string) (crypto.Signer, []byte, error) {
	if label == "" {
		return nil, nil, fmt.Errorf("%w: empty key label", ErrConfig)
	}
	id := make([]byte, idSize)
	if _, err := rand.Read(id); err != nil {
		return nil, nil, err
	}
	tl := pkiLabel(s.h.cfg.LabelPrefix, label)
	var pub *ecdsa.PublicKey
	// Not retried: a second attempt after a lost token could leave two keys.
	err := s.h.do(ctx, "generate key "+tl, false, func(t token) error {
		k, err := t.generateECDSA(tl, id)
		if err != nil {
			return err
		}
		pub, err = p384Public(k)
		return err
	})
	if err != nil {
		return nil, nil, err
	}
	return &tokenSigner{h: s.h, label: tl, id: id, pub: pub}, makeRef(tl, id), nil
}

// Load implements pki.KeySource.
func (s *KeySource) Load(ctx context.Context, label string, ref []byte) (crypto.Signer, error) {
	tl, id, err := parseRef(ref)
	if err != nil {
		return nil, fmt.Errorf("CA key %s: %w", label, err)
	}
	if want := pkiLabel(s.h.cfg.LabelPrefix, label); tl != want {
		return nil, fmt.Errorf("CA key %s: the stored reference names token object %q, expected %q", label, tl, want)
	}
	var pub *ecdsa.PublicKey
	err = s.h.do(ctx, "load key "+tl, true, func(t token) error {
		k, err := t.findECDSA(tl, id)
		if err != nil {
			return err
		}
		pub, err = p384Public(k)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("CA key %s: %w", label, err)
	}
	return &tokenSigner{h: s.h, label: tl, id: id, pub: pub}, nil
}

func p384Public(k crypto.Signer) (*ecdsa.PublicKey, error) {
	pub, ok := k.Public().(*ecdsa.PublicKey)
	if !ok || pub.Curve != elliptic.P384() {
		return nil, newErr(kindFailure, "key pair", fmt.Errorf("the token key is not an ECDSA P-384 key (%T)", k.Public()))
	}
	return pub, nil
}

// tokenSigner signs with a token key. It finds the key again on each
// connection, so it keeps working after the connection is reopened.
type tokenSigner struct {
	h     *HSM
	label string
	id    []byte
	pub   *ecdsa.PublicKey
}

func (s *tokenSigner) Public() crypto.PublicKey { return s.pub }

// Sign signs digest (already hashed) in the token; the signature is ASN.1
// DER as crypto/ecdsa makes. rand is not used: the token draws the nonce.
func (s *tokenSigner) Sign(_ io.Reader, digest []byte, opts crypto.SignerOpts) ([]byte, error) {
	if opts != nil && opts.HashFunc() != 0 && len(digest) != opts.HashFunc().Size() {
		return nil, fmt.Errorf("pkcs11: digest is %d bytes, %v needs %d", len(digest), opts.HashFunc(), opts.HashFunc().Size())
	}
	if len(digest) == 0 {
		return nil, errors.New("pkcs11: empty digest")
	}
	var sig []byte
	err := s.h.do(context.Background(), "sign with "+s.label, true, func(t token) error {
		k, err := t.findECDSA(s.label, s.id)
		if err != nil {
			return err
		}
		sig, err = k.Sign(nil, digest, opts)
		return err
	})
	return sig, err
}

// References: "pkcs11:object=<label>;id=<id>;type=private" with every
// byte but RFC 3986 unreserved characters percent-encoded.

const refScheme = "pkcs11:"

func makeRef(label string, id []byte) []byte {
	var b strings.Builder
	b.WriteString(refScheme + "object=")
	b.WriteString(pctEncode([]byte(label)))
	b.WriteString(";id=")
	b.WriteString(pctEncodeAll(id))
	b.WriteString(";type=private")
	return []byte(b.String())
}

func pctEncode(s []byte) string {
	var b strings.Builder
	for _, c := range s {
		if 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '.' || c == '_' || c == '~' {
			b.WriteByte(c)
		} else {
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	return b.String()
}

func pctEncodeAll(s []byte) string {
	var b strings.Builder
	for _, c := range s {
		fmt.Fprintf(&b, "%%%02X", c)
	}
	return b.String()
}

// parseRef parses a reference made by makeRef.
func parseRef(ref []byte) (label string, id []byte, err error) {
	s, ok := strings.CutPrefix(string(ref), refScheme)
	if !ok {
		return "", nil, errors.New("the stored key reference is not a pkcs11: URI: the key was made by the software key source (sealed under the root key), not in the HSM; moving existing CA keys into a token is not supported")
	}
	var haveLabel, haveID bool
	for _, attr := range strings.Split(s, ";") {
		name, val, ok := strings.Cut(attr, "=")
		if !ok {
			return "", nil, fmt.Errorf("malformed key reference %q", ref)
		}
		dec, err := url.PathUnescape(val)
		if err != nil {
			return "", nil, fmt.Errorf("malformed key reference %q: %v", ref, err)
		}
		switch name {
		case "object":
			label, haveLabel = dec, true
		case "id":
			id, haveID = []byte(dec), true
		case "type":
			if dec != "private" {
				return "", nil, fmt.Errorf("key reference %q is not a private key", ref)
			}
		default:
			return "", nil, fmt.Errorf("key reference %q has unknown attribute %q", ref, name)
		}
	}
	if !haveLabel || !haveID || label == "" || len(id) == 0 {
		return "", nil, fmt.Errorf("key reference %q lacks the object label or id", ref)
	}
	if !bytes.Equal(makeRef(label, id), ref) {
		return "", nil, fmt.Errorf("key reference %q is not in canonical form", ref)
	}
	return label, id, nil
}
