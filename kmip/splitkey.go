package kmip

import (
	"context"
	"math/big"
	"slices"

	"github.com/minikms/minikms/engine"
	"github.com/ovh/kmip-go"
	"github.com/ovh/kmip-go/payloads"
)

var (
	_ = addHandler(kmip.OperationCreateSplitKey, route(handleCreateSplitKey))
	_ = addHandler(kmip.OperationJoinSplitKey, route(handleJoinSplitKey))
)

// createSplitKeyRequest is the KMIP Create Split Key request payload
// (KMIP 1.4 §4.38; the codec has none).
type createSplitKeyRequest struct {
	ObjectType        kmip.ObjectType     `ttlv:",omitempty"`
	UniqueIdentifier  string              `ttlv:",omitempty"`
	SplitKeyParts     int32               `ttlv:",omitempty"`
	SplitKeyThreshold int32               `ttlv:",omitempty"`
	SplitKeyMethod    kmip.SplitKeyMethod `ttlv:",omitempty"`
	PrimeFieldSize    *big.Int
	TemplateAttribute *kmip.TemplateAttribute
}

type createSplitKeyResponse struct {
	UniqueIdentifier []string
}

func (*createSplitKeyResponse) Operation() kmip.Operation { return kmip.OperationCreateSplitKey }

// joinSplitKeyRequest is the KMIP Join Split Key request payload (KMIP 1.4 §4.39).
type joinSplitKeyRequest struct {
	ObjectType        kmip.ObjectType `ttlv:",omitempty"`
	UniqueIdentifier  []string
	TemplateAttribute *kmip.TemplateAttribute
}

type joinSplitKeyResponse struct {
	UniqueIdentifier string
}

func (*joinSplitKeyResponse) Operation() kmip.Operation { return kmip.OperationJoinSplitKey }

func handleCreateSplitKey(ctx context.Context, s *session, req *createSplitKeyRequest) (kmip.OperationPayload, error) {
	if req.ObjectType == 0 {
		return nil, errReason(kmip.ResultReasonMissingData, "Create Split Key needs the Object Type (Split Key)")
	}
	tmpl, attrs, err := templateAttrs(req.TemplateAttribute)
	if err != nil {
		return nil, err
	}
	// The key to split: the one named, else the ID Placeholder an earlier
	// item of the batch left; with neither, the server generates a key.
	id := req.UniqueIdentifier
	if id == "" {
		id = s.placeholder
	}
	objs, err := s.eng.CreateSplitKey(ctx, s.p, engine.CreateSplitKeyRequest{
		Type: engine.ObjectType(req.ObjectType), BaseID: id,
		Parts: req.SplitKeyParts, Threshold: req.SplitKeyThreshold,
		Method: engine.SplitKeyMethod(req.SplitKeyMethod), PrimeFieldSize: req.PrimeFieldSize,
		Attrs: attrs, Templates: tmpl,
	})
	if err != nil {
		return nil, err
	}
	resp := &createSplitKeyResponse{UniqueIdentifier: make([]string, len(objs))}
	for i, o := range objs {
		resp.UniqueIdentifier[i] = o.ID
	}
	return resp, nil
}

func handleJoinSplitKey(ctx context.Context, s *session, req *joinSplitKeyRequest) (kmip.OperationPayload, error) {
	if req.ObjectType == 0 {
		return nil, errReason(kmip.ResultReasonMissingData, "Join Split Key needs the Object Type of the new object")
	}
	tmpl, attrs, err := templateAttrs(req.TemplateAttribute)
	if err != nil {
		return nil, err
	}
	ids := req.UniqueIdentifier
	if len(ids) == 0 && s.placeholder != "" {
		ids = []string{s.placeholder}
	}
	o, err := s.eng.JoinSplitKey(ctx, s.p, engine.JoinSplitKeyRequest{
		Type: engine.ObjectType(req.ObjectType), IDs: ids, Attrs: attrs, Templates: tmpl,
	})
	if err != nil {
		return nil, err
	}
	s.setPlaceholder(o.ID)
	return &joinSplitKeyResponse{UniqueIdentifier: o.ID}, nil
}

// registerSplitKey serves Register of a Split Key object.
func (s *session) registerSplitKey(ctx context.Context, o *kmip.SplitKey, tmpl []string, attrs []engine.Attribute) (kmip.OperationPayload, error) {
	if o.KeyBlock.KeyFormatType != kmip.KeyFormatTypeRaw {
		return nil, errReason(kmip.ResultReasonKeyFormatTypeNotSupported, "split keys are registered in Raw key format")
	}
	share, _, err := keyBytes(&o.KeyBlock, false)
	if err != nil {
		return nil, err
	}
	defer clear(share)
	in := engine.SplitKeyInfo{
		Parts: o.SplitKeyParts, PartID: o.KeyPartIdentifier, Threshold: o.SplitKeyThreshold,
		Method: engine.SplitKeyMethod(o.SplitKeyMethod), PrimeFieldSize: o.PrimeFieldSize,
	}
	obj, err := s.eng.RegisterSplitKey(ctx, s.p, engine.RegisterRequest{
		Type: engine.TypeSplitKey, Attrs: attrs, Templates: tmpl,
		Algorithm: engine.Algorithm(o.KeyBlock.CryptographicAlgorithm), Length: o.KeyBlock.CryptographicLength,
	}, in, share)
	if err != nil {
		return nil, err
	}
	s.setPlaceholder(obj.ID)
	return &payloads.RegisterResponsePayload{UniqueIdentifier: obj.ID}, nil
}

// splitKeyObject builds the Split Key object Get returns (Raw only).
func splitKeyObject(o *engine.Object, m engine.Material, format kmip.KeyFormatType) (kmip.Object, error) {
	if format != 0 && format != kmip.KeyFormatTypeRaw {
		return nil, errReason(kmip.ResultReasonKeyFormatTypeNotSupported, "split keys are available in Raw key format")
	}
	in, share, err := engine.DecodeSplitKey(m)
	if err != nil {
		return nil, err
	}
	b := slices.Clip(share)
	return &kmip.SplitKey{
		SplitKeyParts: in.Parts, KeyPartIdentifier: in.PartID, SplitKeyThreshold: in.Threshold,
		SplitKeyMethod: kmip.SplitKeyMethod(in.Method), PrimeFieldSize: in.PrimeFieldSize,
		KeyBlock: kmip.KeyBlock{
			KeyFormatType:          kmip.KeyFormatTypeRaw,
			KeyValue:               &kmip.KeyValue{Plain: &kmip.PlainKeyValue{KeyMaterial: kmip.KeyMaterial{Bytes: &b}}},
			CryptographicAlgorithm: kmip.CryptographicAlgorithm(o.Attrs.Algorithm()),
			CryptographicLength:    o.Attrs.Length(),
		},
	}, nil
}
