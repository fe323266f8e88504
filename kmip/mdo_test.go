package kmip_test

import (
	"bytes"
	"testing"

	okmip "github.com/ovh/kmip-go"
	"github.com/ovh/kmip-go/payloads"
)

func TestMetadataOnlyKey(t *testing.T) {
	env := startKMS(t, nil)
	w := dialAdmin(t, env)
	loc := okmip.Attribute{AttributeName: okmip.AttributeNameKeyValueLocation, AttributeValue: okmip.KeyValueLocation{
		KeyValueLocationValue: "pkcs11:token=T;object=K", KeyValueLocationType: okmip.KeyValueLocationTypeURI}}
	id := ok[*payloads.RegisterResponsePayload](w, v12, &payloads.RegisterRequestPayload{
		ObjectType: okmip.ObjectTypeSymmetricKey,
		TemplateAttribute: okmip.TemplateAttribute{Attribute: []okmip.Attribute{loc,
			{AttributeName: okmip.AttributeNameCryptographicUsageMask, AttributeValue: okmip.CryptographicUsageEncrypt | okmip.CryptographicUsageDecrypt}}},
		Object: &okmip.SymmetricKey{KeyBlock: okmip.KeyBlock{KeyFormatType: okmip.KeyFormatTypeRaw,
			CryptographicAlgorithm: okmip.CryptographicAlgorithmAES, CryptographicLength: 128}},
	}).UniqueIdentifier

	got := skGetKey(t, w, v12, id).(*okmip.SymmetricKey)
	if got.KeyBlock.KeyValue != nil || got.KeyBlock.CryptographicLength != 128 || got.KeyBlock.KeyFormatType != okmip.KeyFormatTypeRaw {
		t.Fatalf("metadata-only Get: %+v", got.KeyBlock)
	}
	attrs := ok[*payloads.GetAttributesResponsePayload](w, v12, &payloads.GetAttributesRequestPayload{UniqueIdentifier: id,
		AttributeName: []okmip.AttributeName{okmip.AttributeNameKeyValuePresent, okmip.AttributeNameKeyValueLocation}}).Attribute
	if len(attrs) != 2 {
		t.Fatalf("attributes %+v", attrs)
	}
	for _, a := range attrs {
		if a.AttributeName == okmip.AttributeNameKeyValuePresent && a.AttributeValue != false {
			t.Fatalf("Key Value Present %v", a.AttributeValue)
		}
	}
	// A key with a value is not found by Key Value Present false.
	other := w.createKey()
	found := w.locate(okmip.Attribute{AttributeName: okmip.AttributeNameKeyValuePresent, AttributeValue: false})
	if len(found) != 1 || found[0] != id {
		t.Fatalf("Locate by Key Value Present false: %v (other key %s)", found, other)
	}

	ok[*payloads.ActivateResponsePayload](w, v12, &payloads.ActivateRequestPayload{UniqueIdentifier: id})
	enc := &payloads.EncryptRequestPayload{UniqueIdentifier: id, Data: []byte("0123456789abcdef")}
	w.fails(v12, enc, okmip.ResultReasonKeyValueNotPresent)
	w.fails(v11, enc, okmip.ResultReasonItemNotFound) // 1.1 has no Key Value Not Present
	w.fails(v12, &skCreateReq{ObjectType: okmip.ObjectTypeSplitKey, UniqueIdentifier: id, SplitKeyParts: 2, SplitKeyThreshold: 2,
		SplitKeyMethod: okmip.SplitKeyMethodXOR}, okmip.ResultReasonKeyValueNotPresent)
	w.fails(v12, &payloads.GetRequestPayload{UniqueIdentifier: id, KeyFormatType: okmip.KeyFormatTypePKCS_1}, okmip.ResultReasonKeyFormatTypeNotSupported)

	// Only symmetric keys may be metadata-only here.
	w.fails(v12, &payloads.RegisterRequestPayload{ObjectType: okmip.ObjectTypeSecretData,
		Object: &okmip.SecretData{SecretDataType: okmip.SecretDataTypeSeed, KeyBlock: okmip.KeyBlock{KeyFormatType: okmip.KeyFormatTypeRaw}}},
		okmip.ResultReasonFeatureNotSupported)
	// Algorithm and length are required.
	w.fails(v12, &payloads.RegisterRequestPayload{ObjectType: okmip.ObjectTypeSymmetricKey,
		Object: &okmip.SymmetricKey{KeyBlock: okmip.KeyBlock{KeyFormatType: okmip.KeyFormatTypeRaw}}}, okmip.ResultReasonMissingData)
}

func TestPGPKeyAsRegistered(t *testing.T) {
	env := startKMS(t, nil)
	w := dialAdmin(t, env)
	block := []byte("-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nmQENBFHA/dQBCADged9e6tib8klFhPpwSni1Jseckq\n-----END PGP PUBLIC KEY BLOCK-----\n")
	id := ok[*payloads.RegisterResponsePayload](w, v12, &payloads.RegisterRequestPayload{
		ObjectType: okmip.ObjectTypePGPKey,
		Object: &okmip.PGPKey{PGPKeyVersion: 4, KeyBlock: okmip.KeyBlock{KeyFormatType: okmip.KeyFormatTypeRaw,
			CryptographicAlgorithm: okmip.CryptographicAlgorithmRSA, CryptographicLength: 2048,
			KeyValue: &okmip.KeyValue{Plain: &okmip.PlainKeyValue{KeyMaterial: okmip.KeyMaterial{Bytes: &block}}}}},
	}).UniqueIdentifier
	got := skGetKey(t, w, v12, id).(*okmip.PGPKey)
	b, _ := got.KeyBlock.GetBytes()
	if got.PGPKeyVersion != 4 || !bytes.Equal(b, block) || got.KeyBlock.CryptographicAlgorithm != okmip.CryptographicAlgorithmRSA || got.KeyBlock.CryptographicLength != 2048 {
		t.Fatalf("PGP key: %+v", got)
	}
	names := ok[*payloads.GetAttributeListResponsePayload](w, v12, &payloads.GetAttributeListRequestPayload{UniqueIdentifier: id}).AttributeName
	hasDigest := false
	for _, n := range names {
		hasDigest = hasDigest || n == okmip.AttributeNameDigest
	}
	if !hasDigest {
		t.Fatalf("no Digest in %v", names)
	}
	w.fails(v12, &payloads.GetRequestPayload{UniqueIdentifier: id, KeyFormatType: okmip.KeyFormatTypeOpaque}, okmip.ResultReasonKeyFormatTypeNotSupported)
	w.fails(v12, &payloads.RegisterRequestPayload{ObjectType: okmip.ObjectTypePGPKey,
		Object: &okmip.PGPKey{PGPKeyVersion: 4, KeyBlock: okmip.KeyBlock{KeyFormatType: okmip.KeyFormatTypeX_509,
			KeyValue: &okmip.KeyValue{Plain: &okmip.PlainKeyValue{KeyMaterial: okmip.KeyMaterial{Bytes: &block}}}}},
	}, okmip.ResultReasonKeyFormatTypeNotSupported)
}
