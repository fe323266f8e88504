package engine

import (
	"context"
	"time"
)

// AddAttribute adds an attribute instance and returns it with its index.
func (e *Engine) AddAttribute(ctx context.Context, p Principal, id string, a Attribute) (*Object, Attribute, error) {
	if err := authorize(p, OpAddAttribute); err != nil {
		return nil, Attribute{}, err
	}
	d := LookupAttr(a.Name)
	if d == nil {
		return nil, Attribute{}, errf(ErrInvalidField, "unknown attribute %q", a.Name)
	}
	if err := validateValue(d, a.Value); err != nil {
		return nil, Attribute{}, err
	}
	var idx int32
	o, err := e.update(ctx, p.Tenant, id, func(o *Object, now time.Time) error {
		if !d.ClientSettable() {
			return errf(ErrAttributeReadOnly, "attribute %q is set by the server", a.Name)
		}
		if !d.AppliesTo(o.Type) {
			return errf(ErrInvalidField, "attribute %q does not apply to %s objects", a.Name, o.Type)
		}
		if !d.Multi && o.Attrs.Has(a.Name) {
			return errf(ErrIllegalOperation, "attribute %q already has a value; use Modify Attribute", a.Name)
		}
		if o.Attrs.Count() >= MaxAttributeInstances {
			return errf(ErrLimit, "object has %d attribute instances already", MaxAttributeInstances)
		}
		if err := checkDateChange(o, a.Name, a.Value, now); err != nil {
			return err
		}
		idx = o.Attrs.Add(a.Name, a.Value)
		if a.Name == AttrUsageLimits {
			initUsageLimits(o)
		}
		return applyDateEffects(o, now)
	})
	if err != nil {
		return nil, Attribute{}, err
	}
	// Answer with the value as stored (the server may complete it).
	stored := a.Value
	for _, in := range o.Attrs.Get(a.Name) {
		if in.Index == idx {
			stored = in.Value
		}
	}
	return o, Attribute{Name: a.Name, Index: &idx, Value: stored}, nil
}

// ModifyAttribute replaces the value of an existing attribute instance
// (index 0 when a.Index is nil).
func (e *Engine) ModifyAttribute(ctx context.Context, p Principal, id string, a Attribute) (*Object, Attribute, error) {
	if err := authorize(p, OpModifyAttribute); err != nil {
		return nil, Attribute{}, err
	}
	d := LookupAttr(a.Name)
	if d == nil {
		return nil, Attribute{}, errf(ErrInvalidField, "unknown attribute %q", a.Name)
	}
	if err := validateValue(d, a.Value); err != nil {
		return nil, Attribute{}, err
	}
	var idx int32
	if a.Index != nil {
		idx = *a.Index
	}
	o, err := e.update(ctx, p.Tenant, id, func(o *Object, now time.Time) error {
		if !o.Attrs.Has(a.Name) {
			if attrOnObject(a.Name) {
				return errf(ErrAttributeReadOnly, "attribute %q cannot be modified by a client", a.Name)
			}
			return errf(ErrAttributeNotFound, "object has no attribute %q", a.Name)
		}
		if !d.ClientModifiable {
			return errf(ErrAttributeReadOnly, "attribute %q cannot be modified by a client", a.Name)
		}
		if err := checkDateChange(o, a.Name, a.Value, now); err != nil {
			return err
		}
		if err := o.Attrs.Replace(a.Name, idx, a.Value); err != nil {
			return errf(ErrIndexOutOfBounds, "attribute %q has no instance with index %d", a.Name, idx)
		}
		return applyDateEffects(o, now)
	})
	if err != nil {
		return nil, Attribute{}, err
	}
	return o, Attribute{Name: a.Name, Index: &idx, Value: a.Value}, nil
}

// DeleteAttribute removes an attribute instance (index 0 when index is nil)
// and returns what it held.
func (e *Engine) DeleteAttribute(ctx context.Context, p Principal, id, name string, index *int32) (*Object, Attribute, error) {
	if err := authorize(p, OpDeleteAttribute); err != nil {
		return nil, Attribute{}, err
	}
	d := LookupAttr(name)
	if d == nil {
		return nil, Attribute{}, errf(ErrInvalidField, "unknown attribute %q", name)
	}
	var idx int32
	if index != nil {
		idx = *index
	}
	var old any
	o, err := e.update(ctx, p.Tenant, id, func(o *Object, _ time.Time) error {
		if !o.Attrs.Has(name) {
			if attrOnObject(name) {
				return errf(ErrAttributeReadOnly, "attribute %q cannot be deleted by a client", name)
			}
			return errf(ErrAttributeNotFound, "object has no attribute %q", name)
		}
		if !d.ClientDeletable {
			return errf(ErrAttributeReadOnly, "attribute %q cannot be deleted by a client", name)
		}
		v, err := o.Attrs.Delete(name, idx)
		if err != nil {
			return errf(ErrIndexOutOfBounds, "attribute %q has no instance with index %d", name, idx)
		}
		old = v
		return nil
	})
	if err != nil {
		return nil, Attribute{}, err
	}
	return o, Attribute{Name: name, Index: &idx, Value: old}, nil
}

// attrOnObject reports the attributes kept on the object itself.
func attrOnObject(name string) bool {
	return name == AttrUniqueIdentifier || name == AttrObjectType || name == AttrState
}

// checkDateChange enforces when lifecycle dates may be set (KMIP 1.4
// §3.24–3.27): the Activation Date only while Pre-Active; Process Start,
// Protect Stop and Deactivation Dates while Pre-Active or Active (they only
// narrow what the key may still do).
func checkDateChange(o *Object, name string, v any, now time.Time) error {
	switch name {
	case AttrActivationDate:
		if o.State != StatePreActive {
			return errf(ErrWrongState, "%s can only change while the object is Pre-Active (it is %s)", name, o.State)
		}
	case AttrProcessStartDate, AttrProtectStopDate, AttrDeactivationDate:
		if o.State != StatePreActive && o.State != StateActive {
			return errf(ErrWrongState, "%s can no longer change: the object is %s", name, o.State)
		}
	}
	return nil
}

// applyDateEffects moves the state when a changed date is already reached,
// and re-checks date ordering.
func applyDateEffects(o *Object, now time.Time) error {
	if err := checkDates(o); err != nil {
		return err
	}
	if o.Type.Cryptographic() {
		o.State = o.EffectiveState(now)
	}
	return nil
}
