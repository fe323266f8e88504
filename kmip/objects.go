package kmip

import (
	"crypto/sha256"
	"reflect"
	"slices"

	"github.com/minikms/minikms/engine"
	"github.com/ovh/kmip-go"
	"github.com/ovh/kmip-go/ttlv"
)

// digestBytes is the Digest of key bytes in a byte-string format.
func digestBytes(b []byte, format uint32) engine.Digest {
	sum := sha256.Sum256(b)
	return engine.Digest{HashingAlgorithm: engine.HashSHA256, DigestValue: sum[:], KeyFormatType: format}
}

// structuredDigest is the Digest of a key registered in a structured
// (Transparent) format: SHA-256 over the TTLV encoding of its Key Material,
// with that format named (KMIP 1.4 §3.17).
func structuredDigest(kb *kmip.KeyBlock) *engine.Digest {
	e := ttlv.NewTTLVEncoder()
	e.TagAny(kmip.TagKeyMaterial, &kb.KeyValue.Plain.KeyMaterial)
	enc := e.Bytes()
	sum := sha256.Sum256(enc)
	clear(enc)
	return &engine.Digest{HashingAlgorithm: engine.HashSHA256, DigestValue: sum[:], KeyFormatType: uint32(kb.KeyFormatType)}
}

// templateObject builds the KMIP Template of a template's content.
func templateObject(content []engine.Attribute, v kmip.ProtocolVersion) (*kmip.Template, error) {
	attrs, err := toWireAttrs(content, v)
	if err != nil {
		return nil, err
	}
	return &kmip.Template{Attribute: attrs}, nil
}

// convertValue converts *src into *dst (both pointers).
func convertValue(dst, src any) error {
	return convert(reflect.ValueOf(dst).Elem(), reflect.ValueOf(src).Elem())
}

func sortOps(ops []kmip.Operation) { slices.Sort(ops) }

// keyBytes extracts the bytes of a key block in Raw, Opaque or Transparent
// Symmetric Key format.
func keyBytes(kb *kmip.KeyBlock, allowTransparent bool) ([]byte, engine.MaterialFormat, error) {
	if kb.KeyWrappingData != nil {
		return nil, 0, errReason(kmip.ResultReasonFeatureNotSupported, "registering wrapped key material is not supported yet")
	}
	if kb.KeyValue == nil {
		return nil, 0, errReason(kmip.ResultReasonMissingData, "the key block has no Key Value")
	}
	if kb.KeyValue.Plain == nil {
		return nil, 0, errReason(kmip.ResultReasonInvalidField, "the Key Value is wrapped but no Key Wrapping Data is given")
	}
	if len(kb.KeyValue.Plain.Attribute) > 0 {
		return nil, 0, errReason(kmip.ResultReasonFeatureNotSupported, "attributes inside a Key Value are not supported; put them in the Template-Attribute")
	}
	km := kb.KeyValue.Plain.KeyMaterial
	switch kb.KeyFormatType {
	case kmip.KeyFormatTypeRaw, kmip.KeyFormatTypeOpaque:
		if km.Bytes == nil {
			return nil, 0, errReason(kmip.ResultReasonMissingData, "the key block has no Key Material")
		}
		f := engine.FormatRaw
		if kb.KeyFormatType == kmip.KeyFormatTypeOpaque {
			f = engine.FormatOpaque
		}
		return slices.Clone(*km.Bytes), f, nil
	case kmip.KeyFormatTypeTransparentSymmetricKey:
		if !allowTransparent || km.TransparentSymmetricKey == nil {
			break
		}
		return slices.Clone(km.TransparentSymmetricKey.Key), engine.FormatRaw, nil
	}
	return nil, 0, errReason(kmip.ResultReasonKeyFormatTypeNotSupported, "this key format type is not supported for this object type")
}

// materialFromObject fills the material of a Register request.
func materialFromObject(obj kmip.Object, r *engine.RegisterRequest) error {
	switch o := obj.(type) {
	case *kmip.SymmetricKey:
		b, f, err := keyBytes(&o.KeyBlock, true)
		if err != nil {
			return err
		}
		if f != engine.FormatRaw {
			clear(b)
			return errReason(kmip.ResultReasonKeyFormatTypeNotSupported, "symmetric keys are registered in Raw or Transparent Symmetric Key format")
		}
		r.Material = engine.Material{Format: engine.FormatRaw, Bytes: b}
		r.Algorithm = engine.Algorithm(o.KeyBlock.CryptographicAlgorithm)
		r.Length = o.KeyBlock.CryptographicLength
		if o.KeyBlock.KeyFormatType == kmip.KeyFormatTypeTransparentSymmetricKey {
			r.Digest = structuredDigest(&o.KeyBlock)
		}
	case *kmip.SecretData:
		if o.SecretDataType != kmip.SecretDataTypePassword && o.SecretDataType != kmip.SecretDataTypeSeed {
			return errReason(kmip.ResultReasonInvalidField, "Secret Data Type is not Password or Seed")
		}
		b, f, err := keyBytes(&o.KeyBlock, false)
		if err != nil {
			return err
		}
		r.Material = engine.Material{Format: f, DataType: uint32(o.SecretDataType), Bytes: b}
	case *kmip.OpaqueObject:
		r.Material = engine.Material{Format: engine.FormatRaw, DataType: uint32(o.OpaqueDataType), Bytes: slices.Clone(o.OpaqueDataValue)}
	case *kmip.PublicKey, *kmip.PrivateKey, *kmip.Certificate:
		return asymmetricMaterial(obj, r)
	case *kmip.Template:
		attrs, err := toEngineAttrs(o.Attribute)
		if err != nil {
			return err
		}
		r.TemplateContent = attrs
	}
	return nil
}

// objectFromMaterial builds the KMIP object Get returns, in the requested
// key format (0 = the default for the object).
// The object aliases m.Bytes.
func objectFromMaterial(o *engine.Object, m engine.Material, format kmip.KeyFormatType, v kmip.ProtocolVersion, scrub func([]byte)) (kmip.Object, error) {
	if obj, ok, err := extendedObject(o, m, format); ok {
		return obj, err // mdo.go: split keys, PGP keys, metadata-only keys
	}
	b := m.Bytes
	switch o.Type {
	case engine.TypeSymmetricKey:
		kb := kmip.KeyBlock{
			CryptographicAlgorithm: kmip.CryptographicAlgorithm(o.Attrs.Algorithm()),
			CryptographicLength:    o.Attrs.Length(),
		}
		switch format {
		case 0, kmip.KeyFormatTypeRaw:
			kb.KeyFormatType = kmip.KeyFormatTypeRaw
			kb.KeyValue = &kmip.KeyValue{Plain: &kmip.PlainKeyValue{KeyMaterial: kmip.KeyMaterial{Bytes: &b}}}
		case kmip.KeyFormatTypeTransparentSymmetricKey:
			kb.KeyFormatType = format
			kb.KeyValue = &kmip.KeyValue{Plain: &kmip.PlainKeyValue{KeyMaterial: kmip.KeyMaterial{TransparentSymmetricKey: &kmip.TransparentSymmetricKey{Key: b}}}}
		default:
			return nil, errReason(kmip.ResultReasonKeyFormatTypeNotSupported, "symmetric keys are available in Raw and Transparent Symmetric Key formats")
		}
		return &kmip.SymmetricKey{KeyBlock: kb}, nil
	case engine.TypeSecretData:
		kf := kmip.KeyFormatTypeRaw
		if m.Format == engine.FormatOpaque {
			kf = kmip.KeyFormatTypeOpaque
		}
		switch format {
		case 0:
		case kmip.KeyFormatTypeRaw, kmip.KeyFormatTypeOpaque:
			kf = format
		default:
			return nil, errReason(kmip.ResultReasonKeyFormatTypeNotSupported, "secret data is available in Raw and Opaque formats")
		}
		return &kmip.SecretData{
			SecretDataType: kmip.SecretDataType(m.DataType),
			KeyBlock:       kmip.KeyBlock{KeyFormatType: kf, KeyValue: &kmip.KeyValue{Plain: &kmip.PlainKeyValue{KeyMaterial: kmip.KeyMaterial{Bytes: &b}}}},
		}, nil
	case engine.TypePublicKey:
		return publicKeyObject(o, m, format, v)
	case engine.TypePrivateKey:
		return privateKeyObject(o, m, format, v, scrub)
	case engine.TypeCertificate:
		if format != 0 && format != kmip.KeyFormatTypeX_509 {
			return nil, errReason(kmip.ResultReasonKeyFormatTypeNotSupported, "certificates are available as X.509")
		}
		return &kmip.Certificate{CertificateType: kmip.CertificateTypeX_509, CertificateValue: b}, nil
	case engine.TypeOpaqueObject:
		if format != 0 {
			return nil, errReason(kmip.ResultReasonKeyFormatTypeNotSupported, "opaque objects have no key format")
		}
		return &kmip.OpaqueObject{OpaqueDataType: kmip.OpaqueDataType(m.DataType), OpaqueDataValue: b}, nil
	}
	return nil, errReason(kmip.ResultReasonFeatureNotSupported, "Get of this object type is not supported")
}
