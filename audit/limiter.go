package audit

import (
	"sync"
	"time"
)

// Limiter bounds the records of unauthenticated failures (refused
// handshakes, requests without a certificate): anyone who can reach a
// port can cause them, and must be able neither to fill the log nor to
// slow it down. Beyond the rate, failures are counted, and the count is
// carried by the next record admitted. The zero value is not usable: use
// NewLimiter.
type Limiter struct {
	burst    int
	interval time.Duration

	mu         sync.Mutex
	tokens     int
	last       time.Time
	suppressed int
}

// NewLimiter admits burst records at once and one more per interval.
func NewLimiter(burst int, interval time.Duration) *Limiter {
	return &Limiter{burst: burst, interval: interval, tokens: burst}
}

// DefaultLimiter admits 20 at once and 10 per second.
func DefaultLimiter() *Limiter { return NewLimiter(20, 100*time.Millisecond) }

// Admit reports whether a record may be made now, and how many were
// suppressed since the last one admitted (record it with the event, e.g.
// as detail "suppressed_before").
func (l *Limiter) Admit(now time.Time) (ok bool, suppressed int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.last.IsZero() {
		l.last = now
	}
	if n := int(now.Sub(l.last) / l.interval); n > 0 {
		l.tokens = min(l.burst, l.tokens+n)
		l.last = l.last.Add(time.Duration(n) * l.interval)
	}
	if l.tokens == 0 {
		l.suppressed++
		return false, 0
	}
	l.tokens--
	n := l.suppressed
	l.suppressed = 0
	return true, n
}
