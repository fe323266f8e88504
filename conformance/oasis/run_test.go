package oasis

import (
	"context"
	"testing"
)

func TestFakeServerPassesEveryVector(t *testing.T) {
	vectors := loadAll(t)
	if len(vectors) < 400 {
		t.Fatalf("loaded %d vectors, want the whole corpus (about 410)", len(vectors))
	}
	for _, v := range vectors {
		t.Run(v.Name(), func(t *testing.T) {
			t.Parallel()
			res := v.Run(context.Background(), newFakeServer(t, v))
			if !res.Passed() {
				t.Fatalf("%s", res.Failure())
			}
			if len(res.Steps) != len(v.Pairs) {
				t.Fatalf("ran %d steps of %d", len(res.Steps), len(v.Pairs))
			}
		})
	}
}

// TestDifferentServerPassesEveryVector runs every vector against a fake
// server that answers like another correct server would (see perturb): the
// tolerances must accept every such difference.
func TestDifferentServerPassesEveryVector(t *testing.T) {
	for _, v := range loadAll(t) {
		t.Run(v.Name(), func(t *testing.T) {
			t.Parallel()
			f := newFakeServer(t, v)
			f.differ = true
			res := v.Run(context.Background(), f)
			if !res.Passed() {
				t.Fatalf("%s", res.Failure())
			}
		})
	}
}
