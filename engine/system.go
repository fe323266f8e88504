package engine

import (
	"context"
	"encoding/binary"
	"errors"
)

// systemTenant names the key domain of server secrets (CA keys, ...). Real
// tenant ids cannot start with '_', so its derivation collides with none.
const systemTenant = "_system"

// SealSystem wraps a server secret (a CA private key, ...) under the
// system key derived from the current root version. label binds the
// sealed blob to its purpose: opening it under another label fails.
// Format: u32 root version | wrapped material.
func (e *Engine) SealSystem(ctx context.Context, label string, plaintext []byte) ([]byte, error) {
	v := e.keyring.Current()
	tk, err := e.tenantKey(ctx, v, systemTenant)
	if err != nil {
		return nil, err
	}
	w, err := wrapMaterial(tk.aead, systemTenant, label, v, plaintext)
	if err != nil {
		return nil, err
	}
	return append(binary.BigEndian.AppendUint32(make([]byte, 0, 4+len(w)), v), w...), nil
}

// OpenSystem opens what SealSystem sealed under the same label.
func (e *Engine) OpenSystem(ctx context.Context, label string, sealed []byte) ([]byte, error) {
	if len(sealed) < 4 {
		return nil, errors.New("sealed secret is truncated")
	}
	v := binary.BigEndian.Uint32(sealed[:4])
	tk, err := e.tenantKey(ctx, v, systemTenant)
	if err != nil {
		return nil, err
	}
	return unwrapMaterial(tk.aead, systemTenant, label, v, sealed[4:])
}
