package oasis

import (
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"

	"github.com/ovh/kmip-go"
	"github.com/ovh/kmip-go/ttlv"
)

// Limits on what one vector file may contain. They are far above anything in
// the OASIS corpus and exist so that a hostile or corrupt file fails cleanly
// instead of exhausting the stack or memory.
const (
	// maxVectorFileSize caps the bytes read from one vector file.
	maxVectorFileSize = 16 << 20
	// maxXMLDepth caps element nesting inside one message.
	maxXMLDepth = 64
	// maxPairs caps the request/response pairs of one vector.
	maxPairs = 4096
)

// element is one KMIP XML element exactly as written in a vector: its tag,
// its declared type and the raw value attribute. Values are interpreted
// later, once the element's context (for example the attribute name that
// governs an AttributeValue) is known.
type element struct {
	Name     string // XML element name, or "TTLV" for <TTLV tag="0x...">
	Tag      int
	Type     ttlv.Type
	Value    string // raw value attribute (leaves only)
	HasValue bool
	Line     int
	Children []*element
}

// label is the element's name for paths and messages.
func (e *element) label() string {
	if e.Name == "TTLV" || e.Name == "" {
		return ttlv.TagString(e.Tag)
	}
	return e.Name
}

// child returns the first child with the given tag, or nil.
func (e *element) child(tag int) *element {
	for _, c := range e.Children {
		if c.Tag == tag {
			return c
		}
	}
	return nil
}

// childrenWith returns every child with the given tag, in order.
func (e *element) childrenWith(tag int) []*element {
	var out []*element
	for _, c := range e.Children {
		if c.Tag == tag {
			out = append(out, c)
		}
	}
	return out
}

// typeNames maps the XML type attribute to the TTLV type.
var typeNames = func() map[string]ttlv.Type {
	m := make(map[string]ttlv.Type)
	for ty := ttlv.TypeStructure; ty <= ttlv.TypeInterval; ty++ {
		m[ty.String()] = ty
	}
	return m
}()

// tagCache memoizes tag-name lookups; the ttlv package only exposes name to
// tag resolution through its XML reader.
var tagCache sync.Map // string -> int

// tagByName returns the TTLV tag registered under name (for example
// "UniqueIdentifier"), or 0 when the name is unknown.
func tagByName(name string) int {
	if v, ok := tagCache.Load(name); ok {
		return v.(int)
	}
	tag := 0
	if isXMLName(name) {
		if dec, err := ttlv.NewXMLDecoder([]byte("<" + name + "/>")); err == nil {
			tag = dec.Tag()
		}
	}
	tagCache.Store(name, tag)
	return tag
}

// isXMLName reports whether s is a plain ASCII XML name, safe to splice into
// a probe document.
func isXMLName(s string) bool {
	if s == "" {
		return false
	}
	for i, r := range s {
		switch {
		case r >= 'A' && r <= 'Z', r >= 'a' && r <= 'z', r == '_':
		case i > 0 && (r >= '0' && r <= '9' || r == '-' || r == '.'):
		default:
			return false
		}
	}
	return true
}

// parseTag parses the tag attribute of a <TTLV> element ("0x42000A").
func parseTag(s string) (int, error) {
	if !strings.HasPrefix(s, "0x") && !strings.HasPrefix(s, "0X") {
		return 0, fmt.Errorf("tag %q is not hexadecimal", s)
	}
	v, err := strconv.ParseUint(s[2:], 16, 24)
	if err != nil {
		return 0, fmt.Errorf("tag %q: %w", s, err)
	}
	return int(v), nil
}

// lineCounter turns byte offsets of an XML document into line numbers.
type lineCounter struct {
	data []byte
	off  int64
	line int
}

func (lc *lineCounter) at(off int64) int {
	if off < lc.off {
		lc.off, lc.line = 0, 1
	}
	if lc.line == 0 {
		lc.line = 1
	}
	for ; lc.off < off && lc.off < int64(len(lc.data)); lc.off++ {
		if lc.data[lc.off] == '\n' {
			lc.line++
		}
	}
	return lc.line
}

// parseMessage parses one KMIP XML message (the text of a RequestMessage or
// ResponseMessage element) into an element tree. firstLine is the line of
// the message in its file, so that errors point into the file.
func parseMessage(text string, firstLine int) (*element, error) {
	dec := xml.NewDecoder(strings.NewReader(text))
	lc := &lineCounter{data: []byte(text)}
	for {
		tok, err := dec.Token()
		if err != nil {
			if errors.Is(err, io.EOF) {
				return nil, errors.New("no element found")
			}
			return nil, fmt.Errorf("line %d: %w", firstLine+lc.at(dec.InputOffset())-1, err)
		}
		if start, ok := tok.(xml.StartElement); ok {
			line := firstLine + lc.at(dec.InputOffset()) - 1
			root, err := parseElement(dec, start, line, 0, lc, firstLine)
			if err != nil {
				return nil, err
			}
			return root, nil
		}
	}
}

// parseElement reads the element opened by start, and its children, from
// dec. Character data between elements is ignored: vector files carry stray
// line numbers and "# TIME n" notes there.
func parseElement(dec *xml.Decoder, start xml.StartElement, line, depth int, lc *lineCounter, firstLine int) (*element, error) {
	if depth > maxXMLDepth {
		return nil, fmt.Errorf("line %d: elements nested deeper than %d", line, maxXMLDepth)
	}
	el := &element{Name: start.Name.Local, Line: line, Type: ttlv.TypeStructure}
	var typeAttr, tagAttr string
	hasType := false
	for _, a := range start.Attr {
		switch a.Name.Local {
		case "type":
			typeAttr, hasType = a.Value, true
		case "value":
			el.Value, el.HasValue = a.Value, true
		case "tag":
			tagAttr = a.Value
		}
	}
	if el.Name == "TTLV" {
		tag, err := parseTag(tagAttr)
		if err != nil {
			return nil, fmt.Errorf("line %d: %w", line, err)
		}
		el.Tag = tag
	} else {
		el.Tag = tagByName(el.Name)
		if el.Tag == 0 {
			return nil, fmt.Errorf("line %d: unknown KMIP tag <%s>", line, el.Name)
		}
	}
	if hasType {
		ty, ok := typeNames[typeAttr]
		if !ok {
			return nil, fmt.Errorf("line %d: <%s> has unknown type %q", line, el.Name, typeAttr)
		}
		el.Type = ty
	}
	if el.Type != ttlv.TypeStructure && !el.HasValue {
		return nil, fmt.Errorf("line %d: <%s type=%q> has no value attribute", line, el.Name, typeAttr)
	}
	for {
		tok, err := dec.Token()
		if err != nil {
			if errors.Is(err, io.EOF) {
				return nil, fmt.Errorf("line %d: <%s> is not closed", line, el.Name)
			}
			return nil, fmt.Errorf("line %d: %w", firstLine+lc.at(dec.InputOffset())-1, err)
		}
		switch t := tok.(type) {
		case xml.StartElement:
			childLine := firstLine + lc.at(dec.InputOffset()) - 1
			if el.Type != ttlv.TypeStructure {
				return nil, fmt.Errorf("line %d: <%s> of type %s has child elements", childLine, el.Name, el.Type)
			}
			c, err := parseElement(dec, t, childLine, depth+1, lc, firstLine)
			if err != nil {
				return nil, err
			}
			el.Children = append(el.Children, c)
		case xml.EndElement:
			return el, nil
		}
	}
}

// attributeTag returns the tag of the attribute called name ("Cryptographic
// Algorithm" -> CryptographicAlgorithm), used to interpret enumeration and
// bit mask names inside an AttributeValue. It returns 0 for custom (x-, y-)
// or unknown attributes.
func attributeTag(name string) int {
	if kmip.AttributeName(name).IsCustom() {
		return 0
	}
	var b strings.Builder
	for _, r := range name {
		switch r {
		case ' ':
		case '.', '#', '-':
			b.WriteByte('_')
		default:
			b.WriteRune(r)
		}
	}
	return tagByName(b.String())
}
