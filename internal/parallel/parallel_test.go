package parallel

import (
	"sync/atomic"
	"testing"
)

// Every index is handed out exactly once, in chunks no larger than asked,
// whatever the sizes.
func TestChunksCoverEveryIndexOnce(t *testing.T) {
	for _, tc := range []struct{ n, size int }{
		{0, 4}, {1, 4}, {4, 4}, {5, 4}, {1000, 7}, {1000, 1}, {3, 0}, {10_000, 2048},
	} {
		seen := make([]atomic.Int32, tc.n)
		var calls atomic.Int32
		Chunks(tc.n, tc.size, func(lo, hi int) {
			calls.Add(1)
			if lo >= hi || hi-lo > max(tc.size, 1) {
				t.Errorf("n=%d size=%d: chunk [%d,%d)", tc.n, tc.size, lo, hi)
			}
			for i := lo; i < hi; i++ {
				seen[i].Add(1)
			}
		})
		for i := range seen {
			if got := seen[i].Load(); got != 1 {
				t.Fatalf("n=%d size=%d: index %d handed out %d times", tc.n, tc.size, i, got)
			}
		}
		if tc.n == 0 && calls.Load() != 0 {
			t.Errorf("n=0: do called %d times", calls.Load())
		}
	}
}
