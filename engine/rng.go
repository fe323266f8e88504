package engine

import (
	"context"
	"crypto/rand"
)

// Operations of this file.
const (
	OpRNGRetrieve Op = "RNGRetrieve"
	OpRNGSeed     Op = "RNGSeed"
)

// MaxRNGRetrieve bounds the random bytes one RNG Retrieve returns.
const MaxRNGRetrieve = 64 << 10

// MaxRNGSeed bounds the seed one RNG Seed may carry.
const MaxRNGSeed = 64 << 10

// RNGRetrieve returns n random bytes from the operating system's CSPRNG.
func (e *Engine) RNGRetrieve(_ context.Context, p Principal, n int32) ([]byte, error) {
	if err := authorize(p, OpRNGRetrieve); err != nil {
		return nil, err
	}
	switch {
	case n <= 0:
		return nil, errf(ErrInvalidField, "Data Length must be positive, not %d", n)
	case n > MaxRNGRetrieve:
		return nil, errf(ErrLimit, "Data Length %d exceeds the %d bytes one RNG Retrieve returns", n, MaxRNGRetrieve)
	}
	out := make([]byte, n)
	if _, err := rand.Read(out); err != nil {
		return nil, err
	}
	return out, nil
}

// RNGSeed takes a client's seed for the server's random number generator
// and returns how many of its bytes were accepted. The server's randomness
// is the operating system's CSPRNG, which no client input may influence (a
// seed from a client could only weaken it, or let that client predict it):
// the request is accepted, nothing of the seed is used, and the answer is
// 0 bytes accepted, which KMIP lets a server say (Data Length is "the
// amount of seed data accepted").
func (e *Engine) RNGSeed(_ context.Context, p Principal, seed []byte) (int32, error) {
	if err := authorize(p, OpRNGSeed); err != nil {
		return 0, err
	}
	switch {
	case seed == nil:
		return 0, errf(ErrMissingData, "RNG Seed needs Data")
	case len(seed) > MaxRNGSeed:
		return 0, errf(ErrLimit, "seed larger than %d bytes", MaxRNGSeed)
	}
	return 0, nil
}
