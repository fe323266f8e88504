package pki_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"fmt"
	"time"

	"github.com/minikms/minikms/engine"
	"github.com/minikms/minikms/pki"
)

// A root CA, a tenant CA and a member certificate, then the principal a
// Verifier reads from the member's chain.
func ExampleVerifier_Verify() {
	now := time.Now()
	rootKey, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	root, _ := pki.NewRootCA(rootKey, now)
	caKey, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	acme, _ := pki.NewTenantCA(root, "acme", caKey, now)
	memberKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	leaf, err := pki.IssueMember(acme, pki.MemberSpec{Tenant: "acme", Member: "backup-1", Role: engine.RoleApp, PublicKey: memberKey.Public()}, now)
	if err != nil {
		fmt.Println(err)
		return
	}

	v := pki.NewVerifier(root.Cert, nil, nil)
	p, err := v.Verify([][]byte{leaf.Raw, acme.Cert.Raw}) // as a TLS client presents it
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(p.Tenant, p.Member, p.Role)
	// Output: acme backup-1 app
}
