package kmip

import (
	"context"

	"github.com/minikms/minikms/engine"
	"github.com/ovh/kmip-go"
	"github.com/ovh/kmip-go/payloads"
)

// Create Key Pair and Re-key Key Pair (engine/keypair.go and
// engine/rekeypair.go have the rules). Both leave the new private key's
// identifier in the ID Placeholder (KMIP 1.4 §4.2, §4.5).

var (
	_ = addHandler(kmip.OperationCreateKeyPair, route(handleCreateKeyPair))
	_ = addHandler(kmip.OperationReKeyKeyPair, route(handleReKeyKeyPair))
)

// pairTemplates converts the three Template-Attributes of a key-pair
// request.
func pairTemplates(common, private, public *kmip.TemplateAttribute) (engine.CreateKeyPairRequest, error) {
	var r engine.CreateKeyPairRequest
	var err error
	if r.CommonTemplates, r.Common, err = templateAttrs(common); err != nil {
		return r, err
	}
	if r.PrivateTemplates, r.Private, err = templateAttrs(private); err != nil {
		return r, err
	}
	if r.PublicTemplates, r.Public, err = templateAttrs(public); err != nil {
		return r, err
	}
	return r, nil
}

func handleCreateKeyPair(ctx context.Context, s *session, req *payloads.CreateKeyPairRequestPayload) (kmip.OperationPayload, error) {
	r, err := pairTemplates(req.CommonTemplateAttribute, req.PrivateKeyTemplateAttribute, req.PublicKeyTemplateAttribute)
	if err != nil {
		return nil, err
	}
	pair, err := s.eng.CreateKeyPair(ctx, s.p, r)
	if err != nil {
		return nil, err
	}
	s.setPlaceholder(pair.Private.ID)
	return &payloads.CreateKeyPairResponsePayload{PrivateKeyUniqueIdentifier: pair.Private.ID, PublicKeyUniqueIdentifier: pair.Public.ID}, nil
}

func handleReKeyKeyPair(ctx context.Context, s *session, req *payloads.RekeyKeyPairRequestPayload) (kmip.OperationPayload, error) {
	id, err := s.id(req.PrivateKeyUniqueIdentifier)
	if err != nil {
		return nil, err
	}
	r, err := pairTemplates(req.CommonTemplateAttribute, req.PrivateKeyTemplateAttribute, req.PublicKeyTemplateAttribute)
	if err != nil {
		return nil, err
	}
	pair, err := s.eng.ReKeyKeyPair(ctx, s.p, engine.ReKeyKeyPairRequest{PrivateKeyID: id, Offset: req.Offset, Templates: r})
	if err != nil {
		return nil, err
	}
	s.setPlaceholder(pair.Private.ID)
	return &payloads.RekeyKeyPairResponsePayload{PrivateKeyUniqueIdentifier: pair.Private.ID, PublicKeyUniqueIdentifier: pair.Public.ID}, nil
}
