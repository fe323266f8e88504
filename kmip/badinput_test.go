package kmip_test

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/minikms/minikms/engine"
	"github.com/minikms/minikms/kmip"
	okmip "github.com/ovh/kmip-go"
	"github.com/ovh/kmip-go/payloads"
	"github.com/ovh/kmip-go/ttlv"
)

// badFixture holds objects the bad-input cases refer to.
type badFixture struct {
	active, preActive, deactivated, destroyed, opaque string
	ct                                                *payloads.EncryptResponsePayload
}

// badCase is one row of the bad-input matrix. send builds the raw request;
// then exactly one of: closed (the server drops the connection, answering
// at most a whole-message Invalid Message), msg (a whole-message failure
// with that reason), items (one result per batch item: 0 is Success).
type badCase struct {
	name   string
	send   func(f *badFixture) []byte
	closed bool
	msg    okmip.ResultReason
	items  []okmip.ResultReason
}

func req(v okmip.ProtocolVersion, pls ...okmip.OperationPayload) []byte {
	return ttlv.MarshalTTLV(newRequest(v, pls...))
}

func fixed(b []byte) func(*badFixture) []byte { return func(*badFixture) []byte { return b } }

// one14 is a single-item v1.4 request with a raw payload.
func one14(op okmip.Operation, payload ...[]byte) []byte {
	return rawMessage(rawHeader(hdr(v14, 1)), rawItem(op, "1", tStruct(okmip.TagRequestPayload, payload...)))
}

// attrRaw is an Attribute structure with a raw value.
func attrRaw(name string, value []byte) []byte {
	return tStruct(okmip.TagAttribute, tText(okmip.TagAttributeName, name), value)
}

func createRaw(attrs ...[]byte) []byte {
	return one14(okmip.OperationCreate, tEnum(okmip.TagObjectType, uint32(okmip.ObjectTypeSymmetricKey)), tStruct(okmip.TagTemplateAttribute, attrs...))
}

var (
	algAES  = attrRaw("Cryptographic Algorithm", tEnum(okmip.TagAttributeValue, uint32(okmip.CryptographicAlgorithmAES)))
	len256  = attrRaw("Cryptographic Length", tInt(okmip.TagAttributeValue, 256))
	usageED = attrRaw("Cryptographic Usage Mask", tInt(okmip.TagAttributeValue, int32(okmip.CryptographicUsageEncrypt|okmip.CryptographicUsageDecrypt)))
)

func gcm() *okmip.CryptographicParameters {
	return &okmip.CryptographicParameters{BlockCipherMode: okmip.BlockCipherModeGCM}
}

// TestBadInputMatrix sends each malformed or refused request over a fresh
// connection of a live server: each gets its precise Result Reason or a
// clean close, never a panic, and the server then serves the next request
// (on the same connection when it answered, on a new one when it closed).
// goleak (TestMain) checks that nothing is left running.
func TestBadInputMatrix(t *testing.T) {
	const maxMsg = 64 << 10
	env := startKMS(t, func(c *kmip.Config) { c.MaxMessageSize = maxMsg; c.ReadTimeout = 2 * time.Second })
	admin := dialAdmin(t, env)
	f := &badFixture{active: admin.activeKey(), preActive: admin.createKey(), deactivated: admin.activeKey(), destroyed: admin.createKey()}
	ok[*payloads.RevokeResponsePayload](admin, v14, &payloads.RevokeRequestPayload{UniqueIdentifier: f.deactivated, RevocationReason: okmip.RevocationReason{RevocationReasonCode: okmip.RevocationReasonCodeCessationOfOperation}})
	ok[*payloads.DestroyResponsePayload](admin, v14, &payloads.DestroyRequestPayload{UniqueIdentifier: f.destroyed})
	f.opaque = ok[*payloads.RegisterResponsePayload](admin, v14, registerOpaque([]byte("opaque"))).UniqueIdentifier
	f.ct = ok[*payloads.EncryptResponsePayload](admin, v14, &payloads.EncryptRequestPayload{UniqueIdentifier: f.active, Data: []byte("attack at dawn"), CryptographicParameters: gcm()})
	admin.conn.Close()

	valid := validRequest()
	getItem := func(id string) []byte {
		return rawItem(okmip.OperationGet, id, tStruct(okmip.TagRequestPayload, tText(okmip.TagUniqueIdentifier, "no-such-object")))
	}
	longText := strings.Repeat("n", engine.MaxTextLength+1)
	cases := []badCase{
		// ---- framing ----
		{name: "empty message structure", send: fixed(rawMessage()), msg: okmip.ResultReasonInvalidMessage},
		{name: "truncated header (5 bytes, then half-close)", send: fixed(header8(okmip.TagRequestMessage, 0x01, 16)[:5]), closed: true},
		{name: "length larger than the body", send: fixed(append(header8(okmip.TagRequestMessage, 0x01, 64), make([]byte, 16)...)), closed: true},
		{name: "length smaller than the body", send: fixed(append(header8(okmip.TagRequestMessage, 0x01, uint32(len(valid)-8-16)), valid[8:len(valid)-16]...)), msg: okmip.ResultReasonInvalidMessage},
		{name: "negative length (0x80000000)", send: fixed(header8(okmip.TagRequestMessage, 0x01, 0x80000000)), closed: true},
		{name: "huge length (0xFFFFFFF8)", send: fixed(header8(okmip.TagRequestMessage, 0x01, 0xFFFFFFF8)), closed: true},
		{name: "length just above MaxMessageSize", send: fixed(header8(okmip.TagRequestMessage, 0x01, maxMsg)), closed: true},
		{name: "length not a multiple of 8", send: fixed(header8(okmip.TagRequestMessage, 0x01, 12)), closed: true},
		{name: "message is not a structure", send: fixed(tInt(okmip.TagRequestMessage, 1)), closed: true},
		{name: "response message sent as a request", send: fixed(header8(okmip.TagResponseMessage, 0x01, 0)), closed: true},
		{name: "unknown outer tag", send: fixed(tStruct(0x54FFFF, tInt(0x54FFFE, 1))), closed: true},
		{name: "inner item longer than its structure", send: fixed(rawMessage(tItemLen(okmip.TagRequestHeader, 0x01, 4096, nil))), msg: okmip.ResultReasonInvalidMessage},
		{name: "unknown item type 0x0E", send: fixed(rawMessage(rawHeader(hdr(v14, 1)), tItem(okmip.TagBatchItem, 0x0E, make([]byte, 8)))), msg: okmip.ResultReasonInvalidMessage},
		{name: "integer of length 2", send: fixed(rawMessage(tStruct(okmip.TagRequestHeader, tStruct(okmip.TagProtocolVersion, tItem(okmip.TagProtocolVersionMajor, 0x02, []byte{0, 1}))))), msg: okmip.ResultReasonInvalidMessage},
		{name: "nesting deeper than MaxDepth", send: fixed(rawMessage(rawHeader(hdr(v14, 1)), rawItem(okmip.OperationDiscoverVersions, "1", tStruct(okmip.TagRequestPayload), nested(kmip.MaxDepth+2)))), msg: okmip.ResultReasonInvalidMessage},
		{name: "more than MaxBatchItems items", send: fixed(manyItems(kmip.MaxBatchItems + 1)), msg: okmip.ResultReasonInvalidMessage},
		// ---- header ----
		{name: "no header", send: fixed(rawMessage(discoverItem("1"))), msg: okmip.ResultReasonInvalidMessage},
		{name: "no batch item", send: fixed(rawMessage(rawHeader(hdr(v14, 1)))), msg: okmip.ResultReasonInvalidMessage},
		{name: "batch count larger than the items", send: fixed(rawMessage(rawHeader(hdr(v14, 3)), discoverItem("1"))), msg: okmip.ResultReasonInvalidMessage},
		{name: "batch count zero", send: fixed(rawMessage(rawHeader(hdr(v14, 0)), discoverItem("1"))), msg: okmip.ResultReasonInvalidMessage},
		{name: "protocol version 2.0", send: fixed(rawMessage(rawHeader(hdr(okmip.ProtocolVersion{ProtocolVersionMajor: 2}, 1)), discoverItem("1"))), msg: okmip.ResultReasonInvalidMessage},
		{name: "protocol version 0.9", send: fixed(rawMessage(rawHeader(hdr(okmip.ProtocolVersion{ProtocolVersionMinor: 9}, 1)), discoverItem("1"))), msg: okmip.ResultReasonInvalidMessage},
		{name: "protocol version as text", send: fixed(rawMessage(tStruct(okmip.TagRequestHeader, tText(okmip.TagProtocolVersion, "1.4"), tInt(okmip.TagBatchCount, 1)), discoverItem("1"))), msg: okmip.ResultReasonInvalidMessage},
		{name: "batch count as text", send: fixed(rawMessage(tStruct(okmip.TagRequestHeader, rawHeader(hdr(v14, 1))[8:40], tText(okmip.TagBatchCount, "1")), discoverItem("1"))), msg: okmip.ResultReasonInvalidMessage},
		// ---- batch items ----
		{name: "unknown operation", send: fixed(rawMessage(rawHeader(hdr(v14, 1)), rawItem(okmip.Operation(0x7F), "1", tStruct(okmip.TagRequestPayload)))), items: []okmip.ResultReason{okmip.ResultReasonOperationNotSupported}},
		{name: "vendor operation 0x80000001", send: fixed(rawMessage(rawHeader(hdr(v14, 1)), rawItem(okmip.Operation(0x80000001), "1", tStruct(okmip.TagRequestPayload)))), items: []okmip.ResultReason{okmip.ResultReasonOperationNotSupported}},
		{name: "operation as an integer", send: fixed(rawMessage(rawHeader(hdr(v14, 1)), tStruct(okmip.TagBatchItem, tInt(okmip.TagOperation, int32(okmip.OperationGet)), tStruct(okmip.TagRequestPayload)))), msg: okmip.ResultReasonInvalidMessage},
		{name: "item without operation", send: fixed(rawMessage(rawHeader(hdr(v14, 1)), tStruct(okmip.TagBatchItem, tStruct(okmip.TagRequestPayload)))), msg: okmip.ResultReasonInvalidMessage},
		{name: "Get without payload", send: fixed(rawMessage(rawHeader(hdr(v14, 1)), rawItem(okmip.OperationGet, "1"))), items: []okmip.ResultReason{okmip.ResultReasonInvalidMessage}},
		{name: "critical unknown extension", send: fixed(rawMessage(rawHeader(hdr(v14, 1)), rawItem(okmip.OperationDiscoverVersions, "1", tStruct(okmip.TagRequestPayload),
			tStruct(okmip.TagMessageExtension, tText(okmip.TagVendorIdentification, "x"), tBool(okmip.TagCriticalityIndicator, true), tStruct(okmip.TagVendorExtension))))), items: []okmip.ResultReason{okmip.ResultReasonFeatureNotSupported}},
		{name: "bad item in the middle of a batch", send: fixed(rawMessage(rawHeader(hdr(v14, 3)), discoverItem("1"), getItem("2"), discoverItem("3"))),
			items: []okmip.ResultReason{0, okmip.ResultReasonItemNotFound, okmip.ResultReasonOperationCanceledByRequester}},
		{name: "bad item in the middle of a batch, Continue", send: fixed(rawMessage(rawHeader(okmip.RequestHeader{ProtocolVersion: v14, BatchCount: 3, BatchErrorContinuationOption: okmip.BatchErrorContinuationOptionContinue}), discoverItem("1"), getItem("2"), discoverItem("3"))),
			items: []okmip.ResultReason{0, okmip.ResultReasonItemNotFound, 0}},
		{name: "unknown operation in the middle of a batch", send: fixed(rawMessage(rawHeader(hdr(v14, 3)), discoverItem("1"), rawItem(okmip.Operation(0x7E), "2", tStruct(okmip.TagRequestPayload)), discoverItem("3"))),
			items: []okmip.ResultReason{0, okmip.ResultReasonOperationNotSupported, okmip.ResultReasonOperationCanceledByRequester}},
		// ---- payload fields ----
		{name: "Get: unique identifier as an integer", send: fixed(one14(okmip.OperationGet, tInt(okmip.TagUniqueIdentifier, 5))), items: []okmip.ResultReason{okmip.ResultReasonInvalidMessage}},
		// An identifier no object can have (not UTF-8) names no object.
		{name: "Get: invalid UTF-8 identifier", send: fixed(one14(okmip.OperationGet, tText(okmip.TagUniqueIdentifier, "\xff\xfe"))), items: []okmip.ResultReason{okmip.ResultReasonItemNotFound}},
		{name: "Get: unknown tag in the payload", send: fixed(one14(okmip.OperationGet, tText(okmip.TagUniqueIdentifier, "x"), tInt(0x54AAAA, 3))), items: []okmip.ResultReason{okmip.ResultReasonInvalidMessage}},
		{name: "Get: missing object", send: fixed(req(v14, &payloads.GetRequestPayload{UniqueIdentifier: "does-not-exist"})), items: []okmip.ResultReason{okmip.ResultReasonItemNotFound}},
		{name: "Get: empty id without placeholder", send: fixed(req(v14, &payloads.GetRequestPayload{})), items: []okmip.ResultReason{okmip.ResultReasonItemNotFound}},
		{name: "Create: object type missing", send: fixed(one14(okmip.OperationCreate, tStruct(okmip.TagTemplateAttribute, algAES, len256))), items: []okmip.ResultReason{okmip.ResultReasonInvalidMessage}},
		{name: "Create: invalid object type enumeration", send: fixed(one14(okmip.OperationCreate, tEnum(okmip.TagObjectType, 0x7777), tStruct(okmip.TagTemplateAttribute, algAES, len256))), items: []okmip.ResultReason{okmip.ResultReasonInvalidField}},
		{name: "Create: invalid algorithm enumeration", send: fixed(createRaw(attrRaw("Cryptographic Algorithm", tEnum(okmip.TagAttributeValue, 0x7777)), len256)), items: []okmip.ResultReason{okmip.ResultReasonInvalidField}},
		{name: "Create: algorithm missing", send: fixed(createRaw(len256)), items: []okmip.ResultReason{okmip.ResultReasonMissingData}},
		{name: "Create: AES length 100", send: fixed(createRaw(algAES, attrRaw("Cryptographic Length", tInt(okmip.TagAttributeValue, 100)))), items: []okmip.ResultReason{okmip.ResultReasonInvalidField}},
		{name: "Create: length as text", send: fixed(createRaw(algAES, attrRaw("Cryptographic Length", tText(okmip.TagAttributeValue, "256")))), items: []okmip.ResultReason{okmip.ResultReasonInvalidMessage}},
		{name: "Create: unknown attribute name", send: fixed(createRaw(algAES, len256, attrRaw("No Such Attribute", tInt(okmip.TagAttributeValue, 1)))), items: []okmip.ResultReason{okmip.ResultReasonInvalidField}},
		{name: "Create: read-only attribute", send: fixed(createRaw(algAES, len256, attrRaw("Unique Identifier", tText(okmip.TagAttributeValue, "mine")))), items: []okmip.ResultReason{okmip.ResultReasonInvalidField}},
		{name: "Create: name longer than MaxTextLength", send: fixed(req(v14, createAES(nameAttr(longText)))), items: []okmip.ResultReason{okmip.ResultReasonInvalidField}},
		{name: "Create: invalid UTF-8 name", send: fixed(createRaw(algAES, len256, attrRaw("Name", tStruct(okmip.TagAttributeValue, tText(okmip.TagNameValue, "bad\xc3"), tEnum(okmip.TagNameType, 1))))), items: []okmip.ResultReason{okmip.ResultReasonInvalidField}},
		{name: "Create: oversized custom attribute", send: fixed(createRaw(algAES, len256, attrRaw("x-big", tText(okmip.TagAttributeValue, longText)))), items: []okmip.ResultReason{okmip.ResultReasonInvalidField}},
		{name: "Register: AES key of 7 bytes", send: fixed(req(v14, &payloads.RegisterRequestPayload{ObjectType: okmip.ObjectTypeSymmetricKey, Object: &okmip.SymmetricKey{KeyBlock: okmip.KeyBlock{
			KeyFormatType: okmip.KeyFormatTypeRaw, KeyValue: &okmip.KeyValue{Plain: &okmip.PlainKeyValue{KeyMaterial: okmip.KeyMaterial{Bytes: &[]byte{1, 2, 3, 4, 5, 6, 7}}}},
			CryptographicAlgorithm: okmip.CryptographicAlgorithmAES, CryptographicLength: 56}}})), items: []okmip.ResultReason{okmip.ResultReasonInvalidField}},
		{name: "Get: unsupported key format", send: func(f *badFixture) []byte {
			return req(v14, &payloads.GetRequestPayload{UniqueIdentifier: f.active, KeyFormatType: okmip.KeyFormatTypePKCS_12})
		}, items: []okmip.ResultReason{okmip.ResultReasonKeyFormatTypeNotSupported}},
		// ---- cryptography ----
		{name: "Encrypt: CTR counter of 5 bytes", send: func(f *badFixture) []byte {
			return req(v14, &payloads.EncryptRequestPayload{UniqueIdentifier: f.active, Data: []byte("x"), CryptographicParameters: &okmip.CryptographicParameters{BlockCipherMode: okmip.BlockCipherModeCTR}, IVCounterNonce: make([]byte, 5)})
		}, items: []okmip.ResultReason{okmip.ResultReasonInvalidField}},
		{name: "Encrypt: CBC IV of 8 bytes", send: func(f *badFixture) []byte {
			return req(v14, &payloads.EncryptRequestPayload{UniqueIdentifier: f.active, Data: []byte("x"), IVCounterNonce: make([]byte, 8),
				CryptographicParameters: &okmip.CryptographicParameters{BlockCipherMode: okmip.BlockCipherModeCBC, PaddingMethod: okmip.PaddingMethodPKCS5}})
		}, items: []okmip.ResultReason{okmip.ResultReasonInvalidField}},
		{name: "Encrypt: GCM tag length 3", send: func(f *badFixture) []byte {
			return req(v14, &payloads.EncryptRequestPayload{UniqueIdentifier: f.active, Data: []byte("x"), CryptographicParameters: &okmip.CryptographicParameters{BlockCipherMode: okmip.BlockCipherModeGCM, TagLength: 3}})
		}, items: []okmip.ResultReason{okmip.ResultReasonInvalidField}},
		{name: "Encrypt: invalid block cipher mode", send: func(f *badFixture) []byte {
			return req(v14, &payloads.EncryptRequestPayload{UniqueIdentifier: f.active, Data: []byte("x"), CryptographicParameters: &okmip.CryptographicParameters{BlockCipherMode: 0x7777}})
		}, items: []okmip.ResultReason{okmip.ResultReasonFeatureNotSupported}},
		{name: "Encrypt: CBC without padding, partial block", send: func(f *badFixture) []byte {
			return req(v14, &payloads.EncryptRequestPayload{UniqueIdentifier: f.active, Data: []byte("x"), CryptographicParameters: &okmip.CryptographicParameters{BlockCipherMode: okmip.BlockCipherModeCBC, PaddingMethod: okmip.PaddingMethodNone}})
		}, items: []okmip.ResultReason{okmip.ResultReasonInvalidField}},
		{name: "Decrypt: wrong tag", send: func(f *badFixture) []byte {
			tag := bytes.Clone(f.ct.AuthenticatedEncryptionTag)
			tag[0] ^= 1
			return req(v14, &payloads.DecryptRequestPayload{UniqueIdentifier: f.active, Data: f.ct.Data, IVCounterNonce: f.ct.IVCounterNonce, AuthenticatedEncryptionTag: tag, CryptographicParameters: gcm()})
		}, items: []okmip.ResultReason{okmip.ResultReasonCryptographicFailure}},
		{name: "Decrypt: tampered ciphertext", send: func(f *badFixture) []byte {
			data := bytes.Clone(f.ct.Data)
			data[0] ^= 1
			return req(v14, &payloads.DecryptRequestPayload{UniqueIdentifier: f.active, Data: data, IVCounterNonce: f.ct.IVCounterNonce, AuthenticatedEncryptionTag: f.ct.AuthenticatedEncryptionTag, CryptographicParameters: gcm()})
		}, items: []okmip.ResultReason{okmip.ResultReasonCryptographicFailure}},
		{name: "Decrypt: tag of 4 bytes", send: func(f *badFixture) []byte {
			return req(v14, &payloads.DecryptRequestPayload{UniqueIdentifier: f.active, Data: f.ct.Data, IVCounterNonce: f.ct.IVCounterNonce, AuthenticatedEncryptionTag: f.ct.AuthenticatedEncryptionTag[:4], CryptographicParameters: gcm()})
		}, items: []okmip.ResultReason{okmip.ResultReasonInvalidField}},
		{name: "Decrypt: GCM without tag", send: func(f *badFixture) []byte {
			return req(v14, &payloads.DecryptRequestPayload{UniqueIdentifier: f.active, Data: f.ct.Data, IVCounterNonce: f.ct.IVCounterNonce, CryptographicParameters: gcm()})
		}, items: []okmip.ResultReason{okmip.ResultReasonInvalidField}},
		{name: "Decrypt: GCM without IV", send: func(f *badFixture) []byte {
			return req(v14, &payloads.DecryptRequestPayload{UniqueIdentifier: f.active, Data: f.ct.Data, AuthenticatedEncryptionTag: f.ct.AuthenticatedEncryptionTag, CryptographicParameters: gcm()})
		}, items: []okmip.ResultReason{okmip.ResultReasonInvalidMessage}},
		{name: "Decrypt: CBC ciphertext not a block multiple", send: func(f *badFixture) []byte {
			return req(v14, &payloads.DecryptRequestPayload{UniqueIdentifier: f.active, Data: make([]byte, 17), IVCounterNonce: make([]byte, 16),
				CryptographicParameters: &okmip.CryptographicParameters{BlockCipherMode: okmip.BlockCipherModeCBC, PaddingMethod: okmip.PaddingMethodPKCS5}})
		}, items: []okmip.ResultReason{okmip.ResultReasonCryptographicFailure}},
		{name: "Encrypt with an opaque object", send: func(f *badFixture) []byte {
			return req(v14, &payloads.EncryptRequestPayload{UniqueIdentifier: f.opaque, Data: []byte("x")})
		}, items: []okmip.ResultReason{okmip.ResultReasonIllegalOperation}},
		// ---- lifecycle ----
		{name: "Encrypt with a pre-active key", send: func(f *badFixture) []byte {
			return req(v14, &payloads.EncryptRequestPayload{UniqueIdentifier: f.preActive, Data: []byte("x")})
		}, items: []okmip.ResultReason{okmip.ResultReasonPermissionDenied}},
		{name: "Encrypt with a deactivated key", send: func(f *badFixture) []byte {
			return req(v14, &payloads.EncryptRequestPayload{UniqueIdentifier: f.deactivated, Data: []byte("x")})
		}, items: []okmip.ResultReason{okmip.ResultReasonPermissionDenied}},
		{name: "Activate an active key", send: func(f *badFixture) []byte {
			return req(v14, &payloads.ActivateRequestPayload{UniqueIdentifier: f.active})
		}, items: []okmip.ResultReason{okmip.ResultReasonPermissionDenied}},
		{name: "Destroy an active key", send: func(f *badFixture) []byte {
			return req(v14, &payloads.DestroyRequestPayload{UniqueIdentifier: f.active})
		}, items: []okmip.ResultReason{okmip.ResultReasonPermissionDenied}},
		{name: "Activate a destroyed key", send: func(f *badFixture) []byte {
			return req(v14, &payloads.ActivateRequestPayload{UniqueIdentifier: f.destroyed})
		}, items: []okmip.ResultReason{okmip.ResultReasonPermissionDenied}},
		// A destroyed object keeps only its attributes (as the OASIS vectors expect).
		{name: "Get a destroyed key's material", send: func(f *badFixture) []byte {
			return req(v14, &payloads.GetRequestPayload{UniqueIdentifier: f.destroyed})
		}, items: []okmip.ResultReason{okmip.ResultReasonItemNotFound}},
		{name: "Decrypt with a pre-active key", send: func(f *badFixture) []byte {
			return req(v14, &payloads.DecryptRequestPayload{UniqueIdentifier: f.preActive, Data: f.ct.Data, IVCounterNonce: f.ct.IVCounterNonce, AuthenticatedEncryptionTag: f.ct.AuthenticatedEncryptionTag})
		}, items: []okmip.ResultReason{okmip.ResultReasonPermissionDenied}},
	}
	if len(cases) < 50 {
		t.Fatalf("the matrix has %d cases, want at least 50", len(cases))
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			w := dialAdmin(t, env)
			msg := c.send(f)
			wrote := make(chan error, 1)
			go func() {
				w.conn.SetWriteDeadline(time.Now().Add(10 * time.Second))
				_, err := w.conn.Write(msg)
				if err == nil && c.closed {
					err = w.conn.CloseWrite()
				}
				wrote <- err
			}()
			switch {
			case c.closed:
				// At most a whole-message Invalid Message, then a close.
				if raw, err := w.readRaw(5 * time.Second); err == nil {
					wantMessageError(t, decodeResponse(t, raw), okmip.ResultReasonInvalidMessage)
					w.expectClosed(5 * time.Second)
				} else if !isClosed(err) {
					t.Fatalf("neither answered nor closed: %v", err)
				}
				<-wrote
				w.conn.Close()
				servesNew(t, env)
				return
			case c.msg != 0:
				resp, _ := w.response()
				wantMessageError(t, resp, c.msg)
			default:
				resp, _ := w.response()
				if len(resp.BatchItem) != len(c.items) {
					t.Fatalf("%d items answered, want %d: %+v", len(resp.BatchItem), len(c.items), resp.BatchItem)
				}
				for i, want := range c.items {
					if want == 0 {
						wantSuccess(t, resp.BatchItem[i])
					} else {
						wantFailure(t, resp.BatchItem[i], want)
					}
				}
			}
			if err := <-wrote; err != nil {
				t.Fatal(err)
			}
			w.servesOK()
			w.conn.Close()
		})
	}
	// Every object is as the fixture left it: no bad request changed state.
	admin = dialAdmin(t, env)
	defer admin.conn.Close()
	for id, want := range map[string]okmip.State{f.active: okmip.StateActive, f.preActive: okmip.StatePreActive, f.deactivated: okmip.StateDeactivated, f.destroyed: okmip.StateDestroyed} {
		got := ok[*payloads.GetAttributesResponsePayload](admin, v14, &payloads.GetAttributesRequestPayload{UniqueIdentifier: id, AttributeName: []okmip.AttributeName{okmip.AttributeNameState}})
		if len(got.Attribute) != 1 || got.Attribute[0].AttributeValue != want {
			t.Errorf("%s: state %v, want %s", id, got.Attribute, ttlv.EnumStr(want))
		}
	}
}
