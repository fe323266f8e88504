package kmip_test

import (
	"testing"
	"time"

	"github.com/minikms/minikms/engine"
	okmip "github.com/ovh/kmip-go"
	"github.com/ovh/kmip-go/payloads"
)

type checkReq struct {
	UniqueIdentifier       string `ttlv:",omitempty"`
	UsageLimitsCount       *int64
	CryptographicUsageMask *okmip.CryptographicUsageMask
	LeaseTime              *time.Duration
}

func (*checkReq) Operation() okmip.Operation { return okmip.OperationCheck }

type allocReq struct {
	UniqueIdentifier string `ttlv:",omitempty"`
	UsageLimitsCount *int64
}

func (*allocReq) Operation() okmip.Operation { return okmip.OperationGetUsageAllocation }

func count(n int64) *int64 { return &n }

func TestCheckAndUsageAllocationOverKMIP(t *testing.T) {
	env := startKMS(t, nil)
	w := dialAdmin(t, env)
	id := w.activeKey(nameAttr("limited"), okmip.Attribute{AttributeName: okmip.AttributeNameUsageLimits,
		AttributeValue: okmip.UsageLimits{UsageLimitsTotal: 1000, UsageLimitsUnit: okmip.UsageLimitsUnitByte}})

	// Check then allocate in one batch, through the ID Placeholder.
	resp, _ := w.do(newRequest(v10,
		&payloads.LocateRequestPayload{Attribute: []okmip.Attribute{nameAttr("limited")}},
		&checkReq{UsageLimitsCount: count(500)},
		&allocReq{UsageLimitsCount: count(500)}))
	for _, bi := range resp.BatchItem {
		wantSuccess(t, bi)
	}
	if got := fieldOf(t, resp.BatchItem[1], okmip.TagUniqueIdentifier); got != id {
		t.Fatalf("Check answers for %v, want %s", got, id)
	}
	ok[*payloads.GetUsageAllocationResponsePayload](w, v10, &allocReq{UniqueIdentifier: id, UsageLimitsCount: count(500)})
	w.fails(v10, &allocReq{UniqueIdentifier: id, UsageLimitsCount: count(500)}, okmip.ResultReasonPermissionDenied)
	bi := w.fails(v10, &checkReq{UniqueIdentifier: id, UsageLimitsCount: count(1)}, okmip.ResultReasonPermissionDenied)
	if bi.ResultMessage == "" {
		t.Fatal("a failed Check does not say what failed")
	}

	// A failed Check stops the batch and empties the ID Placeholder.
	resp, _ = w.do(newRequest(v10, &checkReq{UniqueIdentifier: id, UsageLimitsCount: count(1)}, &payloads.GetRequestPayload{}))
	wantFailure(t, resp.BatchItem[0], okmip.ResultReasonPermissionDenied)
	wantFailure(t, resp.BatchItem[1], okmip.ResultReasonOperationCanceledByRequester)

	mac := okmip.CryptographicUsageMACGenerate
	w.fails(v14, &checkReq{UniqueIdentifier: id, CryptographicUsageMask: &mac}, okmip.ResultReasonPermissionDenied)
	enc := okmip.CryptographicUsageEncrypt
	lease := time.Hour
	ok[*okmip.UnknownPayload](w, v14, &checkReq{UniqueIdentifier: id, CryptographicUsageMask: &enc, LeaseTime: &lease})

	plain := w.activeKey()
	w.fails(v14, &allocReq{UniqueIdentifier: plain, UsageLimitsCount: count(1)}, okmip.ResultReasonIllegalOperation)
	w.fails(v14, &allocReq{UniqueIdentifier: plain}, okmip.ResultReasonMissingData)
	w.fails(v14, &allocReq{UniqueIdentifier: id, UsageLimitsCount: count(0)}, okmip.ResultReasonInvalidField)

	other := dialAs(t, env, "globex", "admin", engine.RoleAdmin)
	other.fails(v14, &checkReq{UniqueIdentifier: id}, okmip.ResultReasonItemNotFound)
	other.fails(v14, &allocReq{UniqueIdentifier: id, UsageLimitsCount: count(1)}, okmip.ResultReasonItemNotFound)
	auditor := dialAs(t, env, "acme", "audit", engine.RoleAuditor)
	auditor.fails(v14, &allocReq{UniqueIdentifier: id, UsageLimitsCount: count(1)}, okmip.ResultReasonPermissionDenied)
}

func TestObtainLeaseOverKMIP(t *testing.T) {
	env := startKMS(t, nil)
	w := dialAdmin(t, env)
	id := w.activeKey()
	got := ok[*payloads.ObtainLeaseResponsePayload](w, v10, &payloads.ObtainLeaseRequestPayload{UniqueIdentifier: id})
	if got.UniqueIdentifier != id || got.LeaseTime != engine.DefaultLease || got.LastChangeDate.IsZero() {
		t.Fatalf("Obtain Lease answered %+v", got)
	}
	w.fails(v10, &payloads.ObtainLeaseRequestPayload{UniqueIdentifier: w.createKey()}, okmip.ResultReasonPermissionDenied)
	ok[*payloads.RevokeResponsePayload](w, v10, &payloads.RevokeRequestPayload{UniqueIdentifier: id,
		RevocationReason: okmip.RevocationReason{RevocationReasonCode: okmip.RevocationReasonCodeKeyCompromise}})
	w.fails(v10, &payloads.ObtainLeaseRequestPayload{UniqueIdentifier: id}, okmip.ResultReasonPermissionDenied)
	other := dialAs(t, env, "globex", "admin", engine.RoleAdmin)
	other.fails(v10, &payloads.ObtainLeaseRequestPayload{UniqueIdentifier: id}, okmip.ResultReasonItemNotFound)
}
