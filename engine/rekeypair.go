package engine

import (
	"context"
	"slices"
	"time"
)

// Re-key Key Pair (KMIP 1.1+, §4.5 of KMIP 1.4): a new key pair replaces an
// existing one. The new keys take over the attributes of the old ones
// (names included: the old keys lose theirs, so that a Locate by name finds
// the replacement), except what describes the old material and its life:
// links, digests, lifecycle dates, usage counts. The request's
// Template-Attributes apply to the new keys on top of the carried ones.
//
// Dates: without an Offset the Activation, Process Start, Protect Stop and
// Deactivation Dates are copied from the old keys; with an Offset the new
// keys activate at now+Offset and the other dates keep their distance to
// the activation (DT2 = DT1 + AT2 - AT1). The old pair keeps
// its state; both pairs are linked Replaced/Replacement Object.

// ReKeyKeyPairRequest asks to replace the key pair of a private key.
type ReKeyKeyPairRequest struct {
	// PrivateKeyID is the existing private key; its Public Key Link names
	// the public key replaced with it.
	PrivateKeyID string
	// Offset, when set, is the time from now to the new keys' activation.
	Offset *time.Duration
	// Templates of the new keys, as in Create Key Pair.
	Templates CreateKeyPairRequest
}

// ReKeyKeyPair generates a replacement for a key pair of the caller's
// tenant.
func (e *Engine) ReKeyKeyPair(ctx context.Context, p Principal, req ReKeyKeyPairRequest) (*KeyPair, error) {
	if err := authorize(p, OpReKeyKeyPair); err != nil {
		return nil, err
	}
	if req.Offset != nil && *req.Offset < 0 {
		return nil, errf(ErrInvalidField, "the Offset is negative")
	}
	c, err := e.load(ctx, p.Tenant, req.PrivateKeyID)
	if err != nil {
		return nil, err
	}
	oldPriv := c.obj
	if oldPriv.Type != TypePrivateKey {
		return nil, errf(ErrIllegalOperation, "Re-key Key Pair takes the Unique Identifier of a private key, not of a %s object", oldPriv.Type)
	}
	now := e.now().UTC().Truncate(time.Second)
	if oldPriv.EffectiveState(now).Destroyed() {
		return nil, errf(ErrWrongState, "the private key is destroyed; create a new key pair instead")
	}
	pubID := ""
	for _, l := range oldPriv.Attrs.Links() {
		if l.LinkType == LinkPublicKey {
			pubID = l.LinkedObjectIdentifier
			break
		}
	}
	if pubID == "" {
		return nil, errf(ErrIllegalOperation, "the private key has no Public Key Link, so it is not part of a key pair to re-key")
	}
	pc, err := e.load(ctx, p.Tenant, pubID)
	if err != nil {
		return nil, errf(ErrIllegalOperation, "the public key the private key links to cannot be found")
	}
	oldPub := pc.obj
	if oldPub.Type != TypePublicKey {
		return nil, errf(ErrIllegalOperation, "the private key's Public Key Link names a %s object", oldPub.Type)
	}
	if req.Offset != nil {
		for _, list := range [][]Attribute{req.Templates.Common, req.Templates.Private, req.Templates.Public} {
			for _, a := range list {
				if slices.Contains(shiftedDates, a.Name) {
					return nil, errf(ErrInvalidMessage, "an Offset cannot be given together with an %s", a.Name)
				}
			}
		}
	}
	privAttrs, pubAttrs, err := e.pairAttributes(ctx, p.Tenant, req.Templates)
	if err != nil {
		return nil, err
	}
	newPriv, newPub := e.newObject(p, TypePrivateKey, now), e.newObject(p, TypePublicKey, now)
	if err := applyTemplate(newPriv, carryOver(oldPriv, privAttrs, req.Offset, now), now); err != nil {
		return nil, err
	}
	if err := applyTemplate(newPub, carryOver(oldPub, pubAttrs, req.Offset, now), now); err != nil {
		return nil, err
	}
	pair, err := e.generatePair(ctx, newPriv, newPub, &KeyPair{Private: oldPriv, Public: oldPub}, now)
	if err != nil {
		return nil, err
	}
	// The old keys give their names to the new ones and point to them.
	for _, r := range []struct{ old, repl string }{{oldPriv.ID, pair.Private.ID}, {oldPub.ID, pair.Public.ID}} {
		if _, err := e.update(ctx, p.Tenant, r.old, func(o *Object, _ time.Time) error {
			o.Attrs.Remove(AttrName)
			link := Link{LinkType: LinkReplacementObject, LinkedObjectIdentifier: r.repl}
			for _, in := range o.Attrs.Get(AttrLink) {
				if l, ok := in.Value.(Link); ok && l.LinkType == LinkReplacementObject {
					return o.Attrs.Replace(AttrLink, in.Index, link)
				}
			}
			o.Attrs.Add(AttrLink, link)
			return nil
		}); err != nil {
			return nil, err
		}
	}
	return pair, nil
}

// shiftedDates are the dates a replacement key takes from the old one,
// shifted by the Offset; the Activation Date first.
var shiftedDates = []string{AttrActivationDate, AttrProcessStartDate, AttrProtectStopDate, AttrDeactivationDate}

// keyDefining are the attributes that say what key the replacement is:
// when the request gives one of them, the old key's size (length, curve)
// is not carried (a P-384 replacement of a P-256 key does not keep the
// 256-bit length; an RSA replacement of an EC key has no curve).
var keyDefining = map[string]bool{AttrCryptographicAlgorithm: true, AttrCryptographicLength: true, AttrCryptographicDomainParameters: true}

// carryOver is the attribute list of the replacement of old: the request's
// attributes, then those of old that a client could have set and that the
// request does not override, with the dates shifted per the Offset.
func carryOver(old *Object, reqAttrs []Attribute, offset *time.Duration, now time.Time) []Attribute {
	given := map[string]bool{}
	newKind := false
	for _, a := range reqAttrs {
		given[a.Name] = true
		newKind = newKind || keyDefining[a.Name]
	}
	out := append([]Attribute(nil), reqAttrs...)
	for _, n := range old.Attrs.Names() {
		d := LookupAttr(n)
		if d == nil || !d.ClientSettable() || (!d.Multi && given[n]) || isLifecycleDate(n) || (newKind && (n == AttrCryptographicLength || n == AttrCryptographicDomainParameters)) {
			continue
		}
		switch n {
		case AttrLink, AttrDigest, AttrFresh, AttrKeyValueLocation, AttrRandomNumberGenerator:
			continue
		case AttrUsageLimits:
			// The new key starts with the whole allowance.
			if v, ok := old.Attrs.First(n); ok {
				ul := v.(UsageLimits)
				ul.UsageLimitsCount = nil
				out = append(out, Attribute{Name: n, Value: ul})
			}
			continue
		}
		for _, in := range old.Attrs.Get(n) {
			out = append(out, Attribute{Name: n, Value: in.Value})
		}
	}
	if offset == nil {
		for _, n := range shiftedDates {
			if t := old.Attrs.Time(n); !t.IsZero() && !given[n] {
				out = append(out, Attribute{Name: n, Value: t})
			}
		}
		return out
	}
	at2 := now.Add(*offset)
	out = append(out, Attribute{Name: AttrActivationDate, Value: at2})
	from := old.Attrs.Time(AttrActivationDate)
	if from.IsZero() {
		from = old.Attrs.Time(AttrInitialDate)
	}
	for _, n := range shiftedDates[1:] {
		if t := old.Attrs.Time(n); !t.IsZero() {
			out = append(out, Attribute{Name: n, Value: t.Add(at2.Sub(from))})
		}
	}
	return out
}
