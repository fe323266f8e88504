package kmip

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/minikms/minikms/engine"
	"github.com/ovh/kmip-go"
	"github.com/ovh/kmip-go/payloads"
)

// handler serves one operation: newReq makes the payload to decode into.
type handler struct {
	newReq func() any
	serve  func(ctx context.Context, s *session, req any) (kmip.OperationPayload, error)
}

func route[T any](serve func(ctx context.Context, s *session, req *T) (kmip.OperationPayload, error)) handler {
	return handler{
		newReq: func() any { return new(T) },
		serve: func(ctx context.Context, s *session, req any) (kmip.OperationPayload, error) {
			return serve(ctx, s, req.(*T))
		},
	}
}

var handlers map[kmip.Operation]handler

// registered are the handlers other files add with addHandler.
var registered []struct {
	op kmip.Operation
	h  handler
}

// addHandler registers the handler of op from another file, as a
// package-level declaration (those run before init):
//
//	var _ = addHandler(kmip.OperationSign, route(handleSign))
func addHandler(op kmip.Operation, h handler) bool {
	registered = append(registered, struct {
		op kmip.Operation
		h  handler
	}{op, h})
	return true
}

func init() {
	handlers = map[kmip.Operation]handler{
		kmip.OperationDiscoverVersions: route(handleDiscoverVersions),
		kmip.OperationQuery:            route(handleQuery),
		kmip.OperationCreate:           route(handleCreate),
		kmip.OperationRegister:         route(handleRegister),
		kmip.OperationGet:              route(handleGet),
		kmip.OperationGetAttributes:    route(handleGetAttributes),
		kmip.OperationGetAttributeList: route(handleGetAttributeList),
		kmip.OperationAddAttribute:     route(handleAddAttribute),
		kmip.OperationModifyAttribute:  route(handleModifyAttribute),
		kmip.OperationDeleteAttribute:  route(handleDeleteAttribute),
		kmip.OperationLocate:           route(handleLocate),
		kmip.OperationActivate:         route(handleActivate),
		kmip.OperationRevoke:           route(handleRevoke),
		kmip.OperationDestroy:          route(handleDestroy),
		kmip.OperationEncrypt:          route(handleEncrypt),
		kmip.OperationDecrypt:          route(handleDecrypt),
		kmip.OperationCertify:          route(handleCertify),
		kmip.OperationReCertify:        route(handleRecertify),
	}
	for _, r := range registered {
		if _, dup := handlers[r.op]; dup {
			handlerConflicts = append(handlerConflicts, r.op)
			continue // the first stays; New refuses to build a server
		}
		handlers[r.op] = r.h
	}
}

// handlerConflicts are operations registered twice: a programming error
// that New reports (and TestNoHandlerConflicts catches) instead of
// serving one of the two silently.
var handlerConflicts []kmip.Operation

// checkHandlers reports handlerConflicts.
func checkHandlers() error {
	if len(handlerConflicts) == 0 {
		return nil
	}
	names := make([]string, len(handlerConflicts))
	for i, op := range handlerConflicts {
		names[i] = opName(op)
	}
	return fmt.Errorf("kmip: operations with two handlers: %s", strings.Join(names, ", "))
}

// supportedOperations is what Query reports, in a stable order.
func supportedOperations() []kmip.Operation {
	out := make([]kmip.Operation, 0, len(handlers))
	for op := range handlers {
		out = append(out, op)
	}
	sortOps(out)
	return out
}

// id resolves a request's Unique Identifier against the ID Placeholder.
func (s *session) id(reqID string) (string, error) {
	if reqID != "" {
		return reqID, nil
	}
	if s.placeholder != "" {
		return s.placeholder, nil
	}
	// Nothing to operate on: no identifier given, and no earlier item of
	// the batch left one (a Locate that found nothing, or a failed item).
	return "", errReason(kmip.ResultReasonItemNotFound, "no Unique Identifier given and no ID Placeholder left by an earlier batch item")
}

// templateAttrs splits a Template-Attribute into the names of server-side
// templates it references and its own attributes.
func templateAttrs(t *kmip.TemplateAttribute) ([]string, []engine.Attribute, error) {
	if t == nil {
		return nil, nil, nil
	}
	names := make([]string, 0, len(t.Name))
	for _, n := range t.Name {
		if n.NameValue == "" {
			return nil, nil, errReason(kmip.ResultReasonInvalidField, "a template reference has an empty Name")
		}
		names = append(names, n.NameValue)
	}
	attrs, err := toEngineAttrs(t.Attribute)
	return names, attrs, err
}

func handleCreate(ctx context.Context, s *session, req *payloads.CreateRequestPayload) (kmip.OperationPayload, error) {
	tmpl, attrs, err := templateAttrs(&req.TemplateAttribute)
	if err != nil {
		return nil, err
	}
	o, err := s.eng.Create(ctx, s.p, engine.CreateRequest{Type: engine.ObjectType(req.ObjectType), Attrs: attrs, Templates: tmpl})
	if err != nil {
		return nil, err
	}
	s.setPlaceholder(o.ID)
	return &payloads.CreateResponsePayload{ObjectType: req.ObjectType, UniqueIdentifier: o.ID}, nil
}

func handleRegister(ctx context.Context, s *session, req *payloads.RegisterRequestPayload) (kmip.OperationPayload, error) {
	tmpl, attrs, err := templateAttrs(&req.TemplateAttribute)
	if err != nil {
		return nil, err
	}
	if req.Object == nil {
		return nil, errReason(kmip.ResultReasonMissingData, "Register carries no object")
	}
	if req.Object.ObjectType() != req.ObjectType {
		return nil, errReason(kmip.ResultReasonInvalidField, "the Object Type does not match the object")
	}
	if kb := wrappedKeyBlock(req.Object); kb != nil {
		return s.registerWrapped(ctx, req, tmpl, attrs, kb) // keywrap.go
	}
	if p, ok, err := s.registerExtended(ctx, req, tmpl, attrs); ok {
		return p, err // mdo.go: split keys, PGP keys, metadata-only keys
	}
	er := engine.RegisterRequest{Type: engine.ObjectType(req.ObjectType), Attrs: attrs, Templates: tmpl}
	if err := materialFromObject(req.Object, &er); err != nil {
		return nil, err
	}
	defer clear(er.Material.Bytes)
	o, err := s.eng.Register(ctx, s.p, er)
	if err != nil {
		return nil, err
	}
	s.setPlaceholder(o.ID)
	return &payloads.RegisterResponsePayload{UniqueIdentifier: o.ID}, nil
}

func handleGet(ctx context.Context, s *session, req *payloads.GetRequestPayload) (kmip.OperationPayload, error) {
	id, err := s.id(req.UniqueIdentifier)
	if err != nil {
		return nil, err
	}
	if req.KeyWrappingSpecification != nil || req.KeyWrapType != 0 {
		return s.getWrapped(ctx, id, req) // keywrap.go
	}

	o, m, err := s.eng.Get(ctx, s.p, id)
	if err != nil {
		return nil, err
	}
	s.scrubLater(m.Bytes)
	if req.KeyCompressionType != 0 {
		// Compression applies to elliptic-curve public keys, whose points
		// this server serves uncompressed.
		ecPublic := o.Type == engine.TypePublicKey && o.Attrs.Has(engine.AttrCryptographicDomainParameters)
		if !ecPublic || req.KeyCompressionType != kmip.KeyCompressionTypeECPublicKeyTypeUncompressed {
			return nil, errReason(kmip.ResultReasonKeyCompressionTypeNotSupported, "key compression applies to elliptic-curve public keys, served uncompressed")
		}
	}
	if o.Type == engine.TypeTemplate {
		if req.KeyFormatType != 0 {
			return nil, errReason(kmip.ResultReasonKeyFormatTypeNotSupported, "templates have no key format")
		}
		content, err := s.eng.TemplateContent(ctx, s.p, o.ID)
		if err != nil {
			return nil, err
		}
		t, err := templateObject(content, s.version)
		if err != nil {
			return nil, err
		}
		return &payloads.GetResponsePayload{ObjectType: kmip.ObjectTypeTemplate, UniqueIdentifier: o.ID, Object: t}, nil
	}
	obj, err := objectFromMaterial(o, m, req.KeyFormatType, s.version, s.scrubLater)
	if err != nil {
		return nil, err
	}
	return &payloads.GetResponsePayload{ObjectType: kmip.ObjectType(o.Type), UniqueIdentifier: o.ID, Object: obj}, nil
}

func handleGetAttributes(ctx context.Context, s *session, req *payloads.GetAttributesRequestPayload) (kmip.OperationPayload, error) {
	id, err := s.id(req.UniqueIdentifier)
	if err != nil {
		return nil, err
	}
	names := make([]string, len(req.AttributeName))
	for i, n := range req.AttributeName {
		names[i] = string(n)
	}
	o, attrs, err := s.eng.GetAttributes(ctx, s.p, id, names)
	if err != nil {
		return nil, err
	}
	wire, err := toWireAttrs(attrs, s.version)
	if err != nil {
		return nil, err
	}
	return &payloads.GetAttributesResponsePayload{UniqueIdentifier: o.ID, Attribute: wire}, nil
}

func handleGetAttributeList(ctx context.Context, s *session, req *payloads.GetAttributeListRequestPayload) (kmip.OperationPayload, error) {
	id, err := s.id(req.UniqueIdentifier)
	if err != nil {
		return nil, err
	}
	o, names, err := s.eng.GetAttributeList(ctx, s.p, id)
	if err != nil {
		return nil, err
	}
	resp := &payloads.GetAttributeListResponsePayload{UniqueIdentifier: o.ID}
	for _, n := range names {
		if definedIn(n, s.version) {
			resp.AttributeName = append(resp.AttributeName, kmip.AttributeName(n))
		}
	}
	return resp, nil
}

// attributeResponse converts the attribute echoed by Add/Modify/Delete.
func (s *session) attributeResponse(a engine.Attribute) (kmip.Attribute, error) {
	w, ok, err := toWireAttr(a, s.version)
	if err != nil {
		return kmip.Attribute{}, err
	}
	if !ok {
		w = kmip.Attribute{AttributeName: kmip.AttributeName(a.Name)}
	}
	return w, nil
}

func handleAddAttribute(ctx context.Context, s *session, req *payloads.AddAttributeRequestPayload) (kmip.OperationPayload, error) {
	id, err := s.id(req.UniqueIdentifier)
	if err != nil {
		return nil, err
	}
	a, err := toEngineAttr(req.Attribute)
	if err != nil {
		return nil, err
	}
	o, added, err := s.eng.AddAttribute(ctx, s.p, id, a)
	if err != nil {
		return nil, err
	}
	w, err := s.attributeResponse(added)
	if err != nil {
		return nil, err
	}
	return &payloads.AddAttributeResponsePayload{UniqueIdentifier: o.ID, Attribute: w}, nil
}

func handleModifyAttribute(ctx context.Context, s *session, req *payloads.ModifyAttributeRequestPayload) (kmip.OperationPayload, error) {
	id, err := s.id(req.UniqueIdentifier)
	if err != nil {
		return nil, err
	}
	a, err := toEngineAttr(req.Attribute)
	if err != nil {
		return nil, err
	}
	o, mod, err := s.eng.ModifyAttribute(ctx, s.p, id, a)
	if err != nil {
		return nil, err
	}
	w, err := s.attributeResponse(mod)
	if err != nil {
		return nil, err
	}
	return &payloads.ModifyAttributeResponsePayload{UniqueIdentifier: o.ID, Attribute: w}, nil
}

func handleDeleteAttribute(ctx context.Context, s *session, req *payloads.DeleteAttributeRequestPayload) (kmip.OperationPayload, error) {
	id, err := s.id(req.UniqueIdentifier)
	if err != nil {
		return nil, err
	}
	if req.AttributeName == "" {
		return nil, errReason(kmip.ResultReasonMissingData, "Delete Attribute needs an Attribute Name")
	}
	o, del, err := s.eng.DeleteAttribute(ctx, s.p, id, string(req.AttributeName), req.AttributeIndex)
	if err != nil {
		return nil, err
	}
	w, err := s.attributeResponse(del)
	if err != nil {
		return nil, err
	}
	return &payloads.DeleteAttributeResponsePayload{UniqueIdentifier: o.ID, Attribute: w}, nil
}

// locateRequest is the Locate payload, with the Template-Attribute wrapper
// some clients (FortiOS) put around the filters in KMIP 1.x.
type locateRequest struct {
	MaximumItems      int32                  `ttlv:",omitempty"`
	OffsetItems       int32                  `ttlv:",omitempty"`
	StorageStatusMask kmip.StorageStatusMask `ttlv:",omitempty"`
	ObjectGroupMember kmip.ObjectGroupMember `ttlv:",omitempty"`
	Attribute         []kmip.Attribute
	TemplateAttribute *kmip.TemplateAttribute
}

func handleLocate(ctx context.Context, s *session, req *locateRequest) (kmip.OperationPayload, error) {
	wireAttrs := req.Attribute
	if req.TemplateAttribute != nil {
		if len(req.TemplateAttribute.Name) > 0 {
			return nil, errReason(kmip.ResultReasonFeatureNotSupported, "Locate filters come from attributes, not from template references")
		}
		wireAttrs = append(wireAttrs, req.TemplateAttribute.Attribute...)
	}
	attrs, err := toEngineAttrs(wireAttrs)
	if err != nil {
		return nil, err
	}
	if req.ObjectGroupMember != 0 && req.ObjectGroupMember != kmip.ObjectGroupMemberFresh && req.ObjectGroupMember != kmip.ObjectGroupMemberDefault {
		return nil, errReason(kmip.ResultReasonInvalidField, "Object Group Member is not Fresh or Default")
	}
	if uint32(req.StorageStatusMask)&^0x3 != 0 {
		return nil, errReason(kmip.ResultReasonInvalidField, "Storage Status Mask has undefined bits")
	}
	withTotal := s.version.Minor() >= 3
	res, err := s.eng.Locate(ctx, s.p, engine.LocateRequest{
		Attrs: attrs, MaxItems: req.MaximumItems, Offset: req.OffsetItems,
		StorageStatusMask: uint32(req.StorageStatusMask), GroupMember: uint32(req.ObjectGroupMember),
		WantTotal: withTotal,
	})
	if err != nil {
		return nil, err
	}
	// A single result becomes the ID Placeholder; several clear it.
	if len(res.IDs) == 1 {
		s.setPlaceholder(res.IDs[0])
	} else {
		s.setPlaceholder("")
	}
	resp := &payloads.LocateResponsePayload{UniqueIdentifier: res.IDs}
	if withTotal {
		n := res.Total
		resp.LocatedItems = &n
	}
	return resp, nil
}

func handleActivate(ctx context.Context, s *session, req *payloads.ActivateRequestPayload) (kmip.OperationPayload, error) {
	id, err := s.id(req.UniqueIdentifier)
	if err != nil {
		return nil, err
	}
	o, err := s.eng.Activate(ctx, s.p, id)
	if err != nil {
		return nil, err
	}
	return &payloads.ActivateResponsePayload{UniqueIdentifier: o.ID}, nil
}

func handleRevoke(ctx context.Context, s *session, req *payloads.RevokeRequestPayload) (kmip.OperationPayload, error) {
	id, err := s.id(req.UniqueIdentifier)
	if err != nil {
		return nil, err
	}
	if req.RevocationReason.RevocationReasonCode == 0 {
		return nil, errReason(kmip.ResultReasonMissingData, "Revoke needs a Revocation Reason Code")
	}
	code := engine.RevocationReasonCode(req.RevocationReason.RevocationReasonCode)
	o, err := s.eng.Revoke(ctx, s.p, id, engine.RevokeRequest{
		Reason:               engine.RevocationReason{RevocationReasonCode: code, RevocationMessage: req.RevocationReason.RevocationMessage},
		CompromiseOccurrence: req.CompromiseOccurrenceDate,
	})
	if err != nil {
		return nil, err
	}
	if o.Type == engine.TypeCertificate && s.srv.cfg.Certifier != nil {
		// A certificate this tenant's CA issued goes on its CRL, so the
		// identity it carries stops authenticating.
		_, _, cert, err := s.eng.PublicKeyOf(ctx, s.p, o.ID)
		if err != nil {
			return nil, err
		}
		if err := s.srv.cfg.Certifier.RevokeIssued(ctx, s.p.Tenant, cert, crlReason(code)); err != nil && !isForeignCertificate(err) {
			return nil, err
		}
	}
	return &payloads.RevokeResponsePayload{UniqueIdentifier: o.ID}, nil
}

// crlReason maps a KMIP revocation reason to the RFC 5280 CRL reason.
func crlReason(c engine.RevocationReasonCode) int {
	switch c {
	case engine.RevokeKeyCompromise:
		return 1
	case engine.RevokeCACompromise:
		return 2
	case engine.RevokeAffiliationChanged:
		return 3
	case engine.RevokeSuperseded:
		return 4
	case engine.RevokeCessationOfOperation:
		return 5
	case engine.RevokePrivilegeWithdrawn:
		return 9
	}
	return 0
}

// isForeignCertificate reports a certificate the tenant's CA did not issue
// (registered from elsewhere): its KMIP state changes, no CRL does.
func isForeignCertificate(err error) bool {
	var f interface{ ForeignCertificate() bool }
	return errors.As(err, &f) && f.ForeignCertificate()
}

func handleDestroy(ctx context.Context, s *session, req *payloads.DestroyRequestPayload) (kmip.OperationPayload, error) {
	id, err := s.id(req.UniqueIdentifier)
	if err != nil {
		return nil, err
	}
	o, err := s.eng.Destroy(ctx, s.p, id)
	if err != nil {
		return nil, err
	}
	return &payloads.DestroyResponsePayload{UniqueIdentifier: o.ID}, nil
}

// cryptoParams converts request parameters field by field (this runs on
// every Encrypt and Decrypt; the reflective converter is for attributes).
func cryptoParams(p *kmip.CryptographicParameters) (*engine.CryptographicParameters, error) {
	if p == nil {
		return nil, nil
	}
	return &engine.CryptographicParameters{
		BlockCipherMode:               engine.BlockCipherMode(p.BlockCipherMode),
		PaddingMethod:                 engine.PaddingMethod(p.PaddingMethod),
		HashingAlgorithm:              engine.HashAlgorithm(p.HashingAlgorithm),
		KeyRoleType:                   uint32(p.KeyRoleType),
		DigitalSignatureAlgorithm:     uint32(p.DigitalSignatureAlgorithm),
		CryptographicAlgorithm:        engine.Algorithm(p.CryptographicAlgorithm),
		RandomIV:                      p.RandomIV,
		IVLength:                      p.IVLength,
		TagLength:                     p.TagLength,
		FixedFieldLength:              p.FixedFieldLength,
		InvocationFieldLength:         p.InvocationFieldLength,
		CounterLength:                 p.CounterLength,
		InitialCounterValue:           p.InitialCounterValue,
		SaltLength:                    p.SaltLength,
		MaskGenerator:                 uint32(p.MaskGenerator),
		MaskGeneratorHashingAlgorithm: engine.HashAlgorithm(p.MaskGeneratorHashingAlgorithm),
		PSource:                       p.PSource,
		TrailerField:                  p.TrailerField,
	}, nil
}

// aeadTagInline reports whether a GCM tag travels appended to the data:
// before KMIP 1.4 there is no Authenticated Encryption Tag field.
func (s *session) aeadTagInline() bool { return s.version.Major() == 1 && s.version.Minor() < 4 }

func handleEncrypt(ctx context.Context, s *session, req *payloads.EncryptRequestPayload) (kmip.OperationPayload, error) {
	if sp := (streamPart{id: req.UniqueIdentifier, params: req.CryptographicParameters, data: req.Data, iv: req.IVCounterNonce,
		aad: req.AuthenticatedEncryptionAdditionalData, correlation: req.CorrelationValue,
		init: isTrue(req.InitIndicator), final: isTrue(req.FinalIndicator)}); sp.streaming() {
		r, err := s.streamStep(ctx, sp) // stream.go
		if err != nil {
			return nil, err
		}
		resp := &encryptPartResponse{UniqueIdentifier: r.id, Data: r.data, IVCounterNonce: r.iv, CorrelationValue: r.correlation}
		if r.tag != nil {
			if s.aeadTagInline() {
				resp.Data = append(resp.Data, r.tag...)
			} else {
				resp.AuthenticatedEncryptionTag = r.tag
			}
		}
		return resp, nil
	} else if req.FinalIndicator != nil && *req.FinalIndicator && !isTrue(req.InitIndicator) {
		return nil, errReason(kmip.ResultReasonInvalidField, "Final Indicator ends a stream: it needs the stream's Correlation Value")
	}
	if req.Data == nil {
		return nil, errReason(kmip.ResultReasonMissingData, "Encrypt needs Data")
	}
	id, err := s.id(req.UniqueIdentifier)
	if err != nil {
		return nil, err
	}
	params, err := cryptoParams(req.CryptographicParameters)
	if err != nil {
		return nil, err
	}
	res, err := s.eng.Encrypt(ctx, s.p, engine.EncryptRequest{ID: id, Params: params, Data: req.Data, IV: req.IVCounterNonce, AAD: req.AuthenticatedEncryptionAdditionalData})
	if err != nil {
		return nil, err
	}
	resp := &encryptResponse{UniqueIdentifier: res.Object.ID, Data: res.Ciphertext, IVCounterNonce: res.IV}
	if res.Tag != nil {
		if s.aeadTagInline() {
			resp.Data = append(resp.Data, res.Tag...)
		} else {
			resp.AuthenticatedEncryptionTag = res.Tag
		}
	}
	return resp, nil
}

func handleDecrypt(ctx context.Context, s *session, req *payloads.DecryptRequestPayload) (kmip.OperationPayload, error) {
	if sp := (streamPart{decrypt: true, id: req.UniqueIdentifier, params: req.CryptographicParameters, data: req.Data, iv: req.IVCounterNonce,
		aad: req.AuthenticatedEncryptionAdditionalData, tag: req.AuthenticatedEncryptionTag, correlation: req.CorrelationValue,
		init: isTrue(req.InitIndicator), final: isTrue(req.FinalIndicator)}); sp.streaming() {
		r, err := s.streamStep(ctx, sp) // stream.go
		if err != nil {
			return nil, err
		}
		return &decryptPartResponse{UniqueIdentifier: r.id, Data: r.data, CorrelationValue: r.correlation}, nil
	} else if req.FinalIndicator != nil && *req.FinalIndicator && !isTrue(req.InitIndicator) {
		return nil, errReason(kmip.ResultReasonInvalidField, "Final Indicator ends a stream: it needs the stream's Correlation Value")
	}
	if req.Data == nil {
		return nil, errReason(kmip.ResultReasonMissingData, "Decrypt needs Data")
	}
	id, err := s.id(req.UniqueIdentifier)
	if err != nil {
		return nil, err
	}
	params, err := cryptoParams(req.CryptographicParameters)
	if err != nil {
		return nil, err
	}
	o, pt, err := s.eng.Decrypt(ctx, s.p, engine.DecryptRequest{ID: id, Params: params, Data: req.Data, IV: req.IVCounterNonce, AAD: req.AuthenticatedEncryptionAdditionalData, Tag: req.AuthenticatedEncryptionTag})
	if err != nil {
		return nil, err
	}
	s.scrubLater(pt)
	return &decryptResponse{UniqueIdentifier: o.ID, Data: pt}, nil
}

// encryptResponse is the Encrypt response payload. Data is always sent,
// even empty (the codec's own type omits an empty Data, which KMIP
// requires).
type encryptResponse struct {
	UniqueIdentifier           string
	Data                       []byte
	IVCounterNonce             []byte `ttlv:",omitempty"`
	AuthenticatedEncryptionTag []byte `ttlv:",omitempty,version=v1.4.."`
}

func (*encryptResponse) Operation() kmip.Operation { return kmip.OperationEncrypt }

// decryptResponse is the Decrypt response payload, Data always sent.
type decryptResponse struct {
	UniqueIdentifier string
	Data             []byte
}

func (*decryptResponse) Operation() kmip.Operation { return kmip.OperationDecrypt }

// now is the response timestamp source.
var now = time.Now
