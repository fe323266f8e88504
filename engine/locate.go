package engine

import (
	"context"
	"reflect"
	"slices"
	"time"
)

// LocateRequest selects objects of the caller's tenant.
type LocateRequest struct {
	Attrs []Attribute
	// MaxItems caps the identifiers returned; 0 means no cap.
	MaxItems int32
	// Offset skips that many matches first.
	Offset int32
	// StorageStatusMask: bit 0x1 on-line, 0x2 archived; 0 means on-line.
	StorageStatusMask uint32
	// GroupMember: 0 none, 1 Fresh, 2 Default (KMIP Object Group Member).
	// Both select the fresh objects (never served by Get), oldest first, so
	// successive Locate+Get calls hand out a group's members in turn; when
	// no member is fresh any more, Default falls back to every member,
	// oldest first (KMIP 1.4 §4.9).
	GroupMember uint32
	// WantTotal asks for the count of all matches (Located Items).
	WantTotal bool
}

// LocateResult lists matches newest first.
type LocateResult struct {
	IDs   []string
	Total int32
}

// locatePage is how many objects Locate reads from the store at a time.
const locatePage = 512

// Locate finds objects matching every attribute in the request, newest
// first (KMIP 1.4 §4.9). Destroyed objects match only when the request
// names a destroyed State. Other tenants' objects are never read.
func (e *Engine) Locate(ctx context.Context, p Principal, req LocateRequest) (LocateResult, error) {
	var res LocateResult
	if err := authorize(p, OpLocate); err != nil {
		return res, err
	}
	if req.MaxItems < 0 || req.Offset < 0 {
		return res, errf(ErrInvalidField, "Maximum Items and Offset Items cannot be negative")
	}
	f, err := compileFilter(req.Attrs)
	if err != nil {
		return res, err
	}
	if req.StorageStatusMask != 0 && req.StorageStatusMask&0x1 == 0 {
		// Only archived objects asked for; nothing is archived.
		return res, nil
	}
	q := ObjectQuery{Tenant: p.Tenant, Types: f.types, States: storedStates(f.states), Name: f.name, Group: f.group, Limit: locatePage}
	now := e.now()
	if req.GroupMember != 0 {
		return e.locateGroupMember(ctx, q, f, req, now)
	}
	skip := req.Offset
	for {
		page, err := e.store.ListObjects(ctx, q)
		if err != nil {
			return res, err
		}
		for _, so := range page {
			o, err := objectFromStored(so)
			if err != nil {
				e.log.Error("locate: undecodable object skipped", "object", so.ID, "err", err)
				continue
			}
			if !f.match(o, now) {
				continue
			}
			res.Total++
			if skip > 0 {
				skip--
				continue
			}
			if req.MaxItems == 0 || int32(len(res.IDs)) < req.MaxItems {
				res.IDs = append(res.IDs, o.ID)
			} else if !req.WantTotal {
				return res, nil
			}
		}
		if len(page) == 0 {
			return res, nil
		}
		q.BeforeSeq = page[len(page)-1].Seq
	}
}

// storedStates widens requested (effective) states to the stored states
// that can have become them by date: a stored Pre-Active key whose
// Activation Date passed is Active now.
func storedStates(want []State) []State {
	var out []State
	for _, s := range want {
		switch s {
		case StateActive:
			out = append(out, StatePreActive, StateActive)
		case StateDeactivated:
			out = append(out, StatePreActive, StateActive, StateDeactivated)
		default:
			out = append(out, s)
		}
	}
	return out
}

// locateGroupMember serves Object Group Member Fresh and Default.
func (e *Engine) locateGroupMember(ctx context.Context, q ObjectQuery, f *filter, req LocateRequest, now time.Time) (LocateResult, error) {
	var all, fresh []string
	for {
		page, err := e.store.ListObjects(ctx, q)
		if err != nil {
			return LocateResult{}, err
		}
		for _, so := range page {
			o, err := objectFromStored(so)
			if err != nil {
				e.log.Error("locate: undecodable object skipped", "object", so.ID, "err", err)
				continue
			}
			if !f.match(o, now) {
				continue
			}
			all = append(all, o.ID)
			if boolAttr(o.Attrs, AttrFresh) {
				fresh = append(fresh, o.ID)
			}
		}
		if len(page) == 0 {
			break
		}
		q.BeforeSeq = page[len(page)-1].Seq
	}
	if len(fresh) > 0 || req.GroupMember == 1 {
		all = fresh
	}
	slices.Reverse(all)
	res := LocateResult{Total: int32(len(all))}
	if int(req.Offset) >= len(all) {
		return res, nil
	}
	all = all[req.Offset:]
	if req.MaxItems > 0 && int(req.MaxItems) < len(all) {
		all = all[:req.MaxItems]
	}
	res.IDs = all
	return res, nil
}

type dateRange struct{ from, to time.Time }

type filter struct {
	types        []ObjectType
	states       []State
	name         string
	group        string
	wantDestroy  bool
	attrs        []Attribute
	dates        map[string]dateRange
	ids          []string
	usageMask    UsageMask
	hasUsageMask bool
}

func compileFilter(attrs []Attribute) (*filter, error) {
	if len(attrs) > MaxAttributeInstances {
		return nil, errf(ErrLimit, "more than %d attributes", MaxAttributeInstances)
	}
	f := &filter{dates: map[string]dateRange{}}
	dates := map[string][]time.Time{}
	var names, groups []string
	for _, a := range attrs {
		d := LookupAttr(a.Name)
		if d == nil {
			return nil, errf(ErrInvalidField, "unknown attribute %q", a.Name)
		}
		if a.Value == nil || reflect.TypeOf(a.Value) != d.Type {
			return nil, errf(ErrInvalidField, "attribute %q has a value of the wrong type", a.Name)
		}
		switch v := a.Value.(type) {
		case time.Time:
			dates[a.Name] = append(dates[a.Name], v)
			continue
		case ObjectType:
			f.types = append(f.types, v)
		case State:
			f.states = append(f.states, v)
			if v.Destroyed() {
				f.wantDestroy = true
			}
		case string:
			switch a.Name {
			case AttrUniqueIdentifier:
				f.ids = append(f.ids, v)
				continue
			case AttrObjectGroup:
				groups = append(groups, v)
			}
		case Name:
			names = append(names, v.NameValue)
		case UsageMask:
			f.usageMask |= v
			f.hasUsageMask = true
			continue
		}
		f.attrs = append(f.attrs, a)
	}
	for n, ds := range dates {
		switch len(ds) {
		case 1:
			f.dates[n] = dateRange{ds[0], ds[0]}
		case 2:
			lo, hi := ds[0], ds[1]
			if hi.Before(lo) {
				lo, hi = hi, lo
			}
			f.dates[n] = dateRange{lo, hi}
		default:
			return nil, errf(ErrInvalidField, "%q is given more than twice", n)
		}
	}
	if len(f.types) > 1 {
		// Every filter must match: two different types match nothing.
		f.types = slices.Compact(f.types)
	}
	if len(names) == 1 {
		f.name = names[0]
	}
	if len(groups) == 1 {
		f.group = groups[0]
	}
	return f, nil
}

func (f *filter) match(o *Object, now time.Time) bool {
	st := o.EffectiveState(now)
	if st.Destroyed() && !f.wantDestroy {
		return false
	}
	for _, id := range f.ids {
		if o.ID != id {
			return false
		}
	}
	if f.hasUsageMask {
		m := o.Attrs.UsageMask()
		if !o.Attrs.Has(AttrCryptographicUsageMask) || m&f.usageMask != f.usageMask {
			return false
		}
	}
	for n, r := range f.dates {
		t := o.Attrs.Time(n)
		if t.IsZero() || t.Before(r.from) || t.After(r.to) {
			return false
		}
	}
	for _, a := range f.attrs {
		switch v := a.Value.(type) {
		case ObjectType:
			if o.Type != v {
				return false
			}
			continue
		case State:
			if !o.Type.Cryptographic() || st != v {
				return false
			}
			continue
		}
		if !hasMatchingInstance(o.Attrs.Get(a.Name), a.Value) {
			return false
		}
	}
	return true
}

func hasMatchingInstance(ins []Instance, want any) bool {
	for _, in := range ins {
		if valueMatches(in.Value, want) {
			return true
		}
	}
	return false
}

func valueMatches(have, want any) bool {
	switch w := want.(type) {
	case Name:
		h, ok := have.(Name)
		return ok && h.NameValue == w.NameValue && (w.NameType == 0 || h.NameType == w.NameType)
	case ApplicationSpecificInformation:
		h, ok := have.(ApplicationSpecificInformation)
		return ok && h.ApplicationNamespace == w.ApplicationNamespace && (w.ApplicationData == "" || h.ApplicationData == w.ApplicationData)
	case Item:
		h, ok := have.(Item)
		return ok && itemEqual(h, w)
	}
	return reflect.DeepEqual(have, want)
}

// itemEqual compares custom values by type and content, ignoring tags of
// the top level (clients send the value under Attribute Value).
func itemEqual(a, b Item) bool {
	a.Tag, b.Tag = 0, 0
	if a.Kind == KindDateTime {
		return a.Time.Equal(b.Time)
	}
	if a.Kind == KindBigInteger {
		return a.Big != nil && b.Big != nil && a.Big.Cmp(b.Big) == 0
	}
	return reflect.DeepEqual(a, b)
}
