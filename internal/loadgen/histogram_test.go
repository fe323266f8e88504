package loadgen

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

// exactQuantile is the nearest-rank quantile of sorted samples, the
// definition Histogram.Quantile approximates.
func exactQuantile(sorted []time.Duration, q float64) time.Duration {
	rank := int(math.Ceil(q * float64(len(sorted))))
	rank = max(1, min(rank, len(sorted)))
	return sorted[rank-1]
}

func TestHistogramQuantilesWithinOnePercent(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	cases := []struct {
		name string
		gen  func(i int) time.Duration
		n    int
	}{
		{"uniform 1µs..100ms", func(int) time.Duration {
			return time.Microsecond + time.Duration(rng.Int64N(int64(100*time.Millisecond)))
		}, 100_000},
		{"lognormal around 1ms", func(int) time.Duration {
			return time.Duration(math.Exp(rng.NormFloat64()*1.2) * float64(time.Millisecond))
		}, 100_000},
		{"sequence 1..50000 ns", func(i int) time.Duration { return time.Duration(i + 1) }, 50_000},
		{"bimodal 200µs / 40ms", func(i int) time.Duration {
			if i%100 < 97 {
				return 200*time.Microsecond + time.Duration(rng.Int64N(20_000))
			}
			return 40*time.Millisecond + time.Duration(rng.Int64N(2_000_000))
		}, 20_000},
		{"constant", func(int) time.Duration { return 1234567 * time.Nanosecond }, 1000},
		{"single", func(int) time.Duration { return 3 * time.Second }, 1},
	}
	quantiles := []float64{0.001, 0.25, 0.5, 0.9, 0.95, 0.99, 0.999, 1}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var h Histogram
			samples := make([]time.Duration, c.n)
			for i := range samples {
				samples[i] = c.gen(i)
				h.Record(samples[i])
			}
			slices.Sort(samples)
			if h.Count() != uint64(c.n) {
				t.Fatalf("count %d, want %d", h.Count(), c.n)
			}
			if h.Max() != samples[len(samples)-1] {
				t.Fatalf("max %v, want exactly %v", h.Max(), samples[len(samples)-1])
			}
			for _, q := range quantiles {
				got, want := h.Quantile(q), exactQuantile(samples, q)
				if rel := math.Abs(float64(got-want)) / float64(want); rel > 0.01 {
					t.Errorf("q%.3f = %v, exact %v: %.3f%% off (limit 1%%)", q, got, want, rel*100)
				}
			}
		})
	}
}

func TestHistogramBuckets(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	check := func(v uint64) {
		i := bucketOf(v)
		if i < 0 || i >= histBuckets {
			t.Fatalf("value %d: bucket %d out of range", v, i)
		}
		lo, hi := bucketRange(i)
		if v < lo || v > hi {
			t.Fatalf("value %d in bucket %d [%d, %d]", v, i, lo, hi)
		}
		if (hi-lo)/2 > lo/(2*histHalf) {
			t.Fatalf("bucket %d [%d, %d] is wider than 1/%d of its bound", i, lo, hi, histHalf)
		}
	}
	for v := range uint64(5000) {
		check(v)
	}
	for range 100_000 {
		check(rng.Uint64() >> rng.UintN(64))
	}
	check(math.MaxUint64)
	// Buckets tile the value range: each starts right after the previous.
	for i := 1; i < histBuckets; i++ {
		_, prevHi := bucketRange(i - 1)
		lo, _ := bucketRange(i)
		if lo != prevHi+1 {
			t.Fatalf("bucket %d starts at %d, previous ends at %d", i, lo, prevHi)
		}
	}
}

func TestHistogramMerge(t *testing.T) {
	var a, b, all Histogram
	for i := range 1000 {
		d := time.Duration(i*i) * time.Microsecond
		all.Record(d)
		if i%3 == 0 {
			a.Record(d)
		} else {
			b.Record(d)
		}
	}
	var m Histogram
	m.Merge(&a)
	m.Merge(&b)
	m.Merge(&Histogram{})
	if m != all {
		t.Fatal("merging two halves differs from recording everything in one")
	}
	var empty Histogram
	if empty.Quantile(0.5) != 0 || empty.Max() != 0 {
		t.Fatal("an empty histogram reports latencies")
	}
}

func BenchmarkHistogramRecord(b *testing.B) {
	var h Histogram
	for i := 0; b.Loop(); i++ {
		h.Record(time.Duration(i&0xFFFFF) * 97)
	}
}
