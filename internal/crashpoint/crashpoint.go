// Package crashpoint lets fault-injection tests kill jitform at a named point
// of an apply, to prove that the ledger and the next run recover. It is inert
// unless JITFORM_CRASHPOINT is set in the environment.
package crashpoint

import (
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
)

// Env names the crash point: "NAME" (first hit) or "NAME:N" (N-th hit).
const Env = "JITFORM_CRASHPOINT"

// Points an apply passes for every membership change.
const (
	BeforeIntent = "apply.before-intent" // nothing recorded, nothing changed
	AfterIntent  = "apply.after-intent"  // intent recorded, provider not called
	AfterCall    = "apply.after-call"    // provider called, outcome not recorded
)

var (
	mu   sync.Mutex
	hits = map[string]int{}
)

// Hit kills the process with SIGKILL when name is the configured crash point
// and this is its configured occurrence. SIGKILL, not exit: no deferred
// cleanup runs, as in a real crash.
func Hit(name string) {
	spec := os.Getenv(Env)
	if spec == "" {
		return
	}
	want, n := spec, 1
	if i := strings.LastIndexByte(spec, ':'); i > 0 {
		if k, err := strconv.Atoi(spec[i+1:]); err == nil && k > 0 {
			want, n = spec[:i], k
		}
	}
	if want != name {
		return
	}
	mu.Lock()
	hits[name]++
	c := hits[name]
	mu.Unlock()
	if c == n {
		_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
		select {} // SIGKILL is not deliverable late; never return
	}
}
