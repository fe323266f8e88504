package engine

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"testing"
)

// Fuzz targets of the engine's byte formats: the stored wrapped material,
// the material header inside it and the RFC 3394/5649 key unwrap. Each
// runs over its seeds (and testdata/fuzz) in every `go test`;
// scripts/fuzz.sh runs them with -fuzz.

func fuzzAEAD(t testing.TB) cipher.AEAD {
	block, err := aes.NewCipher(bytes.Repeat([]byte{7}, 32))
	if err != nil {
		t.Fatal(err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		t.Fatal(err)
	}
	return aead
}

// FuzzDecodeMaterial: any plaintext layout decodes or fails cleanly; what
// decodes re-encodes to the same bytes.
func FuzzDecodeMaterial(f *testing.F) {
	f.Add(encodeMaterial(Material{Format: 1, DataType: 2, Bytes: []byte("0123456789abcdef")}))
	f.Add(encodeMaterial(Material{Format: 3, DataType: 0, Registered: []byte("wrapped"), Bytes: []byte("key")}))
	f.Add([]byte{0x02, 1, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff})
	f.Add([]byte{0x01})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := decodeMaterial(b)
		if err != nil {
			if m.Bytes != nil || m.Registered != nil {
				t.Fatal("a failed decode returned material")
			}
			return
		}
		if b[0] == 0x02 && len(m.Registered) == 0 {
			return // an empty registered form re-encodes in the short layout
		}
		if got := encodeMaterial(m); !bytes.Equal(got, b) {
			t.Fatalf("decode/encode changed the layout:\n%x\n%x", b, got)
		}
	})
}

// FuzzUnwrapMaterial: stored wrapped material of any content fails
// cleanly unless it authenticates; sealing any material round-trips.
func FuzzUnwrapMaterial(f *testing.F) {
	aead := fuzzAEAD(f)
	good, err := wrapMaterial(aead, "acme", "id-1", 1, encodeMaterial(Material{Format: 1, Bytes: []byte("k")}))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good, []byte("k"))
	f.Add(good[:wrapOverhead-1], []byte{})
	f.Add(append([]byte{0x09}, good[1:]...), []byte("x"))
	f.Fuzz(func(t *testing.T, wrapped, material []byte) {
		if pt, err := unwrapMaterial(aead, "acme", "id-1", 1, wrapped); err == nil {
			if _, err := decodeMaterial(pt); err != nil && bytes.Equal(wrapped, good) {
				t.Fatal("the seed no longer decodes")
			}
		} else if pt != nil {
			t.Fatal("a failed unwrap returned plaintext")
		}
		w, err := wrapMaterial(aead, "acme", "id-2", 3, material)
		if err != nil {
			if len(material) <= MaxMaterialSize {
				t.Fatalf("wrap refused %d bytes: %v", len(material), err)
			}
			return
		}
		pt, err := unwrapMaterial(aead, "acme", "id-2", 3, w)
		if err != nil || !bytes.Equal(pt, material) {
			t.Fatalf("round trip failed: %v", err)
		}
		if _, err := unwrapMaterial(aead, "acme", "id-3", 3, w); err == nil {
			t.Fatal("material unwrapped under another object id")
		}
	})
}

// FuzzAESKeyUnwrap: RFC 3394 and RFC 5649 unwrap of arbitrary input never
// panics and only verifies what a wrap produced; wrap/unwrap round-trips.
func FuzzAESKeyUnwrap(f *testing.F) {
	kek, err := aes.NewCipher(bytes.Repeat([]byte{0x42}, 16))
	if err != nil {
		f.Fatal(err)
	}
	w, _ := aesKeyWrap(kek, bytes.Repeat([]byte{1}, 16))
	wp, _ := aesKeyWrapPad(kek, []byte("abc"))
	wp2, _ := aesKeyWrapPad(kek, bytes.Repeat([]byte{2}, 20))
	for _, s := range [][]byte{w, wp, wp2, make([]byte, 24), make([]byte, 16), {1, 2, 3}, nil} {
		f.Add(s, []byte("0123456789abcdef"))
	}
	f.Fuzz(func(t *testing.T, wrapped, plain []byte) {
		if p, err := aesKeyUnwrap(kek, wrapped); err == nil {
			if again, _ := aesKeyWrap(kek, p); !bytes.Equal(again, wrapped) {
				t.Fatal("RFC 3394 unwrap accepted input a wrap does not produce")
			}
		} else if p != nil {
			t.Fatal("failed unwrap returned data")
		}
		if p, err := aesKeyUnwrapPad(kek, wrapped); err == nil {
			if again, _ := aesKeyWrapPad(kek, p); !bytes.Equal(again, wrapped) {
				t.Fatal("RFC 5649 unwrap accepted input a wrap does not produce")
			}
		} else if p != nil {
			t.Fatal("failed padded unwrap returned data")
		}
		if len(plain) > 4096 {
			plain = plain[:4096]
		}
		if c, err := aesKeyWrapPad(kek, plain); err == nil {
			if p, err := aesKeyUnwrapPad(kek, c); err != nil || !bytes.Equal(p, plain) {
				t.Fatalf("RFC 5649 round trip: %v", err)
			}
		} else if len(plain) != 0 {
			t.Fatalf("RFC 5649 wrap refused %d bytes", len(plain))
		}
		if c, err := aesKeyWrap(kek, plain); err == nil {
			if p, err := aesKeyUnwrap(kek, c); err != nil || !bytes.Equal(p, plain) {
				t.Fatalf("RFC 3394 round trip: %v", err)
			}
		}
	})
}
