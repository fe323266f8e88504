package kmip

import (
	"context"
	"slices"

	"github.com/ovh/kmip-go"
	"github.com/ovh/kmip-go/payloads"
	"github.com/ovh/kmip-go/ttlv"
)

// Versions are the protocol versions served, most preferred first.
var Versions = []kmip.ProtocolVersion{kmip.V1_4, kmip.V1_3, kmip.V1_2, kmip.V1_1, kmip.V1_0}

func supportedVersion(v kmip.ProtocolVersion) bool { return slices.Contains(Versions, v) }

// handleDiscoverVersions answers with the versions both sides support, in
// the server's order of preference (KMIP 1.4 §4.26).
func handleDiscoverVersions(_ context.Context, _ *session, req *payloads.DiscoverVersionsRequestPayload) (kmip.OperationPayload, error) {
	resp := &payloads.DiscoverVersionsResponsePayload{}
	for _, v := range Versions {
		if len(req.ProtocolVersion) == 0 || slices.Contains(req.ProtocolVersion, v) {
			resp.ProtocolVersion = append(resp.ProtocolVersion, v)
		}
	}
	return resp, nil
}

// operationSince is the KMIP 1.x minor version that defined op.
func operationSince(op kmip.Operation) int {
	switch {
	case op >= kmip.OperationImport:
		return 4
	case op >= kmip.OperationEncrypt:
		return 2
	case op >= kmip.OperationReKeyKeyPair:
		return 1
	}
	return 0
}

// VendorIdentification is what Query reports as the vendor.
const VendorIdentification = "miniKMS"

// ServerVersion is reported in Query Server Information; set by the build.
var ServerVersion = "dev"

var supportedObjectTypes = []kmip.ObjectType{kmip.ObjectTypeCertificate, kmip.ObjectTypeSymmetricKey, kmip.ObjectTypePublicKey,
	kmip.ObjectTypePrivateKey, kmip.ObjectTypeSecretData, kmip.ObjectTypeOpaqueObject, kmip.ObjectTypeTemplate,
	kmip.ObjectTypeSplitKey, kmip.ObjectTypePGPKey}

func handleQuery(_ context.Context, s *session, req *payloads.QueryRequestPayload) (kmip.OperationPayload, error) {
	resp := &payloads.QueryResponsePayload{}
	for _, f := range req.QueryFunction {
		switch f {
		case kmip.QueryFunctionOperations:
			for _, op := range supportedOperations() {
				if s.version.Minor() >= operationSince(op) {
					resp.Operations = append(resp.Operations, op)
				}
			}
		case kmip.QueryFunctionObjects:
			resp.ObjectType = slices.Clone(supportedObjectTypes)
		case kmip.QueryFunctionServerInformation:
			resp.VendorIdentification = VendorIdentification
			resp.ServerInformation = &ttlv.Value{Tag: kmip.TagServerInformation, Value: ttlv.Struct{
				{Tag: kmip.TagVendorIdentification, Value: "miniKMS " + ServerVersion},
			}}
		case kmip.QueryFunctionApplicationNamespaces, kmip.QueryFunctionExtensionList, kmip.QueryFunctionExtensionMap,
			kmip.QueryFunctionAttestationTypes, kmip.QueryFunctionRNGs, kmip.QueryFunctionValidations, kmip.QueryFunctionClientRegistrationMethods:
			// Nothing to report: no namespaces, extensions, attestation,
			// RNG choices, validations or client registration methods.
		case kmip.QueryFunctionProfiles:
			resp.ProfileInformation = profiles()
		case kmip.QueryFunctionCapabilities:
			f := false
			t := true
			undo := s.eng.CanUndoCreate()
			resp.CapabilityInformation = []kmip.CapabilityInformation{{
				StreamingCapability: &f, AsynchronousCapability: &f, AttestationCapability: &f,
				BatchUndoCapability: &undo, BatchContinueCapability: &t,
			}}
		default:
			return nil, errReason(kmip.ResultReasonInvalidField, "unknown Query Function")
		}
	}
	return resp, nil
}

// profiles lists the KMIP profiles this server implements.
func profiles() []kmip.ProfileInformation {
	names := []kmip.ProfileName{
		kmip.ProfileNameBaselineServerBasicKMIPV1_2,
		kmip.ProfileNameBaselineServerTLSV1_2KMIPV1_2,
		kmip.ProfileNameSymmetricKeyLifecycleServerKMIPV1_0,
		kmip.ProfileNameSymmetricKeyLifecycleServerKMIPV1_1,
		kmip.ProfileNameSymmetricKeyLifecycleServerKMIPV1_2,
		kmip.ProfileNameSymmetricKeyFoundryServerKMIPV1_0,
		kmip.ProfileNameSymmetricKeyFoundryServerKMIPV1_1,
		kmip.ProfileNameSymmetricKeyFoundryServerKMIPV1_2,
		kmip.ProfileNameBasicCryptographicServerKMIPV1_2,
		kmip.ProfileNameOpaqueManagedObjectStoreServerKMIPV1_0,
		kmip.ProfileNameOpaqueManagedObjectStoreServerKMIPV1_1,
		kmip.ProfileNameOpaqueManagedObjectStoreServerKMIPV1_2,
	}
	out := make([]kmip.ProfileInformation, len(names))
	for i, n := range names {
		out[i] = kmip.ProfileInformation{ProfileName: n}
	}
	return out
}
