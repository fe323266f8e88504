package engine_test

import (
	"testing"

	"github.com/minikms/minikms/engine"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestStreamLimitsAndRefusals(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	k := e.activeAES(t, acmeApp, 256)
	gcm := &engine.CryptographicParameters{BlockCipherMode: engine.ModeGCM}

	t.Run("GCM decryption holds at most MaxStreamedGCMDecrypt", func(t *testing.T) {
		s, err := e.eng.StartStream(ctx, acmeApp, engine.StreamRequest{Decrypt: true, ID: k.ID, Params: gcm, IV: make([]byte, 12)})
		require.NoError(t, err)
		part := make([]byte, engine.MaxDataSize)
		for i := 0; i < engine.MaxStreamedGCMDecrypt/engine.MaxDataSize; i++ {
			out, _, err := s.Next(ctx, part, false, nil)
			require.NoError(t, err)
			assert.Empty(t, out, "no plaintext before the tag verifies")
		}
		_, _, err = s.Next(ctx, []byte{1}, false, nil)
		assert.ErrorIs(t, err, engine.ErrLimit)
		_, _, err = s.Next(ctx, nil, true, nil)
		assert.ErrorIs(t, err, engine.ErrInvalidField, "the stream ended with the failed part")
	})
	t.Run("CBC decryption with bad padding", func(t *testing.T) {
		cbc := &engine.CryptographicParameters{BlockCipherMode: engine.ModeCBC, PaddingMethod: engine.PadPKCS5}
		s, err := e.eng.StartStream(ctx, acmeApp, engine.StreamRequest{Decrypt: true, ID: k.ID, Params: cbc, IV: make([]byte, 16)})
		require.NoError(t, err)
		out, _, err := s.Next(ctx, make([]byte, 16), false, nil)
		require.NoError(t, err)
		assert.Empty(t, out, "the last block is held back for its padding")
		_, _, err = s.Next(ctx, make([]byte, 8), true, nil)
		assert.ErrorIs(t, err, engine.ErrBadCiphertext)
	})
	t.Run("refusals at the start", func(t *testing.T) {
		_, err := e.eng.StartStream(ctx, acmeAuditor, engine.StreamRequest{ID: k.ID, Params: gcm})
		assert.ErrorIs(t, err, engine.ErrPermissionDenied)
		_, err = e.eng.StartStream(ctx, globexAdmin, engine.StreamRequest{ID: k.ID, Params: gcm})
		assert.ErrorIs(t, err, engine.ErrNotFound)
		_, err = e.eng.StartStream(ctx, acmeApp, engine.StreamRequest{Decrypt: true, ID: k.ID, Params: gcm})
		assert.ErrorIs(t, err, engine.ErrInvalidMessage, "GCM decryption needs the IV")
		_, err = e.eng.StartStream(ctx, acmeApp, engine.StreamRequest{ID: k.ID, Params: &engine.CryptographicParameters{BlockCipherMode: engine.ModeECB}, IV: make([]byte, 16)})
		assert.ErrorIs(t, err, engine.ErrInvalidField, "ECB takes no IV")
	})
}
