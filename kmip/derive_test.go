package kmip_test

import (
	"bytes"
	"testing"
	"time"

	"github.com/minikms/minikms/engine"
	okmip "github.com/ovh/kmip-go"
	"github.com/ovh/kmip-go/payloads"
	"github.com/ovh/kmip-go/ttlv"
)

// clientDerivationMethod encodes as the Derivation Method enumeration,
// which the codec does not define.
type clientDerivationMethod uint32

func init() {
	ttlv.RegisterEnum(okmip.TagDerivationMethod, map[clientDerivationMethod]string{1: "PBKDF2", 2: "HASH", 3: "HMAC", 4: "ENCRYPT", 5: "NIST800_108_C", 6: "NIST800_108_F"})
}

type derivationParams struct {
	CryptographicParameters *okmip.CryptographicParameters
	InitializationVector    []byte `ttlv:",omitempty"`
	DerivationData          []byte `ttlv:",omitempty"`
	Salt                    []byte `ttlv:",omitempty"`
	IterationCount          *int32
}

// deriveReq is Derive Key as a client sends it.
type deriveReq struct {
	ObjectType           okmip.ObjectType `ttlv:",omitempty"`
	UniqueIdentifier     []string
	DerivationMethod     clientDerivationMethod `ttlv:",omitempty"`
	DerivationParameters *derivationParams
	TemplateAttribute    *okmip.TemplateAttribute
}

func (*deriveReq) Operation() okmip.Operation { return okmip.OperationDeriveKey }

func aes128(extra ...okmip.Attribute) *okmip.TemplateAttribute {
	return &okmip.TemplateAttribute{Attribute: append([]okmip.Attribute{
		{AttributeName: okmip.AttributeNameCryptographicAlgorithm, AttributeValue: okmip.CryptographicAlgorithmAES},
		{AttributeName: okmip.AttributeNameCryptographicLength, AttributeValue: int32(128)},
	}, extra...)}
}

func TestDeriveKeyOverKMIP(t *testing.T) {
	env := startKMS(t, nil)
	w := dialAdmin(t, env)
	// OASIS TC-DERIVEKEY-1-10.
	base := w.registerSym(okmip.CryptographicAlgorithmAES, mustHex(t, "00112233445566778899aabbccddeeff"),
		okmip.CryptographicUsageEncrypt|okmip.CryptographicUsageDecrypt|okmip.CryptographicUsageDeriveKey)
	sha256 := &okmip.CryptographicParameters{HashingAlgorithm: okmip.HashingAlgorithmSHA_256}
	hashReq := &deriveReq{ObjectType: okmip.ObjectTypeSymmetricKey, UniqueIdentifier: []string{base}, DerivationMethod: 2,
		DerivationParameters: &derivationParams{CryptographicParameters: sha256}, TemplateAttribute: aes128()}
	// Derive then Get in one batch: the new key is the ID Placeholder.
	resp, _ := w.do(newRequest(v14, hashReq, &payloads.GetRequestPayload{}))
	derived := fieldOf(t, resp.BatchItem[0], okmip.TagUniqueIdentifier).(string)
	wantSuccess(t, resp.BatchItem[1])
	g := resp.BatchItem[1].ResponsePayload.(*payloads.GetResponsePayload)
	if _, key := keyOf(t, g); g.UniqueIdentifier != derived || !bytes.Equal(key, mustHex(t, "a8faed6abbf35c12a4b26e40f6feb19d")) {
		t.Fatalf("derived key %s: %x", g.UniqueIdentifier, key)
	}
	links := ok[*payloads.GetAttributesResponsePayload](w, v14, &payloads.GetAttributesRequestPayload{UniqueIdentifier: derived,
		AttributeName: []okmip.AttributeName{okmip.AttributeNameLink}}).Attribute
	if len(links) != 1 || links[0].AttributeValue.(okmip.Link) != (okmip.Link{LinkType: okmip.LinkTypeDerivationBaseObjectLink, LinkedObjectIdentifier: base}) {
		t.Fatalf("derived key links %+v", links)
	}

	// PBKDF2 from a password (RFC 6070) into Secret Data.
	pw := ok[*payloads.RegisterResponsePayload](w, v14, &payloads.RegisterRequestPayload{ObjectType: okmip.ObjectTypeSecretData,
		TemplateAttribute: okmip.TemplateAttribute{Attribute: []okmip.Attribute{
			{AttributeName: okmip.AttributeNameCryptographicUsageMask, AttributeValue: okmip.CryptographicUsageDeriveKey},
			{AttributeName: okmip.AttributeNameActivationDate, AttributeValue: time.Now().Add(-time.Hour).Truncate(time.Second)},
		}},
		Object: &okmip.SecretData{SecretDataType: okmip.SecretDataTypePassword, KeyBlock: okmip.KeyBlock{KeyFormatType: okmip.KeyFormatTypeOpaque,
			KeyValue: &okmip.KeyValue{Plain: &okmip.PlainKeyValue{KeyMaterial: okmip.KeyMaterial{Bytes: ptr([]byte("password"))}}}}},
	}).UniqueIdentifier
	c := int32(4096)
	secret := fieldOf(t, w.one(v14, &deriveReq{ObjectType: okmip.ObjectTypeSecretData, UniqueIdentifier: []string{pw}, DerivationMethod: 1,
		DerivationParameters: &derivationParams{Salt: []byte("salt"), IterationCount: &c},
		TemplateAttribute:    &okmip.TemplateAttribute{Attribute: []okmip.Attribute{{AttributeName: okmip.AttributeNameCryptographicLength, AttributeValue: int32(160)}}},
	}), okmip.TagUniqueIdentifier).(string)
	sd := ok[*payloads.GetResponsePayload](w, v14, &payloads.GetRequestPayload{UniqueIdentifier: secret})
	got, isSD := sd.Object.(*okmip.SecretData)
	if !isSD {
		t.Fatalf("derived %T", sd.Object)
	}
	if b, _ := got.KeyBlock.GetBytes(); !bytes.Equal(b, mustHex(t, "4b007901b765489abead49d926f721d065a429c1")) {
		t.Fatalf("PBKDF2 gave %x", b)
	}

	t.Run("refusals", func(t *testing.T) {
		noDerive := w.activeKey()
		cases := []struct {
			name   string
			pl     *deriveReq
			reason okmip.ResultReason
		}{
			{"feedback mode", &deriveReq{ObjectType: okmip.ObjectTypeSymmetricKey, UniqueIdentifier: []string{base}, DerivationMethod: 6,
				DerivationParameters: &derivationParams{DerivationData: []byte("x")}, TemplateAttribute: aes128()}, okmip.ResultReasonFeatureNotSupported},
			{"no identifier (no ID Placeholder here)", &deriveReq{ObjectType: okmip.ObjectTypeSymmetricKey, DerivationMethod: 2,
				DerivationParameters: &derivationParams{CryptographicParameters: sha256}, TemplateAttribute: aes128()}, okmip.ResultReasonMissingData},
			{"no derivation parameters", &deriveReq{ObjectType: okmip.ObjectTypeSymmetricKey, UniqueIdentifier: []string{base}, DerivationMethod: 2,
				TemplateAttribute: aes128()}, okmip.ResultReasonMissingData},
			{"no template", &deriveReq{ObjectType: okmip.ObjectTypeSymmetricKey, UniqueIdentifier: []string{base}, DerivationMethod: 2,
				DerivationParameters: &derivationParams{CryptographicParameters: sha256}}, okmip.ResultReasonMissingData},
			{"no length", &deriveReq{ObjectType: okmip.ObjectTypeSymmetricKey, UniqueIdentifier: []string{base}, DerivationMethod: 2,
				DerivationParameters: &derivationParams{CryptographicParameters: sha256},
				TemplateAttribute:    &okmip.TemplateAttribute{Attribute: []okmip.Attribute{{AttributeName: okmip.AttributeNameCryptographicAlgorithm, AttributeValue: okmip.CryptographicAlgorithmAES}}}},
				okmip.ResultReasonMissingData},
			{"usage mask", &deriveReq{ObjectType: okmip.ObjectTypeSymmetricKey, UniqueIdentifier: []string{noDerive}, DerivationMethod: 2,
				DerivationParameters: &derivationParams{CryptographicParameters: sha256}, TemplateAttribute: aes128()}, okmip.ResultReasonPermissionDenied},
			{"unknown base", &deriveReq{ObjectType: okmip.ObjectTypeSymmetricKey, UniqueIdentifier: []string{"nope"}, DerivationMethod: 2,
				DerivationParameters: &derivationParams{CryptographicParameters: sha256}, TemplateAttribute: aes128()}, okmip.ResultReasonItemNotFound},
		}
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				w.t = t
				w.fails(v14, c.pl, c.reason)
			})
		}
	})

	other := dialAs(t, env, "globex", "admin", engine.RoleAdmin)
	other.fails(v14, hashReq, okmip.ResultReasonItemNotFound)
	auditor := dialAs(t, env, "acme", "audit", engine.RoleAuditor)
	auditor.fails(v14, hashReq, okmip.ResultReasonPermissionDenied)
}

func ptr[T any](v T) *T { return &v }
