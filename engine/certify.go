package engine

import (
	"context"
	"crypto"
	"crypto/x509"
	"time"
)

// PublicKeyOf returns the public key an object carries: a public key, the
// public half of a private key, or a certificate's subject key. The
// certificate itself is returned for certificates (re-certification keeps
// its identity).
func (e *Engine) PublicKeyOf(ctx context.Context, p Principal, id string) (*Object, crypto.PublicKey, *x509.Certificate, error) {
	if err := authorize(p, OpCertify); err != nil {
		return nil, nil, nil, err
	}
	c, err := e.load(ctx, p.Tenant, id)
	if err != nil {
		return nil, nil, nil, err
	}
	o := c.obj
	if o.EffectiveState(e.now()).Destroyed() {
		return nil, nil, nil, errf(ErrNotFound, "object %s was destroyed", id)
	}
	switch o.Type {
	case TypePublicKey, TypePrivateKey, TypeCertificate:
	default:
		return nil, nil, nil, errf(ErrIllegalOperation, "%s objects carry no public key to certify", o.Type)
	}
	k, err := e.key(ctx, c)
	if err != nil {
		return nil, nil, nil, err
	}
	m, err := k.copyMaterial()
	if err != nil {
		return nil, nil, nil, err
	}
	// Only a private key is secret; parsed public keys and certificates
	// keep references into these bytes, so they are not cleared.
	if o.Type == TypePrivateKey {
		defer clear(m.Bytes)
	}
	switch o.Type {
	case TypePublicKey:
		pub, err := ParsePKIXPublicKey(m.Bytes)
		return o.clone(), pub, nil, err
	case TypePrivateKey:
		priv, err := ParsePKCS8PrivateKey(m.Bytes)
		if err != nil {
			return nil, nil, nil, err
		}
		signer, ok := priv.(crypto.Signer)
		if !ok {
			return nil, nil, nil, errf(ErrNotSupported, "unsupported private key")
		}
		return o.clone(), signer.Public(), nil, nil
	}
	cert, err := ParseCertificate(m.Bytes)
	if err != nil {
		return nil, nil, nil, err
	}
	return o.clone(), cert.PublicKey, cert, nil
}

// isLifecycleDate reports the dates that describe one object's life and
// are never carried to another.
func isLifecycleDate(name string) bool {
	switch name {
	case AttrActivationDate, AttrDeactivationDate, AttrProcessStartDate, AttrProtectStopDate, AttrOriginalCreationDate:
		return true
	}
	return false
}

// CertificateRecord asks to record a certificate the server just issued.
type CertificateRecord struct {
	DER []byte
	// Attrs are the client's template attributes for the new object.
	Attrs []Attribute
	// KeyID is the public key (or private key) object it certifies, "" for
	// a CSR; it gets a Certificate Link and the new object a Public Key Link.
	KeyID string
	// Replaces is the certificate this one re-certifies, ""; they are
	// linked Replaced/Replacement.
	Replaces string
}

// RecordCertificate stores a certificate the server issued (Certify) as a
// managed Certificate object and links it.
func (e *Engine) RecordCertificate(ctx context.Context, p Principal, r CertificateRecord) (*Object, error) {
	if err := authorize(p, OpCertify); err != nil {
		return nil, err
	}
	now := e.now().UTC().Truncate(time.Second)
	o := e.newObject(p, TypeCertificate, now)
	attrs := r.Attrs
	if r.Replaces != "" {
		old, err := e.load(ctx, p.Tenant, r.Replaces)
		if err != nil {
			return nil, err
		}
		// A re-certified certificate keeps its predecessor's public key and
		// the attributes a client gave it (names, groups, custom, ...):
		// those of the request come first, the carried-over ones after.
		for _, l := range old.obj.Attrs.Links() {
			if l.LinkType == LinkPublicKey && r.KeyID == "" {
				r.KeyID = l.LinkedObjectIdentifier
			}
		}
		given := map[string]bool{}
		for _, a := range r.Attrs {
			given[a.Name] = true
		}
		for _, n := range old.obj.Attrs.Names() {
			d := LookupAttr(n)
			if d == nil || !d.ClientSettable() || n == AttrLink || (!d.Multi && given[n]) || isLifecycleDate(n) {
				continue
			}
			for _, in := range old.obj.Attrs.Get(n) {
				attrs = append(attrs, Attribute{Name: n, Value: in.Value})
			}
		}
	}
	if r.KeyID != "" {
		attrs = append(attrs, Attribute{Name: AttrLink, Value: Link{LinkType: LinkPublicKey, LinkedObjectIdentifier: r.KeyID}})
	}
	if r.Replaces != "" {
		attrs = append(attrs, Attribute{Name: AttrLink, Value: Link{LinkType: LinkReplacedObject, LinkedObjectIdentifier: r.Replaces}})
	}
	if err := applyTemplate(o, attrs, now); err != nil {
		return nil, err
	}
	if err := certificateAttributes(o, r.DER); err != nil {
		return nil, err
	}
	created, err := e.store0(ctx, o, Material{Format: FormatX509, DataType: 0x05, Bytes: r.DER}, now)
	if err != nil {
		return nil, err
	}
	// link adds l to object id, or, when the object already links with
	// that type to from, points that link at l's object instead.
	link := func(id string, l Link, from string) error {
		_, err := e.update(ctx, p.Tenant, id, func(o *Object, _ time.Time) error {
			for _, in := range o.Attrs.Get(AttrLink) {
				if cur, ok := in.Value.(Link); ok && from != "" && cur.LinkType == l.LinkType && cur.LinkedObjectIdentifier == from {
					return o.Attrs.Replace(AttrLink, in.Index, l)
				}
			}
			o.Attrs.Add(AttrLink, l)
			return nil
		})
		return err
	}
	if r.KeyID != "" {
		if err := link(r.KeyID, Link{LinkType: LinkCertificate, LinkedObjectIdentifier: created.ID}, r.Replaces); err != nil {
			return nil, err
		}
	}
	if r.Replaces != "" {
		if err := link(r.Replaces, Link{LinkType: LinkReplacementObject, LinkedObjectIdentifier: created.ID}, ""); err != nil {
			return nil, err
		}
	}
	return created, nil
}
