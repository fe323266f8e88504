package engine_test

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"math/big"
	"testing"
	"time"

	"github.com/minikms/minikms/engine"
)

// Fuzz targets of what clients hand the engine as bytes: certificates and
// private keys (including the secp256k1 fallback parsers) and ciphertext
// (one-shot and streamed Decrypt). Seeds are added in code and kept in
// testdata/fuzz; scripts/fuzz.sh runs them with -fuzz.

// fuzzCertSeeds returns a P-256 certificate and the same certificate with
// a secp256k1 subject key (not verifiable, but parseable by
// engine.ParseCertificate).
func fuzzCertSeeds(t testing.TB) (p256, k1 []byte, k1pkcs8, k1spki []byte) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(42), Subject: pkix.Name{CommonName: "fuzz"},
		NotBefore: time.Unix(1e9, 0), NotAfter: time.Unix(2e9, 0), DNSNames: []string{"a.example"}}
	p256, err = x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	k1key, err := ecdsa.GenerateKey(engine.Secp256k1(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	if k1spki, err = engine.MarshalPKIXPublicKey(&k1key.PublicKey); err != nil {
		t.Fatal(err)
	}
	if k1pkcs8, err = engine.MarshalPKCS8PrivateKey(k1key); err != nil {
		t.Fatal(err)
	}
	var c struct {
		TBS struct {
			Raw        asn1.RawContent
			Version    int `asn1:"optional,explicit,default:0,tag:0"`
			Serial     asn1.RawValue
			SigAlg     pkix.AlgorithmIdentifier
			Issuer     asn1.RawValue
			Validity   asn1.RawValue
			Subject    asn1.RawValue
			PublicKey  asn1.RawValue
			Extensions []pkix.Extension `asn1:"omitempty,optional,explicit,tag:3"`
		}
		SigAlg pkix.AlgorithmIdentifier
		Sig    asn1.BitString
	}
	if _, err := asn1.Unmarshal(p256, &c); err != nil {
		t.Fatal(err)
	}
	c.TBS.Raw = nil
	c.TBS.PublicKey = asn1.RawValue{FullBytes: k1spki}
	if k1, err = asn1.Marshal(c); err != nil {
		t.Fatal(err)
	}
	got, err := engine.ParseCertificate(k1)
	if err != nil {
		t.Fatalf("the secp256k1 seed does not parse: %v", err)
	}
	if pub, ok := got.PublicKey.(*ecdsa.PublicKey); !ok || !pub.Equal(&k1key.PublicKey) {
		t.Fatal("the secp256k1 seed lost its key")
	}
	return p256, k1, k1pkcs8, k1spki
}

// FuzzParseCertificate: any DER either fails or gives a certificate with a
// public key; the secp256k1 fallback keeps the parsed key consistent.
func FuzzParseCertificate(f *testing.F) {
	p256, k1, _, _ := fuzzCertSeeds(f)
	f.Add(p256)
	f.Add(k1)
	f.Add(k1[:len(k1)/2])
	f.Add([]byte{0x30, 0x00})
	f.Fuzz(func(t *testing.T, der []byte) {
		c, err := engine.ParseCertificate(der)
		if err != nil {
			if c != nil {
				t.Fatal("a failed parse returned a certificate")
			}
			return
		}
		if c.PublicKey == nil {
			// crypto/x509 leaves unknown key algorithms nil; the engine
			// must then refuse to describe it, which callers check.
			return
		}
		if pub, ok := c.PublicKey.(*ecdsa.PublicKey); ok && pub.Curve == engine.Secp256k1() {
			if _, err := engine.MarshalPKIXPublicKey(pub); err != nil {
				t.Fatalf("a parsed secp256k1 key does not re-encode: %v", err)
			}
		}
	})
}

// FuzzParsePrivateKey: PKCS#8, SEC 1 and SPKI parsing with the secp256k1
// fallbacks never panic, and what parses re-encodes and parses again to an
// equal key.
func FuzzParsePrivateKey(f *testing.F) {
	_, _, k1pkcs8, k1spki := fuzzCertSeeds(f)
	p256, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	p8, _ := x509.MarshalPKCS8PrivateKey(p256)
	sec1, _ := x509.MarshalECPrivateKey(p256)
	spki, _ := x509.MarshalPKIXPublicKey(&p256.PublicKey)
	for _, s := range [][]byte{k1pkcs8, k1spki, p8, sec1, spki, {0x30, 0x03, 0x02, 0x01, 0x00}} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, der []byte) {
		if k, err := engine.ParsePKCS8PrivateKey(der); err == nil {
			again, err := engine.MarshalPKCS8PrivateKey(k)
			if err != nil {
				t.Fatalf("a parsed PKCS#8 key (%T) does not re-encode: %v", k, err)
			}
			k2, err := engine.ParsePKCS8PrivateKey(again)
			if err != nil {
				t.Fatalf("a re-encoded PKCS#8 key does not parse: %v", err)
			}
			if e, ok := k.(interface{ Equal(x any) bool }); ok && !e.Equal(k2) {
				t.Fatal("PKCS#8 round trip changed the key")
			}
		}
		if k, err := engine.ParseECPrivateKey(der); err == nil {
			if k == nil || k.D == nil {
				t.Fatal("nil key without error")
			}
			if engine.ValidECPrivateKey(k) {
				if _, err := engine.MarshalECPrivateKey(k); err != nil {
					t.Fatalf("a valid EC key does not re-encode: %v", err)
				}
			}
		}
		if pub, err := engine.ParsePKIXPublicKey(der); err == nil {
			if _, err := engine.MarshalPKIXPublicKey(pub); err != nil {
				t.Fatalf("a parsed public key (%T) does not re-encode: %v", pub, err)
			}
		}
	})
}

// decryptErrors are the answers a bad ciphertext may get.
var decryptErrors = []error{engine.ErrInvalidField, engine.ErrCryptoFailure, engine.ErrBadCiphertext, engine.ErrNotSupported, engine.ErrInvalidMessage, engine.ErrLimit, engine.ErrMissingData}

func wantDecryptError(t *testing.T, err error) {
	t.Helper()
	for _, e := range decryptErrors {
		if errors.Is(err, e) {
			return
		}
	}
	t.Fatalf("decrypt failed with an unclassified error: %v", err)
}

// FuzzDecrypt: arbitrary ciphertext, IV, tag and parameters given to a
// one-shot Decrypt and to a stream, split at any point, fail with a KMIP
// reason or succeed; never a panic. A GCM ciphertext the key did not
// produce never decrypts.
func FuzzDecrypt(f *testing.F) {
	e := newEnv(f)
	key := e.activeAES(f, acmeAdmin, 256)
	good := e.encrypt(f, acmeAdmin, key.ID, []byte("attack at dawn"))
	f.Add(byte(engine.ModeGCM), byte(0), good.Ciphertext, good.IV, good.Tag, []byte(nil), 5)
	f.Add(byte(engine.ModeGCM), byte(0), good.Ciphertext, good.IV, good.Tag[:12], []byte("aad"), 0)
	f.Add(byte(engine.ModeCBC), byte(engine.PadPKCS5), make([]byte, 32), make([]byte, 16), []byte(nil), []byte(nil), 17)
	f.Add(byte(engine.ModeCBC), byte(engine.PadNone), make([]byte, 15), make([]byte, 15), []byte(nil), []byte(nil), 3)
	f.Add(byte(engine.ModeECB), byte(engine.PadPKCS5), make([]byte, 16), []byte(nil), []byte(nil), []byte(nil), 1)
	f.Add(byte(engine.ModeCTR), byte(0), []byte("xyz"), make([]byte, 16), []byte(nil), []byte(nil), 2)
	f.Add(byte(0x7f), byte(0x7f), []byte("x"), []byte("y"), []byte("z"), []byte(nil), 0)
	f.Fuzz(func(t *testing.T, mode, pad byte, data, iv, tag, aad []byte, split int) {
		params := &engine.CryptographicParameters{BlockCipherMode: engine.BlockCipherMode(mode), PaddingMethod: engine.PaddingMethod(pad), CryptographicAlgorithm: engine.AlgAES}
		if mode == 0 {
			params = nil
		}
		ctx := t.Context()
		_, pt, err := e.eng.Decrypt(ctx, acmeAdmin, engine.DecryptRequest{ID: key.ID, Params: params, Data: data, IV: iv, AAD: aad, Tag: tag})
		if err != nil {
			wantDecryptError(t, err)
			if pt != nil {
				t.Fatal("a failed decrypt returned plaintext")
			}
		} else if (mode == byte(engine.ModeGCM) || mode == 0) && !(bytes.Equal(data, good.Ciphertext) && bytes.Equal(iv, good.IV) && len(aad) == 0 && len(tag) >= 12 && bytes.HasPrefix(good.Tag, tag)) {
			t.Fatal("GCM accepted a ciphertext the key did not produce")
		}
		s, err := e.eng.StartStream(ctx, acmeAdmin, engine.StreamRequest{Decrypt: true, ID: key.ID, Params: params, IV: iv, AAD: aad})
		if err != nil {
			wantDecryptError(t, err)
			return
		}
		defer s.Close()
		if split < 0 {
			split = -split
		}
		split %= len(data) + 1
		if _, _, err := s.Next(ctx, data[:split], false, nil); err != nil {
			wantDecryptError(t, err)
			return
		}
		if _, _, err := s.Next(ctx, data[split:], true, tag); err != nil {
			wantDecryptError(t, err)
		}
	})
}
