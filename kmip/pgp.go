package kmip

import (
	"context"

	"github.com/minikms/minikms/engine"
	"github.com/ovh/kmip-go"
	"github.com/ovh/kmip-go/payloads"
)

// registerPGPKey serves Register of a PGP Key object: the key block is
// kept as given (Raw or Opaque) with its PGP Key Version.
func (s *session) registerPGPKey(ctx context.Context, o *kmip.PGPKey, tmpl []string, attrs []engine.Attribute) (kmip.OperationPayload, error) {
	if o.PGPKeyVersion < 0 {
		return nil, errReason(kmip.ResultReasonInvalidField, "PGP Key Version is negative")
	}
	if o.KeyBlock.KeyFormatType != kmip.KeyFormatTypeRaw && o.KeyBlock.KeyFormatType != kmip.KeyFormatTypeOpaque {
		return nil, errReason(kmip.ResultReasonKeyFormatTypeNotSupported, "PGP keys are registered in Raw or Opaque key format")
	}
	if o.KeyBlock.KeyCompressionType != 0 {
		return nil, errReason(kmip.ResultReasonKeyCompressionTypeNotSupported, "PGP key blocks are kept as given, without key compression")
	}
	b, f, err := keyBytes(&o.KeyBlock, false)
	if err != nil {
		return nil, err
	}
	defer clear(b)
	obj, err := s.eng.RegisterPGPKey(ctx, s.p, engine.RegisterRequest{
		Type: engine.TypePGPKey, Attrs: attrs, Templates: tmpl,
		Material:  engine.Material{Format: f, DataType: uint32(o.PGPKeyVersion), Bytes: b},
		Algorithm: engine.Algorithm(o.KeyBlock.CryptographicAlgorithm), Length: o.KeyBlock.CryptographicLength,
	})
	if err != nil {
		return nil, err
	}
	s.setPlaceholder(obj.ID)
	return &payloads.RegisterResponsePayload{UniqueIdentifier: obj.ID}, nil
}

// pgpKeyObject builds the PGP Key object Get returns: the key block as
// registered; no other format.
func pgpKeyObject(o *engine.Object, m engine.Material, format kmip.KeyFormatType) (kmip.Object, error) {
	kf := kmip.KeyFormatTypeRaw
	if m.Format == engine.FormatOpaque {
		kf = kmip.KeyFormatTypeOpaque
	}
	if format != 0 && format != kf {
		return nil, errReason(kmip.ResultReasonKeyFormatTypeNotSupported, "a PGP key is served in the key format it was registered in")
	}
	b := m.Bytes
	return &kmip.PGPKey{
		PGPKeyVersion: int32(m.DataType),
		KeyBlock: kmip.KeyBlock{
			KeyFormatType:          kf,
			KeyValue:               &kmip.KeyValue{Plain: &kmip.PlainKeyValue{KeyMaterial: kmip.KeyMaterial{Bytes: &b}}},
			CryptographicAlgorithm: kmip.CryptographicAlgorithm(o.Attrs.Algorithm()),
			CryptographicLength:    o.Attrs.Length(),
		},
	}, nil
}
