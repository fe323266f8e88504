package engine

import (
	"context"
	"time"
)

// Server-side templates (KMIP 1.0–1.2; deprecated in 1.3): a Template
// object holds attributes only. A Create or Register that names templates
// in its Template-Attribute receives their attributes; attributes given in
// the request itself take precedence, and a template's own identity (its
// Name, Unique Identifier and server-set attributes) is never copied.

// templateSkip lists template attributes that describe the template itself.
var templateSkip = map[string]bool{AttrName: true}

// resolveTemplates returns the attributes of the named templates of the
// tenant followed by the request's own, with single-instance attributes of
// the request overriding the templates'.
func (e *Engine) resolveTemplates(ctx context.Context, tenant string, names []string, attrs []Attribute) ([]Attribute, error) {
	if len(names) == 0 {
		return attrs, nil
	}
	given := map[string]bool{}
	for _, a := range attrs {
		if d := LookupAttr(a.Name); d != nil && !d.Multi {
			given[a.Name] = true
		}
	}
	var out []Attribute
	for _, n := range names {
		t, err := e.findTemplate(ctx, tenant, n)
		if err != nil {
			return nil, err
		}
		for _, name := range t.Attrs.Names() {
			d := LookupAttr(name)
			if d == nil || templateSkip[name] || given[name] || !d.ClientSettable() {
				continue
			}
			for _, in := range t.Attrs.Get(name) {
				out = append(out, Attribute{Name: name, Value: in.Value})
				if !d.Multi {
					given[name] = true
					break
				}
			}
		}
	}
	return append(out, attrs...), nil
}

func (e *Engine) findTemplate(ctx context.Context, tenant, name string) (*Object, error) {
	page, err := e.store.ListObjects(ctx, ObjectQuery{Tenant: tenant, Types: []ObjectType{TypeTemplate}, Name: name, Limit: 2})
	if err != nil {
		return nil, err
	}
	for _, so := range page {
		o, err := objectFromStored(so)
		if err != nil {
			return nil, err
		}
		if !o.State.Destroyed() {
			return o, nil
		}
	}
	return nil, errf(ErrNotFound, "no template named %q", name)
}

// registerTemplate stores a Template object: attributes, no material.
func (e *Engine) registerTemplate(ctx context.Context, p Principal, attrs []Attribute) (*Object, error) {
	now := e.now().UTC().Truncate(time.Second)
	o := e.newObject(p, TypeTemplate, now)
	if err := applyTemplate(o, attrs, now); err != nil {
		return nil, err
	}
	if len(o.Attrs.NameValues()) == 0 {
		return nil, errf(ErrMissingData, "a template needs a Name to be referenced by")
	}
	if o.Attrs.Count() > MaxAttributeInstances {
		return nil, errf(ErrLimit, "more than %d attribute instances", MaxAttributeInstances)
	}
	st, err := o.toStored()
	if err != nil {
		return nil, err
	}
	if err := e.store.CreateObject(ctx, st); err != nil {
		return nil, err
	}
	o.Seq = st.Seq
	e.cacheUpdated(o)
	return o, nil
}
