package engine

import (
	"errors"
	"fmt"
)

// Sentinel errors of the engine's contract. The protocol layer maps each to
// a result reason in one place with errors.Is; anything else is an internal
// failure, logged in full and answered generically.
//
// Messages wrapped around these (with fmt.Errorf("%w: ...")) may be shown to
// the client, so they never contain key material, plaintext, or internals.
var (
	// ErrNotFound: no such object in the caller's tenant. Also the answer
	// for another tenant's object, so existence never leaks.
	ErrNotFound = errors.New("item not found")
	// ErrPermissionDenied: the role may not do this, or the object's state,
	// dates or usage do not allow it (KMIP 1.x answers Permission Denied for
	// lifecycle refusals).
	ErrPermissionDenied = errors.New("permission denied")
	// ErrWrongState: the object's lifecycle state forbids the operation.
	// Mapped like ErrPermissionDenied for KMIP 1.x.
	ErrWrongState = errors.New("wrong key lifecycle state")
	// ErrInvalidField: a field or attribute value is invalid.
	ErrInvalidField = errors.New("invalid field")
	// ErrMissingData: a required field or attribute is absent.
	ErrMissingData = errors.New("missing data")
	// ErrNotSupported: a valid request for something the server does not do
	// (an algorithm, mode, parameter, object type).
	ErrNotSupported = errors.New("feature not supported")
	// ErrCryptoFailure: a cryptographic check failed (authentication tag).
	ErrCryptoFailure = errors.New("cryptographic failure")
	// ErrBadCiphertext: ciphertext is malformed (length, padding).
	ErrBadCiphertext = errors.New("invalid ciphertext")
	// ErrKeyFormatNotSupported: a Get asked for a format we cannot produce.
	ErrKeyFormatNotSupported = errors.New("key format type not supported")
	// ErrIllegalOperation: the operation makes no sense for this object.
	ErrIllegalOperation = errors.New("illegal operation")
	// ErrIndexOutOfBounds: an attribute index that does not exist.
	ErrIndexOutOfBounds = errors.New("index out of bounds")
	// ErrAttributeNotFound: the named attribute has no value on the object.
	ErrAttributeNotFound = errors.New("attribute not found")
	// ErrAttributeReadOnly: the attribute may not be set, changed or deleted
	// by a client.
	ErrAttributeReadOnly = errors.New("attribute is read only")
	// ErrExists: a unique identifier collision (internal) or duplicate.
	ErrExists = errors.New("object already exists")
	// ErrConflict: a concurrent update won; the engine retries.
	ErrConflict = errors.New("concurrent update")
	// ErrLimit: a configured limit (attributes per object, value length) was hit.
	ErrLimit = errors.New("limit exceeded")
	// ErrWrongRootKey: the root key does not match the store's check value.
	ErrWrongRootKey = errors.New("root key does not match the key check value recorded in the store")
	// ErrInvalidMessage: the request is inconsistent as a whole (e.g. a
	// Decrypt without the IV its mode needs), as KMIP answers Invalid Message.
	ErrInvalidMessage = errors.New("invalid message")
	// ErrKeyValueNotPresent: the object has no key material (destroyed).
	ErrKeyValueNotPresent = errors.New("key value not present")
	// ErrSensitive: the object is Sensitive and may not leave unwrapped.
	ErrSensitive = errors.New("object is sensitive")
	// ErrNotExtractable: the object is not Extractable.
	ErrNotExtractable = errors.New("object is not extractable")
	// ErrUnavailable: a backend (store, keyring) is not reachable now.
	ErrUnavailable = errors.New("service unavailable")
)

// errf wraps a sentinel with a client-safe detail message.
func errf(sentinel error, format string, args ...any) error {
	return fmt.Errorf("%w: %s", sentinel, fmt.Sprintf(format, args...))
}
