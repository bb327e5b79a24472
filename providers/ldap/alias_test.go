package ldap

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/jitform/jitform/config"
	"github.com/jitform/jitform/internal/testbed/ldapfake"
	"github.com/jitform/jitform/internal/testbed/sambatest"
	"github.com/jitform/jitform/internal/testbed/slapdtest"
	"github.com/jitform/jitform/providers"
)

// Two group blocks that name one entry (a Unicode lookalike, another case
// or spacing, any spelling the server normalises to the same entry) would
// each plan the group on their own and undo each other on every apply.
// Both are refused with a read error naming both blocks, so nothing is
// planned for them; other groups are read as usual.
func TestGroupBlocksResolvingToOneEntryAreRefused(t *testing.T) {
	s := slapdtest.Start(t, seed)
	tg := ldapTarget(s, nil)
	p := open(t, tg)
	ctx := context.Background()
	for _, tc := range []struct {
		name, a, b string
	}{
		{"fullwidth_lookalike", "cn=ops,ou=groups,dc=example,dc=org", "cn=\uff4fps,ou=groups,dc=example,dc=org"},
		{"case_and_spacing", "cn=ops,ou=groups,dc=example,dc=org", "CN=OPS ,  OU=Groups,DC=Example,dc=org"},
		{"inner_spaces", "cn=ops,ou=groups,dc=example,dc=org", "cn= ops ,ou=groups,dc=example,dc=org"},
		// Our canonical form keeps the tab; slapd treats it as an
		// insignificant space: only the server's answer shows they match.
		{"server_only_fold_trailing_tab", "cn=ops,ou=groups,dc=example,dc=org", "cn=ops\t,ou=groups,dc=example,dc=org"},
		{"escaped_hex", "cn=ops,ou=groups,dc=example,dc=org", `cn=\6fps,ou=groups,dc=example,dc=org`},
		// A newline, hex-escaped as \0a in our canonical form, is an
		// insignificant space to slapd (RFC 4518) like the tab.
		{"server_only_fold_newline", "cn=ops,ou=groups,dc=example,dc=org", "cn=ops\n,ou=groups,dc=example,dc=org"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, b := group(tg, "ops_a", tc.a), group(tg, "ops_b", tc.b)
			admins := group(tg, "admins", "cn=admins,ou=groups,dc=example,dc=org")
			obs, err := p.Read(ctx, []*config.Group{a, admins, b})
			if err != nil {
				t.Fatal(err)
			}
			for _, g := range []*config.Group{a, b} {
				o := obs[g.Addr]
				if o.Err == nil {
					t.Errorf("%s (%s) read without error (%d members): two blocks for one entry must be refused", g.Addr, g.DN, len(o.Members))
					continue
				}
				msg := o.Err.Error()
				for _, want := range []string{fmt.Sprintf("group.ops_a (dn %q)", tc.a), fmt.Sprintf("group.ops_b (dn %q)", tc.b), "one directory entry", "cn=ops,ou=groups,dc=example,dc=org", "entryUUID"} {
					if !strings.Contains(msg, want) {
						t.Errorf("%s error %q does not name %q", g.Addr, msg, want)
					}
				}
			}
			if o := obs[admins.Addr]; o.Err != nil || len(o.Members) != 1 {
				t.Errorf("an unrelated group was not read: %+v", o)
			}
			// Apply refuses them too: nothing is written.
			before := s.Values(t, "cn=ops,ou=groups,dc=example,dc=org", "uniqueMember")
			alice := providers.Member{ID: canon(t, "uid=alice,ou=people,dc=example,dc=org"), Name: "uid=alice,ou=people,dc=example,dc=org"}
			outs, err := p.Apply(ctx, []providers.GroupChange{
				{Group: a, Changes: []providers.MemberChange{{Action: providers.Add, Member: alice}}},
				{Group: b, Changes: []providers.MemberChange{{Action: providers.Add, Member: alice}}},
			})
			if err != nil {
				t.Fatal(err)
			}
			for _, o := range outs {
				if o.Status != providers.Failed || !strings.Contains(o.Err.Error(), "one directory entry") {
					t.Errorf("Apply to %s = %s %v, want refused", o.Group, o.Status, o.Err)
				}
			}
			if after := s.Values(t, "cn=ops,ou=groups,dc=example,dc=org", "uniqueMember"); len(after) != len(before) {
				t.Errorf("members changed from %v to %v", before, after)
			}
		})
	}
	// One block alone, however it is spelled, is read under the DN the
	// server returns.
	one := group(tg, "ops", "CN=\uff2f\uff30\uff33, ou=Groups,dc=example,dc=org")
	obs, err := p.Read(ctx, []*config.Group{one})
	if err != nil || obs[one.Addr].Err != nil || len(obs[one.Addr].Members) != 1 {
		t.Errorf("a lone lookalike spelling = %v %+v, want the entry's one member", err, obs[one.Addr])
	}
}

// The same rule on Active Directory (Samba), where entries are compared by
// objectGUID.
func TestSambaGroupBlocksResolvingToOneEntryAreRefused(t *testing.T) {
	dc := sambatest.Start(t)
	tg := adTarget(dc, nil)
	p := open(t, tg)
	a := group(tg, "admins_a", sambatest.AdminsDN)
	b := group(tg, "admins_b", "cn=\uff41dmins , OU=groups,dc=EXAMPLE,dc=test")
	tier := group(tg, "tier1", sambatest.Tier1DN)
	obs, err := p.Read(context.Background(), []*config.Group{a, tier, b})
	if err != nil {
		t.Fatal(err)
	}
	for _, g := range []*config.Group{a, b} {
		o := obs[g.Addr]
		if o.Err == nil || !strings.Contains(o.Err.Error(), "group.admins_a") || !strings.Contains(o.Err.Error(), "group.admins_b") || !strings.Contains(o.Err.Error(), "objectGUID") {
			t.Errorf("%s = %+v, want a refusal naming both blocks and the objectGUID", g.Addr, o)
		}
	}
	if o := obs[tier.Addr]; o.Err != nil {
		t.Errorf("an unrelated group was not read: %v", o.Err)
	}
}

// A group DN the first search does not find costs a second read only when
// the server may match it where our canonical form does not (characters
// beyond printable ASCII, or a control our form hex-escapes); for printable
// ASCII, escaped specials and literal backslashes included, a miss is a
// miss after the one search.
func TestMissingGroupCostsASecondReadOnlyWhenTheServerMayFoldItsDN(t *testing.T) {
	s := slapdtest.Start(t, seed)
	tg := ldapTarget(s, nil)
	p := open(t, tg)
	for _, tc := range []struct {
		dn   string
		want int64
	}{
		{"cn=no such,ou=groups,dc=example,dc=org", 1},
		{"cn=no~pe,ou=groups,dc=example,dc=org", 1},
		{"cn=fade,ou=groups,dc=example,dc=org", 1},
		{`cn=a\,1,ou=groups,dc=example,dc=org`, 1},
		{`cn=x\5cyz,ou=groups,dc=example,dc=org`, 1},
		{"cn=nope\n,ou=groups,dc=example,dc=org", 2},
		{"cn=nope\x0f,ou=groups,dc=example,dc=org", 2},
		{"cn=n\u00f6pe,ou=groups,dc=example,dc=org", 2},
	} {
		g := group(tg, "missing", tc.dn)
		before := p.Ops()
		obs, err := p.Read(context.Background(), []*config.Group{g})
		if err != nil {
			t.Fatalf("%q: %v", tc.dn, err)
		}
		if e := obs[g.Addr].Err; e == nil || !strings.Contains(e.Error(), "no entry") {
			t.Errorf("%q: %+v, want no entry", tc.dn, obs[g.Addr])
		}
		if ops := p.Ops() - before; ops != tc.want {
			t.Errorf("%q: %d round trips, want %d", tc.dn, ops, tc.want)
		}
	}
}

// A group DN the server cannot parse (an attribute type its schema does not
// know), retried as written because it is not printable ASCII, is a group
// with no entry: the other groups are still read.
func TestGroupDNTheServerRefusesAsSyntaxIsNoEntry(t *testing.T) {
	s := slapdtest.Start(t, seed)
	tg := ldapTarget(s, nil)
	p := open(t, tg)
	bad := group(tg, "bad", "nosuchtype=n\u00f6pe,ou=groups,dc=example,dc=org")
	admins := group(tg, "admins", "cn=admins,ou=groups,dc=example,dc=org")
	obs, err := p.Read(context.Background(), []*config.Group{admins, bad})
	if err != nil {
		t.Fatalf("Read: %v, want the bad DN's error on its group only", err)
	}
	if e := obs[bad.Addr].Err; e == nil || !strings.Contains(e.Error(), "no entry") {
		t.Errorf("%s: %+v, want no entry", bad.Addr, obs[bad.Addr])
	}
	if o := obs[admins.Addr]; o.Err != nil || len(o.Members) != 1 {
		t.Errorf("admins: %+v, want its one member", o)
	}
}

// A server that sends no entryUUID or objectGUID: entries are compared by
// the canonical form of the DN it returns, and the refusal names the entry
// by that form.
func TestAliasesOnAServerWithoutEntryIDsAreComparedByCanonicalDN(t *testing.T) {
	const bindDN, pw = "CN=svc,DC=corp,DC=example", "Fake-Secret-1!"
	s := ldapfake.Start(t, bindDN, pw, 1500, ldapfake.Entry{DN: "CN=Ops, OU=Groups,DC=corp,DC=example", Attrs: map[string][]string{
		"objectClass": {"group"}, "cn": {"Ops"}, "member": {"CN=a,OU=People,DC=corp,DC=example"},
	}})
	no := false
	tg := &config.Target{Kind: "ldap", Name: "win", Addr: "target.ldap.win", LDAP: &config.LDAPTarget{
		URL: s.URL, BindDN: bindDN, Password: config.NewSecret(pw), BaseDN: "DC=corp,DC=example",
		Flavor: config.FlavorActiveDirectory, StartTLS: &no, InsecurePlaintext: true,
	}}
	p := open(t, tg)
	a, b := group(tg, "ops_a", "CN=Ops,OU=Groups,DC=corp,DC=example"), group(tg, "ops_b", "cn=ops , ou=groups,dc=corp,dc=example")
	obs, err := p.Read(context.Background(), []*config.Group{a, b})
	if err != nil {
		t.Fatal(err)
	}
	for _, g := range []*config.Group{a, b} {
		if e := obs[g.Addr].Err; e == nil || !strings.Contains(e.Error(), "one directory entry") || !strings.Contains(e.Error(), "(dn cn=ops,ou=groups,dc=corp,dc=example)") {
			t.Errorf("%s: %+v, want refused, naming the entry by its canonical DN", g.Addr, obs[g.Addr])
		}
	}
}
