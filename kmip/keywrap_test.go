package kmip_test

import (
	"bytes"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/minikms/minikms/engine"
	okmip "github.com/ovh/kmip-go"
	"github.com/ovh/kmip-go/payloads"
	"github.com/ovh/kmip-go/ttlv"
)

func kwHex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// RFC 3394 §4.1 and RFC 5649 §6.
const (
	kwKEK128   = "000102030405060708090A0B0C0D0E0F"
	kwData128  = "00112233445566778899AABBCCDDEEFF"
	kwWrapped  = "1FA68B0A8112B447AEF34BD8FB5A7B829D3E862371D2CFE5"
	kwpKEK192  = "5840df6e29b02af1ab493b705bf16ea1ae8338f4dcc176a8"
	kwpData20  = "c37b7e6492584340bed12207808941155068f738"
	kwpWrapped = "138bdeaa9b8fa7fc61f97742e72248ee5ae6ae5360d1ae6a5f54f373fa543b6a"
)

func usageAttr(m okmip.CryptographicUsageMask) okmip.Attribute {
	return okmip.Attribute{AttributeName: okmip.AttributeNameCryptographicUsageMask, AttributeValue: m}
}

func activeNow() okmip.Attribute {
	return okmip.Attribute{AttributeName: okmip.AttributeNameActivationDate, AttributeValue: time.Now().Add(-time.Hour).Truncate(time.Second)}
}

// kwRegister registers raw AES key bytes with attrs and returns the id.
func (w *wireConn) kwRegister(key []byte, attrs ...okmip.Attribute) string {
	w.t.Helper()
	return ok[*payloads.RegisterResponsePayload](w, v14, &payloads.RegisterRequestPayload{
		ObjectType: okmip.ObjectTypeSymmetricKey, TemplateAttribute: okmip.TemplateAttribute{Attribute: attrs},
		Object: symmetricKey(okmip.KeyFormatTypeRaw, slices.Clone(key)),
	}).UniqueIdentifier
}

// kwKEK registers an Active AES key encryption key.
func (w *wireConn) kwKEK(key []byte, mask okmip.CryptographicUsageMask) string {
	w.t.Helper()
	return w.kwRegister(key, usageAttr(mask), activeNow())
}

func wrapSpec(kek string, mode okmip.BlockCipherMode, enc okmip.EncodingOption, names ...string) *okmip.KeyWrappingSpecification {
	spec := &okmip.KeyWrappingSpecification{
		WrappingMethod:           okmip.WrappingMethodEncrypt,
		EncryptionKeyInformation: &okmip.EncryptionKeyInformation{UniqueIdentifier: kek},
		EncodingOption:           enc,
	}
	if mode != 0 {
		spec.EncryptionKeyInformation.CryptographicParameters = &okmip.CryptographicParameters{BlockCipherMode: mode}
	}
	for _, n := range names {
		spec.AttributeName = append(spec.AttributeName, okmip.AttributeName(n))
	}
	return spec
}

// wrappedBlock returns the Key Block of a wrapped Get response.
func wrappedBlock(t *testing.T, g *payloads.GetResponsePayload) *okmip.KeyBlock {
	t.Helper()
	var kb *okmip.KeyBlock
	switch o := g.Object.(type) {
	case *okmip.SymmetricKey:
		kb = &o.KeyBlock
	case *okmip.SecretData:
		kb = &o.KeyBlock
	case *okmip.PrivateKey:
		kb = &o.KeyBlock
	default:
		t.Fatalf("Get returned %T", g.Object)
	}
	if kb.KeyValue == nil || kb.KeyValue.Wrapped == nil || kb.KeyValue.Plain != nil {
		t.Fatalf("the Key Value is not a wrapped byte string: %#v", kb.KeyValue)
	}
	if kb.KeyWrappingData == nil {
		t.Fatal("no Key Wrapping Data")
	}
	return kb
}

func TestGetWrappedAESKeyWrapKnownAnswers(t *testing.T) {
	env := startKMS(t, nil)
	w := dialAdmin(t, env)
	kek := w.kwKEK(kwHex(t, kwKEK128), okmip.CryptographicUsageWrapKey)
	dek := w.kwRegister(kwHex(t, kwData128), usageAttr(okmip.CryptographicUsageEncrypt|okmip.CryptographicUsageDecrypt))

	for _, v := range []okmip.ProtocolVersion{v11, v12, v13, v14} {
		g := ok[*payloads.GetResponsePayload](w, v, &payloads.GetRequestPayload{UniqueIdentifier: dek,
			KeyWrappingSpecification: wrapSpec(kek, okmip.BlockCipherModeNISTKeyWrap, okmip.EncodingOptionNoEncoding)})
		kb := wrappedBlock(t, g)
		if got := *kb.KeyValue.Wrapped; !bytes.Equal(got, kwHex(t, kwWrapped)) {
			t.Fatalf("%s: NIST Key Wrap = %x, want RFC 3394 §4.1", v, got)
		}
		kwd := kb.KeyWrappingData
		if kwd.WrappingMethod != okmip.WrappingMethodEncrypt || kwd.EncodingOption != okmip.EncodingOptionNoEncoding ||
			kwd.EncryptionKeyInformation == nil || kwd.EncryptionKeyInformation.UniqueIdentifier != kek ||
			kwd.EncryptionKeyInformation.CryptographicParameters.BlockCipherMode != okmip.BlockCipherModeNISTKeyWrap ||
			kwd.IVCounterNonce != nil || kwd.MACSignatureKeyInformation != nil {
			t.Fatalf("%s: Key Wrapping Data %#v", v, kwd)
		}
		if kb.KeyFormatType != okmip.KeyFormatTypeRaw || kb.CryptographicAlgorithm != okmip.CryptographicAlgorithmAES || kb.CryptographicLength != 128 {
			t.Fatalf("%s: key block %#v", v, kb)
		}
	}

	// AES Key Wrap with Padding of the same key (computed independently).
	g := ok[*payloads.GetResponsePayload](w, v14, &payloads.GetRequestPayload{UniqueIdentifier: dek,
		KeyWrappingSpecification: wrapSpec(kek, okmip.BlockCipherModeAESKeyWrapPadding, okmip.EncodingOptionNoEncoding)})
	if got := *wrappedBlock(t, g).KeyValue.Wrapped; !bytes.Equal(got, kwHex(t, "2cef0c9e30de26016c230cb78bc60d51b1fe083ba0c79cd5")) {
		t.Fatalf("AES Key Wrap with Padding = %x", got)
	}

	// RFC 5649 §6 (20 octets, 192-bit KEK) through Secret Data.
	kek192 := w.kwKEK(kwHex(t, kwpKEK192), okmip.CryptographicUsageWrapKey)
	secret := ok[*payloads.RegisterResponsePayload](w, v14, &payloads.RegisterRequestPayload{
		ObjectType: okmip.ObjectTypeSecretData,
		Object: &okmip.SecretData{SecretDataType: okmip.SecretDataTypeSeed, KeyBlock: okmip.KeyBlock{KeyFormatType: okmip.KeyFormatTypeRaw,
			KeyValue: &okmip.KeyValue{Plain: &okmip.PlainKeyValue{KeyMaterial: okmip.KeyMaterial{Bytes: ptrTo(kwHex(t, kwpData20))}}}}},
	}).UniqueIdentifier
	g = ok[*payloads.GetResponsePayload](w, v14, &payloads.GetRequestPayload{UniqueIdentifier: secret,
		KeyWrappingSpecification: wrapSpec(kek192, okmip.BlockCipherModeAESKeyWrapPadding, okmip.EncodingOptionNoEncoding)})
	if got := *wrappedBlock(t, g).KeyValue.Wrapped; !bytes.Equal(got, kwHex(t, kwpWrapped)) {
		t.Fatalf("RFC 5649 20-octet example: %x", got)
	}
	// 20 bytes cannot be NIST-key-wrapped.
	w.fails(v14, &payloads.GetRequestPayload{UniqueIdentifier: secret,
		KeyWrappingSpecification: wrapSpec(kek192, okmip.BlockCipherModeNISTKeyWrap, okmip.EncodingOptionNoEncoding)}, okmip.ResultReasonInvalidField)
	// Without a mode the server picks the one the length allows, and says so.
	g = ok[*payloads.GetResponsePayload](w, v14, &payloads.GetRequestPayload{UniqueIdentifier: secret,
		KeyWrappingSpecification: wrapSpec(kek192, 0, okmip.EncodingOptionNoEncoding)})
	kb := wrappedBlock(t, g)
	if !bytes.Equal(*kb.KeyValue.Wrapped, kwHex(t, kwpWrapped)) ||
		kb.KeyWrappingData.EncryptionKeyInformation.CryptographicParameters == nil ||
		kb.KeyWrappingData.EncryptionKeyInformation.CryptographicParameters.BlockCipherMode != okmip.BlockCipherModeAESKeyWrapPadding {
		t.Fatalf("default mode: %x, %#v", *kb.KeyValue.Wrapped, kb.KeyWrappingData.EncryptionKeyInformation)
	}
}

func ptrTo[T any](v T) *T { return &v }

// The default encoding wraps the TTLV Key Value with the attributes asked
// for (computed independently: RFC 3394 over the TTLV bytes below).
func TestGetWrappedTTLVEncodingWithAttributes(t *testing.T) {
	env := startKMS(t, nil)
	w := dialAdmin(t, env)
	kek := w.kwKEK(kwHex(t, kwKEK128), okmip.CryptographicUsageWrapKey)
	dek := w.kwRegister(kwHex(t, kwData128), usageAttr(okmip.CryptographicUsageEncrypt|okmip.CryptographicUsageDecrypt))
	// Key Value { Key Material 0011..FF, Attribute { "Cryptographic Usage Mask", Integer 12 } }
	wantTTLV := kwHex(t, "4200450100000050420043080000001000112233445566778899aabbccddeeff420008010000003042000a070000001843727970746f67726170686963205573616765204d61736b42000b02000000040000000c00000000")
	wantWrapped := kwHex(t, "0dc0f8cb416e7b4422d85805d3dd80e49c6c75f763d1be99748de568e4eecdc05b94b1c1946fd3def14cfe184daada0daf07c93e038ceb9f501bdd8a82c7d6b33152dbf9d415924b9f13f6cb75ff880ab09dc862e473f74bdaf9398ec7695d41")
	for _, enc := range []okmip.EncodingOption{0, okmip.EncodingOptionTTLVEncoding} {
		g := ok[*payloads.GetResponsePayload](w, v12, &payloads.GetRequestPayload{UniqueIdentifier: dek,
			KeyWrappingSpecification: wrapSpec(kek, okmip.BlockCipherModeNISTKeyWrap, enc, "Cryptographic Usage Mask")})
		kb := wrappedBlock(t, g)
		if got := *kb.KeyValue.Wrapped; !bytes.Equal(got, wantWrapped) {
			t.Fatalf("encoding %v: wrapped %x, want the RFC 3394 wrap of %x", enc, got, wantTTLV)
		}
		if kb.KeyWrappingData.EncodingOption != enc {
			t.Fatalf("Encoding Option echoed as %v", kb.KeyWrappingData.EncodingOption)
		}
	}
	// KMIP 1.0 has no Encoding Option: TTLV.
	g := ok[*payloads.GetResponsePayload](w, v10, &payloads.GetRequestPayload{UniqueIdentifier: dek,
		KeyWrappingSpecification: wrapSpec(kek, okmip.BlockCipherModeNISTKeyWrap, 0, "Cryptographic Usage Mask")})
	if got := *wrappedBlock(t, g).KeyValue.Wrapped; !bytes.Equal(got, wantWrapped) {
		t.Fatalf("1.0: %x", got)
	}
	// A transparent key format needs TTLV.
	g = ok[*payloads.GetResponsePayload](w, v14, &payloads.GetRequestPayload{UniqueIdentifier: dek, KeyFormatType: okmip.KeyFormatTypeTransparentSymmetricKey,
		KeyWrappingSpecification: wrapSpec(kek, okmip.BlockCipherModeNISTKeyWrap, okmip.EncodingOptionTTLVEncoding)})
	if kb := wrappedBlock(t, g); kb.KeyFormatType != okmip.KeyFormatTypeTransparentSymmetricKey {
		t.Fatalf("format %v", kb.KeyFormatType)
	}
	w.fails(v14, &payloads.GetRequestPayload{UniqueIdentifier: dek, KeyFormatType: okmip.KeyFormatTypeTransparentSymmetricKey,
		KeyWrappingSpecification: wrapSpec(kek, okmip.BlockCipherModeNISTKeyWrap, okmip.EncodingOptionNoEncoding)}, okmip.ResultReasonEncodingOptionError)
}

// A wrapped Get never carries the plaintext key, in any form.
func TestGetWrappedResponseHoldsNoPlaintext(t *testing.T) {
	env := startKMS(t, nil)
	w := dialAdmin(t, env)
	kek := w.kwKEK(kwHex(t, kwKEK128), okmip.CryptographicUsageWrapKey)
	dek := w.kwRegister(kwHex(t, kwData128))
	for _, enc := range []okmip.EncodingOption{okmip.EncodingOptionNoEncoding, okmip.EncodingOptionTTLVEncoding} {
		_, raw := w.do(newRequest(v14, &payloads.GetRequestPayload{UniqueIdentifier: dek, KeyWrappingSpecification: wrapSpec(kek, 0, enc)}))
		if bytes.Contains(raw, kwHex(t, kwData128)) {
			t.Fatalf("encoding %v: the response contains the plaintext key", enc)
		}
		if tagValues(t, raw, okmip.TagKeyMaterial) != nil {
			t.Fatalf("encoding %v: the response has a Key Material item", enc)
		}
	}
}

// A Sensitive key leaves only wrapped; a non-Extractable one not at all.
func TestGetWrappedSensitiveAndExtractable(t *testing.T) {
	env := startKMS(t, nil)
	w := dialAdmin(t, env)
	kek := w.kwKEK(kwHex(t, kwKEK128), okmip.CryptographicUsageWrapKey)
	sensitive := w.kwRegister(kwHex(t, kwData128), okmip.Attribute{AttributeName: okmip.AttributeNameSensitive, AttributeValue: true})
	w.fails(v14, &payloads.GetRequestPayload{UniqueIdentifier: sensitive}, okmip.ResultReasonSensitive)
	g := ok[*payloads.GetResponsePayload](w, v14, &payloads.GetRequestPayload{UniqueIdentifier: sensitive,
		KeyWrappingSpecification: wrapSpec(kek, okmip.BlockCipherModeNISTKeyWrap, okmip.EncodingOptionNoEncoding)})
	if !bytes.Equal(*wrappedBlock(t, g).KeyValue.Wrapped, kwHex(t, kwWrapped)) {
		t.Fatal("sensitive key wrapped wrong")
	}
	fixed := w.kwRegister(kwHex(t, kwData128), okmip.Attribute{AttributeName: okmip.AttributeNameExtractable, AttributeValue: false})
	w.fails(v14, &payloads.GetRequestPayload{UniqueIdentifier: fixed, KeyWrappingSpecification: wrapSpec(kek, 0, 0)}, okmip.ResultReasonNotExtractable)
	w.fails(v12, &payloads.GetRequestPayload{UniqueIdentifier: fixed, KeyWrappingSpecification: wrapSpec(kek, 0, 0)}, okmip.ResultReasonPermissionDenied)
}

func TestGetWrappedRefusals(t *testing.T) {
	env := startKMS(t, nil)
	w := dialAdmin(t, env)
	kek := w.kwKEK(kwHex(t, kwKEK128), okmip.CryptographicUsageWrapKey)
	dek := w.kwRegister(kwHex(t, kwData128))
	noWrap := w.kwKEK(kwHex(t, kwKEK128), okmip.CryptographicUsageEncrypt|okmip.CryptographicUsageUnwrapKey)
	preActive := w.kwRegister(kwHex(t, kwKEK128), usageAttr(okmip.CryptographicUsageWrapKey))
	stopped := w.kwRegister(kwHex(t, kwKEK128), usageAttr(okmip.CryptographicUsageWrapKey), activeNow(),
		okmip.Attribute{AttributeName: okmip.AttributeNameProtectStopDate, AttributeValue: time.Now().Add(-time.Minute).Truncate(time.Second)})
	hmacKey := ok[*payloads.CreateResponsePayload](w, v14, &payloads.CreateRequestPayload{ObjectType: okmip.ObjectTypeSymmetricKey,
		TemplateAttribute: okmip.TemplateAttribute{Attribute: []okmip.Attribute{
			{AttributeName: okmip.AttributeNameCryptographicAlgorithm, AttributeValue: okmip.CryptographicAlgorithmHMACSHA256},
			{AttributeName: okmip.AttributeNameCryptographicLength, AttributeValue: int32(256)},
			usageAttr(okmip.CryptographicUsageWrapKey), activeNow(),
		}}}).UniqueIdentifier
	opaque := ok[*payloads.RegisterResponsePayload](w, v14, registerOpaque([]byte("opaque"))).UniqueIdentifier
	destroyed := w.kwRegister(kwHex(t, kwData128))
	ok[*payloads.DestroyResponsePayload](w, v14, &payloads.DestroyRequestPayload{UniqueIdentifier: destroyed})
	tmpl := ok[*payloads.RegisterResponsePayload](w, v12, &payloads.RegisterRequestPayload{ObjectType: okmip.ObjectTypeTemplate,
		TemplateAttribute: okmip.TemplateAttribute{Attribute: []okmip.Attribute{nameAttr(uniqueName(t))}},
		Object:            &okmip.Template{Attribute: []okmip.Attribute{usageAttr(okmip.CryptographicUsageEncrypt)}}}).UniqueIdentifier
	other := dialAs(t, env, "globex", "admin", engine.RoleAdmin)
	otherKEK := other.kwKEK(kwHex(t, kwKEK128), okmip.CryptographicUsageWrapKey)

	get := func(id string, spec *okmip.KeyWrappingSpecification) *payloads.GetRequestPayload {
		return &payloads.GetRequestPayload{UniqueIdentifier: id, KeyWrappingSpecification: spec}
	}
	mode := func(m okmip.BlockCipherMode) *okmip.KeyWrappingSpecification { return wrapSpec(kek, m, 0) }
	method := func(m okmip.WrappingMethod) *okmip.KeyWrappingSpecification {
		s := wrapSpec(kek, 0, 0)
		s.WrappingMethod = m
		return s
	}
	noKEK := wrapSpec(kek, 0, 0)
	noKEK.EncryptionKeyInformation = nil
	withMAC := wrapSpec(kek, 0, 0)
	withMAC.MACSignatureKeyInformation = &okmip.MACSignatureKeyInformation{UniqueIdentifier: kek}
	padding := wrapSpec(kek, okmip.BlockCipherModeNISTKeyWrap, 0)
	padding.EncryptionKeyInformation.CryptographicParameters.PaddingMethod = okmip.PaddingMethodPKCS5

	for _, c := range []struct {
		name   string
		v      okmip.ProtocolVersion
		req    *payloads.GetRequestPayload
		reason okmip.ResultReason
	}{
		{"KEK without Wrap Key", v14, get(dek, wrapSpec(noWrap, 0, 0)), okmip.ResultReasonPermissionDenied},
		{"KEK Pre-Active", v14, get(dek, wrapSpec(preActive, 0, 0)), okmip.ResultReasonPermissionDenied},
		{"KEK past Protect Stop Date", v14, get(dek, wrapSpec(stopped, 0, 0)), okmip.ResultReasonPermissionDenied},
		{"KEK not found", v14, get(dek, wrapSpec("no-such-key", 0, 0)), okmip.ResultReasonItemNotFound},
		{"KEK of another tenant", v14, get(dek, wrapSpec(otherKEK, 0, 0)), okmip.ResultReasonItemNotFound},
		{"HMAC KEK", v14, get(dek, wrapSpec(hmacKey, 0, 0)), okmip.ResultReasonFeatureNotSupported},
		{"opaque KEK", v14, get(dek, wrapSpec(opaque, 0, 0)), okmip.ResultReasonIllegalOperation},
		{"GCM", v14, get(dek, mode(okmip.BlockCipherModeGCM)), okmip.ResultReasonFeatureNotSupported},
		{"padding method", v14, get(dek, padding), okmip.ResultReasonInvalidField},
		{"MAC/sign", v14, get(dek, method(okmip.WrappingMethodMACSign)), okmip.ResultReasonFeatureNotSupported},
		{"encrypt then MAC", v14, get(dek, method(okmip.WrappingMethodEncryptThenMACSign)), okmip.ResultReasonFeatureNotSupported},
		{"TR-31", v14, get(dek, method(okmip.WrappingMethodTR_31)), okmip.ResultReasonFeatureNotSupported},
		{"no Encryption Key Information", v14, get(dek, noKEK), okmip.ResultReasonMissingData},
		{"MAC key with Encrypt", v14, get(dek, withMAC), okmip.ResultReasonInvalidField},
		{"No Encoding with attributes", v14, get(dek, wrapSpec(kek, 0, okmip.EncodingOptionNoEncoding, "Name")), okmip.ResultReasonEncodingOptionError},
		{"bad Encoding Option", v14, get(dek, wrapSpec(kek, 0, 7)), okmip.ResultReasonEncodingOptionError},
		{"self-wrap", v14, get(kek, wrapSpec(kek, 0, 0)), okmip.ResultReasonInvalidField},
		{"destroyed key", v14, get(destroyed, wrapSpec(kek, 0, 0)), okmip.ResultReasonItemNotFound},
		{"opaque object", v14, get(opaque, wrapSpec(kek, 0, 0)), okmip.ResultReasonIllegalOperation},
		{"template", v12, get(tmpl, wrapSpec(kek, 0, 0)), okmip.ResultReasonIllegalOperation},
		{"Key Wrap Type undefined", v14, &payloads.GetRequestPayload{UniqueIdentifier: dek, KeyWrapType: 9}, okmip.ResultReasonInvalidField},
		{"Not Wrapped with a specification", v14, &payloads.GetRequestPayload{UniqueIdentifier: dek, KeyWrapType: okmip.NotWrapped, KeyWrappingSpecification: wrapSpec(kek, 0, 0)}, okmip.ResultReasonInvalidField},
		{"As Registered with a specification", v14, &payloads.GetRequestPayload{UniqueIdentifier: dek, KeyWrapType: okmip.AsRegistered, KeyWrappingSpecification: wrapSpec(kek, 0, 0)}, okmip.ResultReasonInvalidField},
	} {
		t.Run(c.name, func(t *testing.T) { w.fails(c.v, c.req, c.reason) })
	}
	// An auditor may not Get, wrapped or not.
	aud := dialAs(t, env, "acme", "auditor", engine.RoleAuditor)
	aud.fails(v14, get(dek, wrapSpec(kek, 0, 0)), okmip.ResultReasonPermissionDenied)
	// Not Wrapped asks for a plain Get.
	g := ok[*payloads.GetResponsePayload](w, v14, &payloads.GetRequestPayload{UniqueIdentifier: dek, KeyWrapType: okmip.NotWrapped})
	if _, key := keyOf(t, g); !bytes.Equal(key, kwHex(t, kwData128)) {
		t.Fatal("Not Wrapped Get")
	}
}

// registerWrapped registers a wrapped AES-128 key block.
func registerWrappedReq(kek string, wrapped []byte, mode okmip.BlockCipherMode, enc okmip.EncodingOption, attrs ...okmip.Attribute) *payloads.RegisterRequestPayload {
	kwd := &okmip.KeyWrappingData{WrappingMethod: okmip.WrappingMethodEncrypt,
		EncryptionKeyInformation: &okmip.EncryptionKeyInformation{UniqueIdentifier: kek}, EncodingOption: enc}
	if mode != 0 {
		kwd.EncryptionKeyInformation.CryptographicParameters = &okmip.CryptographicParameters{BlockCipherMode: mode}
	}
	b := slices.Clone(wrapped)
	return &payloads.RegisterRequestPayload{
		ObjectType: okmip.ObjectTypeSymmetricKey, TemplateAttribute: okmip.TemplateAttribute{Attribute: attrs},
		Object: &okmip.SymmetricKey{KeyBlock: okmip.KeyBlock{KeyFormatType: okmip.KeyFormatTypeRaw,
			KeyValue: &okmip.KeyValue{Wrapped: &b}, CryptographicAlgorithm: okmip.CryptographicAlgorithmAES, CryptographicLength: 128,
			KeyWrappingData: kwd}},
	}
}

func TestRegisterWrappedUnwraps(t *testing.T) {
	env := startKMS(t, nil)
	w := dialAdmin(t, env)
	kek := w.kwKEK(kwHex(t, kwKEK128), okmip.CryptographicUsageWrapKey|okmip.CryptographicUsageUnwrapKey)
	name := uniqueName(t)
	req := registerWrappedReq(kek, kwHex(t, kwWrapped), okmip.BlockCipherModeNISTKeyWrap, okmip.EncodingOptionNoEncoding,
		nameAttr(name), usageAttr(okmip.CryptographicUsageEncrypt|okmip.CryptographicUsageDecrypt), activeNow())
	id := ok[*payloads.RegisterResponsePayload](w, v14, req).UniqueIdentifier

	g := ok[*payloads.GetResponsePayload](w, v14, &payloads.GetRequestPayload{UniqueIdentifier: id})
	if _, key := keyOf(t, g); !bytes.Equal(key, kwHex(t, kwData128)) {
		t.Fatalf("unwrapped key %x", key)
	}
	// The Digest is that of the plaintext key, as for any registered key.
	ga := ok[*payloads.GetAttributesResponsePayload](w, v14, &payloads.GetAttributesRequestPayload{UniqueIdentifier: id, AttributeName: []okmip.AttributeName{"Digest"}})
	sum := sha256.Sum256(kwHex(t, kwData128))
	if len(ga.Attribute) != 1 || !bytes.Equal(ga.Attribute[0].AttributeValue.(okmip.Digest).DigestValue, sum[:]) {
		t.Fatalf("Digest %#v", ga.Attribute)
	}
	// The key works.
	enc := ok[*payloads.EncryptResponsePayload](w, v14, &payloads.EncryptRequestPayload{UniqueIdentifier: id, Data: []byte("data")})
	if len(enc.Data) != 4 {
		t.Fatalf("Encrypt %#v", enc)
	}
	// As Registered returns the key block exactly as it was sent.
	g = ok[*payloads.GetResponsePayload](w, v14, &payloads.GetRequestPayload{UniqueIdentifier: id, KeyWrapType: okmip.AsRegistered})
	if got, want := ttlv.MarshalTTLV(g.Object), ttlv.MarshalTTLV(req.Object); !bytes.Equal(got, want) {
		t.Fatalf("As Registered:\n got %x\nwant %x", got, want)
	}
	w.fails(v14, &payloads.GetRequestPayload{UniqueIdentifier: id, KeyWrapType: okmip.AsRegistered, KeyFormatType: okmip.KeyFormatTypeTransparentSymmetricKey},
		okmip.ResultReasonKeyFormatTypeNotSupported)
	// A key registered in the clear is its own As Registered form.
	plain := w.kwRegister(kwHex(t, kwData128))
	g = ok[*payloads.GetResponsePayload](w, v14, &payloads.GetRequestPayload{UniqueIdentifier: plain, KeyWrapType: okmip.AsRegistered})
	if _, key := keyOf(t, g); !bytes.Equal(key, kwHex(t, kwData128)) {
		t.Fatal("As Registered of a plain key")
	}

	// RFC 5649 (padding), and the TTLV-encoded form this server exports,
	// whose wrapped attributes join the object's.
	kwp := ok[*payloads.RegisterResponsePayload](w, v14, registerWrappedReq(kek, kwHex(t, "2cef0c9e30de26016c230cb78bc60d51b1fe083ba0c79cd5"),
		okmip.BlockCipherModeAESKeyWrapPadding, okmip.EncodingOptionNoEncoding)).UniqueIdentifier
	if _, key := keyOf(t, ok[*payloads.GetResponsePayload](w, v14, &payloads.GetRequestPayload{UniqueIdentifier: kwp})); !bytes.Equal(key, kwHex(t, kwData128)) {
		t.Fatal("AES Key Wrap with Padding registration")
	}
	ttlvWrapped := kwHex(t, "0dc0f8cb416e7b4422d85805d3dd80e49c6c75f763d1be99748de568e4eecdc05b94b1c1946fd3def14cfe184daada0daf07c93e038ceb9f501bdd8a82c7d6b33152dbf9d415924b9f13f6cb75ff880ab09dc862e473f74bdaf9398ec7695d41")
	withAttrs := ok[*payloads.RegisterResponsePayload](w, v14, registerWrappedReq(kek, ttlvWrapped, okmip.BlockCipherModeNISTKeyWrap, 0)).UniqueIdentifier
	if _, key := keyOf(t, ok[*payloads.GetResponsePayload](w, v14, &payloads.GetRequestPayload{UniqueIdentifier: withAttrs})); !bytes.Equal(key, kwHex(t, kwData128)) {
		t.Fatal("TTLV-encoded registration")
	}
	ga = ok[*payloads.GetAttributesResponsePayload](w, v14, &payloads.GetAttributesRequestPayload{UniqueIdentifier: withAttrs, AttributeName: []okmip.AttributeName{"Cryptographic Usage Mask"}})
	if len(ga.Attribute) != 1 || ga.Attribute[0].AttributeValue != okmip.CryptographicUsageEncrypt|okmip.CryptographicUsageDecrypt {
		t.Fatalf("wrapped attribute not applied: %#v", ga.Attribute)
	}
}

func TestRegisterWrappedRefusals(t *testing.T) {
	env := startKMS(t, nil)
	w := dialAdmin(t, env)
	kek := w.kwKEK(kwHex(t, kwKEK128), okmip.CryptographicUsageWrapKey|okmip.CryptographicUsageUnwrapKey)
	wrongKEK := w.kwKEK(kwHex(t, kwData128), okmip.CryptographicUsageUnwrapKey)
	compromised := w.kwKEK(kwHex(t, kwKEK128), okmip.CryptographicUsageUnwrapKey)
	ok[*payloads.RevokeResponsePayload](w, v14, &payloads.RevokeRequestPayload{UniqueIdentifier: compromised,
		RevocationReason: okmip.RevocationReason{RevocationReasonCode: okmip.RevocationReasonCodeKeyCompromise}})
	tampered := kwHex(t, kwWrapped)
	tampered[5] ^= 1
	name := uniqueName(t)
	ivd := registerWrappedReq(kek, kwHex(t, kwWrapped), okmip.BlockCipherModeNISTKeyWrap, okmip.EncodingOptionNoEncoding)
	ivd.Object.(*okmip.SymmetricKey).KeyBlock.KeyWrappingData.IVCounterNonce = []byte("0123456789ab")
	macd := registerWrappedReq(kek, kwHex(t, kwWrapped), okmip.BlockCipherModeNISTKeyWrap, okmip.EncodingOptionNoEncoding)
	macd.Object.(*okmip.SymmetricKey).KeyBlock.KeyWrappingData.WrappingMethod = okmip.WrappingMethodMACSign
	for _, c := range []struct {
		name   string
		req    *payloads.RegisterRequestPayload
		reason okmip.ResultReason
	}{
		{"bad integrity", registerWrappedReq(kek, tampered, okmip.BlockCipherModeNISTKeyWrap, okmip.EncodingOptionNoEncoding, nameAttr(name)), okmip.ResultReasonCryptographicFailure},
		{"wrong key", registerWrappedReq(wrongKEK, kwHex(t, kwWrapped), okmip.BlockCipherModeNISTKeyWrap, okmip.EncodingOptionNoEncoding, nameAttr(name)), okmip.ResultReasonCryptographicFailure},
		{"wrong mode", registerWrappedReq(kek, kwHex(t, kwWrapped), okmip.BlockCipherModeAESKeyWrapPadding, okmip.EncodingOptionNoEncoding, nameAttr(name)), okmip.ResultReasonCryptographicFailure},
		{"truncated", registerWrappedReq(kek, kwHex(t, kwWrapped)[:16], okmip.BlockCipherModeNISTKeyWrap, okmip.EncodingOptionNoEncoding, nameAttr(name)), okmip.ResultReasonCryptographicFailure},
		{"raw key declared TTLV", registerWrappedReq(kek, kwHex(t, kwWrapped), okmip.BlockCipherModeNISTKeyWrap, okmip.EncodingOptionTTLVEncoding, nameAttr(name)), okmip.ResultReasonEncodingOptionError},
		{"compromised KEK", registerWrappedReq(compromised, kwHex(t, kwWrapped), okmip.BlockCipherModeNISTKeyWrap, okmip.EncodingOptionNoEncoding, nameAttr(name)), okmip.ResultReasonPermissionDenied},
		{"KEK not found", registerWrappedReq("no-such-key", kwHex(t, kwWrapped), okmip.BlockCipherModeNISTKeyWrap, okmip.EncodingOptionNoEncoding, nameAttr(name)), okmip.ResultReasonItemNotFound},
		{"GCM", registerWrappedReq(kek, kwHex(t, kwWrapped), okmip.BlockCipherModeGCM, okmip.EncodingOptionNoEncoding, nameAttr(name)), okmip.ResultReasonFeatureNotSupported},
		{"IV", ivd, okmip.ResultReasonInvalidField},
		{"MAC/sign", macd, okmip.ResultReasonFeatureNotSupported},
		{"no Key Value", func() *payloads.RegisterRequestPayload {
			r := registerWrappedReq(kek, nil, 0, 0)
			r.Object.(*okmip.SymmetricKey).KeyBlock.KeyValue = nil
			return r
		}(), okmip.ResultReasonMissingData},
	} {
		t.Run(c.name, func(t *testing.T) { w.fails(v14, c.req, c.reason) })
	}
	if ids := w.locate(nameAttr(name)); len(ids) != 0 {
		t.Fatalf("refused registrations left objects: %v", ids)
	}
	aud := dialAs(t, env, "acme", "auditor", engine.RoleAuditor)
	aud.fails(v14, registerWrappedReq(kek, kwHex(t, kwWrapped), okmip.BlockCipherModeNISTKeyWrap, okmip.EncodingOptionNoEncoding), okmip.ResultReasonPermissionDenied)
}

// A key wrapped under a key that may wrap but not unwrap (TC-WRAP-1-14):
// the server keeps it as registered and never unwraps it.
func TestRegisterWrappedWithoutUnwrapPermission(t *testing.T) {
	env := startKMS(t, nil)
	w := dialAdmin(t, env)
	kek := w.kwKEK(kwHex(t, kwKEK128), okmip.CryptographicUsageWrapKey)
	// The Key Material structure form of TC-WRAP-1-14.
	b := kwHex(t, kwWrapped)
	obj := &okmip.SymmetricKey{KeyBlock: okmip.KeyBlock{KeyFormatType: okmip.KeyFormatTypeRaw,
		KeyValue:               &okmip.KeyValue{Plain: &okmip.PlainKeyValue{KeyMaterial: okmip.KeyMaterial{Bytes: &b}}},
		CryptographicAlgorithm: okmip.CryptographicAlgorithmAES, CryptographicLength: 128,
		KeyWrappingData: &okmip.KeyWrappingData{WrappingMethod: okmip.WrappingMethodEncrypt,
			EncryptionKeyInformation: &okmip.EncryptionKeyInformation{UniqueIdentifier: kek, CryptographicParameters: &okmip.CryptographicParameters{BlockCipherMode: okmip.BlockCipherModeNISTKeyWrap}},
			EncodingOption:           okmip.EncodingOptionNoEncoding}}}
	id := ok[*payloads.RegisterResponsePayload](w, v14, &payloads.RegisterRequestPayload{ObjectType: okmip.ObjectTypeSymmetricKey, Object: obj,
		TemplateAttribute: okmip.TemplateAttribute{Attribute: []okmip.Attribute{usageAttr(okmip.CryptographicUsageEncrypt | okmip.CryptographicUsageDecrypt), activeNow()}}}).UniqueIdentifier
	g := ok[*payloads.GetResponsePayload](w, v14, &payloads.GetRequestPayload{UniqueIdentifier: id, KeyFormatType: okmip.KeyFormatTypeRaw, KeyWrapType: okmip.AsRegistered})
	if got, want := ttlv.MarshalTTLV(g.Object), ttlv.MarshalTTLV(obj); !bytes.Equal(got, want) {
		t.Fatalf("As Registered:\n got %x\nwant %x", got, want)
	}
	// Nothing may use or reveal the key.
	bi := w.fails(v14, &payloads.GetRequestPayload{UniqueIdentifier: id}, okmip.ResultReasonPermissionDenied)
	if !strings.Contains(bi.ResultMessage, "As Registered") {
		t.Fatalf("message %q", bi.ResultMessage)
	}
	w.fails(v14, &payloads.EncryptRequestPayload{UniqueIdentifier: id, Data: []byte("x")}, okmip.ResultReasonPermissionDenied)
	kek2 := w.kwKEK(kwHex(t, kwData128), okmip.CryptographicUsageWrapKey)
	w.fails(v14, &payloads.GetRequestPayload{UniqueIdentifier: id, KeyWrappingSpecification: wrapSpec(kek2, 0, 0)}, okmip.ResultReasonPermissionDenied)
	// Its Digest is that of the wrapped bytes, not of a key it never saw.
	ga := ok[*payloads.GetAttributesResponsePayload](w, v14, &payloads.GetAttributesRequestPayload{UniqueIdentifier: id, AttributeName: []okmip.AttributeName{"Digest"}})
	sum := sha256.Sum256(kwHex(t, kwWrapped))
	if len(ga.Attribute) != 1 || !bytes.Equal(ga.Attribute[0].AttributeValue.(okmip.Digest).DigestValue, sum[:]) {
		t.Fatalf("Digest %#v", ga.Attribute)
	}
	// Wrapped bytes too short for the declared key are refused.
	w.fails(v14, registerWrappedReq(kek, kwHex(t, kwWrapped)[:16], okmip.BlockCipherModeNISTKeyWrap, okmip.EncodingOptionNoEncoding), okmip.ResultReasonInvalidField)
	// Re-keying it gives a normal key.
	nk := ok[*payloads.RekeyResponsePayload](w, v14, &payloads.RekeyRequestPayload{UniqueIdentifier: id}).UniqueIdentifier
	ok[*payloads.EncryptResponsePayload](w, v14, &payloads.EncryptRequestPayload{UniqueIdentifier: nk, Data: []byte("x")})
}

// RSA-OAEP: wrap under a public key, unwrap locally and on Register
// (through the public key's Private Key Link).
func TestKeyWrapRSAOAEP(t *testing.T) {
	env := startKMS(t, nil)
	w := dialAdmin(t, env)
	priv, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	pkcs8, _ := x509.MarshalPKCS8PrivateKey(priv)
	spki, _ := x509.MarshalPKIXPublicKey(&priv.PublicKey)
	rsaAttrs := func(mask okmip.CryptographicUsageMask) okmip.TemplateAttribute {
		return okmip.TemplateAttribute{Attribute: []okmip.Attribute{usageAttr(mask), activeNow()}}
	}
	privID := ok[*payloads.RegisterResponsePayload](w, v14, &payloads.RegisterRequestPayload{ObjectType: okmip.ObjectTypePrivateKey,
		TemplateAttribute: rsaAttrs(okmip.CryptographicUsageUnwrapKey),
		Object: &okmip.PrivateKey{KeyBlock: okmip.KeyBlock{KeyFormatType: okmip.KeyFormatTypePKCS_8, CryptographicAlgorithm: okmip.CryptographicAlgorithmRSA, CryptographicLength: 2048,
			KeyValue: &okmip.KeyValue{Plain: &okmip.PlainKeyValue{KeyMaterial: okmip.KeyMaterial{Bytes: &pkcs8}}}}}}).UniqueIdentifier
	pubID := ok[*payloads.RegisterResponsePayload](w, v14, &payloads.RegisterRequestPayload{ObjectType: okmip.ObjectTypePublicKey,
		TemplateAttribute: rsaAttrs(okmip.CryptographicUsageWrapKey),
		Object: &okmip.PublicKey{KeyBlock: okmip.KeyBlock{KeyFormatType: okmip.KeyFormatTypeX_509, CryptographicAlgorithm: okmip.CryptographicAlgorithmRSA, CryptographicLength: 2048,
			KeyValue: &okmip.KeyValue{Plain: &okmip.PlainKeyValue{KeyMaterial: okmip.KeyMaterial{Bytes: &spki}}}}}}).UniqueIdentifier
	dek := w.kwRegister(kwHex(t, kwData128), usageAttr(okmip.CryptographicUsageEncrypt|okmip.CryptographicUsageDecrypt))

	oaep := &okmip.CryptographicParameters{PaddingMethod: okmip.PaddingMethodOAEP, HashingAlgorithm: okmip.HashingAlgorithmSHA_256}
	spec := wrapSpec(pubID, 0, okmip.EncodingOptionNoEncoding)
	spec.EncryptionKeyInformation.CryptographicParameters = oaep
	kb := wrappedBlock(t, ok[*payloads.GetResponsePayload](w, v14, &payloads.GetRequestPayload{UniqueIdentifier: dek, KeyWrappingSpecification: spec}))
	wrapped := *kb.KeyValue.Wrapped
	if len(wrapped) != 256 {
		t.Fatalf("RSA-OAEP wrapped key of %d bytes", len(wrapped))
	}
	// KMIP's default Mask Generator Hashing Algorithm is SHA-1.
	pt, err := priv.Decrypt(nil, wrapped, &rsa.OAEPOptions{Hash: crypto.SHA256, MGFHash: crypto.SHA1})
	if err != nil || !bytes.Equal(pt, kwHex(t, kwData128)) {
		t.Fatalf("local unwrap: %x, %v", pt, err)
	}
	// Defaults: OAEP with SHA-1, named in the response.
	kb = wrappedBlock(t, ok[*payloads.GetResponsePayload](w, v14, &payloads.GetRequestPayload{UniqueIdentifier: dek, KeyWrappingSpecification: wrapSpec(pubID, 0, okmip.EncodingOptionNoEncoding)}))
	if p := kb.KeyWrappingData.EncryptionKeyInformation.CryptographicParameters; p == nil || p.PaddingMethod != okmip.PaddingMethodOAEP || p.HashingAlgorithm != okmip.HashingAlgorithmSHA_1 {
		t.Fatalf("resolved parameters %#v", p)
	}
	// Refusals: PKCS#1 v1.5, the private key to wrap, a public key
	// without a linked private key to unwrap.
	bad := wrapSpec(pubID, 0, okmip.EncodingOptionNoEncoding)
	bad.EncryptionKeyInformation.CryptographicParameters = &okmip.CryptographicParameters{PaddingMethod: okmip.PaddingMethodPKCS1V1_5}
	w.fails(v14, &payloads.GetRequestPayload{UniqueIdentifier: dek, KeyWrappingSpecification: bad}, okmip.ResultReasonFeatureNotSupported)
	w.fails(v14, &payloads.GetRequestPayload{UniqueIdentifier: dek, KeyWrappingSpecification: wrapSpec(privID, 0, 0)}, okmip.ResultReasonIllegalOperation)
	reg := func(kek string) *payloads.RegisterRequestPayload {
		r := registerWrappedReq(kek, wrapped, 0, okmip.EncodingOptionNoEncoding)
		r.Object.(*okmip.SymmetricKey).KeyBlock.KeyWrappingData.EncryptionKeyInformation.CryptographicParameters = oaep
		return r
	}
	w.fails(v14, reg(pubID), okmip.ResultReasonIllegalOperation)

	// Named by its private key, or by the public key once linked.
	for _, kek := range []string{privID, pubID} {
		if kek == pubID {
			ok[*payloads.AddAttributeResponsePayload](w, v14, &payloads.AddAttributeRequestPayload{UniqueIdentifier: pubID,
				Attribute: okmip.Attribute{AttributeName: okmip.AttributeNameLink, AttributeValue: okmip.Link{LinkType: okmip.LinkTypePrivateKeyLink, LinkedObjectIdentifier: privID}}})
		}
		id := ok[*payloads.RegisterResponsePayload](w, v14, reg(kek)).UniqueIdentifier
		if _, key := keyOf(t, ok[*payloads.GetResponsePayload](w, v14, &payloads.GetRequestPayload{UniqueIdentifier: id})); !bytes.Equal(key, kwHex(t, kwData128)) {
			t.Fatalf("RSA-OAEP registration via %s", kek)
		}
	}
	tampered := slices.Clone(wrapped)
	tampered[10] ^= 1
	r := reg(privID)
	*r.Object.(*okmip.SymmetricKey).KeyBlock.KeyValue.Wrapped = tampered
	w.fails(v14, r, okmip.ResultReasonCryptographicFailure)
}
