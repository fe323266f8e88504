package kmip

import (
	"crypto/tls"
	"strings"
	"testing"

	"github.com/ovh/kmip-go"
)

func TestNoHandlerConflicts(t *testing.T) {
	if err := checkHandlers(); err != nil {
		t.Fatal(err)
	}
}

func TestHandlerConflictRefusesNew(t *testing.T) {
	saved := handlerConflicts
	t.Cleanup(func() { handlerConflicts = saved })
	handlerConflicts = []kmip.Operation{kmip.OperationSign}
	_, err := New(Config{Engine: newEngine(t), TLS: &tls.Config{}, Identifier: fixedIdentity{testPrincipal}, Logger: quietLog()})
	if err == nil || !strings.Contains(err.Error(), "Sign") {
		t.Fatalf("New with a conflict: %v", err)
	}
}
