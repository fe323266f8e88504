package engine

import (
	"context"
	"testing"
)

// Test hooks of rekey.go for the black-box tests of package engine_test.

// SetGCMBoundForTest replaces the AES-GCM invocation limit and the size
// of the blocks reserved at a time, and returns a function restoring
// them. Tests using it must not run in parallel with other GCM tests.
func SetGCMBoundForTest(limit, block int64) (restore func()) {
	oldLimit, oldBlock := gcmInvocationLimit, gcmLeaseBlock
	gcmInvocationLimit, gcmLeaseBlock = limit, block
	return func() { gcmInvocationLimit, gcmLeaseBlock = oldLimit, oldBlock }
}

// GCMReservedForTest is the object's durable count of reserved AES-GCM
// invocations.
func GCMReservedForTest(o *Object) int64 { return gcmReserved(o) }

// BenchmarkReserveGCM is the per-call cost of the AES-GCM invocation
// accounting on Encrypt's hot path (a block already reserved): one
// sharded map read and one atomic add, no allocation, no store access.
func BenchmarkReserveGCM(b *testing.B) {
	e := &Engine{}
	o := &Object{Tenant: "acme", ID: newID()}
	e.gcm.slot(o.ID).cur.Store(&gcmLease{size: 1 << 62})
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if err := e.reserveGCM(ctx, o, nil); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkReserveGCMParallel(b *testing.B) {
	e := &Engine{}
	o := &Object{Tenant: "acme", ID: newID()}
	e.gcm.slot(o.ID).cur.Store(&gcmLease{size: 1 << 62})
	ctx := context.Background()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := e.reserveGCM(ctx, o, nil); err != nil {
				b.Error(err)
				return
			}
		}
	})
}
