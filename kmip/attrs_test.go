package kmip

import (
	"math/big"
	"reflect"
	"testing"
	"time"

	"github.com/minikms/minikms/engine"
	"github.com/ovh/kmip-go"
	"github.com/ovh/kmip-go/ttlv"
)

// TestWireAttrsCoverEngine: every standard engine attribute has a wire
// type, and the codec type converts to the engine type and back without
// losing a field.
func TestWireAttrsCoverEngine(t *testing.T) {
	for _, name := range engine.StandardAttributeNames() {
		w, ok := wireAttrs[name]
		if !ok {
			t.Errorf("%s: no wire type", name)
			continue
		}
		d := engine.LookupAttr(name)
		src := reflect.New(w.typ).Elem()
		fill(src)
		dst := reflect.New(d.Type).Elem()
		if err := convert(dst, src); err != nil {
			t.Errorf("%s: to engine: %v", name, err)
			continue
		}
		back := reflect.New(w.typ).Elem()
		if err := convert(back, dst); err != nil {
			t.Errorf("%s: to wire: %v", name, err)
			continue
		}
		if !reflect.DeepEqual(src.Interface(), back.Interface()) {
			t.Errorf("%s: round trip changed the value:\n got %#v\nwant %#v", name, back.Interface(), src.Interface())
		}
	}
	for name := range wireAttrs {
		if engine.LookupAttr(name) == nil {
			t.Errorf("%s: wire attribute unknown to the engine", name)
		}
	}
}

// fill sets every field to a non-zero value.
func fill(v reflect.Value) {
	switch v.Kind() {
	case reflect.String:
		v.SetString("x")
	case reflect.Bool:
		v.SetBool(true)
	case reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		if v.Type() == reflect.TypeFor[time.Duration]() {
			v.SetInt(int64(time.Hour))
			return
		}
		v.SetInt(3)
	case reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		v.SetUint(3)
	case reflect.Slice:
		s := reflect.MakeSlice(v.Type(), 2, 2)
		fill(s.Index(0))
		fill(s.Index(1))
		v.Set(s)
	case reflect.Pointer:
		p := reflect.New(v.Type().Elem())
		fill(p.Elem())
		v.Set(p)
	case reflect.Struct:
		if v.Type() == reflect.TypeFor[time.Time]() {
			v.Set(reflect.ValueOf(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)))
			return
		}
		for i := range v.NumField() {
			if v.Type().Field(i).IsExported() {
				fill(v.Field(i))
			}
		}
	}
}

func TestCustomItemRoundTrip(t *testing.T) {
	v := ttlv.Value{Tag: kmip.TagAttributeValue, Value: ttlv.Struct{
		{Tag: 0x540001, Value: int32(-7)},
		{Tag: 0x540002, Value: int64(1 << 40)},
		{Tag: 0x540003, Value: big.NewInt(12345678901234)},
		{Tag: 0x540004, Value: ttlv.Enum(9)},
		{Tag: 0x540005, Value: true},
		{Tag: 0x540006, Value: "text"},
		{Tag: 0x540007, Value: []byte{1, 2}},
		{Tag: 0x540008, Value: time.Unix(1700000000, 0).UTC()},
		{Tag: 0x540009, Value: 90 * time.Second},
	}}
	it, err := itemFromTTLV(v, 0)
	if err != nil {
		t.Fatal(err)
	}
	back := itemToTTLV(it)
	a, b := ttlv.MarshalTTLV(v), ttlv.MarshalTTLV(back)
	if !reflect.DeepEqual(a, b) {
		t.Fatalf("custom value changed:\n%x\n%x", a, b)
	}
}

func TestDefinedIn(t *testing.T) {
	cases := []struct {
		name string
		v    kmip.ProtocolVersion
		want bool
	}{
		{engine.AttrName, kmip.V1_0, true},
		{engine.AttrFresh, kmip.V1_0, false},
		{engine.AttrFresh, kmip.V1_1, true},
		{engine.AttrOriginalCreationDate, kmip.V1_1, false},
		{engine.AttrOriginalCreationDate, kmip.V1_2, true},
		{engine.AttrSensitive, kmip.V1_3, false},
		{engine.AttrSensitive, kmip.V1_4, true},
		{"x-custom", kmip.V1_0, true},
		{"Unknown", kmip.V1_4, false},
	}
	for _, c := range cases {
		if got := definedIn(c.name, c.v); got != c.want {
			t.Errorf("definedIn(%q, %s) = %v, want %v", c.name, c.v, got, c.want)
		}
	}
}
