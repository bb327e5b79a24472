//go:build !unix

package crashpoint

import "os"

// Crash points are a test harness for Unix; elsewhere a kill is an exit
// without cleanup and a stop is not available.
func stop() {}
func kill() { os.Exit(137) }
