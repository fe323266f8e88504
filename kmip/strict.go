package kmip

import (
	"fmt"
	"reflect"
	"strings"
	"sync"

	"github.com/ovh/kmip-go/ttlv"
)

// The codec decodes a structure's fields in declaration order and silently
// drops whatever it does not recognise: an unknown field, a field out of
// order, a second value of a single field. The server would then run a
// different request from the one the client sent. checkPayloadFields
// refuses such payloads: every top-level field must be consumed by the
// payload type, in order.

// fieldTag is what a payload's field looks like on the wire.
type fieldTag struct {
	tag    int
	repeat bool // a slice: several consecutive items
	any    bool // an interface (the object of Register): any one item
}

var payloadTags sync.Map // reflect.Type -> []fieldTag

// tagsByName maps KMIP tag names to their numbers (the codec's registry,
// read through TagString).
var tagsByName = sync.OnceValue(func() map[string]int {
	m := map[string]int{}
	for t := 0x420001; t <= 0x4201FF; t++ {
		if name := ttlv.TagString(t); name != "" && name[0] != '0' {
			m[name] = t
		}
	}
	return m
})

// payloadFieldTags resolves the wire tag of every field of a payload struct
// the way the codec does: the name in the field's ttlv tag, else the field
// name, else the name of the field's type.
func payloadFieldTags(t reflect.Type) []fieldTag {
	if v, ok := payloadTags.Load(t); ok {
		return v.([]fieldTag)
	}
	names := tagsByName()
	var out []fieldTag
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("ttlv"), ",")
		if !f.IsExported() || name == "-" {
			continue
		}
		if f.Type.Kind() == reflect.Interface {
			out = append(out, fieldTag{any: true})
			continue
		}
		tag, ok := names[name]
		if !ok {
			tag, ok = names[f.Name]
		}
		if !ok {
			et := f.Type
			for et.Kind() == reflect.Pointer || (et.Kind() == reflect.Slice && et.Elem().Kind() != reflect.Uint8) {
				et = et.Elem()
			}
			tag, ok = names[et.Name()]
		}
		if !ok {
			// Unknown to the registry: accept anything at this position
			// rather than refuse valid requests.
			out = append(out, fieldTag{any: true})
			continue
		}
		out = append(out, fieldTag{tag: tag, repeat: f.Type.Kind() == reflect.Slice && f.Type.Elem().Kind() != reflect.Uint8})
	}
	payloadTags.Store(t, out)
	return out
}

// checkPayloadFields verifies that the raw Request Payload item raw
// carries only fields the payload type req consumes, in order.
func checkPayloadFields(raw []byte, req any) error {
	t := reflect.TypeOf(req).Elem()
	if t.Kind() != reflect.Struct {
		return nil
	}
	fields := payloadFieldTags(t)
	kids, err := children(raw[ttlvHeader:])
	if err != nil {
		return err
	}
	j := 0
	for _, k := range kids {
		for j < len(fields) && !fields[j].any && fields[j].tag != int(k.tag) {
			j++
		}
		if j == len(fields) {
			return fmt.Errorf("field %s is unknown here, out of order or repeated", ttlv.TagString(int(k.tag)))
		}
		if !fields[j].repeat {
			j++
		}
	}
	return nil
}
