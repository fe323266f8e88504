// Package shamir splits a secret into n shares of which any k recover it
// (Shamir's secret sharing over GF(2^8) with the AES polynomial
// x^8+x^4+x^3+x+1, 0x11B), and combines shares back.
//
// Each byte of the secret is the constant term of its own random
// polynomial of degree k-1; share i holds the values of every polynomial
// at x=i (1 ≤ i ≤ n). Fewer than k shares give no information about the
// secret.
//
// The field arithmetic is constant-time: multiplication is a fixed loop of
// shifts and masks and inversion is exponentiation (a^254), so no table is
// indexed by a secret-dependent value and no branch depends on one.
//
// Share format (version 1), binary then hex-encoded behind "minikms-share-":
//
//	0x01 | k (1) | x (1) | set id (4) | y[len(secret)] | checksum (4)
//
// The set id is random per split, so shares of two different splits are
// not combined by mistake; the checksum (the first 4 bytes of SHA-256 over
// everything before it) catches a mistyped share and names it.
package shamir

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strings"
)

// Version is the share format version.
const Version = 0x01

const (
	headerSize   = 1 + 1 + 1 + 4
	checksumSize = 4
	// MaxSecretSize bounds the secret (a root key is 32 bytes).
	MaxSecretSize = 1024
	// TextPrefix starts the text form of a share.
	TextPrefix = "minikms-share-"
)

// Errors, wrapped with details by the functions below.
var (
	ErrInvalidParams = errors.New("shamir: invalid parameters")
	ErrMalformed     = errors.New("shamir: malformed share")
	ErrChecksum      = errors.New("shamir: share checksum mismatch (mistyped or damaged)")
	ErrMismatch      = errors.New("shamir: shares do not belong together")
	ErrDuplicate     = errors.New("shamir: duplicate share")
	ErrTooFew        = errors.New("shamir: not enough shares")
)

// Share is one parsed share.
type Share struct {
	Threshold byte
	X         byte
	SetID     [4]byte
	Y         []byte
}

// gfMul multiplies in GF(2^8) mod 0x11B in constant time.
func gfMul(a, b byte) byte {
	var p byte
	for range 8 {
		p ^= a & -(b & 1) // add a when the low bit of b is set, without branching
		hi := -(a >> 7)   // 0xFF when a overflows
		a = (a << 1) ^ (0x1B & hi)
		b >>= 1
	}
	return p
}

// gfInv returns a^-1 = a^254 (and 0 for 0), in constant time.
func gfInv(a byte) byte {
	// 254 = 0b11111110: square-and-multiply with a fixed sequence.
	r := byte(1)
	x := a
	for range 7 {
		x = gfMul(x, x) // a^2, a^4, ..., a^128
		r = gfMul(r, x)
	}
	return r
}

// Split splits secret into n shares, any k of which recover it.
func Split(secret []byte, n, k int) ([]Share, error) {
	return SplitWithRand(rand.Reader, secret, n, k)
}

// SplitWithRand is Split drawing randomness from r: first the 4-byte set
// id, then, for each byte of the secret in order, the k-1 coefficients of
// its polynomial from degree 1 up. Tests use it with a fixed stream.
func SplitWithRand(r io.Reader, secret []byte, n, k int) ([]Share, error) {
	if k < 2 || k > n || n > 255 {
		return nil, fmt.Errorf("%w: need 2 ≤ threshold ≤ shares ≤ 255, got threshold %d of %d shares", ErrInvalidParams, k, n)
	}
	if len(secret) == 0 || len(secret) > MaxSecretSize {
		return nil, fmt.Errorf("%w: secret must be 1 to %d bytes, got %d", ErrInvalidParams, MaxSecretSize, len(secret))
	}
	var id [4]byte
	if _, err := io.ReadFull(r, id[:]); err != nil {
		return nil, fmt.Errorf("shamir: random: %w", err)
	}
	shares := make([]Share, n)
	for i := range shares {
		shares[i] = Share{Threshold: byte(k), X: byte(i + 1), SetID: id, Y: make([]byte, len(secret))}
	}
	coef := make([]byte, k) // coef[0] = secret byte, coef[1..] random
	defer clear(coef)
	for b := range secret {
		coef[0] = secret[b]
		if _, err := io.ReadFull(r, coef[1:]); err != nil {
			return nil, fmt.Errorf("shamir: random: %w", err)
		}
		for i := range shares {
			x := shares[i].X
			// Horner: ((c[k-1] x + c[k-2]) x + ...) x + c[0]
			var y byte
			for d := k - 1; d >= 0; d-- {
				y = gfMul(y, x) ^ coef[d]
			}
			shares[i].Y[b] = y
		}
	}
	return shares, nil
}

// Combine recovers the secret from at least Threshold shares of one split.
// Extra shares beyond the threshold are checked for consistency: a share
// that disagrees with the others is reported.
func Combine(shares []Share) ([]byte, error) {
	if len(shares) == 0 {
		return nil, fmt.Errorf("%w: none given", ErrTooFew)
	}
	first := shares[0]
	k := int(first.Threshold)
	for i, s := range shares {
		if s.Threshold < 2 || s.X == 0 || len(s.Y) == 0 {
			return nil, fmt.Errorf("%w: share %d has an invalid threshold or x", ErrMalformed, i+1)
		}
		if s.Threshold != first.Threshold || s.SetID != first.SetID || len(s.Y) != len(first.Y) {
			return nil, fmt.Errorf("%w: share %d (x=%d) is from another split than share 1 (x=%d)", ErrMismatch, i+1, s.X, first.X)
		}
		for j := range i {
			if shares[j].X == s.X {
				return nil, fmt.Errorf("%w: shares %d and %d are both share x=%d", ErrDuplicate, j+1, i+1, s.X)
			}
		}
	}
	if len(shares) < k {
		return nil, fmt.Errorf("%w: this split needs %d shares, got %d", ErrTooFew, k, len(shares))
	}
	secret := interpolateAll(shares[:k], 0)
	// Any extra share must lie on the same polynomials.
	for i := k; i < len(shares); i++ {
		y := interpolateAll(shares[:k], shares[i].X)
		ok := subtle.ConstantTimeCompare(y, shares[i].Y) == 1
		clear(y)
		if !ok {
			clear(secret)
			return nil, fmt.Errorf("%w: share %d (x=%d) is inconsistent with the first %d shares", ErrMismatch, i+1, shares[i].X, k)
		}
	}
	return secret, nil
}

// interpolateAll evaluates at x the polynomials through the points of
// shares.
func interpolateAll(shares []Share, x byte) []byte {
	out := make([]byte, len(shares[0].Y))
	for i, si := range shares {
		// Lagrange basis l_i(x) = prod_{j≠i} (x - x_j) / (x_i - x_j);
		// subtraction is XOR in GF(2^8). The x coordinates are public.
		num, den := byte(1), byte(1)
		for j, sj := range shares {
			if i == j {
				continue
			}
			num = gfMul(num, x^sj.X)
			den = gfMul(den, si.X^sj.X)
		}
		l := gfMul(num, gfInv(den))
		for b := range out {
			out[b] ^= gfMul(l, si.Y[b])
		}
	}
	return out
}

// Bytes encodes the share in the binary format.
func (s Share) Bytes() []byte {
	b := make([]byte, 0, headerSize+len(s.Y)+checksumSize)
	b = append(b, Version, s.Threshold, s.X)
	b = append(b, s.SetID[:]...)
	b = append(b, s.Y...)
	sum := sha256.Sum256(b)
	return append(b, sum[:checksumSize]...)
}

// String is the text form: TextPrefix + hex(Bytes()).
func (s Share) String() string { return TextPrefix + hex.EncodeToString(s.Bytes()) }

// Parse decodes a share from its binary form.
func Parse(b []byte) (Share, error) {
	if len(b) < headerSize+1+checksumSize {
		return Share{}, fmt.Errorf("%w: %d bytes is too short", ErrMalformed, len(b))
	}
	if b[0] != Version {
		return Share{}, fmt.Errorf("%w: unknown version 0x%02x", ErrMalformed, b[0])
	}
	body := b[:len(b)-checksumSize]
	sum := sha256.Sum256(body)
	if !bytes.Equal(sum[:checksumSize], b[len(body):]) {
		return Share{}, ErrChecksum
	}
	s := Share{Threshold: b[1], X: b[2], Y: bytes.Clone(body[headerSize:])}
	copy(s.SetID[:], b[3:7])
	if s.Threshold < 2 || s.X == 0 {
		return Share{}, fmt.Errorf("%w: threshold %d or x %d out of range", ErrMalformed, s.Threshold, s.X)
	}
	if len(s.Y) > MaxSecretSize {
		return Share{}, fmt.Errorf("%w: secret part longer than %d bytes", ErrMalformed, MaxSecretSize)
	}
	return s, nil
}

// ParseString decodes the text form. Whitespace, '-' or ':' groupings
// inside the hex are ignored, and the prefix is optional, so a share typed
// back in groups still parses.
func ParseString(text string) (Share, error) {
	t := strings.TrimSpace(text)
	t = strings.TrimPrefix(t, TextPrefix)
	t = strings.Map(func(r rune) rune {
		switch r {
		case ' ', '\t', '\n', '\r', '-', ':':
			return -1
		}
		return r
	}, t)
	b, err := hex.DecodeString(t)
	if err != nil {
		return Share{}, fmt.Errorf("%w: not hexadecimal", ErrMalformed)
	}
	return Parse(b)
}
