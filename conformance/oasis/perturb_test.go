package oasis

import (
	"crypto/rand"
	"slices"
	"time"

	"github.com/ovh/kmip-go"
	"github.com/ovh/kmip-go/ttlv"
)

// perturb changes a response the way another correct server may answer,
// exercising the tolerances of the comparison:
//   - its own clock in the header, a Server Correlation Value, no Result
//     Message or another text;
//   - attribute lists in another order, with an attribute the reference
//     server did not have when all attributes were asked for, without the
//     attributes a server may omit when the client never set them;
//   - implicitly set attributes returned by Create;
//   - Query items in another order and one operation more, more protocol
//     versions, less RNG seed accepted, a Located Items count;
//   - new random key material, digests and ciphertexts for the keys it
//     generated, new random bytes from RNG Retrieve.
func (f *fakeServer) perturb(v *ttlv.Value, exp *element) {
	msg := v.Value.(ttlv.Struct)
	reqItems := structItems(f.lastReq, kmip.TagBatchItem)
	prevID := ""
	item := 0
	for i := range msg {
		switch msg[i].Tag {
		case kmip.TagResponseHeader:
			hdr := msg[i].Value.(ttlv.Struct)
			for k := range hdr {
				if hdr[k].Tag == kmip.TagTimeStamp {
					hdr[k].Value = time.Date(2099, 1, 2, 3, 4, 5, 0, time.UTC)
				}
			}
			// Server Correlation Value goes before Batch Count.
			hdr = slices.Insert(hdr, len(hdr)-1, ttlv.Value{Tag: kmip.TagServerCorrelationValue, Value: "fake-corr"})
			msg[i].Value = hdr
		case kmip.TagBatchItem:
			var req ttlv.Struct
			if item < len(reqItems) {
				req = reqItems[item]
			}
			item++
			bi := msg[i].Value.(ttlv.Struct)
			msg[i].Value = f.perturbItem(bi, req, &prevID)
		}
	}
	v.Value = msg
}

func structItems(v ttlv.Value, tag int) []ttlv.Struct {
	st, _ := v.Value.(ttlv.Struct)
	var out []ttlv.Struct
	for _, c := range st {
		if c.Tag == tag {
			s, _ := c.Value.(ttlv.Struct)
			out = append(out, s)
		}
	}
	return out
}

func (f *fakeServer) perturbItem(bi, req ttlv.Struct, prevID *string) ttlv.Struct {
	op := structChild(bi, kmip.TagOperation)
	status := structChild(bi, kmip.TagResultStatus)
	reqPl := structOf(structChild(req, kmip.TagRequestPayload))
	// Result Message: drop one, rewrite the others.
	for k := 0; k < len(bi); k++ {
		if bi[k].Tag == kmip.TagResultMessage {
			if f.counter%2 == 0 {
				bi = slices.Delete(bi, k, k+1)
				k--
			} else {
				bi[k].Value = "another server's words"
			}
			f.counter++
		}
	}
	id := ""
	if u := structChild(reqPl, kmip.TagUniqueIdentifier); u != nil {
		id, _ = u.Value.(string)
	} else {
		id = *prevID
	}
	defer func() {
		if rid := resultID(bi); rid != "" {
			*prevID = rid
		}
	}()
	if op == nil || status == nil || status.Value != ttlv.Enum(kmip.ResultStatusSuccess) {
		return bi
	}
	plv := structChild(bi, kmip.TagResponsePayload)
	if plv == nil {
		return bi
	}
	pl := structOf(plv)
	switch kmip.Operation(op.Value.(ttlv.Enum)) {
	case kmip.OperationCreate, kmip.OperationCreateKeyPair, kmip.OperationReKey, kmip.OperationReKeyKeyPair:
		for _, c := range pl {
			if s, ok := c.Value.(string); ok {
				f.generated[s] = true
			}
		}
		if kmip.Operation(op.Value.(ttlv.Enum)) == kmip.OperationCreate {
			pl = append(pl, ttlv.Value{Tag: kmip.TagTemplateAttribute, Value: ttlv.Struct{
				attr("Original Creation Date", time.Now().Truncate(time.Second)),
			}})
		}
	case kmip.OperationGetAttributes:
		pl = f.perturbAttributes(pl, reqPl, id)
	case kmip.OperationGetAttributeList:
		pl = f.perturbAttributeList(pl)
	case kmip.OperationQuery:
		slices.Reverse(pl)
		if structChild(pl, kmip.TagOperation) != nil && !hasEnum(pl, kmip.TagOperation, uint32(kmip.OperationExport)) {
			pl = append(pl, ttlv.Value{Tag: kmip.TagOperation, Value: ttlv.Enum(kmip.OperationExport)})
		}
	case kmip.OperationRNGSeed:
		for k := range pl {
			if pl[k].Tag == kmip.TagDataLength {
				pl[k].Value = int32(1)
			}
		}
	case kmip.OperationRNGRetrieve:
		for k := range pl {
			randomize(&pl[k])
		}
	case kmip.OperationLocate:
		n := 0
		for _, c := range pl {
			if c.Tag == kmip.TagUniqueIdentifier {
				n++
			}
		}
		pl = slices.Insert(pl, 0, ttlv.Value{Tag: kmip.TagLocatedItems, Value: int32(n)})
	case kmip.OperationDiscoverVersions:
		if structChild(reqPl, kmip.TagProtocolVersion) == nil {
			pl = slices.Insert(pl, 0, ttlv.Value{Tag: kmip.TagProtocolVersion, Value: ttlv.Struct{
				{Tag: kmip.TagProtocolVersionMajor, Value: int32(1)},
				{Tag: kmip.TagProtocolVersionMinor, Value: int32(9)},
			}})
		}
	case kmip.OperationGet:
		if f.generated[id] {
			randomizeUnder(pl, kmip.TagKeyValue, false)
		}
	case kmip.OperationEncrypt:
		if f.generated[id] {
			for k := range pl {
				if pl[k].Tag == kmip.TagData || pl[k].Tag == kmip.TagAuthenticatedEncryptionTag {
					randomize(&pl[k])
				}
			}
		}
	}
	plv.Value = pl
	return bi
}

func hasEnum(st ttlv.Struct, tag int, v uint32) bool {
	for _, c := range st {
		if c.Tag == tag && c.Value == ttlv.Enum(v) {
			return true
		}
	}
	return false
}

func attr(name string, value any) ttlv.Value {
	return ttlv.Value{Tag: kmip.TagAttribute, Value: ttlv.Struct{
		{Tag: kmip.TagAttributeName, Value: name},
		{Tag: kmip.TagAttributeValue, Value: value},
	}}
}

// perturbAttributes reverses the attributes, adds one when all were asked
// for, drops the optional ones the client never set, and gives new digests
// to generated keys.
func (f *fakeServer) perturbAttributes(pl, reqPl ttlv.Struct, id string) ttlv.Struct {
	var head, attrs ttlv.Struct
	for _, c := range pl {
		if c.Tag != kmip.TagAttribute {
			head = append(head, c)
			continue
		}
		name := actualAttributeName(c)
		if optionalServerAttributes[name] && !f.clientSet(name) {
			continue
		}
		if name == "Digest" && f.generated[id] {
			randomizeUnder(structOf(&c), kmip.TagDigestValue, true)
		}
		attrs = append(attrs, c)
	}
	slices.Reverse(attrs)
	if structChild(reqPl, kmip.TagAttributeName) == nil {
		attrs = append(attrs, attr("x-fake-server-extra", "set by another server"))
	}
	return append(head, attrs...)
}

func (f *fakeServer) perturbAttributeList(pl ttlv.Struct) ttlv.Struct {
	var head, names ttlv.Struct
	for _, c := range pl {
		if c.Tag != kmip.TagAttributeName {
			head = append(head, c)
			continue
		}
		if s, _ := c.Value.(string); optionalServerAttributes[s] && !f.clientSet(s) {
			continue
		}
		names = append(names, c)
	}
	slices.Reverse(names)
	names = append(names, ttlv.Value{Tag: kmip.TagAttributeName, Value: "x-fake-server-extra"})
	return append(head, names...)
}

// clientSet reports whether any request of the vector sets the attribute.
func (f *fakeServer) clientSet(name string) bool { return f.clientAttrs[name] }

// randomizeUnder gives new random bytes of the same length to every byte
// string in the subtree of st under tag (or with that tag when leaf).
func randomizeUnder(st ttlv.Struct, tag int, leaf bool) {
	for k := range st {
		if st[k].Tag == tag {
			walkValuesPtr(&st[k], randomize)
			continue
		}
		if sub, ok := st[k].Value.(ttlv.Struct); ok {
			randomizeUnder(sub, tag, leaf)
		}
	}
}

func walkValuesPtr(v *ttlv.Value, f func(*ttlv.Value)) {
	f(v)
	if st, ok := v.Value.(ttlv.Struct); ok {
		for k := range st {
			walkValuesPtr(&st[k], f)
		}
	}
}

func randomize(v *ttlv.Value) {
	if b, ok := v.Value.([]byte); ok {
		nb := make([]byte, len(b))
		_, _ = rand.Read(nb)
		v.Value = nb
	}
}
