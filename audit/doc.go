// Package audit is miniKMS's tamper-evident audit log: a hash chain of
// every KMIP operation (success or failure), refused client
// authentication, auditor API read and administrative command, stored in
// table kms_audit_log next to the keys, verified end to end by `minikms
// audit verify`, and anchored by periodically signed checkpoints.
//
// # Chain
//
//	entry_hash(n) = SHA-256(entry_hash(n-1) || SHA-256(canonical(n)))
//	entry_hash(0) = 32 zero bytes (the genesis)
//
// canonical(n), version 1, is the ASCII bytes "minikms-audit/v1", then
// the sequence number and the time in Unix nanoseconds (UTC, microsecond
// resolution) as big-endian uint64, then node, tenant, member, certificate
// hash, role, remote address, action, object, status and reason, each as a
// big-endian uint32 length and UTF-8 bytes, then the number of details
// (uint32) and each detail's key and value the same way, sorted by key.
// The content is hashed once more before chaining so that a tenant
// auditor, who sees other tenants' records only as content hashes, can
// still follow the chain (see Redact): the seed's formula
// SHA-256(prev || timestamp || action || actor || details) with one
// indirection.
//
// Records never hold key material, plaintext, ciphertext or PINs: the KMIP
// server records who (tenant, member, certificate hash, role, address)
// did what (operation) to which object, and how it ended (result status,
// reason, message). Text from clients is stored as valid UTF-8 without NUL
// and cut at MaxField bytes, never refused.
//
// # Durability and failure
//
// Records are appended inside the store's write transaction; the SQLite
// store's group commit lets concurrent appends share one transaction and
// one fsync. An append returns only once durable, and the KMIP server
// appends a message's records before sending its response: if the append
// fails, the client gets General Failure instead of the result, Log.Healthy
// reports the cause (the server is not ready and performs no further
// operation), and a probe retries every second. Changes an operation
// already committed when the append failed are recorded after recovery,
// marked "response withheld"; a process that dies first loses those
// records (the objects' own timestamps still show the changes).
// Concurrent writers on any node extend a single chain: the head is read
// under the store's write lock.
//
// # Threat model
//
// An attacker who can write to the database but holds neither the root key
// nor the HSM can:
//   - modify, delete, insert or reorder records: Verify names the first
//     record where the chain breaks and what kind of change it is
//     (modified, removed, inserted, reordered), also when the attacker
//     renumbers the records after the change;
//   - recompute the hashes of the whole chain after a change, or cut its
//     tail: a signed checkpoint then disagrees with the chain (rewritten)
//     or points past its end (truncated), and the attacker cannot sign a
//     new checkpoint, because the signing key is sealed under the root key
//     (or held by the HSM) and bound to its label;
//   - hide records appended after the newest checkpoint by cutting them
//     (up to one checkpoint interval, MINIKMS_AUDIT_CHECKPOINT_INTERVAL), or
//     append well-formed records at the end: the chain alone cannot tell
//     them from genuine ones. Shorten the interval to narrow that window;
//     ship checkpoints (or `audit export`) to write-once storage to close it;
//   - delete every checkpoint and rewrite the chain: Verify reports how
//     many checkpoints it found and how many records none covers, so a
//     drop in either against an earlier run, or an exported copy, shows it;
//   - replace the stored checkpoint public key and sign a rewritten chain
//     with a key of their own: `audit verify` with the root key opens the
//     sealed key itself and is not fooled; without it, pin the key
//     (`audit verify --key-id`, printed when the server starts).
//
// A tenant auditor reading the chain over the HTTPS API learns its own
// tenant's records and, of other tenants' records, only how many there are
// and their hashes.
package audit
