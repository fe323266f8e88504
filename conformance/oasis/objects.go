package oasis

import (
	"github.com/ovh/kmip-go"
	"github.com/ovh/kmip-go/ttlv"
)

// objectInfo is what the run knows about one managed object it created.
type objectInfo struct {
	// generated is true when the object's value is a function of
	// randomness the server chose: keys from Create, CreateKeyPair,
	// ReKey, ReKeyKeyPair, CreateSplitKey; certificates from Certify and
	// ReCertify; DeriveKey and JoinSplitKey results when one of their
	// inputs was generated. Registered objects are not generated.
	generated  bool
	objectType uint32
	algorithm  uint32 // Cryptographic Algorithm, 0 when unknown
	padding    uint32 // Padding Method of its Cryptographic Parameters
	// clientAttrs are the attribute names the client set on the object.
	clientAttrs map[string]bool
}

// symmetric reports whether the object's value has a length fixed by its
// request (symmetric keys, secret data, split keys): a server-generated
// value then has the same length as the reference server's.
func (o *objectInfo) symmetric() bool {
	switch kmip.ObjectType(o.objectType) {
	case kmip.ObjectTypeSymmetricKey, kmip.ObjectTypeSecretData, kmip.ObjectTypeSplitKey:
		return true
	}
	switch kmip.CryptographicAlgorithm(o.algorithm) {
	case kmip.CryptographicAlgorithmDES, kmip.CryptographicAlgorithm3DES, kmip.CryptographicAlgorithmAES,
		kmip.CryptographicAlgorithmHMACSHA1, kmip.CryptographicAlgorithmHMACSHA224, kmip.CryptographicAlgorithmHMACSHA256,
		kmip.CryptographicAlgorithmHMACSHA384, kmip.CryptographicAlgorithmHMACSHA512, kmip.CryptographicAlgorithmHMACMD5:
		return true
	}
	return false
}

// itemContext is what the comparison of one response batch item knows about
// the request batch item it answers.
type itemContext struct {
	index   int
	op      kmip.Operation
	req     *element // request BatchItem, values substituted
	payload *element // its RequestPayload, nil when absent
	objID   string   // identifier the item operates on, "" when none
	obj     *objectInfo
}

// newItemContext describes request batch item req. prevID is the identifier
// returned by the previous item of the same batch, which an item without a
// Unique Identifier operates on (the ID Placeholder of KMIP 1.x).
func (st *runState) newItemContext(index int, req *element, prevID string) *itemContext {
	it := &itemContext{index: index, req: req}
	if req == nil {
		return it
	}
	if op := req.child(kmip.TagOperation); op != nil {
		if v, err := parseEnum(op.Value, kmip.TagOperation); err == nil {
			it.op = kmip.Operation(v.(ttlv.Enum))
		}
	}
	it.payload = req.child(kmip.TagRequestPayload)
	if it.payload != nil {
		for _, tag := range []int{kmip.TagUniqueIdentifier, kmip.TagPrivateKeyUniqueIdentifier} {
			if id := it.payload.child(tag); id != nil && id.Type == ttlv.TypeTextString {
				it.objID = id.Value
				break
			}
		}
	}
	if it.objID == "" {
		it.objID = prevID
	}
	it.obj = st.objects[it.objID]
	return it
}

// resultID returns the identifier an actual response batch item returned,
// which the next item of the batch operates on when it names none.
func resultID(item ttlv.Struct) string {
	pl := structOf(structChild(item, kmip.TagResponsePayload))
	for _, tag := range []int{kmip.TagUniqueIdentifier, kmip.TagPrivateKeyUniqueIdentifier} {
		if v := structChild(pl, tag); v != nil {
			if s, ok := v.Value.(string); ok {
				return s
			}
		}
	}
	return ""
}

// structChild returns the first child of st with the given tag, or nil.
func structChild(st ttlv.Struct, tag int) *ttlv.Value {
	for i := range st {
		if st[i].Tag == tag {
			return &st[i]
		}
	}
	return nil
}

// structOf returns v's children when v is a structure.
func structOf(v *ttlv.Value) ttlv.Struct {
	if v == nil {
		return nil
	}
	s, _ := v.Value.(ttlv.Struct)
	return s
}

// register records the objects a successful batch item created, and the
// attributes the client set on existing ones.
func (st *runState) register(it *itemContext, item ttlv.Struct) {
	if it.req == nil || it.payload == nil {
		return
	}
	pl := structOf(structChild(item, kmip.TagResponsePayload))
	status := structChild(item, kmip.TagResultStatus)
	if status == nil || status.Value != ttlv.Enum(kmip.ResultStatusSuccess) {
		return
	}
	newObj := func(id string, generated bool, templates ...*element) *objectInfo {
		if id == "" {
			return nil
		}
		o := &objectInfo{generated: generated, clientAttrs: map[string]bool{}}
		if t := it.payload.child(kmip.TagObjectType); t != nil {
			if v, err := parseEnum(t.Value, kmip.TagObjectType); err == nil {
				o.objectType = uint32(v.(ttlv.Enum))
			}
		}
		for _, t := range templates {
			o.absorbTemplate(t)
		}
		st.objects[id] = o
		return o
	}
	idOf := func(tag int) string {
		if v := structChild(pl, tag); v != nil {
			s, _ := v.Value.(string)
			return s
		}
		return ""
	}
	tmpl := it.payload.child(kmip.TagTemplateAttribute)
	switch it.op {
	case kmip.OperationCreate:
		newObj(idOf(kmip.TagUniqueIdentifier), true, tmpl)
	case kmip.OperationRegister:
		if o := newObj(idOf(kmip.TagUniqueIdentifier), false, tmpl); o != nil {
			o.absorbObject(it.payload)
		}
	case kmip.OperationCreateKeyPair, kmip.OperationReKeyKeyPair:
		common := it.payload.child(kmip.TagCommonTemplateAttribute)
		priv := newObj(idOf(kmip.TagPrivateKeyUniqueIdentifier), true, common, it.payload.child(kmip.TagPrivateKeyTemplateAttribute))
		pub := newObj(idOf(kmip.TagPublicKeyUniqueIdentifier), true, common, it.payload.child(kmip.TagPublicKeyTemplateAttribute))
		for _, o := range []*objectInfo{priv, pub} {
			if o != nil && it.obj != nil && o.algorithm == 0 {
				o.algorithm = it.obj.algorithm
			}
		}
		if priv != nil {
			priv.objectType = uint32(kmip.ObjectTypePrivateKey)
		}
		if pub != nil {
			pub.objectType = uint32(kmip.ObjectTypePublicKey)
		}
	case kmip.OperationReKey:
		if o := newObj(idOf(kmip.TagUniqueIdentifier), true, tmpl); o != nil && it.obj != nil {
			o.objectType, o.algorithm, o.padding = it.obj.objectType, it.obj.algorithm, it.obj.padding
		}
	case kmip.OperationDeriveKey, kmip.OperationJoinSplitKey:
		generated := false
		for _, id := range it.payload.childrenWith(kmip.TagUniqueIdentifier) {
			if o := st.objects[id.Value]; o != nil && o.generated {
				generated = true
			}
		}
		if o := newObj(idOf(kmip.TagUniqueIdentifier), generated, tmpl); o != nil {
			if a := it.payload.child(kmip.TagCryptographicAlgorithm); a != nil {
				if v, err := parseEnum(a.Value, kmip.TagCryptographicAlgorithm); err == nil {
					o.algorithm = uint32(v.(ttlv.Enum))
				}
			}
		}
	case kmip.OperationCreateSplitKey:
		for _, v := range pl {
			if s, ok := v.Value.(string); ok && v.Tag == kmip.TagUniqueIdentifier {
				o := newObj(s, true, tmpl)
				o.objectType = uint32(kmip.ObjectTypeSplitKey)
				if it.obj != nil {
					o.algorithm = it.obj.algorithm
				}
			}
		}
	case kmip.OperationCertify, kmip.OperationReCertify:
		if o := newObj(idOf(kmip.TagUniqueIdentifier), true, tmpl); o != nil {
			o.objectType = uint32(kmip.ObjectTypeCertificate)
		}
	case kmip.OperationAddAttribute, kmip.OperationModifyAttribute:
		if it.obj != nil {
			for _, a := range it.payload.childrenWith(kmip.TagAttribute) {
				if n := a.child(kmip.TagAttributeName); n != nil {
					it.obj.clientAttrs[collapseSpaces(n.Value)] = true
				}
			}
		}
	}
}

// absorbTemplate takes the attributes of a template-attribute structure.
func (o *objectInfo) absorbTemplate(t *element) {
	if t == nil {
		return
	}
	for _, a := range t.childrenWith(kmip.TagAttribute) {
		n, v := a.child(kmip.TagAttributeName), a.child(kmip.TagAttributeValue)
		if n == nil || v == nil {
			continue
		}
		name := collapseSpaces(n.Value)
		o.clientAttrs[name] = true
		switch name {
		case "Cryptographic Algorithm":
			if e, err := parseEnum(v.Value, kmip.TagCryptographicAlgorithm); err == nil {
				o.algorithm = uint32(e.(ttlv.Enum))
			}
		case "Cryptographic Parameters":
			o.absorbParams(v)
		}
	}
	if len(t.childrenWith(kmip.TagName)) > 0 {
		o.clientAttrs["Name"] = true
	}
}

// absorbParams takes the algorithm and padding of Cryptographic Parameters.
func (o *objectInfo) absorbParams(p *element) {
	if p == nil {
		return
	}
	if a := p.child(kmip.TagCryptographicAlgorithm); a != nil && o.algorithm == 0 {
		if e, err := parseEnum(a.Value, kmip.TagCryptographicAlgorithm); err == nil {
			o.algorithm = uint32(e.(ttlv.Enum))
		}
	}
	if pm := p.child(kmip.TagPaddingMethod); pm != nil {
		if e, err := parseEnum(pm.Value, kmip.TagPaddingMethod); err == nil {
			o.padding = uint32(e.(ttlv.Enum))
		}
	}
}

// absorbObject takes the algorithm from the key block of a registered object.
func (o *objectInfo) absorbObject(payload *element) {
	for _, c := range payload.Children {
		kb := c.child(kmip.TagKeyBlock)
		if kb == nil {
			continue
		}
		if a := kb.child(kmip.TagCryptographicAlgorithm); a != nil {
			if e, err := parseEnum(a.Value, kmip.TagCryptographicAlgorithm); err == nil {
				o.algorithm = uint32(e.(ttlv.Enum))
			}
		}
	}
}

// requestParams returns the padding method and algorithm an operation uses:
// those of the request's Cryptographic Parameters, else the object's.
func (it *itemContext) requestParams() (padding, algorithm uint32) {
	if it.obj != nil {
		padding, algorithm = it.obj.padding, it.obj.algorithm
	}
	if it.payload == nil {
		return padding, algorithm
	}
	if p := it.payload.child(kmip.TagCryptographicParameters); p != nil {
		if pm := p.child(kmip.TagPaddingMethod); pm != nil {
			if e, err := parseEnum(pm.Value, kmip.TagPaddingMethod); err == nil {
				padding = uint32(e.(ttlv.Enum))
			}
		}
		if a := p.child(kmip.TagCryptographicAlgorithm); a != nil {
			if e, err := parseEnum(a.Value, kmip.TagCryptographicAlgorithm); err == nil {
				algorithm = uint32(e.(ttlv.Enum))
			}
		}
	}
	return padding, algorithm
}
