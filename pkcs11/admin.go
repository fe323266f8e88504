package pkcs11

import (
	"bytes"
	"context"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"

	"github.com/minikms/minikms/engine"
)

// InitOptions tunes Init.
type InitOptions struct {
	// ExistingOK makes Init succeed without change when a root key is
	// already in the token (for idempotent provisioning). Without it Init
	// refuses. Init never deletes or replaces a root key: that would make
	// every object stored under it unreadable.
	ExistingOK bool
}

// RootResult reports what Init or ImportRoot did.
type RootResult struct {
	// Created is false when the root key was already there.
	Created bool
	// Version and Label of the current root key.
	Version uint32
	Label   string
	// KeyCheckValue is engine.KeyCheckValue of that version: the check
	// value the store records (root.kcv.<version>), computed in the token.
	KeyCheckValue string
	// Labels of every root key in the token.
	Labels []string
	// Key is the root key object's attributes.
	Key ObjectInfo
}

// Init creates root key version 1 in the token: 32 random bytes generated
// by the token (CKM_GENERIC_SECRET_KEY_GEN), CKA_SENSITIVE, not extractable,
// so CKA_ALWAYS_SENSITIVE and CKA_NEVER_EXTRACTABLE hold. It fails with
// ErrRootExists if a root key is there, unless opts.ExistingOK.
func (h *HSM) Init(ctx context.Context, opts InitOptions) (RootResult, error) {
	vs, err := h.rootVersions(ctx)
	if err != nil {
		return RootResult{}, err
	}
	if len(vs) > 0 {
		if !opts.ExistingOK {
			return RootResult{}, fmt.Errorf("%w: %s (token %q); nothing was changed", ErrRootExists, strings.Join(h.rootLabels(vs), ", "), h.cfg.TokenLabel)
		}
		return h.rootResult(ctx, false)
	}
	label := rootLabel(h.cfg.LabelPrefix, 1)
	err = h.do(ctx, "generate root key "+label, false, func(t token) error {
		return t.generateSecret(secretRoot, label, []byte("root-v1"))
	})
	if err != nil {
		return RootResult{}, err
	}
	return h.rootResult(ctx, true)
}

// ImportRoot moves an existing software root key (the 32 bytes of
// MINIKMS_ROOT_KEY) into the token as root key version 1: a
// CKK_GENERIC_SECRET object with CKA_SENSITIVE, not extractable, CKA_SIGN
// only. It then checks that the token derives what engine.SoftKeyring
// derives from root (so every object stored under the software key stays
// readable) and deletes the object again if not. As the key existed outside
// the token, PKCS#11 marks it CKA_ALWAYS_SENSITIVE=false and
// CKA_NEVER_EXTRACTABLE=false.
//
// If root version 1 is already in the token, ImportRoot succeeds without
// change when it is the same key (same check value) and fails with
// ErrRootExists otherwise. The caller must wipe root (and every copy of
// it: environment, files) once the import succeeded.
func (h *HSM) ImportRoot(ctx context.Context, root []byte) (RootResult, error) {
	if len(root) != engine.RootKeySize {
		return RootResult{}, fmt.Errorf("root key must be %d bytes, got %d", engine.RootKeySize, len(root))
	}
	soft, err := engine.NewSoftKeyring(root)
	if err != nil {
		return RootResult{}, err
	}
	defer soft.Close()
	want, err := engine.KeyCheckValue(ctx, soft, 1)
	if err != nil {
		return RootResult{}, err
	}
	vs, err := h.rootVersions(ctx)
	if err != nil {
		return RootResult{}, err
	}
	label := rootLabel(h.cfg.LabelPrefix, 1)
	if len(vs) > 0 {
		if !slices.Contains(vs, 1) {
			return RootResult{}, fmt.Errorf("%w: %s, but not %s; nothing was changed", ErrRootExists, strings.Join(h.rootLabels(vs), ", "), label)
		}
		got, err := h.kcv(ctx, 1)
		if err != nil {
			return RootResult{}, err
		}
		if got != want {
			return RootResult{}, fmt.Errorf("%w: %s holds a different key (check value %s, the imported key has %s); nothing was changed", ErrRootExists, label, got, want)
		}
		return h.rootResult(ctx, false)
	}
	id := []byte("root-v1")
	err = h.do(ctx, "import root key as "+label, false, func(t token) error {
		return t.importSecret(label, id, root)
	})
	if err != nil {
		return RootResult{}, err
	}
	got, err := h.kcv(ctx, 1)
	if err == nil && got != want {
		err = newErr(kindFailure, "import root key", fmt.Errorf("the token derives check value %s, the software key %s", got, want))
	}
	if err != nil {
		if derr := h.do(ctx, "delete imported root key", false, func(t token) error { return t.destroy(label, id) }); derr != nil {
			return RootResult{}, fmt.Errorf("%w (and deleting the imported key failed: %v; delete %s by hand)", err, derr, label)
		}
		return RootResult{}, fmt.Errorf("%w; the imported key was deleted", err)
	}
	return h.rootResult(ctx, true)
}

// kcv computes engine.KeyCheckValue of a root version in the token.
func (h *HSM) kcv(ctx context.Context, version uint32) (string, error) {
	k := &Keyring{h: h, prefix: h.cfg.LabelPrefix, versions: []uint32{version}}
	return engine.KeyCheckValue(ctx, k, version)
}

func (h *HSM) rootLabels(vs []uint32) []string {
	out := make([]string, len(vs))
	for i, v := range vs {
		out[i] = rootLabel(h.cfg.LabelPrefix, v)
	}
	return out
}

func (h *HSM) rootResult(ctx context.Context, created bool) (RootResult, error) {
	vs, err := h.rootVersions(ctx)
	if err != nil {
		return RootResult{}, err
	}
	if len(vs) == 0 {
		return RootResult{}, fmt.Errorf("%w: the root key is not in the token after it was made", ErrKeyNotFound)
	}
	v := vs[len(vs)-1]
	r := RootResult{Created: created, Version: v, Label: rootLabel(h.cfg.LabelPrefix, v), Labels: h.rootLabels(vs)}
	if r.KeyCheckValue, err = h.kcv(ctx, v); err != nil {
		return RootResult{}, err
	}
	err = h.do(ctx, "read root key attributes", true, func(t token) error {
		objs, err := t.objects(r.Label)
		if err != nil {
			return err
		}
		for _, o := range objs {
			if o.Label == r.Label && o.Class == "secret-key" {
				r.Key = o
				return nil
			}
		}
		return newErr(kindNotFound, "read root key attributes", nil)
	})
	if err != nil {
		return RootResult{}, err
	}
	if !r.Key.Protected() {
		return r, newErr(kindFailure, "check root key", fmt.Errorf("%s is not protected (sensitive=%v extractable=%v)", r.Label, r.Key.Sensitive, r.Key.Extractable))
	}
	return r, nil
}

// Status describes the token and the miniKMS objects in it.
type Status struct {
	TokenInfo
	// Objects are the token objects whose label has the configured prefix.
	Objects []ObjectInfo
	// RootVersions are the root key versions found.
	RootVersions []uint32
	// RootKeyCheckValue is the check value of the newest root version ("" if none).
	RootKeyCheckValue string
	// Mechanisms says which of the mechanisms miniKMS uses the token offers.
	Mechanisms []MechanismInfo
}

// Status reads the token information and lists the miniKMS objects with
// their protection attributes.
func (h *HSM) Status(ctx context.Context) (Status, error) {
	var st Status
	err := h.do(ctx, "status", true, func(t token) error {
		st.TokenInfo = t.info()
		var err error
		if st.Objects, err = t.objects(h.cfg.LabelPrefix); err != nil {
			return err
		}
		st.Mechanisms, err = t.mechanisms()
		return err
	})
	if err != nil {
		return Status{}, err
	}
	slices.SortFunc(st.Objects, func(a, b ObjectInfo) int {
		if c := strings.Compare(a.Label, b.Label); c != 0 {
			return c
		}
		if c := strings.Compare(a.Class, b.Class); c != 0 {
			return c
		}
		return bytes.Compare(a.ID, b.ID)
	})
	for _, o := range st.Objects {
		if v, ok := parseRootLabel(h.cfg.LabelPrefix, o.Label); ok && o.Class == "secret-key" && !slices.Contains(st.RootVersions, v) {
			st.RootVersions = append(st.RootVersions, v)
		}
	}
	slices.Sort(st.RootVersions)
	if n := len(st.RootVersions); n > 0 {
		if st.RootKeyCheckValue, err = h.kcv(ctx, st.RootVersions[n-1]); err != nil {
			return Status{}, err
		}
	}
	return st, nil
}

// String formats the status for `minikms hsm status`.
func (s Status) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "module:       %s\n", s.Module)
	fmt.Fprintf(&b, "token label:  %s\n", s.Label)
	fmt.Fprintf(&b, "serial:       %s\n", s.Serial)
	fmt.Fprintf(&b, "manufacturer: %s\n", s.Manufacturer)
	fmt.Fprintf(&b, "model:        %s\n", s.Model)
	if len(s.RootVersions) > 0 {
		fmt.Fprintf(&b, "root key:     version %d, check value %s\n", s.RootVersions[len(s.RootVersions)-1], s.RootKeyCheckValue)
	} else {
		fmt.Fprintf(&b, "root key:     none (run `minikms hsm init` or `minikms hsm import-root`)\n")
	}
	fmt.Fprintf(&b, "mechanisms:\n")
	for _, m := range s.Mechanisms {
		state := "supported"
		if !m.Supported {
			state = "MISSING"
		}
		fmt.Fprintf(&b, "  %-27s %-9s %s\n", m.Name, state, m.Use)
	}
	fmt.Fprintf(&b, "objects:      %d\n", len(s.Objects))
	for _, o := range s.Objects {
		fmt.Fprintf(&b, "  %-40s %-11s %-14s id=%s", o.Label, o.Class, o.KeyType, hex.EncodeToString(o.ID))
		if o.Class == "secret-key" || o.Class == "private-key" {
			fmt.Fprintf(&b, " sensitive=%v extractable=%v always-sensitive=%v never-extractable=%v local=%v",
				o.Sensitive, o.Extractable, o.AlwaysSensitive, o.NeverExtractable, o.Local)
		}
		b.WriteByte('\n')
	}
	return b.String()
}
