package winrm

import (
	"context"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/jitform/jitform/config"
	"github.com/jitform/jitform/internal/testbed/winrmtest"
	"github.com/jitform/jitform/providers"
)

const jitAdminSID = "S-1-5-21-1-2-3-1010"

func account(name, user string) *config.Account {
	return &config.Account{Name: name, Addr: "account." + name, BaseAddr: "account." + name, AccountName: user, RotatePassword: true}
}

func setAccount(t *testing.T, p *target, a *config.Account, enable bool, password string) providers.AccountOutcome {
	t.Helper()
	c := providers.AccountChange{Account: a, Enable: enable}
	if password != "" {
		c.Password = config.NewSecret(password)
	}
	outs, err := p.SetAccounts(context.Background(), []providers.AccountChange{c})
	if err != nil {
		t.Fatal(err)
	}
	if len(outs) != 1 || outs[0].Account != a.Addr {
		t.Fatalf("outcomes = %+v", outs)
	}
	return outs[0]
}

// checkNoPassword: the password is in the stdin payload of the runs that
// set it and nowhere else the host records: not on the command line, not
// in the script, not in what the script wrote back, not in an error.
func checkNoPassword(t *testing.T, h *winrmtest.Host, pw string, outs ...providers.AccountOutcome) {
	t.Helper()
	inData := false
	for i, r := range h.RunsSeen() {
		if strings.Contains(r.CommandLine, pw) || strings.Contains(r.Decoded, pw) || strings.Contains(r.Script, pw) {
			t.Errorf("run %d: the password is in the code", i)
		}
		if strings.Contains(r.Output, pw) {
			t.Errorf("run %d: the password was echoed back: %s", i, clipTest(r.Output))
		}
		inData = inData || strings.Contains(r.Data, pw)
	}
	if !inData {
		t.Error("the password is in no stdin payload: how was it set?")
	}
	for _, o := range outs {
		if o.Err != nil && strings.Contains(o.Err.Error(), pw) {
			t.Errorf("the password is in an error: %v", o.Err)
		}
	}
}

// Enable sets a password the host accepts for a logon; disable rotates it
// again, and the window's password no longer logs on.
func TestAccountEnableAndDisableRotateThePassword(t *testing.T) {
	s := winrmtest.New(t, user, pass, host("web01"))
	h := s.Host(host("web01"))
	h.AddUser("jit-admin", jitAdminSID, "Initial-Pass-0", false)
	p := openHost(t, s, "web01", nil)
	a, missing := account("web01_jitadmin", "jit-admin"), account("gone", "no-such-user")
	ctx := context.Background()
	st, err := p.ReadAccounts(ctx, []*config.Account{a, missing})
	if err != nil {
		t.Fatal(err)
	}
	if want := map[string]providers.AccountState{a.Addr: {Exists: true}, missing.Addr: {}}; !reflect.DeepEqual(st, want) {
		t.Fatalf("read = %+v, want %+v", st, want)
	}
	const pw1, pw2 = "Window-Pass-7f3a9c", "After-Pass-2b81de"
	o1 := setAccount(t, p, a, true, pw1)
	if o1.Status != providers.Done || o1.Err != nil {
		t.Fatalf("enable = %s %v", o1.Status, o1.Err)
	}
	if !h.CheckPassword("jit-admin", pw1) {
		t.Fatal("the host does not accept the password set at enable")
	}
	if st, _ := p.ReadAccounts(ctx, []*config.Account{a}); !st[a.Addr].Enabled {
		t.Fatalf("read after enable = %+v", st[a.Addr])
	}
	o2 := setAccount(t, p, a, false, pw2)
	if o2.Status != providers.Done || o2.Err != nil {
		t.Fatalf("disable = %s %v", o2.Status, o2.Err)
	}
	u, _ := h.UserState("jit-admin")
	if !u.Disabled || u.Password != pw2 || u.PasswordSets != 2 {
		t.Errorf("after disable: disabled %v, password rotated %v, sets %d", u.Disabled, u.Password == pw2, u.PasswordSets)
	}
	if h.CheckPassword("jit-admin", pw1) {
		t.Error("the window's password still logs on after disable")
	}
	if st, _ := p.ReadAccounts(ctx, []*config.Account{a}); st[a.Addr].Enabled || !st[a.Addr].Exists {
		t.Errorf("read after disable = %+v", st[a.Addr])
	}
	// Disabling a disabled account with no password to set: already.
	if o := setAccount(t, p, a, false, ""); o.Status != providers.Already {
		t.Errorf("second disable = %s %v, want already", o.Status, o.Err)
	}
	checkNoPassword(t, h, pw1, o1, o2)
	checkNoPassword(t, h, pw2, o1, o2)
}

// A password the host's policy refuses: failed, the account stays
// disabled, and the error names neither password.
func TestAccountPasswordRefusedIsFailedAndNotEnabled(t *testing.T) {
	s := winrmtest.New(t, user, pass, host("web01"))
	h := s.Host(host("web01"))
	h.AddUser("jit-admin", jitAdminSID, "Initial-Pass-0", false)
	p := openHost(t, s, "web01", nil)
	const short = "Sh0rt!"
	o := setAccount(t, p, account("a", "jit-admin"), true, short)
	if o.Status != providers.Failed || o.Err == nil || !strings.Contains(o.Err.Error(), "password policy") {
		t.Fatalf("enable = %s %v, want failed by the password policy", o.Status, o.Err)
	}
	if u, _ := h.UserState("jit-admin"); !u.Disabled || u.PasswordSets != 0 {
		t.Errorf("account changed: %+v", u)
	}
	checkNoPassword(t, h, short, o)
	// A missing account and a name ADSI paths cannot carry fail; nothing
	// else changes.
	for _, n := range []string{"no-such-user", `a,b\c`} {
		if o := setAccount(t, p, account("x", n), true, "Long-Enough-Pass-1"); o.Status != providers.Failed {
			t.Errorf("enable %q = %s, want failed", n, o.Status)
		}
	}
}

// The process dies right after the write: unknown, never failed, and the
// error carries no password.
func TestAccountCrashIsUnknownWithoutThePassword(t *testing.T) {
	s := winrmtest.New(t, user, pass, host("web01"))
	h := s.Host(host("web01"))
	h.AddUser("jit-admin", jitAdminSID, "Initial-Pass-0", false)
	h.KillAfterWrites = 1
	p := openHost(t, s, "web01", nil)
	const pw = "Crash-Pass-88aa11"
	o := setAccount(t, p, account("a", "jit-admin"), true, pw)
	if o.Status != providers.Unknown {
		t.Fatalf("enable = %s %v, want unknown", o.Status, o.Err)
	}
	checkNoPassword(t, h, pw, o)
}

// Hostile account names leave the code byte-identical and arrive as data.
func TestHostileAccountNamesNeverChangeTheCode(t *testing.T) {
	s := winrmtest.New(t, user, pass, host("web01"))
	h := s.Host(host("web01"))
	p := openHost(t, s, "web01", nil)
	hostile := []string{`'; net user x /add; '`, "$(Stop-Computer)", "a\nb", "ünï ☃", "\x00"}
	var accs []*config.Account
	var changes []providers.AccountChange
	for i, n := range hostile {
		a := account(string(rune('a'+i)), n)
		accs = append(accs, a)
		changes = append(changes, providers.AccountChange{Account: a, Enable: true, Password: config.NewSecret("Hostile-Pass-'$(x)`\n")})
	}
	st, err := p.ReadAccounts(context.Background(), accs)
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range accs {
		if st[a.Addr].Exists {
			t.Errorf("%q exists", a.AccountName)
		}
	}
	outs, err := p.SetAccounts(context.Background(), changes)
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range outs {
		if o.Status != providers.Failed {
			t.Errorf("%q: %s", o.Change.Account.AccountName, o.Status)
		}
	}
	runs := h.RunsSeen()
	if len(runs) != 2 || runs[0].Script != ReadScript || runs[1].Script != ApplyScript || runs[0].CommandLine != CommandLine || runs[1].CommandLine != CommandLine {
		t.Error("the code changed with the data")
	}
	if len(h.Users) != 0 {
		t.Error("an account was created")
	}
}

// An enable for a grant registers the account's switch before enabling;
// at window end + grace the host sets a random password and disables the
// account itself; jitform's own disable deletes the switch.
func TestAccountSwitchDisablesAtWindowEnd(t *testing.T) {
	s := winrmtest.New(t, user, pass, host("web01"))
	h := s.Host(host("web01"))
	h.AddUser("jit-admin", jitAdminSID, "Initial-Pass-0", false)
	p := openHost(t, s, "web01", nil)
	a := account("a", "jit-admin")
	const pw = "Window-Pass-5e5e5e"
	enable := func() providers.AccountOutcome {
		outs, err := p.SetAccounts(context.Background(), []providers.AccountChange{{Account: a, Enable: true, Password: config.NewSecret(pw), Expires: winEnd, Grant: "g1"}})
		if err != nil {
			t.Fatal(err)
		}
		return outs[0]
	}
	if o := enable(); o.Status != providers.Done {
		t.Fatalf("enable = %s %v", o.Status, o.Err)
	}
	tasks := h.ScheduledTasks()
	if len(tasks) != 1 || tasks[0].Name != SwitchTaskName("ACCOUNT", jitAdminSID) || tasks[0].Arguments != SwitchArguments || !tasks[0].At.Equal(winEnd.Add(SwitchGrace)) {
		t.Fatalf("tasks = %v", taskNames(tasks))
	}
	if strings.Contains(tasks[0].Description, pw) {
		t.Error("the password is in the switch's description")
	}
	h.SetNow(winEnd.Add(SwitchGrace - 1))
	if !h.CheckPassword("jit-admin", pw) {
		t.Fatal("the switch fired early")
	}
	h.SetNow(winEnd.Add(SwitchGrace))
	if u, _ := h.UserState("jit-admin"); !u.Disabled || u.Password == pw {
		t.Errorf("after the switch: disabled %v, password rotated %v", u.Disabled, u.Password != pw)
	}
	if len(h.ScheduledTasks()) != 0 {
		t.Error("the switch's task stayed")
	}
	// Enabled again, then disabled by jitform: the switch goes with it.
	if o := enable(); o.Status != providers.Done || len(h.ScheduledTasks()) != 1 {
		t.Fatalf("re-enable = %s %v", o.Status, o.Err)
	}
	if o := setAccount(t, p, a, false, "After-Pass-9c9c9c"); o.Status != providers.Done || len(h.ScheduledTasks()) != 0 {
		t.Errorf("disable = %s %v, tasks %v", o.Status, o.Err, taskNames(h.ScheduledTasks()))
	}
	// A crash right after the enable leaves the switch in place.
	h.KillAfterWrites = 1
	if o := enable(); o.Status != providers.Unknown || len(h.ScheduledTasks()) != 1 {
		t.Errorf("crashed enable = %s, tasks %d; want unknown with the switch in place", o.Status, len(h.ScheduledTasks()))
	}
}

// ReadAccounts reports an account's pending switch as its Expires: matched
// by the account name the switch records, case-insensitively; an account
// without a switch, or whose switch jitform's disable deleted, has none.
func TestReadAccountsReportsThePendingSwitch(t *testing.T) {
	s := winrmtest.New(t, user, pass, host("web01"))
	h := s.Host(host("web01"))
	h.AddUser("jit-admin", jitAdminSID, "Initial-Pass-0", false)
	h.AddUser("ops-admin", "S-1-5-21-1-2-3-1011", "Initial-Pass-1", true)
	p := openHost(t, s, "web01", nil)
	a, upper, other := account("a", "jit-admin"), account("b", "JIT-ADMIN"), account("c", "ops-admin")
	read := func() map[string]providers.AccountState {
		t.Helper()
		st, err := p.ReadAccounts(context.Background(), []*config.Account{a, upper, other})
		if err != nil {
			t.Fatal(err)
		}
		for k, v := range st {
			if v.Err != nil {
				t.Fatalf("%s: %v", k, v.Err)
			}
		}
		return st
	}
	if st := read(); !st[a.Addr].Expires.IsZero() || !st[other.Addr].Expires.IsZero() {
		t.Fatalf("before any switch: %+v", st)
	}
	outs, err := p.SetAccounts(context.Background(), []providers.AccountChange{{Account: a, Enable: true, Expires: winEnd, Grant: "g1"}})
	if err != nil || outs[0].Status != providers.Done {
		t.Fatalf("enable = %+v, %v", outs, err)
	}
	st := read()
	for _, x := range []*config.Account{a, upper} {
		if got := st[x.Addr]; !got.Enabled || !got.Expires.Equal(winEnd.Add(SwitchGrace)) {
			t.Errorf("%s (%s): enabled %t, expires %s; want the switch at %s", x.Addr, x.AccountName, got.Enabled, got.Expires, winEnd.Add(SwitchGrace))
		}
	}
	if got := st[other.Addr]; !got.Enabled || !got.Expires.IsZero() {
		t.Errorf("%s: enabled %t, expires %s; want no switch", other.Addr, got.Enabled, got.Expires)
	}
	// Re-armed by an enable of the enabled account: the same task, later.
	later := winEnd.Add(2 * time.Hour)
	outs, err = p.SetAccounts(context.Background(), []providers.AccountChange{{Account: a, Enable: true, Expires: later, Grant: "g2"}})
	if err != nil || outs[0].Status != providers.Already {
		t.Fatalf("re-arm = %+v, %v", outs, err)
	}
	if got := read()[a.Addr]; !got.Expires.Equal(later.Add(SwitchGrace)) || len(h.ScheduledTasks()) != 1 {
		t.Errorf("after the re-arm: expires %s, tasks %v; want one switch at %s", got.Expires, taskNames(h.ScheduledTasks()), later.Add(SwitchGrace))
	}
	if o := setAccount(t, p, a, false, ""); o.Status != providers.Done {
		t.Fatalf("disable = %s %v", o.Status, o.Err)
	}
	if got := read()[a.Addr]; got.Enabled || !got.Expires.IsZero() || len(h.ScheduledTasks()) != 0 {
		t.Errorf("after the disable: enabled %t, expires %s, tasks %v", got.Enabled, got.Expires, taskNames(h.ScheduledTasks()))
	}
}
