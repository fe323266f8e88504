package engine

import (
	"math/big"
	"time"
)

// Attribute value types. Field names follow the KMIP specification (and the
// Go KMIP codec), so the protocol layer converts them field by field.

// Name is the value of the Name attribute.
type Name struct {
	NameValue string
	NameType  NameType
}

// Link is the value of the Link attribute.
type Link struct {
	LinkType               LinkType
	LinkedObjectIdentifier string
}

// ApplicationSpecificInformation is the value of that attribute.
type ApplicationSpecificInformation struct {
	ApplicationNamespace string
	ApplicationData      string
}

// CryptographicParameters is the value of the Cryptographic Parameters
// attribute, and the parameters of a cryptographic request.
type CryptographicParameters struct {
	BlockCipherMode               BlockCipherMode
	PaddingMethod                 PaddingMethod
	HashingAlgorithm              HashAlgorithm
	KeyRoleType                   uint32
	DigitalSignatureAlgorithm     uint32
	CryptographicAlgorithm        Algorithm
	RandomIV                      *bool
	IVLength                      int32
	TagLength                     int32
	FixedFieldLength              int32
	InvocationFieldLength         int32
	CounterLength                 int32
	InitialCounterValue           *int32
	SaltLength                    *int32
	MaskGenerator                 uint32
	MaskGeneratorHashingAlgorithm HashAlgorithm
	PSource                       []byte
	TrailerField                  *int32
}

// CryptographicDomainParameters is the value of that attribute.
type CryptographicDomainParameters struct {
	Qlength          int32
	RecommendedCurve uint32
}

// Digest is the value of the Digest attribute.
type Digest struct {
	HashingAlgorithm HashAlgorithm
	DigestValue      []byte
	KeyFormatType    uint32
}

// UsageLimits is the value of the Usage Limits attribute.
type UsageLimits struct {
	UsageLimitsTotal int64
	UsageLimitsCount *int64
	UsageLimitsUnit  uint32
}

// RevocationReason is the value of the Revocation Reason attribute.
type RevocationReason struct {
	RevocationReasonCode RevocationReasonCode
	RevocationMessage    string
}

// CertificateIdentifier is the KMIP 1.0 Certificate Identifier.
type CertificateIdentifier struct {
	Issuer       string
	SerialNumber string
}

// CertificateSubject is the KMIP 1.0 Certificate Subject.
type CertificateSubject struct {
	CertificateSubjectDistinguishedName string
	CertificateSubjectAlternativeName   []string
}

// CertificateIssuer is the KMIP 1.0 Certificate Issuer.
type CertificateIssuer struct {
	CertificateIssuerDistinguishedName string
	CertificateIssuerAlternativeName   []string
}

// X509CertificateIdentifier is the KMIP 1.1 X.509 Certificate Identifier.
type X509CertificateIdentifier struct {
	IssuerDistinguishedName []byte
	CertificateSerialNumber []byte
}

// X509CertificateSubject is the KMIP 1.1 X.509 Certificate Subject.
type X509CertificateSubject struct {
	SubjectDistinguishedName []byte
	SubjectAlternativeName   [][]byte
}

// X509CertificateIssuer is the KMIP 1.1 X.509 Certificate Issuer.
type X509CertificateIssuer struct {
	IssuerDistinguishedName []byte
	IssuerAlternativeName   [][]byte
}

// AlternativeName is the KMIP 1.2 Alternative Name.
type AlternativeName struct {
	AlternativeNameValue string
	AlternativeNameType  uint32
}

// KeyValueLocation is the KMIP 1.2 Key Value Location.
type KeyValueLocation struct {
	KeyValueLocationValue string
	KeyValueLocationType  uint32
}

// RNGParameters is the KMIP 1.3 Random Number Generator attribute.
type RNGParameters struct {
	RNGAlgorithm           uint32
	CryptographicAlgorithm Algorithm
	CryptographicLength    int32
	HashingAlgorithm       HashAlgorithm
	DRBGAlgorithm          uint32
	RecommendedCurve       uint32
	FIPS186Variation       uint32
	PredictionResistance   *bool
}

// Enum is an enumerated attribute value the engine does not interpret
// (Certificate Type, Digital Signature Algorithm, ...).
type Enum uint32

// ItemKind is the type of a generic Item.
type ItemKind uint8

// Item kinds, numbered like the TTLV item types.
const (
	KindStructure   ItemKind = 0x01
	KindInteger     ItemKind = 0x02
	KindLongInteger ItemKind = 0x03
	KindBigInteger  ItemKind = 0x04
	KindEnumeration ItemKind = 0x05
	KindBoolean     ItemKind = 0x06
	KindTextString  ItemKind = 0x07
	KindByteString  ItemKind = 0x08
	KindDateTime    ItemKind = 0x09
	KindInterval    ItemKind = 0x0A
)

// Item is the value of a custom attribute: any typed value or structure,
// kept exactly as the client sent it. Only the field of its Kind is set.
type Item struct {
	Tag      uint32        `json:"tag,omitempty"`
	Kind     ItemKind      `json:"kind"`
	Int      int64         `json:"int,omitempty"`  // Integer, LongInteger, Enumeration
	Big      *big.Int      `json:"big,omitempty"`  // BigInteger
	Bool     bool          `json:"bool,omitempty"` // Boolean
	Text     string        `json:"text,omitempty"` // TextString
	Bytes    []byte        `json:"bytes,omitempty"`
	Time     time.Time     `json:"time,omitzero"`
	Interval time.Duration `json:"interval,omitempty"`
	Fields   []Item        `json:"fields,omitempty"` // Structure
}
