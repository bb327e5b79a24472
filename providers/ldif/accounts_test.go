package ldif

import (
	"context"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/jitform/jitform/config"
	"github.com/jitform/jitform/providers"
)

const (
	jitAdmin = "uid=jit-admin,ou=people,dc=example,dc=org"
	opsAdmin = "uid=ops-admin,ou=people,dc=example,dc=org"
)

func account(name, dn string) *config.Account {
	return &config.Account{Name: name, Addr: "account." + name, BaseAddr: "account." + name, DN: dn, RotatePassword: true}
}

func sudoRole(name, dn string) *config.Group {
	return &config.Group{Kind: config.SetSudoRole, Name: name, Addr: "sudo_role." + name, BaseAddr: "sudo_role." + name, DN: dn}
}

// TestReadAccountsLockIsDisabled: on openldap, pwdAccountLockedTime present
// means disabled, absent enabled, and a missing entry does not exist (no
// error); a group DN for a sudo role (or the reverse) is refused.
func TestReadAccountsLockIsDisabled(t *testing.T) {
	t.Parallel()
	tg, _ := openCopy(t, "kinds.ldif", "")
	am := tg.(providers.AccountManager)
	got, err := am.ReadAccounts(context.Background(), []*config.Account{
		account("jit", jitAdmin), account("ops", "UID=ops-admin, ou=people,dc=example,dc=org"), account("gone", "uid=gone,ou=people,dc=example,dc=org"),
	})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]providers.AccountState{
		"account.jit":  {Exists: true, Enabled: false},
		"account.ops":  {Exists: true, Enabled: true},
		"account.gone": {},
	}
	for addr, w := range want {
		if g := got[addr]; g.Err != nil || g.Exists != w.Exists || g.Enabled != w.Enabled {
			t.Errorf("%s = %+v, want %+v", addr, g, w)
		}
	}
}

// TestSetAccountsRotatesAndLocks: enabling with a password removes the lock
// and stores the password as {SSHA}; disabling with another password locks
// it again and the first password no longer verifies. Outcomes never carry
// the password.
func TestSetAccountsRotatesAndLocks(t *testing.T) {
	t.Parallel()
	tg, path := openCopy(t, "kinds.ldif", "")
	am := tg.(providers.AccountManager)
	ctx := context.Background()
	jit := account("jit", jitAdmin)
	first, second := "Window-Password-1-abcdefgh", "After-Window-Password-2-xyz"

	outs, err := am.SetAccounts(ctx, []providers.AccountChange{{Account: jit, Enable: true, Password: config.NewSecret(first)}})
	if err != nil || len(outs) != 1 || outs[0].Status != providers.Done {
		t.Fatalf("enable: %+v, %v", outs, err)
	}
	entry := readEntry(t, path, jitAdmin)
	if slices.ContainsFunc(entry, func(l string) bool { return strings.HasPrefix(l, "pwdAccountLockedTime") }) {
		t.Errorf("still locked after enable: %q", entry)
	}
	pw := attr(entry, "userPassword")
	if !strings.HasPrefix(pw, "{SSHA}") || !CheckSSHA(pw, first) || CheckSSHA(pw, second) {
		t.Errorf("userPassword %q does not verify the new password only", pw)
	}
	st, _ := am.ReadAccounts(ctx, []*config.Account{jit})
	if !st[jit.Addr].Enabled {
		t.Errorf("read after enable: %+v", st[jit.Addr])
	}

	outs, err = am.SetAccounts(ctx, []providers.AccountChange{{Account: jit, Enable: false, Password: config.NewSecret(second)}})
	if err != nil || len(outs) != 1 || outs[0].Status != providers.Done {
		t.Fatalf("disable: %+v, %v", outs, err)
	}
	entry = readEntry(t, path, jitAdmin)
	if attr(entry, "pwdAccountLockedTime") != LockedForever {
		t.Errorf("not locked after disable: %q", entry)
	}
	if pw := attr(entry, "userPassword"); CheckSSHA(pw, first) || !CheckSSHA(pw, second) {
		t.Errorf("after disable the window's password still verifies (or the new one does not): %q", pw)
	}

	// Disabling again without a password is already so.
	outs, _ = am.SetAccounts(ctx, []providers.AccountChange{{Account: jit, Enable: false}})
	if outs[0].Status != providers.Already {
		t.Errorf("second disable: %+v, want already", outs)
	}
	// A missing account fails, naming it and not the password.
	outs, _ = am.SetAccounts(ctx, []providers.AccountChange{{Account: account("gone", "uid=gone,dc=example,dc=org"), Enable: true, Password: config.NewSecret(first)}})
	if outs[0].Status != providers.Failed || outs[0].Err == nil || !strings.Contains(outs[0].Err.Error(), "account.gone") || strings.Contains(outs[0].Err.Error(), first) {
		t.Errorf("missing account: %+v", outs)
	}
	if b, _ := os.ReadFile(path); strings.Contains(string(b), first) || strings.Contains(string(b), second) {
		t.Error("a clear-text password reached the LDIF file")
	}
}

// TestActiveDirectoryAccountsUseUAC: an AD export enables and disables
// through userAccountControl's ACCOUNTDISABLE bit, and refuses a password
// (unicodePwd is write-only on a DC).
func TestActiveDirectoryAccountsUseUAC(t *testing.T) {
	t.Parallel()
	tg, path := openCopy(t, "kinds_ad.ldif", config.FlavorActiveDirectory)
	am := tg.(providers.AccountManager)
	ctx := context.Background()
	a := account("ad", "CN=jit-admin,CN=Users,DC=corp,DC=example")
	st, _ := am.ReadAccounts(ctx, []*config.Account{a})
	if s := st[a.Addr]; !s.Exists || s.Enabled || s.Err != nil {
		t.Fatalf("read: %+v", s)
	}
	outs, _ := am.SetAccounts(ctx, []providers.AccountChange{{Account: a, Enable: true}})
	if outs[0].Status != providers.Done || attr(readEntry(t, path, "CN=jit-admin,CN=Users,DC=corp,DC=example"), "userAccountControl") != "512" {
		t.Fatalf("enable: %+v", outs)
	}
	outs, _ = am.SetAccounts(ctx, []providers.AccountChange{{Account: a, Enable: false, Password: config.NewSecret("Secret-Password-123")}})
	if outs[0].Status != providers.Failed || !strings.Contains(outs[0].Err.Error(), "write-only") || strings.Contains(outs[0].Err.Error(), "Secret-Password-123") {
		t.Fatalf("password on AD export: %+v", outs)
	}
}

// TestSudoRoleSudoUser: a sudo_role reads its sudoUser values (a user name
// resolves to the user's DN; %group entries stay as written) and Apply adds
// and removes sudoUser values by uid; a sudo_role pointed at a group, or a
// group at a sudoRole, is refused.
func TestSudoRoleSudoUser(t *testing.T) {
	t.Parallel()
	tg, path := openCopy(t, "kinds.ldif", "")
	ctx := context.Background()
	role := sudoRole("db_root", "cn=db-root,ou=SUDOers,dc=example,dc=org")
	obs, err := tg.Read(ctx, []*config.Group{role, sudoRole("wrong", "cn=admins,ou=groups,dc=example,dc=org"), group("wrong_group", "cn=db-root,ou=SUDOers,dc=example,dc=org")})
	if err != nil {
		t.Fatal(err)
	}
	if got := ids(obs[role.Addr].Members); !slices.Equal(got, []string{"%wheel", bob}) {
		t.Errorf("sudoUser members = %q", got)
	}
	if e := obs["sudo_role.wrong"].Err; e == nil || !strings.Contains(e.Error(), "not a sudoRole") {
		t.Errorf("sudo_role on a group: %v", e)
	}
	if e := obs["group.wrong_group"].Err; e == nil || !strings.Contains(e.Error(), "sudo_role block") {
		t.Errorf("group on a sudoRole: %v", e)
	}
	outs, err := tg.Apply(ctx, []providers.GroupChange{{Group: role, Changes: []providers.MemberChange{add("uid=alice,ou=people,dc=example,dc=org"), remove(bob)}}})
	if err != nil || len(outs) != 2 || outs[0].Status != providers.Done || outs[1].Status != providers.Done {
		t.Fatalf("apply: %+v %v", outs, err)
	}
	entry := readEntry(t, path, "cn=db-root,ou=SUDOers,dc=example,dc=org")
	var users []string
	for _, l := range entry {
		if v, ok := strings.CutPrefix(l, "sudoUser: "); ok {
			users = append(users, v)
		}
	}
	slices.Sort(users)
	if !slices.Equal(users, []string{"%wheel", "alice"}) {
		t.Errorf("sudoUser after apply = %q", users)
	}
	if !providers.Supports(tg, config.SetSudoRole) || providers.Supports(tg, config.SetRight) {
		t.Error("ldif must support sudo roles and not rights")
	}
}

// readEntry returns the lines of one entry's record in the file.
func readEntry(t *testing.T, path, dn string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, rec := range strings.Split(string(b), "\n\n") {
		lines := strings.Split(strings.TrimSpace(rec), "\n")
		var kept []string
		for _, l := range lines {
			if !strings.HasPrefix(l, "#") {
				kept = append(kept, l)
			}
		}
		if len(kept) > 0 && strings.EqualFold(kept[0], "dn: "+dn) {
			return kept
		}
	}
	t.Fatalf("no entry %s in %s", dn, path)
	return nil
}

func attr(lines []string, name string) string {
	for _, l := range lines {
		if v, ok := strings.CutPrefix(l, name+": "); ok {
			return v
		}
	}
	return ""
}

// TestHostileNamesInSudoRolesAndAccounts: DN specials in a sudoRole's and
// an account's DN, and a uid full of them as a sudoUser, are written and
// read back exactly (values are data in the LDIF encoding, never spliced).
func TestHostileNamesInSudoRolesAndAccounts(t *testing.T) {
	t.Parallel()
	const hostileUID = `o'brien,+"<x>;\ #`
	src := "version: 1\n\n" +
		"dn: uid=o'brien\\,\\+\\\"\\<x\\>\\;\\\\ \\#,ou=people,dc=example,dc=org\nobjectClass: inetOrgPerson\nuid: " + hostileUID + "\ncn: x\nsn: x\n\n" +
		"dn: cn=db\\+root\\, \\\"prod\\\",ou=SUDOers,dc=example,dc=org\nobjectClass: sudoRole\ncn: db+root, \"prod\"\nsudoHost: ALL\n\n" +
		"dn: uid=jit\\=admin\\;x,ou=people,dc=example,dc=org\nobjectClass: inetOrgPerson\nuid: jit=admin;x\ncn: x\nsn: x\npwdAccountLockedTime: 000001010000Z\n"
	dir := t.TempDir()
	path := dir + "/dir.ldif"
	if err := os.WriteFile(path, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	tg, err := Open(context.Background(), ldifTarget("dir.ldif", ""), providers.Options{BaseDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	role := sudoRole("r", `CN=db\+root\, \"prod\", OU=SUDOers, DC=example, DC=org`)
	res, err := tg.Resolve(ctx, []string{hostileUID})
	if err != nil || res[hostileUID].Err != nil {
		t.Fatalf("resolve %q: %v %v", hostileUID, err, res[hostileUID].Err)
	}
	outs, err := tg.Apply(ctx, []providers.GroupChange{{Group: role, Changes: []providers.MemberChange{{Action: providers.Add, Member: res[hostileUID].Member}}}})
	if err != nil || len(outs) != 1 || outs[0].Status != providers.Done {
		t.Fatalf("add hostile sudoUser: %+v %v", outs, err)
	}
	fresh, err := Open(ctx, ldifTarget("dir.ldif", ""), providers.Options{BaseDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	obs, _ := fresh.Read(ctx, []*config.Group{role})
	if o := obs[role.Addr]; o.Err != nil || len(o.Members) != 1 || o.Members[0].ID != res[hostileUID].Member.ID {
		t.Errorf("read back %+v, want the hostile user %s", o, res[hostileUID].Member.ID)
	}
	acc := account("a", `UID=jit\=admin\;x, OU=people, DC=example, DC=org`)
	aouts, _ := fresh.(providers.AccountManager).SetAccounts(ctx, []providers.AccountChange{{Account: acc, Enable: true, Password: config.NewSecret(`p"w'\n;$(x)`)}})
	if len(aouts) != 1 || aouts[0].Status != providers.Done {
		t.Fatalf("enable hostile account: %+v", aouts)
	}
	st, _ := fresh.(providers.AccountManager).ReadAccounts(ctx, []*config.Account{acc})
	if s := st[acc.Addr]; !s.Exists || !s.Enabled {
		t.Errorf("hostile account after enable: %+v", s)
	}
}
