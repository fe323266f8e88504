package kmip_test

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/minikms/minikms/engine"
	okmip "github.com/ovh/kmip-go"
	"github.com/ovh/kmip-go/payloads"
)

// undoBatch sends pls as one batch with the Undo continuation option.
func undoBatch(w *wireConn, pls ...okmip.OperationPayload) *okmip.ResponseMessage {
	w.t.Helper()
	m := newRequest(v14, pls...)
	m.Header.BatchErrorContinuationOption = okmip.BatchErrorContinuationOptionUndo
	bo := true
	m.Header.BatchOrderOption = &bo
	resp, _ := w.do(m)
	if len(resp.BatchItem) != len(pls) {
		w.t.Fatalf("%d items answered for %d", len(resp.BatchItem), len(pls))
	}
	return resp
}

func statuses(resp *okmip.ResponseMessage) []okmip.ResultStatus {
	var out []okmip.ResultStatus
	for _, bi := range resp.BatchItem {
		out = append(out, bi.ResultStatus)
	}
	return out
}

func wantStatuses(t *testing.T, resp *okmip.ResponseMessage, want ...okmip.ResultStatus) {
	t.Helper()
	got := statuses(resp)
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("statuses %v, want %v", got, want)
		}
	}
	for i, bi := range resp.BatchItem {
		if bi.ResultStatus == okmip.ResultStatusOperationUndone && bi.ResponsePayload != nil {
			t.Fatalf("undone item %d carries a payload", i)
		}
	}
}

func TestUndoBatches(t *testing.T) {
	env := startKMS(t, nil)
	w := dialAdmin(t, env)
	missing := &payloads.GetRequestPayload{UniqueIdentifier: "no-such-object"}
	undone, failed, canceled, success := okmip.ResultStatusOperationUndone, okmip.ResultStatusOperationFailed, okmip.ResultStatusOperationFailed, okmip.ResultStatusSuccess

	t.Run("all succeed", func(t *testing.T) {
		w.t = t
		name := uniqueName(t)
		resp := undoBatch(w, createAES(nameAttr(name)), &payloads.GetRequestPayload{})
		wantStatuses(t, resp, success, success)
		if len(w.locate(nameAttr(name))) != 1 {
			t.Fatal("the created key is missing")
		}
	})
	t.Run("created objects are removed", func(t *testing.T) {
		w.t = t
		name := uniqueName(t)
		resp := undoBatch(w, createAES(nameAttr(name)),
			&payloads.AddAttributeRequestPayload{Attribute: okmip.Attribute{AttributeName: "x-undo", AttributeValue: "1"}},
			missing, &payloads.ActivateRequestPayload{})
		wantStatuses(t, resp, undone, undone, failed, canceled)
		if resp.BatchItem[2].ResultReason != okmip.ResultReasonItemNotFound || resp.BatchItem[3].ResultReason != okmip.ResultReasonOperationCanceledByRequester {
			t.Fatalf("reasons %v, %v", resp.BatchItem[2].ResultReason, resp.BatchItem[3].ResultReason)
		}
		if ids := w.locate(nameAttr(name)); len(ids) != 0 {
			t.Fatalf("the undone Create left %v", ids)
		}
	})
	t.Run("changes to existing objects are reversed", func(t *testing.T) {
		w.t = t
		name := uniqueName(t)
		id := w.createKey(nameAttr(name))
		before := ok[*payloads.GetResponsePayload](w, v14, &payloads.GetRequestPayload{UniqueIdentifier: id})
		resp := undoBatch(w,
			&payloads.ActivateRequestPayload{UniqueIdentifier: id},
			&payloads.AddAttributeRequestPayload{UniqueIdentifier: id, Attribute: okmip.Attribute{AttributeName: "x-undo", AttributeValue: "1"}},
			&payloads.ModifyAttributeRequestPayload{UniqueIdentifier: id, Attribute: nameAttr(name + "-renamed")},
			&payloads.RevokeRequestPayload{UniqueIdentifier: id, RevocationReason: okmip.RevocationReason{RevocationReasonCode: okmip.RevocationReasonCodeCessationOfOperation}},
			&payloads.DestroyRequestPayload{UniqueIdentifier: id},
			missing)
		wantStatuses(t, resp, undone, undone, undone, undone, undone, failed)
		ga := ok[*payloads.GetAttributesResponsePayload](w, v14, &payloads.GetAttributesRequestPayload{UniqueIdentifier: id})
		for _, a := range ga.Attribute {
			switch a.AttributeName {
			case "x-undo":
				t.Fatal("the added attribute survived the undo")
			case okmip.AttributeNameState:
				if a.AttributeValue != okmip.StatePreActive {
					t.Fatalf("state %v after undo, want Pre-Active", a.AttributeValue)
				}
			case okmip.AttributeNameName:
				if a.AttributeValue.(okmip.Name).NameValue != name {
					t.Fatalf("name %v after undo", a.AttributeValue)
				}
			}
		}
		after := ok[*payloads.GetResponsePayload](w, v14, &payloads.GetRequestPayload{UniqueIdentifier: id})
		b1, _ := before.Object.(*okmip.SymmetricKey).KeyBlock.GetBytes()
		b2, _ := after.Object.(*okmip.SymmetricKey).KeyBlock.GetBytes()
		if !bytes.Equal(b1, b2) {
			t.Fatal("the destroyed material did not come back with the undo")
		}
		// Undone items are audited as such.
		recs, _ := env.Store.AuditRecords(context.Background(), 0, 0)
		var marked int
		for _, r := range recs {
			if r.Object == id && strings.Contains(r.Details["undone"], "reversed") {
				marked++
			}
		}
		if marked != 5 {
			t.Fatalf("%d audit records of %s marked undone, want 5", marked, id)
		}
	})
	t.Run("Certify cannot be undone", func(t *testing.T) {
		w.t = t
		m := newRequest(v14, &payloads.DiscoverVersionsRequestPayload{})
		m.BatchItem[0].Operation = okmip.OperationCertify
		m.Header.BatchErrorContinuationOption = okmip.BatchErrorContinuationOptionUndo
		resp, _ := w.do(m)
		wantMessageError(t, resp, okmip.ResultReasonFeatureNotSupported)
		w.servesOK()
	})
	t.Run("another tenant's object is not touched", func(t *testing.T) {
		w.t = t
		other := dialAs(t, env, "globex", "admin", engine.RoleAdmin)
		theirs := other.createKey()
		resp := undoBatch(w, &payloads.ActivateRequestPayload{UniqueIdentifier: theirs}, missing)
		wantStatuses(t, resp, failed, canceled)
		ga := ok[*payloads.GetAttributesResponsePayload](other, v14, &payloads.GetAttributesRequestPayload{UniqueIdentifier: theirs,
			AttributeName: []okmip.AttributeName{okmip.AttributeNameState}})
		if ga.Attribute[0].AttributeValue != okmip.StatePreActive {
			t.Fatal("another tenant's key changed")
		}
	})
}
