//go:build !linux

package engine

import "errors"

// allocLockedPage: key pages are locked on Linux only; elsewhere plain
// memory is returned with the reason, which the caller logs once.
func allocLockedPage(size int) ([]byte, bool, error) {
	return make([]byte, size), false, errors.New("key memory is locked (mlock) on Linux only; this platform keeps it unlocked")
}
