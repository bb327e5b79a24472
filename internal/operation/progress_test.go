package operation

import (
	"testing"
	"time"
)

// Each finished target gives one line: how many of how many, the time
// since the apply began, its own time and the slowest target so far.
func TestTargetProgressLines(t *testing.T) {
	t0 := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	now := t0
	p := newTargetProgress(3, func() time.Time { return now })
	now = t0.Add(1500 * time.Millisecond)
	if got, want := p.done("target.winrm.web01", t0), "[1/3 targets, 1.5s] target.winrm.web01 done in 1.5s; slowest so far target.winrm.web01 (1.5s)"; got != want {
		t.Errorf("first = %q, want %q", got, want)
	}
	now = t0.Add(2 * time.Second)
	if got, want := p.done("target.winrm.web02", t0.Add(1900*time.Millisecond)), "[2/3 targets, 2s] target.winrm.web02 done in 100ms; slowest so far target.winrm.web01 (1.5s)"; got != want {
		t.Errorf("second = %q, want %q", got, want)
	}
	now = t0.Add(9 * time.Second)
	if got, want := p.done("target.winrm.web03", t0.Add(2*time.Second)), "[3/3 targets, 9s] target.winrm.web03 done in 7s; slowest so far target.winrm.web03 (7s)"; got != want {
		t.Errorf("third = %q, want %q", got, want)
	}
	one := newTargetProgress(1, func() time.Time { return now })
	if got, want := one.done("target.ldif.d", now), "[1/1 targets, 0s] target.ldif.d done in 0s"; got != want {
		t.Errorf("single = %q, want %q", got, want)
	}
}
