package engine

import (
	"context"
	"time"
)

// Usage Limits Unit values.
const (
	usageUnitByte   = 1
	usageUnitObject = 2
)

// initUsageLimits gives a new object's Usage Limits their remaining count:
// the total, unless the client set a smaller count.
func initUsageLimits(o *Object) {
	v, ok := o.Attrs.First(AttrUsageLimits)
	if !ok {
		return
	}
	ul := v.(UsageLimits)
	if ul.UsageLimitsCount == nil || *ul.UsageLimitsCount > ul.UsageLimitsTotal || *ul.UsageLimitsCount < 0 {
		c := ul.UsageLimitsTotal
		ul.UsageLimitsCount = &c
	}
	o.Attrs.Set(AttrUsageLimits, ul)
}

// consumeUsage charges one protecting use (n bytes) against the object's
// Usage Limits, durably, before the use happens: a crash can only
// over-count. An object without Usage Limits costs nothing.
func (e *Engine) consumeUsage(ctx context.Context, o *Object, n int) error {
	if !o.Attrs.Has(AttrUsageLimits) {
		return nil
	}
	_, err := e.update(ctx, o.Tenant, o.ID, func(o *Object, _ time.Time) error {
		v, ok := o.Attrs.First(AttrUsageLimits)
		if !ok {
			return errNoChange
		}
		ul := v.(UsageLimits)
		cost := int64(1)
		if ul.UsageLimitsUnit == usageUnitByte {
			cost = int64(n)
		}
		remaining := ul.UsageLimitsTotal
		if ul.UsageLimitsCount != nil {
			remaining = *ul.UsageLimitsCount
		}
		if remaining <= 0 || cost > remaining {
			return errf(ErrPermissionDenied, "the key's Usage Limits are exhausted")
		}
		left := remaining - cost
		ul.UsageLimitsCount = &left
		o.Attrs.Set(AttrUsageLimits, ul)
		return nil
	})
	return err
}
