package engine

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	mrand "math/rand/v2"
	"testing"
)

// The streamed sealer must equal crypto/cipher's GCM over the whole
// message, for every IV length, tag length and split.
func TestGCMSealerMatchesCryptoCipher(t *testing.T) {
	r := mrand.New(mrand.NewPCG(1, 2))
	for trial := 0; trial < 300; trial++ {
		key := make([]byte, []int{16, 24, 32}[trial%3])
		rand.Read(key)
		block, err := aes.NewCipher(key)
		if err != nil {
			t.Fatal(err)
		}
		ivLen := []int{12, 8, 16, 1, 60, 13}[trial%6]
		tagLen := []int{16, 12, 13, 14, 15}[trial%5]
		iv := make([]byte, ivLen)
		rand.Read(iv)
		aad := make([]byte, r.IntN(70))
		rand.Read(aad)
		pt := make([]byte, r.IntN(300))
		rand.Read(pt)

		var ref cipher.AEAD
		switch {
		case ivLen == 12:
			ref, err = cipher.NewGCMWithTagSize(block, tagLen)
		case tagLen == 16:
			ref, err = cipher.NewGCMWithNonceSize(block, ivLen)
		default:
			continue // crypto/cipher has no constructor for both
		}
		if err != nil {
			t.Fatal(err)
		}
		want := ref.Seal(nil, iv, pt, aad)

		g := newGCMSealer(block, iv, aad, tagLen)
		var got []byte
		for rest := pt; ; {
			n := 0
			if len(rest) > 0 {
				n = r.IntN(len(rest) + 1)
			}
			got = append(got, g.seal(rest[:n])...)
			rest = rest[n:]
			if len(rest) == 0 {
				break
			}
		}
		got = append(got, g.tag()...)
		if !bytes.Equal(got, want) {
			t.Fatalf("trial %d (iv %d, tag %d, aad %d, pt %d): streamed GCM differs from crypto/cipher", trial, ivLen, tagLen, len(aad), len(pt))
		}
	}
}

func TestInc32Wraps(t *testing.T) {
	b := [16]byte{15: 0xff, 14: 0xff, 13: 0xff, 12: 0xff, 11: 7}
	inc32(&b)
	if b[11] != 7 || b[12] != 0 || b[15] != 0 {
		t.Fatalf("inc32 must wrap within the last 32 bits: %x", b)
	}
}
