package kmip_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/minikms/minikms/engine"
	okmip "github.com/ovh/kmip-go"
	"github.com/ovh/kmip-go/payloads"
	"github.com/ovh/kmip-go/ttlv"
)

// Payloads of operations kmip-go has none (or no usable one) for; the
// tags follow KMIP 1.4.
type (
	isoMAC struct {
		UniqueIdentifier        string `ttlv:",omitempty"`
		CryptographicParameters *okmip.CryptographicParameters
		Data                    []byte `ttlv:",omitempty"`
	}
	isoMACVerify struct {
		UniqueIdentifier        string `ttlv:",omitempty"`
		CryptographicParameters *okmip.CryptographicParameters
		Data                    []byte `ttlv:",omitempty"`
		MACData                 []byte `ttlv:",omitempty"`
	}
	isoCheck struct {
		UniqueIdentifier string `ttlv:",omitempty"`
	}
	isoUsage struct {
		UniqueIdentifier string `ttlv:",omitempty"`
		UsageLimitsCount *int64
	}
	isoDerive struct {
		ObjectType           okmip.ObjectType `ttlv:",omitempty"`
		UniqueIdentifier     []string
		DerivationMethod     isoDerivationMethod
		DerivationParameters *isoDerivationParams
		TemplateAttribute    *okmip.TemplateAttribute
	}
	isoDerivationParams struct {
		CryptographicParameters *okmip.CryptographicParameters
		DerivationData          []byte `ttlv:",omitempty"`
	}
	isoCreateSplit struct {
		ObjectType        okmip.ObjectType     `ttlv:",omitempty"`
		UniqueIdentifier  string               `ttlv:",omitempty"`
		SplitKeyParts     int32                `ttlv:",omitempty"`
		SplitKeyThreshold int32                `ttlv:",omitempty"`
		SplitKeyMethod    okmip.SplitKeyMethod `ttlv:",omitempty"`
	}
	isoJoinSplit struct {
		ObjectType       okmip.ObjectType `ttlv:",omitempty"`
		UniqueIdentifier []string
	}
	isoCertify struct {
		UniqueIdentifier       string                       `ttlv:",omitempty"`
		CertificateRequestType okmip.CertificateRequestType `ttlv:",omitempty"`
		CertificateRequest     []byte                       `ttlv:",omitempty"`
	}
	isoReCertify isoCertify
	// isoDerivationMethod encodes the Derivation Method enumeration, which
	// kmip-go does not define (registering it again would change the
	// server's codec in this process).
	isoDerivationMethod uint32
)

func (m isoDerivationMethod) TagEncodeTTLV(e *ttlv.Encoder, tag int) {
	e.Enum(0, okmip.TagDerivationMethod, uint32(m))
}

func (*isoMAC) Operation() okmip.Operation         { return okmip.OperationMAC }
func (*isoMACVerify) Operation() okmip.Operation   { return okmip.OperationMACVerify }
func (*isoCheck) Operation() okmip.Operation       { return okmip.OperationCheck }
func (*isoUsage) Operation() okmip.Operation       { return okmip.OperationGetUsageAllocation }
func (*isoDerive) Operation() okmip.Operation      { return okmip.OperationDeriveKey }
func (*isoCreateSplit) Operation() okmip.Operation { return okmip.OperationCreateSplitKey }
func (*isoJoinSplit) Operation() okmip.Operation   { return okmip.OperationJoinSplitKey }
func (*isoCertify) Operation() okmip.Operation     { return okmip.OperationCertify }
func (*isoReCertify) Operation() okmip.Operation   { return okmip.OperationReCertify }

// TestTenantIsolationMatrix: for every operation the server supports that
// names an object, naming another tenant's object answers exactly as
// naming an object that does not exist: Item Not Found, the same Result
// Message (up to the identifier). A new operation must be added to one of
// the two lists below, or this test fails.
func TestTenantIsolationMatrix(t *testing.T) {
	env := startKMS(t, nil)
	globex := dialAs(t, env, "globex", "admin", engine.RoleAdmin)
	acme := dialAdmin(t, env)

	// globex's objects: an active AES key and an EC key pair; acme's: an
	// active AES key (for the cross-tenant wrapping key case).
	foreignKey := globex.activeKey()
	foreignPriv, _ := globex.kpCreate(v14, kpECReq(okmip.RecommendedCurveP_256))
	ownKey := acme.activeKey()
	const missing = "3f2504e0-4f89-41d3-9a0c-0305e82c3301"

	one := int64(1)
	hmac := &okmip.CryptographicParameters{CryptographicAlgorithm: okmip.CryptographicAlgorithmHMACSHA256}
	ecdsa := &okmip.CryptographicParameters{DigitalSignatureAlgorithm: okmip.DigitalSignatureAlgorithmECDSAWithSHA256}
	yes := true
	byObject := map[okmip.Operation][]func(id string) okmip.OperationPayload{
		okmip.OperationGet: {
			func(id string) okmip.OperationPayload { return &payloads.GetRequestPayload{UniqueIdentifier: id} },
			// Get of an own key wrapped by another tenant's key.
			func(id string) okmip.OperationPayload {
				return &payloads.GetRequestPayload{UniqueIdentifier: ownKey, KeyWrappingSpecification: &okmip.KeyWrappingSpecification{
					WrappingMethod: okmip.WrappingMethodEncrypt, EncryptionKeyInformation: &okmip.EncryptionKeyInformation{UniqueIdentifier: id}}}
			},
		},
		okmip.OperationGetAttributes: {func(id string) okmip.OperationPayload {
			return &payloads.GetAttributesRequestPayload{UniqueIdentifier: id}
		}},
		okmip.OperationGetAttributeList: {func(id string) okmip.OperationPayload {
			return &payloads.GetAttributeListRequestPayload{UniqueIdentifier: id}
		}},
		okmip.OperationAddAttribute: {func(id string) okmip.OperationPayload {
			return &payloads.AddAttributeRequestPayload{UniqueIdentifier: id, Attribute: okmip.Attribute{AttributeName: "x-iso", AttributeValue: "v"}}
		}},
		okmip.OperationModifyAttribute: {func(id string) okmip.OperationPayload {
			return &payloads.ModifyAttributeRequestPayload{UniqueIdentifier: id, Attribute: nameAttr("renamed")}
		}},
		okmip.OperationDeleteAttribute: {func(id string) okmip.OperationPayload {
			return &payloads.DeleteAttributeRequestPayload{UniqueIdentifier: id, AttributeName: okmip.AttributeNameName}
		}},
		okmip.OperationActivate: {func(id string) okmip.OperationPayload { return &payloads.ActivateRequestPayload{UniqueIdentifier: id} }},
		okmip.OperationRevoke: {func(id string) okmip.OperationPayload {
			return &payloads.RevokeRequestPayload{UniqueIdentifier: id, RevocationReason: okmip.RevocationReason{RevocationReasonCode: okmip.RevocationReasonCodeCessationOfOperation}}
		}},
		okmip.OperationDestroy: {func(id string) okmip.OperationPayload { return &payloads.DestroyRequestPayload{UniqueIdentifier: id} }},
		okmip.OperationEncrypt: {
			func(id string) okmip.OperationPayload {
				return &payloads.EncryptRequestPayload{UniqueIdentifier: id, Data: []byte("x")}
			},
			// The first part of a stream.
			func(id string) okmip.OperationPayload {
				return &payloads.EncryptRequestPayload{UniqueIdentifier: id, Data: []byte("x"), InitIndicator: &yes}
			},
		},
		okmip.OperationDecrypt: {
			func(id string) okmip.OperationPayload {
				return &payloads.DecryptRequestPayload{UniqueIdentifier: id, Data: make([]byte, 16), IVCounterNonce: make([]byte, 12), AuthenticatedEncryptionTag: make([]byte, 16)}
			},
			func(id string) okmip.OperationPayload {
				return &payloads.DecryptRequestPayload{UniqueIdentifier: id, Data: make([]byte, 16), IVCounterNonce: make([]byte, 12), InitIndicator: &yes}
			},
		},
		okmip.OperationMAC: {func(id string) okmip.OperationPayload {
			return &isoMAC{UniqueIdentifier: id, CryptographicParameters: hmac, Data: []byte("x")}
		}},
		okmip.OperationMACVerify: {func(id string) okmip.OperationPayload {
			return &isoMACVerify{UniqueIdentifier: id, CryptographicParameters: hmac, Data: []byte("x"), MACData: make([]byte, 32)}
		}},
		okmip.OperationSign: {func(id string) okmip.OperationPayload {
			return &payloads.SignRequestPayload{UniqueIdentifier: id, CryptographicParameters: ecdsa, Data: []byte("x")}
		}},
		okmip.OperationSignatureVerify: {func(id string) okmip.OperationPayload {
			return &payloads.SignatureVerifyRequestPayload{UniqueIdentifier: id, CryptographicParameters: ecdsa, Data: []byte("x"), SignatureData: make([]byte, 64)}
		}},
		okmip.OperationCheck:              {func(id string) okmip.OperationPayload { return &isoCheck{UniqueIdentifier: id} }},
		okmip.OperationGetUsageAllocation: {func(id string) okmip.OperationPayload { return &isoUsage{UniqueIdentifier: id, UsageLimitsCount: &one} }},
		okmip.OperationObtainLease: {func(id string) okmip.OperationPayload {
			return &payloads.ObtainLeaseRequestPayload{UniqueIdentifier: id}
		}},
		okmip.OperationReKey: {func(id string) okmip.OperationPayload { return &payloads.RekeyRequestPayload{UniqueIdentifier: id} }},
		okmip.OperationReKeyKeyPair: {func(id string) okmip.OperationPayload {
			return &payloads.RekeyKeyPairRequestPayload{PrivateKeyUniqueIdentifier: id}
		}},
		okmip.OperationDeriveKey: {func(id string) okmip.OperationPayload {
			return &isoDerive{ObjectType: okmip.ObjectTypeSymmetricKey, UniqueIdentifier: []string{id}, DerivationMethod: isoDerivationMethod(engine.DeriveHMAC),
				DerivationParameters: &isoDerivationParams{CryptographicParameters: &okmip.CryptographicParameters{HashingAlgorithm: okmip.HashingAlgorithmSHA_256}, DerivationData: []byte("salt")},
				TemplateAttribute:    &okmip.TemplateAttribute{Attribute: aesTemplate().Attribute}}
		}},
		okmip.OperationCreateSplitKey: {func(id string) okmip.OperationPayload {
			return &isoCreateSplit{ObjectType: okmip.ObjectTypeSplitKey, UniqueIdentifier: id, SplitKeyParts: 3, SplitKeyThreshold: 3, SplitKeyMethod: okmip.SplitKeyMethodXOR}
		}},
		okmip.OperationJoinSplitKey: {func(id string) okmip.OperationPayload {
			return &isoJoinSplit{ObjectType: okmip.ObjectTypeSymmetricKey, UniqueIdentifier: []string{id, id}}
		}},
		okmip.OperationCertify:   {func(id string) okmip.OperationPayload { return &isoCertify{UniqueIdentifier: id} }},
		okmip.OperationReCertify: {func(id string) okmip.OperationPayload { return &isoReCertify{UniqueIdentifier: id} }},
	}
	// Operations that name no existing object (Locate is checked below).
	noObject := []okmip.Operation{okmip.OperationDiscoverVersions, okmip.OperationQuery, okmip.OperationCreate, okmip.OperationRegister,
		okmip.OperationCreateKeyPair, okmip.OperationLocate, okmip.OperationRNGRetrieve, okmip.OperationRNGSeed, okmip.OperationHash}

	q := ok[*payloads.QueryResponsePayload](acme, v14, &payloads.QueryRequestPayload{QueryFunction: []okmip.QueryFunction{okmip.QueryFunctionOperations}})
	for _, op := range q.Operations {
		if _, has := byObject[op]; !has && !slices.Contains(noObject, op) {
			t.Errorf("operation %s is not in the isolation matrix", ttlv.EnumStr(op))
		}
	}
	for op, builds := range byObject {
		if !slices.Contains(q.Operations, op) {
			t.Errorf("operation %s is in the matrix but the server does not list it", ttlv.EnumStr(op))
		}
		for i, build := range builds {
			for _, foreign := range []string{foreignKey, foreignPriv} {
				t.Run(ttlv.EnumStr(op)+"/"+string(rune('a'+i))+"/"+foreign[:8], func(t *testing.T) {
					want := acme.one(v14, build(missing))
					got := acme.one(v14, build(foreign))
					wantFailure(t, want, okmip.ResultReasonItemNotFound)
					wantFailure(t, got, okmip.ResultReasonItemNotFound)
					if w, g := strings.ReplaceAll(want.ResultMessage, missing, "<ID>"), strings.ReplaceAll(got.ResultMessage, foreign, "<ID>"); w != g {
						t.Fatalf("messages differ:\nmissing: %s\nforeign: %s", w, g)
					}
				})
			}
		}
	}
	acme.servesOK()
	// The foreign objects are untouched (not revoked, destroyed, renamed...).
	got := ok[*payloads.GetAttributesResponsePayload](globex, v14, &payloads.GetAttributesRequestPayload{UniqueIdentifier: foreignKey, AttributeName: []okmip.AttributeName{okmip.AttributeNameState, "x-iso"}})
	if len(got.Attribute) != 1 || got.Attribute[0].AttributeValue != okmip.StateActive {
		t.Fatalf("globex's key was changed: %+v", got.Attribute)
	}
}

// TestTenantIsolationLocate: Locate never returns nor counts another
// tenant's objects, whatever the filter.
func TestTenantIsolationLocate(t *testing.T) {
	env := startKMS(t, nil)
	globex := dialAs(t, env, "globex", "admin", engine.RoleAdmin)
	acme := dialAdmin(t, env)
	name, group := uniqueName(t), uniqueName(t)+"-group"
	var foreign []string
	for range 3 {
		foreign = append(foreign, globex.activeKey(groupAttr(group)))
	}
	foreign = append(foreign, globex.createKey(nameAttr(name)))
	fp, fpub := globex.kpCreate(v14, kpECReq(okmip.RecommendedCurveP_256))
	foreign = append(foreign, fp, fpub)
	own := acme.createKey(groupAttr(group + "-acme"))

	filters := map[string][]okmip.Attribute{
		"none":           nil,
		"foreign name":   {nameAttr(name)},
		"foreign group":  {groupAttr(group)},
		"object type":    {{AttributeName: okmip.AttributeNameObjectType, AttributeValue: okmip.ObjectTypeSymmetricKey}},
		"algorithm":      {{AttributeName: okmip.AttributeNameCryptographicAlgorithm, AttributeValue: okmip.CryptographicAlgorithmAES}},
		"private keys":   {{AttributeName: okmip.AttributeNameObjectType, AttributeValue: okmip.ObjectTypePrivateKey}},
		"active":         {{AttributeName: okmip.AttributeNameState, AttributeValue: okmip.StateActive}},
		"foreign id":     {{AttributeName: okmip.AttributeNameUniqueIdentifier, AttributeValue: foreign[0]}},
		"length 256":     {{AttributeName: okmip.AttributeNameCryptographicLength, AttributeValue: int32(256)}},
		"curve P-256":    {{AttributeName: okmip.AttributeNameCryptographicDomainParameters, AttributeValue: okmip.CryptographicDomainParameters{RecommendedCurve: okmip.RecommendedCurveP_256}}},
		"foreign link":   {{AttributeName: okmip.AttributeNameLink, AttributeValue: okmip.Link{LinkType: okmip.LinkTypePublicKeyLink, LinkedObjectIdentifier: fpub}}},
		"object group *": {{AttributeName: okmip.AttributeNameObjectGroup, AttributeValue: group + "-acme"}},
	}
	for name, attrs := range filters {
		t.Run(name, func(t *testing.T) {
			bi := acme.one(v14, &payloads.LocateRequestPayload{Attribute: attrs})
			if bi.ResultStatus != okmip.ResultStatusSuccess {
				// A filter the server refuses must not be about existence.
				if bi.ResultReason == okmip.ResultReasonItemNotFound {
					t.Fatalf("Locate answered Item Not Found: %s", bi.ResultMessage)
				}
				return
			}
			resp := bi.ResponsePayload.(*payloads.LocateResponsePayload)
			for _, id := range resp.UniqueIdentifier {
				if slices.Contains(foreign, id) {
					t.Fatalf("Locate returned globex's object %s", id)
				}
			}
			if resp.LocatedItems != nil && int(*resp.LocatedItems) > 1 {
				t.Fatalf("Locate counts %d objects, acme has 1", *resp.LocatedItems)
			}
			if name == "none" && !slices.Contains(resp.UniqueIdentifier, own) {
				t.Fatalf("Locate without filter misses acme's own object")
			}
			// Paging counts the same.
			page := acme.one(v14, &payloads.LocateRequestPayload{Attribute: attrs, MaximumItems: 1, OffsetItems: 1})
			wantSuccess(t, page)
			p := page.ResponsePayload.(*payloads.LocateResponsePayload)
			if len(p.UniqueIdentifier) != 0 {
				t.Fatalf("the second page of at most one own object lists %v", p.UniqueIdentifier)
			}
			if p.LocatedItems != nil && int(*p.LocatedItems) > 1 {
				t.Fatalf("paged Locate counts %d objects", *p.LocatedItems)
			}
		})
	}
}
