package metrics_test

import (
	"context"
	"testing"
	"time"

	okmip "github.com/ovh/kmip-go"

	"github.com/minikms/minikms/engine"
	"github.com/minikms/minikms/metrics"
)

// BenchmarkObserveMessage is what the metrics add to a one-item KMIP
// message: the item's counter and histogram, the message's counter and
// histogram.
func BenchmarkObserveMessage(b *testing.B) {
	k := metrics.New(metrics.Options{}).KMIP()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			k.BatchItem(okmip.OperationEncrypt, okmip.ResultStatusSuccess, 0, 80*time.Microsecond)
			k.Message(0, 150*time.Microsecond)
		}
	})
}

// BenchmarkObserveFailure: a failed item resolves its labels.
func BenchmarkObserveFailure(b *testing.B) {
	k := metrics.New(metrics.Options{}).KMIP()
	b.ReportAllocs()
	for b.Loop() {
		k.BatchItem(okmip.OperationGet, okmip.ResultStatusOperationFailed, okmip.ResultReasonItemNotFound, 80*time.Microsecond)
	}
}

type nopStore struct{ engine.Store }

func (nopStore) GetObject(context.Context, string, string) (*engine.StoredObject, error) {
	return nil, nil
}

// BenchmarkTimedStore is a store call through the timing decorator (the
// store itself does nothing).
func BenchmarkTimedStore(b *testing.B) {
	s := metrics.New(metrics.Options{}).Store(nopStore{})
	ctx := context.Background()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			s.GetObject(ctx, "acme", "id")
		}
	})
}
