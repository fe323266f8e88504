package kmip

import (
	"context"
	"encoding/binary"
	"slices"

	"github.com/minikms/minikms/engine"
	"github.com/ovh/kmip-go"
	"github.com/ovh/kmip-go/payloads"
	"github.com/ovh/kmip-go/ttlv"
)

// Key wrapping on the wire: Get with a Key Wrapping Specification or a Key
// Wrap Type (KMIP 1.4), and Register of a Key Block with Key Wrapping
// Data. The engine (keywrap.go there) checks the keys and wraps; this
// layer decides what is wrapped:
//   - Encoding Option No Encoding: the Key Material byte string alone (a
//     structured Key Material, or attributes, cannot be wrapped so);
//   - TTLV Encoding (the default): the TTLV encoding of the Key Value
//     structure, with the attributes the specification names.

// encodingError is the reason for a bad Encoding Option: Encoding Option
// Error from KMIP 1.1 (which introduced the option), Invalid Field before.
func (s *session) encodingError(msg string) error {
	if s.version.Major() == 1 && s.version.Minor() < 1 {
		return errReason(kmip.ResultReasonInvalidField, msg)
	}
	return errReason(kmip.ResultReasonEncodingOptionError, msg)
}

// checkEncoding validates an Encoding Option (0: absent, TTLV).
func (s *session) checkEncoding(e kmip.EncodingOption) error {
	switch e {
	case 0, kmip.EncodingOptionNoEncoding, kmip.EncodingOptionTTLVEncoding:
		return nil
	}
	return s.encodingError("the Encoding Option is neither No Encoding nor TTLV Encoding")
}

// keyBlockOf returns the Key Block of a key object, or nil.
func keyBlockOf(obj kmip.Object) *kmip.KeyBlock {
	switch o := obj.(type) {
	case *kmip.SymmetricKey:
		return &o.KeyBlock
	case *kmip.SecretData:
		return &o.KeyBlock
	case *kmip.PrivateKey:
		return &o.KeyBlock
	case *kmip.PublicKey:
		return &o.KeyBlock
	case *kmip.SplitKey:
		return &o.KeyBlock
	}
	return nil
}

// wrappingParams converts resolved engine parameters for the response.
func wrappingParams(p engine.CryptographicParameters) (*kmip.CryptographicParameters, error) {
	var out kmip.CryptographicParameters
	if err := convertValue(&out, &p); err != nil {
		return nil, err
	}
	return &out, nil
}

// getWrapped serves a Get with a Key Wrapping Specification or a Key Wrap
// Type.
func (s *session) getWrapped(ctx context.Context, id string, req *payloads.GetRequestPayload) (kmip.OperationPayload, error) {
	spec := req.KeyWrappingSpecification
	switch req.KeyWrapType {
	case 0:
	case kmip.NotWrapped:
		if spec != nil {
			return nil, errReason(kmip.ResultReasonInvalidField, "Key Wrap Type Not Wrapped contradicts the Key Wrapping Specification")
		}
		plain := *req
		plain.UniqueIdentifier, plain.KeyWrapType = id, 0
		return handleGet(ctx, s, &plain)
	case kmip.AsRegistered:
		if spec != nil {
			return nil, errReason(kmip.ResultReasonInvalidField, "Key Wrap Type As Registered contradicts the Key Wrapping Specification")
		}
		return s.getAsRegistered(ctx, id, req)
	default:
		return nil, errReason(kmip.ResultReasonInvalidField, "the Key Wrap Type is neither Not Wrapped nor As Registered")
	}
	if err := s.checkEncoding(spec.EncodingOption); err != nil {
		return nil, err
	}
	noEncoding := spec.EncodingOption == kmip.EncodingOptionNoEncoding
	if noEncoding && len(spec.AttributeName) > 0 {
		return nil, s.encodingError("No Encoding wraps the Key Material alone; attributes are wrapped with TTLV Encoding")
	}
	es := engine.KeyWrapSpec{Method: engine.WrappingMethod(spec.WrappingMethod)}
	if eki := spec.EncryptionKeyInformation; eki != nil {
		es.EncryptionKeyID = eki.UniqueIdentifier
		var err error
		if es.EncryptionParams, err = cryptoParams(eki.CryptographicParameters); err != nil {
			return nil, err
		}
	}
	if mki := spec.MACSignatureKeyInformation; mki != nil {
		es.MACSignKeyID = mki.UniqueIdentifier
		if es.MACSignKeyID == "" {
			es.MACSignKeyID = "(unnamed)"
		}
	}
	names := make([]string, len(spec.AttributeName))
	for i, n := range spec.AttributeName {
		names[i] = string(n)
	}

	var obj kmip.Object
	encode := func(o *engine.Object, m engine.Material) ([]byte, error) {
		ob, err := objectFromMaterial(o, m, req.KeyFormatType, s.version, s.scrubLater)
		if err != nil {
			return nil, err
		}
		if err := s.checkCompression(o, req.KeyCompressionType); err != nil {
			return nil, err
		}
		kb := keyBlockOf(ob)
		if kb == nil || kb.KeyValue == nil || kb.KeyValue.Plain == nil {
			return nil, errReason(kmip.ResultReasonIllegalOperation, "this object has no Key Block to wrap")
		}
		obj = ob
		if noEncoding {
			km := kb.KeyValue.Plain.KeyMaterial
			if km.Bytes == nil {
				return nil, s.encodingError("the Key Material of this key format is a structure: wrap it with TTLV Encoding, or ask for a byte-string key format")
			}
			return slices.Clone(*km.Bytes), nil
		}
		if len(names) > 0 {
			_, attrs, err := s.eng.GetAttributes(ctx, s.p, o.ID, names)
			if err != nil {
				return nil, err
			}
			wire, err := toWireAttrs(attrs, s.version)
			if err != nil {
				return nil, err
			}
			kb.KeyValue.Plain.Attribute = wire
		}
		enc := ttlv.NewTTLVEncoder()
		enc.TagAny(kmip.TagKeyValue, kb.KeyValue)
		return enc.Bytes(), nil
	}
	o, wk, err := s.eng.GetWrapped(ctx, s.p, id, es, encode)
	if err != nil {
		return nil, err
	}
	kb := keyBlockOf(obj)
	wrapped := wk.Bytes
	// The plaintext Key Value (and any attributes) is dropped: only the
	// wrapped bytes leave.
	kb.KeyValue = &kmip.KeyValue{Wrapped: &wrapped}
	params := spec.EncryptionKeyInformation.CryptographicParameters
	if params == nil {
		if params, err = wrappingParams(wk.Params); err != nil {
			return nil, err
		}
	}
	kb.KeyWrappingData = &kmip.KeyWrappingData{
		WrappingMethod: spec.WrappingMethod,
		EncryptionKeyInformation: &kmip.EncryptionKeyInformation{
			UniqueIdentifier:        es.EncryptionKeyID,
			CryptographicParameters: params,
		},
		EncodingOption: spec.EncodingOption,
	}
	return &payloads.GetResponsePayload{ObjectType: kmip.ObjectType(o.Type), UniqueIdentifier: o.ID, Object: obj}, nil
}

// checkCompression applies a Get's Key Compression Type: it concerns
// elliptic-curve public keys, which this server serves uncompressed.
func (s *session) checkCompression(o *engine.Object, kct kmip.KeyCompressionType) error {
	if kct == 0 {
		return nil
	}
	ecPublic := o.Type == engine.TypePublicKey && o.Attrs.Has(engine.AttrCryptographicDomainParameters)
	if !ecPublic || kct != kmip.KeyCompressionTypeECPublicKeyTypeUncompressed {
		return errReason(kmip.ResultReasonKeyCompressionTypeNotSupported, "key compression applies to elliptic-curve public keys, served uncompressed")
	}
	return nil
}

// getAsRegistered serves Get with Key Wrap Type As Registered: a key
// registered wrapped comes back exactly as registered; any other object
// as a plain Get serves it.
func (s *session) getAsRegistered(ctx context.Context, id string, req *payloads.GetRequestPayload) (kmip.OperationPayload, error) {
	o, reg, err := s.eng.GetAsRegistered(ctx, s.p, id)
	if err != nil {
		return nil, err
	}
	if reg == nil {
		plain := *req
		plain.UniqueIdentifier, plain.KeyWrapType = o.ID, 0
		return handleGet(ctx, s, &plain)
	}
	obj, err := kmip.NewObjectForType(kmip.ObjectType(o.Type))
	if err != nil {
		return nil, err
	}
	dec, err := ttlv.NewTTLVDecoder(reg)
	if err == nil {
		err = decodeSafely(func() error { return dec.Any(&obj) })
	}
	if err != nil {
		return nil, err // our own encoding: an internal error
	}
	kb := keyBlockOf(obj)
	if kb == nil {
		return nil, errReason(kmip.ResultReasonGeneralFailure, genericFailure)
	}
	if req.KeyFormatType != 0 && req.KeyFormatType != kb.KeyFormatType {
		return nil, errReason(kmip.ResultReasonKeyFormatTypeNotSupported, "as registered, the key is in format "+ttlv.EnumStr(kb.KeyFormatType))
	}
	if req.KeyCompressionType != 0 {
		return nil, errReason(kmip.ResultReasonKeyCompressionTypeNotSupported, "a key is returned as registered, without compression")
	}
	return &payloads.GetResponsePayload{ObjectType: kmip.ObjectType(o.Type), UniqueIdentifier: o.ID, Object: obj}, nil
}

// wrappedKeyBlock returns the Key Block of a registered object when it
// carries Key Wrapping Data.
func wrappedKeyBlock(obj kmip.Object) *kmip.KeyBlock {
	if kb := keyBlockOf(obj); kb != nil && kb.KeyWrappingData != nil {
		return kb
	}
	return nil
}

// registerWrapped serves Register of a Key Block with Key Wrapping Data:
// the engine unwraps it with the named key (or, when that key may not
// unwrap, keeps a symmetric key as registered only).
func (s *session) registerWrapped(ctx context.Context, req *payloads.RegisterRequestPayload, tmpl []string, attrs []engine.Attribute, kb *kmip.KeyBlock) (kmip.OperationPayload, error) {
	switch req.Object.(type) {
	case *kmip.SymmetricKey, *kmip.SecretData, *kmip.PrivateKey, *kmip.PublicKey:
	default:
		return nil, errReason(kmip.ResultReasonFeatureNotSupported, "registering a wrapped key of this object type is not supported")
	}
	kwd := kb.KeyWrappingData
	if err := s.checkEncoding(kwd.EncodingOption); err != nil {
		return nil, err
	}
	if len(kwd.MACSignature) > 0 && kwd.WrappingMethod == kmip.WrappingMethodEncrypt {
		return nil, errReason(kmip.ResultReasonInvalidField, "a MAC/Signature does not apply to the Encrypt wrapping method")
	}
	es := engine.KeyWrapSpec{Method: engine.WrappingMethod(kwd.WrappingMethod), IV: kwd.IVCounterNonce}
	if eki := kwd.EncryptionKeyInformation; eki != nil {
		es.EncryptionKeyID = eki.UniqueIdentifier
		var err error
		if es.EncryptionParams, err = cryptoParams(eki.CryptographicParameters); err != nil {
			return nil, err
		}
	}
	if mki := kwd.MACSignatureKeyInformation; mki != nil {
		es.MACSignKeyID = mki.UniqueIdentifier
		if es.MACSignKeyID == "" {
			es.MACSignKeyID = "(unnamed)"
		}
	}
	// The wrapped bytes: a Key Value byte string, as KMIP specifies, or a
	// Key Value structure whose Key Material holds them (as some clients
	// send, and the KMIP 1.4 test cases do).
	var wrapped []byte
	switch {
	case kb.KeyValue == nil:
		return nil, errReason(kmip.ResultReasonMissingData, "the wrapped key block has no Key Value")
	case kb.KeyValue.Wrapped != nil:
		wrapped = *kb.KeyValue.Wrapped
	case kb.KeyValue.Plain != nil && kb.KeyValue.Plain.KeyMaterial.Bytes != nil && len(kb.KeyValue.Plain.Attribute) == 0:
		wrapped = *kb.KeyValue.Plain.KeyMaterial.Bytes
	default:
		return nil, errReason(kmip.ResultReasonInvalidField, "a wrapped Key Value is a byte string")
	}
	enc := ttlv.NewTTLVEncoder()
	enc.Any(req.Object)
	registered := enc.Bytes()

	er := engine.RegisterRequest{
		Type: engine.ObjectType(req.ObjectType), Attrs: attrs, Templates: tmpl,
		Algorithm: engine.Algorithm(kb.CryptographicAlgorithm), Length: kb.CryptographicLength,
		Material: engine.Material{Registered: registered},
	}
	noEncoding := kwd.EncodingOption == kmip.EncodingOptionNoEncoding
	decode := func(plain []byte, r *engine.RegisterRequest) error {
		pkb := *kb
		pkb.KeyWrappingData = nil
		if noEncoding {
			b := slices.Clone(plain)
			pkb.KeyValue = &kmip.KeyValue{Plain: &kmip.PlainKeyValue{KeyMaterial: kmip.KeyMaterial{Bytes: &b}}}
			switch pkb.KeyFormatType {
			case kmip.KeyFormatTypeRaw, kmip.KeyFormatTypeOpaque, kmip.KeyFormatTypePKCS_1, kmip.KeyFormatTypePKCS_8,
				kmip.KeyFormatTypeX_509, kmip.KeyFormatTypeECPrivateKey:
			default:
				clear(b)
				return s.encodingError("with No Encoding the wrapped Key Material is a byte string; this key format's is a structure")
			}
		} else {
			kv, err := s.decodeKeyValue(plain, pkb.KeyFormatType)
			if err != nil {
				return err
			}
			if err := mergeKeyValueAttrs(kv, r); err != nil {
				return err
			}
			pkb.KeyValue = kv
		}
		return materialFromObject(withKeyBlock(req.Object, pkb), r)
	}
	o, err := s.eng.RegisterWrapped(ctx, s.p, er, es, wrapped, decode)
	if err != nil {
		return nil, err
	}
	s.setPlaceholder(o.ID)
	return &payloads.RegisterResponsePayload{UniqueIdentifier: o.ID}, nil
}

// withKeyBlock returns a copy of a key object with another Key Block.
func withKeyBlock(obj kmip.Object, kb kmip.KeyBlock) kmip.Object {
	switch o := obj.(type) {
	case *kmip.SymmetricKey:
		return &kmip.SymmetricKey{KeyBlock: kb}
	case *kmip.SecretData:
		return &kmip.SecretData{SecretDataType: o.SecretDataType, KeyBlock: kb}
	case *kmip.PrivateKey:
		return &kmip.PrivateKey{KeyBlock: kb}
	case *kmip.PublicKey:
		return &kmip.PublicKey{KeyBlock: kb}
	}
	return obj
}

// decodeKeyValue decodes an unwrapped TTLV-encoded Key Value structure in
// the key format of its block.
func (s *session) decodeKeyValue(plain []byte, format kmip.KeyFormatType) (*kmip.KeyValue, error) {
	bad := s.encodingError("the unwrapped key is not one TTLV-encoded Key Value structure (was it wrapped with No Encoding?)")
	if len(plain) < 8 || int(plain[0])<<16|int(plain[1])<<8|int(plain[2]) != kmip.TagKeyValue || plain[3] != byte(ttlv.TypeStructure) ||
		int(binary.BigEndian.Uint32(plain[4:8])) != len(plain)-8 {
		return nil, bad
	}
	// A Key Block around it, so the codec decodes the Key Material by
	// its format.
	head := func(b []byte, tag int, typ ttlv.Type, n int) []byte {
		b = append(b, byte(tag>>16), byte(tag>>8), byte(tag), byte(typ))
		return binary.BigEndian.AppendUint32(b, uint32(n))
	}
	inner := head(make([]byte, 0, 16+len(plain)), kmip.TagKeyFormatType, ttlv.TypeEnumeration, 4)
	inner = binary.BigEndian.AppendUint32(inner, uint32(format))
	inner = append(append(inner, 0, 0, 0, 0), plain...)
	block := append(head(make([]byte, 0, 8+len(inner)), kmip.TagKeyBlock, ttlv.TypeStructure, len(inner)), inner...)
	defer clear(block)
	defer clear(inner)
	var kb kmip.KeyBlock
	dec, err := ttlv.NewTTLVDecoder(block)
	if err == nil {
		err = decodeSafely(func() error { return dec.TagAny(kmip.TagKeyBlock, &kb) })
	}
	if err != nil || kb.KeyValue == nil || kb.KeyValue.Plain == nil {
		return nil, bad
	}
	return kb.KeyValue, nil
}

// mergeKeyValueAttrs moves the attributes wrapped with a key into the
// Register request; the request's own single-instance attributes win.
func mergeKeyValueAttrs(kv *kmip.KeyValue, r *engine.RegisterRequest) error {
	if len(kv.Plain.Attribute) == 0 {
		return nil
	}
	wrapped, err := toEngineAttrs(kv.Plain.Attribute)
	if err != nil {
		return err
	}
	kv.Plain.Attribute = nil
	given := map[string]bool{}
	for _, a := range r.Attrs {
		given[a.Name] = true
	}
	for _, a := range wrapped {
		if d := engine.LookupAttr(a.Name); d != nil && !d.Multi && given[a.Name] {
			continue
		}
		a.Index = nil
		r.Attrs = append(r.Attrs, a)
	}
	return nil
}
