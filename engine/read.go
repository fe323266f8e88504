package engine

import (
	"context"
	"time"
)

// Get returns the object and a copy of its plaintext material, which the
// caller clears when done.
func (e *Engine) Get(ctx context.Context, p Principal, id string) (*Object, Material, error) {
	if err := authorize(p, OpGet); err != nil {
		return nil, Material{}, err
	}
	c, err := e.load(ctx, p.Tenant, id)
	if err != nil {
		return nil, Material{}, err
	}
	o := c.obj
	now := e.now()
	if o.Type == TypeTemplate && !o.State.Destroyed() {
		return o.clone(), Material{}, nil // a template is its attributes
	}
	if o.EffectiveState(now).Destroyed() {
		// The OASIS cases answer a Get of a destroyed object with Item Not
		// Found: the object's value is gone; its attributes remain.
		return nil, Material{}, errf(ErrNotFound, "object %s was destroyed; only its attributes remain", o.ID)
	}
	if IsMetadataOnly(o) {
		return o.clone(), Material{}, nil // mdo.go: the Key Block without a Key Value
	}
	if !o.HasMaterial() {
		return nil, Material{}, errf(ErrKeyValueNotPresent, "object %s has no key material", o.ID)
	}
	if boolAttr(o.Attrs, AttrSensitive) {
		return nil, Material{}, errf(ErrSensitive, "object %s is sensitive: it can only be returned wrapped", o.ID)
	}
	if v, ok := o.Attrs.First(AttrExtractable); ok && v == false {
		return nil, Material{}, errf(ErrNotExtractable, "object %s is not extractable", o.ID)
	}
	k, err := e.key(ctx, c)
	if err != nil {
		return nil, Material{}, err
	}
	m, err := k.copyMaterial()
	if err != nil {
		return nil, Material{}, err
	}
	if boolAttr(o.Attrs, AttrFresh) {
		// Fresh turns false once the object has been served.
		if no, err := e.update(ctx, p.Tenant, id, func(o *Object, _ time.Time) error {
			if !boolAttr(o.Attrs, AttrFresh) {
				return errNoChange
			}
			o.Attrs.Set(AttrFresh, false)
			return nil
		}); err == nil {
			return no, m, nil
		} else {
			clear(m.Bytes)
			return nil, Material{}, err
		}
	}
	return o.clone(), m, nil
}

// GetAttributes returns the named attributes (all when names is empty) with
// their indices. Names without a value are left out.
func (e *Engine) GetAttributes(ctx context.Context, p Principal, id string, names []string) (*Object, []Attribute, error) {
	if err := authorize(p, OpGetAttributes); err != nil {
		return nil, nil, err
	}
	c, err := e.load(ctx, p.Tenant, id)
	if err != nil {
		return nil, nil, err
	}
	all := allAttributes(c.obj, e.now())
	if len(names) == 0 {
		return c.obj.clone(), all, nil
	}
	var out []Attribute
	done := map[string]bool{}
	for _, n := range names {
		if done[n] {
			return nil, nil, errf(ErrInvalidMessage, "attribute name %q is given more than once", n)
		}
		done[n] = true
		for _, a := range all {
			if a.Name == n {
				out = append(out, a)
			}
		}
	}
	return c.obj.clone(), out, nil
}

// GetAttributeList returns the names of the attributes that have a value.
func (e *Engine) GetAttributeList(ctx context.Context, p Principal, id string) (*Object, []string, error) {
	if err := authorize(p, OpGetAttributeList); err != nil {
		return nil, nil, err
	}
	c, err := e.load(ctx, p.Tenant, id)
	if err != nil {
		return nil, nil, err
	}
	var names []string
	seen := map[string]bool{}
	for _, a := range allAttributes(c.obj, e.now()) {
		if !seen[a.Name] {
			seen[a.Name] = true
			names = append(names, a.Name)
		}
	}
	return c.obj.clone(), names, nil
}

// allAttributes lists every attribute of o, including the three that live
// on the object, with the state the dates imply.
func allAttributes(o *Object, now time.Time) []Attribute {
	out := make([]Attribute, 0, 3+o.Attrs.Count())
	idx0 := func() *int32 { var z int32; return &z }
	out = append(out,
		Attribute{Name: AttrUniqueIdentifier, Index: idx0(), Value: o.ID},
		Attribute{Name: AttrObjectType, Index: idx0(), Value: o.Type})
	if o.Type.Cryptographic() {
		out = append(out, Attribute{Name: AttrState, Index: idx0(), Value: o.EffectiveState(now)})
	}
	for _, n := range o.Attrs.Names() {
		for _, in := range o.Attrs.Get(n) {
			i := in.Index
			out = append(out, Attribute{Name: n, Index: &i, Value: in.Value})
		}
	}
	return out
}
