// Package parallel runs independent work on every core.
package parallel

import (
	"runtime"
	"sync"
	"sync/atomic"
)

// Chunks calls do on the [lo,hi) chunks of [0,n), each of at most size
// elements, on up to GOMAXPROCS goroutines, and returns when all are done.
// do must touch only what its chunk owns. Workers take the next chunk as
// they finish one, so a core slowed by other work does not hold up the
// rest; with one worker (one chunk, or one core) the chunks run in order
// on the caller's goroutine.
func Chunks(n, size int, do func(lo, hi int)) {
	if n <= 0 {
		return
	}
	size = max(size, 1)
	workers := min(runtime.GOMAXPROCS(0), (n+size-1)/size)
	if workers <= 1 {
		for lo := 0; lo < n; lo += size {
			do(lo, min(n, lo+size))
		}
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
