package engine

import (
	"reflect"
	"strings"
	"time"
)

// Attribute names of KMIP 1.0–1.4.
const (
	AttrUniqueIdentifier               = "Unique Identifier"
	AttrName                           = "Name"
	AttrObjectType                     = "Object Type"
	AttrCryptographicAlgorithm         = "Cryptographic Algorithm"
	AttrCryptographicLength            = "Cryptographic Length"
	AttrCryptographicParameters        = "Cryptographic Parameters"
	AttrCryptographicDomainParameters  = "Cryptographic Domain Parameters"
	AttrCertificateType                = "Certificate Type"
	AttrCertificateLength              = "Certificate Length"
	AttrX509CertificateIdentifier      = "X.509 Certificate Identifier"
	AttrX509CertificateSubject         = "X.509 Certificate Subject"
	AttrX509CertificateIssuer          = "X.509 Certificate Issuer"
	AttrCertificateIdentifier          = "Certificate Identifier"
	AttrCertificateSubject             = "Certificate Subject"
	AttrCertificateIssuer              = "Certificate Issuer"
	AttrDigitalSignatureAlgorithm      = "Digital Signature Algorithm"
	AttrDigest                         = "Digest"
	AttrOperationPolicyName            = "Operation Policy Name"
	AttrCryptographicUsageMask         = "Cryptographic Usage Mask"
	AttrLeaseTime                      = "Lease Time"
	AttrUsageLimits                    = "Usage Limits"
	AttrState                          = "State"
	AttrInitialDate                    = "Initial Date"
	AttrActivationDate                 = "Activation Date"
	AttrProcessStartDate               = "Process Start Date"
	AttrProtectStopDate                = "Protect Stop Date"
	AttrDeactivationDate               = "Deactivation Date"
	AttrDestroyDate                    = "Destroy Date"
	AttrCompromiseOccurrenceDate       = "Compromise Occurrence Date"
	AttrCompromiseDate                 = "Compromise Date"
	AttrRevocationReason               = "Revocation Reason"
	AttrArchiveDate                    = "Archive Date"
	AttrObjectGroup                    = "Object Group"
	AttrFresh                          = "Fresh"
	AttrLink                           = "Link"
	AttrApplicationSpecificInformation = "Application Specific Information"
	AttrContactInformation             = "Contact Information"
	AttrLastChangeDate                 = "Last Change Date"
	AttrAlternativeName                = "Alternative Name"
	AttrKeyValuePresent                = "Key Value Present"
	AttrKeyValueLocation               = "Key Value Location"
	AttrOriginalCreationDate           = "Original Creation Date"
	AttrRandomNumberGenerator          = "Random Number Generator"
	AttrPKCS12FriendlyName             = "PKCS#12 Friendly Name"
	AttrDescription                    = "Description"
	AttrComment                        = "Comment"
	AttrSensitive                      = "Sensitive"
	AttrAlwaysSensitive                = "Always Sensitive"
	AttrExtractable                    = "Extractable"
	AttrNeverExtractable               = "Never Extractable"
)

// Limits on attributes, checked before anything is stored.
const (
	// MaxAttributeInstances bounds the attribute instances of one object.
	MaxAttributeInstances = 256
	// MaxTextLength bounds a text attribute value (names, custom strings), in bytes.
	MaxTextLength = 4096
	// MaxBytesLength bounds a byte-string attribute value.
	MaxBytesLength = 16384
	// MaxAttributeNameLength bounds a custom attribute's name.
	MaxAttributeNameLength = 256
	// MaxItemDepth bounds the nesting of a custom structured attribute.
	MaxItemDepth = 8
)

// who may set an attribute.
type setter uint8

const (
	byServer setter = 1 << iota
	byClient        // may be given in a Create/Register template or added
)

// AttrDef is the rule set of one attribute (KMIP 1.4 §3, "Attribute rules").
type AttrDef struct {
	Name string
	// Type is the Go type of a value.
	Type reflect.Type
	// Multi: several instances allowed.
	Multi bool
	// Initially: who may set it when the object is made.
	initially setter
	// ClientModifiable: Modify Attribute is allowed (subject to state rules).
	ClientModifiable bool
	// ClientDeletable: Delete Attribute is allowed.
	ClientDeletable bool
	// objects it applies to; nil means all.
	appliesTo []ObjectType
}

// ClientSettable reports whether a client may give the attribute when an
// object is made, or add it later.
func (d *AttrDef) ClientSettable() bool { return d.initially&byClient != 0 }

// AppliesTo reports whether the attribute is defined for objects of type t.
func (d *AttrDef) AppliesTo(t ObjectType) bool {
	if d.appliesTo == nil {
		return true
	}
	for _, a := range d.appliesTo {
		if a == t {
			return true
		}
	}
	return false
}

var (
	keys       = []ObjectType{TypeCertificate, TypeSymmetricKey, TypePublicKey, TypePrivateKey, TypeSplitKey, TypeTemplate, TypePGPKey}
	cryptoObjs = []ObjectType{TypeCertificate, TypeSymmetricKey, TypePublicKey, TypePrivateKey, TypeSplitKey, TypeTemplate, TypeSecretData, TypePGPKey}
	certs      = []ObjectType{TypeCertificate, TypePGPKey}
	asym       = []ObjectType{TypePublicKey, TypePrivateKey, TypeTemplate, TypePGPKey}
)

func def(name string, zero any, multi bool, init setter, mod, del bool, applies []ObjectType) *AttrDef {
	return &AttrDef{Name: name, Type: reflect.TypeOf(zero), Multi: multi, initially: init,
		ClientModifiable: mod, ClientDeletable: del, appliesTo: applies}
}

var attrDefs = map[string]*AttrDef{}

func init() {
	for _, d := range []*AttrDef{
		def(AttrUniqueIdentifier, "", false, byServer, false, false, nil),
		def(AttrName, Name{}, true, byClient, true, true, nil),
		def(AttrObjectType, ObjectType(0), false, byServer, false, false, nil),
		def(AttrCryptographicAlgorithm, Algorithm(0), false, byServer|byClient, false, false, keys),
		def(AttrCryptographicLength, int32(0), false, byServer|byClient, false, false, keys),
		def(AttrCryptographicParameters, CryptographicParameters{}, true, byClient, true, true, keys),
		def(AttrCryptographicDomainParameters, CryptographicDomainParameters{}, false, byClient, false, false, asym),
		def(AttrCertificateType, Enum(0), false, byServer|byClient, false, false, certs),
		def(AttrCertificateLength, int32(0), false, byServer, false, false, certs),
		def(AttrX509CertificateIdentifier, X509CertificateIdentifier{}, false, byServer, false, false, certs),
		def(AttrX509CertificateSubject, X509CertificateSubject{}, false, byServer, false, false, certs),
		def(AttrX509CertificateIssuer, X509CertificateIssuer{}, false, byServer, false, false, certs),
		def(AttrCertificateIdentifier, CertificateIdentifier{}, false, byServer, false, false, certs),
		def(AttrCertificateSubject, CertificateSubject{}, false, byServer, false, false, certs),
		def(AttrCertificateIssuer, CertificateIssuer{}, false, byServer, false, false, certs),
		def(AttrDigitalSignatureAlgorithm, Enum(0), false, byServer, false, false, certs),
		def(AttrDigest, Digest{}, true, byServer, false, false, nil),
		def(AttrOperationPolicyName, "", false, byServer|byClient, false, false, nil),
		def(AttrCryptographicUsageMask, UsageMask(0), false, byServer|byClient, false, false, cryptoObjs),
		def(AttrLeaseTime, time.Duration(0), false, byServer, false, false, cryptoObjs),
		def(AttrUsageLimits, UsageLimits{}, false, byServer|byClient, true, true, keys),
		def(AttrState, State(0), false, byServer, false, false, cryptoObjs),
		def(AttrInitialDate, time.Time{}, false, byServer, false, false, nil),
		def(AttrActivationDate, time.Time{}, false, byServer|byClient, true, false, cryptoObjs),
		def(AttrProcessStartDate, time.Time{}, false, byServer|byClient, true, false, keys),
		def(AttrProtectStopDate, time.Time{}, false, byServer|byClient, true, false, keys),
		def(AttrDeactivationDate, time.Time{}, false, byServer|byClient, true, false, cryptoObjs),
		def(AttrDestroyDate, time.Time{}, false, byServer, false, false, nil),
		def(AttrCompromiseOccurrenceDate, time.Time{}, false, byServer, false, false, nil),
		def(AttrCompromiseDate, time.Time{}, false, byServer, false, false, nil),
		def(AttrRevocationReason, RevocationReason{}, false, byServer, false, false, nil),
		def(AttrArchiveDate, time.Time{}, false, byServer, false, false, nil),
		def(AttrObjectGroup, "", true, byServer|byClient, true, true, nil),
		def(AttrFresh, false, false, byServer|byClient, false, false, nil),
		def(AttrLink, Link{}, true, byServer|byClient, true, true, nil),
		def(AttrApplicationSpecificInformation, ApplicationSpecificInformation{}, true, byServer|byClient, true, true, nil),
		def(AttrContactInformation, "", false, byServer|byClient, true, true, nil),
		def(AttrLastChangeDate, time.Time{}, false, byServer, false, false, nil),
		def(AttrAlternativeName, AlternativeName{}, true, byServer|byClient, true, true, nil),
		def(AttrKeyValuePresent, false, false, byServer, false, false, nil),
		def(AttrKeyValueLocation, KeyValueLocation{}, true, byServer|byClient, false, false, nil),
		def(AttrOriginalCreationDate, time.Time{}, false, byServer|byClient, false, false, nil),
		def(AttrRandomNumberGenerator, RNGParameters{}, false, byServer|byClient, false, false, cryptoObjs),
		def(AttrPKCS12FriendlyName, "", false, byClient, true, true, nil),
		def(AttrDescription, "", false, byClient, true, true, nil),
		def(AttrComment, "", false, byClient, true, true, nil),
		def(AttrSensitive, false, false, byServer|byClient, true, false, nil),
		def(AttrAlwaysSensitive, false, false, byServer, false, false, nil),
		def(AttrExtractable, false, false, byServer|byClient, true, false, nil),
		def(AttrNeverExtractable, false, false, byServer, false, false, nil),
	} {
		attrDefs[d.Name] = d
	}
}

var itemType = reflect.TypeOf(Item{})

// customDef is the rule set of client custom attributes ("x-" prefix).
var customDef = &AttrDef{Type: itemType, Multi: true, initially: byClient, ClientModifiable: true, ClientDeletable: true}

// serverCustomDef is the rule set of server custom attributes ("y-").
var serverCustomDef = &AttrDef{Type: itemType, Multi: true, initially: byServer}

// IsCustomAttribute reports whether name is a custom attribute name.
func IsCustomAttribute(name string) bool {
	return strings.HasPrefix(name, "x-") || strings.HasPrefix(name, "y-")
}

// LookupAttr returns the rules of a named attribute, or nil if the name is
// neither a KMIP 1.x attribute nor a custom one.
func LookupAttr(name string) *AttrDef {
	if d, ok := attrDefs[name]; ok {
		return d
	}
	switch {
	case strings.HasPrefix(name, "x-"):
		d := *customDef
		d.Name = name
		return &d
	case strings.HasPrefix(name, "y-"):
		d := *serverCustomDef
		d.Name = name
		return &d
	}
	return nil
}

// StandardAttributeNames lists the KMIP attribute names the engine knows.
func StandardAttributeNames() []string {
	out := make([]string, 0, len(attrDefs))
	for n := range attrDefs {
		out = append(out, n)
	}
	return out
}
