package kmip_test

import (
	"bytes"
	"encoding/hex"
	"math/big"
	"testing"

	okmip "github.com/ovh/kmip-go"
	"github.com/ovh/kmip-go/payloads"
	"github.com/ovh/kmip-go/ttlv"
)

// skCreateReq and skJoinReq are Create / Join Split Key as a client sends them.
type skCreateReq struct {
	ObjectType        okmip.ObjectType     `ttlv:",omitempty"`
	UniqueIdentifier  string               `ttlv:",omitempty"`
	SplitKeyParts     int32                `ttlv:",omitempty"`
	SplitKeyThreshold int32                `ttlv:",omitempty"`
	SplitKeyMethod    okmip.SplitKeyMethod `ttlv:",omitempty"`
	PrimeFieldSize    *big.Int
	TemplateAttribute *okmip.TemplateAttribute
}

func (*skCreateReq) Operation() okmip.Operation { return okmip.OperationCreateSplitKey }

type skJoinReq struct {
	ObjectType        okmip.ObjectType `ttlv:",omitempty"`
	UniqueIdentifier  []string
	TemplateAttribute *okmip.TemplateAttribute
}

func (*skJoinReq) Operation() okmip.Operation { return okmip.OperationJoinSplitKey }

// skIDs returns the Unique Identifiers of a successful answer the codec
// has no payload for.
func skIDs(t *testing.T, bi okmip.ResponseBatchItem) []string {
	t.Helper()
	if bi.ResultStatus != okmip.ResultStatusSuccess {
		t.Fatalf("%s failed: %s: %s", ttlv.EnumStr(bi.Operation), ttlv.EnumStr(bi.ResultReason), bi.ResultMessage)
	}
	up, isUnknown := bi.ResponsePayload.(*okmip.UnknownPayload)
	if !isUnknown {
		t.Fatalf("payload %T", bi.ResponsePayload)
	}
	var ids []string
	for _, f := range up.Fields {
		if f.Tag == okmip.TagUniqueIdentifier {
			ids = append(ids, f.Value.(string))
		}
	}
	return ids
}

func skHex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func skAES128() *okmip.TemplateAttribute {
	return &okmip.TemplateAttribute{Attribute: []okmip.Attribute{
		{AttributeName: okmip.AttributeNameCryptographicAlgorithm, AttributeValue: okmip.CryptographicAlgorithmAES},
		{AttributeName: okmip.AttributeNameCryptographicLength, AttributeValue: int32(128)},
	}}
}

func skGetKey(t *testing.T, w *wireConn, v okmip.ProtocolVersion, id string) okmip.Object {
	t.Helper()
	return ok[*payloads.GetResponsePayload](w, v, &payloads.GetRequestPayload{UniqueIdentifier: id}).Object
}

func TestSplitJoinOverKMIP(t *testing.T) {
	env := startKMS(t, nil)
	w := dialAdmin(t, env)
	key := skHex(t, "0102030405060708090a0b0c0d0e0f10")
	base := ok[*payloads.RegisterResponsePayload](w, v12, &payloads.RegisterRequestPayload{
		ObjectType: okmip.ObjectTypeSymmetricKey,
		Object: &okmip.SymmetricKey{KeyBlock: okmip.KeyBlock{
			KeyFormatType: okmip.KeyFormatTypeRaw, CryptographicAlgorithm: okmip.CryptographicAlgorithmAES, CryptographicLength: 128,
			KeyValue: &okmip.KeyValue{Plain: &okmip.PlainKeyValue{KeyMaterial: okmip.KeyMaterial{Bytes: &key}}},
		}},
	}).UniqueIdentifier

	for _, method := range []okmip.SplitKeyMethod{okmip.SplitKeyMethodPolynomialSharingGF28, okmip.SplitKeyMethodPolynomialSharingGF216, okmip.SplitKeyMethodPolynomialSharingPrimeField} {
		req := &skCreateReq{ObjectType: okmip.ObjectTypeSplitKey, UniqueIdentifier: base, SplitKeyParts: 5, SplitKeyThreshold: 3, SplitKeyMethod: method}
		if method == okmip.SplitKeyMethodPolynomialSharingPrimeField {
			req.PrimeFieldSize = new(big.Int).Add(new(big.Int).Lsh(big.NewInt(1), 128), big.NewInt(51)) // 2^128+51 is prime
		}
		parts := skIDs(t, w.one(v12, req))
		if len(parts) != 5 {
			t.Fatalf("%d parts", len(parts))
		}
		sk, isSplit := skGetKey(t, w, v12, parts[1]).(*okmip.SplitKey)
		if !isSplit || sk.KeyPartIdentifier != 2 || sk.SplitKeyParts != 5 || sk.SplitKeyThreshold != 3 || sk.SplitKeyMethod != method ||
			sk.KeyBlock.CryptographicAlgorithm != okmip.CryptographicAlgorithmAES || sk.KeyBlock.CryptographicLength != 128 {
			t.Fatalf("split key part: %+v", sk)
		}
		if (method == okmip.SplitKeyMethodPolynomialSharingPrimeField) != (sk.PrimeFieldSize != nil) {
			t.Fatalf("Prime Field Size %v with method %v", sk.PrimeFieldSize, method)
		}
		joined := skIDs(t, w.one(v12, &skJoinReq{ObjectType: okmip.ObjectTypeSymmetricKey, UniqueIdentifier: []string{parts[4], parts[0], parts[2]}, TemplateAttribute: skAES128()}))
		got := skGetKey(t, w, v12, joined[0]).(*okmip.SymmetricKey)
		if b, _ := got.KeyBlock.GetBytes(); !bytes.Equal(b, key) {
			t.Fatalf("%v: joined %x", method, b)
		}
		w.fails(v12, &skJoinReq{ObjectType: okmip.ObjectTypeSymmetricKey, UniqueIdentifier: []string{parts[3], parts[1]}}, okmip.ResultReasonCryptographicFailure)
	}

	// Bad requests.
	bad := func(mut func(r *skCreateReq)) *skCreateReq {
		r := &skCreateReq{ObjectType: okmip.ObjectTypeSplitKey, UniqueIdentifier: base, SplitKeyParts: 4, SplitKeyThreshold: 2, SplitKeyMethod: okmip.SplitKeyMethodPolynomialSharingGF28}
		mut(r)
		return r
	}
	w.fails(v12, bad(func(r *skCreateReq) { r.SplitKeyMethod = okmip.SplitKeyMethodXOR }), okmip.ResultReasonInvalidField) // XOR needs every part
	w.fails(v12, bad(func(r *skCreateReq) { r.SplitKeyThreshold = 5 }), okmip.ResultReasonInvalidField)
	w.fails(v12, bad(func(r *skCreateReq) { r.SplitKeyParts, r.SplitKeyThreshold = 300, 300 }), okmip.ResultReasonInvalidField)
	w.fails(v12, bad(func(r *skCreateReq) { r.ObjectType = okmip.ObjectTypeSymmetricKey }), okmip.ResultReasonInvalidField)
	w.fails(v12, bad(func(r *skCreateReq) { r.SplitKeyMethod = 0 }), okmip.ResultReasonMissingData)
	w.fails(v12, bad(func(r *skCreateReq) { r.UniqueIdentifier = "missing" }), okmip.ResultReasonItemNotFound)
	w.fails(v12, &skJoinReq{ObjectType: okmip.ObjectTypeSymmetricKey, UniqueIdentifier: []string{base}}, okmip.ResultReasonIllegalOperation)

	// XOR with a generated key, in one batch with the Join.
	resp, _ := w.do(newRequest(v14, &skCreateReq{ObjectType: okmip.ObjectTypeSplitKey, SplitKeyParts: 3, SplitKeyThreshold: 3,
		SplitKeyMethod: okmip.SplitKeyMethodXOR, TemplateAttribute: skAES128()}))
	parts := skIDs(t, resp.BatchItem[0])
	joined := skIDs(t, w.one(v14, &skJoinReq{ObjectType: okmip.ObjectTypeSecretData, UniqueIdentifier: parts}))
	if sd, isSD := skGetKey(t, w, v14, joined[0]).(*okmip.SecretData); !isSD {
		t.Fatalf("joined object %T", sd)
	}

	// An auditor may not split.
	a := dialAs(t, env, "default", "auditor", "auditor")
	a.fails(v14, bad(func(r *skCreateReq) {}), okmip.ResultReasonPermissionDenied)
}

// TC-SJ-3-12: registered GF(2^8) parts join to the pinned key.
func TestRegisterSplitKeyParts(t *testing.T) {
	env := startKMS(t, nil)
	w := dialAdmin(t, env)
	shares := []string{"66C46A7754F94DE420C7B1A7FFF5EC56", "CF93D1E2A7E593CD5B8D6247F4E5D49C", "A855B891F61AD9217240D8EC061E37DA", "803DBAD55CDD329FAD19D99AE2C5A415"}
	var ids []string
	for i, s := range shares {
		b := skHex(t, s)
		ids = append(ids, ok[*payloads.RegisterResponsePayload](w, v12, &payloads.RegisterRequestPayload{
			ObjectType: okmip.ObjectTypeSplitKey,
			Object: &okmip.SplitKey{SplitKeyParts: 4, KeyPartIdentifier: int32(i + 1), SplitKeyThreshold: 2, SplitKeyMethod: okmip.SplitKeyMethodPolynomialSharingGF28,
				KeyBlock: okmip.KeyBlock{KeyFormatType: okmip.KeyFormatTypeRaw, KeyValue: &okmip.KeyValue{Plain: &okmip.PlainKeyValue{KeyMaterial: okmip.KeyMaterial{Bytes: &b}}}}},
		}).UniqueIdentifier)
	}
	got := skGetKey(t, w, v12, ids[2]).(*okmip.SplitKey)
	if b, _ := got.KeyBlock.GetBytes(); !bytes.Equal(b, skHex(t, shares[2])) || got.KeyPartIdentifier != 3 || got.KeyBlock.CryptographicAlgorithm != 0 {
		t.Fatalf("registered part: %+v", got)
	}
	joined := skIDs(t, w.one(v12, &skJoinReq{ObjectType: okmip.ObjectTypeSymmetricKey, UniqueIdentifier: []string{ids[3], ids[0]}, TemplateAttribute: skAES128()}))
	key := skGetKey(t, w, v12, joined[0]).(*okmip.SymmetricKey)
	if b, _ := key.KeyBlock.GetBytes(); !bytes.Equal(b, skHex(t, "0102030405060708090a0b0c0d0e0f10")) {
		t.Fatalf("joined %x", b)
	}
	w.fails(v12, &skJoinReq{ObjectType: okmip.ObjectTypeSymmetricKey, UniqueIdentifier: []string{ids[1]}}, okmip.ResultReasonCryptographicFailure)
	// Bad parts.
	b := skHex(t, "00112233")
	w.fails(v12, &payloads.RegisterRequestPayload{ObjectType: okmip.ObjectTypeSplitKey,
		Object: &okmip.SplitKey{SplitKeyParts: 2, KeyPartIdentifier: 3, SplitKeyThreshold: 2, SplitKeyMethod: okmip.SplitKeyMethodXOR,
			KeyBlock: okmip.KeyBlock{KeyFormatType: okmip.KeyFormatTypeRaw, KeyValue: &okmip.KeyValue{Plain: &okmip.PlainKeyValue{KeyMaterial: okmip.KeyMaterial{Bytes: &b}}}}},
	}, okmip.ResultReasonInvalidField)
	w.fails(v12, &payloads.RegisterRequestPayload{ObjectType: okmip.ObjectTypeSplitKey,
		Object: &okmip.SplitKey{SplitKeyParts: 2, KeyPartIdentifier: 1, SplitKeyThreshold: 2, SplitKeyMethod: okmip.SplitKeyMethodXOR,
			KeyBlock: okmip.KeyBlock{KeyFormatType: okmip.KeyFormatTypePKCS_8, KeyValue: &okmip.KeyValue{Plain: &okmip.PlainKeyValue{KeyMaterial: okmip.KeyMaterial{Bytes: &b}}}}},
	}, okmip.ResultReasonKeyFormatTypeNotSupported)
}
