package kmip_test

import (
	"bytes"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/minikms/minikms/engine"
	"github.com/minikms/minikms/kmip"
	okmip "github.com/ovh/kmip-go"
	"github.com/ovh/kmip-go/payloads"
	"github.com/ovh/kmip-go/ttlv"
)

func symmetricKey(format okmip.KeyFormatType, key []byte) *okmip.SymmetricKey {
	km := okmip.KeyMaterial{Bytes: &key}
	if format == okmip.KeyFormatTypeTransparentSymmetricKey {
		km = okmip.KeyMaterial{TransparentSymmetricKey: &okmip.TransparentSymmetricKey{Key: key}}
	}
	return &okmip.SymmetricKey{KeyBlock: okmip.KeyBlock{
		KeyFormatType: format, CryptographicAlgorithm: okmip.CryptographicAlgorithmAES, CryptographicLength: int32(8 * len(key)),
		KeyValue: &okmip.KeyValue{Plain: &okmip.PlainKeyValue{KeyMaterial: km}},
	}}
}

// keyOf returns the material of a symmetric key in a Get response.
func keyOf(t *testing.T, g *payloads.GetResponsePayload) (okmip.KeyFormatType, []byte) {
	t.Helper()
	sk, isKey := g.Object.(*okmip.SymmetricKey)
	if !isKey || g.ObjectType != okmip.ObjectTypeSymmetricKey {
		t.Fatalf("Get returned %T (%v)", g.Object, g.ObjectType)
	}
	kb := sk.KeyBlock
	if kb.CryptographicAlgorithm != okmip.CryptographicAlgorithmAES || kb.KeyValue == nil || kb.KeyValue.Plain == nil {
		t.Fatalf("key block %#v", kb)
	}
	km := kb.KeyValue.Plain.KeyMaterial
	switch kb.KeyFormatType {
	case okmip.KeyFormatTypeRaw:
		return kb.KeyFormatType, *km.Bytes
	case okmip.KeyFormatTypeTransparentSymmetricKey:
		return kb.KeyFormatType, km.TransparentSymmetricKey.Key
	}
	t.Fatalf("key format %v", kb.KeyFormatType)
	return 0, nil
}

func TestCreateRegisterGetSymmetricKey(t *testing.T) {
	env := startKMS(t, nil)
	w := dialAdmin(t, env)
	created := w.createKey()
	material := bytes.Repeat([]byte{0x5A}, 32)
	regRaw := ok[*payloads.RegisterResponsePayload](w, v14, &payloads.RegisterRequestPayload{ObjectType: okmip.ObjectTypeSymmetricKey,
		Object: symmetricKey(okmip.KeyFormatTypeRaw, slices.Clone(material))}).UniqueIdentifier
	regTransparent := ok[*payloads.RegisterResponsePayload](w, v14, &payloads.RegisterRequestPayload{ObjectType: okmip.ObjectTypeSymmetricKey,
		Object: symmetricKey(okmip.KeyFormatTypeTransparentSymmetricKey, slices.Clone(material))}).UniqueIdentifier

	var createdKey []byte
	for _, id := range []string{created, regRaw, regTransparent} {
		for _, c := range []struct {
			ask, want okmip.KeyFormatType
		}{
			{0, okmip.KeyFormatTypeRaw},
			{okmip.KeyFormatTypeRaw, okmip.KeyFormatTypeRaw},
			{okmip.KeyFormatTypeTransparentSymmetricKey, okmip.KeyFormatTypeTransparentSymmetricKey},
		} {
			for _, v := range []okmip.ProtocolVersion{v10, v14} {
				g := ok[*payloads.GetResponsePayload](w, v, &payloads.GetRequestPayload{UniqueIdentifier: id, KeyFormatType: c.ask})
				if g.UniqueIdentifier != id {
					t.Fatalf("Get(%s) answered for %s", id, g.UniqueIdentifier)
				}
				f, key := keyOf(t, g)
				if f != c.want || len(key) != 32 {
					t.Fatalf("Get(%s, %v) at %s: format %v, %d bytes", id, c.ask, v, f, len(key))
				}
				switch {
				case id != created && !bytes.Equal(key, material):
					t.Fatalf("registered key %s came back different", id)
				case id == created && createdKey == nil:
					createdKey = key
				case id == created && !bytes.Equal(key, createdKey):
					t.Fatal("the created key differs between formats")
				}
			}
		}
	}
	cases := []struct {
		name   string
		pl     okmip.OperationPayload
		reason okmip.ResultReason
	}{
		{"unsupported format PKCS#1", &payloads.GetRequestPayload{UniqueIdentifier: created, KeyFormatType: okmip.KeyFormatTypePKCS_1}, okmip.ResultReasonKeyFormatTypeNotSupported},
		{"unsupported format Opaque", &payloads.GetRequestPayload{UniqueIdentifier: created, KeyFormatType: okmip.KeyFormatTypeOpaque}, okmip.ResultReasonKeyFormatTypeNotSupported},
		{"unsupported format X.509", &payloads.GetRequestPayload{UniqueIdentifier: created, KeyFormatType: okmip.KeyFormatTypeX_509}, okmip.ResultReasonKeyFormatTypeNotSupported},
		{"key wrapping specification: wrapping key not active", &payloads.GetRequestPayload{UniqueIdentifier: created, KeyWrappingSpecification: &okmip.KeyWrappingSpecification{
			WrappingMethod: okmip.WrappingMethodEncrypt, EncryptionKeyInformation: &okmip.EncryptionKeyInformation{UniqueIdentifier: regRaw}}}, okmip.ResultReasonPermissionDenied},
		{"key compression", &payloads.GetRequestPayload{UniqueIdentifier: created, KeyCompressionType: okmip.KeyCompressionTypeECPublicKeyTypeUncompressed}, okmip.ResultReasonKeyCompressionTypeNotSupported},
		// The codec reads the object by its Object Type: a mismatch cannot be decoded.
		{"register: object type mismatch", &payloads.RegisterRequestPayload{ObjectType: okmip.ObjectTypeSecretData, Object: symmetricKey(okmip.KeyFormatTypeRaw, slices.Clone(material))}, okmip.ResultReasonInvalidMessage},
		{"register: opaque key format", &payloads.RegisterRequestPayload{ObjectType: okmip.ObjectTypeSymmetricKey, Object: symmetricKey(okmip.KeyFormatTypeOpaque, slices.Clone(material))}, okmip.ResultReasonKeyFormatTypeNotSupported},
		{"register: wrong length", &payloads.RegisterRequestPayload{ObjectType: okmip.ObjectTypeSymmetricKey, Object: symmetricKey(okmip.KeyFormatTypeRaw, make([]byte, 20))}, okmip.ResultReasonInvalidField},
		{"create: no algorithm", &payloads.CreateRequestPayload{ObjectType: okmip.ObjectTypeSymmetricKey}, okmip.ResultReasonMissingData},
		{"create: secret data", &payloads.CreateRequestPayload{ObjectType: okmip.ObjectTypeSecretData, TemplateAttribute: aesTemplate()}, okmip.ResultReasonInvalidField},
		{"create: unknown attribute", createAES(okmip.Attribute{AttributeName: "No Such Attribute", AttributeValue: "x"}), okmip.ResultReasonInvalidField},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			w.t = t
			w.fails(v14, c.pl, c.reason)
		})
	}
}

func TestGetSecretDataAndOpaqueObjects(t *testing.T) {
	env := startKMS(t, nil)
	w := dialAdmin(t, env)
	password := []byte("correct horse battery staple")
	sd := &okmip.SecretData{SecretDataType: okmip.SecretDataTypePassword, KeyBlock: okmip.KeyBlock{
		KeyFormatType: okmip.KeyFormatTypeOpaque,
		KeyValue:      &okmip.KeyValue{Plain: &okmip.PlainKeyValue{KeyMaterial: okmip.KeyMaterial{Bytes: &password}}},
	}}
	sdID := ok[*payloads.RegisterResponsePayload](w, v14, &payloads.RegisterRequestPayload{ObjectType: okmip.ObjectTypeSecretData, Object: sd}).UniqueIdentifier
	opaque := []byte{0, 1, 2, 3, 0xFF}
	opID := ok[*payloads.RegisterResponsePayload](w, v14, registerOpaque(opaque)).UniqueIdentifier

	for _, v := range []okmip.ProtocolVersion{v10, v12, v14} {
		g := ok[*payloads.GetResponsePayload](w, v, &payloads.GetRequestPayload{UniqueIdentifier: sdID})
		got, isSD := g.Object.(*okmip.SecretData)
		if !isSD || g.ObjectType != okmip.ObjectTypeSecretData || got.SecretDataType != okmip.SecretDataTypePassword ||
			got.KeyBlock.KeyFormatType != okmip.KeyFormatTypeOpaque || !bytes.Equal(*got.KeyBlock.KeyValue.Plain.KeyMaterial.Bytes, password) {
			t.Fatalf("secret data at %s: %#v", v, g.Object)
		}
		g = ok[*payloads.GetResponsePayload](w, v, &payloads.GetRequestPayload{UniqueIdentifier: sdID, KeyFormatType: okmip.KeyFormatTypeRaw})
		if got := g.Object.(*okmip.SecretData); got.KeyBlock.KeyFormatType != okmip.KeyFormatTypeRaw || !bytes.Equal(*got.KeyBlock.KeyValue.Plain.KeyMaterial.Bytes, password) {
			t.Fatalf("secret data as Raw at %s: %#v", v, got.KeyBlock)
		}
		g = ok[*payloads.GetResponsePayload](w, v, &payloads.GetRequestPayload{UniqueIdentifier: opID})
		gotOp, isOp := g.Object.(*okmip.OpaqueObject)
		if !isOp || g.ObjectType != okmip.ObjectTypeOpaqueObject || gotOp.OpaqueDataType != okmip.OpaqueDataType(0x80000001) || !bytes.Equal(gotOp.OpaqueDataValue, opaque) {
			t.Fatalf("opaque object at %s: %#v", v, g.Object)
		}
	}
	w.fails(v14, &payloads.GetRequestPayload{UniqueIdentifier: sdID, KeyFormatType: okmip.KeyFormatTypeTransparentSymmetricKey}, okmip.ResultReasonKeyFormatTypeNotSupported)
	w.fails(v14, &payloads.GetRequestPayload{UniqueIdentifier: opID, KeyFormatType: okmip.KeyFormatTypeRaw}, okmip.ResultReasonKeyFormatTypeNotSupported)
	w.fails(v14, &payloads.RegisterRequestPayload{ObjectType: okmip.ObjectTypeSecretData, Object: &okmip.SecretData{SecretDataType: 7, KeyBlock: sd.KeyBlock}}, okmip.ResultReasonInvalidField)
}

// encryptAlways and decryptAlways always send Data, even empty (the
// codec's payloads omit an empty Data).
type encryptAlways struct {
	UniqueIdentifier        string
	CryptographicParameters *okmip.CryptographicParameters
	Data                    []byte
}

func (*encryptAlways) Operation() okmip.Operation { return okmip.OperationEncrypt }

type decryptAlways struct {
	UniqueIdentifier           string
	CryptographicParameters    *okmip.CryptographicParameters
	Data                       []byte
	IVCounterNonce             []byte
	AuthenticatedEncryptionTag []byte `ttlv:",omitempty"`
}

func (*decryptAlways) Operation() okmip.Operation { return okmip.OperationDecrypt }

func TestEncryptDecryptEmptyData(t *testing.T) {
	env := startKMS(t, nil)
	w := dialAdmin(t, env)
	id := w.activeKey()
	for _, v := range []okmip.ProtocolVersion{v12, v14} {
		t.Run(v.String(), func(t *testing.T) {
			w.t = t
			resp, raw := w.do(newRequest(v, &encryptAlways{UniqueIdentifier: id, CryptographicParameters: gcmParams(), Data: []byte{}}))
			wantSuccess(t, resp.BatchItem[0])
			data := single(t, tagValues(t, raw, okmip.TagData), "Data")
			iv := single(t, tagValues(t, raw, okmip.TagIVCounterNonce), "IV/Counter/Nonce")
			var tag []byte
			if v.Minor() >= 4 {
				if len(data) != 0 {
					t.Fatalf("Encrypt of nothing returned %d bytes of data", len(data))
				}
				tag = single(t, tagValues(t, raw, okmip.TagAuthenticatedEncryptionTag), "Authenticated Encryption Tag")
			} else if len(data) != 16 {
				t.Fatalf("Encrypt of nothing at %s returned %d bytes, want the 16-byte tag", v, len(data))
			}
			resp, raw = w.do(newRequest(v, &decryptAlways{UniqueIdentifier: id, CryptographicParameters: gcmParams(), Data: data, IVCounterNonce: iv, AuthenticatedEncryptionTag: tag}))
			wantSuccess(t, resp.BatchItem[0])
			if got := single(t, tagValues(t, raw, okmip.TagData), "Data"); len(got) != 0 {
				t.Fatalf("Decrypt returned %d bytes", len(got))
			}
		})
	}
	t.Run("CBC", func(t *testing.T) {
		w.t = t
		cbc := &okmip.CryptographicParameters{BlockCipherMode: okmip.BlockCipherModeCBC, PaddingMethod: okmip.PaddingMethodPKCS5}
		resp, raw := w.do(newRequest(v14, &encryptAlways{UniqueIdentifier: id, CryptographicParameters: cbc, Data: []byte{}}))
		wantSuccess(t, resp.BatchItem[0])
		data := single(t, tagValues(t, raw, okmip.TagData), "Data")
		iv := single(t, tagValues(t, raw, okmip.TagIVCounterNonce), "IV/Counter/Nonce")
		if len(data) != 16 {
			t.Fatalf("CBC-PKCS5 of nothing is one block, got %d bytes", len(data))
		}
		resp, raw = w.do(newRequest(v14, &decryptAlways{UniqueIdentifier: id, CryptographicParameters: cbc, Data: data, IVCounterNonce: iv}))
		wantSuccess(t, resp.BatchItem[0])
		if got := single(t, tagValues(t, raw, okmip.TagData), "Data"); len(got) != 0 {
			t.Fatalf("Decrypt returned %d bytes", len(got))
		}
	})
	t.Run("Data absent", func(t *testing.T) {
		w.t = t
		w.fails(v14, &payloads.EncryptRequestPayload{UniqueIdentifier: id}, okmip.ResultReasonMissingData)
		w.fails(v14, &payloads.DecryptRequestPayload{UniqueIdentifier: id, IVCounterNonce: make([]byte, 12)}, okmip.ResultReasonMissingData)
	})
}

func TestQuery(t *testing.T) {
	env := startKMS(t, nil)
	w := dialAdmin(t, env)
	query := func(fs ...okmip.QueryFunction) *payloads.QueryResponsePayload {
		return ok[*payloads.QueryResponsePayload](w, v14, &payloads.QueryRequestPayload{QueryFunction: fs})
	}
	wantOps := []okmip.Operation{
		okmip.OperationCreate, okmip.OperationRegister, okmip.OperationLocate, okmip.OperationGet, okmip.OperationGetAttributes,
		okmip.OperationGetAttributeList, okmip.OperationAddAttribute, okmip.OperationModifyAttribute, okmip.OperationDeleteAttribute,
		okmip.OperationActivate, okmip.OperationRevoke, okmip.OperationDestroy, okmip.OperationQuery, okmip.OperationDiscoverVersions,
		okmip.OperationEncrypt, okmip.OperationDecrypt, okmip.OperationCertify, okmip.OperationReCertify,
		okmip.OperationMAC, okmip.OperationMACVerify, okmip.OperationHash, okmip.OperationRNGRetrieve, okmip.OperationRNGSeed,
		okmip.OperationDeriveKey, okmip.OperationCheck, okmip.OperationGetUsageAllocation, okmip.OperationObtainLease,
		okmip.OperationCreateKeyPair, okmip.OperationReKey, okmip.OperationReKeyKeyPair, okmip.OperationSign, okmip.OperationSignatureVerify,
		okmip.OperationCreateSplitKey, okmip.OperationJoinSplitKey,
	}
	slices.Sort(wantOps)

	t.Run("operations", func(t *testing.T) {
		w.t = t
		q := query(okmip.QueryFunctionOperations)
		if !slices.Equal(q.Operations, wantOps) {
			t.Fatalf("operations %v, want %v", q.Operations, wantOps)
		}
		if len(q.ObjectType) != 0 || q.VendorIdentification != "" {
			t.Fatal("operations query answered more than asked")
		}
		// Every listed operation is served: none answers Operation Not
		// Supported.
		for _, op := range q.Operations {
			resp, _ := w.roundTripRaw(rawMessage(rawHeader(hdr(v14, 1)), rawItem(op, "a", tStruct(okmip.TagRequestPayload))))
			if resp.BatchItem[0].ResultReason == okmip.ResultReasonOperationNotSupported {
				t.Errorf("%s is listed but not supported", ttlv.EnumStr(op))
			}
		}
	})
	t.Run("objects", func(t *testing.T) {
		w.t = t
		want := []okmip.ObjectType{okmip.ObjectTypeCertificate, okmip.ObjectTypeSymmetricKey, okmip.ObjectTypePublicKey,
			okmip.ObjectTypePrivateKey, okmip.ObjectTypeSecretData, okmip.ObjectTypeOpaqueObject, okmip.ObjectTypeTemplate,
			okmip.ObjectTypeSplitKey, okmip.ObjectTypePGPKey}
		if got := query(okmip.QueryFunctionObjects).ObjectType; !slices.Equal(got, want) {
			t.Fatalf("object types %v, want %v", got, want)
		}
	})
	t.Run("server information", func(t *testing.T) {
		w.t = t
		q := query(okmip.QueryFunctionServerInformation)
		if q.VendorIdentification != kmip.VendorIdentification || q.ServerInformation == nil {
			t.Fatalf("vendor %q, server information %v", q.VendorIdentification, q.ServerInformation)
		}
		if !strings.Contains(string(ttlv.MarshalText(q.ServerInformation)), "miniKMS "+kmip.ServerVersion) {
			t.Fatalf("server information %s", ttlv.MarshalText(q.ServerInformation))
		}
	})
	t.Run("profiles", func(t *testing.T) {
		w.t = t
		q := query(okmip.QueryFunctionProfiles)
		if len(q.ProfileInformation) != 12 {
			t.Fatalf("%d profiles", len(q.ProfileInformation))
		}
		var names []okmip.ProfileName
		for _, p := range q.ProfileInformation {
			names = append(names, p.ProfileName)
		}
		for _, want := range []okmip.ProfileName{okmip.ProfileNameBaselineServerBasicKMIPV1_2, okmip.ProfileNameSymmetricKeyLifecycleServerKMIPV1_0,
			okmip.ProfileNameOpaqueManagedObjectStoreServerKMIPV1_2, okmip.ProfileNameBasicCryptographicServerKMIPV1_2} {
			if !slices.Contains(names, want) {
				t.Errorf("profile %s not listed", ttlv.EnumStr(want))
			}
		}
	})
	t.Run("capabilities", func(t *testing.T) {
		w.t = t
		q := query(okmip.QueryFunctionCapabilities)
		if len(q.CapabilityInformation) != 1 {
			t.Fatalf("%d capability informations", len(q.CapabilityInformation))
		}
		c := q.CapabilityInformation[0]
		if c.BatchContinueCapability == nil || !*c.BatchContinueCapability || c.BatchUndoCapability == nil || !*c.BatchUndoCapability ||
			c.StreamingCapability == nil || *c.StreamingCapability || c.AsynchronousCapability == nil || *c.AsynchronousCapability {
			t.Fatalf("capabilities %+v", c)
		}
	})
	t.Run("several functions and nothing to report", func(t *testing.T) {
		w.t = t
		q := query(okmip.QueryFunctionOperations, okmip.QueryFunctionObjects, okmip.QueryFunctionExtensionList, okmip.QueryFunctionRNGs)
		if len(q.Operations) != len(wantOps) || len(q.ObjectType) != 9 || len(q.ExtensionInformation) != 0 || len(q.RNGParameters) != 0 {
			t.Fatalf("query %+v", q)
		}
		if q := query(); len(q.Operations)+len(q.ObjectType) != 0 {
			t.Fatalf("empty query answered %+v", q)
		}
	})
	for _, f := range []okmip.QueryFunction{0, 0x0D, 0x7FFFFFFF} {
		t.Run("invalid function "+ttlv.EnumStr(f), func(t *testing.T) {
			w.t = t
			w.fails(v14, &payloads.QueryRequestPayload{QueryFunction: []okmip.QueryFunction{okmip.QueryFunctionOperations, f}}, okmip.ResultReasonInvalidField)
		})
	}
}

func TestRevoke(t *testing.T) {
	env := startKMS(t, nil)
	w := dialAdmin(t, env)
	id := w.activeKey()
	w.fails(v14, &payloads.RevokeRequestPayload{UniqueIdentifier: id}, okmip.ResultReasonMissingData)
	w.fails(v14, &payloads.RevokeRequestPayload{UniqueIdentifier: id, RevocationReason: okmip.RevocationReason{RevocationMessage: "no code"}}, okmip.ResultReasonMissingData)
	w.fails(v14, &payloads.RevokeRequestPayload{UniqueIdentifier: id, RevocationReason: okmip.RevocationReason{RevocationReasonCode: 0x99}}, okmip.ResultReasonInvalidField)
	// Still active: nothing was revoked by the refused requests.
	if s := state(w, id); s != okmip.StateActive {
		t.Fatalf("state %v after refused revocations", s)
	}
	ok[*payloads.RevokeResponsePayload](w, v14, &payloads.RevokeRequestPayload{UniqueIdentifier: id,
		RevocationReason: okmip.RevocationReason{RevocationReasonCode: okmip.RevocationReasonCodeCessationOfOperation}})
	if s := state(w, id); s != okmip.StateDeactivated {
		t.Fatalf("state %v after Revoke", s)
	}
}

func state(w *wireConn, id string) okmip.State {
	w.t.Helper()
	ga := ok[*payloads.GetAttributesResponsePayload](w, v14, &payloads.GetAttributesRequestPayload{UniqueIdentifier: id, AttributeName: []okmip.AttributeName{okmip.AttributeNameState}})
	if len(ga.Attribute) != 1 {
		w.t.Fatalf("State: %v", ga.Attribute)
	}
	return ga.Attribute[0].AttributeValue.(okmip.State)
}

// fortiLocate is a Locate as FortiOS sends it: the filters wrapped in a
// Template-Attribute.
type fortiLocate struct {
	MaximumItems      int32 `ttlv:",omitempty"`
	Attribute         []okmip.Attribute
	TemplateAttribute okmip.TemplateAttribute
}

func (*fortiLocate) Operation() okmip.Operation { return okmip.OperationLocate }

func TestLocateTemplateAttributeFilters(t *testing.T) {
	env := startKMS(t, nil)
	w := dialAdmin(t, env)
	group := uniqueName(t)
	ids := map[string]string{}
	for _, n := range []string{"alpha", "beta", "gamma"} {
		ids[n] = w.createKey(groupAttr(group), nameAttr(group+"-"+n))
	}
	other := dialAs(t, env, "globex", "admin", engine.RoleAdmin)
	other.createKey(groupAttr(group), nameAttr(group+"-alpha"))
	objType := okmip.Attribute{AttributeName: okmip.AttributeNameObjectType, AttributeValue: okmip.ObjectTypeSymmetricKey}

	cases := []struct {
		name  string
		pl    *fortiLocate
		want  []string
		found int
	}{
		{"name in the template", &fortiLocate{TemplateAttribute: okmip.TemplateAttribute{Attribute: []okmip.Attribute{nameAttr(group + "-beta")}}}, []string{ids["beta"]}, 1},
		{"name and type in the template", &fortiLocate{TemplateAttribute: okmip.TemplateAttribute{Attribute: []okmip.Attribute{objType, nameAttr(group + "-alpha")}}}, []string{ids["alpha"]}, 1},
		{"group in the template", &fortiLocate{TemplateAttribute: okmip.TemplateAttribute{Attribute: []okmip.Attribute{groupAttr(group)}}}, nil, 3},
		{"plain and template filters combine", &fortiLocate{Attribute: []okmip.Attribute{groupAttr(group)}, TemplateAttribute: okmip.TemplateAttribute{Attribute: []okmip.Attribute{nameAttr(group + "-gamma")}}}, []string{ids["gamma"]}, 1},
		{"no match", &fortiLocate{TemplateAttribute: okmip.TemplateAttribute{Attribute: []okmip.Attribute{nameAttr(group + "-delta")}}}, nil, 0},
	}
	for _, c := range cases {
		for _, v := range []okmip.ProtocolVersion{v12, v14} {
			t.Run(c.name+" "+v.String(), func(t *testing.T) {
				w.t = t
				got := ok[*payloads.LocateResponsePayload](w, v, c.pl).UniqueIdentifier
				if len(got) != c.found || (c.want != nil && !slices.Equal(got, c.want)) {
					t.Fatalf("Locate found %v, want %d: %v", got, c.found, c.want)
				}
				for _, id := range got {
					if !slices.Contains([]string{ids["alpha"], ids["beta"], ids["gamma"]}, id) {
						t.Fatalf("Locate found %s, not one of the tenant's keys", id)
					}
				}
			})
		}
	}
	t.Run("template reference", func(t *testing.T) {
		w.t = t
		w.fails(v14, &fortiLocate{TemplateAttribute: okmip.TemplateAttribute{Name: []okmip.Name{{NameValue: "tmpl", NameType: okmip.NameTypeUninterpretedTextString}}}},
			okmip.ResultReasonFeatureNotSupported)
	})
}

// TestTenantIsolation: another tenant's object answers exactly as a
// missing one, for every operation on an identifier, and Locate never
// lists it.
func TestTenantIsolation(t *testing.T) {
	env := startKMS(t, nil)
	acme := dialAdmin(t, env)
	group := uniqueName(t)
	contact := okmip.Attribute{AttributeName: okmip.AttributeNameContactInformation, AttributeValue: "acme-contact"}
	id := acme.activeKey(groupAttr(group), nameAttr(group), contact)
	_, raw := acme.do(newRequest(v14, &payloads.EncryptRequestPayload{UniqueIdentifier: id, CryptographicParameters: gcmParams(), Data: []byte("acme secret")}))
	ct := tagValues(t, raw, okmip.TagData)[0]
	iv := tagValues(t, raw, okmip.TagIVCounterNonce)[0]
	tag := tagValues(t, raw, okmip.TagAuthenticatedEncryptionTag)[0]
	before := acme.getAttrs(id)

	globex := dialAs(t, env, "globex", "admin", engine.RoleAdmin)
	globexApp := dialAs(t, env, "globex", "app", engine.RoleApp)
	globex.createKey(groupAttr(group)) // globex has objects of its own
	ops := []struct {
		name string
		pl   func(id string) okmip.OperationPayload
	}{
		{"Get", func(id string) okmip.OperationPayload { return &payloads.GetRequestPayload{UniqueIdentifier: id} }},
		{"GetAttributes", func(id string) okmip.OperationPayload {
			return &payloads.GetAttributesRequestPayload{UniqueIdentifier: id}
		}},
		{"GetAttributeList", func(id string) okmip.OperationPayload {
			return &payloads.GetAttributeListRequestPayload{UniqueIdentifier: id}
		}},
		{"Activate", func(id string) okmip.OperationPayload { return &payloads.ActivateRequestPayload{UniqueIdentifier: id} }},
		{"Revoke", func(id string) okmip.OperationPayload {
			return &payloads.RevokeRequestPayload{UniqueIdentifier: id, RevocationReason: okmip.RevocationReason{RevocationReasonCode: okmip.RevocationReasonCodeKeyCompromise}}
		}},
		{"Destroy", func(id string) okmip.OperationPayload { return &payloads.DestroyRequestPayload{UniqueIdentifier: id} }},
		{"Encrypt", func(id string) okmip.OperationPayload {
			return &payloads.EncryptRequestPayload{UniqueIdentifier: id, CryptographicParameters: gcmParams(), Data: []byte("x")}
		}},
		{"Decrypt", func(id string) okmip.OperationPayload {
			return &payloads.DecryptRequestPayload{UniqueIdentifier: id, CryptographicParameters: gcmParams(), Data: ct, IVCounterNonce: iv, AuthenticatedEncryptionTag: tag}
		}},
		{"AddAttribute", func(id string) okmip.OperationPayload {
			return &payloads.AddAttributeRequestPayload{UniqueIdentifier: id, Attribute: nameAttr("stolen")}
		}},
		{"ModifyAttribute", func(id string) okmip.OperationPayload {
			return &payloads.ModifyAttributeRequestPayload{UniqueIdentifier: id, Attribute: okmip.Attribute{AttributeName: okmip.AttributeNameContactInformation, AttributeValue: "globex"}}
		}},
		{"DeleteAttribute", func(id string) okmip.OperationPayload {
			return &payloads.DeleteAttributeRequestPayload{UniqueIdentifier: id, AttributeName: okmip.AttributeNameContactInformation}
		}},
	}
	for _, op := range ops {
		t.Run(op.name, func(t *testing.T) {
			globex.t = t
			foreign := globex.fails(v14, op.pl(id), okmip.ResultReasonItemNotFound)
			missing := globex.fails(v14, op.pl(missingID), okmip.ResultReasonItemNotFound)
			if strings.ReplaceAll(foreign.ResultMessage, id, "ID") != strings.ReplaceAll(missing.ResultMessage, missingID, "ID") {
				t.Fatalf("another tenant's object answers %q, a missing one %q", foreign.ResultMessage, missing.ResultMessage)
			}
			// A member of lower role gets the same answer for both too
			// (Permission Denied for what its role may never do).
			globexApp.t = t
			foreign, missing = globexApp.one(v14, op.pl(id)), globexApp.one(v14, op.pl(missingID))
			if foreign.ResultStatus != okmip.ResultStatusOperationFailed || foreign.ResultReason != missing.ResultReason ||
				strings.ReplaceAll(foreign.ResultMessage, id, "ID") != strings.ReplaceAll(missing.ResultMessage, missingID, "ID") {
				t.Fatalf("app: another tenant's object answers %s %q, a missing one %s %q", ttlv.EnumStr(foreign.ResultReason), foreign.ResultMessage,
					ttlv.EnumStr(missing.ResultReason), missing.ResultMessage)
			}
		})
	}
	t.Run("Locate", func(t *testing.T) {
		globex.t = t
		for _, filter := range [][]okmip.Attribute{nil, {nameAttr(group)}, {groupAttr(group)},
			{{AttributeName: okmip.AttributeNameUniqueIdentifier, AttributeValue: id}}} {
			if found := globex.locate(filter...); slices.Contains(found, id) || (len(filter) == 1 && filter[0].AttributeName == okmip.AttributeNameName && len(found) != 0) {
				t.Fatalf("globex Locate(%v) found %v", filter, found)
			}
		}
		if found := globex.locate(groupAttr(group)); len(found) != 1 {
			t.Fatalf("globex sees %d objects of its own in the group, want 1", len(found))
		}
	})
	t.Run("acme's object is untouched", func(t *testing.T) {
		acme.t = t
		after := acme.getAttrs(id)
		if !bytes.Equal(rawPayload(before), rawPayload(after)) {
			t.Fatalf("attributes changed:\nbefore %+v\nafter  %+v", before.Attribute, after.Attribute)
		}
		dec := ok[*payloads.DecryptResponsePayload](acme, v14, &payloads.DecryptRequestPayload{UniqueIdentifier: id, CryptographicParameters: gcmParams(),
			Data: ct, IVCounterNonce: iv, AuthenticatedEncryptionTag: tag})
		if string(dec.Data) != "acme secret" {
			t.Fatal("acme can no longer decrypt")
		}
	})
}

func (w *wireConn) getAttrs(id string) *payloads.GetAttributesResponsePayload {
	w.t.Helper()
	return ok[*payloads.GetAttributesResponsePayload](w, v14, &payloads.GetAttributesRequestPayload{UniqueIdentifier: id})
}

func TestRoles(t *testing.T) {
	env := startKMS(t, nil)
	admin := dialAdmin(t, env)
	id := admin.activeKey()
	app := dialAs(t, env, "acme", "app", engine.RoleApp)
	auditor := dialAs(t, env, "acme", "auditor", engine.RoleAuditor)

	t.Run("app", func(t *testing.T) {
		app.t = t
		own := app.activeKey()
		ok[*payloads.EncryptResponsePayload](app, v14, &payloads.EncryptRequestPayload{UniqueIdentifier: id, Data: []byte("x")})
		for _, target := range []string{id, own} {
			app.fails(v14, &payloads.DestroyRequestPayload{UniqueIdentifier: target}, okmip.ResultReasonPermissionDenied)
		}
		// Nothing was destroyed.
		ok[*payloads.GetResponsePayload](app, v14, &payloads.GetRequestPayload{UniqueIdentifier: own})
	})
	t.Run("auditor reads attributes", func(t *testing.T) {
		auditor.t = t
		auditor.getAttrs(id)
		ok[*payloads.GetAttributeListResponsePayload](auditor, v14, &payloads.GetAttributeListRequestPayload{UniqueIdentifier: id})
		if found := auditor.locate(); !slices.Contains(found, id) {
			t.Fatalf("the auditor's Locate does not list %s", id)
		}
		auditor.servesOK()
		ok[*payloads.QueryResponsePayload](auditor, v14, &payloads.QueryRequestPayload{QueryFunction: []okmip.QueryFunction{okmip.QueryFunctionOperations}})
	})
	denied := []okmip.OperationPayload{
		&payloads.GetRequestPayload{UniqueIdentifier: id},
		createAES(),
		registerOpaque([]byte("x")),
		&payloads.ActivateRequestPayload{UniqueIdentifier: id},
		&payloads.RevokeRequestPayload{UniqueIdentifier: id, RevocationReason: okmip.RevocationReason{RevocationReasonCode: okmip.RevocationReasonCodeKeyCompromise}},
		&payloads.DestroyRequestPayload{UniqueIdentifier: id},
		&payloads.EncryptRequestPayload{UniqueIdentifier: id, Data: []byte("x")},
		&payloads.DecryptRequestPayload{UniqueIdentifier: id, Data: make([]byte, 32), IVCounterNonce: make([]byte, 12)},
		&payloads.AddAttributeRequestPayload{UniqueIdentifier: id, Attribute: nameAttr("auditor")},
		&payloads.ModifyAttributeRequestPayload{UniqueIdentifier: id, Attribute: okmip.Attribute{AttributeName: okmip.AttributeNameContactInformation, AttributeValue: "a"}},
		&payloads.DeleteAttributeRequestPayload{UniqueIdentifier: id, AttributeName: okmip.AttributeNameContactInformation},
	}
	for _, pl := range denied {
		t.Run("auditor may not "+ttlv.EnumStr(pl.Operation()), func(t *testing.T) {
			auditor.t = t
			auditor.fails(v14, pl, okmip.ResultReasonPermissionDenied)
		})
	}
	t.Run("the key survived", func(t *testing.T) {
		admin.t = t
		if s := state(admin, id); s != okmip.StateActive {
			t.Fatalf("state %v", s)
		}
		// The admin may do what the others may not.
		ok[*payloads.RevokeResponsePayload](admin, v14, &payloads.RevokeRequestPayload{UniqueIdentifier: id,
			RevocationReason: okmip.RevocationReason{RevocationReasonCode: okmip.RevocationReasonCodeUnspecified}})
		ok[*payloads.DestroyResponsePayload](admin, v14, &payloads.DestroyRequestPayload{UniqueIdentifier: id})
	})
}

func TestAttributeOperations(t *testing.T) {
	env := startKMS(t, nil)
	w := dialAdmin(t, env)
	id := w.createKey(nameAttr(uniqueName(t)))
	contact := func(v string) okmip.Attribute {
		return okmip.Attribute{AttributeName: okmip.AttributeNameContactInformation, AttributeValue: v}
	}

	add := ok[*payloads.AddAttributeResponsePayload](w, v14, &payloads.AddAttributeRequestPayload{UniqueIdentifier: id, Attribute: nameAttr("second")})
	if add.UniqueIdentifier != id || add.Attribute.AttributeName != okmip.AttributeNameName || add.Attribute.AttributeIndex == nil || *add.Attribute.AttributeIndex != 1 {
		t.Fatalf("Add Attribute answered %+v", add)
	}
	ok[*payloads.AddAttributeResponsePayload](w, v14, &payloads.AddAttributeRequestPayload{UniqueIdentifier: id, Attribute: contact("first")})
	mod := ok[*payloads.ModifyAttributeResponsePayload](w, v14, &payloads.ModifyAttributeRequestPayload{UniqueIdentifier: id, Attribute: contact("changed")})
	if mod.Attribute.AttributeValue != "changed" {
		t.Fatalf("Modify Attribute answered %+v", mod.Attribute)
	}
	ga := ok[*payloads.GetAttributesResponsePayload](w, v14, &payloads.GetAttributesRequestPayload{UniqueIdentifier: id,
		AttributeName: []okmip.AttributeName{okmip.AttributeNameContactInformation}})
	if len(ga.Attribute) != 1 || ga.Attribute[0].AttributeValue != "changed" {
		t.Fatalf("Contact Information %+v", ga.Attribute)
	}
	del := ok[*payloads.DeleteAttributeResponsePayload](w, v14, &payloads.DeleteAttributeRequestPayload{UniqueIdentifier: id, AttributeName: okmip.AttributeNameContactInformation})
	if del.Attribute.AttributeValue != "changed" {
		t.Fatalf("Delete Attribute answered %+v", del.Attribute)
	}
	// At 1.0, the placeholder works for the attribute operations too.
	resp, _ := w.do(newRequest(v10, createAES(), &payloads.AddAttributeRequestPayload{Attribute: contact("x")},
		&payloads.ModifyAttributeRequestPayload{Attribute: contact("y")},
		&payloads.DeleteAttributeRequestPayload{AttributeName: okmip.AttributeNameContactInformation}))
	for _, bi := range resp.BatchItem {
		wantSuccess(t, bi)
	}

	two := int32(7)
	cases := []struct {
		name   string
		pl     okmip.OperationPayload
		reason okmip.ResultReason
	}{
		{"add: unknown attribute", &payloads.AddAttributeRequestPayload{UniqueIdentifier: id, Attribute: okmip.Attribute{AttributeName: "Nope", AttributeValue: "x"}}, okmip.ResultReasonInvalidField},
		{"add: server-set attribute", &payloads.AddAttributeRequestPayload{UniqueIdentifier: id, Attribute: okmip.Attribute{AttributeName: okmip.AttributeNameInitialDate, AttributeValue: time.Now()}}, okmip.ResultReasonPermissionDenied},
		{"modify: absent attribute", &payloads.ModifyAttributeRequestPayload{UniqueIdentifier: id, Attribute: contact("z")}, okmip.ResultReasonItemNotFound},
		{"delete: absent attribute", &payloads.DeleteAttributeRequestPayload{UniqueIdentifier: id, AttributeName: okmip.AttributeNameContactInformation}, okmip.ResultReasonItemNotFound},
		{"delete: no name", &payloads.DeleteAttributeRequestPayload{UniqueIdentifier: id}, okmip.ResultReasonMissingData},
		{"delete: index out of bounds", &payloads.DeleteAttributeRequestPayload{UniqueIdentifier: id, AttributeName: okmip.AttributeNameName, AttributeIndex: &two}, okmip.ResultReasonIndexOutofBounds},
		{"delete: Unique Identifier", &payloads.DeleteAttributeRequestPayload{UniqueIdentifier: id, AttributeName: okmip.AttributeNameUniqueIdentifier}, okmip.ResultReasonPermissionDenied},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			w.t = t
			w.fails(v14, c.pl, c.reason)
		})
	}
}

func TestTemplates(t *testing.T) {
	env := startKMS(t, nil)
	w := dialAdmin(t, env)
	name := uniqueName(t)
	tmpl := &okmip.Template{Attribute: []okmip.Attribute{
		{AttributeName: okmip.AttributeNameCryptographicAlgorithm, AttributeValue: okmip.CryptographicAlgorithmAES},
		{AttributeName: okmip.AttributeNameCryptographicLength, AttributeValue: int32(128)},
	}}
	reg := ok[*payloads.RegisterResponsePayload](w, v12, &payloads.RegisterRequestPayload{ObjectType: okmip.ObjectTypeTemplate,
		TemplateAttribute: okmip.TemplateAttribute{Attribute: []okmip.Attribute{nameAttr(name)}}, Object: tmpl})
	g := ok[*payloads.GetResponsePayload](w, v12, &payloads.GetRequestPayload{UniqueIdentifier: reg.UniqueIdentifier})
	got, isTmpl := g.Object.(*okmip.Template)
	if !isTmpl || g.ObjectType != okmip.ObjectTypeTemplate || len(got.Attribute) != 2 {
		t.Fatalf("Get of a template: %#v", g.Object)
	}
	w.fails(v12, &payloads.GetRequestPayload{UniqueIdentifier: reg.UniqueIdentifier, KeyFormatType: okmip.KeyFormatTypeRaw}, okmip.ResultReasonKeyFormatTypeNotSupported)
	cr := ok[*payloads.CreateResponsePayload](w, v12, &payloads.CreateRequestPayload{ObjectType: okmip.ObjectTypeSymmetricKey,
		TemplateAttribute: okmip.TemplateAttribute{Name: []okmip.Name{{NameValue: name, NameType: okmip.NameTypeUninterpretedTextString}}}})
	key := ok[*payloads.GetResponsePayload](w, v12, &payloads.GetRequestPayload{UniqueIdentifier: cr.UniqueIdentifier})
	if _, material := keyOf(t, key); len(material) != 16 {
		t.Fatalf("a key from a 128-bit template has %d bytes", len(material))
	}
	w.fails(v12, &payloads.CreateRequestPayload{ObjectType: okmip.ObjectTypeSymmetricKey,
		TemplateAttribute: okmip.TemplateAttribute{Name: []okmip.Name{{NameValue: name + "-none", NameType: okmip.NameTypeUninterpretedTextString}}}}, okmip.ResultReasonItemNotFound)
	w.fails(v12, &payloads.CreateRequestPayload{ObjectType: okmip.ObjectTypeSymmetricKey,
		TemplateAttribute: okmip.TemplateAttribute{Name: []okmip.Name{{}}}}, okmip.ResultReasonInvalidField)
}
