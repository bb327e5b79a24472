package ldap

import (
	"context"
	"slices"
	"strings"
	"testing"

	goldap "github.com/go-ldap/ldap/v3"

	"github.com/jitform/jitform/config"
	"github.com/jitform/jitform/internal/testbed/slapdtest"
	"github.com/jitform/jitform/providers"
)

const jitAdminDN = "uid=jit-admin,ou=people,dc=example,dc=org"

const accountSeed = seed + "\n" + slapdtest.PolicySeed + `
dn: uid=jit-admin,ou=people,dc=example,dc=org
objectClass: inetOrgPerson
uid: jit-admin
cn: JIT admin
sn: Admin
userPassword: seeded-old-password
pwdAccountLockedTime: 000001010000Z
`

func ldapAccount(tg *config.Target, name, entryDN string) *config.Account {
	return &config.Account{Name: name, Addr: "account." + name, BaseAddr: "account." + name, Target: tg, DN: entryDN, RotatePassword: true}
}

// bindAs binds as entryDN with pw over StartTLS on a fresh connection.
func bindAs(t *testing.T, s *slapdtest.Server, entryDN, pw string) error {
	t.Helper()
	tg := ldapTarget(s, func(c *config.LDAPTarget) { c.BindDN, c.Password = entryDN, config.NewSecret(pw) })
	p, err := Open(context.Background(), tg, providers.Options{})
	if err == nil {
		p.Close()
	}
	return err
}

// TestOpenLDAPAccountsLockAndRotate: on real slapd with the ppolicy
// overlay, enabling an account sets its new password (Password Modify)
// and removes pwdAccountLockedTime, so it binds with that password;
// disabling rotates the password again and locks it, so no password
// binds, and once an administrator unlocks it only the rotated password
// does. Passwords travel only over TLS and never appear in errors.
func TestOpenLDAPAccountsLockAndRotate(t *testing.T) {
	s := slapdtest.Start(t, accountSeed)
	tg := ldapTarget(s, nil)
	p := open(t, tg)
	ctx := context.Background()
	acct := ldapAccount(tg, "jitadmin", jitAdminDN)
	missing := ldapAccount(tg, "missing", "uid=nobody,ou=people,dc=example,dc=org")
	plain := ldapAccount(tg, "alice", "uid=alice,ou=people,dc=example,dc=org")

	if err := bindAs(t, s, jitAdminDN, "seeded-old-password"); err == nil {
		t.Fatal("the seeded locked account binds: ppolicy is not enforcing pwdAccountLockedTime")
	}
	st, err := p.ReadAccounts(ctx, []*config.Account{acct, missing, plain})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]providers.AccountState{
		acct.Addr: {Exists: true, Enabled: false}, missing.Addr: {}, plain.Addr: {Exists: true, Enabled: true},
	}
	for k, w := range want {
		if g := st[k]; g.Exists != w.Exists || g.Enabled != w.Enabled || g.Err != nil {
			t.Errorf("%s = %+v, want %+v", k, g, w)
		}
	}

	const pw1, pw2 = "Enable-pw-1/xyz", "Disable-pw-2/abc"
	outs, err := p.SetAccounts(ctx, []providers.AccountChange{{Account: acct, Enable: true, Password: config.NewSecret(pw1)}})
	if err != nil || outs[0].Status != providers.Done {
		t.Fatalf("enable = %v %+v", err, outs)
	}
	if err := bindAs(t, s, jitAdminDN, pw1); err != nil {
		t.Errorf("the enabled account does not bind with its new password: %v", err)
	}
	if err := bindAs(t, s, jitAdminDN, "seeded-old-password"); err == nil {
		t.Errorf("the old password still binds after enable")
	}
	for _, v := range s.Values(t, jitAdminDN, "userPassword") {
		if strings.Contains(v, pw1) {
			t.Errorf("userPassword holds the password in clear: the server did not hash it")
		}
	}
	if st, _ := p.ReadAccounts(ctx, []*config.Account{acct}); !st[acct.Addr].Enabled {
		t.Errorf("after enable the account reads %+v", st[acct.Addr])
	}
	outs, _ = p.SetAccounts(ctx, []providers.AccountChange{{Account: acct, Enable: true}})
	if outs[0].Status != providers.Already {
		t.Errorf("enable of an enabled account without a password = %s %v, want already", outs[0].Status, outs[0].Err)
	}

	outs, _ = p.SetAccounts(ctx, []providers.AccountChange{{Account: acct, Enable: false, Password: config.NewSecret(pw2)}})
	if outs[0].Status != providers.Done {
		t.Fatalf("disable = %s %v", outs[0].Status, outs[0].Err)
	}
	if v := s.Values(t, jitAdminDN, "pwdAccountLockedTime"); !slices.Equal(v, []string{LockedForever}) {
		t.Errorf("pwdAccountLockedTime = %v, want [%s]", v, LockedForever)
	}
	for _, pw := range []string{pw1, pw2} {
		err := bindAs(t, s, jitAdminDN, pw)
		if err == nil {
			t.Errorf("the disabled account binds with %q", pw)
		} else if !goldap.IsErrorWithCode(err, goldap.LDAPResultInvalidCredentials) {
			t.Errorf("bind of the locked account = %v, want invalid credentials (49)", err)
		}
	}
	// An administrator unlocks it by hand: only the rotated password works,
	// so the one handed out during the window is dead.
	r := goldap.NewModifyRequest(jitAdminDN, nil)
	r.Delete("pwdAccountLockedTime", nil)
	if err := s.Conn(t).Modify(r); err != nil {
		t.Fatal(err)
	}
	if err := bindAs(t, s, jitAdminDN, pw1); err == nil {
		t.Errorf("the window's password still binds after disable")
	}
	if err := bindAs(t, s, jitAdminDN, pw2); err != nil {
		t.Errorf("the rotated password does not bind once unlocked: %v", err)
	}

	// Rotating the password of a locked account keeps it locked, although
	// ppolicy removes pwdAccountLockedTime when an administrator sets a
	// password.
	for _, pw := range []string{"Lock-pw-3/q", "Lock-pw-4/r"} {
		outs, _ = p.SetAccounts(ctx, []providers.AccountChange{{Account: acct, Enable: false, Password: config.NewSecret(pw)}})
		if outs[0].Status != providers.Done {
			t.Fatalf("disable with %q = %s %v", pw, outs[0].Status, outs[0].Err)
		}
		if v := s.Values(t, jitAdminDN, "pwdAccountLockedTime"); !slices.Equal(v, []string{LockedForever}) {
			t.Errorf("after a rotation while disabled, pwdAccountLockedTime = %v, want [%s]", v, LockedForever)
		}
		if err := bindAs(t, s, jitAdminDN, pw); err == nil {
			t.Errorf("the disabled account binds with its rotated password %q", pw)
		}
	}

	// Errors name the account, never the password.
	outs, _ = p.SetAccounts(ctx, []providers.AccountChange{{Account: missing, Enable: true, Password: config.NewSecret(pw1)}})
	if outs[0].Status != providers.Failed || outs[0].Err == nil || strings.Contains(outs[0].Err.Error(), pw1) || !strings.Contains(outs[0].Err.Error(), missing.Addr) {
		t.Errorf("enable of a missing entry = %s %v, want failed naming the account and not the password", outs[0].Status, outs[0].Err)
	}
}

// TestOpenLDAPAccountPasswordNeedsTLS: over a plain connection a password
// is never sent: the change fails and nothing on the server changes.
func TestOpenLDAPAccountPasswordNeedsTLS(t *testing.T) {
	s := slapdtest.Start(t, accountSeed)
	tg := ldapTarget(s, func(c *config.LDAPTarget) {
		no := false
		c.StartTLS, c.InsecurePlaintext = &no, true
	})
	p := open(t, tg)
	before := s.Dump(t)
	outs, err := p.SetAccounts(context.Background(), []providers.AccountChange{{Account: ldapAccount(tg, "jitadmin", jitAdminDN), Enable: true, Password: config.NewSecret("plain-text-pw")}})
	if err != nil {
		t.Fatal(err)
	}
	if outs[0].Status != providers.Failed || outs[0].Err == nil || !strings.Contains(outs[0].Err.Error(), "unencrypted") {
		t.Errorf("password over plain LDAP = %s %v, want failed, naming the unencrypted connection", outs[0].Status, outs[0].Err)
	}
	if after := s.Dump(t); !slices.Equal(before, after) {
		t.Errorf("the directory changed")
	}
}

func goldapModify(entryDN, attr, value string) *goldap.ModifyRequest {
	r := goldap.NewModifyRequest(entryDN, nil)
	r.Replace(attr, []string{value})
	return r
}
