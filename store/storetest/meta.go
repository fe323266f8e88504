package storetest

import (
	"fmt"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/minikms/minikms/engine"
)

func testMeta(t *testing.T, open func(t *testing.T) engine.Store) {
	t.Run("absent key is stored", func(t *testing.T) {
		s, ctx := open(t), testContext(t)
		got, err := s.InitMeta(ctx, "kcv/1", []byte("abc123"))
		require.NoError(t, err)
		assert.Equal(t, []byte("abc123"), got)
		got, err = s.GetMeta(ctx, "kcv/1")
		require.NoError(t, err)
		assert.Equal(t, []byte("abc123"), got)
	})

	t.Run("present key keeps its value", func(t *testing.T) {
		s, ctx := open(t), testContext(t)
		_, err := s.InitMeta(ctx, "salt-check", []byte{0x00, 0x01, 0xfe})
		require.NoError(t, err)
		got, err := s.InitMeta(ctx, "salt-check", []byte("other"))
		require.NoError(t, err)
		assert.Equal(t, []byte{0x00, 0x01, 0xfe}, got, "InitMeta must return the existing value")
		got, err = s.GetMeta(ctx, "salt-check")
		require.NoError(t, err)
		assert.Equal(t, []byte{0x00, 0x01, 0xfe}, got, "InitMeta must not overwrite")
	})

	t.Run("keys are independent", func(t *testing.T) {
		s, ctx := open(t), testContext(t)
		for i := range 5 {
			key, val := fmt.Sprintf("key-%d", i), fmt.Sprintf("value-%d", i)
			got, err := s.InitMeta(ctx, key, []byte(val))
			require.NoError(t, err)
			assert.Equal(t, []byte(val), got)
		}
		for i := range 5 {
			got, err := s.GetMeta(ctx, fmt.Sprintf("key-%d", i))
			require.NoError(t, err)
			assert.Equal(t, []byte(fmt.Sprintf("value-%d", i)), got)
		}
	})

	t.Run("ListMeta returns exactly the keys with the prefix", func(t *testing.T) {
		s, ctx := open(t), testContext(t)
		for _, k := range []string{"pki.ca.tenant.acme", "pki.ca.tenant.globex", "pki.ca.root", "pki.ca.tenant", "pki.ca.tenanu.x", "zzz"} {
			_, err := s.InitMeta(ctx, k, []byte("v:"+k))
			require.NoError(t, err)
		}
		got, err := s.ListMeta(ctx, "pki.ca.tenant.")
		require.NoError(t, err)
		assert.Equal(t, map[string][]byte{
			"pki.ca.tenant.acme":   []byte("v:pki.ca.tenant.acme"),
			"pki.ca.tenant.globex": []byte("v:pki.ca.tenant.globex"),
		}, got)
		none, err := s.ListMeta(ctx, "absent.")
		require.NoError(t, err)
		assert.Empty(t, none)
	})
	t.Run("missing key is not found", func(t *testing.T) {
		s, ctx := open(t), testContext(t)
		_, err := s.InitMeta(ctx, "present", []byte("x"))
		require.NoError(t, err)
		for _, key := range []string{"absent", "Present", "present ", ""} {
			got, err := s.GetMeta(ctx, key)
			assert.ErrorIs(t, err, engine.ErrNotFound, "GetMeta(%q)", key)
			assert.Nil(t, got, "GetMeta(%q)", key)
		}
	})

	t.Run("concurrent InitMeta agrees on one value", func(t *testing.T) {
		s, ctx := open(t), testContext(t)
		const writers = 16
		var (
			wg   sync.WaitGroup
			got  [writers][]byte
			errs [writers]error
		)
		start := make(chan struct{})
		for i := range writers {
			wg.Go(func() {
				<-start
				got[i], errs[i] = s.InitMeta(ctx, "root-kcv", []byte(fmt.Sprintf("candidate-%02d", i)))
			})
		}
		close(start)
		wg.Wait()
		for i := range writers {
			require.NoError(t, errs[i], "writer %d", i)
		}
		stored, err := s.GetMeta(ctx, "root-kcv")
		require.NoError(t, err)
		assert.Regexp(t, `^candidate-\d\d$`, string(stored))
		for i := range writers {
			assert.Equal(t, stored, got[i], "writer %d saw another value than the one stored", i)
		}
	})
}
