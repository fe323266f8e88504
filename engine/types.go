package engine

import "fmt"

// The enumerations below carry the numeric values of the KMIP 1.x
// specification, so the protocol layer converts by a cast. Only the values
// the engine reasons about are named.

// ObjectType is the KMIP Object Type.
type ObjectType uint32

// Object types.
const (
	TypeCertificate  ObjectType = 0x01
	TypeSymmetricKey ObjectType = 0x02
	TypePublicKey    ObjectType = 0x03
	TypePrivateKey   ObjectType = 0x04
	TypeSplitKey     ObjectType = 0x05
	TypeTemplate     ObjectType = 0x06
	TypeSecretData   ObjectType = 0x07
	TypeOpaqueObject ObjectType = 0x08
	TypePGPKey       ObjectType = 0x09
)

var objectTypeNames = map[ObjectType]string{
	TypeCertificate: "Certificate", TypeSymmetricKey: "SymmetricKey", TypePublicKey: "PublicKey",
	TypePrivateKey: "PrivateKey", TypeSplitKey: "SplitKey", TypeTemplate: "Template",
	TypeSecretData: "SecretData", TypeOpaqueObject: "OpaqueObject", TypePGPKey: "PGPKey",
}

func (t ObjectType) String() string {
	if n, ok := objectTypeNames[t]; ok {
		return n
	}
	return fmt.Sprintf("ObjectType(0x%X)", uint32(t))
}

// Valid reports whether t is an object type of KMIP 1.x.
func (t ObjectType) Valid() bool { _, ok := objectTypeNames[t]; return ok }

// Cryptographic reports whether objects of this type are Managed
// Cryptographic Objects, which carry a State and lifecycle dates. Opaque
// Objects (and Templates) do not.
func (t ObjectType) Cryptographic() bool {
	switch t {
	case TypeOpaqueObject, TypeTemplate:
		return false
	}
	return true
}

// State is the KMIP lifecycle State.
type State uint32

// Lifecycle states.
const (
	StatePreActive            State = 0x01
	StateActive               State = 0x02
	StateDeactivated          State = 0x03
	StateCompromised          State = 0x04
	StateDestroyed            State = 0x05
	StateDestroyedCompromised State = 0x06
)

var stateNames = map[State]string{
	StatePreActive: "PreActive", StateActive: "Active", StateDeactivated: "Deactivated",
	StateCompromised: "Compromised", StateDestroyed: "Destroyed", StateDestroyedCompromised: "DestroyedCompromised",
}

func (s State) String() string {
	if n, ok := stateNames[s]; ok {
		return n
	}
	return fmt.Sprintf("State(0x%X)", uint32(s))
}

// Valid reports whether s is a KMIP state.
func (s State) Valid() bool { _, ok := stateNames[s]; return ok }

// Destroyed reports whether the object's material is gone.
func (s State) Destroyed() bool { return s == StateDestroyed || s == StateDestroyedCompromised }

// Algorithm is the KMIP Cryptographic Algorithm.
type Algorithm uint32

// Algorithms the engine implements or recognises.
const (
	AlgDES        Algorithm = 0x01
	Alg3DES       Algorithm = 0x02
	AlgAES        Algorithm = 0x03
	AlgRSA        Algorithm = 0x04
	AlgDSA        Algorithm = 0x05
	AlgECDSA      Algorithm = 0x06
	AlgHMACSHA1   Algorithm = 0x07
	AlgHMACSHA224 Algorithm = 0x08
	AlgHMACSHA256 Algorithm = 0x09
	AlgHMACSHA384 Algorithm = 0x0A
	AlgHMACSHA512 Algorithm = 0x0B
	AlgSKIPJACK   Algorithm = 0x18
	AlgEC         Algorithm = 0x1A
)

// UsageMask is the KMIP Cryptographic Usage Mask.
type UsageMask uint32

// Usage mask bits.
const (
	UsageSign               UsageMask = 0x00000001
	UsageVerify             UsageMask = 0x00000002
	UsageEncrypt            UsageMask = 0x00000004
	UsageDecrypt            UsageMask = 0x00000008
	UsageWrapKey            UsageMask = 0x00000010
	UsageUnwrapKey          UsageMask = 0x00000020
	UsageExport             UsageMask = 0x00000040
	UsageMACGenerate        UsageMask = 0x00000080
	UsageMACVerify          UsageMask = 0x00000100
	UsageDeriveKey          UsageMask = 0x00000200
	UsageContentCommitment  UsageMask = 0x00000400
	UsageKeyAgreement       UsageMask = 0x00000800
	UsageCertificateSign    UsageMask = 0x00001000
	UsageCRLSign            UsageMask = 0x00002000
	UsageGenerateCryptogram UsageMask = 0x00004000
	UsageValidateCryptogram UsageMask = 0x00008000
	UsageTranslateEncrypt   UsageMask = 0x00010000
	UsageTranslateDecrypt   UsageMask = 0x00020000
	UsageTranslateWrap      UsageMask = 0x00040000
	UsageTranslateUnwrap    UsageMask = 0x00080000
)

// NameType is the KMIP Name Type.
type NameType uint32

// Name types.
const (
	NameUninterpretedText NameType = 0x01
	NameURI               NameType = 0x02
)

// LinkType is the KMIP Link Type.
type LinkType uint32

// Link types.
const (
	LinkCertificate          LinkType = 0x101
	LinkPublicKey            LinkType = 0x102
	LinkPrivateKey           LinkType = 0x103
	LinkDerivationBaseObject LinkType = 0x104
	LinkDerivedKey           LinkType = 0x105
	LinkReplacementObject    LinkType = 0x106
	LinkReplacedObject       LinkType = 0x107
	LinkParent               LinkType = 0x108
	LinkChild                LinkType = 0x109
	LinkPrevious             LinkType = 0x10A
	LinkNext                 LinkType = 0x10B
	LinkPKCS12Certificate    LinkType = 0x10C
	LinkPKCS12Password       LinkType = 0x10D
	LinkWrappingKey          LinkType = 0x10E
)

// BlockCipherMode is the KMIP Block Cipher Mode.
type BlockCipherMode uint32

// Block cipher modes.
const (
	ModeCBC BlockCipherMode = 0x01
	ModeECB BlockCipherMode = 0x02
	ModeCFB BlockCipherMode = 0x04
	ModeOFB BlockCipherMode = 0x05
	ModeCTR BlockCipherMode = 0x06
	ModeGCM BlockCipherMode = 0x09
)

// PaddingMethod is the KMIP Padding Method.
type PaddingMethod uint32

// Padding methods.
const (
	PadNone  PaddingMethod = 0x01
	PadOAEP  PaddingMethod = 0x02
	PadPKCS5 PaddingMethod = 0x03
	PadPKCS1 PaddingMethod = 0x08
	PadPSS   PaddingMethod = 0x0A
)

// HashAlgorithm is the KMIP Hashing Algorithm.
type HashAlgorithm uint32

// Hashing algorithms.
const (
	HashSHA1   HashAlgorithm = 0x04
	HashSHA224 HashAlgorithm = 0x05
	HashSHA256 HashAlgorithm = 0x06
	HashSHA384 HashAlgorithm = 0x07
	HashSHA512 HashAlgorithm = 0x08
)

// SecretDataType is the KMIP Secret Data Type.
type SecretDataType uint32

// Secret data types.
const (
	SecretPassword SecretDataType = 0x01
	SecretSeed     SecretDataType = 0x02
)

// RevocationReasonCode is the KMIP Revocation Reason Code.
type RevocationReasonCode uint32

// Revocation reason codes.
const (
	RevokeUnspecified          RevocationReasonCode = 0x01
	RevokeKeyCompromise        RevocationReasonCode = 0x02
	RevokeCACompromise         RevocationReasonCode = 0x03
	RevokeAffiliationChanged   RevocationReasonCode = 0x04
	RevokeSuperseded           RevocationReasonCode = 0x05
	RevokeCessationOfOperation RevocationReasonCode = 0x06
	RevokePrivilegeWithdrawn   RevocationReasonCode = 0x07
)

// Valid reports whether c is a KMIP 1.x revocation reason code.
func (c RevocationReasonCode) Valid() bool {
	return c >= RevokeUnspecified && c <= RevokePrivilegeWithdrawn
}

// Role is what a principal may do inside its tenant.
type Role string

// Roles.
const (
	RoleAdmin   Role = "admin"   // every operation in the tenant, including Destroy
	RoleApp     Role = "app"     // create and use keys; may not Destroy
	RoleAuditor Role = "auditor" // read attributes only
)

// Valid reports whether r is a known role.
func (r Role) Valid() bool { return r == RoleAdmin || r == RoleApp || r == RoleAuditor }

// Principal is the authenticated caller: derived only from a verified
// client certificate chain (or a registered certificate), never from the
// request.
type Principal struct {
	Tenant string
	Member string
	Role   Role
	// CertHash is the hex SHA-256 of the client certificate, for the audit log.
	CertHash string
}
