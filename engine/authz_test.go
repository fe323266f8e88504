package engine_test

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/minikms/minikms/engine"
)

// operation runs one engine operation on object id as p. Each gets a
// fresh fixture so that what it changes does not leak into the next.
type operation struct {
	op  engine.Op
	run func(t *testing.T, e *env, p engine.Principal, id string) error
}

// operations covers every engine operation that takes a principal. Each
// succeeds for an admin on an object made by objectFor.
var operations = []operation{
	{engine.OpCreate, func(t *testing.T, e *env, p engine.Principal, _ string) error {
		_, err := e.eng.Create(t.Context(), p, engine.CreateRequest{Type: engine.TypeSymmetricKey, Attrs: aesAttrs(128)})
		return err
	}},
	{engine.OpRegister, func(t *testing.T, e *env, p engine.Principal, _ string) error {
		_, err := e.eng.Register(t.Context(), p, engine.RegisterRequest{Type: engine.TypeSymmetricKey, Algorithm: engine.AlgAES,
			Material: engine.Material{Format: engine.FormatRaw, Bytes: make([]byte, 16)}})
		return err
	}},
	{engine.OpGet, func(t *testing.T, e *env, p engine.Principal, id string) error {
		_, _, err := e.eng.Get(t.Context(), p, id)
		return err
	}},
	{engine.OpGetAttributes, func(t *testing.T, e *env, p engine.Principal, id string) error {
		_, _, err := e.eng.GetAttributes(t.Context(), p, id, nil)
		return err
	}},
	{engine.OpGetAttributeList, func(t *testing.T, e *env, p engine.Principal, id string) error {
		_, _, err := e.eng.GetAttributeList(t.Context(), p, id)
		return err
	}},
	{engine.OpAddAttribute, func(t *testing.T, e *env, p engine.Principal, id string) error {
		_, _, err := e.eng.AddAttribute(t.Context(), p, id, attr(engine.AttrName, name("added")))
		return err
	}},
	{engine.OpModifyAttribute, func(t *testing.T, e *env, p engine.Principal, id string) error {
		_, _, err := e.eng.ModifyAttribute(t.Context(), p, id, attr(engine.AttrName, name("renamed")))
		return err
	}},
	{engine.OpDeleteAttribute, func(t *testing.T, e *env, p engine.Principal, id string) error {
		_, _, err := e.eng.DeleteAttribute(t.Context(), p, id, engine.AttrName, nil)
		return err
	}},
	{engine.OpLocate, func(t *testing.T, e *env, p engine.Principal, _ string) error {
		_, err := e.eng.Locate(t.Context(), p, engine.LocateRequest{})
		return err
	}},
	{engine.OpActivate, func(t *testing.T, e *env, p engine.Principal, id string) error {
		_, err := e.eng.Activate(t.Context(), p, id)
		return err
	}},
	{engine.OpRevoke, func(t *testing.T, e *env, p engine.Principal, id string) error {
		_, err := e.eng.Revoke(t.Context(), p, id, superseded)
		return err
	}},
	{engine.OpDestroy, func(t *testing.T, e *env, p engine.Principal, id string) error {
		_, err := e.eng.Destroy(t.Context(), p, id)
		return err
	}},
	{engine.OpEncrypt, func(t *testing.T, e *env, p engine.Principal, id string) error {
		_, err := e.eng.Encrypt(t.Context(), p, engine.EncryptRequest{ID: id, Data: []byte("x")})
		return err
	}},
	{engine.OpDecrypt, func(t *testing.T, e *env, p engine.Principal, id string) error {
		_, _, err := e.eng.Decrypt(t.Context(), p, engine.DecryptRequest{ID: id, Data: make([]byte, 16), IV: make([]byte, 12), Tag: make([]byte, 16)})
		return err
	}},
}

// objectFor makes, as an admin of tenant, an object on which op can
// succeed: Active for Encrypt and Decrypt, Pre-Active with a Name for the
// others.
func objectFor(t *testing.T, e *env, tenant string, op engine.Op) string {
	t.Helper()
	admin := engine.Principal{Tenant: tenant, Member: "admin", Role: engine.RoleAdmin}
	if op == engine.OpEncrypt || op == engine.OpDecrypt {
		return e.activeAES(t, admin, 128).ID
	}
	return e.create(t, admin, aesAttrs(128, attr(engine.AttrName, name("fixture")))...).ID
}

func TestRoles(t *testing.T) {
	e := newEnv(t)
	allowed := map[engine.Role]map[engine.Op]bool{
		engine.RoleAdmin:   {},
		engine.RoleApp:     {},
		engine.RoleAuditor: {engine.OpGetAttributes: true, engine.OpGetAttributeList: true, engine.OpLocate: true},
	}
	for _, op := range operations {
		allowed[engine.RoleAdmin][op.op] = true
		allowed[engine.RoleApp][op.op] = op.op != engine.OpDestroy
	}
	for _, role := range []engine.Role{engine.RoleAdmin, engine.RoleApp, engine.RoleAuditor, "", "root", "Admin"} {
		for _, op := range operations {
			t.Run(string(role)+"/"+string(op.op), func(t *testing.T) {
				id := objectFor(t, e, "acme", op.op)
				before := e.stored(t, "acme", id)
				p := engine.Principal{Tenant: "acme", Member: "m", Role: role}
				err := op.run(t, e, p, id)
				if !allowed[role][op.op] {
					require.ErrorIs(t, err, engine.ErrPermissionDenied)
					assert.Equal(t, before.Rev, e.stored(t, "acme", id).Rev, "a denied operation wrote")
					return
				}
				if op.op == engine.OpDecrypt {
					// Allowed: gets as far as the tag check.
					require.ErrorIs(t, err, engine.ErrCryptoFailure)
					return
				}
				require.NoError(t, err)
			})
		}
	}

	t.Run("auditor reads no material", func(t *testing.T) {
		id := objectFor(t, e, "acme", engine.OpEncrypt)
		_, m, err := e.eng.Get(t.Context(), acmeAuditor, id)
		require.ErrorIs(t, err, engine.ErrPermissionDenied)
		assert.Empty(t, m.Bytes)
		_, err = e.eng.TemplateContent(t.Context(), acmeAuditor, id)
		require.ErrorIs(t, err, engine.ErrPermissionDenied)
	})
}

func TestInvalidTenantRefused(t *testing.T) {
	e := newEnv(t)
	id := objectFor(t, e, "acme", engine.OpEncrypt)
	tenants := []string{"", "ACME", "-acme", "acme_", "a|b", "_system", "acme ", strings.Repeat("a", 64), "acme/../globex", "ac\x00me"}
	for _, tenant := range tenants {
		for _, op := range operations {
			t.Run(tenant+"/"+string(op.op), func(t *testing.T) {
				p := engine.Principal{Tenant: tenant, Member: "m", Role: engine.RoleAdmin}
				err := op.run(t, e, p, id)
				require.ErrorIs(t, err, engine.ErrPermissionDenied)
			})
		}
	}
	_, err := e.eng.SealSystem(t.Context(), "x", []byte("y"))
	require.NoError(t, err, "system sealing takes no principal")
	res, err := e.eng.Locate(t.Context(), acmeAdmin, engine.LocateRequest{})
	require.NoError(t, err)
	assert.Equal(t, []string{id}, res.IDs, "the refused calls created nothing")
}

// normalize replaces an identifier in an error message, so that the
// messages for two objects can be compared.
func normalize(err error, id string) string {
	if err == nil {
		return "<nil>"
	}
	return strings.ReplaceAll(err.Error(), id, "<ID>")
}

// TestForeignObjectAnswersLikeMissing: an object of another tenant is
// indistinguishable from one that does not exist, in every operation,
// whatever its state.
func TestForeignObjectAnswersLikeMissing(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	foreign := map[string]string{
		"pre-active":  e.create(t, globexAdmin, aesAttrs(128, attr(engine.AttrName, name("fixture")))...).ID,
		"active":      e.activeAES(t, globexAdmin, 128, attr(engine.AttrName, name("fixture"))).ID,
		"compromised": e.inStateFor(t, globexAdmin, engine.StateCompromised).ID,
		"destroyed":   e.inStateFor(t, globexAdmin, engine.StateDestroyed).ID,
	}
	secret, err := e.eng.Register(ctx, globexAdmin, engine.RegisterRequest{Type: engine.TypeSecretData,
		Attrs:    []engine.Attribute{attr(engine.AttrName, name("fixture"))},
		Material: engine.Material{Format: engine.FormatRaw, DataType: uint32(engine.SecretSeed), Bytes: []byte("seed")}})
	require.NoError(t, err)
	foreign["secret data"] = secret.ID
	tpl, err := e.eng.Register(ctx, globexAdmin, engine.RegisterRequest{Type: engine.TypeTemplate,
		Attrs: []engine.Attribute{attr(engine.AttrName, name("gold"))}, TemplateContent: aesAttrs(256)})
	require.NoError(t, err)
	foreign["template"] = tpl.ID

	// The owner has every object in its cache, read back from the store,
	// with the active key's material unwrapped: the cache must not leak
	// it to another tenant either.
	e.reopen(t)
	for _, id := range foreign {
		_, _, err := e.eng.GetAttributes(ctx, globexAdmin, id, nil)
		require.NoError(t, err)
	}
	e.encrypt(t, globexAdmin, foreign["active"], []byte("warm"))

	const missing = "00000000-0000-4000-8000-000000000000"
	for state, id := range foreign {
		for _, op := range operations {
			if op.op == engine.OpCreate || op.op == engine.OpRegister || op.op == engine.OpLocate {
				continue
			}
			t.Run(state+"/"+string(op.op), func(t *testing.T) {
				before := e.stored(t, "globex", id)
				errForeign := op.run(t, e, acmeAdmin, id)
				errMissing := op.run(t, e, acmeAdmin, missing)
				require.ErrorIs(t, errForeign, engine.ErrNotFound)
				require.ErrorIs(t, errMissing, engine.ErrNotFound)
				assert.Equal(t, normalize(errMissing, missing), normalize(errForeign, id))
				after := e.stored(t, "globex", id)
				assert.Equal(t, before.Rev, after.Rev, "another tenant changed the object")
			})
		}
		t.Run(state+"/TemplateContent", func(t *testing.T) {
			_, errForeign := e.eng.TemplateContent(ctx, acmeAdmin, id)
			_, errMissing := e.eng.TemplateContent(ctx, acmeAdmin, missing)
			require.ErrorIs(t, errForeign, engine.ErrNotFound)
			assert.Equal(t, normalize(errMissing, missing), normalize(errForeign, id))
		})
	}

	// A template is found by name only in the caller's tenant.
	_, errForeign := e.eng.Create(ctx, acmeAdmin, engine.CreateRequest{Type: engine.TypeSymmetricKey, Templates: []string{"gold"}})
	_, errMissing := e.eng.Create(ctx, acmeAdmin, engine.CreateRequest{Type: engine.TypeSymmetricKey, Templates: []string{"none"}})
	require.ErrorIs(t, errForeign, engine.ErrNotFound)
	require.ErrorIs(t, errMissing, engine.ErrNotFound)
	assert.Equal(t, strings.ReplaceAll(errMissing.Error(), "none", "<N>"), strings.ReplaceAll(errForeign.Error(), "gold", "<N>"))

	res, err := e.eng.Locate(ctx, acmeAdmin, engine.LocateRequest{Attrs: []engine.Attribute{attr(engine.AttrName, name("fixture"))}, WantTotal: true})
	require.NoError(t, err)
	assert.Empty(t, res.IDs)
	assert.Zero(t, res.Total)
}

// inStateFor is inState for another principal.
func (e *env) inStateFor(t *testing.T, p engine.Principal, s engine.State) *engine.Object {
	t.Helper()
	o := e.create(t, p, aesAttrs(128, attr(engine.AttrName, name("fixture")))...)
	var err error
	switch s {
	case engine.StateCompromised:
		_, err = e.eng.Revoke(t.Context(), p, o.ID, compromise)
	case engine.StateDestroyed:
		_, err = e.eng.Destroy(t.Context(), p, o.ID)
	}
	require.NoError(t, err)
	return o
}
