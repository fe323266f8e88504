package kmip_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"math/big"
	"testing"
	"time"

	"github.com/minikms/minikms/engine"
	okmip "github.com/ovh/kmip-go"
	"github.com/ovh/kmip-go/payloads"
)

// Client-side helpers of key pairs.

func kpUsage(m okmip.CryptographicUsageMask) okmip.Attribute {
	return okmip.Attribute{AttributeName: okmip.AttributeNameCryptographicUsageMask, AttributeValue: m}
}

func kpAlg(a okmip.CryptographicAlgorithm) okmip.Attribute {
	return okmip.Attribute{AttributeName: okmip.AttributeNameCryptographicAlgorithm, AttributeValue: a}
}

func kpLen(n int32) okmip.Attribute {
	return okmip.Attribute{AttributeName: okmip.AttributeNameCryptographicLength, AttributeValue: n}
}

func kpCurve(c okmip.RecommendedCurve) okmip.Attribute {
	return okmip.Attribute{AttributeName: okmip.AttributeNameCryptographicDomainParameters, AttributeValue: okmip.CryptographicDomainParameters{RecommendedCurve: c}}
}

func kpActivation(t time.Time) okmip.Attribute {
	return okmip.Attribute{AttributeName: okmip.AttributeNameActivationDate, AttributeValue: t}
}

// keyPairReq is a Create Key Pair request: common attributes, then the
// private and public key's own.
func kpReq(common []okmip.Attribute, priv, pub []okmip.Attribute) *payloads.CreateKeyPairRequestPayload {
	return &payloads.CreateKeyPairRequestPayload{
		CommonTemplateAttribute:     &okmip.TemplateAttribute{Attribute: common},
		PrivateKeyTemplateAttribute: &okmip.TemplateAttribute{Attribute: priv},
		PublicKeyTemplateAttribute:  &okmip.TemplateAttribute{Attribute: pub},
	}
}

// rsaKeyPairReq is an RSA-2048 signing pair, Active at once.
func kpRSAReq(extra ...okmip.Attribute) *payloads.CreateKeyPairRequestPayload {
	return kpReq(append([]okmip.Attribute{kpAlg(okmip.CryptographicAlgorithmRSA), kpLen(2048), kpActivation(time.Now().Add(-time.Minute).Truncate(time.Second))}, extra...),
		[]okmip.Attribute{kpUsage(okmip.CryptographicUsageSign | okmip.CryptographicUsageDecrypt)},
		[]okmip.Attribute{kpUsage(okmip.CryptographicUsageVerify | okmip.CryptographicUsageEncrypt)})
}

// ecKeyPairReq is an ECDSA signing pair on curve, Active at once.
func kpECReq(curve okmip.RecommendedCurve, extra ...okmip.Attribute) *payloads.CreateKeyPairRequestPayload {
	return kpReq(append([]okmip.Attribute{kpAlg(okmip.CryptographicAlgorithmECDSA), kpCurve(curve), kpActivation(time.Now().Add(-time.Minute).Truncate(time.Second))}, extra...),
		[]okmip.Attribute{kpUsage(okmip.CryptographicUsageSign)}, []okmip.Attribute{kpUsage(okmip.CryptographicUsageVerify)})
}

// createPair creates a key pair and returns the private and public ids.
func (w *wireConn) kpCreate(v okmip.ProtocolVersion, req *payloads.CreateKeyPairRequestPayload) (string, string) {
	w.t.Helper()
	r := ok[*payloads.CreateKeyPairResponsePayload](w, v, req)
	if r.PrivateKeyUniqueIdentifier == "" || r.PublicKeyUniqueIdentifier == "" || r.PrivateKeyUniqueIdentifier == r.PublicKeyUniqueIdentifier {
		w.t.Fatalf("Create Key Pair answered %q and %q", r.PrivateKeyUniqueIdentifier, r.PublicKeyUniqueIdentifier)
	}
	return r.PrivateKeyUniqueIdentifier, r.PublicKeyUniqueIdentifier
}

// getKey fetches an object in a key format (0: the default).
func (w *wireConn) kpGet(v okmip.ProtocolVersion, id string, f okmip.KeyFormatType) *payloads.GetResponsePayload {
	w.t.Helper()
	return ok[*payloads.GetResponsePayload](w, v, &payloads.GetRequestPayload{UniqueIdentifier: id, KeyFormatType: f})
}

// attrValues returns the values of one attribute of an object.
func (w *wireConn) kpAttr(id, name string) []any {
	w.t.Helper()
	r := ok[*payloads.GetAttributesResponsePayload](w, v14, &payloads.GetAttributesRequestPayload{UniqueIdentifier: id, AttributeName: []okmip.AttributeName{okmip.AttributeName(name)}})
	var out []any
	for _, a := range r.Attribute {
		out = append(out, a.AttributeValue)
	}
	return out
}

func TestCreateKeyPairRSA(t *testing.T) {
	env := startKMS(t, nil)
	w := dialAdmin(t, env)
	for _, v := range []okmip.ProtocolVersion{v10, v12, v14} {
		t.Run(v.String(), func(t *testing.T) {
			nm := uniqueName(t)
			priv, pub := w.kpCreate(v, kpReq(
				[]okmip.Attribute{kpAlg(okmip.CryptographicAlgorithmRSA), kpLen(2048), groupAttr("pairs")},
				[]okmip.Attribute{nameAttr(nm + "-priv"), kpUsage(okmip.CryptographicUsageSign)},
				[]okmip.Attribute{nameAttr(nm + "-pub"), kpUsage(okmip.CryptographicUsageVerify)}))
			if got := w.kpAttr(priv, "Link"); len(got) != 1 || got[0] != (okmip.Link{LinkType: okmip.LinkTypePublicKeyLink, LinkedObjectIdentifier: pub}) {
				t.Fatalf("private key links %v", got)
			}
			if got := w.kpAttr(pub, "Link"); len(got) != 1 || got[0] != (okmip.Link{LinkType: okmip.LinkTypePrivateKeyLink, LinkedObjectIdentifier: priv}) {
				t.Fatalf("public key links %v", got)
			}
			if got := w.kpAttr(priv, "Cryptographic Usage Mask"); len(got) != 1 || got[0] != okmip.CryptographicUsageSign {
				t.Fatalf("private usage mask %v", got)
			}
			if got := w.kpAttr(pub, "State"); len(got) != 1 || got[0] != okmip.StatePreActive {
				t.Fatalf("public state %v", got)
			}
			if got := w.locate(nameAttr(nm + "-pub")); len(got) != 1 || got[0] != pub {
				t.Fatalf("Locate by the public key's name: %v", got)
			}
			if got := w.locate(groupAttr("pairs"), okmip.Attribute{AttributeName: okmip.AttributeNameObjectType, AttributeValue: okmip.ObjectTypePrivateKey}); len(got) == 0 {
				t.Fatal("the Common group is on the private key")
			}

			// Default formats: PKCS#1 for both halves of an RSA pair.
			gp := w.kpGet(v, priv, 0)
			if gp.ObjectType != okmip.ObjectTypePrivateKey || gp.UniqueIdentifier != priv {
				t.Fatalf("Get answered %v %s", gp.ObjectType, gp.UniqueIdentifier)
			}
			kb := gp.Object.(*okmip.PrivateKey).KeyBlock
			if kb.KeyFormatType != okmip.KeyFormatTypePKCS_1 || kb.CryptographicAlgorithm != okmip.CryptographicAlgorithmRSA || kb.CryptographicLength != 2048 {
				t.Fatalf("private key block %v %v %d", kb.KeyFormatType, kb.CryptographicAlgorithm, kb.CryptographicLength)
			}
			k, err := x509.ParsePKCS1PrivateKey(*kb.KeyValue.Plain.KeyMaterial.Bytes)
			if err != nil {
				t.Fatal(err)
			}
			gu := w.kpGet(v, pub, 0)
			ub := gu.Object.(*okmip.PublicKey).KeyBlock
			if ub.KeyFormatType != okmip.KeyFormatTypePKCS_1 {
				t.Fatalf("public key served as %v", ub.KeyFormatType)
			}
			u, err := x509.ParsePKCS1PublicKey(*ub.KeyValue.Plain.KeyMaterial.Bytes)
			if err != nil {
				t.Fatal(err)
			}
			if !k.PublicKey.Equal(u) {
				t.Fatal("the public key is not the private key's half")
			}
			kpRSAFormats(t, w, v, priv, pub, k)
		})
	}
}

// checkRSAFormats asks for every format of an RSA pair and checks each
// carries the same key.
func kpRSAFormats(t *testing.T, w *wireConn, v okmip.ProtocolVersion, priv, pub string, k *rsa.PrivateKey) {
	t.Helper()
	p8 := w.kpGet(v, priv, okmip.KeyFormatTypePKCS_8).Object.(*okmip.PrivateKey).KeyBlock
	pk, err := x509.ParsePKCS8PrivateKey(*p8.KeyValue.Plain.KeyMaterial.Bytes)
	if err != nil || !k.Equal(pk) {
		t.Fatalf("PKCS#8: %v", err)
	}
	tr := w.kpGet(v, priv, okmip.KeyFormatTypeTransparentRSAPrivateKey).Object.(*okmip.PrivateKey).KeyBlock.KeyValue.Plain.KeyMaterial.TransparentRSAPrivateKey
	if tr == nil || tr.Modulus.Cmp(k.N) != 0 || tr.PrivateExponent.Cmp(k.D) != 0 || tr.PublicExponent.Cmp(big.NewInt(int64(k.E))) != 0 {
		t.Fatal("Transparent RSA Private Key differs")
	}
	x := w.kpGet(v, pub, okmip.KeyFormatTypeX_509).Object.(*okmip.PublicKey).KeyBlock
	xk, err := x509.ParsePKIXPublicKey(*x.KeyValue.Plain.KeyMaterial.Bytes)
	if err != nil || !k.PublicKey.Equal(xk) {
		t.Fatalf("X.509: %v", err)
	}
	tu := w.kpGet(v, pub, okmip.KeyFormatTypeTransparentRSAPublicKey).Object.(*okmip.PublicKey).KeyBlock.KeyValue.Plain.KeyMaterial.TransparentRSAPublicKey
	if tu == nil || tu.Modulus.Cmp(k.N) != 0 {
		t.Fatal("Transparent RSA Public Key differs")
	}
	for _, c := range []struct {
		id string
		f  okmip.KeyFormatType
	}{{priv, okmip.KeyFormatTypeX_509}, {priv, okmip.KeyFormatTypeRaw}, {priv, okmip.KeyFormatTypeECPrivateKey}, {priv, okmip.KeyFormatTypeTransparentECDSAPrivateKey},
		{pub, okmip.KeyFormatTypePKCS_8}, {pub, okmip.KeyFormatTypeTransparentECPublicKey}, {pub, okmip.KeyFormatTypeTransparentDHPublicKey}} {
		w.fails(v, &payloads.GetRequestPayload{UniqueIdentifier: c.id, KeyFormatType: c.f}, okmip.ResultReasonKeyFormatTypeNotSupported)
	}
}

func TestCreateKeyPairEC(t *testing.T) {
	env := startKMS(t, nil)
	w := dialAdmin(t, env)
	for _, c := range []struct {
		curve okmip.RecommendedCurve
		std   elliptic.Curve
	}{{okmip.RecommendedCurveP_256, elliptic.P256()}, {okmip.RecommendedCurveP_384, elliptic.P384()}, {okmip.RecommendedCurveP_521, elliptic.P521()}} {
		t.Run(c.std.Params().Name, func(t *testing.T) {
			priv, pub := w.kpCreate(v14, kpECReq(c.curve))
			if got := w.kpAttr(priv, "Cryptographic Length"); len(got) != 1 || got[0] != int32(c.std.Params().BitSize) {
				t.Fatalf("length %v", got)
			}
			if got := w.kpAttr(pub, "Cryptographic Domain Parameters"); len(got) != 1 || got[0].(okmip.CryptographicDomainParameters).RecommendedCurve != c.curve {
				t.Fatalf("domain parameters %v", got)
			}
			// Default formats: PKCS#8 and X.509.
			kb := w.kpGet(v14, priv, 0).Object.(*okmip.PrivateKey).KeyBlock
			if kb.KeyFormatType != okmip.KeyFormatTypePKCS_8 || kb.CryptographicAlgorithm != okmip.CryptographicAlgorithmECDSA {
				t.Fatalf("private key block %v %v", kb.KeyFormatType, kb.CryptographicAlgorithm)
			}
			anyKey, err := x509.ParsePKCS8PrivateKey(*kb.KeyValue.Plain.KeyMaterial.Bytes)
			if err != nil {
				t.Fatal(err)
			}
			k := anyKey.(*ecdsa.PrivateKey)
			ub := w.kpGet(v14, pub, 0).Object.(*okmip.PublicKey).KeyBlock
			if ub.KeyFormatType != okmip.KeyFormatTypeX_509 {
				t.Fatalf("public key served as %v", ub.KeyFormatType)
			}
			u, err := x509.ParsePKIXPublicKey(*ub.KeyValue.Plain.KeyMaterial.Bytes)
			if err != nil || !k.PublicKey.Equal(u) {
				t.Fatalf("public key: %v", err)
			}
			sec1 := w.kpGet(v14, priv, okmip.KeyFormatTypeECPrivateKey).Object.(*okmip.PrivateKey).KeyBlock
			if k2, err := x509.ParseECPrivateKey(*sec1.KeyValue.Plain.KeyMaterial.Bytes); err != nil || !k.Equal(k2) {
				t.Fatalf("EC Private Key: %v", err)
			}
			tp := w.kpGet(v14, priv, okmip.KeyFormatTypeTransparentECPrivateKey).Object.(*okmip.PrivateKey).KeyBlock.KeyValue.Plain.KeyMaterial.TransparentECPrivateKey
			if tp == nil || tp.D.Cmp(k.D) != 0 || tp.RecommendedCurve != c.curve {
				t.Fatal("Transparent EC Private Key differs")
			}
			tu := w.kpGet(v14, pub, okmip.KeyFormatTypeTransparentECPublicKey).Object.(*okmip.PublicKey).KeyBlock.KeyValue.Plain.KeyMaterial.TransparentECPublicKey
			if tu == nil || tu.RecommendedCurve != c.curve || len(tu.QString) != 1+2*((c.std.Params().BitSize+7)/8) {
				t.Fatal("Transparent EC Public Key differs")
			}
			// KMIP 1.2 has only the ECDSA transparent forms.
			td := w.kpGet(v12, priv, okmip.KeyFormatTypeTransparentECDSAPrivateKey).Object.(*okmip.PrivateKey).KeyBlock.KeyValue.Plain.KeyMaterial.TransparentECDSAPrivateKey
			if td == nil || td.D.Cmp(k.D) != 0 {
				t.Fatal("Transparent ECDSA Private Key differs")
			}
			w.fails(v12, &payloads.GetRequestPayload{UniqueIdentifier: priv, KeyFormatType: okmip.KeyFormatTypeTransparentECPrivateKey}, okmip.ResultReasonKeyFormatTypeNotSupported)
			for _, f := range []okmip.KeyFormatType{okmip.KeyFormatTypePKCS_1, okmip.KeyFormatTypeTransparentRSAPrivateKey, okmip.KeyFormatTypeTransparentECDHPrivateKey} {
				w.fails(v14, &payloads.GetRequestPayload{UniqueIdentifier: priv, KeyFormatType: f}, okmip.ResultReasonKeyFormatTypeNotSupported)
			}
			w.fails(v14, &payloads.GetRequestPayload{UniqueIdentifier: pub, KeyFormatType: okmip.KeyFormatTypePKCS_1}, okmip.ResultReasonKeyFormatTypeNotSupported)
		})
	}
	t.Run("ECDH", func(t *testing.T) {
		priv, _ := w.kpCreate(v14, kpReq([]okmip.Attribute{kpAlg(okmip.CryptographicAlgorithmECDH), kpLen(384)}, nil, nil))
		if got := w.kpAttr(priv, "Cryptographic Usage Mask"); len(got) != 1 || got[0] != okmip.CryptographicUsageKeyAgreement {
			t.Fatalf("default usage mask of an ECDH key %v", got)
		}
	})
}

func TestCreateKeyPairPlaceholder(t *testing.T) {
	env := startKMS(t, nil)
	w := dialAdmin(t, env)
	resp, _ := w.do(newRequest(v14,
		kpReq([]okmip.Attribute{kpAlg(okmip.CryptographicAlgorithmECDSA), kpLen(256)}, []okmip.Attribute{kpUsage(okmip.CryptographicUsageSign)}, nil),
		&payloads.ActivateRequestPayload{},
		&payloads.GetAttributesRequestPayload{AttributeName: []okmip.AttributeName{"Object Type", "State"}}))
	for _, bi := range resp.BatchItem {
		wantSuccess(t, bi)
	}
	kp := resp.BatchItem[0].ResponsePayload.(*payloads.CreateKeyPairResponsePayload)
	if id := resp.BatchItem[1].ResponsePayload.(*payloads.ActivateResponsePayload).UniqueIdentifier; id != kp.PrivateKeyUniqueIdentifier {
		t.Fatalf("the ID Placeholder is %s, want the private key %s", id, kp.PrivateKeyUniqueIdentifier)
	}
	ga := resp.BatchItem[2].ResponsePayload.(*payloads.GetAttributesResponsePayload)
	if ga.Attribute[0].AttributeValue != okmip.ObjectTypePrivateKey || ga.Attribute[1].AttributeValue != okmip.StateActive {
		t.Fatalf("attributes %v", ga.Attribute)
	}
	if got := w.kpAttr(kp.PublicKeyUniqueIdentifier, "State"); got[0] != okmip.StatePreActive {
		t.Fatal("activating the private key activated the public key")
	}

	recs := auditRecords(t, env)
	found := false
	for _, r := range recs {
		if r.Action == "kmip.CreateKeyPair" && r.Status == "success" {
			found = r.Object == kp.PrivateKeyUniqueIdentifier && r.Details["public_key"] == kp.PublicKeyUniqueIdentifier
		}
	}
	if !found {
		t.Fatal("the audit record of Create Key Pair does not name both keys")
	}
}

func TestCreateKeyPairRefusals(t *testing.T) {
	env := startKMS(t, nil)
	w := dialAdmin(t, env)
	cases := []struct {
		name   string
		req    *payloads.CreateKeyPairRequestPayload
		reason okmip.ResultReason
	}{
		{"RSA 1024", kpReq([]okmip.Attribute{kpAlg(okmip.CryptographicAlgorithmRSA), kpLen(1024)}, nil, nil), okmip.ResultReasonFeatureNotSupported},
		{"RSA 1000", kpReq([]okmip.Attribute{kpAlg(okmip.CryptographicAlgorithmRSA), kpLen(1000)}, nil, nil), okmip.ResultReasonFeatureNotSupported},
		{"no algorithm", kpReq([]okmip.Attribute{kpLen(2048)}, nil, nil), okmip.ResultReasonMissingData},
		{"no attributes at all", &payloads.CreateKeyPairRequestPayload{}, okmip.ResultReasonMissingData},
		{"RSA without length", kpReq([]okmip.Attribute{kpAlg(okmip.CryptographicAlgorithmRSA)}, nil, nil), okmip.ResultReasonMissingData},
		{"AES", kpReq([]okmip.Attribute{kpAlg(okmip.CryptographicAlgorithmAES), kpLen(256)}, nil, nil), okmip.ResultReasonInvalidField},
		{"DSA", kpReq([]okmip.Attribute{kpAlg(okmip.CryptographicAlgorithmDSA), kpLen(2048)}, nil, nil), okmip.ResultReasonFeatureNotSupported},
		{"P-192", kpReq([]okmip.Attribute{kpAlg(okmip.CryptographicAlgorithmECDSA), kpCurve(okmip.RecommendedCurveP_192)}, nil, nil), okmip.ResultReasonFeatureNotSupported},
		{"Name in common", kpReq([]okmip.Attribute{kpAlg(okmip.CryptographicAlgorithmECDSA), kpLen(256), nameAttr("both")}, nil, nil), okmip.ResultReasonInvalidField},
		{"halves disagree", kpReq(nil, []okmip.Attribute{kpAlg(okmip.CryptographicAlgorithmECDSA), kpLen(256)}, []okmip.Attribute{kpAlg(okmip.CryptographicAlgorithmECDSA), kpLen(384)}), okmip.ResultReasonInvalidField},
		{"certificate attribute", kpReq([]okmip.Attribute{kpAlg(okmip.CryptographicAlgorithmECDSA), kpLen(256), {AttributeName: okmip.AttributeNameCertificateType, AttributeValue: okmip.CertificateTypeX_509}}, nil, nil), okmip.ResultReasonInvalidField},
		{"unknown template", &payloads.CreateKeyPairRequestPayload{CommonTemplateAttribute: &okmip.TemplateAttribute{Name: []okmip.Name{{NameValue: "no-such-template", NameType: okmip.NameTypeUninterpretedTextString}}}}, okmip.ResultReasonItemNotFound},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			bi := w.fails(v14, c.req, c.reason)
			if bi.ResultMessage == "" {
				t.Fatal("no reason given")
			}
		})
	}
	t.Run("the RSA refusal says why", func(t *testing.T) {
		bi := w.fails(v12, cases[0].req, okmip.ResultReasonFeatureNotSupported)
		if want := "RSA keys shorter than 2048 bits are not generated"; len(bi.ResultMessage) < len(want) || bi.ResultMessage[len("feature not supported: "):][:len(want)] != want {
			t.Fatalf("message %q", bi.ResultMessage)
		}
	})
	t.Run("auditor", func(t *testing.T) {
		a := dialAs(t, env, "acme", "aud", engine.RoleAuditor)
		a.fails(v14, kpECReq(okmip.RecommendedCurveP_256), okmip.ResultReasonPermissionDenied)
	})
	t.Run("a failed item leaves no placeholder", func(t *testing.T) {
		resp, _ := w.do(newRequest(v14, cases[0].req, &payloads.ActivateRequestPayload{}))
		wantFailure(t, resp.BatchItem[0], okmip.ResultReasonFeatureNotSupported)
		wantFailure(t, resp.BatchItem[1], okmip.ResultReasonOperationCanceledByRequester)
	})
}

func TestReKeyKeyPairWire(t *testing.T) {
	env := startKMS(t, nil)
	w := dialAdmin(t, env)
	nm := uniqueName(t)
	priv, pub := w.kpCreate(v12, kpReq(
		[]okmip.Attribute{kpAlg(okmip.CryptographicAlgorithmRSA), kpLen(2048)},
		[]okmip.Attribute{nameAttr(nm + "-priv"), kpUsage(okmip.CryptographicUsageSign)},
		[]okmip.Attribute{nameAttr(nm + "-pub"), kpUsage(okmip.CryptographicUsageVerify)}))
	old := w.kpGet(v12, priv, okmip.KeyFormatTypePKCS_1).Object.(*okmip.PrivateKey).KeyBlock

	// Re-key by the ID Placeholder, then Get the new private key by it.
	resp, _ := w.do(newRequest(v12,
		&payloads.LocateRequestPayload{Attribute: []okmip.Attribute{nameAttr(nm + "-priv")}},
		&payloads.RekeyKeyPairRequestPayload{},
		&payloads.GetRequestPayload{KeyFormatType: okmip.KeyFormatTypeTransparentRSAPrivateKey}))
	for _, bi := range resp.BatchItem {
		wantSuccess(t, bi)
	}
	rk := resp.BatchItem[1].ResponsePayload.(*payloads.RekeyKeyPairResponsePayload)
	if rk.PrivateKeyUniqueIdentifier == priv || rk.PublicKeyUniqueIdentifier == pub || rk.PrivateKeyUniqueIdentifier == rk.PublicKeyUniqueIdentifier {
		t.Fatalf("Re-key Key Pair answered %s %s", rk.PrivateKeyUniqueIdentifier, rk.PublicKeyUniqueIdentifier)
	}
	g := resp.BatchItem[2].ResponsePayload.(*payloads.GetResponsePayload)
	if g.UniqueIdentifier != rk.PrivateKeyUniqueIdentifier {
		t.Fatal("the ID Placeholder is not the new private key")
	}
	oldKey, _ := x509.ParsePKCS1PrivateKey(*old.KeyValue.Plain.KeyMaterial.Bytes)
	if g.Object.(*okmip.PrivateKey).KeyBlock.KeyValue.Plain.KeyMaterial.TransparentRSAPrivateKey.Modulus.Cmp(oldKey.N) == 0 {
		t.Fatal("the replacement has the old modulus")
	}
	if got := w.locate(nameAttr(nm + "-pub")); len(got) != 1 || got[0] != rk.PublicKeyUniqueIdentifier {
		t.Fatalf("the name now finds %v", got)
	}
	links := w.kpAttr(pub, "Link")
	if len(links) != 2 || links[1] != (okmip.Link{LinkType: okmip.LinkTypeReplacementObjectLink, LinkedObjectIdentifier: rk.PublicKeyUniqueIdentifier}) {
		t.Fatalf("old public key links %v", links)
	}
	links = w.kpAttr(rk.PrivateKeyUniqueIdentifier, "Link")
	if len(links) != 2 || links[1] != (okmip.Link{LinkType: okmip.LinkTypeReplacedObjectLink, LinkedObjectIdentifier: priv}) {
		t.Fatalf("new private key links %v", links)
	}

	t.Run("offset", func(t *testing.T) {
		off := 2 * time.Hour
		r := ok[*payloads.RekeyKeyPairResponsePayload](w, v14, &payloads.RekeyKeyPairRequestPayload{PrivateKeyUniqueIdentifier: rk.PrivateKeyUniqueIdentifier, Offset: &off})
		ad := w.kpAttr(r.PublicKeyUniqueIdentifier, "Activation Date")
		if len(ad) != 1 || ad[0].(time.Time).Before(time.Now().Add(off-time.Minute)) {
			t.Fatalf("activation %v", ad)
		}
		if st := w.kpAttr(r.PrivateKeyUniqueIdentifier, "State"); st[0] != okmip.StatePreActive {
			t.Fatalf("state %v", st)
		}
	})
	t.Run("refusals", func(t *testing.T) {
		w.fails(v14, &payloads.RekeyKeyPairRequestPayload{PrivateKeyUniqueIdentifier: pub}, okmip.ResultReasonIllegalOperation)
		w.fails(v14, &payloads.RekeyKeyPairRequestPayload{PrivateKeyUniqueIdentifier: w.createKey()}, okmip.ResultReasonIllegalOperation)
		w.fails(v14, &payloads.RekeyKeyPairRequestPayload{PrivateKeyUniqueIdentifier: "no-such-key"}, okmip.ResultReasonItemNotFound)
		w.fails(v14, &payloads.RekeyKeyPairRequestPayload{}, okmip.ResultReasonItemNotFound)
		off := time.Hour
		w.fails(v14, &payloads.RekeyKeyPairRequestPayload{PrivateKeyUniqueIdentifier: priv, Offset: &off,
			CommonTemplateAttribute: &okmip.TemplateAttribute{Attribute: []okmip.Attribute{kpActivation(time.Now().Truncate(time.Second))}}}, okmip.ResultReasonInvalidMessage)
		other := dialAs(t, env, "globex", "admin", engine.RoleAdmin)
		other.fails(v14, &payloads.RekeyKeyPairRequestPayload{PrivateKeyUniqueIdentifier: priv}, okmip.ResultReasonItemNotFound)
		app := dialAs(t, env, "acme", "app", engine.RoleApp)
		ok[*payloads.RekeyKeyPairResponsePayload](app, v14, &payloads.RekeyKeyPairRequestPayload{PrivateKeyUniqueIdentifier: priv})
		aud := dialAs(t, env, "acme", "aud", engine.RoleAuditor)
		aud.fails(v14, &payloads.RekeyKeyPairRequestPayload{PrivateKeyUniqueIdentifier: priv}, okmip.ResultReasonPermissionDenied)
	})
}
