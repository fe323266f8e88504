package kmip_test

import (
	"bytes"
	"strings"
	"testing"

	"github.com/minikms/minikms/kmip"
	okmip "github.com/ovh/kmip-go"
	"github.com/ovh/kmip-go/payloads"
	"github.com/ovh/kmip-go/ttlv"
)

func TestUnsupportedProtocolVersion(t *testing.T) {
	env := startKMS(t, nil)
	w := dialAdmin(t, env)
	for _, v := range []okmip.ProtocolVersion{
		{ProtocolVersionMajor: 0, ProtocolVersionMinor: 9},
		{ProtocolVersionMajor: 1, ProtocolVersionMinor: 5},
		{ProtocolVersionMajor: 2, ProtocolVersionMinor: 0},
		{ProtocolVersionMajor: 3, ProtocolVersionMinor: 0},
		{ProtocolVersionMajor: -1, ProtocolVersionMinor: 4},
	} {
		t.Run(v.String(), func(t *testing.T) {
			w.t = t
			resp, _ := w.do(newRequest(v, &payloads.DiscoverVersionsRequestPayload{}))
			wantMessageError(t, resp, okmip.ResultReasonInvalidMessage)
			if resp.Header.ProtocolVersion != kmip.Versions[0] {
				t.Fatalf("answered in %s, want the server's preferred %s", resp.Header.ProtocolVersion, kmip.Versions[0])
			}
			w.servesOK()
		})
	}
}

func TestBatchCountMismatch(t *testing.T) {
	env := startKMS(t, nil)
	w := dialAdmin(t, env)
	cases := []struct {
		name  string
		count int32
		items int
	}{
		{"count 2, one item", 2, 1},
		{"count 0, one item", 0, 1},
		{"count 1, two items", 1, 2},
		{"count -1, one item", -1, 1},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			w.t = t
			name := uniqueName(t)
			pls := []okmip.OperationPayload{createAES(nameAttr(name))}
			for len(pls) < c.items {
				pls = append(pls, &payloads.DiscoverVersionsRequestPayload{})
			}
			m := newRequest(v14, pls...)
			m.Header.BatchCount = c.count
			m.Header.ClientCorrelationValue = "corr-" + c.name
			resp, _ := w.do(m)
			wantMessageError(t, resp, okmip.ResultReasonInvalidMessage)
			if resp.Header.ClientCorrelationValue != m.Header.ClientCorrelationValue {
				t.Fatalf("Client Correlation Value %q not echoed (got %q)", m.Header.ClientCorrelationValue, resp.Header.ClientCorrelationValue)
			}
			if ids := w.locate(nameAttr(name)); len(ids) != 0 {
				t.Fatalf("the Create of a refused message ran: %v", ids)
			}
			w.servesOK()
		})
	}
}

// missingID is an identifier no object has.
const missingID = "00000000-0000-4000-8000-000000000000"

func TestBatchErrorContinuation(t *testing.T) {
	env := startKMS(t, nil)
	w := dialAdmin(t, env)
	cases := []struct {
		name   string
		option okmip.BatchErrorContinuationOption
		// laterRuns: the Create after the failure runs.
		laterRuns bool
	}{
		{"default is Stop", 0, false},
		{"Stop", okmip.BatchErrorContinuationOptionStop, false},
		{"Continue", okmip.BatchErrorContinuationOptionContinue, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			w.t = t
			first, later := uniqueName(t)+"-first", uniqueName(t)+"-later"
			m := newRequest(v14,
				createAES(nameAttr(first)),
				&payloads.ActivateRequestPayload{UniqueIdentifier: missingID},
				createAES(nameAttr(later)),
				&payloads.GetAttributesRequestPayload{},
			)
			m.Header.BatchErrorContinuationOption = c.option
			resp, _ := w.do(m)
			if len(resp.BatchItem) != 4 {
				t.Fatalf("%d items answered", len(resp.BatchItem))
			}
			wantSuccess(t, resp.BatchItem[0])
			wantFailure(t, resp.BatchItem[1], okmip.ResultReasonItemNotFound)
			for i, bi := range resp.BatchItem {
				if want := m.BatchItem[i].RequestPayload.Operation(); bi.Operation != want {
					t.Errorf("item %d: operation %s, want %s", i, ttlv.EnumStr(bi.Operation), ttlv.EnumStr(want))
				}
				if !bytes.Equal(bi.UniqueBatchItemID, m.BatchItem[i].UniqueBatchItemID) {
					t.Errorf("item %d: batch id %q, want %q", i, bi.UniqueBatchItemID, m.BatchItem[i].UniqueBatchItemID)
				}
			}
			if c.laterRuns {
				wantSuccess(t, resp.BatchItem[2])
				// The placeholder is the later Create's id.
				wantSuccess(t, resp.BatchItem[3])
				ga := resp.BatchItem[3].ResponsePayload.(*payloads.GetAttributesResponsePayload)
				if ga.UniqueIdentifier != resp.BatchItem[2].ResponsePayload.(*payloads.CreateResponsePayload).UniqueIdentifier {
					t.Fatalf("GetAttributes used %s", ga.UniqueIdentifier)
				}
			} else {
				wantFailure(t, resp.BatchItem[2], okmip.ResultReasonOperationCanceledByRequester)
				wantFailure(t, resp.BatchItem[3], okmip.ResultReasonOperationCanceledByRequester)
			}
			if got := len(w.locate(nameAttr(first))); got != 1 {
				t.Fatalf("%d objects named %s, want 1", got, first)
			}
			want := 0
			if c.laterRuns {
				want = 1
			}
			if got := len(w.locate(nameAttr(later))); got != want {
				t.Fatalf("%d objects named %s after the failure, want %d", got, later, want)
			}
		})
	}

	t.Run("undefined option", func(t *testing.T) {
		w.t = t
		m := newRequest(v14, &payloads.DiscoverVersionsRequestPayload{})
		m.Header.BatchErrorContinuationOption = 4
		resp, _ := w.do(m)
		wantMessageError(t, resp, okmip.ResultReasonInvalidField)
		w.servesOK()
	})
}

func TestUniqueBatchItemIDsEchoed(t *testing.T) {
	env := startKMS(t, nil)
	w := dialAdmin(t, env)
	ids := []string{"first", "", "\x00\x01\x02", "0123456789abcdef0123456789abcdef", "z"}
	parts := [][]byte{rawHeader(okmip.RequestHeader{ProtocolVersion: v14, BatchErrorContinuationOption: okmip.BatchErrorContinuationOptionContinue, BatchCount: int32(len(ids))})}
	for i, id := range ids {
		pl := tStruct(okmip.TagRequestPayload)
		op := okmip.OperationDiscoverVersions
		if i == 2 { // a failing item keeps its id too
			op = okmip.OperationGet
			pl = rawPayload(&payloads.GetRequestPayload{UniqueIdentifier: missingID})
		}
		parts = append(parts, rawItem(op, id, pl))
	}
	resp, raw := w.roundTripRaw(rawMessage(parts...))
	if len(resp.BatchItem) != len(ids) {
		t.Fatalf("%d items answered", len(resp.BatchItem))
	}
	for i, id := range ids {
		if got := string(resp.BatchItem[i].UniqueBatchItemID); got != id {
			t.Errorf("item %d: batch id %q, want %q", i, got, id)
		}
	}
	wantFailure(t, resp.BatchItem[2], okmip.ResultReasonItemNotFound)
	if n := len(tagValues(t, raw, okmip.TagUniqueBatchItemID)); n != len(ids)-1 {
		t.Fatalf("%d Unique Batch Item IDs in the response, want %d (none for the item without one)", n, len(ids)-1)
	}
}

// noPlaceholder is the answer to an item with no Unique Identifier when no
// earlier item of the batch left an ID Placeholder: Item Not Found, as the
// OASIS test case TC-152 (KMIP 1.1, Locate finding nothing, then Get)
// expects.
const noPlaceholder = okmip.ResultReasonItemNotFound

func wantNoPlaceholder(t *testing.T, bi okmip.ResponseBatchItem) {
	t.Helper()
	wantFailure(t, bi, noPlaceholder)
	if !strings.Contains(bi.ResultMessage, "ID Placeholder") {
		t.Fatalf("message %q does not say the ID Placeholder is missing", bi.ResultMessage)
	}
}

func TestIDPlaceholder(t *testing.T) {
	env := startKMS(t, nil)
	w := dialAdmin(t, env)
	cont := func(m *okmip.RequestMessage) *okmip.RequestMessage {
		m.Header.BatchErrorContinuationOption = okmip.BatchErrorContinuationOptionContinue
		return m
	}

	t.Run("Create, Activate, GetAttributes", func(t *testing.T) {
		w.t = t
		resp, _ := w.do(newRequest(v14,
			createAES(),
			&payloads.ActivateRequestPayload{},
			&payloads.GetAttributesRequestPayload{AttributeName: []okmip.AttributeName{okmip.AttributeNameState, okmip.AttributeNameUniqueIdentifier}},
		))
		for _, bi := range resp.BatchItem {
			wantSuccess(t, bi)
		}
		id := resp.BatchItem[0].ResponsePayload.(*payloads.CreateResponsePayload).UniqueIdentifier
		if got := resp.BatchItem[1].ResponsePayload.(*payloads.ActivateResponsePayload).UniqueIdentifier; got != id {
			t.Fatalf("Activate acted on %s, want %s", got, id)
		}
		ga := resp.BatchItem[2].ResponsePayload.(*payloads.GetAttributesResponsePayload)
		if ga.UniqueIdentifier != id {
			t.Fatalf("GetAttributes read %s, want %s", ga.UniqueIdentifier, id)
		}
		if len(ga.Attribute) != 2 || ga.Attribute[0].AttributeValue != okmip.StateActive || ga.Attribute[1].AttributeValue != id {
			t.Fatalf("attributes %#v", ga.Attribute)
		}
	})
	t.Run("Register sets the placeholder", func(t *testing.T) {
		w.t = t
		resp, _ := w.do(newRequest(v14, registerOpaque([]byte("opaque")), &payloads.GetRequestPayload{}))
		wantSuccess(t, resp.BatchItem[0])
		wantSuccess(t, resp.BatchItem[1])
		if resp.BatchItem[1].ResponsePayload.(*payloads.GetResponsePayload).UniqueIdentifier != resp.BatchItem[0].ResponsePayload.(*payloads.RegisterResponsePayload).UniqueIdentifier {
			t.Fatal("Get did not read the registered object")
		}
	})
	t.Run("cleared by a failed item", func(t *testing.T) {
		w.t = t
		resp, _ := w.do(cont(newRequest(v14,
			createAES(),
			&payloads.ActivateRequestPayload{UniqueIdentifier: missingID},
			&payloads.GetAttributesRequestPayload{},
		)))
		wantSuccess(t, resp.BatchItem[0])
		wantFailure(t, resp.BatchItem[1], okmip.ResultReasonItemNotFound)
		wantNoPlaceholder(t, resp.BatchItem[2])
	})
	t.Run("Locate of one object sets it", func(t *testing.T) {
		w.t = t
		name := uniqueName(t)
		id := w.createKey(nameAttr(name))
		resp, _ := w.do(newRequest(v14,
			&payloads.LocateRequestPayload{Attribute: []okmip.Attribute{nameAttr(name)}},
			&payloads.GetAttributesRequestPayload{AttributeName: []okmip.AttributeName{okmip.AttributeNameName}},
		))
		wantSuccess(t, resp.BatchItem[1])
		if got := resp.BatchItem[1].ResponsePayload.(*payloads.GetAttributesResponsePayload).UniqueIdentifier; got != id {
			t.Fatalf("GetAttributes read %s, want %s", got, id)
		}
	})
	t.Run("Locate of several objects clears it", func(t *testing.T) {
		w.t = t
		group := uniqueName(t)
		w.createKey(groupAttr(group))
		resp, _ := w.do(cont(newRequest(v14,
			createAES(groupAttr(group)),
			&payloads.LocateRequestPayload{Attribute: []okmip.Attribute{groupAttr(group)}},
			&payloads.GetAttributesRequestPayload{},
		)))
		wantSuccess(t, resp.BatchItem[1])
		if n := len(resp.BatchItem[1].ResponsePayload.(*payloads.LocateResponsePayload).UniqueIdentifier); n != 2 {
			t.Fatalf("Locate found %d objects, want 2", n)
		}
		wantNoPlaceholder(t, resp.BatchItem[2])
	})
	t.Run("Locate of nothing clears it", func(t *testing.T) {
		w.t = t
		resp, _ := w.do(cont(newRequest(v14,
			createAES(),
			&payloads.LocateRequestPayload{Attribute: []okmip.Attribute{nameAttr(uniqueName(t))}},
			&payloads.GetAttributesRequestPayload{},
		)))
		wantSuccess(t, resp.BatchItem[1])
		wantNoPlaceholder(t, resp.BatchItem[2])
	})
	t.Run("missing placeholder", func(t *testing.T) {
		w.t = t
		for _, pl := range []okmip.OperationPayload{
			&payloads.GetAttributesRequestPayload{},
			&payloads.GetRequestPayload{},
			&payloads.ActivateRequestPayload{},
			&payloads.GetAttributeListRequestPayload{},
			&payloads.DestroyRequestPayload{},
			&payloads.RevokeRequestPayload{RevocationReason: okmip.RevocationReason{RevocationReasonCode: okmip.RevocationReasonCodeUnspecified}},
			&payloads.EncryptRequestPayload{Data: []byte("x")},
		} {
			wantNoPlaceholder(t, w.one(v14, pl))
		}
	})
	t.Run("does not outlive its message", func(t *testing.T) {
		w.t = t
		w.createKey()
		wantNoPlaceholder(t, w.one(v14, &payloads.GetAttributesRequestPayload{}))
	})
}

func TestMaximumResponseSize(t *testing.T) {
	env := startKMS(t, nil)
	w := dialAdmin(t, env)
	query := &payloads.QueryRequestPayload{QueryFunction: []okmip.QueryFunction{okmip.QueryFunctionOperations, okmip.QueryFunctionProfiles}}
	cases := []struct {
		name   string
		max    int32
		reason okmip.ResultReason // 0: success
	}{
		{"tiny", 64, okmip.ResultReasonResponseTooLarge},
		{"just below the response", 300, okmip.ResultReasonResponseTooLarge},
		{"large", 1 << 20, 0},
		{"zero means no limit", 0, 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			w.t = t
			m := newRequest(v14, query, &payloads.GetRequestPayload{UniqueIdentifier: missingID})
			m.Header.MaximumResponseSize = c.max
			m.Header.BatchErrorContinuationOption = okmip.BatchErrorContinuationOptionContinue
			resp, raw := w.do(m)
			if c.reason == 0 {
				wantSuccess(t, resp.BatchItem[0])
				if c.max > 0 && len(raw) > int(c.max) {
					t.Fatalf("response of %d bytes above the maximum %d", len(raw), c.max)
				}
			} else {
				wantFailure(t, resp.BatchItem[0], c.reason)
			}
			if resp.BatchItem[0].Operation != okmip.OperationQuery {
				t.Fatalf("operation %v", resp.BatchItem[0].Operation)
			}
			// A failed item keeps its own reason.
			wantFailure(t, resp.BatchItem[1], okmip.ResultReasonItemNotFound)
			w.servesOK()
		})
	}
	t.Run("negative", func(t *testing.T) {
		w.t = t
		m := newRequest(v14, query)
		m.Header.MaximumResponseSize = -1
		resp, _ := w.do(m)
		wantMessageError(t, resp, okmip.ResultReasonInvalidField)
		w.servesOK()
	})
}

func TestClientCorrelationValue(t *testing.T) {
	env := startKMS(t, nil)
	w := dialAdmin(t, env)
	m := newRequest(v14, &payloads.DiscoverVersionsRequestPayload{})
	m.Header.ClientCorrelationValue = "client-corr-42"
	resp, raw := w.do(m)
	wantSuccess(t, resp.BatchItem[0])
	if resp.Header.ClientCorrelationValue != "client-corr-42" {
		t.Fatalf("Client Correlation Value %q", resp.Header.ClientCorrelationValue)
	}
	if v := tagValues(t, raw, okmip.TagClientCorrelationValue); len(v) != 1 || string(v[0]) != "client-corr-42" {
		t.Fatalf("Client Correlation Value on the wire: %q", v)
	}
	// Absent when the client sent none.
	_, raw = w.do(newRequest(v14, &payloads.DiscoverVersionsRequestPayload{}))
	if v := tagValues(t, raw, okmip.TagClientCorrelationValue); len(v) != 0 {
		t.Fatalf("Client Correlation Value %q without one in the request", v)
	}
}

func TestMessageExtension(t *testing.T) {
	env := startKMS(t, nil)
	w := dialAdmin(t, env)
	cases := []struct {
		name     string
		critical bool
		reason   okmip.ResultReason
	}{
		{"critical", true, okmip.ResultReasonFeatureNotSupported},
		{"non-critical", false, 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			w.t = t
			name := uniqueName(t)
			m := newRequest(v14, createAES(nameAttr(name)))
			m.BatchItem[0].MessageExtension = &okmip.MessageExtension{
				VendorIdentification: "ACME", CriticalityIndicator: c.critical,
				VendorExtension: ttlv.Struct{{Tag: 0x540001, Value: "x"}},
			}
			resp, _ := w.do(m)
			want := 1
			if c.reason == 0 {
				wantSuccess(t, resp.BatchItem[0])
			} else {
				wantFailure(t, resp.BatchItem[0], c.reason)
				want = 0
			}
			if ids := w.locate(nameAttr(name)); len(ids) != want {
				t.Fatalf("%d objects created, want %d", len(ids), want)
			}
		})
	}
	t.Run("malformed", func(t *testing.T) {
		w.t = t
		ext := tStruct(okmip.TagMessageExtension, tInt(okmip.TagVendorIdentification, 1))
		resp, _ := w.roundTripRaw(rawMessage(rawHeader(hdr(v14, 1)), rawItem(okmip.OperationDiscoverVersions, "a", tStruct(okmip.TagRequestPayload), ext)))
		wantFailure(t, resp.BatchItem[0], okmip.ResultReasonInvalidMessage)
		w.servesOK()
	})
}

func TestOperationNotSupported(t *testing.T) {
	env := startKMS(t, nil)
	w := dialAdmin(t, env)
	ops := []okmip.Operation{
		okmip.OperationPoll, okmip.OperationArchive, okmip.OperationRecover, okmip.OperationCancel,
		okmip.OperationValidate, okmip.OperationNotify, okmip.OperationPut,
		okmip.Operation(0), okmip.Operation(0xFFFF), okmip.Operation(0x8000_0001),
	}
	for _, op := range ops {
		t.Run(ttlv.EnumStr(op), func(t *testing.T) {
			w.t = t
			resp, _ := w.roundTripRaw(rawMessage(rawHeader(hdr(v14, 1)), rawItem(op, "a", tStruct(okmip.TagRequestPayload))))
			wantFailure(t, resp.BatchItem[0], okmip.ResultReasonOperationNotSupported)
			if resp.BatchItem[0].Operation != op {
				t.Fatalf("operation %v echoed as %v", op, resp.BatchItem[0].Operation)
			}
			w.servesOK()
		})
	}
}

func TestMalformedBatchItems(t *testing.T) {
	env := startKMS(t, nil)
	w := dialAdmin(t, env)
	payload := func(kids ...[]byte) []byte { return tStruct(okmip.TagRequestPayload, kids...) }
	cases := []struct {
		name string
		item []byte
	}{
		{"no payload", rawItem(okmip.OperationGet, "bad")},
		{"no operation", tStruct(okmip.TagBatchItem, tBytes(okmip.TagUniqueBatchItemID, []byte("bad")), payload())},
		{"operation not an enumeration", tStruct(okmip.TagBatchItem, tInt(okmip.TagOperation, int32(okmip.OperationGet)), tBytes(okmip.TagUniqueBatchItemID, []byte("bad")), payload())},
		{"two operations", rawItem(okmip.OperationGet, "bad", tEnum(okmip.TagOperation, uint32(okmip.OperationGet)), payload())},
		{"two payloads", rawItem(okmip.OperationGet, "bad", payload(), payload())},
		{"unexpected field", rawItem(okmip.OperationGet, "bad", tText(okmip.TagUniqueIdentifier, "x"), payload())},
		{"payload not a structure", rawItem(okmip.OperationGet, "bad", tText(okmip.TagRequestPayload, "x"))},
		{"Unique Identifier as an integer", rawItem(okmip.OperationGet, "bad", payload(tInt(okmip.TagUniqueIdentifier, 7)))},
		{"Create without Object Type", rawItem(okmip.OperationCreate, "bad", payload(tStruct(okmip.TagTemplateAttribute)))},
		{"Query Function as text", rawItem(okmip.OperationQuery, "bad", payload(tText(okmip.TagQueryFunction, "ops")))},
		{"Encrypt Data as text", rawItem(okmip.OperationEncrypt, "bad", payload(tText(okmip.TagUniqueIdentifier, missingID), tText(okmip.TagData, "x")))},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			w.t = t
			// The bad item sits between two good ones in a Continue batch: it
			// fails alone.
			resp, _ := w.roundTripRaw(rawMessage(
				rawHeader(okmip.RequestHeader{ProtocolVersion: v14, BatchErrorContinuationOption: okmip.BatchErrorContinuationOptionContinue, BatchCount: 3}),
				discoverItem("before"), c.item, discoverItem("after")))
			if len(resp.BatchItem) != 3 {
				t.Fatalf("%d items answered", len(resp.BatchItem))
			}
			wantSuccess(t, resp.BatchItem[0])
			wantFailure(t, resp.BatchItem[1], okmip.ResultReasonInvalidMessage)
			wantSuccess(t, resp.BatchItem[2])
			if string(resp.BatchItem[0].UniqueBatchItemID) != "before" || string(resp.BatchItem[2].UniqueBatchItemID) != "after" {
				t.Fatalf("batch ids %q %q", resp.BatchItem[0].UniqueBatchItemID, resp.BatchItem[2].UniqueBatchItemID)
			}
			w.servesOK()
		})
	}
}

// TestPayloadUnconsumedFieldsRejected: a request payload whose fields the
// codec did not all consume (out of order, unknown, duplicated) is not the
// request the client meant. KMIP fixes the order of fields; a server that
// skips what it did not expect executes something else than what was
// asked: here an Encrypt asked in CBC runs in GCM, and a Locate asked for
// one item returns them all. Expected: Invalid Message, nothing executed.
//
// FAILS at the time of writing: session.execute (session.go) decodes the
// payload with ttlv.Decoder.TagAny, whose Struct ignores the fields left
// after the last one it knows.
func TestPayloadUnconsumedFieldsRejected(t *testing.T) {
	env := startKMS(t, nil)
	w := dialAdmin(t, env)
	id := w.activeKey()
	preActive := w.createKey()
	group := uniqueName(t)
	w.createKey(groupAttr(group))
	w.createKey(groupAttr(group))
	cbc := tStruct(okmip.TagCryptographicParameters,
		tEnum(okmip.TagBlockCipherMode, uint32(okmip.BlockCipherModeCBC)), tEnum(okmip.TagPaddingMethod, uint32(okmip.PaddingMethodPKCS5)))
	groupFilter := tStruct(okmip.TagAttribute, tText(okmip.TagAttributeName, string(okmip.AttributeNameObjectGroup)), tText(okmip.TagAttributeValue, group))
	cases := []struct {
		name string
		op   okmip.Operation
		pl   []byte
	}{
		{"Encrypt with Cryptographic Parameters after Data", okmip.OperationEncrypt,
			tStruct(okmip.TagRequestPayload, tText(okmip.TagUniqueIdentifier, id), tBytes(okmip.TagData, make([]byte, 32)), cbc)},
		{"Locate with Maximum Items after the filter", okmip.OperationLocate,
			tStruct(okmip.TagRequestPayload, groupFilter, tInt(okmip.TagMaximumItems, 1))},
		{"Activate with an unknown field", okmip.OperationActivate,
			tStruct(okmip.TagRequestPayload, tText(okmip.TagUniqueIdentifier, preActive), tInt(0x540099, 1))},
		{"Get with two Unique Identifiers", okmip.OperationGet,
			tStruct(okmip.TagRequestPayload, tText(okmip.TagUniqueIdentifier, id), tText(okmip.TagUniqueIdentifier, missingID))},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			w.t = t
			resp, raw := w.roundTripRaw(rawMessage(rawHeader(hdr(v14, 1)), rawItem(c.op, "a", c.pl)))
			bi := resp.BatchItem[0]
			if bi.ResultStatus == okmip.ResultStatusSuccess {
				t.Errorf("executed: %s; response payload fields: %d Data of %d bytes, %d Authentication Tags, %d identifiers",
					ttlv.EnumStr(bi.Operation), len(tagValues(t, raw, okmip.TagData)), lenFirst(tagValues(t, raw, okmip.TagData)),
					len(tagValues(t, raw, okmip.TagAuthenticatedEncryptionTag)), len(tagValues(t, raw, okmip.TagUniqueIdentifier)))
			}
			wantFailure(t, bi, okmip.ResultReasonInvalidMessage)
		})
	}
}

func lenFirst(v [][]byte) int {
	if len(v) == 0 {
		return -1
	}
	return len(v[0])
}
