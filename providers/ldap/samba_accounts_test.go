package ldap

import (
	"context"
	"strconv"
	"strings"
	"testing"

	goldap "github.com/go-ldap/ldap/v3"

	"github.com/jitform/jitform/config"
	"github.com/jitform/jitform/internal/testbed/sambatest"
	"github.com/jitform/jitform/providers"
)

func adBind(t *testing.T, dc *sambatest.DC, upn, pw string) error {
	t.Helper()
	tg := adTarget(dc, func(c *config.LDAPTarget) { c.BindDN, c.Password = upn, config.NewSecret(pw) })
	p, err := Open(context.Background(), tg, providers.Options{})
	if err == nil {
		p.Close()
	}
	return err
}

func uac(t *testing.T, dc *sambatest.DC, entryDN string) int64 {
	t.Helper()
	v := dc.Values(t, entryDN, "userAccountControl")
	if len(v) != 1 {
		t.Fatalf("userAccountControl of %s = %v", entryDN, v)
	}
	n, err := strconv.ParseInt(v[0], 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// TestSambaAccountsEnableDisable: on a real Samba AD DC, enabling an
// account writes its new password to unicodePwd and clears
// ACCOUNTDISABLE, so it binds with that password; disabling rotates the
// password and sets ACCOUNTDISABLE, so the bind is refused; every other
// userAccountControl bit is kept. Over LDAPS and over StartTLS.
func TestSambaAccountsEnableDisable(t *testing.T) {
	dc := sambatest.Start(t)
	ctx := context.Background()
	dave := sambatest.UserDN("dave")
	const other = 0x10000 // DONT_EXPIRE_PASSWORD: a bit jitform must keep
	r := goldap.NewModifyRequest(dave, nil)
	r.Replace("userAccountControl", []string{strconv.FormatInt(uac(t, dc, dave)|other, 10)})
	if err := dc.Conn(t).Modify(r); err != nil {
		t.Fatal(err)
	}
	start := uac(t, dc, dave)
	if start&uacAccountDisable == 0 {
		t.Fatalf("seeded dave is enabled (uac %#x); the test needs a disabled account", start)
	}
	for _, tc := range []struct {
		name string
		mod  func(*config.LDAPTarget)
		pw   [2]string
	}{
		{"ldaps", nil, [2]string{"Jit-Enable-1!Xy", "Jit-Disable-2!Zw"}},
		{"starttls", startTLS(dc), [2]string{"Jit-Enable-3!Qa", "Jit-Disable-4!Rb"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tg := adTarget(dc, tc.mod)
			p := open(t, tg)
			acct := &config.Account{Name: "dave", Addr: "account.dave", BaseAddr: "account.dave", Target: tg, DN: dave, RotatePassword: true}
			st, err := p.ReadAccounts(ctx, []*config.Account{acct})
			if err != nil || !st[acct.Addr].Exists || st[acct.Addr].Enabled || st[acct.Addr].Err != nil {
				t.Fatalf("read disabled dave = %+v %v", st[acct.Addr], err)
			}
			outs, _ := p.SetAccounts(ctx, []providers.AccountChange{{Account: acct, Enable: true, Password: config.NewSecret(tc.pw[0])}})
			if outs[0].Status != providers.Done {
				t.Fatalf("enable = %s %v", outs[0].Status, outs[0].Err)
			}
			if got := uac(t, dc, dave); got != start&^uacAccountDisable {
				t.Errorf("after enable uac = %#x, want %#x (only ACCOUNTDISABLE cleared)", got, start&^uacAccountDisable)
			}
			if err := adBind(t, dc, "dave@example.test", tc.pw[0]); err != nil {
				t.Errorf("enabled dave does not bind with the new password: %v", err)
			}
			if st, _ := p.ReadAccounts(ctx, []*config.Account{acct}); !st[acct.Addr].Enabled {
				t.Errorf("after enable dave reads %+v", st[acct.Addr])
			}
			outs, _ = p.SetAccounts(ctx, []providers.AccountChange{{Account: acct, Enable: false, Password: config.NewSecret(tc.pw[1])}})
			if outs[0].Status != providers.Done {
				t.Fatalf("disable = %s %v", outs[0].Status, outs[0].Err)
			}
			if got := uac(t, dc, dave); got != start {
				t.Errorf("after disable uac = %#x, want %#x", got, start)
			}
			for _, pw := range tc.pw {
				if err := adBind(t, dc, "dave@example.test", pw); err == nil {
					t.Errorf("disabled dave binds with %q", pw)
				}
			}
			outs, _ = p.SetAccounts(ctx, []providers.AccountChange{{Account: acct, Enable: false}})
			if outs[0].Status != providers.Already {
				t.Errorf("disable of a disabled account = %s %v, want already", outs[0].Status, outs[0].Err)
			}
			// The password was rotated: enabled by hand (no rotation), the
			// account binds with the rotated password. (Samba, like
			// Windows for NTLM, also accepts the previous password for
			// "old password allowed period", 60 minutes by default, so
			// the window's password is not asserted dead here: on Active
			// Directory ACCOUNTDISABLE is the lock that holds at once.)
			if tc.name == "ldaps" {
				outs, _ = p.SetAccounts(ctx, []providers.AccountChange{{Account: acct, Enable: true}})
				if outs[0].Status != providers.Done {
					t.Fatalf("enable without password = %s %v", outs[0].Status, outs[0].Err)
				}
				if err := adBind(t, dc, "dave@example.test", "Never-Set-9!Pp"); err == nil {
					t.Fatalf("dave binds with a password never set: the bind check proves nothing")
				}
				if err := adBind(t, dc, "dave@example.test", tc.pw[1]); err != nil {
					t.Errorf("the rotated password does not bind: %v", err)
				}
				outs, _ = p.SetAccounts(ctx, []providers.AccountChange{{Account: acct, Enable: false}})
				if outs[0].Status != providers.Done {
					t.Fatalf("disable = %s %v", outs[0].Status, outs[0].Err)
				}
			}
		})
	}

	// Sudo roles are not offered on Active Directory.
	if providers.Supports(open(t, adTarget(dc, nil)), config.SetSudoRole) {
		t.Errorf("an active_directory target claims sudo_role support")
	}

	// A password the domain refuses (too short for its policy): failed
	// with the server's code, the account not enabled, the password not in
	// the error.
	tg := adTarget(dc, nil)
	p := open(t, tg)
	acct := &config.Account{Name: "dave", Addr: "account.dave", BaseAddr: "account.dave", Target: tg, DN: dave}
	outs, _ := p.SetAccounts(ctx, []providers.AccountChange{{Account: acct, Enable: true, Password: config.NewSecret("x1")}})
	if outs[0].Status != providers.Failed || outs[0].Err == nil || strings.Contains(outs[0].Err.Error(), `"x1"`) {
		t.Errorf("weak password = %s %v, want failed without the password", outs[0].Status, outs[0].Err)
	}
	if uac(t, dc, dave)&uacAccountDisable == 0 {
		t.Errorf("the account was enabled although its password could not be set")
	}
}
