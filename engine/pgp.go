package engine

import (
	"context"
	"time"
)

// RegisterPGPKey registers a PGP Key object (KMIP 1.2 §2.2.9): its key
// block is kept as the client gave it (Raw or Opaque bytes, typically an
// ASCII-armoured OpenPGP key block) and served back unchanged; the server
// does not parse or convert it. m.DataType carries the PGP Key Version.
// req.Algorithm and req.Length are those the key block states.
func (e *Engine) RegisterPGPKey(ctx context.Context, p Principal, req RegisterRequest) (*Object, error) {
	if err := authorize(p, OpRegister); err != nil {
		return nil, err
	}
	m := req.Material
	if m.Format != FormatRaw && m.Format != FormatOpaque {
		return nil, errf(ErrKeyFormatNotSupported, "PGP keys are registered in Raw or Opaque key format")
	}
	if len(m.Bytes) == 0 {
		return nil, errf(ErrMissingData, "the PGP key carries no key material")
	}
	if len(m.Bytes) > MaxMaterialSize-materialHeader {
		return nil, errf(ErrLimit, "key material larger than %d bytes", MaxMaterialSize-materialHeader)
	}
	attrs, err := e.resolveTemplates(ctx, p.Tenant, req.Templates, req.Attrs)
	if err != nil {
		return nil, err
	}
	now := e.now().UTC().Truncate(time.Second)
	o := e.newObject(p, TypePGPKey, now)
	if err := applyTemplate(o, attrs, now); err != nil {
		return nil, err
	}
	if err := setBlockAlgorithm(o, req.Algorithm, req.Length); err != nil {
		return nil, err
	}
	return e.store0(ctx, o, m, now)
}
