// Package parallel runs independent work on every core.
package parallel

import (
	"runtime"
	"sync"
	"sync/atomic"
)

// Chunks calls do on the [lo,hi) chunks of [0,n), each of at most size
// elements, on up to GOMAXPROCS goroutines, and returns when all are done.
// do must touch only what its chunk owns. Work that fits in one chunk runs
// on the caller's goroutine.
func Chunks(n, size int, do func(lo, hi int)) {
	if n <= 0 {
		return
	}
	size = max(size, 1)
	workers := min(runtime.GOMAXPROCS(0), (n+size-1)/size)
	if workers <= 1 {
		do(0, n)
		return
	}
	var next atomic.Int64
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for {
				lo := int(next.Add(int64(size))) - size
				if lo >= n {
					return
				}
				do(lo, min(n, lo+size))
			}
		})
	}
	wg.Wait()
}
