package oasis

import (
	"bytes"
	"fmt"
	"maps"
	"math/big"
	"strings"
	"time"

	"github.com/ovh/kmip-go"
	"github.com/ovh/kmip-go/ttlv"
)

// comparer compares one expected response (an element tree from the
// vector) with one actual response (a generic ttlv tree) under the
// tolerances of the package comment. Bindings made while comparing are
// kept in the comparer and reach the run state only through commit, so that
// trial comparisons (matching unordered lists) can be thrown away.
type comparer struct {
	st       *runState
	sent     time.Time // when the request left
	received time.Time // when the response arrived
	bind     map[string]any
	echoes   map[string]any
	diffs    []Diff
	notes    []string
}

func newComparer(st *runState, sent, received time.Time) *comparer {
	return &comparer{
		st:       st,
		sent:     sent,
		received: received,
		bind:     maps.Clone(st.bindings),
		echoes:   maps.Clone(st.echoes),
	}
}

// fork returns a comparer for a trial comparison.
func (c *comparer) fork() *comparer {
	return &comparer{
		st:       c.st,
		sent:     c.sent,
		received: c.received,
		bind:     maps.Clone(c.bind),
		echoes:   maps.Clone(c.echoes),
	}
}

// adopt takes over the outcome of a trial comparison.
func (c *comparer) adopt(t *comparer) {
	c.bind, c.echoes = t.bind, t.echoes
	c.diffs = append(c.diffs, t.diffs...)
	c.notes = append(c.notes, t.notes...)
}

// commit stores the bindings of a step that passed.
func (c *comparer) commit() {
	c.st.bindings, c.st.echoes = c.bind, c.echoes
}

func (c *comparer) diff(path string, exp *element, expected, actual, reason string) {
	d := Diff{Path: path, Expected: expected, Actual: actual, Reason: reason}
	if exp != nil {
		d.Line = exp.Line
	}
	c.diffs = append(c.diffs, d)
}

func (c *comparer) note(format string, args ...any) {
	c.notes = append(c.notes, fmt.Sprintf(format, args...))
}

// cmpCtx is what the comparison knows at one point of the tree.
type cmpCtx struct {
	it      *itemContext // batch item being compared, nil in the header
	attrTag int          // tag naming the values of an AttributeValue
	// random marks values that are a function of randomness the server
	// chose: compared by type, and by length when fixedLen.
	random   bool
	fixedLen bool
	// randomTags lists tags whose values (whole subtrees for structures)
	// are random in the sense above.
	randomTags map[int]bool
}

// enter returns the context for child e.
func (cx cmpCtx) enter(e *element) cmpCtx {
	next := cx
	next.attrTag = 0
	if cx.randomTags[e.Tag] {
		next.random = true
	}
	return next
}

// value compares one expected element with the actual value at the same place.
func (c *comparer) value(path string, e *element, a ttlv.Value, cx cmpCtx) {
	if e.Tag != a.Tag {
		c.diff(path, e, e.label(), ttlv.TagString(a.Tag), "different field")
		return
	}
	if e.Type == ttlv.TypeStructure {
		st, ok := a.Value.(ttlv.Struct)
		if !ok {
			c.diff(path, e, "Structure", ttlvTypeOf(a.Value).String(), "type differs")
			return
		}
		switch e.Tag {
		case kmip.TagAttribute:
			c.attribute(path, e, st, cx)
		case kmip.TagTemplateAttribute, kmip.TagCommonTemplateAttribute, kmip.TagPrivateKeyTemplateAttribute,
			kmip.TagPublicKeyTemplateAttribute, kmip.TagTemplate:
			c.attributeContainer(path, e, st, cx, attrPolicy{})
		default:
			c.ordered(path, e, st, cx, nil)
		}
		return
	}
	c.leaf(path, e, a, cx)
}

// ordered compares a structure whose fields have a defined order, as most
// KMIP structures do. extra, when not nil, accepts actual fields that the
// expected structure does not have.
func (c *comparer) ordered(path string, e *element, act ttlv.Struct, cx cmpCtx, extra func(ttlv.Value) bool) {
	c.orderedWith(path, e.Children, act, extra, func(p string, ec *element, ac ttlv.Value) {
		c.value(p, ec, ac, cx.enter(ec))
	})
}

// orderedWith matches expected children to actual children in order, by
// tag, and calls each for every matched pair.
func (c *comparer) orderedWith(path string, exp []*element, act ttlv.Struct, extra func(ttlv.Value) bool, each func(string, *element, ttlv.Value)) {
	labels := childLabels(exp)
	j := 0
	for i, e := range exp {
		k := -1
		for x := j; x < len(act); x++ {
			if act[x].Tag == e.Tag {
				k = x
				break
			}
		}
		p := join(path, labels[i])
		if k < 0 {
			reason := "missing"
			for x := range act {
				if act[x].Tag == e.Tag {
					reason = "missing here (present earlier: fields out of order)"
					break
				}
			}
			c.diff(p, e, describeElement(e), "nothing", reason)
			continue
		}
		for x := j; x < k; x++ {
			c.unexpected(path, act, x, extra)
		}
		each(p, e, act[k])
		j = k + 1
	}
	for x := j; x < len(act); x++ {
		c.unexpected(path, act, x, extra)
	}
}

func (c *comparer) unexpected(path string, act ttlv.Struct, x int, extra func(ttlv.Value) bool) {
	if extra != nil && extra(act[x]) {
		return
	}
	c.diff(join(path, actualLabel(act, x)), nil, "nothing", describeValue(act[x], 0), "unexpected field")
}

// leaf compares a scalar.
func (c *comparer) leaf(path string, e *element, a ttlv.Value, cx cmpCtx) {
	nameTag := valueTag(e, cx.attrTag)
	if got := ttlvTypeOf(a.Value); got != e.Type {
		c.diff(path, e, describeElement(e), describeValue(a, nameTag), "type differs")
		return
	}
	if name := placeholderName(e.Value); name != "" {
		if off, ok := nowOffset(name); ok && e.Type == ttlv.TypeDateTime {
			c.nowValue(path, e, off, a)
			return
		}
		c.placeholder(path, e, name, a, nameTag)
		return
	}
	if cx.random {
		c.randomValue(path, e, a, cx.fixedLen)
		return
	}
	switch e.Type {
	case ttlv.TypeDateTime:
		t, err := parseLiteral(e.Type, e.Value, nameTag)
		if err != nil {
			c.diff(path, e, e.Value, describeValue(a, nameTag), err.Error())
			return
		}
		if !c.st.sentDates[t.(time.Time).Unix()] {
			// Not a date the client sent: the reference server's
			// clock, or a date it computed from its clock.
			c.echoes[echoKey(e.Type, e.Value)] = a.Value
			return
		}
	case ttlv.TypeTextString:
		if identifierTags[e.Tag] && !c.st.sentTexts[collapseSpaces(e.Value)] {
			// A literal identifier the client never sent is the
			// reference server's choice: a placeholder without a name.
			c.placeholder(path, e, literalIDPrefix+e.Value, a, nameTag)
			c.echoes[echoKey(e.Type, e.Value)] = a.Value
			return
		}
	}
	raw := e.Value
	if e.Type == ttlv.TypeTextString {
		raw = collapseSpaces(raw)
	}
	want, err := parseLiteral(e.Type, raw, nameTag)
	if err != nil {
		c.diff(path, e, e.Value, describeValue(a, nameTag), "vector value unreadable: "+err.Error())
		return
	}
	if !equalValues(want, a.Value) {
		c.diff(path, e, describeScalar(want, e.Tag, nameTag), describeValue(a, nameTag), "")
	}
}

// literalIDPrefix names the binding of a literal identifier of the vector.
const literalIDPrefix = "literal identifier "

// identifierTags are the fields that carry identifiers the server assigns.
var identifierTags = map[int]bool{
	kmip.TagUniqueIdentifier:           true,
	kmip.TagPrivateKeyUniqueIdentifier: true,
	kmip.TagPublicKeyUniqueIdentifier:  true,
	kmip.TagLinkedObjectIdentifier:     true,
}

// placeholder binds name to the actual value on first sight and checks it
// at later sights.
func (c *comparer) placeholder(path string, e *element, name string, a ttlv.Value, nameTag int) {
	if bound, ok := c.bind[name]; ok {
		if !equalValues(bound, a.Value) {
			want := fmt.Sprintf("$%s = %s", name, describeScalar(bound, e.Tag, nameTag))
			reason := "placeholder bound earlier to another value"
			if ref, ok := strings.CutPrefix(name, literalIDPrefix); ok {
				want = fmt.Sprintf("%s (this server's identifier for the reference server's %q)", describeScalar(bound, e.Tag, nameTag), ref)
				reason = "identifier bound earlier to another value"
			}
			c.diff(path, e, want, describeValue(a, nameTag), reason)
		}
		return
	}
	if isIdentifierPlaceholder(name) {
		for other, v := range c.bind {
			if other != name && isIdentifierPlaceholder(other) && equalValues(v, a.Value) {
				c.diff(path, e, fmt.Sprintf("a new identifier for $%s", name), describeValue(a, nameTag),
					fmt.Sprintf("already returned for $%s", other))
				return
			}
		}
	}
	c.bind[name] = a.Value
}

func isIdentifierPlaceholder(name string) bool {
	return strings.HasPrefix(name, "UNIQUE_IDENTIFIER")
}

// nowValue checks a $NOW±off date: it must lie between the start of the
// run and the arrival of the response, shifted by off, give or take the
// allowed clock skew.
func (c *comparer) nowValue(path string, e *element, off int64, a ttlv.Value) {
	t := a.Value.(time.Time)
	shift := time.Duration(off) * time.Second
	skew := c.st.opts.skew()
	lo := c.st.now.Add(shift - skew)
	hi := c.received.Add(shift + skew)
	if t.Before(lo) || t.After(hi) {
		c.diff(path, e, fmt.Sprintf("$%s (between %s and %s)", e.Value[1:], lo.UTC().Format(time.RFC3339), hi.UTC().Format(time.RFC3339)),
			t.UTC().Format(time.RFC3339), "date outside the allowed window")
	}
}

// randomValue compares a value the server derived from its own randomness:
// type (already checked) and, when fixed, length.
func (c *comparer) randomValue(path string, e *element, a ttlv.Value, fixedLen bool) {
	if fixedLen {
		if got, ok := a.Value.([]byte); ok {
			if want, err := parseLiteral(e.Type, e.Value, 0); err == nil {
				if wb := want.([]byte); len(wb) != len(got) {
					c.diff(path, e, fmt.Sprintf("%d bytes", len(wb)), fmt.Sprintf("%d bytes", len(got)),
						"length of a server-random value differs")
					return
				}
			}
		}
	}
	c.echoes[echoKey(e.Type, e.Value)] = a.Value
}

// equalValues compares two scalars as held by ttlv.Value.
func equalValues(x, y any) bool {
	switch xv := x.(type) {
	case []byte:
		yv, ok := y.([]byte)
		return ok && bytes.Equal(xv, yv)
	case *big.Int:
		yv, ok := y.(*big.Int)
		return ok && xv != nil && yv != nil && xv.Cmp(yv) == 0
	case time.Time:
		yv, ok := y.(time.Time)
		return ok && xv.Unix() == yv.Unix()
	}
	return x == y
}

// join appends a label to a path.
func join(path, label string) string {
	if path == "" {
		return label
	}
	return path + "/" + label
}

// childLabels names the children of an expected structure for paths:
// the tag name, with an index when the tag repeats (BatchItem always).
func childLabels(children []*element) []string {
	count := map[int]int{}
	for _, c := range children {
		count[c.Tag]++
	}
	seen := map[int]int{}
	labels := make([]string, len(children))
	for i, c := range children {
		labels[i] = c.label()
		if count[c.Tag] > 1 || c.Tag == kmip.TagBatchItem {
			labels[i] = fmt.Sprintf("%s[%d]", c.label(), seen[c.Tag])
		}
		seen[c.Tag]++
	}
	return labels
}

// actualLabel names child x of an actual structure.
func actualLabel(act ttlv.Struct, x int) string {
	n, idx := 0, 0
	for i := range act {
		if act[i].Tag == act[x].Tag {
			if i < x {
				idx++
			}
			n++
		}
	}
	if n > 1 || act[x].Tag == kmip.TagBatchItem {
		return fmt.Sprintf("%s[%d]", ttlv.TagString(act[x].Tag), idx)
	}
	return ttlv.TagString(act[x].Tag)
}

// describeElement renders an expected element for a diff.
func describeElement(e *element) string {
	if e.Type == ttlv.TypeStructure {
		return e.label() + " (Structure)"
	}
	return fmt.Sprintf("%s %s", e.Type, abbreviate(e.Value))
}

// describeValue renders an actual value for a diff.
func describeValue(v ttlv.Value, nameTag int) string {
	if _, ok := v.Value.(ttlv.Struct); ok {
		return ttlv.TagString(v.Tag) + " (Structure)"
	}
	if nameTag == 0 {
		nameTag = v.Tag
	}
	return describeScalar(v.Value, v.Tag, nameTag)
}

// describeScalar renders a scalar with its type, naming enumerations.
func describeScalar(v any, tag, nameTag int) string {
	ty := ttlvTypeOf(v)
	switch x := v.(type) {
	case ttlv.Enum:
		return fmt.Sprintf("%s %s", ty, enumName(nameTag, uint32(x)))
	case int32:
		if mask := ttlv.AppendBitmaskString(nil, nameTag, x, " "); tag != 0 && len(mask) > 0 && !bytes.HasPrefix(mask, []byte("0x")) {
			return fmt.Sprintf("%s %d (%s)", ty, x, mask)
		}
		return fmt.Sprintf("%s %d", ty, x)
	case string:
		return fmt.Sprintf("%s %q", ty, x)
	case []byte:
		return fmt.Sprintf("%s %s (%d bytes)", ty, abbreviate(fmt.Sprintf("%X", x)), len(x))
	case time.Time:
		return fmt.Sprintf("%s %s", ty, x.UTC().Format(time.RFC3339))
	case time.Duration:
		return fmt.Sprintf("%s %ds", ty, int64(x/time.Second))
	case *big.Int:
		return fmt.Sprintf("%s %s", ty, abbreviate(x.Text(16)))
	}
	return fmt.Sprintf("%s %v", ty, v)
}
