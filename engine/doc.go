// Package engine is the domain of miniKMS: tenants, scopes, managed objects,
// their lifecycle and attributes, authorization, the cryptographic
// operations, and the key hierarchy.
//
// # Key hierarchy
//
//	root key (Keyring: process memory or HSM; never leaves the Keyring)
//	 └─ tenant master key = HKDF-Expand-SHA256(PRK=root, info="minikms/v1|"+salt+"|"+tenant, L=32)
//	     └─ managed object material, stored only wrapped:
//	        AES-256-GCM(tenant master key, nonce, material, AAD(tenant, object id, root version))
//
// With L=32 HKDF-Expand is a single HMAC-SHA256(root, info||0x01), so the
// same derivation runs in software and inside a PKCS#11 token
// (CKM_SHA256_HMAC on a CKK_GENERIC_SECRET key). Tenant ids never contain
// '|', so the info string is unambiguous.
//
// The store keeps a key check value (KCV) for every root version; Open
// refuses to run with a root key whose KCV differs, instead of writing data
// nobody can read later.
//
// # What the engine must never do
//
//   - return, log or put into an error any key material or plaintext;
//   - let a principal of one tenant observe anything of another tenant: a
//     foreign object answers exactly like a missing one (ErrNotFound);
//   - import the protocol layer (kmip), SQL, or TLS. It declares the
//     interfaces it needs (Store, Keyring) and speaks in its own types, whose
//     enumeration values equal the KMIP ones so the protocol layer converts by
//     a cast.
package engine
