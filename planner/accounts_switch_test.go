package planner

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jitform/jitform/config"
	"github.com/jitform/jitform/providers"
)

// switchHCL: an account on a Windows host with two grants: alice's
// 09:00-11:00 and bob's 10:00-13:00, which lasts longer.
const switchHCL = `
target "winrm" "web01" {
  address  = "web01.corp.example"
  user     = "svc"
  password = "x"
}

account "web01_jitadmin" {
  target          = target.winrm.web01
  name            = "jit-admin"
  rotate_password = %t
}

actor "alice" {
  ssh_key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIMGvsTcsVunPMihB0JSkq0zQEXWsRekl/t8sw178RksM"
}

actor "bob" {
  ssh_key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAICaXYloAkdi6mElE8XQGVDijJjW/unxiu72afJCfKad1"
}

policy "admin" {
  accounts     = [account.web01_jitadmin]
  eligible     = ["alice", "bob"]
  max_duration = "4h"
  approvals    = 1
  approvers    = ["carol"]
}

grant "alice_admin" {
  policy      = policy.admin
  principal   = "alice"
  start       = "2026-11-23T09:00:00Z"
  duration    = "2h"
  approved_by = ["carol"]
}

grant "bob_admin" {
  policy      = policy.admin
  principal   = "bob"
  start       = "2026-11-23T10:00:00Z"
  duration    = "3h"
  approved_by = ["carol"]
}
`

// An enabled account whose dead-man's switch (AccountState.Expires) is
// more than a minute off the longest counting grant's end plus grace, or
// due before that end, is enabled again, which re-arms it; within a minute
// and not before the end, or with no switch, or with no grant counting, it
// is not a re-arm.
func TestAccountSwitchRearm(t *testing.T) {
	at := func(s string) time.Time {
		t.Helper()
		v, err := time.Parse(time.RFC3339, s)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	const addr = "account.web01_jitadmin"
	bobEnd := at("2026-11-23T13:00:00Z")
	cases := []struct {
		name      string
		now       string
		rotate    bool
		delivered []string // grants with a delivered password on record
		st        providers.AccountState
		// want: "" for no change, else the action; detail: substrings of
		// the reason's detail; noDetail: what it must not say.
		want       string
		detail     []string
		noDetail   string
		rotated    bool
		credGrants []string
	}{
		{name: "switch set for the first grant is re-armed", now: "2026-11-23T10:30:00Z",
			st:   providers.AccountState{Exists: true, Enabled: true, Expires: at("2026-11-23T11:01:00Z")},
			want: ActionEnable, detail: []string{"already enabled", "re-arm the dead-man's switch, which would disable it at 2026-11-23T11:01:00Z"}},
		{name: "switch at the longest end plus the host's grace", now: "2026-11-23T10:30:00Z",
			st: providers.AccountState{Exists: true, Enabled: true, Expires: bobEnd.Add(60 * time.Second)}},
		{name: "switch at the longest end plus the planner's grace", now: "2026-11-23T10:30:00Z",
			st: providers.AccountState{Exists: true, Enabled: true, Expires: bobEnd.Add(config.LDAPTTLGrace)}},
		{name: "within a minute later", now: "2026-11-23T10:30:00Z",
			st: providers.AccountState{Exists: true, Enabled: true, Expires: bobEnd.Add(config.LDAPTTLGrace + time.Minute)}},
		{name: "within a minute earlier, after the end", now: "2026-11-23T10:30:00Z",
			st: providers.AccountState{Exists: true, Enabled: true, Expires: bobEnd.Add(time.Second)}},
		{name: "within a minute earlier, before the end: it would fire while bob's grant counts", now: "2026-11-23T10:30:00Z",
			st:   providers.AccountState{Exists: true, Enabled: true, Expires: bobEnd.Add(config.LDAPTTLGrace - time.Minute)},
			want: ActionEnable, detail: []string{"re-arm the dead-man's switch, which would disable it at 2026-11-23T12:59:30Z"}},
		{name: "more than a minute later", now: "2026-11-23T10:30:00Z",
			st:   providers.AccountState{Exists: true, Enabled: true, Expires: bobEnd.Add(config.LDAPTTLGrace + time.Minute + time.Second)},
			want: ActionEnable, detail: []string{"re-arm the dead-man's switch, which would disable it at 2026-11-23T13:01:31Z"}},
		{name: "no switch: nothing to re-arm", now: "2026-11-23T10:30:00Z",
			st: providers.AccountState{Exists: true, Enabled: true}},
		{name: "disabled with a stale switch: a plain enable", now: "2026-11-23T10:30:00Z",
			st:   providers.AccountState{Exists: true, Expires: at("2026-11-23T11:01:00Z")},
			want: ActionEnable, noDetail: "re-arm"},
		{name: "no grant counts: disabled, not re-armed", now: "2026-11-23T13:30:00Z",
			st:   providers.AccountState{Exists: true, Enabled: true, Expires: bobEnd.Add(60 * time.Second)},
			want: ActionDisable, noDetail: "re-arm"},
		{name: "no grant counts, already disabled, switch pending", now: "2026-11-23T13:00:30Z",
			st: providers.AccountState{Exists: true, Expires: bobEnd.Add(60 * time.Second)}},
		{name: "rotate_password, every grantee has the password: re-armed without a new one", now: "2026-11-23T10:30:00Z",
			rotate: true, delivered: []string{"grant.alice_admin", "grant.bob_admin"},
			st:   providers.AccountState{Exists: true, Enabled: true, Expires: at("2026-11-23T11:01:00Z")},
			want: ActionEnable, detail: []string{"already enabled", "re-arm the dead-man's switch"}, noDetail: "new password"},
		{name: "rotate_password, bob has none: new password and re-armed", now: "2026-11-23T10:30:00Z",
			rotate: true, delivered: []string{"grant.alice_admin"},
			st:   providers.AccountState{Exists: true, Enabled: true, Expires: at("2026-11-23T11:01:00Z")},
			want: ActionEnable, detail: []string{"new password because grant.bob_admin has none yet", "re-arm the dead-man's switch"},
			rotated: true, credGrants: []string{"grant.alice_admin", "grant.bob_admin"}},
		{name: "rotate_password, bob has none, switch right: new password only", now: "2026-11-23T10:30:00Z",
			rotate: true, delivered: []string{"grant.alice_admin"},
			st:   providers.AccountState{Exists: true, Enabled: true, Expires: bobEnd.Add(60 * time.Second)},
			want: ActionEnable, detail: []string{"new password because grant.bob_admin has none yet"}, noDetail: "re-arm",
			rotated: true, credGrants: []string{"grant.alice_admin", "grant.bob_admin"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			now := at(tc.now)
			cfg, diags := config.LoadFiles("switch", map[string][]byte{"main.hcl": fmt.Appendf(nil, switchHCL, tc.rotate)}, config.LoadOptions{PlanTime: now})
			if diags.HasErrors() {
				t.Fatal(diagsText(diags))
			}
			view, _ := Replay(cfg, nil, now)
			if len(tc.delivered) > 0 {
				view.Credentials[addr] = map[string]bool{}
				for _, g := range tc.delivered {
					view.Credentials[addr][g] = true
				}
			}
			plan, err := Compute(Input{Config: cfg, Now: now, Ledger: view,
				Accounts: map[string]providers.AccountState{addr: tc.st}})
			if err != nil {
				t.Fatal(err)
			}
			if len(plan.Errors) > 0 {
				t.Fatalf("plan errors: %+v", plan.Errors)
			}
			if tc.want == "" {
				if len(plan.Changes) != 0 {
					t.Fatalf("changes = %+v, want none", plan.Changes)
				}
				return
			}
			if len(plan.Changes) != 1 {
				t.Fatalf("changes = %+v, want one %s", plan.Changes, tc.want)
			}
			c := plan.Changes[0]
			if c.Action != tc.want || c.Group != addr {
				t.Fatalf("change = %s %s, want %s %s", c.Action, c.Group, tc.want, addr)
			}
			for _, d := range tc.detail {
				if !strings.Contains(c.Reason.Detail, d) {
					t.Errorf("detail %q does not say %q", c.Reason.Detail, d)
				}
			}
			if tc.noDetail != "" && strings.Contains(c.Reason.Detail, tc.noDetail) {
				t.Errorf("detail %q says %q", c.Reason.Detail, tc.noDetail)
			}
			if c.Action == ActionEnable {
				// The switch follows the enable's reason: the grant that
				// lasts longest, bob's.
				if c.Reason.Grant != "grant.bob_admin" || c.Reason.WindowEnd == nil || !c.Reason.WindowEnd.Equal(bobEnd) {
					t.Errorf("reason = %s until %v, want grant.bob_admin until %s", c.Reason.Grant, c.Reason.WindowEnd, bobEnd)
				}
				if c.PasswordRotated != tc.rotated {
					t.Errorf("password rotated = %t, want %t", c.PasswordRotated, tc.rotated)
				}
				var got []string
				for _, cr := range c.Credentials {
					got = append(got, cr.Grant)
				}
				if strings.Join(got, ",") != strings.Join(tc.credGrants, ",") {
					t.Errorf("credentials for %v, want %v", got, tc.credGrants)
				}
			}
			var text bytes.Buffer
			if err := RenderText(&text, plan, false); err != nil {
				t.Fatal(err)
			}
			for _, d := range tc.detail {
				if !strings.Contains(text.String(), d) {
					t.Errorf("the plan does not show %q:\n%s", d, text.String())
				}
			}
		})
	}
}

// A saved plan records the switch: a switch that moved (or appeared)
// changes the account's digest; an account without one keeps the digest
// it had before switches were read.
func TestAccountDigestCoversTheSwitch(t *testing.T) {
	at := time.Date(2026, 11, 23, 11, 1, 0, 0, time.UTC)
	base := providers.AccountState{Exists: true, Enabled: true}
	armed := base
	armed.Expires = at
	moved := base
	moved.Expires = at.Add(2 * time.Hour)
	d0, d1, d2 := AccountDigest(base), AccountDigest(armed), AccountDigest(moved)
	if d0 == d1 || d1 == d2 || d0 == d2 {
		t.Errorf("digests: none %s, armed %s, moved %s; want all different", d0, d1, d2)
	}
	// The digest of an enabled account in the golden plans (testdata/scenarios).
	if d0 != "eadd93ffff1bab158fccc5a32e74711f88e00a822e532bdf218e53407a56219e" {
		t.Errorf("an account without a switch changed digest: %s", d0)
	}
}

// A plan saved while the switch was set for alice's window is refused
// once the switch moved (re-armed by another run), even though the fresh
// plan has no change.
func TestSavedPlanRefusedWhenTheSwitchMoved(t *testing.T) {
	const addr = "account.web01_jitadmin"
	now := time.Date(2026, 11, 23, 10, 30, 0, 0, time.UTC)
	cfg, diags := config.LoadFiles("switch", map[string][]byte{"main.hcl": fmt.Appendf(nil, switchHCL, false)}, config.LoadOptions{PlanTime: now})
	if diags.HasErrors() {
		t.Fatal(diagsText(diags))
	}
	compute := func(expires time.Time) *Plan {
		t.Helper()
		view, _ := Replay(cfg, nil, now)
		p, err := Compute(Input{Config: cfg, Now: now, Ledger: view,
			Accounts: map[string]providers.AccountState{addr: {Exists: true, Enabled: true, Expires: expires}}})
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	saved := compute(time.Date(2026, 11, 23, 11, 1, 0, 0, time.UTC))
	if len(saved.Changes) != 1 {
		t.Fatalf("saved plan: %d changes, want the re-arm", len(saved.Changes))
	}
	rearmed := time.Date(2026, 11, 23, 13, 1, 0, 0, time.UTC)
	if err := CheckFresh(compute(rearmed), compute(rearmed), now); err != nil {
		t.Fatalf("the same switch: %v", err)
	}
	err := CheckFresh(saved, compute(rearmed), now)
	if err == nil || !strings.Contains(err.Error(), "of "+addr+" changed") {
		t.Fatalf("CheckFresh = %v, want the account's observed state named", err)
	}
}
