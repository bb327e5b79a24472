package winrm

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/jitform/jitform/config"
	"github.com/jitform/jitform/internal/operation"
	"github.com/jitform/jitform/internal/testbed/winrmtest"
	"github.com/jitform/jitform/providers"
	"github.com/jitform/jitform/state"
)

// Through the orchestration the CLI uses: a grant's add registers its
// switch (the window end reaches the provider), the next plan is empty
// (the switch read back matches the grant), the removal's plan notes the
// switch it deletes, and with end_sessions the member's sessions are
// logged off and recorded as a sessions_ended event after the outcome.
func TestSwitchAndSessionsThroughTheOperation(t *testing.T) {
	s := winrmtest.New(t, user, pass, host("web01"))
	h := s.Host(host("web01"))
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "ca.pem"), mustRead(t, s.CAFile), 0o600); err != nil {
		t.Fatal(err)
	}
	hcl := fmt.Sprintf(`
target "winrm" "web" {
  hosts    = [%q]
  ca_file  = "ca.pem"
  user     = "CORP\\svc-jitform"
  password = env("TEST_WINRM_PASSWORD")
}
group "web_admins" {
  target       = target.winrm.web
  name         = "S-1-5-32-544"
  members      = ["CORP\\Administrator"]
  end_sessions = true
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
`, host("web01"))
	if err := os.WriteFile(filepath.Join(dir, "main.hcl"), []byte(hcl), 0o600); err != nil {
		t.Fatal(err)
	}
	h.Accounts["S-1-5-21-1-2-3-500"] = `CORP\Administrator`
	t.Setenv("TEST_WINRM_PASSWORD", pass)
	backend, err := state.NewLocal(dir)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	opts := operation.Options{
		Dir: dir, Now: func() time.Time { return now }, Parallelism: 2, Backend: backend,
		Registry: providers.Registry{"winrm": func(ctx context.Context, tg *config.Target, o providers.Options) (providers.Target, error) {
			return open(ctx, tg, o, s.Dial)
		}},
	}
	ctx := context.Background()
	plan, res, err := operation.PlanAndApply(ctx, opts)
	if err != nil || res.Failed() || len(plan.Changes) != 1 {
		t.Fatalf("first apply: %v, %d changes", err, len(plan.Changes))
	}
	end := time.Date(2026, 11, 23, 11, 0, 0, 0, time.UTC)
	tasks := h.ScheduledTasks()
	if len(tasks) != 1 {
		t.Fatalf("%d tasks after the grant's add, want 1", len(tasks))
	}
	checkSwitchTask(t, tasks[0], adminSID, alice.ID, plan.Changes[0].Reason.Grant, end.Add(SwitchGrace))

	now = now.Add(30 * time.Minute)
	if plan, _, err := operation.PlanAndApply(ctx, opts); err != nil || len(plan.Changes) != 0 {
		t.Fatalf("a plan during the window: %v, %+v; want no change (the switch matches the grant)", err, plan.Changes)
	}

	h.AddSession(alice.ID, "rdp")
	now = end.Add(10 * time.Second)
	plan, res, err = operation.PlanAndApply(ctx, opts)
	if err != nil || res.Failed() || len(plan.Changes) != 1 {
		t.Fatalf("removal: %v, %+v", err, plan.Changes)
	}
	if c := plan.Changes[0]; c.Action != "remove" || c.ServerExpires == nil || !c.ServerExpires.Equal(end.Add(SwitchGrace)) {
		t.Errorf("the removal does not note the switch: %+v", c)
	}
	if slices.Contains(h.Members(adminSID), alice.ID) || len(h.ScheduledTasks()) != 0 || len(h.SessionsOf(alice.ID)) != 0 {
		t.Errorf("after the removal: members %v, tasks %d, alice's sessions %v", h.Members(adminSID), len(h.ScheduledTasks()), h.SessionsOf(alice.ID))
	}
	evs, err := backend.Events(ctx)
	if err != nil {
		t.Fatal(err)
	}
	last := evs[len(evs)-1]
	if last.Type != state.EventSessionsEnded || evs[len(evs)-2].Type != state.EventChangeApplied {
		t.Fatalf("last events: %s, %s; want change_applied then sessions_ended", evs[len(evs)-2].Type, last.Type)
	}
	var se state.SessionsEnded
	if err := json.Unmarshal(last.Payload, &se); err != nil {
		t.Fatal(err)
	}
	var intent state.Change
	for _, ev := range evs {
		if ev.Type == state.EventChangeIntent {
			_ = json.Unmarshal(ev.Payload, &intent)
		}
	}
	if se.Sessions != 1 || se.Member != alice.ID || se.Host != host("web01") || se.Group != plan.Changes[0].Group || se.ID != intent.ID || se.Error != "" {
		t.Errorf("sessions_ended = %+v (intent %s)", se, intent.ID)
	}
	if err := state.Verify(evs); err != nil {
		t.Errorf("the ledger does not verify: %v", err)
	}
}
