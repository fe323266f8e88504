//go:build !cgo

package pkcs11

// cgoEnabled tells Open whether PKCS#11 support is compiled in. Without cgo
// every constructor (Open, and so Keyring, KeySource, Init, ImportRoot,
// Status, SealRoot, UnsealRoot, which all need an open HSM) fails with
// ErrNoCgo; nothing falls back to software keys.
const cgoEnabled = false

func openToken(Config, string) (token, error) { return nil, ErrNoCgo }
