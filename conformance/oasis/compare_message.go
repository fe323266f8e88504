package oasis

import (
	"fmt"

	"github.com/ovh/kmip-go"
	"github.com/ovh/kmip-go/ttlv"
)

// message compares a whole ResponseMessage. req is the request that was
// sent, with its placeholders substituted.
func (c *comparer) message(exp *element, act ttlv.Value, req *element) {
	st, ok := act.Value.(ttlv.Struct)
	if !ok {
		c.diff("ResponseMessage", exp, "Structure", describeValue(act, 0), "type differs")
		return
	}
	reqItems := req.childrenWith(kmip.TagBatchItem)
	expItems := exp.childrenWith(kmip.TagBatchItem)
	var actItems []ttlv.Struct
	for _, v := range st {
		if v.Tag == kmip.TagBatchItem {
			s, ok := v.Value.(ttlv.Struct)
			if !ok {
				c.diff("BatchItem", nil, "Structure", describeValue(v, 0), "type differs")
				return
			}
			actItems = append(actItems, s)
		}
	}
	if len(actItems) != len(expItems) {
		c.diff("BatchItem", nil, fmt.Sprintf("%d batch items", len(expItems)), fmt.Sprintf("%d batch items", len(actItems)), "batch size differs")
	}
	// The header and any other top-level field, in order.
	var other []*element
	for _, e := range exp.Children {
		if e.Tag != kmip.TagBatchItem {
			other = append(other, e)
		}
	}
	var actOther ttlv.Struct
	for _, v := range st {
		if v.Tag != kmip.TagBatchItem {
			actOther = append(actOther, v)
		}
	}
	c.orderedWith("", other, actOther, nil, func(p string, e *element, a ttlv.Value) {
		if e.Tag == kmip.TagResponseHeader {
			c.header(p, e, a)
			return
		}
		c.value(p, e, a, cmpCtx{}.enter(e))
	})
	prevID := ""
	for i := 0; i < len(expItems) && i < len(actItems); i++ {
		var r *element
		if i < len(reqItems) {
			r = reqItems[i]
		}
		it := c.st.newItemContext(i, r, prevID)
		before := len(c.diffs)
		c.batchItem(fmt.Sprintf("BatchItem[%d]", i), expItems[i], actItems[i], it)
		if len(c.diffs) == before {
			c.st.register(it, actItems[i])
		}
		if id := resultID(actItems[i]); id != "" {
			prevID = id
		}
	}
}

// header compares the ResponseHeader. The TimeStamp is the server's clock:
// presence and type only. Correlation values are the server's choice.
func (c *comparer) header(path string, e *element, a ttlv.Value) {
	st, ok := a.Value.(ttlv.Struct)
	if !ok || e.Type != ttlv.TypeStructure {
		c.diff(path, e, describeElement(e), describeValue(a, 0), "type differs")
		return
	}
	free := map[int]bool{
		kmip.TagServerCorrelationValue: true,
		kmip.TagClientCorrelationValue: true,
	}
	exp := c.presenceOnly(path, e.Children, st, free)
	c.orderedWith(path, exp, withoutTags(st, free), nil, func(p string, ec *element, ac ttlv.Value) {
		if ec.Tag == kmip.TagTimeStamp {
			if got := ttlvTypeOf(ac.Value); got != ttlv.TypeDateTime {
				c.diff(p, ec, "DateTime", describeValue(ac, 0), "type differs")
			}
			return
		}
		c.value(p, ec, ac, cmpCtx{}.enter(ec))
	})
}

// presenceOnly handles the expected children whose tag is in free: their
// value is free text or a server choice, so only a wrong type is reported
// and absence is a note. It returns the other children.
func (c *comparer) presenceOnly(path string, exp []*element, act ttlv.Struct, free map[int]bool) []*element {
	var rest []*element
	for _, e := range exp {
		if !free[e.Tag] {
			rest = append(rest, e)
			continue
		}
		a := structChild(act, e.Tag)
		switch {
		case a == nil:
			c.note("%s/%s: absent (expected %s; free server value, not compared)", path, e.label(), abbreviate(e.Value))
		case ttlvTypeOf(a.Value) != e.Type:
			c.note("%s/%s: %s instead of %s (free server value, not compared)", path, e.label(), ttlvTypeOf(a.Value), e.Type)
		}
	}
	return rest
}

// withoutTags returns the children of st whose tag is not in drop.
func withoutTags(st ttlv.Struct, drop map[int]bool) ttlv.Struct {
	var out ttlv.Struct
	for _, v := range st {
		if !drop[v.Tag] {
			out = append(out, v)
		}
	}
	return out
}

// batchItem compares one response batch item.
func (c *comparer) batchItem(path string, e *element, act ttlv.Struct, it *itemContext) {
	c.freshServerValues(e, act, it)
	free := map[int]bool{kmip.TagResultMessage: true}
	exp := c.presenceOnly(path, e.Children, act, free)
	c.orderedWith(path, exp, withoutTags(act, free), nil, func(p string, ec *element, ac ttlv.Value) {
		if ec.Tag == kmip.TagResponsePayload {
			st, ok := ac.Value.(ttlv.Struct)
			if !ok || ec.Type != ttlv.TypeStructure {
				c.diff(p, ec, describeElement(ec), describeValue(ac, 0), "type differs")
				return
			}
			op := it.op
			if o := e.child(kmip.TagOperation); o != nil {
				if v, err := parseEnum(o.Value, kmip.TagOperation); err == nil {
					op = kmip.Operation(v.(ttlv.Enum))
				}
			}
			c.payload(p, ec, st, it, op)
			return
		}
		if ec.Tag == kmip.TagResultReason && isGeneralFailure(ec) {
			// General Failure is the catch-all of a server that did not
			// classify the error; a server that names a precise reason for
			// the same failure is equally correct. Status must still match.
			if _, ok := ac.Value.(ttlv.Enum); ok {
				if got := ttlv.EnumStr(kmip.ResultReason(ac.Value.(ttlv.Enum))); got != "GeneralFailure" {
					c.note("%s: expected General Failure, server named %s", p, got)
				}
				return
			}
		}
		c.value(p, ec, ac, cmpCtx{it: it}.enter(ec))
	})
}

// isGeneralFailure reports whether an expected Result Reason is General Failure.
func isGeneralFailure(e *element) bool {
	v, err := parseEnum(e.Value, kmip.TagResultReason)
	return err == nil && v.(ttlv.Enum) == ttlv.Enum(kmip.ResultReasonGeneralFailure)
}

// freshServerValues forgets the binding of placeholders that name a value
// the server mints anew in this item although the vector reuses the name:
// a Correlation Value when the request starts a new stream (Init Indicator)
// and an Asynchronous Correlation Value when the operation is pending.
func (c *comparer) freshServerValues(e *element, act ttlv.Struct, it *itemContext) {
	if it.payload != nil {
		if ii := it.payload.child(kmip.TagInitIndicator); ii != nil && isTrue(ii) {
			if pl := e.child(kmip.TagResponsePayload); pl != nil {
				if cv := pl.child(kmip.TagCorrelationValue); cv != nil {
					delete(c.bind, placeholderName(cv.Value))
				}
			}
		}
	}
	if acv := e.child(kmip.TagAsynchronousCorrelationValue); acv != nil {
		if s := structChild(act, kmip.TagResultStatus); s != nil && s.Value == ttlv.Enum(kmip.ResultStatusOperationPending) {
			delete(c.bind, placeholderName(acv.Value))
		}
	}
}

// isTrue reports whether a Boolean element is true.
func isTrue(e *element) bool {
	v, err := parseLiteral(e.Type, e.Value, e.Tag)
	b, _ := v.(bool)
	return err == nil && b
}

// payload compares a ResponsePayload with the rules of its operation: the
// operation the expected batch item names (a Poll is answered with the
// payload of the polled operation), else the request's.
func (c *comparer) payload(path string, e *element, act ttlv.Struct, it *itemContext, op kmip.Operation) {
	cx := cmpCtx{it: it}
	switch op {
	case kmip.OperationGetAttributes:
		c.getAttributes(path, e, act, it)
	case kmip.OperationGetAttributeList:
		c.getAttributeList(path, e, act, it)
	case kmip.OperationQuery:
		c.query(path, e, act, it)
	case kmip.OperationDiscoverVersions:
		c.discoverVersions(path, e, act, it)
	case kmip.OperationRNGSeed:
		c.rngSeed(path, e, act, it)
	case kmip.OperationObtainLease:
		// The lease is the server's policy (the reference servers grant
		// 16 s in v1.0 and 3600 s in v1.2 for the same request).
		cx.randomTags = map[int]bool{kmip.TagLeaseTime: true}
		c.ordered(path, e, act, cx, nil)
	case kmip.OperationCreate, kmip.OperationCreateKeyPair, kmip.OperationRegister, kmip.OperationDeriveKey,
		kmip.OperationReKey, kmip.OperationReKeyKeyPair, kmip.OperationCertify, kmip.OperationReCertify:
		c.createdPayload(path, e, act, cx)
	case kmip.OperationLocate:
		// Located Items (KMIP 1.3+) is optional: a server MAY omit the
		// count, and MAY return it even when not asked.
		c.ordered(path, e, act, cx, func(v ttlv.Value) bool { return v.Tag == kmip.TagLocatedItems })
	case kmip.OperationGet, kmip.OperationExport:
		if it.obj != nil && it.obj.generated {
			cx.randomTags = map[int]bool{kmip.TagKeyValue: true, kmip.TagCertificateValue: true}
			cx.fixedLen = it.obj.symmetric()
		}
		c.ordered(path, e, act, cx, nil)
	default:
		cx.randomTags, cx.fixedLen = c.cryptoOutputs(act, it, op)
		c.ordered(path, e, act, cx, nil)
	}
}

// createdPayload compares the payload of an operation that creates
// objects. KMIP lets the server return the attributes it set implicitly
// (Template-Attribute), at its discretion: they may be present or absent,
// and their values are the server's defaults (compared by type only).
func (c *comparer) createdPayload(path string, e *element, act ttlv.Struct, cx cmpCtx) {
	implicit := map[int]bool{
		kmip.TagTemplateAttribute:           true,
		kmip.TagPrivateKeyTemplateAttribute: true,
		kmip.TagPublicKeyTemplateAttribute:  true,
	}
	var exp []*element
	for _, ec := range e.Children {
		if !implicit[ec.Tag] {
			exp = append(exp, ec)
			continue
		}
		if ac := structChild(act, ec.Tag); ac != nil {
			if st, ok := ac.Value.(ttlv.Struct); ok {
				free := cx
				free.random = true
				c.attributeContainer(path+"/"+ec.label(), ec, st, free, attrPolicy{extra: anyName, missing: anyName})
			}
		}
	}
	c.orderedWith(path, exp, withoutTags(act, implicit), nil, func(p string, ec *element, ac ttlv.Value) {
		c.value(p, ec, ac, cx.enter(ec))
	})
}

// cryptoOutputs decides which outputs of a cryptographic operation are a
// function of randomness the server chose, and whether their length is
// still fixed by the request:
//
//   - any output keyed by a server-generated object (Encrypt, Sign, MAC
//     with a created key; Decrypt of a ciphertext the vector made up under
//     the reference server's key);
//   - RSA encryption (PKCS#1 v1.5 and OAEP padding are randomized);
//   - RSA-PSS signatures (random salt; length fixed by the modulus), ECDSA
//     and DSA signatures (random nonce; DER length varies);
//   - ciphertext and tag under an IV the server generated (the request
//     carried none and the response returns one);
//   - RNG Retrieve output.
func (c *comparer) cryptoOutputs(act ttlv.Struct, it *itemContext, op kmip.Operation) (map[int]bool, bool) {
	generated := it.obj != nil && it.obj.generated
	padding, alg := it.requestParams()
	rsa := kmip.CryptographicAlgorithm(alg) == kmip.CryptographicAlgorithmRSA
	switch op {
	case kmip.OperationRNGRetrieve:
		return map[int]bool{kmip.TagData: true}, true
	case kmip.OperationEncrypt:
		serverIV := structChild(act, kmip.TagIVCounterNonce) != nil &&
			(it.payload == nil || it.payload.child(kmip.TagIVCounterNonce) == nil)
		if generated || rsa || serverIV {
			return map[int]bool{kmip.TagData: true, kmip.TagIVCounterNonce: true, kmip.TagAuthenticatedEncryptionTag: true}, true
		}
	case kmip.OperationDecrypt:
		if generated && !c.fromServer(it, kmip.TagData) {
			return map[int]bool{kmip.TagData: true}, !rsa
		}
	case kmip.OperationSign:
		switch {
		case generated && rsa, rsa && kmip.PaddingMethod(padding) == kmip.PaddingMethodPSS:
			return map[int]bool{kmip.TagSignatureData: true}, true
		case generated, isDiscreteLogSigner(alg):
			return map[int]bool{kmip.TagSignatureData: true}, false
		}
	case kmip.OperationMAC:
		if generated {
			return map[int]bool{kmip.TagMACData: true}, true
		}
	}
	return nil, false
}

// fromServer reports whether the request's value under tag is one this
// server returned earlier in the run (so the outcome is deterministic).
func (c *comparer) fromServer(it *itemContext, tag int) bool {
	if it.payload == nil {
		return false
	}
	d := it.payload.child(tag)
	if d == nil {
		return false
	}
	v, err := parseLiteral(d.Type, d.Value, tag)
	if err != nil {
		return false
	}
	b, ok := v.([]byte)
	return ok && c.st.serverBytes[string(b)]
}

func isDiscreteLogSigner(alg uint32) bool {
	switch kmip.CryptographicAlgorithm(alg) {
	case kmip.CryptographicAlgorithmECDSA, kmip.CryptographicAlgorithmEC, kmip.CryptographicAlgorithmDSA:
		return true
	}
	return false
}
