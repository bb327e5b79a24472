package winrm

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/text/encoding/unicode"

	"github.com/jitform/jitform/config"
	"github.com/jitform/jitform/internal/testbed/winrmtest"
	"github.com/jitform/jitform/providers"
)

var (
	alice    = providers.Member{ID: "S-1-5-21-9-9-9-1104", Name: `CORP\alice`}
	bob      = providers.Member{ID: "S-1-5-21-9-9-9-1105", Name: `CORP\bob`}
	adminSID = "S-1-5-32-544"
	winEnd   = time.Date(2026, 11, 23, 11, 0, 0, 0, time.UTC)
)

func grantAdd(m providers.Member, end time.Time, grant string) providers.MemberChange {
	m.Expires, m.Grant = end, grant
	return providers.MemberChange{Action: providers.Add, Member: m}
}

func applyOne(t *testing.T, p *target, g *config.Group, cs ...providers.MemberChange) []providers.Outcome {
	t.Helper()
	outs, err := p.Apply(context.Background(), []providers.GroupChange{{Group: g, Changes: cs}})
	if err != nil {
		t.Fatal(err)
	}
	return outs
}

// checkSwitchTask: the task is the membership's switch, runs the embedded
// switch code as SYSTEM, and carries its data in its description only.
func checkSwitchTask(t *testing.T, task winrmtest.Task, group, member, grant string, at time.Time) {
	t.Helper()
	if task.Path != SwitchTaskPath || task.Name != SwitchTaskName(group, member) {
		t.Errorf("task %s%s, want %s%s", task.Path, task.Name, SwitchTaskPath, SwitchTaskName(group, member))
	}
	if task.Execute != "powershell.exe" || task.Arguments != SwitchArguments {
		t.Errorf("the task's action is not the embedded switch: %q %q", task.Execute, clipTest(task.Arguments))
	}
	if task.UserID != "S-1-5-18" {
		t.Errorf("the task runs as %q, want SYSTEM (S-1-5-18)", task.UserID)
	}
	if !task.At.Equal(at) {
		t.Errorf("trigger %s, want %s", task.At, at)
	}
	var d struct {
		Grant, Group, Member string
		At                   int64
	}
	if err := json.Unmarshal([]byte(task.Description), &d); err != nil {
		t.Fatalf("description %q: %v", task.Description, err)
	}
	if d.Grant != grant || d.Group != group || d.Member != member || d.At != at.Unix() {
		t.Errorf("description = %+v, want grant %q group %s member %s at %d", d, grant, group, member, at.Unix())
	}
}

func taskNames(ts []winrmtest.Task) []string {
	var out []string
	for _, x := range ts {
		out = append(out, x.Path+x.Name+" "+x.Description)
	}
	return out
}

func clipTest(s string) string {
	if len(s) > 120 {
		return s[:120] + "…"
	}
	return s
}

// The action every task runs is the embedded switch.ps1 (comment lines
// left out), encoded as powershell.exe -EncodedCommand.
func TestSwitchArgumentsCarryTheEmbeddedSwitchScript(t *testing.T) {
	b64, ok := strings.CutPrefix(SwitchArguments, "-NoProfile -NonInteractive -ExecutionPolicy Bypass -EncodedCommand ")
	if !ok {
		t.Fatalf("arguments = %q", clipTest(SwitchArguments))
	}
	raw, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		t.Fatal(err)
	}
	code, err := unicode.UTF16(unicode.LittleEndian, unicode.IgnoreBOM).NewDecoder().String(string(raw))
	if err != nil {
		t.Fatal(err)
	}
	if code != SwitchCode || code != stripComments(withLSACode(switchPS, lsaSwitchCS)) || !strings.Contains(ApplyScript, "@'\n"+SwitchCode+"\n'@") {
		t.Error("the task's script is not the embedded switch script")
	}
	if strings.Contains(code, "#SWITCH#") || strings.Contains(ApplyScript, "#SWITCH#") {
		t.Error("the switch's placeholder is left in a script")
	}
	// Task Scheduler keeps an action's arguments in a field of its own;
	// stay far below the 32,767 characters of a Windows command line.
	if n := len(SwitchArguments); n > 12000 {
		t.Errorf("switch arguments are %d characters", n)
	}
}

// An add for a grant registers exactly one switch, in the same run, with
// the window end + grace as its trigger; the plan reads it back as the
// member's server-side expiry; a re-add for a longer window moves it; an
// add with no window (a declared member) deletes it.
func TestGrantAddRegistersExactlyOneSwitch(t *testing.T) {
	s := winrmtest.New(t, user, pass, host("web01"))
	h := s.Host(host("web01"))
	p := openHost(t, s, "web01", nil)
	admins := grp("admins", adminSID)

	outs := applyOne(t, p, admins, grantAdd(alice, winEnd, "grant.alice_chg1"))
	if outs[0].Status != providers.Done {
		t.Fatalf("add = %s %v", outs[0].Status, outs[0].Err)
	}
	if _, shells := h.Stats(); shells != 1 {
		t.Errorf("%d shells: the switch must be registered in the add's own run", shells)
	}
	tasks := h.ScheduledTasks()
	if len(tasks) != 1 {
		t.Fatalf("%d tasks, want 1", len(tasks))
	}
	checkSwitchTask(t, tasks[0], adminSID, alice.ID, "grant.alice_chg1", winEnd.Add(SwitchGrace))

	obs, _, err := p.Observe(context.Background(), []*config.Group{admins}, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range obs["group.admins"].Members {
		want := time.Time{}
		if m.ID == alice.ID {
			want = winEnd.Add(SwitchGrace)
		}
		if !m.Expires.Equal(want) {
			t.Errorf("%s expires %s, want %s", m.ID, m.Expires, want)
		}
	}

	later := winEnd.Add(2 * time.Hour)
	if outs := applyOne(t, p, admins, grantAdd(alice, later, "grant.alice_chg2")); outs[0].Status != providers.Already {
		t.Fatalf("re-add = %s %v", outs[0].Status, outs[0].Err)
	}
	tasks = h.ScheduledTasks()
	if len(tasks) != 1 || tasks[0].Registered != 2 {
		t.Fatalf("after the re-add: %v, want the one task registered again", taskNames(tasks))
	}
	checkSwitchTask(t, tasks[0], adminSID, alice.ID, "grant.alice_chg2", later.Add(SwitchGrace))

	if outs := applyOne(t, p, admins, providers.MemberChange{Action: providers.Add, Member: alice}); outs[0].Status != providers.Already {
		t.Fatalf("declared add = %s %v", outs[0].Status, outs[0].Err)
	}
	if tasks := h.ScheduledTasks(); len(tasks) != 0 {
		t.Errorf("a declared member keeps a switch: %v", taskNames(tasks))
	}
}

// jitform's own removal deletes the switch in the same run; a failed
// removal leaves it (the member is still there: the switch still guards).
func TestRemovalDeletesTheSwitch(t *testing.T) {
	s := winrmtest.New(t, user, pass, host("web01"))
	h := s.Host(host("web01"))
	p := openHost(t, s, "web01", nil)
	admins := grp("admins", adminSID)
	applyOne(t, p, admins, grantAdd(alice, winEnd, "g1"), grantAdd(bob, winEnd, "g2"))
	if n := len(h.ScheduledTasks()); n != 2 {
		t.Fatalf("%d tasks, want 2", n)
	}
	shells := 0
	_, shells = h.Stats()
	outs := applyOne(t, p, admins, providers.MemberChange{Action: providers.Remove, Member: alice})
	if outs[0].Status != providers.Done {
		t.Fatalf("remove = %s %v", outs[0].Status, outs[0].Err)
	}
	if _, n := h.Stats(); n != shells+1 {
		t.Errorf("the removal took %d runs, want 1", n-shells)
	}
	tasks := h.ScheduledTasks()
	if len(tasks) != 1 || tasks[0].Name != SwitchTaskName(adminSID, bob.ID) {
		t.Errorf("tasks after alice's removal = %v, want bob's only", taskNames(tasks))
	}
	h.SetNow(winEnd.Add(time.Hour))
	if f := h.Firings(); len(f) != 1 || !slices.Equal(f[0].Removed, []string{adminSID + "|" + bob.ID}) {
		t.Errorf("firings = %+v, want bob's switch only", f)
	}

	// A removal that fails keeps the switch.
	applyOne(t, p, admins, grantAdd(alice, winEnd.Add(3*time.Hour), "g3"))
	h.IneffectiveWrites = true
	if outs := applyOne(t, p, admins, providers.MemberChange{Action: providers.Remove, Member: alice}); outs[0].Status != providers.Failed {
		t.Fatalf("ineffective remove = %s", outs[0].Status)
	}
	if tasks := h.ScheduledTasks(); len(tasks) != 1 {
		t.Errorf("a failed removal deleted the switch: %v", taskNames(tasks))
	}
}

// A host that never hears from jitform again loses the member when its
// clock passes the trigger, and only then; the switch deletes itself and
// leaves other memberships and not-yet-due switches alone.
func TestSwitchFiresWhenJitformIsGone(t *testing.T) {
	s := winrmtest.New(t, user, pass, host("web01"))
	h := s.Host(host("web01"))
	p := openHost(t, s, "web01", nil)
	admins, rdu := grp("admins", adminSID), grp("rdu", "S-1-5-32-555")
	applyOne(t, p, admins, grantAdd(alice, winEnd, "g1"), grantAdd(bob, winEnd.Add(time.Hour), "g2"))
	applyOne(t, p, rdu, grantAdd(alice, winEnd.Add(time.Hour), "g3"))
	p.Close() // jitform is gone

	h.SetNow(winEnd)
	h.Advance(SwitchGrace - time.Second)
	if !slices.Contains(h.Members(adminSID), alice.ID) || len(h.Firings()) != 0 {
		t.Fatalf("the switch fired before window end + grace: %v %+v", h.Members(adminSID), h.Firings())
	}
	h.Advance(time.Second)
	if slices.Contains(h.Members(adminSID), alice.ID) {
		t.Error("alice is still an administrator after her switch's time")
	}
	if !slices.Contains(h.Members(adminSID), bob.ID) || !slices.Contains(h.Members("S-1-5-32-555"), alice.ID) || !slices.Contains(h.Members(adminSID), "S-1-5-21-1-2-3-500") {
		t.Errorf("the switch removed more than its member: admins %v, rdu %v", h.Members(adminSID), h.Members("S-1-5-32-555"))
	}
	if tasks := h.ScheduledTasks(); len(tasks) != 2 || slices.ContainsFunc(tasks, func(x winrmtest.Task) bool { return x.Name == SwitchTaskName(adminSID, alice.ID) }) {
		t.Errorf("tasks after the switch fired = %v, want the two not yet due", taskNames(tasks))
	}
	h.Advance(time.Hour)
	if slices.Contains(h.Members(adminSID), bob.ID) || slices.Contains(h.Members("S-1-5-32-555"), alice.ID) || len(h.ScheduledTasks()) != 0 {
		t.Errorf("later switches: admins %v, rdu %v, tasks %d", h.Members(adminSID), h.Members("S-1-5-32-555"), len(h.ScheduledTasks()))
	}
	for _, f := range h.Firings() {
		if f.Error != "" {
			t.Errorf("firing %+v", f)
		}
	}
}

// Grant ids (the only free text a switch carries) never reach the task's
// code: for every hostile id the action is byte-identical to the embedded
// switch and the id comes back intact from the description. The same
// check catches a script that splices the grant into the action.
func TestHostileGrantIDsNeverReachTheSwitchCode(t *testing.T) {
	hostile := []string{
		`'; Remove-Item C:\ -Recurse; '`, "\"$(Stop-Computer)\"", "`$env:PATH`", "a;b", "line1\nline2\r\n",
		"$(calc.exe)", "@{}", "ünïcødé ☃ 𝄞", "\x00nul", strings.Repeat("A", 10*1024), `'@` + "\n" + `"@`, "--% -Command evil",
	}
	s := winrmtest.New(t, user, pass, host("web01"))
	h := s.Host(host("web01"))
	p := openHost(t, s, "web01", nil)
	admins := grp("admins", adminSID)
	for i, g := range hostile {
		end := winEnd.Add(time.Duration(i) * time.Minute)
		if outs := applyOne(t, p, admins, grantAdd(alice, end, g)); !outs[0].Status.OK() {
			t.Fatalf("add for grant %q = %s %v", g, outs[0].Status, outs[0].Err)
		}
		tasks := h.ScheduledTasks()
		if len(tasks) != 1 {
			t.Fatalf("%d tasks", len(tasks))
		}
		checkSwitchTask(t, tasks[0], adminSID, alice.ID, g, end.Add(SwitchGrace))
	}
	for _, r := range h.RunsSeen() {
		if r.CommandLine != CommandLine || r.Script != ApplyScript {
			t.Fatal("the command line or the script changed with the data")
		}
	}
	got, _, err := p.Observe(context.Background(), nil, nil)
	if err != nil || len(got) != 0 {
		t.Fatal(err)
	}

	// A script that builds the action from the grant is caught.
	saved := ApplyScript
	t.Cleanup(func() { ApplyScript = saved })
	ApplyScript = strings.Replace(saved, "-Argument $SwitchAction", `-Argument ("-Command Remove-Grant '" + $c.grant + "'")`, 1)
	applyOne(t, p, admins, grantAdd(alice, winEnd, hostile[0]))
	if a := h.ScheduledTasks()[0].Arguments; a == SwitchArguments || !strings.Contains(a, hostile[0]) {
		t.Errorf("the fake did not see the grant spliced into the action: %q", clipTest(a))
	}
}

// Crash safety: the switch is registered before the member is added, so
// an add whose outcome is unknown (the process died right after the
// write) still leaves the switch, and it removes the member. A script that
// registers after the add leaves none in the same crash.
func TestSwitchCoversAnAddWhoseOutcomeIsUnknown(t *testing.T) {
	for _, tc := range []struct {
		name    string
		script  func(string) string
		switch_ bool
	}{
		{"the switch goes first", func(s string) string { return s }, true},
		{"a script that registers after the add loses it", func(s string) string {
			block := "    if ($c.action -eq 'add' -and $c.switch_at) {\n      try { Register-Switch $gsid $c.sid $c; $registered = $true }\n" +
				"      catch { throw \"the dead-man's switch could not be registered, so the member was not added: $($_.Exception.Message)\" }\n    }\n"
			if !strings.Contains(s, block) {
				panic("the registration block moved")
			}
			s = strings.Replace(s, block, "", 1)
			// The group's registration, after the group's Add (the last
			// such line; the right's comes first in the script).
			anchor := "    if ($registered) { $r.switch = 'registered' }\n"
			i := strings.LastIndex(s, anchor)
			return s[:i] + block + s[i:]
		}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			saved := ApplyScript
			t.Cleanup(func() { ApplyScript = saved })
			ApplyScript = tc.script(saved)
			s := winrmtest.New(t, user, pass, host("web01"))
			h := s.Host(host("web01"))
			h.KillAfterWrites = 1
			p := openHost(t, s, "web01", nil)
			outs := applyOne(t, p, grp("admins", adminSID), grantAdd(alice, winEnd, "g1"))
			if outs[0].Status != providers.Unknown {
				t.Fatalf("add = %s %v, want unknown", outs[0].Status, outs[0].Err)
			}
			if !slices.Contains(h.Members(adminSID), alice.ID) {
				t.Fatal("the add was not made before the crash")
			}
			if got := len(h.ScheduledTasks()) == 1; got != tc.switch_ {
				t.Fatalf("switch in place after the crash = %v, want %v", got, tc.switch_)
			}
			h.SetNow(winEnd.Add(SwitchGrace))
			if gone := !slices.Contains(h.Members(adminSID), alice.ID); gone != tc.switch_ {
				t.Errorf("alice removed by the switch = %v, want %v", gone, tc.switch_)
			}
		})
	}
}

// No switch, no add: a host whose Task Scheduler is stopped refuses the
// grant's add with a clear error and changes nothing; removals still work.
func TestNoTaskSchedulerNoAdd(t *testing.T) {
	s := winrmtest.New(t, user, pass, host("web01"))
	h := s.Host(host("web01"))
	h.Groups[0].Members = append(h.Groups[0].Members, bob.ID)
	h.NoTaskScheduler = true
	p := openHost(t, s, "web01", nil)
	outs := applyOne(t, p, grp("admins", adminSID), grantAdd(alice, winEnd, "g1"), providers.MemberChange{Action: providers.Remove, Member: bob})
	if outs[0].Status != providers.Failed || !strings.Contains(outs[0].Err.Error(), "dead-man's switch could not be registered") {
		t.Errorf("add = %s %v", outs[0].Status, outs[0].Err)
	}
	if outs[1].Status != providers.Done {
		t.Errorf("remove = %s %v", outs[1].Status, outs[1].Err)
	}
	if m := h.Members(adminSID); slices.Contains(m, alice.ID) || slices.Contains(m, bob.ID) {
		t.Errorf("Administrators = %v", m)
	}
	if _, err := p.Switches(context.Background()); err == nil || !strings.Contains(err.Error(), "service is not available") {
		t.Errorf("listing switches: %v", err)
	}
}

// end_sessions: removing a member logs off its console and RDP sessions
// (by SID, in the same run) and reports how many; others' sessions and
// groups without end_sessions are left alone.
func TestEndSessionsLogsOffTheRemovedMember(t *testing.T) {
	s := winrmtest.New(t, user, pass, host("web01"))
	h := s.Host(host("web01"))
	h.Groups[0].Members = append(h.Groups[0].Members, alice.ID, bob.ID)
	h.AddSession(alice.ID, "console")
	h.AddSession(alice.ID, "rdp")
	h.AddSession(bob.ID, "rdp")
	p := openHost(t, s, "web01", nil)
	plain := grp("admins", adminSID)
	outs := applyOne(t, p, plain, providers.MemberChange{Action: providers.Remove, Member: bob})
	if outs[0].Sessions != nil || len(h.SessionsOf(bob.ID)) != 1 {
		t.Errorf("without end_sessions: %+v, bob's sessions %v", outs[0].Sessions, h.SessionsOf(bob.ID))
	}
	ending := grp("admins", adminSID)
	ending.Attributes.EndSessions = true
	outs = applyOne(t, p, ending, providers.MemberChange{Action: providers.Remove, Member: alice})
	if outs[0].Status != providers.Done || outs[0].Sessions == nil || outs[0].Sessions.Count != 2 || outs[0].Sessions.Err != nil || outs[0].Sessions.Host != host("web01") {
		t.Fatalf("remove = %s %v, sessions %+v", outs[0].Status, outs[0].Err, outs[0].Sessions)
	}
	if n := h.SessionsOf(alice.ID); len(n) != 0 {
		t.Errorf("alice still has sessions %v", n)
	}
	if n := h.SessionsOf(bob.ID); len(n) != 1 {
		t.Errorf("bob's session was ended: %v", n)
	}
	// A removal that finds the member already gone still ends its sessions.
	h.AddSession(alice.ID, "rdp")
	outs = applyOne(t, p, ending, providers.MemberChange{Action: providers.Remove, Member: alice})
	if outs[0].Status != providers.Already || outs[0].Sessions == nil || outs[0].Sessions.Count != 1 {
		t.Errorf("already-removed = %s, sessions %+v", outs[0].Status, outs[0].Sessions)
	}
}

// With end_sessions the switch also logs the member's sessions off when it
// fires (jitform is not there to); without it, it leaves them.
func TestSwitchEndsSessionsWhenTheGroupSaysSo(t *testing.T) {
	for _, end := range []bool{true, false} {
		s := winrmtest.New(t, user, pass, host("web01"))
		h := s.Host(host("web01"))
		p := openHost(t, s, "web01", nil)
		g := grp("admins", adminSID)
		g.Attributes.EndSessions = end
		applyOne(t, p, g, grantAdd(alice, winEnd, "g1"))
		h.AddSession(alice.ID, "rdp")
		h.AddSession(bob.ID, "rdp")
		h.SetNow(winEnd.Add(SwitchGrace))
		if slices.Contains(h.Members(adminSID), alice.ID) {
			t.Fatal("the switch did not remove alice")
		}
		if ended := len(h.SessionsOf(alice.ID)) == 0; ended != end {
			t.Errorf("end_sessions = %v: alice's session ended = %v", end, ended)
		}
		if len(h.SessionsOf(bob.ID)) != 1 {
			t.Error("bob's session was ended")
		}
	}
}
