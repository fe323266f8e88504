package engine

import (
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"time"
)

// Instance is one value of an attribute with its KMIP Attribute Index.
// Indices start at 0 and never change when other instances come or go.
type Instance struct {
	Index int32
	Value any
}

// AttrSet holds an object's attributes, except the three that live on the
// object itself (Unique Identifier, Object Type, State). It keeps the order
// in which attribute names first appeared.
type AttrSet struct {
	order []string
	vals  map[string][]Instance
}

// NewAttrSet returns an empty set.
func NewAttrSet() *AttrSet { return &AttrSet{vals: map[string][]Instance{}} }

// Names returns the attribute names with at least one value, in order.
func (s *AttrSet) Names() []string {
	out := make([]string, 0, len(s.order))
	for _, n := range s.order {
		if len(s.vals[n]) > 0 {
			out = append(out, n)
		}
	}
	return out
}

// Get returns the instances of name (nil if none). The slice is a copy.
func (s *AttrSet) Get(name string) []Instance { return slices.Clone(s.vals[name]) }

// Has reports whether name has a value.
func (s *AttrSet) Has(name string) bool { return len(s.vals[name]) > 0 }

// First returns the value with the lowest index.
func (s *AttrSet) First(name string) (any, bool) {
	v := s.vals[name]
	if len(v) == 0 {
		return nil, false
	}
	return v[0].Value, true
}

// Count returns the total number of instances.
func (s *AttrSet) Count() int {
	n := 0
	for _, v := range s.vals {
		n += len(v)
	}
	return n
}

func (s *AttrSet) touch(name string) {
	if s.vals == nil {
		s.vals = map[string][]Instance{}
	}
	if _, ok := s.vals[name]; !ok {
		s.order = append(s.order, name)
		s.vals[name] = nil
	}
}

// Set makes v the only value of name (index 0).
func (s *AttrSet) Set(name string, v any) {
	s.touch(name)
	s.vals[name] = []Instance{{Index: 0, Value: v}}
}

// Add appends an instance and returns its index: one more than the highest
// index in use, so indices of deleted instances are not reused while higher
// ones live.
func (s *AttrSet) Add(name string, v any) int32 {
	s.touch(name)
	idx := int32(0)
	for _, in := range s.vals[name] {
		if in.Index >= idx {
			idx = in.Index + 1
		}
	}
	s.vals[name] = append(s.vals[name], Instance{Index: idx, Value: v})
	return idx
}

// Replace sets the value of the instance with the given index.
func (s *AttrSet) Replace(name string, idx int32, v any) error {
	for i, in := range s.vals[name] {
		if in.Index == idx {
			s.vals[name][i].Value = v
			return nil
		}
	}
	return ErrIndexOutOfBounds
}

// Delete removes the instance with the given index and returns its value.
func (s *AttrSet) Delete(name string, idx int32) (any, error) {
	for i, in := range s.vals[name] {
		if in.Index == idx {
			s.vals[name] = slices.Delete(s.vals[name], i, i+1)
			return in.Value, nil
		}
	}
	return nil, ErrIndexOutOfBounds
}

// Remove deletes every instance of name.
func (s *AttrSet) Remove(name string) {
	delete(s.vals, name)
	s.order = slices.DeleteFunc(s.order, func(n string) bool { return n == name })
}

// Clone returns a deep-enough copy: the instance slices are new; values are
// treated as immutable by the engine.
func (s *AttrSet) Clone() *AttrSet {
	c := &AttrSet{order: slices.Clone(s.order), vals: make(map[string][]Instance, len(s.vals))}
	for k, v := range s.vals {
		c.vals[k] = slices.Clone(v)
	}
	return c
}

// Typed accessors for the attributes the engine reasons about.

// Time returns a date attribute, or the zero time.
func (s *AttrSet) Time(name string) time.Time {
	v, _ := s.First(name)
	t, _ := v.(time.Time)
	return t
}

// Text returns a text attribute, or "".
func (s *AttrSet) Text(name string) string {
	v, _ := s.First(name)
	t, _ := v.(string)
	return t
}

// Algorithm returns the Cryptographic Algorithm, or 0.
func (s *AttrSet) Algorithm() Algorithm {
	v, _ := s.First(AttrCryptographicAlgorithm)
	a, _ := v.(Algorithm)
	return a
}

// Length returns the Cryptographic Length, or 0.
func (s *AttrSet) Length() int32 {
	v, _ := s.First(AttrCryptographicLength)
	l, _ := v.(int32)
	return l
}

// UsageMask returns the Cryptographic Usage Mask, or 0.
func (s *AttrSet) UsageMask() UsageMask {
	v, _ := s.First(AttrCryptographicUsageMask)
	m, _ := v.(UsageMask)
	return m
}

// Strings returns the values of a multi-instance text attribute.
func (s *AttrSet) Strings(name string) []string {
	var out []string
	for _, in := range s.vals[name] {
		if t, ok := in.Value.(string); ok {
			out = append(out, t)
		}
	}
	return out
}

// NameValues returns the values of every Name.
func (s *AttrSet) NameValues() []string {
	var out []string
	for _, in := range s.vals[AttrName] {
		if n, ok := in.Value.(Name); ok {
			out = append(out, n.NameValue)
		}
	}
	return out
}

// Links returns every Link.
func (s *AttrSet) Links() []Link {
	var out []Link
	for _, in := range s.vals[AttrLink] {
		if l, ok := in.Value.(Link); ok {
			out = append(out, l)
		}
	}
	return out
}

// jsonAttr is the stored form of one attribute.
type jsonAttr struct {
	N string         `json:"n"`
	I []jsonInstance `json:"i"`
}

type jsonInstance struct {
	X int32           `json:"x"`
	V json.RawMessage `json:"v"`
}

// MarshalJSON encodes the set for the store. Values are not secret.
func (s *AttrSet) MarshalJSON() ([]byte, error) {
	out := make([]jsonAttr, 0, len(s.order))
	for _, n := range s.order {
		ins := s.vals[n]
		if len(ins) == 0 {
			continue
		}
		ja := jsonAttr{N: n, I: make([]jsonInstance, len(ins))}
		for i, in := range ins {
			raw, err := json.Marshal(in.Value)
			if err != nil {
				return nil, fmt.Errorf("encode attribute %q: %w", n, err)
			}
			ja.I[i] = jsonInstance{X: in.Index, V: raw}
		}
		out = append(out, ja)
	}
	return json.Marshal(out)
}

// UnmarshalJSON decodes the stored form, typing each value by its
// attribute's definition.
func (s *AttrSet) UnmarshalJSON(b []byte) error {
	var in []jsonAttr
	if err := json.Unmarshal(b, &in); err != nil {
		return err
	}
	s.order = s.order[:0]
	s.vals = make(map[string][]Instance, len(in))
	for _, ja := range in {
		d := LookupAttr(ja.N)
		if d == nil {
			return fmt.Errorf("stored attribute %q is unknown", ja.N)
		}
		s.touch(ja.N)
		for _, ji := range ja.I {
			p := reflect.New(d.Type)
			if err := json.Unmarshal(ji.V, p.Interface()); err != nil {
				return fmt.Errorf("decode attribute %q: %w", ja.N, err)
			}
			s.vals[ja.N] = append(s.vals[ja.N], Instance{Index: ji.X, Value: p.Elem().Interface()})
		}
	}
	return nil
}
