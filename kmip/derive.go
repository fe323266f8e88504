package kmip

import (
	"context"

	"github.com/minikms/minikms/engine"
	"github.com/ovh/kmip-go"
	"github.com/ovh/kmip-go/ttlv"
)

var _ = addHandler(kmip.OperationDeriveKey, route(handleDeriveKey))

// derivationMethod is the KMIP Derivation Method enumeration, which the
// codec does not define.
type derivationMethod uint32

func init() {
	ttlv.RegisterEnum(kmip.TagDerivationMethod, map[derivationMethod]string{
		derivationMethod(engine.DerivePBKDF2):        "PBKDF2",
		derivationMethod(engine.DeriveHash):          "HASH",
		derivationMethod(engine.DeriveHMAC):          "HMAC",
		derivationMethod(engine.DeriveEncrypt):       "ENCRYPT",
		derivationMethod(engine.DeriveNIST800108C):   "NIST800_108_C",
		derivationMethod(engine.DeriveNIST800108F):   "NIST800_108_F",
		derivationMethod(engine.DeriveNIST800108DPI): "NIST800_108_DPI",
		derivationMethod(engine.DeriveAsymmetricKey): "AsymmetricKey",
	})
}

// derivationParameters is the KMIP Derivation Parameters structure.
type derivationParameters struct {
	CryptographicParameters *kmip.CryptographicParameters
	InitializationVector    []byte `ttlv:",omitempty"`
	DerivationData          []byte `ttlv:",omitempty"`
	Salt                    []byte `ttlv:",omitempty"`
	IterationCount          *int32
}

// deriveKeyRequest is the KMIP Derive Key request payload (the codec has
// none). The ID Placeholder does not stand for a missing Unique
// Identifier here (KMIP 1.4 §4.6).
type deriveKeyRequest struct {
	ObjectType           kmip.ObjectType `ttlv:",omitempty"`
	UniqueIdentifier     []string
	DerivationMethod     derivationMethod `ttlv:",omitempty"`
	DerivationParameters *derivationParameters
	TemplateAttribute    *kmip.TemplateAttribute
}

type deriveKeyResponse struct {
	UniqueIdentifier string
}

func (*deriveKeyResponse) Operation() kmip.Operation { return kmip.OperationDeriveKey }

func handleDeriveKey(ctx context.Context, s *session, req *deriveKeyRequest) (kmip.OperationPayload, error) {
	if req.ObjectType == 0 {
		return nil, errReason(kmip.ResultReasonMissingData, "Derive Key needs the Object Type of the new object")
	}
	if req.DerivationParameters == nil {
		return nil, errReason(kmip.ResultReasonMissingData, "Derive Key needs Derivation Parameters")
	}
	if req.TemplateAttribute == nil {
		return nil, errReason(kmip.ResultReasonMissingData, "Derive Key needs a Template-Attribute with the new object's Cryptographic Length")
	}
	tmpl, attrs, err := templateAttrs(req.TemplateAttribute)
	if err != nil {
		return nil, err
	}
	dp := req.DerivationParameters
	params, err := cryptoParams(dp.CryptographicParameters)
	if err != nil {
		return nil, err
	}
	o, err := s.eng.DeriveKey(ctx, s.p, engine.DeriveRequest{
		Type: engine.ObjectType(req.ObjectType), BaseIDs: req.UniqueIdentifier,
		Method: engine.DerivationMethod(req.DerivationMethod), Params: params,
		IV: dp.InitializationVector, Data: dp.DerivationData, Salt: dp.Salt, IterationCount: dp.IterationCount,
		Attrs: attrs, Templates: tmpl,
	})
	if err != nil {
		return nil, err
	}
	s.setPlaceholder(o.ID)
	return &deriveKeyResponse{UniqueIdentifier: o.ID}, nil
}
