package winrm

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jitform/jitform/config"
	"github.com/jitform/jitform/internal/operation"
	"github.com/jitform/jitform/internal/testbed/winrmtest"
	"github.com/jitform/jitform/planner"
	"github.com/jitform/jitform/providers"
	"github.com/jitform/jitform/state"
)

// Through the orchestration the CLI uses, a Windows local account's
// dead-man's switch follows the grants: the enable arms it at alice's
// window end + grace; bob's longer grant, starting while the account is
// enabled, makes the next plan re-arm it at bob's end (no new password);
// then either the host disables the account itself when jitform does not
// run, or jitform's own disable deletes the switch.
func TestAccountSwitchThroughTheOperation(t *testing.T) {
	aliceEnd := time.Date(2026, 11, 23, 11, 0, 0, 0, time.UTC)
	bobEnd := time.Date(2026, 11, 23, 13, 45, 0, 0, time.UTC)
	for _, jitformRuns := range []bool{false, true} {
		name := "the host disables it"
		if jitformRuns {
			name = "jitform disables it"
		}
		t.Run(name, func(t *testing.T) {
			s := winrmtest.New(t, user, pass, host("web01"))
			h := s.Host(host("web01"))
			h.AddUser("jit-admin", jitAdminSID, "Initial-Pass-0", false)
			opts, now := accountSwitchEnv(t, s)
			ctx := context.Background()
			at := func(t2 time.Time) { *now = t2; h.SetNow(t2) }
			apply := func(what string, want int) *planner.Plan {
				t.Helper()
				plan, res, err := operation.PlanAndApply(ctx, opts)
				if err != nil || res.Failed() || len(plan.Changes) != want {
					var cs []string
					if plan != nil {
						for _, c := range plan.Changes {
							cs = append(cs, c.Action+" "+c.Group+": "+c.Reason.Detail)
						}
					}
					t.Fatalf("%s: %v, changes %q; want %d", what, err, cs, want)
				}
				return plan
			}
			switchOf := func() winrmtest.Task {
				t.Helper()
				tasks := h.ScheduledTasks()
				if len(tasks) != 1 || tasks[0].Name != SwitchTaskName("ACCOUNT", jitAdminSID) {
					t.Fatalf("tasks = %v, want the account's switch", taskNames(tasks))
				}
				return tasks[0]
			}
			enabled := func() bool { u, _ := h.UserState("jit-admin"); return !u.Disabled }

			at(time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC))
			if c := apply("alice's grant", 1).Changes[0]; c.Action != planner.ActionEnable || c.Reason.Grant != "grant.alice_admin" {
				t.Fatalf("first change = %s for %s", c.Action, c.Reason.Grant)
			}
			if sw := switchOf(); !enabled() || !sw.At.Equal(aliceEnd.Add(SwitchGrace)) || !strings.Contains(sw.Description, `"grant":"grant.alice_admin"`) {
				t.Fatalf("after the enable: enabled %t, switch at %s %s", enabled(), sw.At, sw.Description)
			}
			at(time.Date(2026, 11, 23, 10, 30, 0, 0, time.UTC))
			apply("during alice's window (the switch read back matches)", 0)

			// bob's grant starts at 10:45 and ends at 13:45.
			at(time.Date(2026, 11, 23, 10, 50, 0, 0, time.UTC))
			plan := apply("bob's grant", 1)
			c := plan.Changes[0]
			if c.Action != planner.ActionEnable || c.Reason.Grant != "grant.bob_admin" || c.PasswordRotated ||
				!strings.Contains(c.Reason.Detail, "re-arm the dead-man's switch, which would disable it at 2026-11-23T11:01:00Z") {
				t.Fatalf("bob's change = %s for %s (password rotated %t): %s", c.Action, c.Reason.Grant, c.PasswordRotated, c.Reason.Detail)
			}
			if sw := switchOf(); !sw.At.Equal(bobEnd.Add(SwitchGrace)) || sw.Registered != 2 || !strings.Contains(sw.Description, `"grant":"grant.bob_admin"`) {
				t.Fatalf("after the re-arm: switch at %s (registered %d) %s; want %s for bob", sw.At, sw.Registered, sw.Description, bobEnd.Add(SwitchGrace))
			}
			if u, _ := h.UserState("jit-admin"); u.Disabled || u.PasswordSets != 0 {
				t.Fatalf("after the re-arm: disabled %t, passwords set %d", u.Disabled, u.PasswordSets)
			}
			at(time.Date(2026, 11, 23, 10, 55, 0, 0, time.UTC))
			apply("after the re-arm", 0)

			// alice's switch time passes: nothing fires, bob still has it.
			at(aliceEnd.Add(SwitchGrace + time.Minute))
			if !enabled() || len(h.Firings()) != 0 {
				t.Fatalf("at alice's switch time: enabled %t, firings %+v", enabled(), h.Firings())
			}
			apply("after alice's window", 0)

			if !jitformRuns {
				at(bobEnd.Add(SwitchGrace - time.Second))
				if !enabled() {
					t.Fatal("the switch fired early")
				}
				at(bobEnd.Add(SwitchGrace))
				if u, _ := h.UserState("jit-admin"); !u.Disabled || u.PasswordSets != 1 || len(h.ScheduledTasks()) != 0 {
					t.Fatalf("after bob's switch: disabled %t, passwords set %d, tasks %v", u.Disabled, u.PasswordSets, taskNames(h.ScheduledTasks()))
				}
				at(bobEnd.Add(10 * time.Minute))
				apply("after the host disabled it", 0)
				return
			}
			at(bobEnd.Add(10 * time.Second))
			if c := apply("bob's window ended", 1).Changes[0]; c.Action != planner.ActionDisable {
				t.Fatalf("change = %s, want disable", c.Action)
			}
			if enabled() || len(h.ScheduledTasks()) != 0 {
				t.Fatalf("after jitform's disable: enabled %t, tasks %v", enabled(), taskNames(h.ScheduledTasks()))
			}
			at(bobEnd.Add(SwitchGrace + time.Minute))
			if len(h.Firings()) != 0 {
				t.Errorf("a deleted switch fired: %+v", h.Firings())
			}
		})
	}
}

// accountSwitchEnv: a repository with one local account on web01 and two
// grants for it (alice 09:00-11:00, bob 10:45-13:45), and options whose
// clock the test moves.
func accountSwitchEnv(t *testing.T, s *winrmtest.Server) (operation.Options, *time.Time) {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "ca.pem"), mustRead(t, s.CAFile), 0o600); err != nil {
		t.Fatal(err)
	}
	hcl := fmt.Sprintf(`
target "winrm" "web" {
  hosts    = [%[1]q]
  ca_file  = "ca.pem"
  user     = "CORP\\svc-jitform"
  password = env("TEST_WINRM_PASSWORD")
}
account "web01_jitadmin" {
  target = target.winrm.web[%[1]q]
  name   = "jit-admin"
}
policy "admin" {
  accounts     = [account.web01_jitadmin]
  eligible     = ["CORP\\alice", "CORP\\bob"]
  max_duration = "4h"
  approvers    = ["carol"]
}
grant "alice_admin" {
  policy      = policy.admin
  principal   = "CORP\\alice"
  start       = "2026-11-23T09:00:00Z"
  duration    = "2h"
  approved_by = ["carol"]
}
grant "bob_admin" {
  policy      = policy.admin
  principal   = "CORP\\bob"
  start       = "2026-11-23T10:45:00Z"
  duration    = "3h"
  approved_by = ["carol"]
}
`, host("web01"))
	if err := os.WriteFile(filepath.Join(dir, "main.hcl"), []byte(hcl), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("TEST_WINRM_PASSWORD", pass)
	backend, err := state.NewLocal(dir)
	if err != nil {
		t.Fatal(err)
	}
	now := new(time.Time)
	return operation.Options{
		Dir: dir, Now: func() time.Time { return *now }, Parallelism: 2, Backend: backend,
		Registry: providers.Registry{"winrm": func(ctx context.Context, tg *config.Target, o providers.Options) (providers.Target, error) {
			return open(ctx, tg, o, s.Dial)
		}},
	}, now
}
