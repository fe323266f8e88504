// Package certs owns the TLS material of miniKMS's listeners: the server
// certificate (loaded from files, reloadable), the tls.Config that requires
// and verifies client certificates through pki.Verifier, and the
// development bundle that `minikms dev` writes for clients.
//
// It must never write a private key with permissions wider than 0600, nor
// accept a client whose chain pki did not verify.
package certs
