package oasis

import (
	"encoding/hex"
	"fmt"
	"iter"
	"maps"
	"math/big"
	"strconv"
	"strings"
	"time"

	"github.com/ovh/kmip-go"
	"github.com/ovh/kmip-go/ttlv"
)

// placeholderName returns the name of the placeholder written as raw
// ("$UNIQUE_IDENTIFIER_0" -> "UNIQUE_IDENTIFIER_0", "$NOW-3600" ->
// "NOW-3600"), or "" when raw is a literal value.
func placeholderName(raw string) string {
	if len(raw) < 2 || raw[0] != '$' {
		return ""
	}
	for _, r := range raw[1:] {
		if !(r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '+' || r == '-') {
			return ""
		}
	}
	return raw[1:]
}

// nowOffset parses a "NOW", "NOW+n" or "NOW-n" placeholder name and returns
// the offset in seconds.
func nowOffset(name string) (int64, bool) {
	rest, ok := strings.CutPrefix(name, "NOW")
	if !ok {
		return 0, false
	}
	if rest == "" {
		return 0, true
	}
	if rest[0] != '+' && rest[0] != '-' {
		return 0, false
	}
	n, err := strconv.ParseInt(rest, 10, 64)
	if err != nil || n > 1e10 || n < -1e10 {
		return 0, false
	}
	return n, true
}

// valueTag returns the tag whose enumeration or bit mask names interpret the
// leaf el. Inside an Attribute, the AttributeValue takes the names of the
// attribute it carries (attrTag); everywhere else an element uses its own tag.
func valueTag(el *element, attrTag int) int {
	if el.Tag == kmip.TagAttributeValue && attrTag != 0 {
		return attrTag
	}
	return el.Tag
}

// parseLiteral interprets the raw value of a leaf element into the Go type a
// ttlv.Value of the same TTLV type holds (int32, int64, *big.Int, ttlv.Enum,
// bool, string, []byte, time.Time, time.Duration). nameTag names the
// enumeration or bit mask registry used to resolve symbolic values.
func parseLiteral(ty ttlv.Type, raw string, nameTag int) (any, error) {
	switch ty {
	case ttlv.TypeInteger:
		return parseInteger(raw, nameTag)
	case ttlv.TypeLongInteger:
		return parseSigned(raw, 64)
	case ttlv.TypeBigInteger:
		b, err := hex.DecodeString(raw)
		if err != nil {
			return nil, fmt.Errorf("BigInteger %q: %w", raw, err)
		}
		return bigFromTwosComplement(b), nil
	case ttlv.TypeEnumeration:
		return parseEnum(raw, nameTag)
	case ttlv.TypeBoolean:
		switch strings.ToLower(raw) {
		case "true", "0x0000000000000001", "1":
			return true, nil
		case "false", "0x0000000000000000", "0":
			return false, nil
		}
		return nil, fmt.Errorf("Boolean %q is neither true nor false", raw)
	case ttlv.TypeTextString:
		return raw, nil
	case ttlv.TypeByteString:
		b, err := hex.DecodeString(raw)
		if err != nil {
			return nil, fmt.Errorf("ByteString %q: %w", abbreviate(raw), err)
		}
		return b, nil
	case ttlv.TypeDateTime:
		if strings.HasPrefix(raw, "0x") {
			n, err := parseSigned(raw, 64)
			if err != nil {
				return nil, err
			}
			return time.Unix(n.(int64), 0).UTC(), nil
		}
		t, err := time.Parse(time.RFC3339, raw)
		if err != nil {
			return nil, fmt.Errorf("DateTime %q: %w", raw, err)
		}
		return t.UTC(), nil
	case ttlv.TypeInterval:
		n, err := parseUnsigned(raw, 32)
		if err != nil {
			return nil, fmt.Errorf("Interval %q: %w", raw, err)
		}
		return time.Duration(n) * time.Second, nil
	}
	return nil, fmt.Errorf("type %s has no scalar value", ty)
}

func parseSigned(raw string, bits int) (any, error) {
	var n int64
	if h, ok := strings.CutPrefix(raw, "0x"); ok {
		u, err := strconv.ParseUint(h, 16, bits)
		if err != nil {
			return nil, fmt.Errorf("integer %q: %w", raw, err)
		}
		n = int64(u)
		if bits == 32 {
			n = int64(int32(uint32(u)))
		}
	} else {
		v, err := strconv.ParseInt(raw, 10, bits)
		if err != nil {
			return nil, fmt.Errorf("integer %q: %w", raw, err)
		}
		n = v
	}
	if bits == 32 {
		return int32(n), nil
	}
	return n, nil
}

func parseUnsigned(raw string, bits int) (uint64, error) {
	if h, ok := strings.CutPrefix(raw, "0x"); ok {
		return strconv.ParseUint(h, 16, bits)
	}
	return strconv.ParseUint(raw, 10, bits)
}

// parseInteger reads an Integer, which the XML encoding also allows to be a
// bit mask written as names and hex values separated by spaces or '|'.
func parseInteger(raw string, nameTag int) (any, error) {
	if v, err := parseSigned(raw, 32); err == nil {
		return v, nil
	}
	parts := strings.FieldsFunc(raw, func(r rune) bool { return r == ' ' || r == '|' || r == '\t' })
	if len(parts) == 0 {
		return nil, fmt.Errorf("Integer %q is empty", raw)
	}
	var mask int32
	for _, p := range parts {
		if v, err := parseSigned(p, 32); err == nil {
			mask |= v.(int32)
			continue
		}
		bit, err := ttlv.BitmaskByStr(nameTag, p)
		if err != nil {
			return nil, fmt.Errorf("Integer %q: %q is not a number nor a %s mask name", raw, p, ttlv.TagString(nameTag))
		}
		mask |= bit
	}
	return mask, nil
}

// enumAliases maps tags whose values are another tag's enumeration, per
// the KMIP specification, to that tag: the codec registers the names only
// under the defining tag.
var enumAliases = map[int]int{
	kmip.TagMaskGeneratorHashingAlgorithm: kmip.TagHashingAlgorithm,
}

// parseEnum reads an Enumeration written as a name, a hex or a decimal
// value. A name is looked up under nameTag (or the tag whose enumeration it
// shares); when the exact spelling is unknown, a unique match ignoring case
// and underscores is accepted, because the vectors and the codec's
// registry normalize some specification names differently ("HASH" and
// "Hash", "PolynomialSharingGF2_8" and "PolynomialSharingGF28").
func parseEnum(raw string, nameTag int) (any, error) {
	if h, ok := strings.CutPrefix(raw, "0x"); ok {
		u, err := strconv.ParseUint(h, 16, 32)
		if err != nil {
			return nil, fmt.Errorf("Enumeration %q: %w", raw, err)
		}
		return ttlv.Enum(u), nil
	}
	if u, err := strconv.ParseUint(raw, 10, 32); err == nil {
		return ttlv.Enum(u), nil
	}
	if alias, ok := enumAliases[nameTag]; ok {
		nameTag = alias
	}
	if u, err := ttlv.EnumByName(nameTag, raw); err == nil {
		return ttlv.Enum(u), nil
	}
	want := foldName(raw)
	var (
		found   uint32
		matches int
	)
	for v, name := range enumNames(nameTag) {
		if foldName(name) == want {
			found = v
			matches++
		}
	}
	if matches == 1 {
		return ttlv.Enum(found), nil
	}
	return nil, fmt.Errorf("Enumeration %q is not a known %s value", raw, ttlv.TagString(nameTag))
}

// extraEnums are KMIP 1.4 enumerations the codec does not register, with
// their specification names (KMIP 1.4 section 9.1.3.2).
var extraEnums = map[int]map[uint32]string{
	kmip.TagDerivationMethod: {
		0x01: "PBKDF2",
		0x02: "HASH",
		0x03: "HMAC",
		0x04: "ENCRYPT",
		0x05: "NIST800_108_C",
		0x06: "NIST800_108_F",
		0x07: "NIST800_108_DPI",
		0x08: "AsymmetricKey",
	},
}

// enumNames iterates over the known values and names of an enumeration.
func enumNames(tag int) iter.Seq2[uint32, string] {
	if extra, ok := extraEnums[tag]; ok {
		return maps.All(extra)
	}
	return ttlv.EnumValuesByTag(tag)
}

// enumName returns the name of an enumeration value, or its hex form.
func enumName(tag int, v uint32) string {
	if alias, ok := enumAliases[tag]; ok {
		tag = alias
	}
	if extra, ok := extraEnums[tag]; ok {
		if n, ok := extra[v]; ok {
			return n
		}
	} else if n := ttlv.EnumName(tag, v); n != "" {
		return n
	}
	return fmt.Sprintf("0x%08X", v)
}

// foldName lower-cases a name and drops underscores, spaces and hyphens.
func foldName(s string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(s) {
		if r != '_' && r != ' ' && r != '-' {
			b.WriteRune(r)
		}
	}
	return b.String()
}

// bigFromTwosComplement decodes a big-endian two's complement integer.
func bigFromTwosComplement(b []byte) *big.Int {
	v := new(big.Int).SetBytes(b)
	if len(b) > 0 && b[0]&0x80 != 0 {
		v.Sub(v, new(big.Int).Lsh(big.NewInt(1), uint(len(b))*8))
	}
	return v
}

// abbreviate shortens long values (key material, ciphertexts) in messages.
func abbreviate(s string) string {
	const max = 48
	if len(s) <= max {
		return s
	}
	return s[:max-16] + "…" + s[len(s)-12:] + fmt.Sprintf(" (%d chars)", len(s))
}

// toValue converts an element tree into a generic ttlv.Value, resolving
// every placeholder with resolve. It is how the harness checks, at load
// time, that every message of a vector is well-formed KMIP.
func toValue(el *element, attrTag int, resolve func(el *element, name string) (any, error)) (ttlv.Value, error) {
	if el.Type == ttlv.TypeStructure {
		st := ttlv.Struct{}
		childAttrTag := 0
		if el.Tag == kmip.TagAttribute {
			if n := el.child(kmip.TagAttributeName); n != nil {
				childAttrTag = attributeTag(n.Value)
			}
		}
		for _, c := range el.Children {
			v, err := toValue(c, childAttrTag, resolve)
			if err != nil {
				return ttlv.Value{}, err
			}
			st = append(st, v)
		}
		return ttlv.Value{Tag: el.Tag, Value: st}, nil
	}
	if name := placeholderName(el.Value); name != "" {
		v, err := resolve(el, name)
		if err != nil {
			return ttlv.Value{}, fmt.Errorf("line %d: <%s>: %w", el.Line, el.label(), err)
		}
		return ttlv.Value{Tag: el.Tag, Value: v}, nil
	}
	v, err := parseLiteral(el.Type, el.Value, valueTag(el, attrTag))
	if err != nil {
		return ttlv.Value{}, fmt.Errorf("line %d: <%s>: %w", el.Line, el.label(), err)
	}
	return ttlv.Value{Tag: el.Tag, Value: v}, nil
}
