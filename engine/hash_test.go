package engine_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/minikms/minikms/engine"
)

func TestHashKnownAnswers(t *testing.T) {
	// FIPS 180-4 / FIPS 202 examples: the digests of "abc".
	e := newEnv(t)
	abc := []byte("abc")
	for h, want := range map[engine.HashAlgorithm]string{
		engine.HashSHA1:      "a9993e364706816aba3e25717850c26c9cd0d89d",
		engine.HashSHA224:    "23097d223405d8228642a477bda255b32aadbce4bda0b3f7e36c9da7",
		engine.HashSHA256:    "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
		engine.HashSHA384:    "cb00753f45a35e8bb5a03d699ac65007272c32ab0eded1631a8b605a43ff5bed8086072ba1e7cc2358baeca134c825a7",
		engine.HashSHA512:    "ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f",
		engine.HashSHA512256: "53048e2681941ef99b2e29b76b4c7dabe4c2d0c634fc6d46e0e2f13107e7af23",
		engine.HashSHA3256:   "3a985da74fe225b2045c172d6bd390bd855f086e3e9d525b46bfe24511431532",
	} {
		got, err := e.eng.Hash(t.Context(), acmeApp, &engine.CryptographicParameters{HashingAlgorithm: h}, abc)
		require.NoError(t, err)
		assert.Equal(t, hexv(t, want), got, "hashing algorithm 0x%X", uint32(h))
	}
	// OASIS CS-AC-M-7.
	got, err := e.eng.Hash(t.Context(), acmeApp, &engine.CryptographicParameters{HashingAlgorithm: engine.HashSHA256}, hexv(t, "01020304050607080910111213141516"))
	require.NoError(t, err)
	assert.Equal(t, hexv(t, "ad41233d22cf9322e3a7ff49a13da434797abed3bab80950a1a0d4e582b7ea72"), got)
}

func TestHashRefusals(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	sha256 := &engine.CryptographicParameters{HashingAlgorithm: engine.HashSHA256}
	_, err := e.eng.Hash(ctx, acmeApp, nil, []byte("x"))
	assert.ErrorIs(t, err, engine.ErrMissingData)
	_, err = e.eng.Hash(ctx, acmeApp, &engine.CryptographicParameters{}, []byte("x"))
	assert.ErrorIs(t, err, engine.ErrMissingData)
	_, err = e.eng.Hash(ctx, acmeApp, &engine.CryptographicParameters{HashingAlgorithm: 0x03 /* MD5 */}, []byte("x"))
	assert.ErrorIs(t, err, engine.ErrNotSupported)
	_, err = e.eng.Hash(ctx, acmeAuditor, sha256, []byte("x"))
	assert.ErrorIs(t, err, engine.ErrPermissionDenied)
	_, err = e.eng.Hash(ctx, acmeApp, sha256, make([]byte, engine.MaxDataSize+1))
	assert.ErrorIs(t, err, engine.ErrLimit)
}
