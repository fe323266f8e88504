package engine

import (
	"bytes"
	"testing"
)

func TestLockedKeys(t *testing.T) {
	src := bytes.Repeat([]byte{0xab}, 32)
	a := newLockedKey(src)
	if !bytes.Equal(a.b, src) || &a.b[0] == &src[0] {
		t.Fatal("not a copy")
	}
	a.destroy()
	if !bytes.Equal(a.b, make([]byte, 32)) {
		t.Fatal("not zeroized")
	}
	b := newLockedKey(bytes.Repeat([]byte{0xcd}, 32))
	a.destroy() // idempotent: must not touch b, even if b reuses a's slot
	if !bytes.Equal(b.b, bytes.Repeat([]byte{0xcd}, 32)) {
		t.Fatal("a second destroy clobbered another key")
	}
	// secureCopy/releaseKeyBytes (the keyring's use).
	c := secureCopy(src)
	releaseKeyBytes(c)
	if !bytes.Equal(c, make([]byte, 32)) {
		t.Fatal("released key not zeroized")
	}
	heap := bytes.Clone(src)
	releaseKeyBytes(heap)
	if !bytes.Equal(heap, make([]byte, 32)) {
		t.Fatal("heap key not zeroized")
	}
	b.destroy()
	t.Logf("key memory locked: %v", KeyMemoryLocked())
}

func TestSoftKeyringCloseZeroizes(t *testing.T) {
	k, err := NewSoftKeyringWithPrevious(bytes.Repeat([]byte{1}, 32), bytes.Repeat([]byte{2}, 32))
	if err != nil {
		t.Fatal(err)
	}
	cur, prev := k.keys[1], k.previous[0]
	k.Close()
	if !bytes.Equal(cur, make([]byte, 32)) || !bytes.Equal(prev, make([]byte, 32)) {
		t.Fatal("keyring keys not zeroized on Close")
	}
	if _, err := NewSoftKeyringWithPrevious(make([]byte, 32), make([]byte, 5)); err == nil {
		t.Fatal("short previous key accepted")
	}
}
