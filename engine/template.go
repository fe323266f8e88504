package engine

import (
	"context"
	"encoding/json"
	"fmt"
	"time"
)

// Server-side templates (KMIP 1.0–1.2; deprecated in 1.3): a Template
// object carries two attribute sets. Its own attributes (the Register
// request's Template-Attribute, plus any Name in the template's content)
// describe and name the template; its content (the Template object's
// attribute list, Names excepted) is what a Create or Register receives
// when it names the template. Request attributes are added after the
// template's and take precedence for single-instance attributes.
//
// The content is stored like any material: wrapped under the tenant key,
// as the JSON of an attribute set.

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
		content, err := e.templateContent(ctx, t)
		if err != nil {
			return nil, err
		}
		for _, name := range content.Names() {
			d := LookupAttr(name)
			if d == nil || given[name] || !d.ClientSettable() {
				continue
			}
			for _, in := range content.Get(name) {
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

// findTemplate returns the newest live template with the name.
func (e *Engine) findTemplate(ctx context.Context, tenant, name string) (*Object, error) {
	q := ObjectQuery{Tenant: tenant, Types: []ObjectType{TypeTemplate}, Name: name, Limit: 16}
	for {
		page, err := e.store.ListObjects(ctx, q)
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
		if len(page) == 0 {
			return nil, errf(ErrNotFound, "no template named %q", name)
		}
		q.BeforeSeq = page[len(page)-1].Seq
	}
}

// templateContent unwraps a template's content attributes.
func (e *Engine) templateContent(ctx context.Context, t *Object) (*AttrSet, error) {
	raw, err := e.unwrap(ctx, t)
	if err != nil {
		return nil, fmt.Errorf("template %s: %w", t.ID, err)
	}
	defer clear(raw)
	m, err := decodeMaterial(raw)
	if err != nil {
		return nil, fmt.Errorf("template %s: %w", t.ID, err)
	}
	set := NewAttrSet()
	if err := json.Unmarshal(m.Bytes, set); err != nil {
		return nil, fmt.Errorf("template %s content: %w", t.ID, err)
	}
	return set, nil
}

// TemplateContent returns the attributes a template gives the objects that
// name it.
func (e *Engine) TemplateContent(ctx context.Context, p Principal, id string) ([]Attribute, error) {
	if err := authorize(p, OpGet); err != nil {
		return nil, err
	}
	c, err := e.load(ctx, p.Tenant, id)
	if err != nil {
		return nil, err
	}
	if c.obj.Type != TypeTemplate {
		return nil, errf(ErrIllegalOperation, "object %s is not a template", id)
	}
	set, err := e.templateContent(ctx, c.obj)
	if err != nil {
		return nil, err
	}
	var out []Attribute
	for _, n := range set.Names() {
		for _, in := range set.Get(n) {
			i := in.Index
			out = append(out, Attribute{Name: n, Index: &i, Value: in.Value})
		}
	}
	return out, nil
}

// registerTemplate stores a Template object.
func (e *Engine) registerTemplate(ctx context.Context, p Principal, own, content []Attribute) (*Object, error) {
	now := e.now().UTC().Truncate(time.Second)
	o := e.newObject(p, TypeTemplate, now)
	body := &Object{Type: TypeTemplate, Attrs: NewAttrSet()}
	var rest []Attribute
	for _, a := range content {
		if a.Name == AttrName {
			own = append(own, a) // a Name in the content names the template
			continue
		}
		rest = append(rest, a)
	}
	if err := applyTemplate(o, own, now); err != nil {
		return nil, err
	}
	if err := applyTemplate(body, rest, now); err != nil {
		return nil, err
	}
	if len(o.Attrs.NameValues()) == 0 {
		return nil, errf(ErrMissingData, "a template needs a Name to be referenced by")
	}
	if o.Attrs.Count() > MaxAttributeInstances || body.Attrs.Count() > MaxAttributeInstances {
		return nil, errf(ErrLimit, "more than %d attribute instances", MaxAttributeInstances)
	}
	raw, err := json.Marshal(body.Attrs)
	if err != nil {
		return nil, err
	}
	if err := e.wrap(ctx, o, Material{Format: FormatRaw, Bytes: raw}); err != nil {
		return nil, err
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
