//go:build !linux

package engine

import "errors"

// allocLockedPage: memory locking is implemented on Linux only.
func allocLockedPage(size int) ([]byte, bool, error) {
	return make([]byte, size), false, errors.New("memory locking is not implemented on this platform")
}
