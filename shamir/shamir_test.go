package shamir

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"testing"
)

// counterStream is the "random" stream of testdata/kat.py: SHA-256 in
// counter mode over a seed.
type counterStream struct {
	seed []byte
	i    uint32
	buf  []byte
}

func (c *counterStream) Read(p []byte) (int, error) {
	for n := range p {
		if len(c.buf) == 0 {
			h := sha256.Sum256(binary.BigEndian.AppendUint32(bytes.Clone(c.seed), c.i))
			c.i++
			c.buf = h[:]
		}
		p[n] = c.buf[0]
		c.buf = c.buf[1:]
	}
	return len(p), nil
}

type kat struct {
	Name   string   `json:"name"`
	Seed   string   `json:"seed"`
	Secret string   `json:"secret"`
	N      int      `json:"n"`
	K      int      `json:"k"`
	Shares []string `json:"shares"`
}

func loadKAT(t *testing.T) []kat {
	t.Helper()
	raw, err := os.ReadFile("testdata/kat.json")
	if err != nil {
		t.Fatal(err)
	}
	var v []kat
	if err := json.Unmarshal(raw, &v); err != nil {
		t.Fatal(err)
	}
	if len(v) == 0 {
		t.Fatal("no vectors")
	}
	return v
}

func mustHex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestKnownAnswers checks Split against shares computed independently by
// testdata/kat.py, and Combine on them.
func TestKnownAnswers(t *testing.T) {
	for _, v := range loadKAT(t) {
		t.Run(v.Name, func(t *testing.T) {
			secret := mustHex(t, v.Secret)
			shares, err := SplitWithRand(&counterStream{seed: mustHex(t, v.Seed)}, secret, v.N, v.K)
			if err != nil {
				t.Fatal(err)
			}
			if len(shares) != len(v.Shares) {
				t.Fatalf("%d shares, want %d", len(shares), len(v.Shares))
			}
			parsed := make([]Share, len(v.Shares))
			for i, s := range shares {
				if got := hex.EncodeToString(s.Bytes()); got != v.Shares[i] {
					t.Fatalf("share %d = %s, want %s", i+1, got, v.Shares[i])
				}
				if parsed[i], err = ParseString(v.Shares[i]); err != nil {
					t.Fatal(err)
				}
			}
			got, err := Combine(parsed[len(parsed)-v.K:])
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, secret) {
				t.Fatalf("combined %x, want %x", got, secret)
			}
		})
	}
}

func TestFieldArithmetic(t *testing.T) {
	// FIPS-197 §4.2: {57} • {83} = {c1}, {57} • {13} = {fe}.
	if gfMul(0x57, 0x83) != 0xc1 || gfMul(0x57, 0x13) != 0xfe {
		t.Fatal("gfMul disagrees with FIPS-197")
	}
	if gfInv(0) != 0 {
		t.Fatal("inverse of 0")
	}
	for a := 1; a < 256; a++ {
		if gfMul(byte(a), gfInv(byte(a))) != 1 {
			t.Fatalf("%d * inv(%d) != 1", a, a)
		}
	}
}

// subsets calls fn with every k-subset of 0..n-1.
func subsets(n, k int, fn func([]int)) {
	idx := make([]int, k)
	var rec func(start, depth int)
	rec = func(start, depth int) {
		if depth == k {
			fn(idx)
			return
		}
		for i := start; i < n; i++ {
			idx[depth] = i
			rec(i+1, depth+1)
		}
	}
	rec(0, 0)
}

func TestEveryKSubsetRecovers(t *testing.T) {
	secret := bytes.Repeat([]byte{0xa5, 0x00, 0x5a, 0xff}, 8)
	for _, p := range []struct{ n, k int }{{5, 3}, {5, 5}, {6, 2}, {7, 4}} {
		shares, err := Split(secret, p.n, p.k)
		if err != nil {
			t.Fatal(err)
		}
		count := 0
		subsets(p.n, p.k, func(idx []int) {
			sub := make([]Share, len(idx))
			// reversed order too: order must not matter
			for i, j := range idx {
				sub[len(idx)-1-i] = shares[j]
			}
			got, err := Combine(sub)
			if err != nil || !bytes.Equal(got, secret) {
				t.Fatalf("%d-of-%d subset %v: %x, %v", p.k, p.n, idx, got, err)
			}
			count++
		})
		if count == 0 {
			t.Fatal("no subsets tried")
		}
		// k-1 shares: refused.
		subsets(p.n, p.k-1, func(idx []int) {
			sub := make([]Share, len(idx))
			for i, j := range idx {
				sub[i] = shares[j]
			}
			if _, err := Combine(sub); !errors.Is(err, ErrTooFew) {
				t.Fatalf("%d shares of a %d-of-%d split: %v", len(sub), p.k, p.n, err)
			}
		})
		// All n shares: consistent, recovers.
		if got, err := Combine(shares); err != nil || !bytes.Equal(got, secret) {
			t.Fatalf("all shares: %v", err)
		}
	}
}

// TestFewerSharesRevealNothing: with k-1 shares fixed, every candidate
// value of a secret byte is consistent with some k-th share, so k-1 shares
// do not pin the secret down (perfect secrecy, checked exhaustively for a
// 1-byte secret, 2-of-3).
func TestFewerSharesRevealNothing(t *testing.T) {
	shares, err := Split([]byte{0x42}, 3, 2)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[byte]bool{}
	for y := range 256 {
		forged := shares[1]
		forged.Y = []byte{byte(y)}
		got, err := Combine([]Share{shares[0], forged})
		if err != nil {
			t.Fatal(err)
		}
		seen[got[0]] = true
	}
	if len(seen) != 256 {
		t.Fatalf("one share leaves %d candidate secrets, want 256", len(seen))
	}
}

func TestBadInput(t *testing.T) {
	secret := make([]byte, 32)
	for _, p := range []struct{ n, k int }{{5, 1}, {3, 4}, {256, 3}, {0, 0}, {2, 0}} {
		if _, err := Split(secret, p.n, p.k); !errors.Is(err, ErrInvalidParams) {
			t.Fatalf("n=%d k=%d: %v", p.n, p.k, err)
		}
	}
	if _, err := Split(nil, 3, 2); !errors.Is(err, ErrInvalidParams) {
		t.Fatal("empty secret accepted")
	}
	shares, err := Split(secret, 5, 3)
	if err != nil {
		t.Fatal(err)
	}
	// Duplicate share.
	if _, err := Combine([]Share{shares[0], shares[1], shares[0]}); !errors.Is(err, ErrDuplicate) {
		t.Fatalf("duplicate: %v", err)
	}
	// A mistyped share: one hex digit changed is caught by the checksum.
	text := []byte(shares[2].String())
	if text[len(TextPrefix)+20] == '0' {
		text[len(TextPrefix)+20] = '1'
	} else {
		text[len(TextPrefix)+20] = '0'
	}
	if _, err := ParseString(string(text)); !errors.Is(err, ErrChecksum) {
		t.Fatalf("mistyped share: %v", err)
	}
	// Grouped and prefixed forms parse.
	s := shares[2].String()
	grouped := s[:20] + " " + s[20:40] + "\n" + s[40:]
	if p, err := ParseString(grouped); err != nil || p.X != 3 {
		t.Fatalf("grouped: %v", err)
	}
	if _, err := ParseString("zz"); !errors.Is(err, ErrMalformed) {
		t.Fatalf("not hex: %v", err)
	}
	if _, err := Parse([]byte{2, 3, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0}); !errors.Is(err, ErrMalformed) {
		t.Fatalf("bad version: %v", err)
	}
	// Shares of another split (same parameters) are refused.
	other, err := Split(secret, 5, 3)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Combine([]Share{shares[0], shares[1], other[2]}); !errors.Is(err, ErrMismatch) {
		t.Fatalf("mixed splits: %v", err)
	}
	// A share corrupted after parsing (valid checksum, wrong y) is caught
	// when more than k shares are given.
	bad := shares[4]
	bad.Y = bytes.Clone(bad.Y)
	bad.Y[0] ^= 1
	if _, err := Combine([]Share{shares[0], shares[1], shares[2], bad}); !errors.Is(err, ErrMismatch) {
		t.Fatalf("inconsistent extra share: %v", err)
	}
	if _, err := Combine(nil); !errors.Is(err, ErrTooFew) {
		t.Fatalf("no shares: %v", err)
	}
	// Round trip through the binary form.
	p, err := Parse(shares[3].Bytes())
	if err != nil || p.X != 4 || p.Threshold != 3 || !bytes.Equal(p.Y, shares[3].Y) {
		t.Fatalf("round trip: %v", err)
	}
}
