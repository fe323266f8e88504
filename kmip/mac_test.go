package kmip_test

import (
	"bytes"
	"encoding/hex"
	"testing"
	"time"

	"github.com/minikms/minikms/engine"
	okmip "github.com/ovh/kmip-go"
	"github.com/ovh/kmip-go/payloads"
	"github.com/ovh/kmip-go/ttlv"
)

// Client-side payloads of operations the codec has no payload for.

type macReq struct {
	UniqueIdentifier        string `ttlv:",omitempty"`
	CryptographicParameters *okmip.CryptographicParameters
	Data                    []byte `ttlv:",omitempty"`
	CorrelationValue        []byte `ttlv:",omitempty"`
	InitIndicator           *bool
}

func (*macReq) Operation() okmip.Operation { return okmip.OperationMAC }

type macVerifyReq struct {
	UniqueIdentifier        string `ttlv:",omitempty"`
	CryptographicParameters *okmip.CryptographicParameters
	Data                    []byte `ttlv:",omitempty"`
	MACData                 []byte `ttlv:",omitempty"`
}

func (*macVerifyReq) Operation() okmip.Operation { return okmip.OperationMACVerify }

// fieldOf returns the value of the first field with tag of an answer the
// codec does not type.
func fieldOf(t *testing.T, bi okmip.ResponseBatchItem, tag int) any {
	t.Helper()
	if bi.ResultStatus != okmip.ResultStatusSuccess {
		t.Fatalf("%s failed: %s: %s", ttlv.EnumStr(bi.Operation), ttlv.EnumStr(bi.ResultReason), bi.ResultMessage)
	}
	up, isUnknown := bi.ResponsePayload.(*okmip.UnknownPayload)
	if !isUnknown {
		t.Fatalf("payload %T", bi.ResponsePayload)
	}
	for _, f := range up.Fields {
		if f.Tag == tag {
			return f.Value
		}
	}
	t.Fatalf("no %s in the answer", ttlv.TagString(tag))
	return nil
}

func mustHex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// registerSym registers raw key material of alg with a usage mask,
// active an hour ago, and returns its id.
func (w *wireConn) registerSym(alg okmip.CryptographicAlgorithm, key []byte, mask okmip.CryptographicUsageMask, extra ...okmip.Attribute) string {
	w.t.Helper()
	sk := symmetricKey(okmip.KeyFormatTypeRaw, bytes.Clone(key))
	sk.KeyBlock.CryptographicAlgorithm = alg
	return ok[*payloads.RegisterResponsePayload](w, v14, &payloads.RegisterRequestPayload{ObjectType: okmip.ObjectTypeSymmetricKey,
		TemplateAttribute: okmip.TemplateAttribute{Attribute: append([]okmip.Attribute{
			{AttributeName: okmip.AttributeNameCryptographicUsageMask, AttributeValue: mask},
			{AttributeName: okmip.AttributeNameActivationDate, AttributeValue: time.Now().Add(-time.Hour).Truncate(time.Second)},
		}, extra...)},
		Object: sk}).UniqueIdentifier
}

func TestMACOverKMIP(t *testing.T) {
	env := startKMS(t, nil)
	w := dialAdmin(t, env)
	macUse := okmip.CryptographicUsageMACGenerate | okmip.CryptographicUsageMACVerify
	// OASIS CS-AC-M-4: an AES-typed key with HMAC-SHA-256 parameters.
	id := w.registerSym(okmip.CryptographicAlgorithmAES, mustHex(t, "0123456789abcdef0123456789abcdef"), macUse,
		okmip.Attribute{AttributeName: okmip.AttributeNameCryptographicParameters, AttributeValue: okmip.CryptographicParameters{CryptographicAlgorithm: okmip.CryptographicAlgorithmHMACSHA256}})
	data := mustHex(t, "01020304050607080910111213141516")
	want := mustHex(t, "c911e78196d64c30f631bb079ea37b97a95936d4da764d6a171df030c895ecf9")
	for _, v := range []okmip.ProtocolVersion{v12, v14} {
		bi := w.one(v, &macReq{UniqueIdentifier: id, Data: data})
		if got := fieldOf(t, bi, okmip.TagMACData).([]byte); !bytes.Equal(got, want) {
			t.Fatalf("MAC %x, want %x", got, want)
		}
		if got := fieldOf(t, bi, okmip.TagUniqueIdentifier); got != id {
			t.Fatalf("MAC answers for %v", got)
		}
	}
	validity := func(mac []byte) okmip.ValidityIndicator {
		t.Helper()
		bi := w.one(v14, &macVerifyReq{UniqueIdentifier: id, Data: data, MACData: mac})
		return okmip.ValidityIndicator(fieldOf(t, bi, okmip.TagValidityIndicator).(ttlv.Enum))
	}
	if v := validity(want); v != okmip.ValidityIndicatorValid {
		t.Fatalf("the right MAC is %s", ttlv.EnumStr(v))
	}
	bad := bytes.Clone(want)
	bad[0] ^= 0x80
	if v := validity(bad); v != okmip.ValidityIndicatorInvalid {
		t.Fatalf("a wrong MAC is %s", ttlv.EnumStr(v))
	}

	// AES-CMAC asked in the request (RFC 4493 example 2).
	cmacKey := w.registerSym(okmip.CryptographicAlgorithmAES, mustHex(t, "2b7e151628aed2a6abf7158809cf4f3c"), macUse)
	bi := w.one(v14, &macReq{UniqueIdentifier: cmacKey, Data: mustHex(t, "6bc1bee22e409f96e93d7e117393172a"),
		CryptographicParameters: &okmip.CryptographicParameters{CryptographicAlgorithm: okmip.CryptographicAlgorithmAES}})
	if got := fieldOf(t, bi, okmip.TagMACData).([]byte); !bytes.Equal(got, mustHex(t, "070a16b46b4d4144f79bdd9dd04a287c")) {
		t.Fatalf("CMAC %x", got)
	}

	// The ID Placeholder: Register then MAC in one batch.
	sk := symmetricKey(okmip.KeyFormatTypeRaw, bytes.Repeat([]byte{1}, 32))
	sk.KeyBlock.CryptographicAlgorithm = okmip.CryptographicAlgorithmHMACSHA256
	resp, _ := w.do(newRequest(v14,
		&payloads.RegisterRequestPayload{ObjectType: okmip.ObjectTypeSymmetricKey, Object: sk, TemplateAttribute: okmip.TemplateAttribute{Attribute: []okmip.Attribute{
			{AttributeName: okmip.AttributeNameCryptographicUsageMask, AttributeValue: macUse},
			{AttributeName: okmip.AttributeNameActivationDate, AttributeValue: time.Now().Add(-time.Minute).Truncate(time.Second)},
		}}},
		&macReq{Data: []byte("x")}))
	wantSuccess(t, resp.BatchItem[1])
	if n := len(fieldOf(t, resp.BatchItem[1], okmip.TagMACData).([]byte)); n != 32 {
		t.Fatalf("HMAC-SHA-256 of %d bytes", n)
	}

	t.Run("refusals", func(t *testing.T) {
		w.t = t
		defer func() { w.t = nil }()
		yes := true
		encOnly := w.createKey() // Encrypt|Decrypt, pre-active
		active := w.registerSym(okmip.CryptographicAlgorithmHMACSHA256, bytes.Repeat([]byte{2}, 32), okmip.CryptographicUsageEncrypt)
		cases := []struct {
			name   string
			pl     okmip.OperationPayload
			reason okmip.ResultReason
		}{
			{"streaming", &macReq{UniqueIdentifier: id, Data: data, InitIndicator: &yes}, okmip.ResultReasonFeatureNotSupported},
			{"correlation value", &macReq{UniqueIdentifier: id, Data: data, CorrelationValue: []byte{1}}, okmip.ResultReasonFeatureNotSupported},
			{"no data", &macReq{UniqueIdentifier: id}, okmip.ResultReasonMissingData},
			{"verify without MAC", &macVerifyReq{UniqueIdentifier: id, Data: data}, okmip.ResultReasonMissingData},
			{"pre-active", &macReq{UniqueIdentifier: encOnly, Data: data}, okmip.ResultReasonPermissionDenied},
			{"usage mask", &macReq{UniqueIdentifier: active, Data: data}, okmip.ResultReasonPermissionDenied},
			{"unknown key", &macReq{UniqueIdentifier: "nope", Data: data}, okmip.ResultReasonItemNotFound},
			{"unsupported algorithm", &macReq{UniqueIdentifier: id, Data: data,
				CryptographicParameters: &okmip.CryptographicParameters{CryptographicAlgorithm: okmip.CryptographicAlgorithmRSA}}, okmip.ResultReasonFeatureNotSupported},
		}
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				w.t = t
				w.fails(v14, c.pl, c.reason)
			})
		}
	})

	other := dialAs(t, env, "globex", "admin", engine.RoleAdmin)
	other.fails(v14, &macReq{UniqueIdentifier: id, Data: data}, okmip.ResultReasonItemNotFound)
	other.fails(v14, &macVerifyReq{UniqueIdentifier: id, Data: data, MACData: want}, okmip.ResultReasonItemNotFound)
	auditor := dialAs(t, env, "acme", "audit", engine.RoleAuditor)
	auditor.fails(v14, &macReq{UniqueIdentifier: id, Data: data}, okmip.ResultReasonPermissionDenied)
}

func TestHashOverKMIP(t *testing.T) {
	env := startKMS(t, nil)
	w := dialAdmin(t, env)
	got := ok[*payloads.HashResponsePayload](w, v14, &payloads.HashRequestPayload{
		CryptographicParameters: okmip.CryptographicParameters{HashingAlgorithm: okmip.HashingAlgorithmSHA_512},
		Data:                    mustHex(t, "01020304050607080910111213141516")})
	if want := mustHex(t, "406a806f76c06b90c8aca278995d4271037f91124ebfaba5475f1f59ee21ebe3a0cc7f5ca6f2183d360bcc762cef68713de7c6498eb08dc591075ca62f7a0717"); !bytes.Equal(got.Data, want) {
		t.Fatalf("SHA-512 %x", got.Data)
	}
	yes := true
	w.fails(v14, &payloads.HashRequestPayload{CryptographicParameters: okmip.CryptographicParameters{HashingAlgorithm: okmip.HashingAlgorithmMD5}, Data: []byte("x")}, okmip.ResultReasonFeatureNotSupported)
	w.fails(v14, &payloads.HashRequestPayload{Data: []byte("x")}, okmip.ResultReasonMissingData)
	w.fails(v14, &payloads.HashRequestPayload{CryptographicParameters: okmip.CryptographicParameters{HashingAlgorithm: okmip.HashingAlgorithmSHA_256}}, okmip.ResultReasonMissingData)
	w.fails(v14, &payloads.HashRequestPayload{CryptographicParameters: okmip.CryptographicParameters{HashingAlgorithm: okmip.HashingAlgorithmSHA_256}, Data: []byte("x"), InitIndicator: &yes}, okmip.ResultReasonFeatureNotSupported)
	auditor := dialAs(t, env, "acme", "audit", engine.RoleAuditor)
	auditor.fails(v14, &payloads.HashRequestPayload{CryptographicParameters: okmip.CryptographicParameters{HashingAlgorithm: okmip.HashingAlgorithmSHA_256}, Data: []byte("x")}, okmip.ResultReasonPermissionDenied)
}
