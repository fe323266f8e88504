package engine_test

import (
	"bytes"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/minikms/minikms/engine"
)

func TestRNGRetrieve(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	a, err := e.eng.RNGRetrieve(ctx, acmeApp, 32)
	require.NoError(t, err)
	b, err := e.eng.RNGRetrieve(ctx, acmeApp, 32)
	require.NoError(t, err)
	assert.Len(t, a, 32)
	assert.NotEqual(t, a, b, "two retrievals gave the same bytes")
	assert.False(t, bytes.Equal(a, make([]byte, 32)), "zero bytes")
	big, err := e.eng.RNGRetrieve(ctx, acmeApp, engine.MaxRNGRetrieve)
	require.NoError(t, err)
	assert.Len(t, big, engine.MaxRNGRetrieve)

	_, err = e.eng.RNGRetrieve(ctx, acmeApp, engine.MaxRNGRetrieve+1)
	assert.ErrorIs(t, err, engine.ErrLimit)
	_, err = e.eng.RNGRetrieve(ctx, acmeApp, 0)
	assert.ErrorIs(t, err, engine.ErrInvalidField)
	_, err = e.eng.RNGRetrieve(ctx, acmeApp, -5)
	assert.ErrorIs(t, err, engine.ErrInvalidField)
	_, err = e.eng.RNGRetrieve(ctx, acmeAuditor, 16)
	assert.ErrorIs(t, err, engine.ErrPermissionDenied)
}

func TestRNGSeed(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	n, err := e.eng.RNGSeed(ctx, acmeApp, bytes.Repeat([]byte{1}, 32))
	require.NoError(t, err)
	assert.Zero(t, n, "the seed is accepted but none of it is used")
	_, err = e.eng.RNGSeed(ctx, acmeApp, nil)
	assert.ErrorIs(t, err, engine.ErrMissingData)
	_, err = e.eng.RNGSeed(ctx, acmeApp, make([]byte, engine.MaxRNGSeed+1))
	assert.ErrorIs(t, err, engine.ErrLimit)
	_, err = e.eng.RNGSeed(ctx, acmeAuditor, []byte{1})
	assert.ErrorIs(t, err, engine.ErrPermissionDenied)
}
