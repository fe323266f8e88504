package kmip

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"testing"

	"github.com/ovh/kmip-go"
)

// FuzzParseCSR: any Certify request body, DER or PEM, is parsed and its
// signature checked, or refused with Invalid Field / Feature Not
// Supported; never a panic.
func FuzzParseCSR(f *testing.F) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		f.Fatal(err)
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "fuzz"}, DNSNames: []string{"a.example"}}, key)
	if err != nil {
		f.Fatal(err)
	}
	pemCSR := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der})
	f.Add(uint32(kmip.CertificateRequestTypePKCS_10), der)
	f.Add(uint32(kmip.CertificateRequestTypePEM), pemCSR)
	f.Add(uint32(0), der[:len(der)-3])
	f.Add(uint32(kmip.CertificateRequestTypePEM), []byte("-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n"))
	f.Add(uint32(kmip.CertificateRequestTypeCRMF), der)
	f.Fuzz(func(t *testing.T, typ uint32, b []byte) {
		csr, err := parseCSR(kmip.CertificateRequestType(typ), b)
		if err == nil {
			if csr == nil || csr.CheckSignature() != nil {
				t.Fatal("an unverified request was accepted")
			}
			return
		}
		var ke *kmipError
		if !errors.As(err, &ke) || (ke.reason != kmip.ResultReasonInvalidField && ke.reason != kmip.ResultReasonFeatureNotSupported) {
			t.Fatalf("refused without a precise reason: %v", err)
		}
	})
}
