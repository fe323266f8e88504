package kmip

import (
	"context"

	"github.com/minikms/minikms/engine"
	"github.com/ovh/kmip-go"
	"github.com/ovh/kmip-go/payloads"
)

var _ = addHandler(kmip.OperationReKey, route(handleReKey))

// handleReKey replaces a symmetric key (KMIP 1.0+ Re-key); the replacement
// becomes the ID Placeholder.
func handleReKey(ctx context.Context, s *session, req *payloads.RekeyRequestPayload) (kmip.OperationPayload, error) {
	id, err := s.id(req.UniqueIdentifier)
	if err != nil {
		return nil, err
	}
	tmpl, attrs, err := templateAttrs(req.TemplateAttribute)
	if err != nil {
		return nil, err
	}
	o, err := s.eng.ReKey(ctx, s.p, engine.ReKeyRequest{ID: id, Offset: req.Offset, Attrs: attrs, Templates: tmpl})
	if err != nil {
		return nil, err
	}
	s.setPlaceholder(o.ID)
	return &payloads.RekeyResponsePayload{UniqueIdentifier: o.ID}, nil
}
