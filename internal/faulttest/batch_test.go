package faulttest

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jitform/jitform/internal/crashpoint"
	"github.com/jitform/jitform/internal/testbed/slapdtest"
	"github.com/jitform/jitform/state"
)

// A kill in the middle of a batch: all changes of a target go to the
// provider in one call, which writes the groups concurrently
// (max_concurrency = 2). SIGKILL after the 5th of 20 Modifies leaves some
// groups written and the others not, every intent durable and no outcome.
// The next apply reads every group, closes each open intent with what it
// found (observed_present where the write landed), intends again only the
// changes that did not land, and converges; the ledger verifies.
func TestKillInTheMiddleOfABatchConverges(t *testing.T) {
	const groups = 20
	var seed strings.Builder
	seed.WriteString(people)
	for i := range groups {
		fmt.Fprintf(&seed, "\ndn: cn=g%02d,ou=groups,dc=example,dc=org\nobjectClass: groupOfNames\ncn: g%02d\nmember: %s\n", i, i, svc)
	}
	s := slapdtest.Start(t, seed.String())
	t.Setenv("FAULTTEST_LDAP_PASSWORD", slapdtest.RootPW)
	start := time.Now().Add(-time.Hour).UTC().Format(time.RFC3339)
	var hcl strings.Builder
	fmt.Fprintf(&hcl, `target "ldap" "corp" {
  url             = %q
  ca_file         = %q
  bind_dn         = %q
  password        = env("FAULTTEST_LDAP_PASSWORD")
  base_dn         = "dc=example,dc=org"
  flavor          = "openldap"
  max_concurrency = 2
}
`, s.URL, s.CAFile, slapdtest.RootDN)
	var refs []string
	for i := range groups {
		fmt.Fprintf(&hcl, "group \"g%02d\" {\n  target = target.ldap.corp\n  dn     = \"cn=g%02d,ou=groups,dc=example,dc=org\"\n}\n", i, i)
		refs = append(refs, fmt.Sprintf("group.g%02d", i))
	}
	fmt.Fprintf(&hcl, `policy "p" {
  groups       = [%s]
  eligible     = ["alice", "bob"]
  max_duration = "4h"
  approvals    = 0
}
grant "alice" {
  policy    = policy.p
  principal = "alice"
  start     = %q
  duration  = "2h"
}
grant "bob" {
  policy    = policy.p
  principal = "bob"
  start     = %q
  duration  = "2h"
}
`, strings.Join(refs, ", "), start, start)
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "main.hcl"), []byte(hcl.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	written := func() (n int) {
		for i := range groups {
			ms := s.Values(t, fmt.Sprintf("cn=g%02d,ou=groups,dc=example,dc=org", i), "member")
			if slices.ContainsFunc(ms, func(m string) bool { return strings.EqualFold(m, alice) }) {
				n++
			}
		}
		return n
	}

	code, out, ps := jitform(t, dir, []string{crashpoint.Env + "=" + crashpoint.AfterWrite + ":5"}, "apply", "--auto-approve")
	if ws, _ := ps.Sys().(syscall.WaitStatus); !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		t.Fatalf("apply was not killed in the middle of its batch (exit %d):\n%s", code, out)
	}
	n := written()
	if n < 5 || n >= groups {
		t.Fatalf("%d of %d groups written when the kill came, want the middle of the batch (5 to %d)", n, groups, groups-1)
	}
	evs := ledgerEvents(t, dir)
	var intents, outcomes int
	for _, ev := range evs {
		switch ev.Type {
		case state.EventChangeIntent:
			intents++
		case state.EventChangeApplied, state.EventChangeFailed:
			outcomes++
		}
	}
	if intents != 2*groups || outcomes != 0 {
		t.Fatalf("after the kill the ledger has %d intents and %d outcomes, want all %d intents (one write before the call) and no outcome", intents, outcomes, 2*groups)
	}

	if code, out, _ := jitform(t, dir, nil, "apply", "--auto-approve"); code != 0 {
		t.Fatalf("apply after the kill exited %d:\n%s", code, out)
	}
	for i := range groups {
		got := s.Values(t, fmt.Sprintf("cn=g%02d,ou=groups,dc=example,dc=org", i), "member")
		for j := range got {
			got[j] = strings.ToLower(got[j])
		}
		slices.Sort(got)
		if want := []string{alice, bob, svc}; !slices.Equal(got, want) {
			t.Errorf("g%02d = %v, want %v", i, got, want)
		}
	}
	// Each intent the kill left open is closed by one observation: present
	// for the groups written before the kill (not intended again), absent
	// for the others (intended again, and done).
	present, absent := 0, 0
	for _, ev := range ledgerEvents(t, dir) {
		if ev.Type != state.EventChangeApplied && ev.Type != state.EventChangeFailed {
			continue
		}
		var o state.ChangeOutcome
		if err := json.Unmarshal(ev.Payload, &o); err != nil {
			t.Fatal(err)
		}
		switch o.Status {
		case "observed_present":
			present++
		case "observed_absent":
			absent++
		}
	}
	if present+absent != 2*groups {
		t.Errorf("%d observed_present + %d observed_absent outcomes, want one for each of the %d open intents", present, absent, 2*groups)
	}
	if present < 2*n {
		t.Errorf("%d observed_present outcomes, want at least %d (both adds of the %d groups written before the kill)", present, 2*n, n)
	}
	if code, out, _ := jitform(t, dir, nil, "plan", "--detailed-exitcode"); code != 0 {
		t.Errorf("plan after convergence exited %d, want 0:\n%s", code, out)
	}
	checkLedger(t, dir)
	if retried := checkRetries(t, dir, ""); retried != 2*groups-present {
		t.Errorf("%d changes intended again, want the %d the kill kept from landing", retried, 2*groups-present)
	}
}
