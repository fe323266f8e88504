package engine

import (
	"crypto/cipher"
	"crypto/subtle"
	"encoding/binary"
)

// gcmSealer is AES-GCM encryption in parts (NIST SP 800-38D §7.1), for
// streamed Encrypt: crypto/cipher's AEAD seals only whole messages. The
// output equals cipher.AEAD.Seal over the concatenated parts (tested
// against it). GHASH is the bitwise constant-time multiplication: it is
// slower than crypto/cipher's, which streamed requests (at most one
// message of data per part) can afford.
type gcmSealer struct {
	block   cipher.Block
	h       [2]uint64 // hash subkey
	j0      [16]byte  // pre-counter block
	ctr     [16]byte  // next counter block
	ks      [16]byte  // key stream of the current block
	ksUsed  int       // bytes of ks used; 16: none left
	y       [2]uint64 // GHASH accumulator
	part    [16]byte  // ciphertext not yet hashed
	partLen int
	aadLen  uint64
	ctLen   uint64
	tagSize int
}

// maxGCMStream bounds a streamed GCM message: 2^32 - 2 blocks of 16 bytes
// (SP 800-38D §5.2.1.1), far above the stream limit.
const maxGCMStream = (1<<32 - 2) * 16

func newGCMSealer(block cipher.Block, iv, aad []byte, tagSize int) *gcmSealer {
	g := &gcmSealer{block: block, ksUsed: 16, tagSize: tagSize}
	var h [16]byte
	block.Encrypt(h[:], h[:])
	g.h = [2]uint64{binary.BigEndian.Uint64(h[:8]), binary.BigEndian.Uint64(h[8:])}
	if len(iv) == 12 {
		copy(g.j0[:], iv)
		g.j0[15] = 1
	} else {
		var y [2]uint64
		y = g.ghashBlocks(y, iv)
		var lens [16]byte
		binary.BigEndian.PutUint64(lens[8:], uint64(len(iv))*8)
		y = g.ghashBlocks(y, lens[:])
		binary.BigEndian.PutUint64(g.j0[:8], y[0])
		binary.BigEndian.PutUint64(g.j0[8:], y[1])
	}
	g.ctr = g.j0
	inc32(&g.ctr)
	g.y = g.ghashBlocks(g.y, aad)
	g.aadLen = uint64(len(aad))
	return g
}

// seal encrypts the next part.
func (g *gcmSealer) seal(pt []byte) []byte {
	out := make([]byte, len(pt))
	for i := range pt {
		if g.ksUsed == 16 {
			g.block.Encrypt(g.ks[:], g.ctr[:])
			inc32(&g.ctr)
			g.ksUsed = 0
		}
		out[i] = pt[i] ^ g.ks[g.ksUsed]
		g.ksUsed++
	}
	g.ctLen += uint64(len(pt))
	g.hashCiphertext(out)
	return out
}

// tag finishes the message and returns its authentication tag.
func (g *gcmSealer) tag() []byte {
	if g.partLen > 0 {
		clear(g.part[g.partLen:])
		g.y = g.ghashBlocks(g.y, g.part[:])
		g.partLen = 0
	}
	var lens [16]byte
	binary.BigEndian.PutUint64(lens[:8], g.aadLen*8)
	binary.BigEndian.PutUint64(lens[8:], g.ctLen*8)
	g.y = g.ghashBlocks(g.y, lens[:])
	var s, ek [16]byte
	binary.BigEndian.PutUint64(s[:8], g.y[0])
	binary.BigEndian.PutUint64(s[8:], g.y[1])
	g.block.Encrypt(ek[:], g.j0[:])
	subtle.XORBytes(s[:], s[:], ek[:])
	clear(g.ks[:])
	return s[:g.tagSize]
}

func (g *gcmSealer) hashCiphertext(ct []byte) {
	if g.partLen > 0 {
		n := copy(g.part[g.partLen:], ct)
		g.partLen += n
		ct = ct[n:]
		if g.partLen < 16 {
			return
		}
		g.y = g.ghashBlocks(g.y, g.part[:])
		g.partLen = 0
	}
	full := len(ct) &^ 15
	g.y = g.ghashBlocks(g.y, ct[:full])
	g.partLen = copy(g.part[:], ct[full:])
}

// ghashBlocks absorbs b, zero-padded to whole blocks, into y.
func (g *gcmSealer) ghashBlocks(y [2]uint64, b []byte) [2]uint64 {
	for len(b) > 0 {
		var blk [16]byte
		n := copy(blk[:], b)
		b = b[n:]
		y[0] ^= binary.BigEndian.Uint64(blk[:8])
		y[1] ^= binary.BigEndian.Uint64(blk[8:])
		y = gfMul(y, g.h)
	}
	return y
}

// gfMul multiplies in GF(2^128) with GCM's bit order (SP 800-38D §6.3),
// in constant time: every step runs, masks select.
func gfMul(x, h [2]uint64) [2]uint64 {
	var z [2]uint64
	v := h
	for i := 0; i < 128; i++ {
		word := x[i/64]
		bit := (word >> (63 - uint(i%64))) & 1
		mask := -bit
		z[0] ^= v[0] & mask
		z[1] ^= v[1] & mask
		lsb := v[1] & 1
		v[1] = v[1]>>1 | v[0]<<63
		v[0] >>= 1
		v[0] ^= 0xe100000000000000 & -lsb
	}
	return z
}

// inc32 increments the last 32 bits of a counter block modulo 2^32.
func inc32(b *[16]byte) {
	binary.BigEndian.PutUint32(b[12:], binary.BigEndian.Uint32(b[12:])+1)
}
