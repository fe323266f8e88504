package engine_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/minikms/minikms/engine"
)

// registerTemplate registers a Template named tplName whose content is
// content.
func (e *env) registerTemplate(t testing.TB, p engine.Principal, tplName string, content ...engine.Attribute) *engine.Object {
	t.Helper()
	o, err := e.eng.Register(t.Context(), p, engine.RegisterRequest{Type: engine.TypeTemplate,
		Attrs: []engine.Attribute{attr(engine.AttrName, name(tplName))}, TemplateContent: content})
	require.NoError(t, err)
	return o
}

func TestTemplates(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	tpl := e.registerTemplate(t, acmeAdmin, "gold",
		attr(engine.AttrCryptographicAlgorithm, engine.AlgAES),
		attr(engine.AttrCryptographicLength, int32(256)),
		attr(engine.AttrCryptographicUsageMask, engine.UsageEncrypt|engine.UsageDecrypt|engine.UsageWrapKey),
		attr(engine.AttrObjectGroup, "vault"),
		attr(engine.AttrContactInformation, "vault-team"),
		attr(engine.AttrCryptographicParameters, engine.CryptographicParameters{BlockCipherMode: engine.ModeCBC, PaddingMethod: engine.PadPKCS5}),
		attr("x-tier", textItem("gold")))
	assert.Equal(t, engine.TypeTemplate, tpl.Type)

	t.Run("Get returns the object without material", func(t *testing.T) {
		o, m, err := e.eng.Get(ctx, acmeApp, tpl.ID)
		require.NoError(t, err)
		assert.Equal(t, tpl.ID, o.ID)
		assert.Equal(t, engine.TypeTemplate, o.Type)
		assert.Equal(t, engine.Material{}, m)
	})
	t.Run("content", func(t *testing.T) {
		content, err := e.eng.TemplateContent(ctx, acmeApp, tpl.ID)
		require.NoError(t, err)
		var names []string
		for _, a := range content {
			names = append(names, a.Name)
		}
		assert.ElementsMatch(t, []string{engine.AttrCryptographicAlgorithm, engine.AttrCryptographicLength, engine.AttrCryptographicUsageMask,
			engine.AttrObjectGroup, engine.AttrContactInformation, engine.AttrCryptographicParameters, "x-tier"}, names)
		_, err = e.eng.TemplateContent(ctx, acmeApp, e.create(t, acmeApp, aesAttrs(128)...).ID)
		require.ErrorIs(t, err, engine.ErrIllegalOperation, "not a template")
	})
	t.Run("the template's own attributes name it", func(t *testing.T) {
		v, _ := e.value(t, acmeApp, tpl.ID, engine.AttrName)
		assert.Equal(t, name("gold"), v)
		_, ok := e.value(t, acmeApp, tpl.ID, engine.AttrCryptographicAlgorithm)
		assert.False(t, ok, "content is not the template's own attribute")
	})

	t.Run("Create inherits", func(t *testing.T) {
		o, err := e.eng.Create(ctx, acmeApp, engine.CreateRequest{Type: engine.TypeSymmetricKey, Templates: []string{"gold"},
			Attrs: []engine.Attribute{attr(engine.AttrName, name("from-gold"))}})
		require.NoError(t, err)
		assert.Equal(t, engine.AlgAES, o.Attrs.Algorithm())
		assert.Equal(t, int32(256), o.Attrs.Length())
		assert.Equal(t, engine.UsageEncrypt|engine.UsageDecrypt|engine.UsageWrapKey, o.Attrs.UsageMask())
		assert.Equal(t, []string{"vault"}, o.Attrs.Strings(engine.AttrObjectGroup), "no default group when the template gives one")
		assert.Equal(t, "vault-team", o.Attrs.Text(engine.AttrContactInformation))
		assert.Equal(t, []string{"from-gold"}, o.Attrs.NameValues(), "the template's Name is not copied")
		v, _ := e.value(t, acmeApp, o.ID, "x-tier")
		assert.Equal(t, textItem("gold"), v)
		_, m, err := e.eng.Get(ctx, acmeApp, o.ID)
		require.NoError(t, err)
		assert.Len(t, m.Bytes, 32)

		// The inherited Cryptographic Parameters drive Encrypt.
		_, err = e.eng.Activate(ctx, acmeApp, o.ID)
		require.NoError(t, err)
		res := e.encrypt(t, acmeApp, o.ID, []byte("x"))
		assert.Len(t, res.IV, 16, "CBC from the template")
		assert.Len(t, res.Ciphertext, 16)
	})
	t.Run("request attributes override single-valued ones", func(t *testing.T) {
		o, err := e.eng.Create(ctx, acmeApp, engine.CreateRequest{Type: engine.TypeSymmetricKey, Templates: []string{"gold"},
			Attrs: []engine.Attribute{
				attr(engine.AttrCryptographicLength, int32(128)),
				attr(engine.AttrContactInformation, "me"),
				attr(engine.AttrObjectGroup, "extra"),
			}})
		require.NoError(t, err)
		assert.Equal(t, int32(128), o.Attrs.Length())
		assert.Equal(t, "me", o.Attrs.Text(engine.AttrContactInformation))
		assert.Equal(t, []string{"vault", "extra"}, o.Attrs.Strings(engine.AttrObjectGroup), "multi-valued ones add up")
		_, m, err := e.eng.Get(ctx, acmeApp, o.ID)
		require.NoError(t, err)
		assert.Len(t, m.Bytes, 16)
	})
	t.Run("Register inherits", func(t *testing.T) {
		key := randomBytes(t, 32)
		o, err := e.eng.Register(ctx, acmeApp, engine.RegisterRequest{Type: engine.TypeSymmetricKey, Templates: []string{"gold"},
			Material: engine.Material{Format: engine.FormatRaw, Bytes: key}})
		require.NoError(t, err)
		assert.Equal(t, engine.AlgAES, o.Attrs.Algorithm())
		assert.Equal(t, []string{"vault"}, o.Attrs.Strings(engine.AttrObjectGroup))
		assert.Empty(t, o.Attrs.NameValues())

		_, err = e.eng.Register(ctx, acmeApp, engine.RegisterRequest{Type: engine.TypeSymmetricKey, Templates: []string{"gold"},
			Material: engine.Material{Format: engine.FormatRaw, Bytes: key[:16]}})
		require.ErrorIs(t, err, engine.ErrInvalidField, "the template says 256 bits")
	})
	t.Run("missing template", func(t *testing.T) {
		_, err := e.eng.Create(ctx, acmeApp, engine.CreateRequest{Type: engine.TypeSymmetricKey, Templates: []string{"platinum"}})
		require.ErrorIs(t, err, engine.ErrNotFound)
		_, err = e.eng.Create(ctx, acmeApp, engine.CreateRequest{Type: engine.TypeSymmetricKey, Templates: []string{"gold", "platinum"}})
		require.ErrorIs(t, err, engine.ErrNotFound)
		_, err = e.eng.Register(ctx, acmeApp, engine.RegisterRequest{Type: engine.TypeSymmetricKey, Templates: []string{"platinum"},
			Material: engine.Material{Format: engine.FormatRaw, Bytes: make([]byte, 16)}})
		require.ErrorIs(t, err, engine.ErrNotFound)
	})
	t.Run("Locate finds templates", func(t *testing.T) {
		assert.Equal(t, []string{tpl.ID}, e.locate(t, acmeAdmin, attr(engine.AttrObjectType, engine.TypeTemplate)))
		assert.Equal(t, []string{tpl.ID}, e.locate(t, acmeAdmin, attr(engine.AttrName, name("gold"))))
	})
	t.Run("a destroyed template is gone", func(t *testing.T) {
		old := e.registerTemplate(t, acmeAdmin, "silver", aesAttrs(128)...)
		_, err := e.eng.Destroy(ctx, acmeAdmin, old.ID)
		require.NoError(t, err)
		_, err = e.eng.Create(ctx, acmeApp, engine.CreateRequest{Type: engine.TypeSymmetricKey, Templates: []string{"silver"}})
		require.ErrorIs(t, err, engine.ErrNotFound)
	})
}

func TestTemplateRegistrationRules(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	cases := []struct {
		name    string
		own     []engine.Attribute
		content []engine.Attribute
		want    error
	}{
		{"no name", nil, aesAttrs(128), engine.ErrMissingData},
		{"name in the content", nil, append(aesAttrs(128), attr(engine.AttrName, name("in-content"))), nil},
		{"server attribute in the content", []engine.Attribute{attr(engine.AttrName, name("t1"))},
			[]engine.Attribute{attr(engine.AttrInitialDate, t0)}, engine.ErrInvalidField},
		{"unknown attribute in the content", []engine.Attribute{attr(engine.AttrName, name("t2"))},
			[]engine.Attribute{attr("Colour", "red")}, engine.ErrInvalidField},
		{"server custom attribute in the content", []engine.Attribute{attr(engine.AttrName, name("t3"))},
			[]engine.Attribute{attr("y-x", textItem("v"))}, engine.ErrInvalidField},
		{"activation date in the content", []engine.Attribute{attr(engine.AttrName, name("t4"))},
			[]engine.Attribute{attr(engine.AttrActivationDate, t0.Add(time.Hour))}, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			o, err := e.eng.Register(ctx, acmeAdmin, engine.RegisterRequest{Type: engine.TypeTemplate, Attrs: tc.own, TemplateContent: tc.content})
			if tc.want != nil {
				require.ErrorIs(t, err, tc.want)
				return
			}
			require.NoError(t, err)
			assert.Len(t, o.Attrs.NameValues(), 1)
		})
	}

	// The template's Activation Date is inherited: a key created from it
	// becomes Active when the date comes.
	k, err := e.eng.Create(ctx, acmeApp, engine.CreateRequest{Type: engine.TypeSymmetricKey, Templates: []string{"t4"}, Attrs: aesAttrs(128)})
	require.NoError(t, err)
	assert.Equal(t, engine.StatePreActive, k.State)
	e.clock.Advance(time.Hour)
	assert.Equal(t, engine.StateActive, e.state(t, acmeApp, k.ID))
}

// TestTemplateFoundBehindDestroyedNamesakes: the live template of a name
// is found however many destroyed templates of that name are newer.
func TestTemplateFoundBehindDestroyedNamesakes(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	e.registerTemplate(t, acmeAdmin, "bronze", aesAttrs(192)...)
	for range 2 {
		newer := e.registerTemplate(t, acmeAdmin, "bronze", aesAttrs(128)...)
		_, err := e.eng.Destroy(ctx, acmeAdmin, newer.ID)
		require.NoError(t, err)
	}
	o, err := e.eng.Create(ctx, acmeApp, engine.CreateRequest{Type: engine.TypeSymmetricKey, Templates: []string{"bronze"}})
	require.NoError(t, err, "the live template named bronze was not found")
	assert.Equal(t, int32(192), o.Attrs.Length())
}
