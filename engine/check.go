package engine

import (
	"context"
	"fmt"
	"math/bits"
	"strings"
	"time"
)

// Operations of this file.
const (
	OpCheck              Op = "Check"
	OpGetUsageAllocation Op = "GetUsageAllocation"
	OpObtainLease        Op = "ObtainLease"
)

// CheckRequest is a KMIP Check: may the caller use the object so?
type CheckRequest struct {
	ID string
	// UsageLimitsCount: units the client needs (in the object's Usage
	// Limits Unit); nil: not checked.
	UsageLimitsCount *int64
	// UsageMask: the uses the client intends; nil: not checked.
	UsageMask *UsageMask
	// LeaseTime: the lease the client wants; nil: not checked.
	LeaseTime *time.Duration
}

// Check verifies that the object may be used as the request says (KMIP 1.4
// §4.10). It changes nothing: a later Get Usage Allocation or Obtain Lease
// does. A refusal is Permission Denied naming every check that failed.
func (e *Engine) Check(ctx context.Context, p Principal, req CheckRequest) (*Object, error) {
	if err := authorize(p, OpCheck); err != nil {
		return nil, err
	}
	c, err := e.load(ctx, p.Tenant, req.ID)
	if err != nil {
		return nil, err
	}
	o := c.obj
	now := e.now()
	var failed []string
	if n := req.UsageLimitsCount; n != nil {
		if *n < 0 {
			return nil, errf(ErrInvalidField, "Usage Limits Count must not be negative")
		}
		if v, ok := o.Attrs.First(AttrUsageLimits); ok {
			if left := remainingUsage(v.(UsageLimits)); *n > left {
				failed = append(failed, fmt.Sprintf("Usage Limits Count %d exceeds the %d units left", *n, left))
			}
		}
	}
	if m := req.UsageMask; m != nil {
		if !o.Type.Cryptographic() {
			return nil, errf(ErrIllegalOperation, "%s objects have no Cryptographic Usage Mask", o.Type)
		}
		for b := *m; b != 0; b &= b - 1 {
			use := UsageMask(1) << bits.TrailingZeros32(uint32(b))
			if err := checkUse(o, now, use); err != nil {
				failed = append(failed, "Cryptographic Usage Mask: "+errDetail(err))
			}
		}
	}
	if lt := req.LeaseTime; lt != nil {
		if *lt < 0 {
			return nil, errf(ErrInvalidField, "Lease Time must not be negative")
		}
		max, err := e.leaseFor(o, now)
		switch {
		case err != nil:
			failed = append(failed, "Lease Time: "+errDetail(err))
		case *lt > max:
			failed = append(failed, fmt.Sprintf("Lease Time %v exceeds the %v lease the server grants", *lt, max))
		}
	}
	if len(failed) > 0 {
		return nil, errf(ErrPermissionDenied, "check failed: %s", strings.Join(failed, "; "))
	}
	return o.ref(), nil
}

// errDetail is the client message of an engine error, without the
// sentinel's text.
func errDetail(err error) string {
	msg := err.Error()
	if _, detail, ok := strings.Cut(msg, ": "); ok {
		return detail
	}
	return msg
}

// remainingUsage is what Usage Limits still allow.
func remainingUsage(ul UsageLimits) int64 {
	if ul.UsageLimitsCount != nil {
		return *ul.UsageLimitsCount
	}
	return ul.UsageLimitsTotal
}

// GetUsageAllocation reserves n units of the object's Usage Limits for a
// client that applies protection with the key itself (KMIP 1.4 §4.11).
// The reservation is durable before the answer, and the server assumes
// the whole allocation is consumed: it is never given back, so the count
// can only over-count, never under-count, the client's use.
func (e *Engine) GetUsageAllocation(ctx context.Context, p Principal, id string, n int64) (*Object, error) {
	if err := authorize(p, OpGetUsageAllocation); err != nil {
		return nil, err
	}
	if n <= 0 {
		return nil, errf(ErrInvalidField, "Usage Limits Count must be positive, not %d", n)
	}
	c, err := e.load(ctx, p.Tenant, id)
	if err != nil {
		return nil, err
	}
	if err := allocatable(c.obj, e.now()); err != nil {
		return nil, err
	}
	o, err := e.update(ctx, p.Tenant, id, func(o *Object, now time.Time) error {
		// Checked again on the fresh copy the update writes.
		if err := allocatable(o, now); err != nil {
			return err
		}
		v, _ := o.Attrs.First(AttrUsageLimits)
		ul := v.(UsageLimits)
		left := remainingUsage(ul)
		if n > left {
			return errf(ErrPermissionDenied, "unable to allocate %d units: %d are left", n, left)
		}
		left -= n
		ul.UsageLimitsCount = &left
		o.Attrs.Set(AttrUsageLimits, ul)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return o.ref(), nil
}

// allocatable checks that an allocation may be taken from o now: it has
// Usage Limits and may apply protection (Active, before its Protect Stop
// Date).
func allocatable(o *Object, now time.Time) error {
	if !o.Attrs.Has(AttrUsageLimits) {
		return errf(ErrIllegalOperation, "the object has no Usage Limits to allocate from")
	}
	if st := o.EffectiveState(now); st != StateActive {
		return errf(ErrWrongState, "the object is %s; usage is allocated only while it is Active", st)
	}
	if ps := o.Attrs.Time(AttrProtectStopDate); !ps.IsZero() && !now.Before(ps) {
		return errf(ErrWrongState, "the object's Protect Stop Date has passed")
	}
	return nil
}

// LeaseResult is the answer of Obtain Lease.
type LeaseResult struct {
	Object *Object
	// LeaseTime is how long the client may use the object before it asks
	// again; 0 means no lease limit (KMIP 1.4 §4.5).
	LeaseTime      time.Duration
	LastChangeDate time.Time
}

// ObtainLease grants a lease on an Active object: the object's Lease Time
// attribute when one is set, else the server's lease (Config.Lease,
// MINIKMS_LEASE_TIME, one hour by default). A client is to ask again when
// the lease runs out, so a state change (revocation, deactivation) reaches
// clients that cache keys within one lease. Objects in any other state get
// no lease (Permission Denied).
func (e *Engine) ObtainLease(ctx context.Context, p Principal, id string) (LeaseResult, error) {
	var res LeaseResult
	if err := authorize(p, OpObtainLease); err != nil {
		return res, err
	}
	c, err := e.load(ctx, p.Tenant, id)
	if err != nil {
		return res, err
	}
	o := c.obj
	lease, err := e.leaseFor(o, e.now())
	if err != nil {
		return res, err
	}
	res.Object, res.LeaseTime, res.LastChangeDate = o.ref(), lease, o.Attrs.Time(AttrLastChangeDate)
	return res, nil
}

// leaseFor is the lease the server grants on o now: its Lease Time
// attribute, else the server's lease.
func (e *Engine) leaseFor(o *Object, now time.Time) (time.Duration, error) {
	if !o.Type.Cryptographic() {
		return 0, errf(ErrIllegalOperation, "leases apply to managed cryptographic objects, not %s objects", o.Type)
	}
	if st := o.EffectiveState(now); st != StateActive {
		return 0, errf(ErrWrongState, "the object is %s; a lease is granted only on an Active object", st)
	}
	if v, ok := o.Attrs.First(AttrLeaseTime); ok && v.(time.Duration) > 0 {
		return v.(time.Duration), nil
	}
	return e.lease, nil
}
