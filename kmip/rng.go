package kmip

import (
	"context"

	"github.com/ovh/kmip-go"
)

var (
	_ = addHandler(kmip.OperationRNGRetrieve, route(handleRNGRetrieve))
	_ = addHandler(kmip.OperationRNGSeed, route(handleRNGSeed))
)

// rngRetrieveRequest is the KMIP RNG Retrieve request payload (the codec
// has none).
type rngRetrieveRequest struct {
	DataLength *int32
}

type rngRetrieveResponse struct {
	Data []byte
}

func (*rngRetrieveResponse) Operation() kmip.Operation { return kmip.OperationRNGRetrieve }

// rngSeedRequest is the KMIP RNG Seed request payload.
type rngSeedRequest struct {
	Data []byte `ttlv:",omitempty"`
}

type rngSeedResponse struct {
	DataLength int32
}

func (*rngSeedResponse) Operation() kmip.Operation { return kmip.OperationRNGSeed }

func handleRNGRetrieve(ctx context.Context, s *session, req *rngRetrieveRequest) (kmip.OperationPayload, error) {
	if req.DataLength == nil {
		return nil, errReason(kmip.ResultReasonMissingData, "RNG Retrieve needs a Data Length")
	}
	b, err := s.eng.RNGRetrieve(ctx, s.p, *req.DataLength)
	if err != nil {
		return nil, err
	}
	s.scrubLater(b)
	return &rngRetrieveResponse{Data: b}, nil
}

// handleRNGSeed accepts a seed and answers how much of it the server's
// generator took: none (see engine.RNGSeed).
func handleRNGSeed(ctx context.Context, s *session, req *rngSeedRequest) (kmip.OperationPayload, error) {
	if req.Data == nil {
		return nil, errReason(kmip.ResultReasonMissingData, "RNG Seed needs Data")
	}
	n, err := s.eng.RNGSeed(ctx, s.p, req.Data)
	if err != nil {
		return nil, err
	}
	return &rngSeedResponse{DataLength: n}, nil
}
