package engine_test

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/minikms/minikms/engine"
)

func usageLimits(total int64) engine.Attribute {
	return attr(engine.AttrUsageLimits, engine.UsageLimits{UsageLimitsTotal: total, UsageLimitsUnit: 1 /* Byte */})
}

func (e *env) usageLeft(t testing.TB, id string) int64 {
	t.Helper()
	v, ok := e.value(t, acmeAdmin, id, engine.AttrUsageLimits)
	require.True(t, ok)
	return *v.(engine.UsageLimits).UsageLimitsCount
}

func TestGetUsageAllocation(t *testing.T) {
	// OASIS TC-51: 1000 bytes, two allocations of 500, the third refused.
	e := newEnv(t)
	ctx := t.Context()
	k := e.activeAES(t, acmeApp, 128, usageLimits(1000))
	n := int64(500)
	o, err := e.eng.Check(ctx, acmeApp, engine.CheckRequest{ID: k.ID, UsageLimitsCount: &n})
	require.NoError(t, err)
	assert.Equal(t, k.ID, o.ID)
	for range 2 {
		_, err := e.eng.GetUsageAllocation(ctx, acmeApp, k.ID, 500)
		require.NoError(t, err)
	}
	assert.Equal(t, int64(0), e.usageLeft(t, k.ID))
	_, err = e.eng.GetUsageAllocation(ctx, acmeApp, k.ID, 500)
	assert.ErrorIs(t, err, engine.ErrPermissionDenied)
	_, err = e.eng.Check(ctx, acmeApp, engine.CheckRequest{ID: k.ID, UsageLimitsCount: &n})
	assert.ErrorIs(t, err, engine.ErrPermissionDenied)
	assert.ErrorContains(t, err, "Usage Limits Count 500 exceeds the 0 units left")

	// Durable: a restart sees the reservation.
	e.reopen(t)
	assert.Equal(t, int64(0), e.usageLeft(t, k.ID))
	_, err = e.eng.GetUsageAllocation(ctx, acmeApp, k.ID, 1)
	assert.ErrorIs(t, err, engine.ErrPermissionDenied)
}

func TestGetUsageAllocationConcurrent(t *testing.T) {
	// Allocations racing for one key never hand out more than it has.
	e := newEnv(t)
	k := e.activeAES(t, acmeApp, 128, usageLimits(500))
	var granted atomic.Int64
	var wg sync.WaitGroup
	for range 12 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := e.eng.GetUsageAllocation(t.Context(), acmeApp, k.ID, 100); err == nil {
				granted.Add(1)
			} else {
				assert.ErrorIs(t, err, engine.ErrPermissionDenied)
			}
		}()
	}
	wg.Wait()
	assert.Equal(t, int64(5), granted.Load())
	assert.Equal(t, int64(0), e.usageLeft(t, k.ID))
}

func TestGetUsageAllocationRefusals(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	k := e.activeAES(t, acmeApp, 128, usageLimits(1000))
	plain := e.activeAES(t, acmeApp, 128)
	pre := e.create(t, acmeApp, aesAttrs(128, usageLimits(1000))...)
	stopped := e.activeAES(t, acmeApp, 128, usageLimits(1000), attr(engine.AttrProtectStopDate, e.clock.Now()))
	cases := []struct {
		name     string
		p        engine.Principal
		id       string
		n        int64
		sentinel error
	}{
		{"no usage limits", acmeApp, plain.ID, 1, engine.ErrIllegalOperation},
		{"pre-active", acmeApp, pre.ID, 1, engine.ErrWrongState},
		{"protect stop date passed", acmeApp, stopped.ID, 1, engine.ErrWrongState},
		{"zero", acmeApp, k.ID, 0, engine.ErrInvalidField},
		{"negative", acmeApp, k.ID, -1, engine.ErrInvalidField},
		{"more than left", acmeApp, k.ID, 1001, engine.ErrPermissionDenied},
		{"other tenant", globexAdmin, k.ID, 1, engine.ErrNotFound},
		{"auditor", acmeAuditor, k.ID, 1, engine.ErrPermissionDenied},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := e.eng.GetUsageAllocation(ctx, tc.p, tc.id, tc.n)
			assert.ErrorIs(t, err, tc.sentinel)
		})
	}
	assert.Equal(t, int64(1000), e.usageLeft(t, k.ID), "a refused allocation took nothing")
}

func TestCheck(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	k := e.activeAES(t, acmeApp, 128, attr(engine.AttrCryptographicUsageMask, engine.UsageEncrypt|engine.UsageDecrypt))
	enc, mac := engine.UsageEncrypt, engine.UsageMACGenerate|engine.UsageEncrypt
	lease := time.Hour
	o, err := e.eng.Check(ctx, acmeApp, engine.CheckRequest{ID: k.ID, UsageMask: &enc, LeaseTime: &lease})
	require.NoError(t, err)
	assert.Equal(t, k.ID, o.ID)
	long := engine.DefaultLease + time.Second
	_, err = e.eng.Check(ctx, acmeApp, engine.CheckRequest{ID: k.ID, LeaseTime: &long})
	assert.ErrorIs(t, err, engine.ErrPermissionDenied)
	assert.ErrorContains(t, err, "exceeds")
	_, err = e.eng.Check(ctx, acmeApp, engine.CheckRequest{ID: k.ID, UsageMask: &mac})
	assert.ErrorIs(t, err, engine.ErrPermissionDenied)
	assert.ErrorContains(t, err, "generate MACs")

	// A revoked (compromised) key may decrypt, not encrypt, and gets no lease.
	_, err = e.eng.Revoke(ctx, acmeAdmin, k.ID, engine.RevokeRequest{Reason: engine.RevocationReason{RevocationReasonCode: engine.RevokeKeyCompromise}})
	require.NoError(t, err)
	dec := engine.UsageDecrypt
	_, err = e.eng.Check(ctx, acmeApp, engine.CheckRequest{ID: k.ID, UsageMask: &dec})
	require.NoError(t, err)
	_, err = e.eng.Check(ctx, acmeApp, engine.CheckRequest{ID: k.ID, UsageMask: &enc, LeaseTime: &lease})
	assert.ErrorIs(t, err, engine.ErrPermissionDenied)
	assert.ErrorContains(t, err, "Cryptographic Usage Mask")
	assert.ErrorContains(t, err, "Lease Time")

	neg := int64(-1)
	_, err = e.eng.Check(ctx, acmeApp, engine.CheckRequest{ID: k.ID, UsageLimitsCount: &neg})
	assert.ErrorIs(t, err, engine.ErrInvalidField)
	_, err = e.eng.Check(ctx, globexAdmin, engine.CheckRequest{ID: k.ID})
	assert.ErrorIs(t, err, engine.ErrNotFound)
	_, err = e.eng.Check(ctx, acmeAuditor, engine.CheckRequest{ID: k.ID})
	assert.ErrorIs(t, err, engine.ErrPermissionDenied)
}

func TestObtainLease(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	k := e.activeAES(t, acmeApp, 128)
	res, err := e.eng.ObtainLease(ctx, acmeApp, k.ID)
	require.NoError(t, err)
	assert.Equal(t, k.ID, res.Object.ID)
	assert.Equal(t, engine.DefaultLease, res.LeaseTime, "the server's lease")
	assert.Equal(t, e.dkAttr(t, k.ID, engine.AttrLastChangeDate), res.LastChangeDate)

	pre := e.create(t, acmeApp, aesAttrs(128)...)
	_, err = e.eng.ObtainLease(ctx, acmeApp, pre.ID)
	assert.ErrorIs(t, err, engine.ErrWrongState)
	_, err = e.eng.Revoke(ctx, acmeAdmin, k.ID, engine.RevokeRequest{Reason: engine.RevocationReason{RevocationReasonCode: engine.RevokeKeyCompromise}})
	require.NoError(t, err)
	_, err = e.eng.ObtainLease(ctx, acmeApp, k.ID)
	assert.ErrorIs(t, err, engine.ErrWrongState)
	assert.ErrorContains(t, err, "Compromised")
	_, err = e.eng.ObtainLease(ctx, globexAdmin, k.ID)
	assert.ErrorIs(t, err, engine.ErrNotFound)
	_, err = e.eng.ObtainLease(ctx, acmeAuditor, k.ID)
	assert.ErrorIs(t, err, engine.ErrPermissionDenied)
}
