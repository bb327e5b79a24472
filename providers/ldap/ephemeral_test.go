package ldap

import (
	"context"
	"slices"
	"strings"
	"testing"

	goldap "github.com/go-ldap/ldap/v3"

	"github.com/jitform/jitform/config"
	"github.com/jitform/jitform/internal/testbed/sambatest"
	"github.com/jitform/jitform/internal/testbed/slapdtest"
	"github.com/jitform/jitform/providers"
)

const ephemeralSeed = accountSeed + `
dn: ou=jit,dc=example,dc=org
objectClass: organizationalUnit
ou: jit

dn: uid=adm-squat-g1,ou=jit,dc=example,dc=org
objectClass: inetOrgPerson
uid: adm-squat-g1
cn: squatter
sn: s
userPassword: squatter-password
`

func ephemeralAccount(tg *config.Target, base string) *config.Account {
	return &config.Account{Name: "adm", Addr: "account.adm", BaseAddr: "account.adm", Target: tg, Ephemeral: true, RotatePassword: true, Base: base}
}

func instanceChange(a *config.Account, name, grant string, create bool, pw string) providers.AccountChange {
	c := providers.AccountChange{Account: a, Instance: &providers.Instance{Name: name, DN: a.InstanceDN(name), Grant: grant}, Create: create, Delete: !create, Enable: create}
	if pw != "" {
		c.Password = config.NewSecret(pw)
	}
	return c
}

// TestOpenLDAPEphemeralAccounts: on real slapd (ppolicy), a create makes
// an inetOrgPerson under base that binds with the delivered password and
// reads back as the grant's account; a repeated create (after a crash)
// rotates the password; a delete removes it, and then is already so. An
// entry without jitform's marker is never touched, a DN outside the block
// is refused, and over a plain connection nothing is created.
func TestOpenLDAPEphemeralAccounts(t *testing.T) {
	s := slapdtest.Start(t, ephemeralSeed)
	tg := ldapTarget(s, nil)
	p := open(t, tg)
	ctx := context.Background()
	a := ephemeralAccount(tg, "ou=jit,dc=example,dc=org")
	missing := ephemeralAccount(tg, "ou=nowhere,dc=example,dc=org")
	missing.Addr, missing.BaseAddr = "account.missing", "account.missing"

	st, err := p.ReadAccounts(ctx, []*config.Account{a, missing})
	if err != nil || !st[a.Addr].Exists || len(st[a.Addr].Instances) != 0 || st[missing.Addr].Exists || st[missing.Addr].Err != nil {
		t.Fatalf("read before = %+v %v", st, err)
	}

	const pw1, pw2 = "Ephemeral-pw-1/xyz", "Ephemeral-pw-2/abc"
	dnAlice := a.InstanceDN("adm-alice-g1")
	outs, err := p.SetAccounts(ctx, []providers.AccountChange{instanceChange(a, "adm-alice-g1", "g-g1", true, pw1)})
	if err != nil || outs[0].Status != providers.Done {
		t.Fatalf("create = %v %+v", err, outs)
	}
	if err := bindAs(t, s, dnAlice, pw1); err != nil {
		t.Errorf("the created account does not bind with its password: %v", err)
	}
	st, _ = p.ReadAccounts(ctx, []*config.Account{a})
	if in := st[a.Addr].Instances; len(in) != 1 || in[0].Grant != "g-g1" || in[0].Name != "adm-alice-g1" || !in[0].Enabled || in[0].Member.ID != "uid=adm-alice-g1,ou=jit,dc=example,dc=org" {
		t.Fatalf("instances = %+v (the squatter has no marker and must not be listed)", in)
	}

	outs, _ = p.SetAccounts(ctx, []providers.AccountChange{instanceChange(a, "adm-alice-g1", "g-g1", true, pw2)})
	if outs[0].Status != providers.Done {
		t.Fatalf("repeated create = %s %v", outs[0].Status, outs[0].Err)
	}
	if bindAs(t, s, dnAlice, pw1) == nil || bindAs(t, s, dnAlice, pw2) != nil {
		t.Error("after a repeated create only the new password must bind")
	}

	before := s.Dump(t)
	for _, tc := range []struct {
		name   string
		change providers.AccountChange
		want   string
	}{
		{"create over an entry without the marker", instanceChange(a, "adm-squat-g1", "g-g1", true, pw1), "not jitform's account"},
		{"delete of an entry without the marker", instanceChange(a, "adm-squat-g1", "g-g1", false, ""), "not jitform's account"},
		{"delete naming another grant", instanceChange(a, "adm-alice-g1", "g-other", false, ""), "not jitform's account"},
		{"a DN outside the block", func() providers.AccountChange {
			c := instanceChange(a, "adm-alice-g1", "g-g1", false, "")
			c.Instance.DN = "uid=alice,ou=people,dc=example,dc=org"
			return c
		}(), "which its block names"},
		{"create without a password", instanceChange(a, "adm-bob-g2", "g-g2", true, ""), "no password"},
	} {
		outs, _ := p.SetAccounts(ctx, []providers.AccountChange{tc.change})
		if outs[0].Status != providers.Failed || outs[0].Err == nil || !strings.Contains(outs[0].Err.Error(), tc.want) || strings.Contains(outs[0].Err.Error(), pw1) {
			t.Errorf("%s = %s %v, want failed saying %q", tc.name, outs[0].Status, outs[0].Err, tc.want)
		}
	}
	if after := s.Dump(t); !slices.Equal(before, after) {
		t.Error("a refused change changed the directory")
	}

	plain := ldapTarget(s, func(c *config.LDAPTarget) {
		no := false
		c.StartTLS, c.InsecurePlaintext = &no, true
	})
	pa := ephemeralAccount(plain, "ou=jit,dc=example,dc=org")
	outs, _ = open(t, plain).SetAccounts(ctx, []providers.AccountChange{instanceChange(pa, "adm-carol-g3", "g-g3", true, pw1)})
	if outs[0].Status != providers.Failed || !strings.Contains(outs[0].Err.Error(), "unencrypted") {
		t.Errorf("create over plain LDAP = %s %v", outs[0].Status, outs[0].Err)
	}
	if after := s.Dump(t); !slices.Equal(before, after) {
		t.Error("a create over plain LDAP changed the directory")
	}

	outs, _ = p.SetAccounts(ctx, []providers.AccountChange{instanceChange(a, "adm-alice-g1", "g-g1", false, "")})
	if outs[0].Status != providers.Done {
		t.Fatalf("delete = %s %v", outs[0].Status, outs[0].Err)
	}
	if err := bindAs(t, s, dnAlice, pw2); err == nil {
		t.Error("the deleted account still binds")
	}
	outs, _ = p.SetAccounts(ctx, []providers.AccountChange{instanceChange(a, "adm-alice-g1", "g-g1", false, "")})
	if outs[0].Status != providers.Already {
		t.Errorf("second delete = %s %v, want already", outs[0].Status, outs[0].Err)
	}
	if st, _ := p.ReadAccounts(ctx, []*config.Account{a}); len(st[a.Addr].Instances) != 0 {
		t.Errorf("instances after delete = %+v", st[a.Addr].Instances)
	}
}

// TestSambaEphemeralAccounts: on a real Samba AD DC, a create makes a user
// under base (created disabled, then unicodePwd, then enabled) that binds
// with the delivered password, joins a group by DN, and a delete removes
// it and its membership.
func TestSambaEphemeralAccounts(t *testing.T) {
	dc := sambatest.Start(t)
	ctx := context.Background()
	tg := adTarget(dc, nil)
	p := open(t, tg)
	a := ephemeralAccount(tg, sambatest.PeopleDN)
	const pw = "Jit-Ephemeral-1!Xy"
	name := "adm-alexandra-k3x9q2m7ab" // longer than sAMAccountName's 20
	outs, err := p.SetAccounts(ctx, []providers.AccountChange{instanceChange(a, name, "g-k3x9q2m7ab", true, pw)})
	if err != nil || outs[0].Status != providers.Done {
		t.Fatalf("create = %v %+v", err, outs)
	}
	entryDN := a.InstanceDN(name)
	if got := uac(t, dc, entryDN); got&uacAccountDisable != 0 {
		t.Errorf("created account is disabled: uac %#x", got)
	}
	sam := config.SAMAccountName(name)
	if got := dc.Values(t, entryDN, "sAMAccountName"); len(got) != 1 || !strings.EqualFold(got[0], sam) {
		t.Errorf("sAMAccountName = %q, want %q", got, sam)
	}
	if err := adBind(t, dc, sam+"@example.test", pw); err != nil {
		t.Errorf("the created account does not bind: %v", err)
	}
	st, _ := p.ReadAccounts(ctx, []*config.Account{a})
	if in := st[a.Addr].Instances; len(in) != 1 || in[0].Grant != "g-k3x9q2m7ab" || !in[0].Enabled {
		t.Fatalf("instances = %+v", in)
	}

	// The group change the planner makes for it: the account joins by DN.
	g := &config.Group{Name: "admins", Addr: "group.admins", BaseAddr: "group.admins", Target: tg, DN: sambatest.AdminsDN}
	m := st[a.Addr].Instances[0].Member
	gouts, err := p.Apply(ctx, []providers.GroupChange{{Group: g, Changes: []providers.MemberChange{{Action: providers.Add, Member: m}}}})
	if err != nil || gouts[0].Status != providers.Done {
		t.Fatalf("add the account to a group = %v %+v", err, gouts)
	}

	outs, _ = p.SetAccounts(ctx, []providers.AccountChange{instanceChange(a, name, "g-k3x9q2m7ab", false, "")})
	if outs[0].Status != providers.Done {
		t.Fatalf("delete = %s %v", outs[0].Status, outs[0].Err)
	}
	if err := adBind(t, dc, sam+"@example.test", pw); err == nil {
		t.Error("the deleted account still binds")
	}
	obs, _ := p.Read(ctx, []*config.Group{g})
	for _, mm := range obs[g.Addr].Members {
		if mm.ID == m.ID {
			t.Error("the deleted account is still a member of the group")
		}
	}
	res, err := dc.Conn(t).Search(goldap.NewSearchRequest(sambatest.PeopleDN, goldap.ScopeSingleLevel, goldap.NeverDerefAliases, 0, 0, false,
		"(description=jitform account.adm grant*)", []string{"dn"}, nil))
	if err != nil || len(res.Entries) != 0 {
		t.Errorf("marked entries left: %v %v", err, res)
	}
}
