package engine

import (
	"context"
	"errors"
	"time"
)

// Metadata-only objects (KMIP 1.2 §3.47, §3.48): a key registered with a
// Key Block that carries no Key Value. The server keeps its attributes
// (Key Value Present false, and the client's Key Value Location saying
// where the value lives) and no material: Get returns the Key Block
// without a Key Value; every use of the value answers Key Value Not
// Present.

// IsMetadataOnly reports whether o was registered without a key value.
func IsMetadataOnly(o *Object) bool {
	if o.HasMaterial() {
		return false
	}
	v, ok := o.Attrs.First(AttrKeyValuePresent)
	return ok && v == false
}

// errNoKeyValue is the refusal of any use of a metadata-only object's value.
func errNoKeyValue(id string) error {
	return errf(ErrKeyValueNotPresent, "object %s is metadata only: the server does not hold its key value", id)
}

// RegisterMetadataOnly registers a symmetric key without its value:
// req.Algorithm and req.Length are those of the Key Block, req.Material
// must be empty.
func (e *Engine) RegisterMetadataOnly(ctx context.Context, p Principal, req RegisterRequest) (*Object, error) {
	if err := authorize(p, OpRegister); err != nil {
		return nil, err
	}
	if req.Type != TypeSymmetricKey {
		if !req.Type.Valid() {
			return nil, errf(ErrInvalidField, "object type 0x%X is not defined", uint32(req.Type))
		}
		return nil, errf(ErrNotSupported, "metadata-only registration is supported for symmetric keys, not %s objects", req.Type)
	}
	if len(req.Material.Bytes) > 0 {
		return nil, errf(ErrInvalidField, "a metadata-only object carries no key material")
	}
	attrs, err := e.resolveTemplates(ctx, p.Tenant, req.Templates, req.Attrs)
	if err != nil {
		return nil, err
	}
	now := e.now().UTC().Truncate(time.Second)
	o := e.newObject(p, req.Type, now)
	if err := applyTemplate(o, attrs, now); err != nil {
		return nil, err
	}
	if err := setBlockAlgorithm(o, req.Algorithm, req.Length); err != nil {
		return nil, err
	}
	alg, bits := o.Attrs.Algorithm(), o.Attrs.Length()
	if alg == 0 || bits == 0 {
		return nil, errf(ErrMissingData, "a metadata-only key needs its Cryptographic Algorithm and Length")
	}
	if _, err := symmetricKeyBytes(alg, bits, false); err != nil {
		return nil, err
	}
	return e.storeMetadataOnly(ctx, o, now)
}

// storeMetadataOnly is store0 for an object without material: no digest
// (there is no value to digest), Key Value Present false.
func (e *Engine) storeMetadataOnly(ctx context.Context, o *Object, now time.Time) (*Object, error) {
	if !o.Attrs.Has(AttrObjectGroup) {
		o.Attrs.Add(AttrObjectGroup, DefaultScope)
	}
	if ad := o.Attrs.Time(AttrActivationDate); !ad.IsZero() && !now.Before(ad) {
		o.State = StateActive
	}
	if !o.Attrs.Has(AttrCryptographicUsageMask) {
		o.Attrs.Set(AttrCryptographicUsageMask, UsageMask(0))
	}
	initUsageLimits(o)
	o.Attrs.Set(AttrFresh, true)
	o.Attrs.Set(AttrKeyValuePresent, false)
	if !o.Attrs.Has(AttrSensitive) {
		o.Attrs.Set(AttrSensitive, false)
	}
	if !o.Attrs.Has(AttrExtractable) {
		o.Attrs.Set(AttrExtractable, true)
	}
	o.Attrs.Set(AttrAlwaysSensitive, boolAttr(o.Attrs, AttrSensitive))
	o.Attrs.Set(AttrNeverExtractable, !boolAttr(o.Attrs, AttrExtractable))
	if o.Attrs.Count() > MaxAttributeInstances {
		return nil, errf(ErrLimit, "more than %d attribute instances", MaxAttributeInstances)
	}
	for range 3 {
		st, err := o.toStored()
		if err != nil {
			return nil, err
		}
		err = e.store.CreateObject(ctx, st)
		if errors.Is(err, ErrExists) {
			o.ID = newID()
			continue
		}
		if err != nil {
			return nil, err
		}
		o.Seq = st.Seq
		e.cacheUpdated(o)
		return o, nil
	}
	return nil, errors.New("could not allocate a unique identifier")
}
