// Package oasis replays the OASIS KMIP 1.0–1.4 XML test vectors (the ones
// shipped in github.com/ovh/kmip-go/kmiptest/testdata) against a live KMIP
// server and reports, file by file, whether the server answered as the
// specification requires.
//
// It owns: loading and checking the vector files (Load, LoadDir, Parse),
// building each binary TTLV request from its XML (placeholders substituted,
// decoded into a kmip.RequestMessage and re-encoded), sending it through a
// RoundTripper (TTLVConn for a real connection), comparing the response
// with the expected one (Vector.Run), and the Markdown report (WriteReport).
// It must never: print (results are returned as data), change a vector on
// disk, or accept a difference without a tolerance listed below and in
// TOLERANCES.md, each of which holds for any correct server.
//
// # Running a vector
//
// The requests of a vector run in order over one RoundTripper (one
// connection, one client identity), and the run stops at the first step
// whose response differs: later steps depend on the state the earlier ones
// created. $NOW and $NOW±n in requests are the start of the run (to the
// second) ± n seconds, so that all dates of one vector are consistent.
//
// # Comparison
//
// Both responses are compared as generic TTLV trees (the expected one read
// from the XML with context: an AttributeValue takes the enumeration and
// bit-mask names of its attribute). Fields are matched in order, by tag,
// except where a tolerance says otherwise. The tolerances:
//
//   - Header TimeStamp: presence and type only (the server's clock).
//   - Dates from the reference server's clock: a literal DateTime in an
//     expected response that the client never sent in this run (Initial
//     Date, Last Change Date, dates set by Activate/Revoke/Destroy/ReKey,
//     the 2009–2017 clocks of the reference runs) is compared by presence
//     and type. A date the client sent must come back exactly.
//   - $NOW±n in an expected response: a DateTime between the start of the
//     run and the arrival of the response, shifted by n, within the
//     allowed clock skew (Options.ClockSkew).
//   - Placeholders in expected responses ($UNIQUE_IDENTIFIER_0, $DATA_0,
//     $KEY_MATERIAL_0, ...) bind on first sight to the actual value and
//     must be equal at every later sight; bound values are substituted
//     into later requests. Two $UNIQUE_IDENTIFIER_n placeholders may not
//     bind to the same identifier. A Correlation Value placeholder is
//     rebound when the request starts a new stream (Init Indicator), an
//     Asynchronous Correlation Value when the result is Operation Pending:
//     the server mints a new value there although the vectors reuse names.
//   - Literal identifiers (Unique Identifier, Private/Public Key Unique
//     Identifier, Linked Object Identifier) in an expected response that
//     the client never sent are the reference server's identifiers: they
//     bind like placeholders.
//   - Result Reason General Failure (the unclassified catch-all) accepts
//     any reason; the Result Status must still be Operation Failed.
//   - Result Message: free text; never fails, absence is noted. Server and
//     Client Correlation Values in the response header: the server's choice.
//   - Values derived from randomness the server chose are compared by type,
//     and by length where the request fixes it: the key value (Get,
//     Export) and the digest (value and hashed format) of objects the server generated
//     (Create, CreateKeyPair, ReKey, ReKeyKeyPair, CreateSplitKey, and
//     DeriveKey/JoinSplitKey of a generated input), the certificate and
//     its CA-dependent attributes (issuer, serial, length, signature
//     algorithm, digest) from Certify/ReCertify, outputs of operations
//     keyed by a generated object, RSA encryption (PKCS#1 v1.5 and OAEP are
//     randomized), RSA-PSS, ECDSA and DSA signatures, ciphertext and tag
//     under an IV the server generated, and RNG Retrieve output. Key values
//     and digests of registered objects, and ciphertexts under known keys
//     and IVs, must match exactly.
//   - Such a tolerated literal that a later request repeats (a ciphertext
//     fed back to Decrypt, a reference identifier) is replaced in that
//     request by the value this server returned in its place.
//   - Attribute lists: the order of Attribute structures (and of Attribute
//     Names in Get Attribute List) is not significant, and an absent
//     Attribute Index equals 0. Get Attributes without names and Get
//     Attribute List may return more attributes than the reference server;
//     with names, an extra attribute must have been requested. An expected
//     attribute may be missing only if KMIP leaves it to the server (Lease
//     Time, Fresh, Original Creation Date, Random Number Generator,
//     Operation Policy Name, Usage Limits) and the client did not set it.
//   - Implicitly set attributes (Template-Attribute in a Create, Register,
//     CreateKeyPair, ReKey, ... response) may be present or absent; their
//     values are the server's defaults (type only).
//   - Query: what a server supports is its business. Every returned field
//     must answer a requested Query Function and have the right type;
//     Operations and Object Types must be enumerations without duplicates,
//     not empty when the vector lists some; Vendor Identification must be
//     present when expected (value free); Server Information and the
//     capability structures are free.
//   - Discover Versions without a client list: the expected versions must
//     appear in the same order, the server may support more.
//   - RNG Seed: Data Length (the seed accepted) may be 0 to the length sent.
//   - Obtain Lease: Lease Time (the server's lease policy) is compared by type.
//   - Locate: Located Items (KMIP 1.3+) may be present or absent.
//
// The vectors also need repairs that are not tolerances: runs of spaces
// inside TextString values (a conversion artifact of the published files,
// "Object   Type") are collapsed in requests and expected responses;
// enumeration names are resolved with their specification aliases and
// spelling variants; a placeholder used in a request but never named in an
// expected response ($DATA_0 for the previous ciphertext) takes the latest
// value the server returned under that tag; a request marked "[REPEAT]
// until ..." is resent until it matches (Options.RepeatTimeout); stray text
// between messages (line numbers, "# TIME n") is ignored.
//
// Files that a server cannot or should not pass are listed in
// NotApplicable with their reason.
package oasis
