package pki

import (
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"fmt"
	"slices"
	"unicode/utf8"
)

// Arc is the root of miniKMS's custom certificate extensions (see the
// package documentation).
var Arc = asn1.ObjectIdentifier{1, 2, 840, 113556, 1, 8000, 2554, 15924, 30329, 3180, 18646, 39714, 8127371, 5406400}

// Extension identifiers.
var (
	OIDTenant = append(slices.Clone(Arc), 1)
	OIDMember = append(slices.Clone(Arc), 2)
	OIDRole   = append(slices.Clone(Arc), 3)
)

// maxExtensionValue bounds the decoded length of our extension values.
const maxExtensionValue = 256

func textExtension(id asn1.ObjectIdentifier, value string) (pkix.Extension, error) {
	der, err := asn1.MarshalWithParams(value, "utf8")
	if err != nil {
		return pkix.Extension{}, err
	}
	return pkix.Extension{Id: id, Value: der}, nil
}

// extensionText returns the UTF8String value of extension id, "" if absent.
func extensionText(c *x509.Certificate, id asn1.ObjectIdentifier) (string, error) {
	var found *pkix.Extension
	for i := range c.Extensions {
		if c.Extensions[i].Id.Equal(id) {
			if found != nil {
				return "", fmt.Errorf("extension %s appears twice", id)
			}
			found = &c.Extensions[i]
		}
	}
	if found == nil {
		return "", nil
	}
	if len(found.Value) > maxExtensionValue+8 {
		return "", fmt.Errorf("extension %s is too long", id)
	}
	var rv asn1.RawValue
	rest, err := asn1.Unmarshal(found.Value, &rv)
	if err != nil {
		return "", fmt.Errorf("extension %s is not a UTF8String: %w", id, err)
	}
	if len(rest) != 0 {
		return "", errors.New("trailing data after extension value")
	}
	if rv.Class != asn1.ClassUniversal || rv.Tag != asn1.TagUTF8String || rv.IsCompound || !utf8.Valid(rv.Bytes) {
		return "", fmt.Errorf("extension %s is not a UTF8String", id)
	}
	if len(rv.Bytes) > maxExtensionValue {
		return "", fmt.Errorf("extension %s is too long", id)
	}
	return string(rv.Bytes), nil
}
