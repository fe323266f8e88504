package kmip

import (
	"context"
	"errors"
	"log/slog"

	"github.com/minikms/minikms/engine"
	"github.com/ovh/kmip-go"
	"github.com/ovh/kmip-go/ttlv"
)

// kmipError is an error raised by this layer with its exact reason.
type kmipError struct {
	reason kmip.ResultReason
	msg    string
}

func (e *kmipError) Error() string { return e.msg }

func errReason(reason kmip.ResultReason, msg string) error { return &kmipError{reason, msg} }

// genericFailure is what a client sees for an internal error.
const genericFailure = "internal server error; the server log has the details"

// resultFor is the one place where errors become KMIP Result Reasons. The
// message is client-safe: engine sentinels carry client-safe details;
// anything unknown is logged in full and answered generically.
func resultFor(ctx context.Context, log *slog.Logger, v kmip.ProtocolVersion, err error) (kmip.ResultReason, string) {
	var ke *kmipError
	if errors.As(err, &ke) {
		return ke.reason, ke.msg
	}
	if ttlv.IsErrEncoding(err) {
		return kmip.ResultReasonInvalidMessage, "the request payload cannot be decoded: " + err.Error()
	}
	table := []struct {
		target error
		reason kmip.ResultReason
	}{
		{engine.ErrNotFound, kmip.ResultReasonItemNotFound},
		{engine.ErrPermissionDenied, kmip.ResultReasonPermissionDenied},
		// KMIP 1.x has no Wrong Key Lifecycle State: lifecycle refusals
		// are Permission Denied (as in the OASIS test cases).
		{engine.ErrWrongState, kmip.ResultReasonPermissionDenied},
		{engine.ErrAttributeReadOnly, kmip.ResultReasonPermissionDenied},
		{engine.ErrInvalidField, kmip.ResultReasonInvalidField},
		{engine.ErrLimit, kmip.ResultReasonInvalidField},
		{engine.ErrMissingData, kmip.ResultReasonMissingData},
		{engine.ErrInvalidMessage, kmip.ResultReasonInvalidMessage},
		{engine.ErrNotSupported, kmip.ResultReasonFeatureNotSupported},
		{engine.ErrCryptoFailure, kmip.ResultReasonCryptographicFailure},
		{engine.ErrBadCiphertext, kmip.ResultReasonCryptographicFailure},
		{engine.ErrKeyFormatNotSupported, kmip.ResultReasonKeyFormatTypeNotSupported},
		{engine.ErrIllegalOperation, kmip.ResultReasonIllegalOperation},
		{engine.ErrIndexOutOfBounds, kmip.ResultReasonIndexOutofBounds},
		// 1.x has no Attribute Not Found: the item asked for is not there.
		{engine.ErrAttributeNotFound, kmip.ResultReasonItemNotFound},
		{engine.ErrExists, kmip.ResultReasonGeneralFailure},
	}
	for _, t := range table {
		if errors.Is(err, t.target) {
			return t.reason, err.Error()
		}
	}
	switch {
	case errors.Is(err, engine.ErrKeyValueNotPresent):
		if v.Minor() >= 2 {
			return kmip.ResultReasonKeyValueNotPresent, err.Error()
		}
		return kmip.ResultReasonItemNotFound, err.Error()
	case errors.Is(err, engine.ErrSensitive):
		if v.Minor() >= 4 {
			return kmip.ResultReasonSensitive, err.Error()
		}
		return kmip.ResultReasonPermissionDenied, err.Error()
	case errors.Is(err, engine.ErrNotExtractable):
		if v.Minor() >= 4 {
			return kmip.ResultReasonNotExtractable, err.Error()
		}
		return kmip.ResultReasonPermissionDenied, err.Error()
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		return kmip.ResultReasonGeneralFailure, "the request timed out"
	case errors.Is(err, engine.ErrUnavailable):
		log.ErrorContext(ctx, "backend unavailable", "err", err)
		return kmip.ResultReasonGeneralFailure, "the server cannot reach a backend; retry later"
	}
	log.ErrorContext(ctx, "internal error", "err", err)
	return kmip.ResultReasonGeneralFailure, genericFailure
}
