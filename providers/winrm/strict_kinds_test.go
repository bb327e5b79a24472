package winrm

import (
	"context"
	"strings"
	"testing"

	"github.com/jitform/jitform/config"
	"github.com/jitform/jitform/internal/testbed/winrmtest"
	"github.com/jitform/jitform/providers"
)

// mustReplace edits a script for a test and fails loudly when the text it
// edits has moved.
func mustReplace(s, old, new string) string {
	if !strings.Contains(s, old) {
		panic("the script text to edit moved: " + old)
	}
	return strings.Replace(s, old, new, 1)
}

// The fake infers what a script does from its text, so a script that
// leaves out a step Windows needs fails against it as it would on Windows:
// each case breaks one step of the current scripts and shows the failure
// the real client then reports.
func TestFakeIsStrictAboutRightsAndAccounts(t *testing.T) {
	for _, tc := range []struct {
		name  string
		read  func(string) string
		apply func(string) string
		check func(t *testing.T, h *winrmtest.Host, p *target)
	}{
		{"without Add-Type the LSA class does not exist", func(s string) string {
			return mustReplace(s, "Add-Type -TypeDefinition $LsaCode", "$null = $LsaCode")
		}, nil, func(t *testing.T, h *winrmtest.Host, p *target) {
			r := right("b", backup)
			obs, _, err := p.Observe(context.Background(), []*config.Group{r}, nil)
			if err != nil || obs[r.Addr].Err == nil || !strings.Contains(obs[r.Addr].Err.Error(), "JitformLsa") {
				t.Errorf("read = %v / %+v, want the missing type", err, obs[r.Addr])
			}
		}},
		{"an apply without Add-Type changes no right (the switch's own class does not count)", nil, func(s string) string {
			return mustReplace(s, "Add-Type -TypeDefinition $LsaCode", "$null = $LsaCode")
		}, func(t *testing.T, h *winrmtest.Host, p *target) {
			outs := applyOne(t, p, right("b", backup), providers.MemberChange{Action: providers.Add, Member: alice})
			if outs[0].Status != providers.Failed || len(h.Holders(backup)) != 0 {
				t.Errorf("add = %s %v, holders %v; want failed, nothing granted", outs[0].Status, outs[0].Err, h.Holders(backup))
			}
		}},
		{"a remove of a SID holding nothing is failed without the NTSTATUS table", nil, func(s string) string {
			return mustReplace(s, "$RightAlreadyOnRemove = @('0xC0000034')", "$RightAlreadyOnRemove = @()")
		}, func(t *testing.T, h *winrmtest.Host, p *target) {
			outs := applyOne(t, p, right("b", backup), providers.MemberChange{Action: providers.Remove, Member: alice})
			if outs[0].Status != providers.Failed || !strings.Contains(outs[0].Err.Error(), "0xC0000034") {
				t.Errorf("remove = %s %v, want failed with 0xC0000034", outs[0].Status, outs[0].Err)
			}
		}},
		{"without the holders read first an add of a held right is done, not already", nil, func(s string) string {
			return mustReplace(s, "$before = @([JitformLsa]::Holders($right)) -contains $c.sid", "$before = $false")
		}, func(t *testing.T, h *winrmtest.Host, p *target) {
			h.SetHolders(backup, alice.ID)
			outs := applyOne(t, p, right("b", backup), providers.MemberChange{Action: providers.Add, Member: alice})
			if outs[0].Status != providers.Done {
				t.Errorf("add = %s, want done (the script cannot tell)", outs[0].Status)
			}
		}},
		{"a right's switch registered after the add is lost in a crash", nil, func(s string) string {
			block := "    if ($c.action -eq 'add' -and $c.switch_at) {\n      try { Register-Switch $c.right $c.sid $c; $registered = $true }\n"
			i := strings.Index(s, block)
			j := strings.Index(s[i:], "    }\n") + i + len("    }\n")
			reg := s[i:j]
			s = s[:i] + s[j:]
			return mustReplace(s, "    $code = '0x{0:X8}' -f $st\n", reg+"    $code = '0x{0:X8}' -f $st\n")
		}, func(t *testing.T, h *winrmtest.Host, p *target) {
			h.KillAfterWrites = 1
			outs := applyOne(t, p, right("b", backup), grantAdd(alice, winEnd, "g1"))
			if outs[0].Status != providers.Unknown || len(h.ScheduledTasks()) != 0 {
				t.Errorf("add = %s, tasks %d; want unknown with no switch", outs[0].Status, len(h.ScheduledTasks()))
			}
		}},
		{"without CommitChanges the flags never reach the account and the re-read says so", nil, func(s string) string {
			return mustReplace(s, "$u.psbase.InvokeSet('UserFlags', $flags)\n    $u.psbase.CommitChanges()\n", "$u.psbase.InvokeSet('UserFlags', $flags)\n")
		}, func(t *testing.T, h *winrmtest.Host, p *target) {
			o := setAccount(t, p, account("a", "jit-admin"), true, "Window-Pass-1234")
			if o.Status != providers.Failed {
				t.Errorf("enable = %s, want failed by the re-read", o.Status)
			}
			if u, _ := h.UserState("jit-admin"); !u.Disabled {
				t.Error("the account was enabled")
			}
		}},
		{"without the NERR_UserNotFound check a missing account is unreadable", func(s string) string {
			return mustReplace(s, "(Get-HResult $_.Exception) -eq '0x800708AD'", "$false")
		}, nil, func(t *testing.T, h *winrmtest.Host, p *target) {
			a := account("x", "no-such-user")
			st, err := p.ReadAccounts(context.Background(), []*config.Account{a})
			if err != nil || st[a.Addr].Err == nil {
				t.Errorf("read = %+v %v, want an error", st[a.Addr], err)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			savedR, savedA := ReadScript, ApplyScript
			t.Cleanup(func() { ReadScript, ApplyScript = savedR, savedA })
			if tc.read != nil {
				ReadScript = tc.read(savedR)
			}
			if tc.apply != nil {
				ApplyScript = tc.apply(savedA)
			}
			s := winrmtest.New(t, user, pass, host("web01"))
			h := s.Host(host("web01"))
			h.AddUser("jit-admin", jitAdminSID, "Initial-Pass-0", false)
			tc.check(t, h, openHost(t, s, "web01", nil))
		})
	}
}
