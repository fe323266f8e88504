package engine

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"strings"
	"testing"
)

func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func aesBlock(t testing.TB, key []byte) cipher.Block {
	t.Helper()
	b, err := aes.NewCipher(key)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

const (
	kek128 = "000102030405060708090A0B0C0D0E0F"
	kek192 = "000102030405060708090A0B0C0D0E0F1011121314151617"
	kek256 = "000102030405060708090A0B0C0D0E0F101112131415161718191A1B1C1D1E1F"
	data16 = "00112233445566778899AABBCCDDEEFF"
	data24 = "00112233445566778899AABBCCDDEEFF0001020304050607"
	data32 = "00112233445566778899AABBCCDDEEFF000102030405060708090A0B0C0D0E0F"
)

// RFC 3394 §4.1 to §4.6.
var rfc3394Vectors = []struct{ name, kek, data, wrapped string }{
	{"4.1 128-bit data, 128-bit KEK", kek128, data16, "1FA68B0A8112B447 AEF34BD8FB5A7B82 9D3E862371D2CFE5"},
	{"4.2 128-bit data, 192-bit KEK", kek192, data16, "96778B25AE6CA435 F92B5B97C050AED2 468AB8A17AD84E5D"},
	{"4.3 128-bit data, 256-bit KEK", kek256, data16, "64E8C3F9CE0F5BA2 63E9777905818A2A 93C8191E7D6E8AE7"},
	{"4.4 192-bit data, 192-bit KEK", kek192, data24, "031D33264E15D332 68F24EC260743EDC E1C6C7DDEE725A93 6BA814915C6762D2"},
	{"4.5 192-bit data, 256-bit KEK", kek256, data24, "A8F9BC1612C68B3F F6E6F4FBE30E71E4 769C8B80A32CB895 8CD5D17D6B254DA1"},
	{"4.6 256-bit data, 256-bit KEK", kek256, data32, "28C9F404C4B810F4 CBCCB35CFB87F826 3F5786E2D80ED326 CBC7F0E71A99F43B FB988B9B7A02DD21"},
}

func TestAESKeyWrapRFC3394(t *testing.T) {
	for _, v := range rfc3394Vectors {
		t.Run(v.name, func(t *testing.T) {
			kek := aesBlock(t, unhex(t, v.kek))
			got, err := aesKeyWrap(kek, unhex(t, v.data))
			if err != nil {
				t.Fatal(err)
			}
			if want := unhex(t, v.wrapped); !bytes.Equal(got, want) {
				t.Fatalf("wrap = %x, want %x", got, want)
			}
			back, err := aesKeyUnwrap(kek, got)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(back, unhex(t, v.data)) {
				t.Fatalf("unwrap = %x", back)
			}
		})
	}
}

// RFC 5649 §6.
func TestAESKeyWrapPadRFC5649(t *testing.T) {
	kek := aesBlock(t, unhex(t, "5840df6e29b02af1 ab493b705bf16ea1 ae8338f4dcc176a8"))
	for _, v := range []struct{ name, key, wrapped string }{
		{"20 octets", "c37b7e6492584340 bed1220780894115 5068f738", "138bdeaa9b8fa7fc 61f97742e72248ee 5ae6ae5360d1ae6a 5f54f373fa543b6a"},
		{"7 octets", "466f7250617369", "afbeb0f07dfbf541 9200f2ccb50bb24f"},
	} {
		t.Run(v.name, func(t *testing.T) {
			got, err := aesKeyWrapPad(kek, unhex(t, v.key))
			if err != nil {
				t.Fatal(err)
			}
			if want := unhex(t, v.wrapped); !bytes.Equal(got, want) {
				t.Fatalf("wrap = %x, want %x", got, want)
			}
			back, err := aesKeyUnwrapPad(kek, got)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(back, unhex(t, v.key)) {
				t.Fatalf("unwrap = %x", back)
			}
		})
	}
}

// Every length round-trips, and the padded form of an 8-multiple equals
// the unpadded plaintext's length plus the 8-byte integrity block.
func TestAESKeyWrapPadRoundTripLengths(t *testing.T) {
	kek := aesBlock(t, unhex(t, kek256))
	for n := 1; n <= 72; n++ {
		p := make([]byte, n)
		rand.Read(p)
		w, err := aesKeyWrapPad(kek, p)
		if err != nil {
			t.Fatal(n, err)
		}
		if want := (n+7)&^7 + 8; len(w) != want {
			t.Fatalf("%d bytes wrapped into %d, want %d", n, len(w), want)
		}
		back, err := aesKeyUnwrapPad(kek, w)
		if err != nil || !bytes.Equal(back, p) {
			t.Fatalf("%d bytes: round trip %x, %v", n, back, err)
		}
	}
}

func TestAESKeyWrapRejectsLengths(t *testing.T) {
	kek := aesBlock(t, unhex(t, kek128))
	for _, n := range []int{0, 8, 15, 17, 23} {
		if _, err := aesKeyWrap(kek, make([]byte, n)); !errors.Is(err, errWrapLength) {
			t.Errorf("wrap of %d bytes: %v", n, err)
		}
	}
	for _, n := range []int{0, 8, 16, 23, 25} {
		if _, err := aesKeyUnwrap(kek, make([]byte, n)); !errors.Is(err, errWrapLength) {
			t.Errorf("unwrap of %d bytes: %v", n, err)
		}
	}
	if _, err := aesKeyWrapPad(kek, nil); !errors.Is(err, errWrapLength) {
		t.Errorf("padded wrap of nothing: %v", err)
	}
	for _, n := range []int{0, 8, 15, 17} {
		if _, err := aesKeyUnwrapPad(kek, make([]byte, n)); !errors.Is(err, errWrapLength) {
			t.Errorf("padded unwrap of %d bytes: %v", n, err)
		}
	}
}

// Any flipped bit, a wrong KEK, or a truncated or mixed-mode wrapping
// fails the integrity check with the one error.
func TestAESKeyUnwrapIntegrity(t *testing.T) {
	kek := aesBlock(t, unhex(t, kek128))
	other := aesBlock(t, unhex(t, kek256))
	w, err := aesKeyWrap(kek, unhex(t, data32))
	if err != nil {
		t.Fatal(err)
	}
	for i := range len(w) * 8 {
		bad := bytes.Clone(w)
		bad[i/8] ^= 1 << (i % 8)
		if p, err := aesKeyUnwrap(kek, bad); !errors.Is(err, errUnwrap) || p != nil {
			t.Fatalf("bit %d flipped: %x, %v", i, p, err)
		}
	}
	if _, err := aesKeyUnwrap(other, w); !errors.Is(err, errUnwrap) {
		t.Fatalf("wrong KEK: %v", err)
	}
	if _, err := aesKeyUnwrap(kek, w[:len(w)-8]); !errors.Is(err, errUnwrap) {
		t.Fatalf("truncated: %v", err)
	}
	// A KW wrapping is not a KWP wrapping, nor the reverse.
	if _, err := aesKeyUnwrapPad(kek, w); !errors.Is(err, errUnwrap) {
		t.Fatalf("KW unwrapped as KWP: %v", err)
	}
	wp, err := aesKeyWrapPad(kek, unhex(t, data32))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := aesKeyUnwrap(kek, wp); !errors.Is(err, errUnwrap) {
		t.Fatalf("KWP unwrapped as KW: %v", err)
	}
	for i := range len(wp) * 8 {
		bad := bytes.Clone(wp)
		bad[i/8] ^= 1 << (i % 8)
		if p, err := aesKeyUnwrapPad(kek, bad); !errors.Is(err, errUnwrap) || p != nil {
			t.Fatalf("KWP bit %d flipped: %x, %v", i, p, err)
		}
	}
	// Single-block KWP (ECB path).
	w7, _ := aesKeyWrapPad(kek, []byte("7 bytes"))
	w7[3] ^= 0x80
	if _, err := aesKeyUnwrapPad(kek, w7); !errors.Is(err, errUnwrap) {
		t.Fatalf("single-block KWP tampered: %v", err)
	}
}

// The length indicator and the padding are both checked: a wrapping that
// claims a length outside its last block, or has non-zero padding, fails.
func TestAESKeyUnwrapPadChecksLengthAndPadding(t *testing.T) {
	kek := aesBlock(t, unhex(t, kek128))
	forge := func(mli uint32, padded []byte) []byte {
		var aiv [8]byte
		copy(aiv[:4], kwpPrefix[:])
		aiv[4], aiv[5], aiv[6], aiv[7] = byte(mli>>24), byte(mli>>16), byte(mli>>8), byte(mli)
		return kwWrap(kek, aiv, padded)
	}
	// 13 bytes of data in 16: MLI 13 and zero padding verify.
	good := append([]byte("thirteen byte"), 0, 0, 0)
	if p, err := aesKeyUnwrapPad(kek, forge(13, good)); err != nil || string(p) != "thirteen byte" {
		t.Fatalf("forged good wrapping: %q, %v", p, err)
	}
	for _, c := range []struct {
		name string
		mli  uint32
		p    []byte
	}{
		{"MLI too small", 8, good},
		{"MLI too large", 17, good},
		{"MLI zero", 0, good},
		{"MLI huge", 0xFFFFFFFF, good},
		{"non-zero padding", 13, append([]byte("thirteen byte"), 0, 1, 0)},
	} {
		if _, err := aesKeyUnwrapPad(kek, forge(c.mli, c.p)); !errors.Is(err, errUnwrap) {
			t.Errorf("%s: %v", c.name, err)
		}
	}
}

func BenchmarkAESKeyWrap32(b *testing.B) {
	kek := aesBlock(b, unhex(b, kek256))
	p := unhex(b, data32)
	for b.Loop() {
		if _, err := aesKeyWrap(kek, p); err != nil {
			b.Fatal(err)
		}
	}
}
