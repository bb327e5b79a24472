package winrmtest

import (
	"slices"
	"strings"
	"testing"
	"time"
)

const aliceSID = "S-1-5-21-9-9-9-1104"

func switchAdd(at any, grant string) map[string]any {
	return map[string]any{"op": "apply", "changes": []map[string]any{
		{"group": admins, "action": "add", "sid": aliceSID, "switch_at": at, "grant": grant}}}
}

// Registration is modelled from what the script registers and validated as
// the cmdlets would: a due time that is not a number is refused, and then
// the member is not added. The v1 scripts register nothing.
func TestSwitchRegistrationValidatesData(t *testing.T) {
	at := time.Date(2026, 11, 23, 11, 1, 0, 0, time.UTC)
	for _, tc := range []struct {
		name    string
		scripts func(*testing.T) scriptSet
		at      any
		status  string
		task    bool
	}{
		{"a number of seconds registers the switch", current, at.Unix(), "done", true},
		{"a due time that is not a number is refused, and the member is not added", current, "2026-11-23T11:01:00Z", "failed", false},
		{"a negative due time is refused", current, -5, "failed", false},
		{"the v1 scripts register nothing", v1, at.Unix(), "done", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHost()
			s := tc.scripts(t)
			m, serr, code := run(t, h, s, s.apply, switchAdd(tc.at, "grant.a"))
			if code != 0 {
				t.Fatalf("exit %d: %s", code, serr)
			}
			r := results(t, m)
			if r[0]["status"] != tc.status {
				t.Errorf("status = %v (%v), want %s", r[0]["status"], r[0]["error"], tc.status)
			}
			if added := slices.Contains(h.Members("S-1-5-32-544"), aliceSID); added != (tc.status == "done") {
				t.Errorf("alice added = %v", added)
			}
			tasks := h.ScheduledTasks()
			if (len(tasks) == 1) != tc.task {
				t.Fatalf("tasks = %d, want a task: %v", len(tasks), tc.task)
			}
			if tc.task && (!tasks[0].At.Equal(at) || tasks[0].UserID != "S-1-5-18" || tasks[0].Name != switchName("S-1-5-32-544", aliceSID)) {
				t.Errorf("task = %+v", tasks[0])
			}
		})
	}
}

// A task fires only when the host's clock reaches its trigger, and only an
// action that is a PowerShell script run as SYSTEM can remove a member: a
// script that registers its switch under another account leaves the member
// (Task Scheduler would run it without the rights to).
func TestSwitchFiresOnTheHostClockAsSYSTEMOnly(t *testing.T) {
	at := time.Date(2026, 11, 23, 11, 1, 0, 0, time.UTC)
	for _, tc := range []struct {
		name    string
		edit    func(string) string
		removed bool
	}{
		{"as SYSTEM", func(s string) string { return s }, true},
		{"as Users", func(s string) string { return strings.Replace(s, "-UserId 'S-1-5-18'", "-UserId 'S-1-5-32-545'", 1) }, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHost()
			s := current(t)
			if _, serr, code := run(t, h, s, tc.edit(s.apply), switchAdd(at.Unix(), "g")); code != 0 {
				t.Fatal(serr)
			}
			h.SetNow(at.Add(-time.Second))
			if !slices.Contains(h.Members("S-1-5-32-544"), aliceSID) || len(h.Firings()) != 0 {
				t.Fatal("fired before its trigger")
			}
			h.Advance(time.Second)
			if removed := !slices.Contains(h.Members("S-1-5-32-544"), aliceSID); removed != tc.removed {
				t.Errorf("alice removed = %v, want %v (firings %+v)", removed, tc.removed, h.Firings())
			}
			if f := h.Firings(); len(f) != 1 || (f[0].Error != "") == tc.removed {
				t.Errorf("firings = %+v", f)
			}
		})
	}
}

// The read script lists jitform's tasks with the data of their
// descriptions; the v1 read script does not.
func TestReadListsSwitches(t *testing.T) {
	h := newHost()
	s := current(t)
	if _, serr, code := run(t, h, s, s.apply, switchAdd(int64(1795431660), `it's "quoted"`)); code != 0 {
		t.Fatal(serr)
	}
	m, serr, code := run(t, h, s, s.read, map[string]any{"op": "read", "groups": []any{}, "principals": []any{}})
	if code != 0 {
		t.Fatal(serr)
	}
	sw, ok := m["switches"].(map[string]any) // one element: unwrapped, as ConvertTo-Json does
	if !ok || sw["member"] != aliceSID || sw["group"] != "S-1-5-32-544" || sw["grant"] != `it's "quoted"` || sw["at"] != float64(1795431660) || sw["name"] != `\jitform\`+switchName("S-1-5-32-544", aliceSID) {
		t.Errorf("switches = %#v", m["switches"])
	}
	old := v1(t)
	m, _, _ = run(t, h, old, old.read, map[string]any{"op": "read", "groups": []any{}, "principals": []any{}})
	if _, ok := m["switches"]; ok {
		t.Error("the v1 read script lists switches")
	}
}

// end_sessions ends every session of the SID above session 0, and only
// with a script that finds sessions by owner SID and logs them off.
func TestEndSessionsModel(t *testing.T) {
	for _, tc := range []struct {
		name    string
		scripts func(*testing.T) scriptSet
		ended   bool
	}{{"current", current, true}, {"v1", v1, false}} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHost()
			h.Groups[0].Members = append(h.Groups[0].Members, aliceSID)
			h.AddSession(aliceSID, "console")
			h.AddSession(aliceSID, "rdp")
			h.AddSession("S-1-5-21-9-9-9-1105", "rdp")
			s := tc.scripts(t)
			m, serr, code := run(t, h, s, s.apply, map[string]any{"op": "apply", "changes": []map[string]any{
				{"group": admins, "action": "remove", "sid": aliceSID, "end_sessions": true}}})
			if code != 0 {
				t.Fatal(serr)
			}
			r := results(t, m)
			if got := len(h.SessionsOf(aliceSID)) == 0; got != tc.ended {
				t.Errorf("alice's sessions ended = %v, want %v", got, tc.ended)
			}
			if tc.ended && r[0]["sessions"] != float64(2) {
				t.Errorf("result = %v", r[0])
			}
			if len(h.SessionsOf("S-1-5-21-9-9-9-1105")) != 1 {
				t.Error("bob's session was ended")
			}
		})
	}
}

// An account's switch is listed with the account it disables, when the
// read script takes it from the description; a read script that does not
// (the line removed) lists the switch without it.
func TestReadListsAnAccountSwitchWithItsAccount(t *testing.T) {
	const sid = "S-1-5-21-1-2-3-1010"
	s := current(t)
	readLine := "$s.account = [string]$d.account; "
	if !strings.Contains(s.read, readLine) {
		t.Fatalf("the read script has no %q", readLine)
	}
	for _, tc := range []struct {
		name, read, want string
	}{
		{"current", s.read, "jit-admin"},
		{"without the account line", strings.Replace(s.read, readLine, "", 1), ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHost()
			h.AddUser("jit-admin", sid, "Initial-Pass-0", false)
			if _, serr, code := run(t, h, s, s.apply, map[string]any{"op": "apply", "changes": []any{}, "accounts": []map[string]any{
				{"key": "account.a", "name": "jit-admin", "enable": true, "switch_at": int64(1795431660), "account": "jit-admin", "grant": "grant.g"}}}); code != 0 {
				t.Fatal(serr)
			}
			if u, _ := h.UserState("jit-admin"); u.Disabled || len(h.ScheduledTasks()) != 1 {
				t.Fatalf("after the enable: disabled %t, tasks %d", u.Disabled, len(h.ScheduledTasks()))
			}
			m, serr, code := run(t, h, s, tc.read, map[string]any{"op": "read", "groups": []any{}, "principals": []any{}})
			if code != 0 {
				t.Fatal(serr)
			}
			sw, ok := m["switches"].(map[string]any)
			if !ok || sw["group"] != "ACCOUNT" || sw["member"] != sid || sw["at"] != float64(1795431660) {
				t.Fatalf("switches = %#v", m["switches"])
			}
			if got, _ := sw["account"].(string); got != tc.want {
				t.Errorf("account = %q, want %q", got, tc.want)
			}
		})
	}
}
