package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestGrantBreakGlassLimits: break-glass starts now (--start is refused
// before anything is written), and break_glass { max_per_day } caps each
// principal's break-glass time in any 24 hours; max_active counts a
// pending request.
func TestGrantBreakGlassLimits(t *testing.T) {
	t.Parallel()
	r := newGrantRepo(t)
	extra := `
policy "budget" {
  groups       = [group.ops]
  eligible     = ["alice", "bob"]
  max_duration = "4h"
  approvals    = 1
  approvers    = ["carol"]
  approval     = "ledger"
  max_active   = 2
  break_glass {
    max_duration = "1h"
    max_per_day  = "1h"
  }
}
`
	if err := os.WriteFile(filepath.Join(r.dir, "budget.hcl"), []byte(extra), 0o644); err != nil {
		t.Fatal(err)
	}
	before := ledgerLen(t, r)
	_, stderr, code := r.as("alice", "grant", "request", "--policy", "budget", "--duration", "30m", "--start", "+2h", "--break-glass", "--reason", "later")
	if code != 1 || !strings.Contains(stderr, "a break-glass grant starts now, never later: leave out --start") {
		t.Fatalf("break-glass with --start: exit %d: %s", code, stderr)
	}
	if n := ledgerLen(t, r); n != before {
		t.Fatalf("the refused request wrote %d event(s)", n-before)
	}

	first := r.request("alice", "--policy", "budget", "--duration", "40m", "--break-glass", "--reason", "INC1")
	if g := r.show(first); !g.Active || !g.BreakGlass {
		t.Fatalf("first break-glass grant: %+v", g)
	}
	before = ledgerLen(t, r)
	_, stderr, code = r.as("alice", "grant", "request", "--policy", "budget", "--duration", "30m", "--break-glass", "--reason", "INC2")
	if code != 1 || !strings.Contains(stderr, "break-glass budget: alice already used 40m0s of policy.budget's break_glass max_per_day 1h0m0s") ||
		!strings.Contains(stderr, "or break glass for at most 20m0s") {
		t.Fatalf("second break-glass grant over the budget: exit %d: %s", code, stderr)
	}
	if n := ledgerLen(t, r); n != before {
		t.Fatalf("the refused request wrote %d event(s)", n-before)
	}
	// Within what is left of the budget, it is accepted (max_active is 2).
	r.request("alice", "--policy", "budget", "--duration", "20m", "--break-glass", "--reason", "INC3")

	// max_active counts a pending request: bob's second request waits.
	r.request("bob", "--policy", "budget", "--duration", "1h", "--reason", "one")
	r.request("bob", "--policy", "budget", "--duration", "1h", "--reason", "two")
	_, stderr, code = r.as("bob", "grant", "request", "--policy", "budget", "--duration", "1h", "--reason", "three")
	if code != 1 || !strings.Contains(stderr, "bob already holds 2 grant(s) under policy.budget overlapping this window") {
		t.Fatalf("a third pending request under max_active = 2: exit %d: %s", code, stderr)
	}
}
