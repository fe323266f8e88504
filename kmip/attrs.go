package kmip

import (
	"fmt"
	"math/big"
	"reflect"
	"time"

	"github.com/minikms/minikms/engine"
	"github.com/ovh/kmip-go"
	"github.com/ovh/kmip-go/ttlv"
)

// wireAttr is how an attribute travels: its codec type and the KMIP minor
// version (of 1.x) that defined it.
type wireAttr struct {
	typ   reflect.Type
	since int
}

func wa[T any](since int) wireAttr { return wireAttr{reflect.TypeFor[T](), since} }

// wireAttrs lists every standard attribute of KMIP 1.0–1.4. An attribute
// whose version is newer than the client's is never sent to it.
var wireAttrs = map[string]wireAttr{
	engine.AttrUniqueIdentifier:               wa[string](0),
	engine.AttrName:                           wa[kmip.Name](0),
	engine.AttrObjectType:                     wa[kmip.ObjectType](0),
	engine.AttrCryptographicAlgorithm:         wa[kmip.CryptographicAlgorithm](0),
	engine.AttrCryptographicLength:            wa[int32](0),
	engine.AttrCryptographicParameters:        wa[kmip.CryptographicParameters](0),
	engine.AttrCryptographicDomainParameters:  wa[kmip.CryptographicDomainParameters](0),
	engine.AttrCertificateType:                wa[kmip.CertificateType](0),
	engine.AttrCertificateIdentifier:          wa[kmip.CertificateIdentifier](0),
	engine.AttrCertificateSubject:             wa[kmip.CertificateSubject](0),
	engine.AttrCertificateIssuer:              wa[kmip.CertificateIssuer](0),
	engine.AttrDigest:                         wa[kmip.Digest](0),
	engine.AttrOperationPolicyName:            wa[string](0),
	engine.AttrCryptographicUsageMask:         wa[kmip.CryptographicUsageMask](0),
	engine.AttrLeaseTime:                      wa[time.Duration](0),
	engine.AttrUsageLimits:                    wa[kmip.UsageLimits](0),
	engine.AttrState:                          wa[kmip.State](0),
	engine.AttrInitialDate:                    wa[time.Time](0),
	engine.AttrActivationDate:                 wa[time.Time](0),
	engine.AttrProcessStartDate:               wa[time.Time](0),
	engine.AttrProtectStopDate:                wa[time.Time](0),
	engine.AttrDeactivationDate:               wa[time.Time](0),
	engine.AttrDestroyDate:                    wa[time.Time](0),
	engine.AttrCompromiseOccurrenceDate:       wa[time.Time](0),
	engine.AttrCompromiseDate:                 wa[time.Time](0),
	engine.AttrRevocationReason:               wa[kmip.RevocationReason](0),
	engine.AttrArchiveDate:                    wa[time.Time](0),
	engine.AttrObjectGroup:                    wa[string](0),
	engine.AttrLink:                           wa[kmip.Link](0),
	engine.AttrApplicationSpecificInformation: wa[kmip.ApplicationSpecificInformation](0),
	engine.AttrContactInformation:             wa[string](0),
	engine.AttrLastChangeDate:                 wa[time.Time](0),
	engine.AttrCertificateLength:              wa[int32](1),
	engine.AttrX509CertificateIdentifier:      wa[kmip.X_509CertificateIdentifier](1),
	engine.AttrX509CertificateSubject:         wa[kmip.X_509CertificateSubject](1),
	engine.AttrX509CertificateIssuer:          wa[kmip.X_509CertificateIssuer](1),
	engine.AttrDigitalSignatureAlgorithm:      wa[kmip.DigitalSignatureAlgorithm](1),
	engine.AttrFresh:                          wa[bool](1),
	engine.AttrAlternativeName:                wa[kmip.AlternativeName](2),
	engine.AttrKeyValuePresent:                wa[bool](2),
	engine.AttrKeyValueLocation:               wa[kmip.KeyValueLocation](2),
	engine.AttrOriginalCreationDate:           wa[time.Time](2),
	engine.AttrRandomNumberGenerator:          wa[kmip.RNGParameters](3),
	engine.AttrPKCS12FriendlyName:             wa[string](4),
	engine.AttrDescription:                    wa[string](4),
	engine.AttrComment:                        wa[string](4),
	engine.AttrSensitive:                      wa[bool](4),
	engine.AttrAlwaysSensitive:                wa[bool](4),
	engine.AttrExtractable:                    wa[bool](4),
	engine.AttrNeverExtractable:               wa[bool](4),
}

// definedIn reports whether the attribute exists in KMIP 1.minor.
func definedIn(name string, v kmip.ProtocolVersion) bool {
	if w, ok := wireAttrs[name]; ok {
		return v.Major() > 1 || v.Minor() >= w.since
	}
	return engine.IsCustomAttribute(name)
}

// toEngineAttr converts a decoded KMIP attribute to the engine's form.
func toEngineAttr(a kmip.Attribute) (engine.Attribute, error) {
	name := string(a.AttributeName)
	out := engine.Attribute{Name: name, Index: a.AttributeIndex}
	d := engine.LookupAttr(name)
	if d == nil {
		return out, fmt.Errorf("%w: unknown attribute %q", engine.ErrInvalidField, name)
	}
	if a.AttributeValue == nil {
		return out, fmt.Errorf("%w: attribute %q has no value", engine.ErrInvalidField, name)
	}
	if v, ok := a.AttributeValue.(ttlv.Value); ok {
		if d.Type != reflect.TypeFor[engine.Item]() {
			return out, fmt.Errorf("%w: attribute %q has a value of the wrong type", engine.ErrInvalidField, name)
		}
		it, err := itemFromTTLV(v, 0)
		if err != nil {
			return out, err
		}
		out.Value = it
		return out, nil
	}
	dst := reflect.New(d.Type).Elem()
	if err := convert(dst, reflect.ValueOf(a.AttributeValue)); err != nil {
		return out, fmt.Errorf("%w: attribute %q: %v", engine.ErrInvalidField, name, err)
	}
	out.Value = dst.Interface()
	return out, nil
}

func toEngineAttrs(in []kmip.Attribute) ([]engine.Attribute, error) {
	out := make([]engine.Attribute, 0, len(in))
	for _, a := range in {
		ea, err := toEngineAttr(a)
		if err != nil {
			return nil, err
		}
		out = append(out, ea)
	}
	return out, nil
}

// toWireAttr converts an engine attribute for a client of version v; ok is
// false when that version does not define it.
func toWireAttr(a engine.Attribute, v kmip.ProtocolVersion) (kmip.Attribute, bool, error) {
	if !definedIn(a.Name, v) {
		return kmip.Attribute{}, false, nil
	}
	out := kmip.Attribute{AttributeName: kmip.AttributeName(a.Name)}
	if a.Index != nil && *a.Index > 0 {
		i := *a.Index
		out.AttributeIndex = &i
	}
	if it, ok := a.Value.(engine.Item); ok {
		out.AttributeValue = itemToTTLV(it)
		return out, true, nil
	}
	w, ok := wireAttrs[a.Name]
	if !ok {
		return out, false, fmt.Errorf("attribute %q has no wire type", a.Name)
	}
	dst := reflect.New(w.typ).Elem()
	if err := convert(dst, reflect.ValueOf(a.Value)); err != nil {
		return out, false, fmt.Errorf("attribute %q: %w", a.Name, err)
	}
	out.AttributeValue = dst.Interface()
	return out, true, nil
}

func toWireAttrs(in []engine.Attribute, v kmip.ProtocolVersion) ([]kmip.Attribute, error) {
	out := make([]kmip.Attribute, 0, len(in))
	for _, a := range in {
		wa, ok, err := toWireAttr(a, v)
		if err != nil {
			return nil, err
		}
		if ok {
			out = append(out, wa)
		}
	}
	return out, nil
}

var (
	timeType     = reflect.TypeFor[time.Time]()
	durationType = reflect.TypeFor[time.Duration]()
	bigIntType   = reflect.TypeFor[big.Int]()
)

// convert copies src into dst between the codec's types and the engine's,
// which share field names; numbers convert across integer kinds with range
// checks.
func convert(dst, src reflect.Value) error {
	if src.Type() == dst.Type() {
		dst.Set(src)
		return nil
	}
	switch {
	case src.Type() == timeType || dst.Type() == timeType || src.Type() == durationType || dst.Type() == durationType || src.Type() == bigIntType || dst.Type() == bigIntType:
		return fmt.Errorf("cannot convert %s to %s", src.Type(), dst.Type())
	}
	switch dst.Kind() {
	case reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		var u uint64
		switch src.Kind() {
		case reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
			u = src.Uint()
		case reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
			if src.Int() < 0 {
				return fmt.Errorf("negative value %d", src.Int())
			}
			u = uint64(src.Int())
		default:
			return fmt.Errorf("cannot convert %s to %s", src.Type(), dst.Type())
		}
		if dst.OverflowUint(u) {
			return fmt.Errorf("value %d out of range", u)
		}
		dst.SetUint(u)
	case reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		var i int64
		switch src.Kind() {
		case reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
			i = src.Int()
		case reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
			if src.Uint() > 1<<63-1 {
				return fmt.Errorf("value %d out of range", src.Uint())
			}
			i = int64(src.Uint())
		default:
			return fmt.Errorf("cannot convert %s to %s", src.Type(), dst.Type())
		}
		if dst.OverflowInt(i) {
			return fmt.Errorf("value %d out of range", i)
		}
		dst.SetInt(i)
	case reflect.String:
		if src.Kind() != reflect.String {
			return fmt.Errorf("cannot convert %s to %s", src.Type(), dst.Type())
		}
		dst.SetString(src.String())
	case reflect.Bool:
		if src.Kind() != reflect.Bool {
			return fmt.Errorf("cannot convert %s to %s", src.Type(), dst.Type())
		}
		dst.SetBool(src.Bool())
	case reflect.Pointer:
		if src.Kind() != reflect.Pointer {
			return fmt.Errorf("cannot convert %s to %s", src.Type(), dst.Type())
		}
		if src.IsNil() {
			dst.SetZero()
			return nil
		}
		p := reflect.New(dst.Type().Elem())
		if err := convert(p.Elem(), src.Elem()); err != nil {
			return err
		}
		dst.Set(p)
	case reflect.Slice:
		if src.Kind() != reflect.Slice {
			return fmt.Errorf("cannot convert %s to %s", src.Type(), dst.Type())
		}
		if src.IsNil() {
			dst.SetZero()
			return nil
		}
		s := reflect.MakeSlice(dst.Type(), src.Len(), src.Len())
		for i := range src.Len() {
			if err := convert(s.Index(i), src.Index(i)); err != nil {
				return err
			}
		}
		dst.Set(s)
	case reflect.Struct:
		if src.Kind() != reflect.Struct {
			return fmt.Errorf("cannot convert %s to %s", src.Type(), dst.Type())
		}
		st := src.Type()
		for i := range st.NumField() {
			f := st.Field(i)
			if !f.IsExported() {
				continue
			}
			df := dst.FieldByName(f.Name)
			if !df.IsValid() {
				return fmt.Errorf("field %s of %s has no counterpart in %s", f.Name, st, dst.Type())
			}
			if err := convert(df, src.Field(i)); err != nil {
				return fmt.Errorf("%s: %w", f.Name, err)
			}
		}
	default:
		return fmt.Errorf("cannot convert %s to %s", src.Type(), dst.Type())
	}
	return nil
}

// itemFromTTLV converts a custom attribute value.
func itemFromTTLV(v ttlv.Value, depth int) (engine.Item, error) {
	if depth > engine.MaxItemDepth {
		return engine.Item{}, fmt.Errorf("%w: custom attribute nests too deep", engine.ErrLimit)
	}
	it := engine.Item{Tag: uint32(v.Tag)}
	switch x := v.Value.(type) {
	case int32:
		it.Kind, it.Int = engine.KindInteger, int64(x)
	case int64:
		it.Kind, it.Int = engine.KindLongInteger, x
	case *big.Int:
		it.Kind, it.Big = engine.KindBigInteger, x
	case ttlv.Enum:
		it.Kind, it.Int = engine.KindEnumeration, int64(x)
	case bool:
		it.Kind, it.Bool = engine.KindBoolean, x
	case string:
		it.Kind, it.Text = engine.KindTextString, x
	case []byte:
		it.Kind, it.Bytes = engine.KindByteString, x
	case time.Time:
		it.Kind, it.Time = engine.KindDateTime, x.UTC()
	case time.Duration:
		it.Kind, it.Interval = engine.KindInterval, x
	case ttlv.Struct:
		it.Kind = engine.KindStructure
		for _, f := range x {
			fi, err := itemFromTTLV(f, depth+1)
			if err != nil {
				return it, err
			}
			it.Fields = append(it.Fields, fi)
		}
	default:
		return it, fmt.Errorf("%w: custom attribute of unsupported type", engine.ErrInvalidField)
	}
	return it, nil
}

func itemToTTLV(it engine.Item) ttlv.Value {
	v := ttlv.Value{Tag: int(it.Tag)}
	switch it.Kind {
	case engine.KindInteger:
		v.Value = int32(it.Int)
	case engine.KindLongInteger:
		v.Value = it.Int
	case engine.KindBigInteger:
		v.Value = it.Big
	case engine.KindEnumeration:
		v.Value = ttlv.Enum(uint32(it.Int))
	case engine.KindBoolean:
		v.Value = it.Bool
	case engine.KindTextString:
		v.Value = it.Text
	case engine.KindByteString:
		v.Value = it.Bytes
	case engine.KindDateTime:
		v.Value = it.Time
	case engine.KindInterval:
		v.Value = it.Interval
	case engine.KindStructure:
		s := make(ttlv.Struct, 0, len(it.Fields))
		for _, f := range it.Fields {
			s = append(s, itemToTTLV(f))
		}
		v.Value = s
	default:
		v.Value = ""
	}
	return v
}
