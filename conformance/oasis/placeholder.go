package oasis

import (
	"encoding/hex"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"math/big"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/ovh/kmip-go"
	"github.com/ovh/kmip-go/ttlv"
)

// valueAttr finds the value attribute inside the text of one start tag.
var valueAttr = regexp.MustCompile(`\bvalue\s*=\s*("[^"]*"|'[^']*')`)

// rewriteFrame is one open element while a request is rewritten.
type rewriteFrame struct {
	tag      int
	attrName string // value of the AttributeName child, for an Attribute
}

// valueRef describes one value attribute of a request being rewritten.
type valueRef struct {
	Name string    // placeholder name without '$', "" for a literal
	Raw  string    // value attribute as written
	Type ttlv.Type // declared type
	Tag  int       // element tag
}

// rewriteRequest returns the XML text of a request with value attributes
// replaced, everything else left byte for byte as written:
//
//   - value decides first: it returns the text for placeholders ("$NAME")
//     and may replace literals (a value the vector copied from an earlier
//     server answer); returning false keeps the value;
//   - runs of spaces inside TextString values are collapsed (see
//     collapseSpaces);
//   - symbolic Enumeration values and bit-mask Integers ("AES",
//     "Encrypt Decrypt") are written as numbers, resolved with the same
//     context-aware rules as the comparison (an AttributeValue takes the
//     names of its attribute). The kmip codec's XML reader only knows an
//     enumeration's names under its own tag and bit-mask names only in
//     typed fields, and a few spellings of the vectors differ from its
//     registry; numbers decode the same everywhere.
func rewriteRequest(text string, value func(valueRef) (string, bool, error)) (string, error) {
	dec := xml.NewDecoder(strings.NewReader(text))
	var (
		out   strings.Builder
		last  int64
		stack []rewriteFrame
	)
	for {
		before := dec.InputOffset()
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return "", err
		}
		switch t := tok.(type) {
		case xml.EndElement:
			if len(stack) > 0 {
				stack = stack[:len(stack)-1]
			}
			continue
		case xml.StartElement:
			if len(stack) > maxXMLDepth {
				return "", fmt.Errorf("elements nested deeper than %d", maxXMLDepth)
			}
			var raw, tyName, tagAttr string
			hasValue := false
			for _, a := range t.Attr {
				switch a.Name.Local {
				case "value":
					raw, hasValue = a.Value, true
				case "type":
					tyName = a.Value
				case "tag":
					tagAttr = a.Value
				}
			}
			tag := tagByName(t.Name.Local)
			if t.Name.Local == "TTLV" {
				tag, _ = parseTag(tagAttr)
			}
			attrTag := 0
			if n := len(stack); n > 0 {
				parent := &stack[n-1]
				if tag == kmip.TagAttributeName && parent.tag == kmip.TagAttribute {
					parent.attrName = collapseSpaces(raw)
				}
				if parent.tag == kmip.TagAttribute {
					attrTag = attributeTag(parent.attrName)
				}
			}
			stack = append(stack, rewriteFrame{tag: tag})
			if !hasValue {
				continue
			}
			ty, ok := typeNames[tyName]
			if !ok {
				return "", fmt.Errorf("<%s>: unknown type %q", t.Name.Local, tyName)
			}
			repl, replaced, err := value(valueRef{Name: placeholderName(raw), Raw: raw, Type: ty, Tag: tag})
			if err != nil {
				return "", fmt.Errorf("<%s>: %w", t.Name.Local, err)
			}
			if !replaced {
				nameTag := tag
				if tag == kmip.TagAttributeValue && attrTag != 0 {
					nameTag = attrTag
				}
				repl, replaced, err = normalForm(ty, raw, nameTag)
				if err != nil {
					return "", fmt.Errorf("<%s>: %w", t.Name.Local, err)
				}
			}
			if !replaced {
				continue
			}
			tagText := text[before:dec.InputOffset()]
			loc := valueAttr.FindStringSubmatchIndex(tagText)
			if loc == nil {
				return "", fmt.Errorf("<%s>: cannot locate the value attribute", t.Name.Local)
			}
			// loc[2]:loc[3] is the quoted value; keep the quotes.
			out.WriteString(text[last : before+int64(loc[2])+1])
			out.WriteString(repl)
			last = before + int64(loc[3]) - 1
		}
	}
	out.WriteString(text[last:])
	return out.String(), nil
}

// normalForm returns the text that replaces a literal value before the
// codec reads it, and false when raw is kept: numbers for symbolic
// Enumeration and bit-mask Integer values, single spaces in TextStrings.
func normalForm(ty ttlv.Type, raw string, nameTag int) (string, bool, error) {
	if ty == ttlv.TypeTextString {
		if c := collapseSpaces(raw); c != raw {
			s, err := formatXMLValue(c)
			return s, err == nil, err
		}
		return "", false, nil
	}
	return numericForm(ty, raw, nameTag)
}

// echoKey identifies a literal value of a vector independently of its
// spelling (hex case, time zone, runs of spaces).
func echoKey(ty ttlv.Type, raw string) string {
	canon := raw
	switch ty {
	case ttlv.TypeTextString:
		canon = collapseSpaces(raw)
	default:
		if v, err := parseLiteral(ty, raw, 0); err == nil {
			if s, err := formatXMLValue(v); err == nil {
				canon = s
			}
		}
	}
	return fmt.Sprintf("%d:%s", ty, canon)
}

// numericForm returns the numeric XML text of a symbolic Enumeration or
// bit-mask Integer value, and false when raw needs no rewriting.
func numericForm(ty ttlv.Type, raw string, nameTag int) (string, bool, error) {
	switch ty {
	case ttlv.TypeEnumeration:
		if strings.HasPrefix(raw, "0x") {
			return "", false, nil
		}
	case ttlv.TypeInteger:
		if _, err := parseSigned(raw, 32); err == nil {
			return "", false, nil
		}
	default:
		return "", false, nil
	}
	v, err := parseLiteral(ty, raw, nameTag)
	if err != nil {
		return "", false, err
	}
	s, err := formatXMLValue(v)
	return s, err == nil, err
}

// formatXMLValue renders a TTLV scalar as the value attribute text of the
// KMIP XML encoding, escaped for a double-quoted attribute.
func formatXMLValue(v any) (string, error) {
	switch x := v.(type) {
	case int32:
		return strconv.FormatInt(int64(x), 10), nil
	case int64:
		return strconv.FormatInt(x, 10), nil
	case *big.Int:
		return strings.ToUpper(hex.EncodeToString(bigToTwosComplement(x))), nil
	case ttlv.Enum:
		return fmt.Sprintf("0x%08X", uint32(x)), nil
	case bool:
		return strconv.FormatBool(x), nil
	case string:
		var b strings.Builder
		if err := xml.EscapeText(&b, []byte(x)); err != nil {
			return "", err
		}
		return b.String(), nil
	case []byte:
		return strings.ToUpper(hex.EncodeToString(x)), nil
	case time.Time:
		return x.UTC().Format(time.RFC3339), nil
	case time.Duration:
		return strconv.FormatInt(int64(x/time.Second), 10), nil
	}
	return "", fmt.Errorf("cannot write a %T as an XML value", v)
}

// ttlvTypeOf returns the TTLV type of a scalar held by a ttlv.Value.
func ttlvTypeOf(v any) ttlv.Type {
	switch v.(type) {
	case int32:
		return ttlv.TypeInteger
	case int64:
		return ttlv.TypeLongInteger
	case *big.Int:
		return ttlv.TypeBigInteger
	case ttlv.Enum:
		return ttlv.TypeEnumeration
	case bool:
		return ttlv.TypeBoolean
	case string:
		return ttlv.TypeTextString
	case []byte:
		return ttlv.TypeByteString
	case time.Time:
		return ttlv.TypeDateTime
	case time.Duration:
		return ttlv.TypeInterval
	case ttlv.Struct:
		return ttlv.TypeStructure
	}
	return 0
}

// bigToTwosComplement encodes v big-endian in two's complement, padded to a
// multiple of 8 bytes as TTLV requires.
func bigToTwosComplement(v *big.Int) []byte {
	if v == nil {
		return make([]byte, 8)
	}
	n := (v.BitLen() + 1 + 7) / 8 // room for the sign bit
	if n == 0 {
		n = 1
	}
	n = (n + 7) / 8 * 8
	out := make([]byte, n)
	if v.Sign() >= 0 {
		v.FillBytes(out)
		return out
	}
	m := new(big.Int).Add(new(big.Int).Lsh(big.NewInt(1), uint(n)*8), v)
	m.FillBytes(out)
	return out
}

// samplePlaceholder stands for a placeholder when a message is only being
// checked for well-formedness: any value of the element's type.
func samplePlaceholder(el *element, name string) (any, error) {
	if off, ok := nowOffset(name); ok {
		if el.Type != ttlv.TypeDateTime {
			return nil, fmt.Errorf("$%s in an element of type %s", name, el.Type)
		}
		return time.Unix(1700000000+off, 0).UTC(), nil
	}
	switch el.Type {
	case ttlv.TypeInteger:
		return int32(1), nil
	case ttlv.TypeLongInteger:
		return int64(1), nil
	case ttlv.TypeBigInteger:
		return big.NewInt(1), nil
	case ttlv.TypeEnumeration:
		return ttlv.Enum(1), nil
	case ttlv.TypeBoolean:
		return true, nil
	case ttlv.TypeTextString:
		return "placeholder-" + strings.ToLower(name), nil
	case ttlv.TypeByteString:
		return []byte{0xDE, 0xAD, 0xBE, 0xEF}, nil
	case ttlv.TypeDateTime:
		return time.Unix(1700000000, 0).UTC(), nil
	case ttlv.TypeInterval:
		return time.Hour, nil
	}
	return nil, fmt.Errorf("placeholder $%s in a %s", name, el.Type)
}
