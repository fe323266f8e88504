package loadgen

import (
	"math"
	"math/bits"
	"time"
)

// Histogram is a log-linear latency histogram in the style of HdrHistogram:
// values below 2^histSubBits nanoseconds have one bucket each; above that,
// every power of two is split into 2^(histSubBits-1) equal buckets. A
// bucket therefore spans at most 1/128 of its lower bound and a reported
// quantile (the bucket's midpoint) is within 0.4% of the true sample. Memory
// is fixed (histBuckets counters) whatever the number of samples.
//
// The zero value is ready to use. A Histogram is not safe for concurrent
// use: each worker records into its own and they are merged afterwards.
type Histogram struct {
	counts [histBuckets]uint64
	n      uint64
	min    uint64
	max    uint64
}

const (
	histSubBits  = 8
	histSubCount = 1 << histSubBits // 256 exact buckets, then 128 per power of two
	histHalf     = histSubCount / 2
	// histBuckets covers every uint64: the largest shift is 64-histSubBits.
	histBuckets = (64-histSubBits)*histHalf + histSubCount
)

// bucketOf returns the bucket index of v.
func bucketOf(v uint64) int {
	if v < histSubCount {
		return int(v)
	}
	shift := bits.Len64(v) - histSubBits // >= 1
	top := v >> uint(shift)              // in [histHalf, histSubCount)
	return shift*histHalf + int(top)
}

// bucketRange returns the smallest and largest value bucket i holds.
func bucketRange(i int) (lo, hi uint64) {
	if i < histSubCount {
		return uint64(i), uint64(i)
	}
	shift := i/histHalf - 1
	top := uint64(i - shift*histHalf)
	lo = top << uint(shift)
	return lo, lo + (uint64(1) << uint(shift)) - 1
}

// Record adds one latency sample; negative durations count as zero.
func (h *Histogram) Record(d time.Duration) {
	v := uint64(0)
	if d > 0 {
		v = uint64(d)
	}
	h.counts[bucketOf(v)]++
	if h.n == 0 || v < h.min {
		h.min = v
	}
	if v > h.max {
		h.max = v
	}
	h.n++
}

// Merge adds every sample of o.
func (h *Histogram) Merge(o *Histogram) {
	if o.n == 0 {
		return
	}
	for i, c := range o.counts {
		h.counts[i] += c
	}
	if h.n == 0 || o.min < h.min {
		h.min = o.min
	}
	if o.max > h.max {
		h.max = o.max
	}
	h.n += o.n
}

// Count is the number of samples recorded.
func (h *Histogram) Count() uint64 { return h.n }

// Max is the largest sample, exact.
func (h *Histogram) Max() time.Duration { return time.Duration(h.max) }

// Quantile returns the q-quantile (0 < q <= 1) with the nearest-rank
// definition: the sample of rank ceil(q*n) in sorted order, reported as
// the midpoint of its bucket and clamped to the exact minimum and maximum.
// It is 0 when nothing was recorded.
func (h *Histogram) Quantile(q float64) time.Duration {
	if h.n == 0 {
		return 0
	}
	rank := uint64(math.Ceil(q * float64(h.n)))
	rank = max(1, min(rank, h.n))
	var seen uint64
	for i, c := range h.counts {
		seen += c
		if seen >= rank {
			lo, hi := bucketRange(i)
			mid := lo + (hi-lo)/2
			return time.Duration(min(max(mid, h.min), h.max))
		}
	}
	return time.Duration(h.max)
}
