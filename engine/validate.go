package engine

import (
	"fmt"
	"reflect"
	"time"
	"unicode/utf8"
)

// Attribute is a named attribute value as a request carries it.
type Attribute struct {
	Name string
	// Index selects an instance (Modify, Delete); nil means 0 / unspecified.
	Index *int32
	Value any
}

// validateValue checks a client-supplied value against the attribute's
// definition: Go type, lengths, enumerations.
func validateValue(d *AttrDef, v any) error {
	if v == nil {
		return errf(ErrInvalidField, "attribute %q has no value", d.Name)
	}
	if reflect.TypeOf(v) != d.Type {
		return errf(ErrInvalidField, "attribute %q has a value of the wrong type", d.Name)
	}
	switch x := v.(type) {
	case string:
		return checkText(d.Name, x)
	case Name:
		if x.NameValue == "" {
			return errf(ErrInvalidField, "Name value is empty")
		}
		if x.NameType != 0 && x.NameType != NameUninterpretedText && x.NameType != NameURI {
			return errf(ErrInvalidField, "Name Type 0x%X is not defined", uint32(x.NameType))
		}
		return checkText(d.Name, x.NameValue)
	case Link:
		if x.LinkType < LinkCertificate || x.LinkType > LinkWrappingKey {
			return errf(ErrInvalidField, "Link Type 0x%X is not defined", uint32(x.LinkType))
		}
		if x.LinkedObjectIdentifier == "" {
			return errf(ErrInvalidField, "Link has no Linked Object Identifier")
		}
		return checkText(d.Name, x.LinkedObjectIdentifier)
	case ApplicationSpecificInformation:
		if err := checkText(d.Name, x.ApplicationNamespace); err != nil {
			return err
		}
		return checkText(d.Name, x.ApplicationData)
	case UsageMask:
		if uint32(x)&^uint32(0x000FFFFF) != 0 {
			return errf(ErrInvalidField, "Cryptographic Usage Mask has undefined bits set")
		}
	case Algorithm:
		if x == 0 || x > 0x28 {
			return errf(ErrInvalidField, "Cryptographic Algorithm 0x%X is not defined", uint32(x))
		}
	case int32:
		if x < 0 {
			return errf(ErrInvalidField, "attribute %q is negative", d.Name)
		}
	case time.Time:
		if x.IsZero() {
			return errf(ErrInvalidField, "attribute %q has no date", d.Name)
		}
	case CryptographicParameters:
		return validateCryptoParams(x)
	case UsageLimits:
		if x.UsageLimitsTotal <= 0 {
			return errf(ErrInvalidField, "Usage Limits Total must be positive")
		}
		if x.UsageLimitsUnit != 0 && x.UsageLimitsUnit != 1 && x.UsageLimitsUnit != 2 {
			return errf(ErrInvalidField, "Usage Limits Unit 0x%X is not defined", x.UsageLimitsUnit)
		}
	case Item:
		return checkItem(d.Name, &x, 0)
	}
	return nil
}

func checkText(name, s string) error {
	if len(s) > MaxTextLength {
		return errf(ErrLimit, "attribute %q is longer than %d bytes", name, MaxTextLength)
	}
	if !utf8.ValidString(s) {
		return errf(ErrInvalidField, "attribute %q is not valid UTF-8", name)
	}
	return nil
}

func checkItem(name string, it *Item, depth int) error {
	if depth > MaxItemDepth {
		return errf(ErrLimit, "attribute %q nests deeper than %d", name, MaxItemDepth)
	}
	switch it.Kind {
	case KindTextString:
		return checkText(name, it.Text)
	case KindByteString:
		if len(it.Bytes) > MaxBytesLength {
			return errf(ErrLimit, "attribute %q is longer than %d bytes", name, MaxBytesLength)
		}
	case KindBigInteger:
		if it.Big == nil || it.Big.BitLen() > 8*MaxBytesLength {
			return errf(ErrInvalidField, "attribute %q has an invalid big integer", name)
		}
	case KindStructure:
		if len(it.Fields) > MaxAttributeInstances {
			return errf(ErrLimit, "attribute %q has more than %d fields", name, MaxAttributeInstances)
		}
		for i := range it.Fields {
			if err := checkItem(name, &it.Fields[i], depth+1); err != nil {
				return err
			}
		}
	case KindInteger, KindLongInteger, KindEnumeration, KindBoolean, KindDateTime, KindInterval:
	default:
		return fmt.Errorf("%w: attribute %q has an unknown item type", ErrInvalidField, name)
	}
	return nil
}

func validateCryptoParams(p CryptographicParameters) error {
	if p.IVLength < 0 || p.TagLength < 0 || p.FixedFieldLength < 0 || p.InvocationFieldLength < 0 || p.CounterLength < 0 {
		return errf(ErrInvalidField, "Cryptographic Parameters has a negative length")
	}
	if len(p.PSource) > MaxBytesLength {
		return errf(ErrLimit, "P Source is too long")
	}
	return nil
}
