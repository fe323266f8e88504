package kmip

import (
	"context"

	"github.com/minikms/minikms/engine"
	"github.com/ovh/kmip-go"
	"github.com/ovh/kmip-go/payloads"
)

var (
	_ = addHandler(kmip.OperationMAC, route(handleMAC))
	_ = addHandler(kmip.OperationMACVerify, route(handleMACVerify))
	_ = addHandler(kmip.OperationHash, route(handleHash))
)

// macRequest is the KMIP MAC request payload (the codec has none).
type macRequest struct {
	UniqueIdentifier        string `ttlv:",omitempty"`
	CryptographicParameters *kmip.CryptographicParameters
	Data                    []byte `ttlv:",omitempty"`
	CorrelationValue        []byte `ttlv:",omitempty"`
	InitIndicator           *bool
	FinalIndicator          *bool
}

type macResponse struct {
	UniqueIdentifier string
	MACData          []byte
}

func (*macResponse) Operation() kmip.Operation { return kmip.OperationMAC }

// macVerifyRequest is the KMIP MAC Verify request payload.
type macVerifyRequest struct {
	UniqueIdentifier        string `ttlv:",omitempty"`
	CryptographicParameters *kmip.CryptographicParameters
	Data                    []byte `ttlv:",omitempty"`
	MACData                 []byte `ttlv:",omitempty"`
	CorrelationValue        []byte `ttlv:",omitempty"`
	InitIndicator           *bool
	FinalIndicator          *bool
}

type macVerifyResponse struct {
	UniqueIdentifier  string
	ValidityIndicator kmip.ValidityIndicator
}

func (*macVerifyResponse) Operation() kmip.Operation { return kmip.OperationMACVerify }

// errStreaming answers a multi-part (streaming) request.
func errStreaming(op string) error {
	return errReason(kmip.ResultReasonFeatureNotSupported, "streaming (multi-part) "+op+" is not supported: send the whole data in one request, without Correlation Value, Init Indicator or Final Indicator")
}

func handleMAC(ctx context.Context, s *session, req *macRequest) (kmip.OperationPayload, error) {
	if req.CorrelationValue != nil || req.InitIndicator != nil || req.FinalIndicator != nil {
		return nil, errStreaming("MAC")
	}
	id, err := s.id(req.UniqueIdentifier)
	if err != nil {
		return nil, err
	}
	if req.Data == nil {
		return nil, errReason(kmip.ResultReasonMissingData, "MAC needs Data")
	}
	params, err := cryptoParams(req.CryptographicParameters)
	if err != nil {
		return nil, err
	}
	res, err := s.eng.MAC(ctx, s.p, engine.MACRequest{ID: id, Params: params, Data: req.Data})
	if err != nil {
		return nil, err
	}
	return &macResponse{UniqueIdentifier: res.Object.ID, MACData: res.MAC}, nil
}

func handleMACVerify(ctx context.Context, s *session, req *macVerifyRequest) (kmip.OperationPayload, error) {
	if req.CorrelationValue != nil || req.InitIndicator != nil || req.FinalIndicator != nil {
		return nil, errStreaming("MAC verification")
	}
	id, err := s.id(req.UniqueIdentifier)
	if err != nil {
		return nil, err
	}
	if req.Data == nil {
		return nil, errReason(kmip.ResultReasonMissingData, "MAC Verify needs Data")
	}
	if req.MACData == nil {
		return nil, errReason(kmip.ResultReasonMissingData, "MAC Verify needs MAC Data")
	}
	params, err := cryptoParams(req.CryptographicParameters)
	if err != nil {
		return nil, err
	}
	o, valid, err := s.eng.MACVerify(ctx, s.p, engine.MACRequest{ID: id, Params: params, Data: req.Data, MAC: req.MACData})
	if err != nil {
		return nil, err
	}
	resp := &macVerifyResponse{UniqueIdentifier: o.ID, ValidityIndicator: kmip.ValidityIndicatorInvalid}
	if valid {
		resp.ValidityIndicator = kmip.ValidityIndicatorValid
	}
	return resp, nil
}

// hashRequest is the KMIP Hash request payload, with the parameters
// optional so that their absence is answered as Missing Data.
type hashRequest struct {
	CryptographicParameters *kmip.CryptographicParameters
	Data                    []byte `ttlv:",omitempty"`
	CorrelationValue        []byte `ttlv:",omitempty"`
	InitIndicator           *bool
	FinalIndicator          *bool
}

func handleHash(ctx context.Context, s *session, req *hashRequest) (kmip.OperationPayload, error) {
	if req.CorrelationValue != nil || req.InitIndicator != nil || req.FinalIndicator != nil {
		return nil, errStreaming("hashing")
	}
	if req.Data == nil {
		return nil, errReason(kmip.ResultReasonMissingData, "Hash needs Data")
	}
	params, err := cryptoParams(req.CryptographicParameters)
	if err != nil {
		return nil, err
	}
	sum, err := s.eng.Hash(ctx, s.p, params, req.Data)
	if err != nil {
		return nil, err
	}
	return &payloads.HashResponsePayload{Data: sum}, nil
}
