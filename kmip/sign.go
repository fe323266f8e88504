package kmip

import (
	"context"

	"github.com/minikms/minikms/engine"
	"github.com/ovh/kmip-go"
	"github.com/ovh/kmip-go/payloads"
)

// Sign and Signature Verify (KMIP 1.2+; engine/sign.go has the rules).

var (
	_ = addHandler(kmip.OperationSign, route(handleSign))
	_ = addHandler(kmip.OperationSignatureVerify, route(handleSignatureVerify))
)

func handleSign(ctx context.Context, s *session, req *payloads.SignRequestPayload) (kmip.OperationPayload, error) {
	id, err := s.id(req.UniqueIdentifier)
	if err != nil {
		return nil, err
	}
	if req.CorrelationValue != nil || req.InitIndicator != nil || req.FinalIndicator != nil {
		return nil, errReason(kmip.ResultReasonFeatureNotSupported, "streaming (multi-part) signing is not supported")
	}
	params, err := cryptoParams(req.CryptographicParameters)
	if err != nil {
		return nil, err
	}
	o, sig, err := s.eng.Sign(ctx, s.p, engine.SignRequest{ID: id, Params: params, Data: req.Data, DigestedData: req.DigestedData})
	if err != nil {
		return nil, err
	}
	return &payloads.SignResponsePayload{UniqueIdentifier: o.ID, SignatureData: sig}, nil
}

func handleSignatureVerify(ctx context.Context, s *session, req *payloads.SignatureVerifyRequestPayload) (kmip.OperationPayload, error) {
	id, err := s.id(req.UniqueIdentifier)
	if err != nil {
		return nil, err
	}
	if req.CorrelationValue != nil || req.InitIndicator != nil || req.FinalIndicator != nil {
		return nil, errReason(kmip.ResultReasonFeatureNotSupported, "streaming (multi-part) signature verification is not supported")
	}
	params, err := cryptoParams(req.CryptographicParameters)
	if err != nil {
		return nil, err
	}
	o, valid, err := s.eng.SignatureVerify(ctx, s.p, engine.VerifyRequest{ID: id, Params: params, Data: req.Data, DigestedData: req.DigestedData, Signature: req.SignatureData})
	if err != nil {
		return nil, err
	}
	vi := kmip.ValidityIndicatorInvalid
	if valid {
		vi = kmip.ValidityIndicatorValid
	}
	return &payloads.SignatureVerifyResponsePayload{UniqueIdentifier: o.ID, ValidityIndicator: vi}, nil
}
