package kmip

import (
	"context"
	"time"

	"github.com/minikms/minikms/engine"
	"github.com/ovh/kmip-go"
	"github.com/ovh/kmip-go/payloads"
)

var (
	_ = addHandler(kmip.OperationCheck, route(handleCheck))
	_ = addHandler(kmip.OperationGetUsageAllocation, route(handleGetUsageAllocation))
	_ = addHandler(kmip.OperationObtainLease, route(handleObtainLease))
)

// checkRequest is the KMIP Check request payload (the codec has none).
// The values are not Attribute structures.
type checkRequest struct {
	UniqueIdentifier       string `ttlv:",omitempty"`
	UsageLimitsCount       *int64
	CryptographicUsageMask *kmip.CryptographicUsageMask
	LeaseTime              *time.Duration
}

// checkResponse is the answer of a Check that passed. A Check that fails
// is Operation Failed / Permission Denied, its message naming the values
// that failed (a failed batch item carries no payload).
type checkResponse struct {
	UniqueIdentifier string
}

func (*checkResponse) Operation() kmip.Operation { return kmip.OperationCheck }

func handleCheck(ctx context.Context, s *session, req *checkRequest) (kmip.OperationPayload, error) {
	id, err := s.id(req.UniqueIdentifier)
	if err != nil {
		return nil, err
	}
	r := engine.CheckRequest{ID: id, UsageLimitsCount: req.UsageLimitsCount, LeaseTime: req.LeaseTime}
	if req.CryptographicUsageMask != nil {
		m := engine.UsageMask(*req.CryptographicUsageMask)
		r.UsageMask = &m
	}
	o, err := s.eng.Check(ctx, s.p, r)
	if err != nil {
		return nil, err
	}
	return &checkResponse{UniqueIdentifier: o.ID}, nil
}

// getUsageAllocationRequest is the Get Usage Allocation payload with the
// count optional, so that its absence is answered as Missing Data.
type getUsageAllocationRequest struct {
	UniqueIdentifier string `ttlv:",omitempty"`
	UsageLimitsCount *int64
}

func handleGetUsageAllocation(ctx context.Context, s *session, req *getUsageAllocationRequest) (kmip.OperationPayload, error) {
	id, err := s.id(req.UniqueIdentifier)
	if err != nil {
		return nil, err
	}
	if req.UsageLimitsCount == nil {
		return nil, errReason(kmip.ResultReasonMissingData, "Get Usage Allocation needs a Usage Limits Count")
	}
	o, err := s.eng.GetUsageAllocation(ctx, s.p, id, *req.UsageLimitsCount)
	if err != nil {
		return nil, err
	}
	return &payloads.GetUsageAllocationResponsePayload{UniqueIdentifier: o.ID}, nil
}

func handleObtainLease(ctx context.Context, s *session, req *payloads.ObtainLeaseRequestPayload) (kmip.OperationPayload, error) {
	id, err := s.id(req.UniqueIdentifier)
	if err != nil {
		return nil, err
	}
	res, err := s.eng.ObtainLease(ctx, s.p, id)
	if err != nil {
		return nil, err
	}
	return &payloads.ObtainLeaseResponsePayload{UniqueIdentifier: res.Object.ID, LeaseTime: res.LeaseTime, LastChangeDate: res.LastChangeDate}, nil
}
