package kmip

import (
	"context"

	"github.com/minikms/minikms/engine"
	"github.com/ovh/kmip-go"
	"github.com/ovh/kmip-go/payloads"
)

// registerExtended serves Register of the objects handleRegister leaves
// to other files: Split Keys (splitkey.go), PGP Keys (pgp.go) and
// metadata-only keys, whose Key Block has no Key Value (this file). ok
// is false for every other object.
func (s *session) registerExtended(ctx context.Context, req *payloads.RegisterRequestPayload, tmpl []string, attrs []engine.Attribute) (kmip.OperationPayload, bool, error) {
	if kb := keyBlockOf(req.Object); kb != nil && kb.KeyValue == nil && kb.KeyWrappingData == nil {
		p, err := s.registerMetadataOnly(ctx, req, kb, tmpl, attrs)
		return p, true, err
	}
	switch o := req.Object.(type) {
	case *kmip.SplitKey:
		p, err := s.registerSplitKey(ctx, o, tmpl, attrs)
		return p, true, err
	case *kmip.PGPKey:
		if o.KeyBlock.KeyValue == nil {
			return nil, true, errReason(kmip.ResultReasonFeatureNotSupported, "metadata-only registration is supported for symmetric keys")
		}
		if o.KeyBlock.KeyWrappingData != nil {
			return nil, true, errReason(kmip.ResultReasonFeatureNotSupported, "registering a wrapped PGP key is not supported")
		}
		p, err := s.registerPGPKey(ctx, o, tmpl, attrs)
		return p, true, err
	}
	return nil, false, nil
}

// extendedObject builds the object Get returns for Split Keys, PGP Keys
// and metadata-only keys; ok is false for every other object.
func extendedObject(o *engine.Object, m engine.Material, format kmip.KeyFormatType) (kmip.Object, bool, error) {
	switch {
	case engine.IsMetadataOnly(o):
		obj, err := metadataOnlyObject(o, format)
		return obj, true, err
	case o.Type == engine.TypeSplitKey:
		obj, err := splitKeyObject(o, m, format)
		return obj, true, err
	case o.Type == engine.TypePGPKey:
		obj, err := pgpKeyObject(o, m, format)
		return obj, true, err
	}
	return nil, false, nil
}

// registerMetadataOnly registers a key without its value.
func (s *session) registerMetadataOnly(ctx context.Context, req *payloads.RegisterRequestPayload, kb *kmip.KeyBlock, tmpl []string, attrs []engine.Attribute) (kmip.OperationPayload, error) {
	if _, ok := req.Object.(*kmip.SymmetricKey); !ok {
		return nil, errReason(kmip.ResultReasonFeatureNotSupported, "metadata-only registration is supported for symmetric keys")
	}
	switch kb.KeyFormatType {
	case kmip.KeyFormatTypeRaw, kmip.KeyFormatTypeTransparentSymmetricKey:
	default:
		return nil, errReason(kmip.ResultReasonKeyFormatTypeNotSupported, "symmetric keys are registered in Raw or Transparent Symmetric Key format")
	}
	o, err := s.eng.RegisterMetadataOnly(ctx, s.p, engine.RegisterRequest{
		Type: engine.ObjectType(req.ObjectType), Attrs: attrs, Templates: tmpl,
		Algorithm: engine.Algorithm(kb.CryptographicAlgorithm), Length: kb.CryptographicLength,
	})
	if err != nil {
		return nil, err
	}
	s.setPlaceholder(o.ID)
	return &payloads.RegisterResponsePayload{UniqueIdentifier: o.ID}, nil
}

// metadataOnlyObject is the Key Block of a metadata-only key: format,
// algorithm and length, no Key Value.
func metadataOnlyObject(o *engine.Object, format kmip.KeyFormatType) (kmip.Object, error) {
	if o.Type != engine.TypeSymmetricKey {
		return nil, errReason(kmip.ResultReasonFeatureNotSupported, "Get of this metadata-only object is not supported")
	}
	switch format {
	case 0:
		format = kmip.KeyFormatTypeRaw
	case kmip.KeyFormatTypeRaw, kmip.KeyFormatTypeTransparentSymmetricKey:
	default:
		return nil, errReason(kmip.ResultReasonKeyFormatTypeNotSupported, "symmetric keys are available in Raw and Transparent Symmetric Key formats")
	}
	return &kmip.SymmetricKey{KeyBlock: kmip.KeyBlock{
		KeyFormatType:          format,
		CryptographicAlgorithm: kmip.CryptographicAlgorithm(o.Attrs.Algorithm()),
		CryptographicLength:    o.Attrs.Length(),
	}}, nil
}
