// Package pki owns miniKMS's certificate hierarchy and the identities it
// carries:
//
//	Root CA     ECDSA P-384, self-signed, path length 1
//	 ├─ Tenant CA   ECDSA P-384, path length 0, tenant id in a custom extension
//	 │   └─ Member  ECDSA P-256, not a CA, ExtKeyUsage ClientAuth,
//	 │              tenant id, member id and role in custom extensions
//	 └─ Server      the KMIP/HTTPS listener certificate (ServerAuth)
//
// # Object identifiers
//
// The custom extensions live under an arc that needs no registration. The
// obvious candidate, 2.25.<UUID> (ITU-T X.667), cannot be used: its single
// 128-bit component makes Go's crypto/x509 (and therefore every Go TLS
// stack) reject the certificate ("malformed extension OID field"). We use
// instead the GUID-derived arc under 1.2.840.113556.1.8000.2554, which
// Microsoft publishes for exactly this purpose: a random GUID split into
// seven components of at most 24 bits each. Our GUID is
// 3e347679-0c6c-48d6-9b22-7c038b527ec0, giving
//
//	1.2.840.113556.1.8000.2554.15924.30329.3180.18646.39714.8127371.5406400
//	  .1  tenant id  (UTF8String)
//	  .2  member id  (UTF8String)
//	  .3  role       (UTF8String: admin, app, auditor)
//
// All three are non-critical, so other TLS stacks that do not know them
// still build and verify the chains.
//
// # What this package must never do
//
// Hand out CA private keys (they are crypto.Signers from a KeySource: sealed
// software keys, or HSM objects), trust anything in a certificate before its
// chain is verified, or derive a principal from anything but a verified
// chain.
package pki
