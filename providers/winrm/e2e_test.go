package winrm

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jitform/jitform/config"
	"github.com/jitform/jitform/internal/operation"
	"github.com/jitform/jitform/internal/testbed/winrmtest"
	"github.com/jitform/jitform/providers"
	"github.com/jitform/jitform/state"
)

// A policy repository with a fleet of hosts, planned and applied through
// the same orchestration the CLI uses, against the WS-Management fake: a
// grant adds its principal on every host, an undeclared member of the
// exclusive group is removed, a dead host is reported and left alone, and
// a second plan is empty for the live hosts.
func TestFleetPlanAndApply(t *testing.T) {
	s := winrmtest.New(t, user, pass, host("web01"), host("web02"), host("dead"))
	s.Host(host("dead")).Fail = true
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "ca.pem"), mustRead(t, s.CAFile), 0o600); err != nil {
		t.Fatal(err)
	}
	hcl := fmt.Sprintf(`
target "winrm" "web" {
  hosts    = [%q, %q, %q]
  ca_file  = "ca.pem"
  auth     = "ntlm"
  user     = "CORP\\svc-jitform"
  password = env("TEST_WINRM_PASSWORD")
}
group "web_admins" {
  target    = target.winrm.web
  name      = "S-1-5-32-544"
  members   = ["CORP\\svc-backup"]
  exclusive = true
}
policy "maint" {
  groups       = [group.web_admins]
  eligible     = ["CORP\\alice"]
  max_duration = "4h"
  approvers    = ["carol"]
}
grant "alice_chg1" {
  policy      = policy.maint
  principal   = "CORP\\alice"
  start       = "2026-11-23T09:00:00Z"
  duration    = "2h"
  approved_by = ["carol"]
}
`, host("web01"), host("web02"), host("dead"))
	if err := os.WriteFile(filepath.Join(dir, "main.hcl"), []byte(hcl), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("TEST_WINRM_PASSWORD", pass)
	backend, err := state.NewLocal(dir)
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	opts := operation.Options{
		Dir: dir, At: at, Now: func() time.Time { return at }, Parallelism: 10, Backend: backend,
		Registry: providers.Registry{"winrm": func(ctx context.Context, tg *config.Target, o providers.Options) (providers.Target, error) {
			return open(ctx, tg, o, s.Dial)
		}},
	}
	plan, res, err := operation.PlanAndApply(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, c := range plan.Changes {
		got = append(got, c.Action+" "+c.Group+" "+c.Member+" "+c.Reason.Kind)
	}
	want := []string{
		`remove group.web_admins["web01.winrm.test"] S-1-5-21-1-2-3-500 undeclared`,
		`add group.web_admins["web01.winrm.test"] S-1-5-21-9-9-9-1104 grant`,
		`add group.web_admins["web01.winrm.test"] S-1-5-21-9-9-9-1106 declared`,
		`remove group.web_admins["web02.winrm.test"] S-1-5-21-1-2-3-500 undeclared`,
		`add group.web_admins["web02.winrm.test"] S-1-5-21-9-9-9-1104 grant`,
		`add group.web_admins["web02.winrm.test"] S-1-5-21-9-9-9-1106 declared`,
	}
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("plan changes:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if len(plan.Unreadable) != 1 || !strings.Contains(plan.Unreadable[0].Group, "dead") {
		t.Errorf("unreadable = %+v, want the dead host only", plan.Unreadable)
	}
	if res == nil || res.Failed() {
		t.Fatalf("apply failed: %+v", res)
	}
	for _, h := range []string{"web01", "web02"} {
		m := s.Host(host(h)).Members("S-1-5-32-544")
		slices.Sort(m)
		if !slices.Equal(m, []string{"S-1-5-21-9-9-9-1104", "S-1-5-21-9-9-9-1106"}) {
			t.Errorf("%s Administrators = %v", h, m)
		}
		if _, shells := s.Host(host(h)).Stats(); shells != 2 {
			t.Errorf("%s: %d shells; want 2: one to plan (under the lock), one to apply", h, shells)
		}
	}
	again, _, err := operation.PlanAndApply(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	if len(again.Changes) != 0 {
		t.Errorf("second plan has %d changes, want none", len(again.Changes))
	}
	// The ledger verifies and never holds the password.
	evs, err := backend.Events(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	count := map[string]int{}
	for _, ev := range evs {
		count[ev.Type]++
	}
	if count[state.EventChangeIntent] != 6 || count[state.EventChangeApplied] != 6 || count[state.EventApplyStarted] != 1 || len(evs) != 13 {
		t.Errorf("ledger: %v (%d events); want one apply_started, 6 intents and 6 outcomes", count, len(evs))
	}
	raw := mustRead(t, filepath.Join(dir, ".jitform", "ledger.jsonl"))
	if strings.Contains(string(raw), pass) {
		t.Error("the ledger contains the password")
	}
}

func mustRead(t *testing.T, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
