package engine

import "fmt"

// Op names an engine operation for authorization and audit.
type Op string

// Operations.
const (
	OpCreate           Op = "Create"
	OpRegister         Op = "Register"
	OpGet              Op = "Get"
	OpGetAttributes    Op = "GetAttributes"
	OpGetAttributeList Op = "GetAttributeList"
	OpAddAttribute     Op = "AddAttribute"
	OpModifyAttribute  Op = "ModifyAttribute"
	OpDeleteAttribute  Op = "DeleteAttribute"
	OpLocate           Op = "Locate"
	OpActivate         Op = "Activate"
	OpRevoke           Op = "Revoke"
	OpDestroy          Op = "Destroy"
	OpEncrypt          Op = "Encrypt"
	OpDecrypt          Op = "Decrypt"
	OpCertify          Op = "Certify"
)

// readOnlyOps are what an auditor may do: read attributes, never material.
var readOnlyOps = map[Op]bool{OpGetAttributes: true, OpGetAttributeList: true, OpLocate: true}

// adminOnlyOps are refused to the app role.
var adminOnlyOps = map[Op]bool{OpDestroy: true, OpCertify: true}

// Authorize reports whether the principal may perform op, for callers
// that must check before doing work outside the engine (signing a
// certificate before recording it).
func Authorize(p Principal, op Op) error { return authorize(p, op) }

// authorize checks the principal's role for op. The principal's tenant was
// validated when it was built from the certificate; it is checked again so
// that no caller can reach the store with an empty tenant.
func authorize(p Principal, op Op) error {
	if !ValidTenantID(p.Tenant) {
		return fmt.Errorf("%w: no valid tenant in the client identity", ErrPermissionDenied)
	}
	switch p.Role {
	case RoleAdmin:
		return nil
	case RoleApp:
		if adminOnlyOps[op] {
			return fmt.Errorf("%w: role app may not %s; an admin of the tenant may", ErrPermissionDenied, op)
		}
		return nil
	case RoleAuditor:
		if readOnlyOps[op] {
			return nil
		}
		return fmt.Errorf("%w: role auditor may only read attributes", ErrPermissionDenied)
	}
	return fmt.Errorf("%w: unknown role", ErrPermissionDenied)
}
