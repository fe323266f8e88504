package oasis

import (
	"fmt"
	"strings"

	"github.com/ovh/kmip-go"
	"github.com/ovh/kmip-go/ttlv"
)

// attrPolicy says which attributes of a list may differ from the vector.
type attrPolicy struct {
	extra   func(name string) bool // an actual attribute the vector lacks is fine
	missing func(name string) bool // an expected attribute may be absent
}

func anyName(string) bool { return true }

// optionalServerAttributes are the attributes KMIP 1.x lets a server set at
// its discretion ("SHALL always have a value: No", initially set by the
// server, no client action requires them): a correct server may never set
// them, so the reference server having them proves nothing.
var optionalServerAttributes = map[string]bool{
	"Lease Time":              true,
	"Fresh":                   true,
	"Original Creation Date":  true,
	"Random Number Generator": true,
	"Operation Policy Name":   true,
	"Usage Limits":            true,
}

// optionalAttr reports whether an expected attribute may be absent: it is
// optional for the server and the client did not set it on this object.
func optionalAttr(name string, obj *objectInfo) bool {
	return optionalServerAttributes[name] && (obj == nil || !obj.clientAttrs[name])
}

// generatedCertAttributes are the attributes of a certificate the server
// issued (Certify, ReCertify) that describe the issuing CA and the
// signature rather than the request: issuer names, serial number, length
// and signature algorithm depend on the server's CA.
var generatedCertAttributes = map[string]bool{
	"Certificate Identifier":       true,
	"Certificate Issuer":           true,
	"X.509 Certificate Identifier": true,
	"X.509 Certificate Issuer":     true,
	"Certificate Length":           true,
	"Digital Signature Algorithm":  true,
	"Digest":                       true,
}

// attributeName returns the collapsed AttributeName of an expected Attribute.
func attributeName(e *element) string {
	if n := e.child(kmip.TagAttributeName); n != nil {
		return collapseSpaces(n.Value)
	}
	return ""
}

// actualAttributeName returns the AttributeName of an actual Attribute.
func actualAttributeName(v ttlv.Value) string {
	st, _ := v.Value.(ttlv.Struct)
	if n := structChild(st, kmip.TagAttributeName); n != nil {
		s, _ := n.Value.(string)
		return s
	}
	return ""
}

// attribute compares one Attribute structure. An absent Attribute Index
// equals index 0 (KMIP 1.x §2.1.1). The AttributeValue is read with the
// enumeration and bit-mask names of the attribute it carries.
func (c *comparer) attribute(path string, e *element, act ttlv.Struct, cx cmpCtx) {
	name := attributeName(e)
	if n := structChild(act, kmip.TagAttributeName); n == nil {
		c.diff(path+"/AttributeName", e, fmt.Sprintf("%q", name), "nothing", "missing")
		return
	} else if s, _ := n.Value.(string); s != name {
		c.diff(path+"/AttributeName", e.child(kmip.TagAttributeName), fmt.Sprintf("%q", name), describeValue(*n, 0), "")
		return
	}
	expIdx, actIdx := int32(0), int32(0)
	if i := e.child(kmip.TagAttributeIndex); i != nil {
		if v, err := parseLiteral(i.Type, i.Value, kmip.TagAttributeIndex); err == nil {
			expIdx, _ = v.(int32)
		}
	}
	if i := structChild(act, kmip.TagAttributeIndex); i != nil {
		actIdx, _ = i.Value.(int32)
	}
	if expIdx != actIdx {
		c.diff(path+"/AttributeIndex", e, fmt.Sprint(expIdx), fmt.Sprint(actIdx), fmt.Sprintf("attribute %q", name))
	}
	ev, av := e.child(kmip.TagAttributeValue), structChild(act, kmip.TagAttributeValue)
	switch {
	case ev == nil && av == nil:
		return
	case ev == nil:
		c.diff(path+"/AttributeValue", e, "nothing", describeValue(*av, 0), fmt.Sprintf("attribute %q: unexpected value", name))
		return
	case av == nil:
		c.diff(path+"/AttributeValue", ev, describeElement(ev), "nothing", fmt.Sprintf("attribute %q: missing value", name))
		return
	}
	vcx := cx
	vcx.attrTag = attributeTag(name)
	if obj := itemObject(cx); obj != nil && obj.generated {
		switch {
		case kmip.ObjectType(obj.objectType) == kmip.ObjectTypeCertificate && generatedCertAttributes[name]:
			vcx.random, vcx.fixedLen = true, false
		case name == "Digest":
			// The digest of a random key is random; the format it
			// was computed from is the one the server keeps the key
			// in, its choice for a key it generated.
			vcx.randomTags = map[int]bool{kmip.TagDigestValue: true, kmip.TagKeyFormatType: true}
			vcx.fixedLen = true
		}
	}
	before := len(c.diffs)
	if ev.Type == ttlv.TypeStructure {
		c.value(path+"/AttributeValue", ev, *av, vcx)
	} else {
		c.leaf(path+"/AttributeValue", ev, *av, vcx)
	}
	for i := before; i < len(c.diffs); i++ {
		if c.diffs[i].Reason == "" {
			c.diffs[i].Reason = fmt.Sprintf("attribute %q", name)
		} else {
			c.diffs[i].Reason = fmt.Sprintf("attribute %q: %s", name, c.diffs[i].Reason)
		}
	}
}

func itemObject(cx cmpCtx) *objectInfo {
	if cx.it == nil {
		return nil
	}
	return cx.it.obj
}

// attributeContainer compares a structure holding a list of Attribute
// structures (Template-Attribute, Template): the order of the attributes is
// not significant; other fields keep their order.
func (c *comparer) attributeContainer(path string, e *element, act ttlv.Struct, cx cmpCtx, pol attrPolicy) {
	var expAttrs, expOther []*element
	for _, ec := range e.Children {
		if ec.Tag == kmip.TagAttribute {
			expAttrs = append(expAttrs, ec)
		} else {
			expOther = append(expOther, ec)
		}
	}
	var actAttrs, actOther ttlv.Struct
	for _, v := range act {
		if v.Tag == kmip.TagAttribute {
			actAttrs = append(actAttrs, v)
		} else {
			actOther = append(actOther, v)
		}
	}
	c.orderedWith(path, expOther, actOther, nil, func(p string, ec *element, ac ttlv.Value) {
		c.value(p, ec, ac, cx.enter(ec))
	})
	c.attributeSet(path, expAttrs, actAttrs, cx, pol)
}

// attributeSet matches expected Attribute structures to actual ones,
// ignoring order: each expected attribute takes the first unused actual
// attribute of the same name that compares equal.
func (c *comparer) attributeSet(path string, exp []*element, act ttlv.Struct, cx cmpCtx, pol attrPolicy) {
	used := make([]bool, len(act))
	for i, e := range exp {
		p := fmt.Sprintf("%s/Attribute[%d]", path, i)
		name := attributeName(e)
		var (
			first   *comparer
			firstK  = -1
			matched bool
		)
		for k := range act {
			if used[k] || actualAttributeName(act[k]) != name {
				continue
			}
			t := c.fork()
			t.value(p, e, act[k], cx)
			if len(t.diffs) == 0 {
				c.adopt(t)
				used[k], matched = true, true
				break
			}
			if first == nil {
				first, firstK = t, k
			}
		}
		if !matched {
			// The Attribute Index of an instance the server created (a
			// link it added, a name it carried over) is the server's
			// choice: match the value under any index before reporting.
			ne := withoutIndex(e)
			for k := range act {
				if used[k] || actualAttributeName(act[k]) != name {
					continue
				}
				t := c.fork()
				t.value(p, ne, withoutActualIndex(act[k]), cx)
				if len(t.diffs) == 0 {
					c.adopt(t)
					c.note("%s: attribute %q matched under another Attribute Index", p, name)
					used[k], matched = true, true
					break
				}
			}
		}
		switch {
		case matched:
		case first != nil:
			c.adopt(first)
			used[firstK] = true
		case pol.missing != nil && pol.missing(name):
			c.note("%s: attribute %q absent (optional for the server, not set by the client)", p, name)
		default:
			c.diff(p, e, fmt.Sprintf("attribute %q", name), "nothing", "missing attribute")
		}
	}
	for k := range act {
		if used[k] {
			continue
		}
		name := actualAttributeName(act[k])
		if pol.extra != nil && pol.extra(name) {
			continue
		}
		c.diff(fmt.Sprintf("%s/%s", path, actualLabel(act, k)), nil, "nothing", fmt.Sprintf("attribute %q", name), "unexpected attribute")
	}
}

// withoutIndex is an expected Attribute without its Attribute Index.
func withoutIndex(e *element) *element {
	c := *e
	c.Children = nil
	for _, ch := range e.Children {
		if ch.Tag != kmip.TagAttributeIndex {
			c.Children = append(c.Children, ch)
		}
	}
	return &c
}

// withoutActualIndex is an actual Attribute without its Attribute Index.
func withoutActualIndex(v ttlv.Value) ttlv.Value {
	st, ok := v.Value.(ttlv.Struct)
	if !ok {
		return v
	}
	out := make(ttlv.Struct, 0, len(st))
	for _, f := range st {
		if f.Tag != kmip.TagAttributeIndex {
			out = append(out, f)
		}
	}
	return ttlv.Value{Tag: v.Tag, Value: out}
}

// getAttributes compares a Get Attributes payload. Without attribute names
// in the request the server returns all the object's attributes, which may
// be more than the reference server had; with names, an attribute the vector
// lacks is accepted only if it was requested.
func (c *comparer) getAttributes(path string, e *element, act ttlv.Struct, it *itemContext) {
	requested := map[string]bool{}
	if it.payload != nil {
		for _, n := range it.payload.childrenWith(kmip.TagAttributeName) {
			requested[collapseSpaces(n.Value)] = true
		}
	}
	pol := attrPolicy{missing: func(name string) bool { return optionalAttr(name, it.obj) }}
	if len(requested) == 0 {
		pol.extra = anyName
	} else {
		pol.extra = func(name string) bool { return requested[name] }
	}
	c.attributeContainer(path, e, act, cmpCtx{it: it}, pol)
}

// getAttributeList compares a Get Attribute List payload: the names form a
// set, the server may list more, and an expected name may be missing only
// if the attribute is optional for the server.
func (c *comparer) getAttributeList(path string, e *element, act ttlv.Struct, it *itemContext) {
	var expNames, expOther []*element
	for _, ec := range e.Children {
		if ec.Tag == kmip.TagAttributeName {
			expNames = append(expNames, ec)
		} else {
			expOther = append(expOther, ec)
		}
	}
	have := map[string]bool{}
	var actOther ttlv.Struct
	for _, v := range act {
		if v.Tag != kmip.TagAttributeName {
			actOther = append(actOther, v)
			continue
		}
		s, ok := v.Value.(string)
		if !ok {
			c.diff(path+"/AttributeName", nil, "TextString", describeValue(v, 0), "type differs")
			continue
		}
		have[s] = true
	}
	c.orderedWith(path, expOther, actOther, nil, func(p string, ec *element, ac ttlv.Value) {
		c.value(p, ec, ac, cmpCtx{it: it}.enter(ec))
	})
	for i, n := range expNames {
		name := collapseSpaces(n.Value)
		p := fmt.Sprintf("%s/AttributeName[%d]", path, i)
		switch {
		case have[name]:
		case optionalAttr(name, it.obj):
			c.note("%s: attribute %q not listed (optional for the server, not set by the client)", p, name)
		default:
			c.diff(p, n, fmt.Sprintf("%q", name), "nothing", "missing attribute name")
		}
	}
}

// queryTags maps each Query Function to the response fields it asks for.
var queryTags = map[kmip.QueryFunction][]int{
	kmip.QueryFunctionOperations:                {kmip.TagOperation},
	kmip.QueryFunctionObjects:                   {kmip.TagObjectType},
	kmip.QueryFunctionServerInformation:         {kmip.TagVendorIdentification, kmip.TagServerInformation},
	kmip.QueryFunctionApplicationNamespaces:     {kmip.TagApplicationNamespace},
	kmip.QueryFunctionExtensionList:             {kmip.TagExtensionInformation},
	kmip.QueryFunctionExtensionMap:              {kmip.TagExtensionInformation},
	kmip.QueryFunctionAttestationTypes:          {kmip.TagAttestationType},
	kmip.QueryFunctionRNGs:                      {kmip.TagRNGParameters},
	kmip.QueryFunctionValidations:               {kmip.TagValidationInformation},
	kmip.QueryFunctionProfiles:                  {kmip.TagProfileInformation},
	kmip.QueryFunctionCapabilities:              {kmip.TagCapabilityInformation},
	kmip.QueryFunctionClientRegistrationMethods: {kmip.TagClientRegistrationMethod},
}

// query compares a Query payload. What a server supports is its own
// business, so the lists are not compared item by item; what is checked is
// the protocol: every returned field answers a requested Query Function and
// has the right type, Operations and Object Types are enumerations without
// duplicates and are not empty when the vector lists some, and a Vendor
// Identification is present when the vector has one.
func (c *comparer) query(path string, e *element, act ttlv.Struct, it *itemContext) {
	allowed := map[int]bool{}
	if it.payload != nil {
		for _, f := range it.payload.childrenWith(kmip.TagQueryFunction) {
			if v, err := parseEnum(f.Value, kmip.TagQueryFunction); err == nil {
				for _, tag := range queryTags[kmip.QueryFunction(v.(ttlv.Enum))] {
					allowed[tag] = true
				}
			}
		}
	}
	expType := map[int]ttlv.Type{}
	expCount := map[int]int{}
	for _, ec := range e.Children {
		expType[ec.Tag] = ec.Type
		expCount[ec.Tag]++
	}
	actCount := map[int]int{}
	seen := map[string]bool{}
	for k, v := range act {
		p := path + "/" + actualLabel(act, k)
		actCount[v.Tag]++
		if !allowed[v.Tag] {
			c.diff(p, nil, "nothing", describeValue(v, 0), "field not asked for by any requested Query Function")
			continue
		}
		ty := ttlvTypeOf(v.Value)
		if want, ok := expType[v.Tag]; ok && want != ty {
			c.diff(p, nil, want.String(), describeValue(v, 0), "type differs")
			continue
		}
		if v.Tag == kmip.TagOperation || v.Tag == kmip.TagObjectType {
			if ty != ttlv.TypeEnumeration {
				c.diff(p, nil, "Enumeration", describeValue(v, 0), "type differs")
				continue
			}
			key := fmt.Sprintf("%d:%v", v.Tag, v.Value)
			if seen[key] {
				c.diff(p, nil, "each value once", describeValue(v, 0), "duplicate")
			}
			seen[key] = true
		}
	}
	for _, tag := range []int{kmip.TagOperation, kmip.TagObjectType, kmip.TagVendorIdentification} {
		if expCount[tag] > 0 && actCount[tag] == 0 {
			c.diff(path+"/"+ttlv.TagString(tag), e.child(tag), fmt.Sprintf("at least one %s", ttlv.TagString(tag)), "nothing", "missing")
		}
	}
	for tag, n := range expCount {
		if actCount[tag] != n {
			c.note("%s: %d %s items where the reference server had %d (server capabilities differ)", path, actCount[tag], ttlv.TagString(tag), n)
		}
	}
}

// discoverVersions compares a Discover Versions payload. When the request
// lists no versions the server answers with all it supports, newest first;
// it may support more than the reference server did, so the expected
// versions must appear in the same relative order, others may be
// interleaved. When the request lists versions the answer is their
// intersection with the server's and is compared exactly.
func (c *comparer) discoverVersions(path string, e *element, act ttlv.Struct, it *itemContext) {
	if it.payload != nil && it.payload.child(kmip.TagProtocolVersion) != nil {
		c.ordered(path, e, act, cmpCtx{it: it}, nil)
		return
	}
	var want, got []string
	for _, pv := range e.childrenWith(kmip.TagProtocolVersion) {
		maj, mnr := pv.child(kmip.TagProtocolVersionMajor), pv.child(kmip.TagProtocolVersionMinor)
		if maj == nil || mnr == nil {
			c.diff(path, pv, "ProtocolVersion", "", "vector value unreadable")
			return
		}
		want = append(want, maj.Value+"."+mnr.Value)
	}
	for k, v := range act {
		st, ok := v.Value.(ttlv.Struct)
		maj, mnr := structChild(st, kmip.TagProtocolVersionMajor), structChild(st, kmip.TagProtocolVersionMinor)
		if v.Tag != kmip.TagProtocolVersion || !ok || maj == nil || mnr == nil {
			c.diff(path+"/"+actualLabel(act, k), nil, "ProtocolVersion", describeValue(v, 0), "unexpected field")
			return
		}
		got = append(got, fmt.Sprintf("%v.%v", maj.Value, mnr.Value))
	}
	j := 0
	for _, w := range want {
		for j < len(got) && got[j] != w {
			j++
		}
		if j == len(got) {
			c.diff(path, e, "versions including, in this order, "+strings.Join(want, ", "), strings.Join(got, ", "),
				fmt.Sprintf("version %s missing or out of order", w))
			return
		}
		j++
	}
	if len(got) > len(want) {
		c.note("%s: server supports %s (reference server: %s)", path, strings.Join(got, ", "), strings.Join(want, ", "))
	}
}

// rngSeed compares an RNG Seed payload. Data Length is how much of the
// seed the server accepted, which is its decision: any value from 0 to the
// length of the Data sent is correct.
func (c *comparer) rngSeed(path string, e *element, act ttlv.Struct, it *itemContext) {
	sent := -1
	if it.payload != nil {
		if d := it.payload.child(kmip.TagData); d != nil {
			if v, err := parseLiteral(d.Type, d.Value, kmip.TagData); err == nil {
				if b, ok := v.([]byte); ok {
					sent = len(b)
				}
			}
		}
	}
	c.orderedWith(path, e.Children, act, nil, func(p string, ec *element, ac ttlv.Value) {
		if ec.Tag != kmip.TagDataLength || sent < 0 {
			c.value(p, ec, ac, cmpCtx{it: it}.enter(ec))
			return
		}
		n, ok := ac.Value.(int32)
		if !ok || n < 0 || int(n) > sent {
			c.diff(p, ec, fmt.Sprintf("Integer between 0 and %d", sent), describeValue(ac, 0), "accepted seed length out of range")
		}
	})
}
