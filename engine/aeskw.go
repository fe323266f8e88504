package engine

import (
	"crypto/cipher"
	"crypto/subtle"
	"encoding/binary"
	"errors"
)

// AES Key Wrap (RFC 3394, NIST SP 800-38F KW) and AES Key Wrap with
// Padding (RFC 5649, SP 800-38F KWP). Go's standard library has neither.
// Both take a prepared AES block cipher (the key encryption key).

// kwIV is the RFC 3394 §2.2.3.1 default initial value.
var kwIV = [8]byte{0xA6, 0xA6, 0xA6, 0xA6, 0xA6, 0xA6, 0xA6, 0xA6}

// kwpPrefix is the constant half of the RFC 5649 §3 alternative initial
// value; the other half is the length of the plaintext.
var kwpPrefix = [4]byte{0xA6, 0x59, 0x59, 0xA6}

// Limits of the key wrap functions.
const (
	kwMinPlain = 16      // RFC 3394: at least two 64-bit blocks
	kwMaxPlain = 1 << 24 // far above MaxMaterialSize; bounds the work on hostile input
)

// errUnwrap is the single answer of an unwrap that fails its integrity
// check, whatever the cause, so the failure says nothing about the
// plaintext.
var errUnwrap = errors.New("the wrapped key does not verify under this key encryption key")

// errWrapLength is returned for input of a length the mode cannot take.
var errWrapLength = errors.New("wrong length for this key wrap mode")

// aesKeyWrap wraps plaintext (a multiple of 8 bytes, at least 16) with
// RFC 3394. The result is 8 bytes longer.
func aesKeyWrap(kek cipher.Block, plaintext []byte) ([]byte, error) {
	if len(plaintext) < kwMinPlain || len(plaintext)%8 != 0 || len(plaintext) > kwMaxPlain {
		return nil, errWrapLength
	}
	return kwWrap(kek, kwIV, plaintext), nil
}

// aesKeyUnwrap reverses aesKeyWrap and checks the integrity value.
func aesKeyUnwrap(kek cipher.Block, wrapped []byte) ([]byte, error) {
	if len(wrapped) < kwMinPlain+8 || len(wrapped)%8 != 0 || len(wrapped) > kwMaxPlain+8 {
		return nil, errWrapLength
	}
	a, p := kwUnwrap(kek, wrapped)
	if subtle.ConstantTimeCompare(a[:], kwIV[:]) != 1 {
		clear(p)
		return nil, errUnwrap
	}
	return p, nil
}

// aesKeyWrapPad wraps plaintext of any length from 1 byte with RFC 5649.
// The result is the plaintext padded to a multiple of 8, plus 8 bytes.
func aesKeyWrapPad(kek cipher.Block, plaintext []byte) ([]byte, error) {
	if len(plaintext) == 0 || len(plaintext) > kwMaxPlain {
		return nil, errWrapLength
	}
	var aiv [8]byte
	copy(aiv[:4], kwpPrefix[:])
	binary.BigEndian.PutUint32(aiv[4:], uint32(len(plaintext)))
	padded := make([]byte, (len(plaintext)+7)&^7)
	copy(padded, plaintext)
	defer clear(padded)
	if len(padded) == 8 {
		// §4.1: a single block is encrypted with AES in ECB mode.
		out := make([]byte, 16)
		copy(out, aiv[:])
		copy(out[8:], padded)
		kek.Encrypt(out, out)
		return out, nil
	}
	return kwWrap(kek, aiv, padded), nil
}

// aesKeyUnwrapPad reverses aesKeyWrapPad and checks the alternative
// initial value, the length indicator and the padding.
func aesKeyUnwrapPad(kek cipher.Block, wrapped []byte) ([]byte, error) {
	if len(wrapped) < 16 || len(wrapped)%8 != 0 || len(wrapped) > kwMaxPlain+16 {
		return nil, errWrapLength
	}
	var a [8]byte
	var p []byte
	if len(wrapped) == 16 {
		b := make([]byte, 16)
		kek.Decrypt(b, wrapped)
		copy(a[:], b[:8])
		p = b[8:]
	} else {
		a, p = kwUnwrap(kek, wrapped)
	}
	// §3: the prefix, 8(n-1) < MLI <= 8n, and zero padding. Every check
	// runs before the single verdict; the padding bytes are compared in
	// constant time.
	mli := int64(binary.BigEndian.Uint32(a[4:]))
	n := len(p)
	good := subtle.ConstantTimeCompare(a[:4], kwpPrefix[:])
	m := n
	if mli >= int64(n-7) && mli <= int64(n) {
		m = int(mli)
	} else {
		good = 0
	}
	var pad byte
	for _, c := range p[m:] {
		pad |= c
	}
	good &= subtle.ConstantTimeByteEq(pad, 0)
	if good != 1 {
		clear(p)
		return nil, errUnwrap
	}
	return p[:m], nil
}

// kwWrap is the wrapping process W of RFC 3394 §2.2.1 (index form) with
// initial value iv; plaintext has at least two 64-bit blocks.
func kwWrap(kek cipher.Block, iv [8]byte, plaintext []byte) []byte {
	n := len(plaintext) / 8
	out := make([]byte, 8+len(plaintext))
	copy(out[8:], plaintext)
	var b [16]byte
	copy(b[:8], iv[:])
	for j := range 6 {
		for i := 1; i <= n; i++ {
			r := out[8*i : 8*i+8]
			copy(b[8:], r)
			kek.Encrypt(b[:], b[:])
			t := uint64(n*j + i)
			binary.BigEndian.PutUint64(b[:8], binary.BigEndian.Uint64(b[:8])^t)
			copy(r, b[8:])
		}
	}
	copy(out[:8], b[:8])
	clear(b[:])
	return out
}

// kwUnwrap is the unwrapping process W⁻¹ of RFC 3394 §2.2.2 (index
// form): it returns the recovered initial value and the plaintext, which
// the caller checks.
func kwUnwrap(kek cipher.Block, wrapped []byte) ([8]byte, []byte) {
	n := len(wrapped)/8 - 1
	p := make([]byte, 8*n)
	copy(p, wrapped[8:])
	var b [16]byte
	copy(b[:8], wrapped[:8])
	for j := 5; j >= 0; j-- {
		for i := n; i >= 1; i-- {
			r := p[8*(i-1) : 8*i]
			t := uint64(n*j + i)
			binary.BigEndian.PutUint64(b[:8], binary.BigEndian.Uint64(b[:8])^t)
			copy(b[8:], r)
			kek.Decrypt(b[:], b[:])
			copy(r, b[8:])
		}
	}
	var a [8]byte
	copy(a[:], b[:8])
	clear(b[:])
	return a, p
}
