//go:build !cgo

package pkcs11

import (
	"context"
	"errors"
	"testing"
)

// A build without cgo has no PKCS#11 support and says so: no software
// fallback. (Run with CGO_ENABLED=0 go test ./pkcs11; scripts/test.sh does.)
func TestNoCgo(t *testing.T) {
	if Available() {
		t.Fatal("Available in a build without cgo")
	}
	_, err := Open(context.Background(), Config{Module: "/usr/lib/softhsm/libsofthsm2.so", TokenLabel: "t", PIN: "1"})
	if !errors.Is(err, ErrNoCgo) || err.Error() != "this miniKMS was built without cgo: PKCS#11 (HSM) support is unavailable" {
		t.Fatalf("Open: %v", err)
	}
}
