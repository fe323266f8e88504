package postgres

import (
	"context"
	"errors"
	"io"
	"net"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/minikms/minikms/engine"
)

// mappedError is an engine sentinel with a client-safe message that keeps
// the driver error in its chain (errors.As finds the *pgconn.PgError) for
// whoever logs it in full.
type mappedError struct {
	msg      string
	sentinel error
	cause    error
}

func (e *mappedError) Error() string   { return e.msg }
func (e *mappedError) Unwrap() []error { return []error{e.sentinel, e.cause} }

func mapped(sentinel error, detail string, cause error) error {
	msg := sentinel.Error()
	if detail != "" {
		msg += ": " + detail
	}
	return &mappedError{msg: msg, sentinel: sentinel, cause: cause}
}

// mapErr turns driver errors the engine has a sentinel for into that
// sentinel. The message of the result names neither tables nor values:
// sentinel messages may reach clients. Other errors are returned as they
// are (PostgreSQL's messages for them do not contain bound values).
// Context errors stay as they are: the caller gave up, the store did not
// fail.
func mapErr(err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		switch pe.Code {
		case "23505": // unique_violation
			return mapped(engine.ErrExists, "", err)
		case "40001", "40P01": // serialization_failure, deadlock_detected
			return mapped(engine.ErrConflict, "", err)
		case "22021", "22P05": // character_not_in_repertoire, untranslatable_character
			return mapped(engine.ErrInvalidField, "text is not valid for the database encoding", err)
		case "23514", "22003": // check_violation, numeric_value_out_of_range
			return mapped(engine.ErrInvalidField, "value out of range", err)
		case "54000": // program_limit_exceeded (an index entry too large)
			return mapped(engine.ErrLimit, "value too large to index", err)
		case "25006": // read_only_sql_transaction: a standby, or a primary demoted by a failover
			return mapped(engine.ErrUnavailable, "database is read-only", err)
		}
		switch pe.Code[:min(2, len(pe.Code))] {
		case "08", "53", "57", "58":
			// connection exception, insufficient resources (too many
			// connections, disk full), operator intervention (shutdown,
			// starting up, canceled), system error (I/O).
			return mapped(engine.ErrUnavailable, "database error "+pe.Code, err)
		}
		return err
	}
	var ce *pgconn.ConnectError
	var ne net.Error
	if errors.As(err, &ce) || errors.As(err, &ne) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
		return mapped(engine.ErrUnavailable, "database unreachable", err)
	}
	return err
}
