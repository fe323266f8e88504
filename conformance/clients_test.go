package conformance

// Real-client sequences: the message shapes and protocol versions that
// KMIP clients in the field send (from their documentation, source and
// packet captures), replayed against a full server through an independent
// client library (ovh/kmip-go's kmipclient). Each test asserts what that
// client relies on.

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/minikms/minikms/engine"
	"github.com/minikms/minikms/internal/testkms"
	"github.com/ovh/kmip-go"
	"github.com/ovh/kmip-go/kmipclient"
	"github.com/ovh/kmip-go/payloads"
	"github.com/ovh/kmip-go/ttlv"
)

// client dials as tenant/member with protocol version v in every header.
func client(t *testing.T, env *testkms.Env, tenant string, v kmip.ProtocolVersion) *kmipclient.Client {
	t.Helper()
	c, err := kmipclient.Dial(env.Addr, kmipclient.WithTlsConfig(env.ClientTLS(t, tenant, "app", engine.RoleApp)), kmipclient.EnforceVersion(v))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// adminClient dials as the tenant's admin (Destroy needs it).
func adminClient(t *testing.T, env *testkms.Env, tenant string, v kmip.ProtocolVersion) *kmipclient.Client {
	t.Helper()
	c, err := kmipclient.Dial(env.Addr, kmipclient.WithTlsConfig(env.ClientTLS(t, tenant, "admin", engine.RoleAdmin)), kmipclient.EnforceVersion(v))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// do sends one request and returns its typed response payload.
func do[T kmip.OperationPayload](t *testing.T, c *kmipclient.Client, req kmip.OperationPayload) T {
	t.Helper()
	resp, err := c.Request(context.Background(), req)
	if err != nil {
		t.Fatalf("%T: %v", req, err)
	}
	out, ok := resp.(T)
	if !ok {
		t.Fatalf("%T answered with %T", req, resp)
	}
	return out
}

// fails sends one request that must fail with reason.
func fails(t *testing.T, c *kmipclient.Client, req kmip.OperationPayload, reason kmip.ResultReason) {
	t.Helper()
	res, err := c.Batch(context.Background(), req)
	if err != nil {
		t.Fatalf("%T: %v", req, err)
	}
	if res[0].ResultStatus != kmip.ResultStatusOperationFailed || res[0].ResultReason != reason {
		t.Fatalf("%T: status %v reason %v (%s), want failure %v", req, res[0].ResultStatus, res[0].ResultReason, res[0].ResultMessage, reason)
	}
}

func attr(name kmip.AttributeName, v any) kmip.Attribute {
	return kmip.Attribute{AttributeName: name, AttributeValue: v}
}

func aes256(usage kmip.CryptographicUsageMask, extra ...kmip.Attribute) *payloads.CreateRequestPayload {
	return &payloads.CreateRequestPayload{ObjectType: kmip.ObjectTypeSymmetricKey, TemplateAttribute: kmip.TemplateAttribute{Attribute: append([]kmip.Attribute{
		attr(kmip.AttributeNameCryptographicAlgorithm, kmip.CryptographicAlgorithmAES),
		attr(kmip.AttributeNameCryptographicLength, int32(256)),
		attr(kmip.AttributeNameCryptographicUsageMask, usage),
	}, extra...)}}
}

func stateOf(t *testing.T, c *kmipclient.Client, id string) kmip.State {
	t.Helper()
	ga := do[*payloads.GetAttributesResponsePayload](t, c, &payloads.GetAttributesRequestPayload{UniqueIdentifier: id, AttributeName: []kmip.AttributeName{kmip.AttributeNameState}})
	if len(ga.Attribute) != 1 {
		t.Fatalf("Get Attributes State returned %d attributes", len(ga.Attribute))
	}
	return ga.Attribute[0].AttributeValue.(kmip.State)
}

func keyBytes(t *testing.T, obj kmip.Object) []byte {
	t.Helper()
	var kb *kmip.KeyBlock
	switch o := obj.(type) {
	case *kmip.SymmetricKey:
		kb = &o.KeyBlock
	case *kmip.SecretData:
		kb = &o.KeyBlock
	default:
		t.Fatalf("object %T", obj)
	}
	b, err := kb.GetBytes()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// MongoDB Enterprise (KMIP 1.2): the master key is created, read, activated
// and its state polled; audit-log encryption encrypts and decrypts with it.
func TestClientMongoDBEnterprise(t *testing.T) {
	env := testkms.Start(t, testkms.Options{})
	c := client(t, env, "mongo", kmip.V1_2)
	created := do[*payloads.CreateResponsePayload](t, c, aes256(kmip.CryptographicUsageEncrypt|kmip.CryptographicUsageDecrypt))
	got := do[*payloads.GetResponsePayload](t, c, &payloads.GetRequestPayload{UniqueIdentifier: created.UniqueIdentifier})
	if k := keyBytes(t, got.Object); len(k) != 32 {
		t.Fatalf("key material of %d bytes, want 32", len(k))
	}
	if st := stateOf(t, c, created.UniqueIdentifier); st != kmip.StatePreActive {
		t.Fatalf("new key state %v", st)
	}
	do[*payloads.ActivateResponsePayload](t, c, &payloads.ActivateRequestPayload{UniqueIdentifier: created.UniqueIdentifier})
	for range 3 { // mongod polls the state
		if st := stateOf(t, c, created.UniqueIdentifier); st != kmip.StateActive {
			t.Fatalf("state %v after Activate", st)
		}
	}
	plain := []byte("mongod audit log record 0001")
	params := &kmip.CryptographicParameters{BlockCipherMode: kmip.BlockCipherModeGCM, CryptographicAlgorithm: kmip.CryptographicAlgorithmAES, TagLength: 16}
	enc := do[*payloads.EncryptResponsePayload](t, c, &payloads.EncryptRequestPayload{UniqueIdentifier: created.UniqueIdentifier, CryptographicParameters: params, Data: plain})
	// KMIP 1.2 has no Authenticated Encryption Tag field: the tag follows
	// the ciphertext in Data, and comes back the same way.
	if len(enc.IVCounterNonce) != 12 || len(enc.Data) != len(plain)+16 {
		t.Fatalf("GCM encrypt returned IV %d bytes, data %d bytes (want 12, %d)", len(enc.IVCounterNonce), len(enc.Data), len(plain)+16)
	}
	dec := do[*payloads.DecryptResponsePayload](t, c, &payloads.DecryptRequestPayload{UniqueIdentifier: created.UniqueIdentifier, CryptographicParameters: params,
		Data: enc.Data, IVCounterNonce: enc.IVCounterNonce})
	if !bytes.Equal(dec.Data, plain) {
		t.Fatal("decrypt did not return the plaintext")
	}
}

// libmongocrypt: KMIP 1.0 Register of a 96-byte Secret Data (Seed, Opaque
// key format, usage mask 0), Activate, Get; and KMIP 1.2 Create AES-256 and
// Encrypt/Decrypt AES-CBC-PKCS5 with a server-generated IV.
func TestClientLibmongocrypt(t *testing.T) {
	env := testkms.Start(t, testkms.Options{})
	c := client(t, env, "csfle", kmip.V1_0)
	seed := bytes.Repeat([]byte{0x5a, 0xa5, 0x01}, 32)
	reg := do[*payloads.RegisterResponsePayload](t, c, &payloads.RegisterRequestPayload{
		ObjectType: kmip.ObjectTypeSecretData,
		TemplateAttribute: kmip.TemplateAttribute{Attribute: []kmip.Attribute{
			attr(kmip.AttributeNameCryptographicUsageMask, kmip.CryptographicUsageMask(0)),
		}},
		Object: &kmip.SecretData{SecretDataType: kmip.SecretDataTypeSeed, KeyBlock: kmip.KeyBlock{
			KeyFormatType: kmip.KeyFormatTypeOpaque,
			KeyValue:      &kmip.KeyValue{Plain: &kmip.PlainKeyValue{KeyMaterial: kmip.KeyMaterial{Bytes: &seed}}},
		}},
	})
	do[*payloads.ActivateResponsePayload](t, c, &payloads.ActivateRequestPayload{UniqueIdentifier: reg.UniqueIdentifier})
	got := do[*payloads.GetResponsePayload](t, c, &payloads.GetRequestPayload{UniqueIdentifier: reg.UniqueIdentifier})
	if !bytes.Equal(keyBytes(t, got.Object), seed) {
		t.Fatal("Get did not return the registered 96 bytes")
	}
	sd := got.Object.(*kmip.SecretData)
	if sd.SecretDataType != kmip.SecretDataTypeSeed || sd.KeyBlock.KeyFormatType != kmip.KeyFormatTypeOpaque {
		t.Fatalf("secret data type %v, key format %v", sd.SecretDataType, sd.KeyBlock.KeyFormatType)
	}

	c12 := client(t, env, "csfle", kmip.V1_2)
	key := do[*payloads.CreateResponsePayload](t, c12, aes256(kmip.CryptographicUsageEncrypt|kmip.CryptographicUsageDecrypt))
	do[*payloads.ActivateResponsePayload](t, c12, &payloads.ActivateRequestPayload{UniqueIdentifier: key.UniqueIdentifier})
	params := &kmip.CryptographicParameters{BlockCipherMode: kmip.BlockCipherModeCBC, PaddingMethod: kmip.PaddingMethodPKCS5,
		CryptographicAlgorithm: kmip.CryptographicAlgorithmAES, RandomIV: ptr(true)}
	dek := bytes.Repeat([]byte{7}, 96) // libmongocrypt wraps a 96-byte data key
	enc := do[*payloads.EncryptResponsePayload](t, c12, &payloads.EncryptRequestPayload{UniqueIdentifier: key.UniqueIdentifier, CryptographicParameters: params, Data: dek})
	if len(enc.IVCounterNonce) != 16 || len(enc.Data) != 112 {
		t.Fatalf("CBC encrypt: IV %d bytes, ciphertext %d bytes (want 16, 112: PKCS#5 pads a full block)", len(enc.IVCounterNonce), len(enc.Data))
	}
	dec := do[*payloads.DecryptResponsePayload](t, c12, &payloads.DecryptRequestPayload{UniqueIdentifier: key.UniqueIdentifier,
		CryptographicParameters: params, Data: enc.Data, IVCounterNonce: enc.IVCounterNonce})
	if !bytes.Equal(dec.Data, dek) {
		t.Fatal("decrypt did not return the data key")
	}
}

// Percona keyring_kmip / pg_tde: KMIP 1.4 Register of a symmetric key with
// Name and Object Group, then 1.0 headers for Activate; Locate by Object
// Type and Object Group paged by 16 with Offset Items, reading Located
// Items (1.4); Get; Get Attributes Name; Revoke; Destroy.
func TestClientPerconaKeyring(t *testing.T) {
	env := testkms.Start(t, testkms.Options{})
	c14 := adminClient(t, env, "percona", kmip.V1_4)
	c10 := adminClient(t, env, "percona", kmip.V1_0)
	const group = "pg_tde_principal_keys"
	var ids []string
	for i := range 20 {
		material := bytes.Repeat([]byte{byte(i)}, 32)
		reg := do[*payloads.RegisterResponsePayload](t, c14, &payloads.RegisterRequestPayload{
			ObjectType: kmip.ObjectTypeSymmetricKey,
			TemplateAttribute: kmip.TemplateAttribute{Attribute: []kmip.Attribute{
				attr(kmip.AttributeNameName, kmip.Name{NameValue: fmt.Sprintf("pg_tde-db%02d", i), NameType: kmip.NameTypeUninterpretedTextString}),
				attr(kmip.AttributeNameObjectGroup, group),
				attr(kmip.AttributeNameCryptographicUsageMask, kmip.CryptographicUsageEncrypt|kmip.CryptographicUsageDecrypt),
			}},
			Object: &kmip.SymmetricKey{KeyBlock: kmip.KeyBlock{KeyFormatType: kmip.KeyFormatTypeRaw, CryptographicAlgorithm: kmip.CryptographicAlgorithmAES,
				CryptographicLength: 256, KeyValue: &kmip.KeyValue{Plain: &kmip.PlainKeyValue{KeyMaterial: kmip.KeyMaterial{Bytes: &material}}}}},
		})
		do[*payloads.ActivateResponsePayload](t, c10, &payloads.ActivateRequestPayload{UniqueIdentifier: reg.UniqueIdentifier})
		ids = append(ids, reg.UniqueIdentifier)
	}
	// A key of another group must not show up.
	do[*payloads.CreateResponsePayload](t, c14, aes256(kmip.CryptographicUsageEncrypt, attr(kmip.AttributeNameObjectGroup, "other")))

	var found []string
	for offset := int32(0); ; offset += 16 {
		loc := do[*payloads.LocateResponsePayload](t, c14, &payloads.LocateRequestPayload{MaximumItems: 16, OffsetItems: offset, Attribute: []kmip.Attribute{
			attr(kmip.AttributeNameObjectType, kmip.ObjectTypeSymmetricKey),
			attr(kmip.AttributeNameObjectGroup, group),
		}})
		if loc.LocatedItems == nil || *loc.LocatedItems != 20 {
			t.Fatalf("Located Items %v, want 20", loc.LocatedItems)
		}
		found = append(found, loc.UniqueIdentifier...)
		if len(loc.UniqueIdentifier) < 16 {
			break
		}
	}
	slices.Sort(found)
	want := slices.Clone(ids)
	slices.Sort(want)
	if !slices.Equal(found, want) {
		t.Fatalf("paged Locate found %d keys, want the 20 of the group", len(found))
	}
	id := ids[3]
	got := do[*payloads.GetResponsePayload](t, c10, &payloads.GetRequestPayload{UniqueIdentifier: id})
	if !bytes.Equal(keyBytes(t, got.Object), bytes.Repeat([]byte{3}, 32)) {
		t.Fatal("Get returned other material")
	}
	ga := do[*payloads.GetAttributesResponsePayload](t, c10, &payloads.GetAttributesRequestPayload{UniqueIdentifier: id, AttributeName: []kmip.AttributeName{kmip.AttributeNameName}})
	if len(ga.Attribute) != 1 || ga.Attribute[0].AttributeValue.(kmip.Name).NameValue != "pg_tde-db03" {
		t.Fatalf("Get Attributes Name: %+v", ga.Attribute)
	}
	do[*payloads.RevokeResponsePayload](t, c10, &payloads.RevokeRequestPayload{UniqueIdentifier: id,
		RevocationReason: kmip.RevocationReason{RevocationReasonCode: kmip.RevocationReasonCodeCessationOfOperation}})
	do[*payloads.DestroyResponsePayload](t, c10, &payloads.DestroyRequestPayload{UniqueIdentifier: id})
	fails(t, c10, &payloads.GetRequestPayload{UniqueIdentifier: id}, kmip.ResultReasonItemNotFound)
}

// VMware vCenter (KMIP 1.1): Discover Versions, Create AES-256, Get, Get
// Attributes State, Add Attribute with x- custom attributes.
func TestClientVMwareVCenter(t *testing.T) {
	env := testkms.Start(t, testkms.Options{})
	c := client(t, env, "vsphere", kmip.V1_1)
	dv := do[*payloads.DiscoverVersionsResponsePayload](t, c, &payloads.DiscoverVersionsRequestPayload{
		ProtocolVersion: []kmip.ProtocolVersion{kmip.V1_1, kmip.V1_0}})
	if !slices.Equal(dv.ProtocolVersion, []kmip.ProtocolVersion{kmip.V1_1, kmip.V1_0}) {
		t.Fatalf("Discover Versions: %v", dv.ProtocolVersion)
	}
	created := do[*payloads.CreateResponsePayload](t, c, aes256(kmip.CryptographicUsageEncrypt|kmip.CryptographicUsageDecrypt))
	do[*payloads.GetResponsePayload](t, c, &payloads.GetRequestPayload{UniqueIdentifier: created.UniqueIdentifier})
	if st := stateOf(t, c, created.UniqueIdentifier); st != kmip.StatePreActive {
		t.Fatalf("state %v", st)
	}
	for name, v := range map[string]string{"x-Vendor": "VMware, Inc.", "x-Product": "VMware vSphere", "x-Product_Version": "8.0.3",
		"x-VMware-Cluster-ID": "domain-c8"} {
		do[*payloads.AddAttributeResponsePayload](t, c, &payloads.AddAttributeRequestPayload{UniqueIdentifier: created.UniqueIdentifier,
			Attribute: attr(kmip.AttributeName(name), v)})
	}
	ga := do[*payloads.GetAttributesResponsePayload](t, c, &payloads.GetAttributesRequestPayload{UniqueIdentifier: created.UniqueIdentifier,
		AttributeName: []kmip.AttributeName{"x-Product"}})
	if len(ga.Attribute) != 1 || plainValue(ga.Attribute[0].AttributeValue) != "VMware vSphere" {
		t.Fatalf("custom attribute read back: %+v", ga.Attribute)
	}
}

// Synology DSM (KMIP 1.2): Discover Versions, Query, Locate, Register of
// Secret Data with Operation Policy Name "default", Modify Attribute Name,
// Activate, Get Attributes, Get, Revoke, Destroy.
func TestClientSynologyDSM(t *testing.T) {
	env := testkms.Start(t, testkms.Options{})
	c := adminClient(t, env, "nas", kmip.V1_2)
	do[*payloads.DiscoverVersionsResponsePayload](t, c, &payloads.DiscoverVersionsRequestPayload{})
	q := do[*payloads.QueryResponsePayload](t, c, &payloads.QueryRequestPayload{QueryFunction: []kmip.QueryFunction{
		kmip.QueryFunctionOperations, kmip.QueryFunctionObjects, kmip.QueryFunctionServerInformation}})
	if !slices.Contains(q.Operations, kmip.OperationRegister) || !slices.Contains(q.ObjectType, kmip.ObjectTypeSecretData) || q.VendorIdentification == "" {
		t.Fatalf("Query: %+v", q)
	}
	loc := do[*payloads.LocateResponsePayload](t, c, &payloads.LocateRequestPayload{Attribute: []kmip.Attribute{
		attr(kmip.AttributeNameName, kmip.Name{NameValue: "DSM-volume1", NameType: kmip.NameTypeUninterpretedTextString})}})
	if len(loc.UniqueIdentifier) != 0 {
		t.Fatalf("Locate on an empty tenant found %v", loc.UniqueIdentifier)
	}
	pass := []byte("volume1 encryption passphrase, 32")
	reg := do[*payloads.RegisterResponsePayload](t, c, &payloads.RegisterRequestPayload{
		ObjectType: kmip.ObjectTypeSecretData,
		TemplateAttribute: kmip.TemplateAttribute{Attribute: []kmip.Attribute{
			attr(kmip.AttributeNameOperationPolicyName, "default"),
			attr(kmip.AttributeNameCryptographicUsageMask, kmip.CryptographicUsageExport),
			attr(kmip.AttributeNameName, kmip.Name{NameValue: "DSM-tmp", NameType: kmip.NameTypeUninterpretedTextString}),
		}},
		Object: &kmip.SecretData{SecretDataType: kmip.SecretDataTypePassword, KeyBlock: kmip.KeyBlock{
			KeyFormatType: kmip.KeyFormatTypeOpaque, KeyValue: &kmip.KeyValue{Plain: &kmip.PlainKeyValue{KeyMaterial: kmip.KeyMaterial{Bytes: &pass}}}}},
	})
	id := reg.UniqueIdentifier
	do[*payloads.ModifyAttributeResponsePayload](t, c, &payloads.ModifyAttributeRequestPayload{UniqueIdentifier: id,
		Attribute: attr(kmip.AttributeNameName, kmip.Name{NameValue: "DSM-volume1", NameType: kmip.NameTypeUninterpretedTextString})})
	do[*payloads.ActivateResponsePayload](t, c, &payloads.ActivateRequestPayload{UniqueIdentifier: id})
	ga := do[*payloads.GetAttributesResponsePayload](t, c, &payloads.GetAttributesRequestPayload{UniqueIdentifier: id})
	names := map[kmip.AttributeName]any{}
	for _, a := range ga.Attribute {
		names[a.AttributeName] = a.AttributeValue
	}
	if names[kmip.AttributeNameName].(kmip.Name).NameValue != "DSM-volume1" || names[kmip.AttributeNameState] != kmip.StateActive ||
		names[kmip.AttributeNameOperationPolicyName] != "default" {
		t.Fatalf("attributes after Modify and Activate: %+v", names)
	}
	loc = do[*payloads.LocateResponsePayload](t, c, &payloads.LocateRequestPayload{Attribute: []kmip.Attribute{
		attr(kmip.AttributeNameName, kmip.Name{NameValue: "DSM-volume1", NameType: kmip.NameTypeUninterpretedTextString})}})
	if !slices.Equal(loc.UniqueIdentifier, []string{id}) {
		t.Fatalf("Locate by the new name: %v", loc.UniqueIdentifier)
	}
	got := do[*payloads.GetResponsePayload](t, c, &payloads.GetRequestPayload{UniqueIdentifier: id})
	if !bytes.Equal(keyBytes(t, got.Object), pass) {
		t.Fatal("Get returned another secret")
	}
	do[*payloads.RevokeResponsePayload](t, c, &payloads.RevokeRequestPayload{UniqueIdentifier: id,
		RevocationReason: kmip.RevocationReason{RevocationReasonCode: kmip.RevocationReasonCodeCessationOfOperation}})
	do[*payloads.DestroyResponsePayload](t, c, &payloads.DestroyRequestPayload{UniqueIdentifier: id})
}

// Scality: Discover Versions offering 1.4, 1.3, 1.2; Query; Create and
// Activate in one batch (ID Placeholder); Encrypt/Decrypt AES-CBC-PKCS5
// with an all-zero IV given by the client; Revoke; Destroy.
func TestClientScality(t *testing.T) {
	env := testkms.Start(t, testkms.Options{})
	c := adminClient(t, env, "s3", kmip.V1_2)
	dv := do[*payloads.DiscoverVersionsResponsePayload](t, c, &payloads.DiscoverVersionsRequestPayload{
		ProtocolVersion: []kmip.ProtocolVersion{kmip.V1_4, kmip.V1_3, kmip.V1_2}})
	if !slices.Equal(dv.ProtocolVersion, []kmip.ProtocolVersion{kmip.V1_4, kmip.V1_3, kmip.V1_2}) {
		t.Fatalf("Discover Versions: %v", dv.ProtocolVersion)
	}
	c = adminClient(t, env, "s3", kmip.V1_4)
	do[*payloads.QueryResponsePayload](t, c, &payloads.QueryRequestPayload{QueryFunction: []kmip.QueryFunction{kmip.QueryFunctionOperations, kmip.QueryFunctionObjects}})
	res, err := c.Batch(context.Background(), aes256(kmip.CryptographicUsageEncrypt|kmip.CryptographicUsageDecrypt,
		attr(kmip.AttributeNameName, kmip.Name{NameValue: "bucket-key", NameType: kmip.NameTypeUninterpretedTextString})),
		&payloads.ActivateRequestPayload{})
	if err != nil {
		t.Fatal(err)
	}
	for _, bi := range res {
		if err := bi.Err(); err != nil {
			t.Fatal(err)
		}
	}
	id := res[0].ResponsePayload.(*payloads.CreateResponsePayload).UniqueIdentifier
	if res[1].ResponsePayload.(*payloads.ActivateResponsePayload).UniqueIdentifier != id {
		t.Fatal("Activate in the batch did not act on the created key")
	}
	params := &kmip.CryptographicParameters{BlockCipherMode: kmip.BlockCipherModeCBC, PaddingMethod: kmip.PaddingMethodPKCS5, CryptographicAlgorithm: kmip.CryptographicAlgorithmAES}
	zero := make([]byte, 16)
	plain := []byte("object data key 32 bytes long!!!")
	enc := do[*payloads.EncryptResponsePayload](t, c, &payloads.EncryptRequestPayload{UniqueIdentifier: id, CryptographicParameters: params, Data: plain, IVCounterNonce: zero})
	if len(enc.Data) != 48 {
		t.Fatalf("ciphertext of %d bytes, want 48", len(enc.Data))
	}
	dec := do[*payloads.DecryptResponsePayload](t, c, &payloads.DecryptRequestPayload{UniqueIdentifier: id, CryptographicParameters: params, Data: enc.Data, IVCounterNonce: zero})
	if !bytes.Equal(dec.Data, plain) {
		t.Fatal("decrypt did not return the plaintext")
	}
	do[*payloads.RevokeResponsePayload](t, c, &payloads.RevokeRequestPayload{UniqueIdentifier: id,
		RevocationReason: kmip.RevocationReason{RevocationReasonCode: kmip.RevocationReasonCodeCessationOfOperation}})
	do[*payloads.DestroyResponsePayload](t, c, &payloads.DestroyRequestPayload{UniqueIdentifier: id})
}

// fortiLocate is Locate as FortiOS sends it: the filter wrapped in a
// Template-Attribute structure.
type fortiLocate struct {
	TemplateAttribute kmip.TemplateAttribute
}

func (*fortiLocate) Operation() kmip.Operation { return kmip.OperationLocate }

// FortiOS: Locate by Name with the filter inside a Template-Attribute must
// return only the matching key.
func TestClientFortiOS(t *testing.T) {
	env := testkms.Start(t, testkms.Options{})
	c := client(t, env, "fortigate", kmip.V1_2)
	var want string
	for _, n := range []string{"fgt-ipsec-1", "fgt-ipsec-2", "fgt-ssl"} {
		r := do[*payloads.CreateResponsePayload](t, c, aes256(kmip.CryptographicUsageEncrypt,
			attr(kmip.AttributeNameName, kmip.Name{NameValue: n, NameType: kmip.NameTypeUninterpretedTextString})))
		if n == "fgt-ipsec-2" {
			want = r.UniqueIdentifier
		}
	}
	loc := do[*payloads.LocateResponsePayload](t, c, &fortiLocate{TemplateAttribute: kmip.TemplateAttribute{Attribute: []kmip.Attribute{
		attr(kmip.AttributeNameName, kmip.Name{NameValue: "fgt-ipsec-2", NameType: kmip.NameTypeUninterpretedTextString})}}})
	if !slices.Equal(loc.UniqueIdentifier, []string{want}) {
		t.Fatalf("wrapped Locate by Name returned %v, want only %s", loc.UniqueIdentifier, want)
	}
}

// VAST Data: Create, three Add Attribute, Activate, Locate, Get, Get
// Attributes polling, ReKey.
func TestClientVASTData(t *testing.T) {
	env := testkms.Start(t, testkms.Options{})
	c := client(t, env, "vast", kmip.V1_2)
	created := do[*payloads.CreateResponsePayload](t, c, aes256(kmip.CryptographicUsageEncrypt|kmip.CryptographicUsageDecrypt))
	id := created.UniqueIdentifier
	for i, a := range []kmip.Attribute{
		attr(kmip.AttributeNameName, kmip.Name{NameValue: "vast-tenant-7", NameType: kmip.NameTypeUninterpretedTextString}),
		attr("x-vast-cluster", "cluster-01"),
		attr(kmip.AttributeNameContactInformation, "storage-admins@example.com"),
	} {
		r := do[*payloads.AddAttributeResponsePayload](t, c, &payloads.AddAttributeRequestPayload{UniqueIdentifier: id, Attribute: a})
		if r.Attribute.AttributeName != a.AttributeName {
			t.Fatalf("Add Attribute %d answered %v", i, r.Attribute.AttributeName)
		}
	}
	do[*payloads.ActivateResponsePayload](t, c, &payloads.ActivateRequestPayload{UniqueIdentifier: id})
	loc := do[*payloads.LocateResponsePayload](t, c, &payloads.LocateRequestPayload{Attribute: []kmip.Attribute{attr("x-vast-cluster", "cluster-01")}})
	if !slices.Equal(loc.UniqueIdentifier, []string{id}) {
		t.Fatalf("Locate by custom attribute: %v", loc.UniqueIdentifier)
	}
	do[*payloads.GetResponsePayload](t, c, &payloads.GetRequestPayload{UniqueIdentifier: id})
	deadline := time.Now().Add(2 * time.Second)
	for stateOf(t, c, id) != kmip.StateActive {
		if time.Now().After(deadline) {
			t.Fatal("the key never showed Active")
		}
	}
	rk := do[*payloads.RekeyResponsePayload](t, c, &payloads.RekeyRequestPayload{UniqueIdentifier: id})
	if rk.UniqueIdentifier == "" || rk.UniqueIdentifier == id {
		t.Fatalf("ReKey returned %q", rk.UniqueIdentifier)
	}
	ga := do[*payloads.GetAttributesResponsePayload](t, c, &payloads.GetAttributesRequestPayload{UniqueIdentifier: rk.UniqueIdentifier,
		AttributeName: []kmip.AttributeName{"x-vast-cluster", kmip.AttributeNameLink}})
	var custom, link bool
	for _, a := range ga.Attribute {
		switch a.AttributeName {
		case "x-vast-cluster":
			custom = plainValue(a.AttributeValue) == "cluster-01"
		case kmip.AttributeNameLink:
			l := a.AttributeValue.(kmip.Link)
			link = link || (l.LinkType == kmip.LinkTypeReplacedObjectLink && l.LinkedObjectIdentifier == id)
		}
	}
	if !custom || !link {
		t.Fatalf("the new key lacks the carried-over custom attribute (%v) or its Replaced Object link (%v): %+v", custom, link, ga.Attribute)
	}
}

// NetApp ONTAP: Register, Locate and Get with many x-NETAPP-* text
// attributes.
func TestClientNetAppONTAP(t *testing.T) {
	env := testkms.Start(t, testkms.Options{})
	c := client(t, env, "ontap", kmip.V1_2)
	custom := []kmip.Attribute{
		attr("x-NETAPP-ClusterId", "2f1c9d1e-6f5a-11ee-8f1a-00a098d39e12"),
		attr("x-NETAPP-ClusterName", "ontap-cluster-a"),
		attr("x-NETAPP-KeyId", strings.Repeat("0a1b2c3d", 8)),
		attr("x-NETAPP-KeyTag", "node-01"),
		attr("x-NETAPP-KeyUsage", "NSE-AK"),
		attr("x-NETAPP-Product", "Data ONTAP"),
		attr("x-NETAPP-ProductVersion", "9.14.1"),
		attr("x-NETAPP-Vserver-UUID", "6f5a2f1c-11ee-9d1e-8f1a-00a098d39e12"),
	}
	material := bytes.Repeat([]byte{0xab}, 32)
	reg := do[*payloads.RegisterResponsePayload](t, c, &payloads.RegisterRequestPayload{
		ObjectType: kmip.ObjectTypeSymmetricKey,
		TemplateAttribute: kmip.TemplateAttribute{Attribute: append([]kmip.Attribute{
			attr(kmip.AttributeNameCryptographicUsageMask, kmip.CryptographicUsageEncrypt|kmip.CryptographicUsageDecrypt),
		}, custom...)},
		Object: &kmip.SymmetricKey{KeyBlock: kmip.KeyBlock{KeyFormatType: kmip.KeyFormatTypeRaw, CryptographicAlgorithm: kmip.CryptographicAlgorithmAES,
			CryptographicLength: 256, KeyValue: &kmip.KeyValue{Plain: &kmip.PlainKeyValue{KeyMaterial: kmip.KeyMaterial{Bytes: &material}}}}},
	})
	// A second key of another cluster.
	other := slices.Clone(custom)
	other[0] = attr("x-NETAPP-ClusterId", "other")
	do[*payloads.RegisterResponsePayload](t, c, &payloads.RegisterRequestPayload{
		ObjectType: kmip.ObjectTypeSymmetricKey, TemplateAttribute: kmip.TemplateAttribute{Attribute: other},
		Object: &kmip.SymmetricKey{KeyBlock: kmip.KeyBlock{KeyFormatType: kmip.KeyFormatTypeRaw, CryptographicAlgorithm: kmip.CryptographicAlgorithmAES,
			CryptographicLength: 256, KeyValue: &kmip.KeyValue{Plain: &kmip.PlainKeyValue{KeyMaterial: kmip.KeyMaterial{Bytes: &material}}}}},
	})
	loc := do[*payloads.LocateResponsePayload](t, c, &payloads.LocateRequestPayload{Attribute: []kmip.Attribute{
		attr(kmip.AttributeNameObjectType, kmip.ObjectTypeSymmetricKey),
		attr("x-NETAPP-ClusterId", "2f1c9d1e-6f5a-11ee-8f1a-00a098d39e12"),
		attr("x-NETAPP-KeyId", strings.Repeat("0a1b2c3d", 8)),
	}})
	if !slices.Equal(loc.UniqueIdentifier, []string{reg.UniqueIdentifier}) {
		t.Fatalf("Locate by x-NETAPP attributes: %v", loc.UniqueIdentifier)
	}
	got := do[*payloads.GetResponsePayload](t, c, &payloads.GetRequestPayload{UniqueIdentifier: reg.UniqueIdentifier})
	if !bytes.Equal(keyBytes(t, got.Object), material) {
		t.Fatal("Get returned other material")
	}
	ga := do[*payloads.GetAttributesResponsePayload](t, c, &payloads.GetAttributesRequestPayload{UniqueIdentifier: reg.UniqueIdentifier})
	have := map[kmip.AttributeName]any{}
	for _, a := range ga.Attribute {
		have[a.AttributeName] = plainValue(a.AttributeValue)
	}
	for _, a := range custom {
		if have[a.AttributeName] != a.AttributeValue {
			t.Errorf("%s = %v, want %v", a.AttributeName, have[a.AttributeName], a.AttributeValue)
		}
	}
}

func ptr[T any](v T) *T { return &v }

// plainValue unwraps a custom attribute's value: the client library
// decodes attributes it does not know as a generic TTLV value.
func plainValue(v any) any {
	if tv, ok := v.(ttlv.Value); ok {
		return tv.Value
	}
	return v
}
