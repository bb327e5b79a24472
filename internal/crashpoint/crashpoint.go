// Package crashpoint lets fault-injection tests kill or freeze jitform at a
// named point of an apply, to prove that the ledger and the next run
// recover, and that a second process waits. It is inert unless
// JITFORM_CRASHPOINT is set in the environment.
package crashpoint

import (
	"os"
	"strconv"
	"strings"
	"sync"
)

// Env names the point: "NAME" (first hit), "NAME:N" (N-th hit), and an
// optional ":stop" suffix ("NAME:N:stop") that freezes the process with
// SIGSTOP instead of killing it: the test can then look at what it holds
// (the state lock, an intent without outcome), signal it, and let it go on
// with SIGCONT.
const Env = "JITFORM_CRASHPOINT"

// Points an apply passes for every membership change.
const (
	BeforeIntent = "apply.before-intent" // nothing recorded, nothing changed
	AfterIntent  = "apply.after-intent"  // intent recorded, provider not called
	AfterCall    = "apply.after-call"    // provider called, outcome not recorded
	// AfterWrite is passed by a provider after each write it makes inside
	// its one call for a target (an LDAP Modify per group): killing there
	// stops the process in the middle of a batch, some groups written and
	// others not, every intent recorded and no outcome.
	AfterWrite = "provider.after-write"
)

// Spec is a parsed JITFORM_CRASHPOINT value.
type Spec struct {
	Point string
	N     int  // which hit, from 1
	Stop  bool // SIGSTOP instead of SIGKILL
}

// Parse reads a JITFORM_CRASHPOINT value; ok is false when it is empty.
func Parse(v string) (s Spec, ok bool) {
	if v == "" {
		return Spec{}, false
	}
	s.N = 1
	if rest, found := strings.CutSuffix(v, ":stop"); found {
		v, s.Stop = rest, true
	}
	if i := strings.LastIndexByte(v, ':'); i > 0 {
		if k, err := strconv.Atoi(v[i+1:]); err == nil && k > 0 {
			v, s.N = v[:i], k
		}
	}
	s.Point = v
	return s, true
}

// String is the Env value for s.
func (s Spec) String() string {
	v := s.Point + ":" + strconv.Itoa(s.N)
	if s.Stop {
		v += ":stop"
	}
	return v
}

// hits counts passes per point. It is process-wide on purpose: "the N-th
// time this process passes the point" is what a crash test names.
var (
	mu   sync.Mutex
	hits = map[string]int{}
)

// Hit kills the process with SIGKILL (or freezes it with SIGSTOP) when name
// is the configured point and this is its configured occurrence. SIGKILL,
// not exit: no deferred cleanup runs, as in a real crash.
func Hit(name string) {
	s, ok := Parse(os.Getenv(Env))
	if !ok || s.Point != name {
		return
	}
	mu.Lock()
	hits[name]++
	c := hits[name]
	mu.Unlock()
	if c != s.N {
		return
	}
	if s.Stop {
		// Returns once the test sends SIGCONT; the apply then goes on.
		stop()
		return
	}
	kill()
	select {} // SIGKILL is not deliverable late; never return
}
