package ldap

import (
	"context"
	"strings"
	"testing"

	"github.com/jitform/jitform/config"
	"github.com/jitform/jitform/internal/debuglog"
	"github.com/jitform/jitform/internal/testbed/slapdtest"
	"github.com/jitform/jitform/providers"
)

// JITFORM_LOG=trace against a real slapd: one record per operation (bind,
// search, modify) with its duration and result code, the modify's values at
// trace, and never the bind password, even when the bind fails.
func TestDebugLogRecordsEveryOperation(t *testing.T) {
	s := slapdtest.Start(t, seed)
	tg := ldapTarget(s, nil)
	var logs strings.Builder
	ctx := context.Background()
	p, err := Open(ctx, tg, providers.Options{Log: debuglog.New("trace", &logs)})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	ops := group(tg, "ops", "cn=ops,ou=groups,dc=example,dc=org")
	if _, err := p.Read(ctx, []*config.Group{ops}); err != nil {
		t.Fatal(err)
	}
	alice := providers.Member{ID: canon(t, "uid=alice,ou=people,dc=example,dc=org"), Name: "uid=alice,ou=people,dc=example,dc=org"}
	if _, err := p.Apply(ctx, []providers.GroupChange{{Group: ops, Changes: []providers.MemberChange{{Action: providers.Add, Member: alice}}}}); err != nil {
		t.Fatal(err)
	}
	out := logs.String()
	for _, want := range []string{
		`msg="ldap bind"`, `bind_dn="cn=admin,dc=example,dc=org"`,
		`msg="ldap search"`, `filter=`, `code=0`, `took=`,
		`msg="ldap modify"`, `dn="cn=ops,ou=groups,dc=example,dc=org"`, `"add uniqueMember"="[uid=alice,ou=people,dc=example,dc=org]"`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("the trace log lacks %s:\n%s", want, out)
		}
	}
	if strings.Contains(out, slapdtest.RootPW) {
		t.Fatalf("the bind password is in the debug log:\n%s", out)
	}

	// A failed bind logs its result code (49), not the password it tried.
	logs.Reset()
	bad := ldapTarget(s, func(c *config.LDAPTarget) { c.Password = config.NewSecret("wrong-" + slapdtest.RootPW) })
	if _, err := Open(ctx, bad, providers.Options{Log: debuglog.New("debug", &logs)}); err == nil {
		t.Fatal("a wrong password bound")
	}
	if out := logs.String(); !strings.Contains(out, `msg="ldap bind"`) || !strings.Contains(out, "code=49") || strings.Contains(out, slapdtest.RootPW) {
		t.Errorf("failed bind log = %q, want code=49 and no password", out)
	}
}

// JITFORM_LOG=trace while accounts change on a real slapd: the Password
// Modify and the lock are logged (operation, entry, result code), the new
// password never is; and a Modify of a password attribute (unicodePwd on
// Active Directory, userPassword) is traced as "(sensitive)".
func TestDebugLogNeverHoldsAccountPasswords(t *testing.T) {
	s := slapdtest.Start(t, accountSeed)
	tg := ldapTarget(s, nil)
	var logs strings.Builder
	ctx := context.Background()
	p, err := Open(ctx, tg, providers.Options{Log: debuglog.New("trace", &logs)})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	const pw1, pw2, pw3 = "Trace-Enable-pw-91", "Trace-Disable-pw-92", "Trace-Direct-pw-93"
	acct := ldapAccount(tg, "jitadmin", jitAdminDN)
	am := p.(providers.AccountManager)
	for _, c := range []providers.AccountChange{{Account: acct, Enable: true, Password: config.NewSecret(pw1)}, {Account: acct, Enable: false, Password: config.NewSecret(pw2)}} {
		outs, _ := am.SetAccounts(ctx, []providers.AccountChange{c})
		if outs[0].Status != providers.Done {
			t.Fatalf("%+v: %s %v", c, outs[0].Status, outs[0].Err)
		}
	}
	lt := p.(*target)
	req := goldapModify(jitAdminDN, "userPassword", pw3)
	if err := lt.modify(ctx, req); err != nil {
		t.Fatal(err)
	}
	out := logs.String()
	for _, want := range []string{`msg="ldap password modify"`, `msg="ldap modify"`, `"add pwdAccountLockedTime"=[000001010000Z]`, `"replace userPassword"=(sensitive)`} {
		if !strings.Contains(out, want) {
			t.Errorf("the trace log lacks %s:\n%s", want, out)
		}
	}
	for _, pw := range []string{pw1, pw2, pw3} {
		if strings.Contains(out, pw) {
			t.Fatalf("a password is in the debug log:\n%s", out)
		}
	}
}
