//go:build linux

package engine

import "syscall"

// madvDontDump is MADV_DONTDUMP (Linux): keep the pages out of core dumps.
const madvDontDump = 16

// allocLockedPage maps an anonymous page and tries to mlock it. locked is
// false (with the reason in err, the page still usable) when
// RLIMIT_MEMLOCK forbids it.
func allocLockedPage(size int) (page []byte, locked bool, err error) {
	page, err = syscall.Mmap(-1, 0, size, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_PRIVATE|syscall.MAP_ANON)
	if err != nil {
		return nil, false, err
	}
	_ = syscall.Madvise(page, madvDontDump) // best effort
	if err := syscall.Mlock(page); err != nil {
		return page, false, err
	}
	return page, true, nil
}
