package pkcs11

import (
	"errors"
	"fmt"
)

// Errors. Every error this package returns wraps one of these (test with
// errors.Is); token errors also wrap the PKCS#11 return value when there is
// one.
var (
	// ErrNoCgo is returned by every constructor of a build without cgo.
	// There is no software fallback.
	ErrNoCgo = errors.New("this miniKMS was built without cgo: PKCS#11 (HSM) support is unavailable")
	// ErrConfig: the configuration is incomplete or contradictory.
	ErrConfig = errors.New("invalid PKCS#11 configuration")
	// ErrModule: the PKCS#11 library cannot be loaded or initialised.
	ErrModule = errors.New("cannot load the PKCS#11 module")
	// ErrTokenNotFound: no token in the module has the configured label.
	ErrTokenNotFound = errors.New("PKCS#11 token not found")
	// ErrPINIncorrect: the token refused the PIN. A refused PIN is never
	// retried automatically (real HSMs lock the PIN after a few tries).
	ErrPINIncorrect = errors.New("PKCS#11 PIN incorrect")
	// ErrPINLocked: the token locked (or expired) the PIN.
	ErrPINLocked = errors.New("PKCS#11 PIN locked or expired")
	// ErrSessionsExhausted: every session of the pool stayed busy for
	// Config.SessionWait.
	ErrSessionsExhausted = errors.New("all PKCS#11 sessions are busy")
	// ErrTokenUnavailable: the token, its sessions or its login are gone
	// (removed, reset, module failure). Readiness is false until the token
	// answers again; the connection is reopened automatically.
	ErrTokenUnavailable = errors.New("HSM token unavailable")
	// ErrTokenFailure: the token refused or failed an operation.
	ErrTokenFailure = errors.New("HSM token operation failed")
	// ErrKeyNotFound: a key miniKMS looks for is not in the token.
	ErrKeyNotFound = errors.New("key not found in the HSM token")
	// ErrRootExists: Init or ImportRoot found a root key already there.
	ErrRootExists = errors.New("a root key is already in the HSM token")
	// ErrClosed: the HSM was closed.
	ErrClosed = errors.New("HSM connection closed")
)

// errKind classifies a token error; it decides whether the connection is
// reopened.
type errKind int

const (
	kindFailure       errKind = iota // the token answered an error: the operation failed
	kindLost                         // token, session or login gone: reopen the connection
	kindPIN                          // PIN refused: fatal, never retried
	kindPINLocked                    // PIN locked: fatal
	kindPool                         // no free session in time
	kindNotFound                     // key not in the token
	kindModule                       // module cannot be loaded
	kindTokenNotFound                // no token with the label
	kindConfig                       // configuration
	kindClosed                       // closed
)

func (k errKind) sentinel() error {
	switch k {
	case kindLost:
		return ErrTokenUnavailable
	case kindPIN:
		return ErrPINIncorrect
	case kindPINLocked:
		return ErrPINLocked
	case kindPool:
		return ErrSessionsExhausted
	case kindNotFound:
		return ErrKeyNotFound
	case kindModule:
		return ErrModule
	case kindTokenNotFound:
		return ErrTokenNotFound
	case kindConfig:
		return ErrConfig
	case kindClosed:
		return ErrClosed
	}
	return ErrTokenFailure
}

// tokenError is what token implementations return: a kind, the operation
// and the cause (a PKCS#11 return value when there is one).
type tokenError struct {
	kind errKind
	op   string
	err  error
}

func (e *tokenError) Error() string {
	if e.err == nil {
		return fmt.Sprintf("%v: %s", e.kind.sentinel(), e.op)
	}
	return fmt.Sprintf("%v: %s: %v", e.kind.sentinel(), e.op, e.err)
}

func (e *tokenError) Unwrap() []error {
	if e.err == nil {
		return []error{e.kind.sentinel()}
	}
	return []error{e.kind.sentinel(), e.err}
}

func newErr(kind errKind, op string, err error) error {
	return &tokenError{kind: kind, op: op, err: err}
}

// kindOf returns the kind of err; errors that are not tokenErrors are
// failures.
func kindOf(err error) errKind {
	var te *tokenError
	if errors.As(err, &te) {
		return te.kind
	}
	switch {
	case errors.Is(err, ErrTokenUnavailable):
		return kindLost
	case errors.Is(err, ErrPINIncorrect):
		return kindPIN
	case errors.Is(err, ErrPINLocked):
		return kindPINLocked
	case errors.Is(err, ErrSessionsExhausted):
		return kindPool
	case errors.Is(err, ErrKeyNotFound):
		return kindNotFound
	}
	return kindFailure
}

// fatal reports whether reopening the connection cannot help (and could
// lock the PIN).
func (k errKind) fatal() bool {
	return k == kindPIN || k == kindPINLocked || k == kindConfig
}

// Available reports whether this build has PKCS#11 support (it needs cgo).
// When it is false every constructor fails with ErrNoCgo.
func Available() bool { return cgoEnabled }
