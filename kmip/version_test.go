package kmip_test

import (
	"bytes"
	"slices"
	"testing"

	okmip "github.com/ovh/kmip-go"
	"github.com/ovh/kmip-go/payloads"
)

// TestAttributesNeverNewerThanTheClient: GetAttributes and
// GetAttributeList send an attribute only to clients whose version defines
// it.
func TestAttributesNeverNewerThanTheClient(t *testing.T) {
	env := startKMS(t, nil)
	w := dialAdmin(t, env)
	id := w.activeKey(nameAttr(uniqueName(t)),
		okmip.Attribute{AttributeName: okmip.AttributeNameDescription, AttributeValue: "described"})

	// since is the minor version of KMIP 1.x that defined the attribute.
	attrs := []struct {
		name  okmip.AttributeName
		since int
	}{
		{okmip.AttributeNameUniqueIdentifier, 0},
		{okmip.AttributeNameObjectType, 0},
		{okmip.AttributeNameState, 0},
		{okmip.AttributeNameName, 0},
		{okmip.AttributeNameCryptographicAlgorithm, 0},
		{okmip.AttributeNameCryptographicLength, 0},
		{okmip.AttributeNameCryptographicUsageMask, 0},
		{okmip.AttributeNameInitialDate, 0},
		{okmip.AttributeNameActivationDate, 0},
		{okmip.AttributeNameLastChangeDate, 0},
		{okmip.AttributeNameObjectGroup, 0},
		{okmip.AttributeNameDigest, 0},
		{okmip.AttributeNameFresh, 1},
		{okmip.AttributeNameOriginalCreationDate, 2},
		{okmip.AttributeNameKeyValuePresent, 2},
		{okmip.AttributeNameSensitive, 4},
		{okmip.AttributeNameAlwaysSensitive, 4},
		{okmip.AttributeNameExtractable, 4},
		{okmip.AttributeNameNeverExtractable, 4},
		{okmip.AttributeNameDescription, 4},
	}
	for _, v := range []okmip.ProtocolVersion{v10, v11, v12, v13, v14} {
		t.Run(v.String(), func(t *testing.T) {
			w.t = t
			_, rawGA := w.do(newRequest(v, &payloads.GetAttributesRequestPayload{UniqueIdentifier: id}))
			_, rawGAL := w.do(newRequest(v, &payloads.GetAttributeListRequestPayload{UniqueIdentifier: id}))
			// Attribute names travel as text strings: read them from the
			// wire, not through a codec that knows versions.
			gotGA := names(tagValues(t, rawGA, okmip.TagAttributeName))
			gotGAL := names(tagValues(t, rawGAL, okmip.TagAttributeName))
			for _, a := range attrs {
				want := v.Minor() >= a.since
				if slices.Contains(gotGA, string(a.name)) != want {
					t.Errorf("GetAttributes at %s: %q present=%v, want %v", v, a.name, !want, want)
				}
				if slices.Contains(gotGAL, string(a.name)) != want {
					t.Errorf("GetAttributeList at %s: %q present=%v, want %v", v, a.name, !want, want)
				}
			}
			for _, n := range append(gotGA, gotGAL...) {
				if since, known := attrSince[n]; known && since > v.Minor() {
					t.Errorf("%q (KMIP 1.%d) sent to a %s client", n, since, v)
				}
			}
			// Asked by name, a newer attribute is left out as if absent.
			_, raw := w.do(newRequest(v, &payloads.GetAttributesRequestPayload{UniqueIdentifier: id,
				AttributeName: []okmip.AttributeName{okmip.AttributeNameSensitive, okmip.AttributeNameObjectType}}))
			got := names(tagValues(t, raw, okmip.TagAttributeName))
			want := []string{"Object Type"}
			if v.Minor() >= 4 {
				want = []string{"Sensitive", "Object Type"}
			}
			if !slices.Equal(got, want) {
				t.Errorf("GetAttributes(Sensitive, Object Type) at %s returned %q, want %q", v, got, want)
			}
		})
	}
}

// attrSince is when every KMIP 1.x attribute was defined.
var attrSince = map[string]int{}

func init() {
	for since, names := range [][]string{
		1: {"Certificate Length", "X.509 Certificate Identifier", "X.509 Certificate Subject", "X.509 Certificate Issuer", "Digital Signature Algorithm", "Fresh"},
		2: {"Alternative Name", "Key Value Present", "Key Value Location", "Original Creation Date"},
		3: {"Random Number Generator"},
		4: {"PKCS#12 Friendly Name", "Description", "Comment", "Sensitive", "Always Sensitive", "Extractable", "Never Extractable"},
	} {
		for _, n := range names {
			attrSince[n] = since
		}
	}
}

func names(vals [][]byte) []string {
	out := make([]string, len(vals))
	for i, v := range vals {
		out[i] = string(v)
	}
	return out
}

func gcmParams() *okmip.CryptographicParameters {
	return &okmip.CryptographicParameters{BlockCipherMode: okmip.BlockCipherModeGCM}
}

// TestGCMTagByVersion: KMIP 1.4 has an Authenticated Encryption Tag field;
// before it, the tag travels appended to the data.
func TestGCMTagByVersion(t *testing.T) {
	env := startKMS(t, nil)
	w := dialAdmin(t, env)
	id := w.activeKey()
	plain := bytes.Repeat([]byte{0xA5}, 32)

	// 1.4: separate tag.
	_, raw := w.do(newRequest(v14, &payloads.EncryptRequestPayload{UniqueIdentifier: id, CryptographicParameters: gcmParams(), Data: plain}))
	ct14 := single(t, tagValues(t, raw, okmip.TagData), "Data")
	tag14 := single(t, tagValues(t, raw, okmip.TagAuthenticatedEncryptionTag), "Authenticated Encryption Tag")
	iv14 := single(t, tagValues(t, raw, okmip.TagIVCounterNonce), "IV/Counter/Nonce")
	if len(ct14) != 32 || len(tag14) != 16 || len(iv14) != 12 {
		t.Fatalf("1.4 Encrypt: %d bytes of data, %d of tag, %d of IV; want 32, 16, 12", len(ct14), len(tag14), len(iv14))
	}
	dec := ok[*payloads.DecryptResponsePayload](w, v14, &payloads.DecryptRequestPayload{UniqueIdentifier: id, CryptographicParameters: gcmParams(),
		Data: ct14, IVCounterNonce: iv14, AuthenticatedEncryptionTag: tag14})
	if !bytes.Equal(dec.Data, plain) {
		t.Fatal("1.4 round trip changed the data")
	}

	// 1.2: the tag is appended to Data; no tag field.
	_, raw = w.do(newRequest(v12, &payloads.EncryptRequestPayload{UniqueIdentifier: id, CryptographicParameters: gcmParams(), Data: plain}))
	ct12 := single(t, tagValues(t, raw, okmip.TagData), "Data")
	iv12 := single(t, tagValues(t, raw, okmip.TagIVCounterNonce), "IV/Counter/Nonce")
	if n := len(tagValues(t, raw, okmip.TagAuthenticatedEncryptionTag)); n != 0 {
		t.Fatalf("a 1.2 response carries %d Authenticated Encryption Tag fields", n)
	}
	if len(ct12) != 48 {
		t.Fatalf("1.2 Encrypt returned %d bytes of data, want 32 + 16 of tag", len(ct12))
	}
	for _, v := range []okmip.ProtocolVersion{v10, v11, v12, v13} {
		dec = ok[*payloads.DecryptResponsePayload](w, v, &payloads.DecryptRequestPayload{UniqueIdentifier: id, CryptographicParameters: gcmParams(),
			Data: ct12, IVCounterNonce: iv12})
		if !bytes.Equal(dec.Data, plain) {
			t.Fatalf("%s Decrypt of data||tag changed the data", v)
		}
	}
	// A 1.4 ciphertext decrypts at 1.2 as data||tag, and the other way.
	dec = ok[*payloads.DecryptResponsePayload](w, v12, &payloads.DecryptRequestPayload{UniqueIdentifier: id, CryptographicParameters: gcmParams(),
		Data: append(slices.Clone(ct14), tag14...), IVCounterNonce: iv14})
	if !bytes.Equal(dec.Data, plain) {
		t.Fatal("1.4 ciphertext did not decrypt at 1.2")
	}
	dec = ok[*payloads.DecryptResponsePayload](w, v14, &payloads.DecryptRequestPayload{UniqueIdentifier: id, CryptographicParameters: gcmParams(),
		Data: ct12[:32], IVCounterNonce: iv12, AuthenticatedEncryptionTag: ct12[32:]})
	if !bytes.Equal(dec.Data, plain) {
		t.Fatal("1.2 ciphertext did not decrypt at 1.4")
	}

	// A damaged tag fails authentication in both forms.
	bad := slices.Clone(ct12)
	bad[47] ^= 1
	w.fails(v12, &payloads.DecryptRequestPayload{UniqueIdentifier: id, CryptographicParameters: gcmParams(), Data: bad, IVCounterNonce: iv12},
		okmip.ResultReasonCryptographicFailure)
	w.fails(v14, &payloads.DecryptRequestPayload{UniqueIdentifier: id, CryptographicParameters: gcmParams(), Data: bad[:32], IVCounterNonce: iv12,
		AuthenticatedEncryptionTag: bad[32:]}, okmip.ResultReasonCryptographicFailure)
	// Data shorter than a tag at 1.2.
	w.fails(v12, &payloads.DecryptRequestPayload{UniqueIdentifier: id, CryptographicParameters: gcmParams(), Data: ct12[:8], IVCounterNonce: iv12},
		okmip.ResultReasonInvalidField)
}

func single(t *testing.T, vals [][]byte, what string) []byte {
	t.Helper()
	if len(vals) != 1 {
		t.Fatalf("%d %s fields in the response, want 1", len(vals), what)
	}
	return vals[0]
}

func TestLocatedItemsFrom13(t *testing.T) {
	env := startKMS(t, nil)
	w := dialAdmin(t, env)
	group := uniqueName(t)
	w.createKey(groupAttr(group))
	w.createKey(groupAttr(group))
	w.createKey(groupAttr(group))
	for _, v := range []okmip.ProtocolVersion{v10, v11, v12, v13, v14} {
		t.Run(v.String(), func(t *testing.T) {
			w.t = t
			resp, raw := w.do(newRequest(v, &payloads.LocateRequestPayload{MaximumItems: 2, Attribute: []okmip.Attribute{groupAttr(group)}}))
			wantSuccess(t, resp.BatchItem[0])
			if ids := tagValues(t, raw, okmip.TagUniqueIdentifier); len(ids) != 2 {
				t.Fatalf("%d identifiers, want Maximum Items = 2", len(ids))
			}
			li := tagValues(t, raw, okmip.TagLocatedItems)
			if v.Minor() < 3 {
				if len(li) != 0 {
					t.Fatalf("Located Items sent to a %s client", v)
				}
				return
			}
			if len(li) != 1 || !bytes.Equal(li[0], []byte{0, 0, 0, 3}) {
				t.Fatalf("Located Items %x, want one Integer 3", li)
			}
		})
	}
}

func TestDiscoverVersions(t *testing.T) {
	env := startKMS(t, nil)
	w := dialAdmin(t, env)
	v20 := okmip.ProtocolVersion{ProtocolVersionMajor: 2, ProtocolVersionMinor: 0}
	v09 := okmip.ProtocolVersion{ProtocolVersionMajor: 0, ProtocolVersionMinor: 9}
	v15 := okmip.ProtocolVersion{ProtocolVersionMajor: 1, ProtocolVersionMinor: 5}
	cases := []struct {
		name string
		ask  []okmip.ProtocolVersion
		want []okmip.ProtocolVersion
	}{
		{"empty list", nil, []okmip.ProtocolVersion{v14, v13, v12, v11, v10}},
		{"subset, in the server's order", []okmip.ProtocolVersion{v11, v13}, []okmip.ProtocolVersion{v13, v11}},
		{"one", []okmip.ProtocolVersion{v10}, []okmip.ProtocolVersion{v10}},
		{"unknown only", []okmip.ProtocolVersion{v20, v09, v15}, nil},
		{"mixed", []okmip.ProtocolVersion{v20, v12, v15}, []okmip.ProtocolVersion{v12}},
	}
	for _, c := range cases {
		for _, in := range []okmip.ProtocolVersion{v10, v14} {
			t.Run(c.name+" in "+in.String(), func(t *testing.T) {
				w.t = t
				resp, raw := w.do(newRequest(in, &payloads.DiscoverVersionsRequestPayload{ProtocolVersion: c.ask}))
				wantSuccess(t, resp.BatchItem[0])
				if resp.Header.ProtocolVersion != in {
					t.Fatalf("answered in %s, asked in %s", resp.Header.ProtocolVersion, in)
				}
				got := resp.BatchItem[0].ResponsePayload.(*payloads.DiscoverVersionsResponsePayload).ProtocolVersion
				if !slices.Equal(got, c.want) {
					t.Fatalf("versions %v, want %v", got, c.want)
				}
				// The header's version plus one per listed version.
				if n := len(tagValues(t, raw, okmip.TagProtocolVersion)); n != 1+len(c.want) {
					t.Fatalf("%d Protocol Version structures on the wire", n)
				}
			})
		}
	}
}
