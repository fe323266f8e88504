// Package loadgen is the engine of `minikms bench`: a concurrent KMIP load
// generator over mutual TLS. Run prepares the server, drives Conns
// connections for a warm-up and a measured window, and returns a Result
// (ops/s, errors by kind, latency percentiles, client CPU per operation).
//
// # Operations
//
//   - encrypt: Encrypt of Size random bytes, AES-256-GCM, server-generated
//     IV (Random IV), with one key created and activated during setup.
//   - decrypt: Decrypt of a ciphertext made during setup (one per
//     connection); the plaintext returned is compared with the original.
//   - get: Get of the setup key.
//   - create: Create of an AES-256 key (each operation adds a key).
//   - certify: Certify of a PKCS#10 request for a new P-256 key, with a
//     unique subject Common Name (the member id of the certificate, role
//     app); each operation adds a certificate signed by the tenant's CA (a
//     CA key in the token in HSM mode). The client makes each request
//     before the operation's clock starts; its cost shows in the client
//     CPU. Certify needs an admin member: setup sends one first and stops
//     with the reason if it is refused.
//   - locate: Locate by Name; setup creates 4 named keys and every
//     connection asks for them in turn, expecting exactly that key.
//   - mix: per 20 requests of a connection, 14 encrypt (70%), 4 decrypt
//     (20%), 1 get (5%), 1 locate (5%), in a per-connection shuffled order.
//   - connect: each operation is a new TCP connection, a full mutual-TLS
//     handshake, one Query (Server Information) round trip and a close.
//   - connect-resume: the same with a shared LRU TLS session cache, so
//     handshakes resume with TLS 1.3 session tickets.
//
// Every key and certificate the tool creates is in Object Group
// "minikms-bench" so an administrator can find and destroy them afterwards.
//
// # Measuring
//
// Requests are encoded once (the header has no Time Stamp and the IV is
// the server's, so the bytes never change) and written as is; only
// certify encodes a new request (a new CSR) per operation. Answers are
// read by a length-checked framer (8-byte TTLV header, at most
// MaxResponseSize, the buffer reused) and checked by a small TTLV scanner
// instead of the reflective codec: structure and lengths, Batch Count 1,
// Result Status Success, the operation answered, and per operation the
// payload (ciphertext size and IV, decrypted plaintext, object id, the
// located id). A failed result counts as an error under its Result Reason
// and keeps the connection; anything else (network, TLS, an answer that
// does not decode or does not match) counts under its kind and replaces
// the connection.
//
// Latencies go to a fixed-size log-linear histogram per worker (within
// 0.4%), merged at the end. An operation is measured when it starts and
// ends inside the window; client CPU is getrusage(RUSAGE_SELF) over the
// window, so a server on the same machine can be told apart.
//
// New connections verify the server's chain once per distinct chain (then
// from a cache, for a minute at most): chain verification was the
// client's largest cost per handshake. crypto/tls still checks the
// handshake signature that proves the server holds its key every time.
//
// A run in which every request of the first second failed stops with
// ErrAllFailed and the kinds of errors seen; a setup that fails (the
// first request included: with TLS 1.3 a refused client certificate shows
// only there) fails Run before any load.
//
// loadgen is a client: it must never hold or print key material other
// than the random plaintexts it made up, and never retry silently: every
// failure is counted.
package loadgen
