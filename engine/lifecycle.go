package engine

import (
	"context"
	"time"
)

// Activate moves a Pre-Active object to Active (KMIP transition 3).
func (e *Engine) Activate(ctx context.Context, p Principal, id string) (*Object, error) {
	if err := authorize(p, OpActivate); err != nil {
		return nil, err
	}
	return e.update(ctx, p.Tenant, id, func(o *Object, now time.Time) error {
		if !o.Type.Cryptographic() {
			return errf(ErrIllegalOperation, "%s objects have no lifecycle state", o.Type)
		}
		if o.State != StatePreActive {
			return errf(ErrWrongState, "only a Pre-Active object can be activated (this one is %s)", o.State)
		}
		if dd := o.Attrs.Time(AttrDeactivationDate); !dd.IsZero() && dd.Before(now) {
			return errf(ErrWrongState, "the object's Deactivation Date has passed")
		}
		o.State = StateActive
		o.Attrs.Set(AttrActivationDate, now)
		return nil
	})
}

// RevokeRequest carries the revocation reason.
type RevokeRequest struct {
	Reason RevocationReason
	// CompromiseOccurrence is when the compromise happened (compromise
	// reasons only); now when absent.
	CompromiseOccurrence *time.Time
}

// Revoke deactivates an object, or marks it compromised (transitions 2, 4,
// 5, 6 and 9).
func (e *Engine) Revoke(ctx context.Context, p Principal, id string, req RevokeRequest) (*Object, error) {
	if err := authorize(p, OpRevoke); err != nil {
		return nil, err
	}
	code := req.Reason.RevocationReasonCode
	if !code.Valid() {
		return nil, errf(ErrInvalidField, "revocation reason code 0x%X is not defined", uint32(code))
	}
	if err := checkText(AttrRevocationReason, req.Reason.RevocationMessage); err != nil {
		return nil, err
	}
	compromise := code == RevokeKeyCompromise || code == RevokeCACompromise
	return e.update(ctx, p.Tenant, id, func(o *Object, now time.Time) error {
		if !o.Type.Cryptographic() {
			return errf(ErrIllegalOperation, "%s objects have no lifecycle state", o.Type)
		}
		if o.Type == TypeCertificate {
			// Revoking a certificate may revoke a client identity: it is
			// an administrator's act, like issuing one.
			if err := authorize(p, OpCertify); err != nil {
				return err
			}
		}
		if compromise {
			switch o.State {
			case StatePreActive, StateActive, StateDeactivated:
				o.State = StateCompromised
			case StateDestroyed:
				o.State = StateDestroyedCompromised
			default:
				return errf(ErrWrongState, "the object is already %s", o.State)
			}
			occurred := now
			if req.CompromiseOccurrence != nil && !req.CompromiseOccurrence.IsZero() {
				occurred = req.CompromiseOccurrence.UTC()
			}
			o.Attrs.Set(AttrCompromiseOccurrenceDate, occurred)
			o.Attrs.Set(AttrCompromiseDate, now)
		} else {
			switch o.State {
			case StatePreActive, StateActive:
				o.State = StateDeactivated
				if dd := o.Attrs.Time(AttrDeactivationDate); dd.IsZero() || dd.After(now) {
					o.Attrs.Set(AttrDeactivationDate, now)
				}
			default:
				return errf(ErrWrongState, "only a Pre-Active or Active object can be revoked for this reason (this one is %s)", o.State)
			}
		}
		o.Attrs.Set(AttrRevocationReason, req.Reason)
		return nil
	})
}

// Destroy removes an object's key material for good; its metadata stays
// (KMIP transitions 1, 7 and 8). An Active object must be revoked first.
func (e *Engine) Destroy(ctx context.Context, p Principal, id string) (*Object, error) {
	if err := authorize(p, OpDestroy); err != nil {
		return nil, err
	}
	o, err := e.update(ctx, p.Tenant, id, func(o *Object, now time.Time) error {
		switch {
		case !o.Type.Cryptographic():
			if o.State.Destroyed() {
				return errf(ErrWrongState, "the object is already destroyed")
			}
			o.State = StateDestroyed
		case o.State == StatePreActive, o.State == StateDeactivated:
			o.State = StateDestroyed
		case o.State == StateCompromised:
			o.State = StateDestroyedCompromised
		case o.State == StateActive:
			return errf(ErrWrongState, "an Active object cannot be destroyed; revoke it first")
		default:
			return errf(ErrWrongState, "the object is already %s", o.State)
		}
		clear(o.wrapped)
		o.wrapped = nil
		o.Attrs.Set(AttrDestroyDate, now)
		o.Attrs.Set(AttrKeyValuePresent, false)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return o, nil
}
