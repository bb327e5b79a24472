//go:build unix

package report

import (
	"syscall"
	"time"
)

// processCPU is the CPU time the process has used (all threads, GC
// included): on a shared machine it says more than wall time.
func processCPU() (time.Duration, bool) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0, false
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), true
}
