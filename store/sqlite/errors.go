package sqlite

import (
	"errors"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/minikms/minikms/engine"
)

// mappedError is an engine sentinel with a client-safe message that keeps
// the driver error in its chain (errors.As finds the *sqlite.Error) for
// whoever logs it in full.
type mappedError struct {
	msg      string
	sentinel error
	cause    error
}

func (e *mappedError) Error() string   { return e.msg }
func (e *mappedError) Unwrap() []error { return []error{e.sentinel, e.cause} }

// mapErr turns driver errors the engine has a sentinel for into that
// sentinel. The message of the result names neither tables nor values:
// sentinel messages may reach clients. Other errors are returned as they
// are; SQLite's messages never contain bound values, so no attribute blob
// or wrapped material can appear in them.
func mapErr(err error) error {
	var se *sqlite.Error
	if !errors.As(err, &se) {
		return err
	}
	switch se.Code() {
	case sqlite3.SQLITE_CONSTRAINT_UNIQUE, sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY:
		return &mappedError{msg: engine.ErrExists.Error(), sentinel: engine.ErrExists, cause: err}
	}
	switch se.Code() & 0xff { // the primary result code
	case sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED:
		return &mappedError{msg: engine.ErrUnavailable.Error() + ": database is locked", sentinel: engine.ErrUnavailable, cause: err}
	}
	return err
}
