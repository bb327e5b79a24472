package ldap

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"

	goldap "github.com/go-ldap/ldap/v3"

	"github.com/jitform/jitform/config"
	"github.com/jitform/jitform/internal/testbed/sambatest"
	"github.com/jitform/jitform/providers"
)

// adTarget points at the Samba DC: LDAPS with ca_file unless mod changes it.
func adTarget(dc *sambatest.DC, mod func(*config.LDAPTarget)) *config.Target {
	c := &config.LDAPTarget{
		URL: dc.LDAPSURL, BindDN: sambatest.AdminUPN, Password: config.NewSecret(sambatest.AdminPassword),
		BaseDN: sambatest.BaseDN, Flavor: config.FlavorActiveDirectory, CAFile: dc.CAFile,
	}
	if mod != nil {
		mod(c)
	}
	return &config.Target{Kind: "ldap", Name: "ad", Addr: "target.ldap.ad", LDAP: c}
}

func startTLS(dc *sambatest.DC) func(*config.LDAPTarget) {
	return func(c *config.LDAPTarget) {
		yes := true
		c.URL, c.StartTLS = dc.URL, &yes
	}
}

var (
	adAlice = sambatest.UserDN("alice")
	adBob   = sambatest.UserDN("bob")
	adCarol = sambatest.UserDN("carol")
)

// Read-only checks share one DC, over LDAPS and over StartTLS, bound by
// UPN and by DN.
func TestSambaResolveAndRead(t *testing.T) {
	dc := sambatest.Start(t)
	ctx := context.Background()
	for _, conn := range []struct {
		name string
		mod  func(*config.LDAPTarget)
	}{
		{"ldaps bind by UPN", nil},
		{"starttls bind by DN", func(c *config.LDAPTarget) { startTLS(dc)(c); c.BindDN = sambatest.AdminDN }},
	} {
		t.Run(conn.name, func(t *testing.T) {
			tg := adTarget(dc, conn.mod)
			p := open(t, tg)
			res, err := p.Resolve(ctx, []string{"alice", "BOB", "carol@EXAMPLE.test", "cn=Alice, ou=People,dc=EXAMPLE,dc=test", "nobody", "nobody@example.test", "cn=ghost,ou=people,dc=example,dc=test"})
			if err != nil {
				t.Fatal(err)
			}
			for _, tc := range []struct{ p, want, err string }{
				{"alice", adAlice, ""},
				{"BOB", adBob, ""},
				{"carol@EXAMPLE.test", adCarol, ""},
				{"cn=Alice, ou=People,dc=EXAMPLE,dc=test", adAlice, ""},
				{"nobody", "", "no user"},
				{"nobody@example.test", "", "no user"},
				{"cn=ghost,ou=people,dc=example,dc=test", "", "no entry"},
			} {
				r := res[tc.p]
				if tc.err != "" {
					if r.Err == nil || !strings.Contains(r.Err.Error(), tc.err) || !strings.Contains(r.Err.Error(), "target.ldap.ad") {
						t.Errorf("Resolve(%q) err = %v, want %q naming the target", tc.p, r.Err, tc.err)
					}
					continue
				}
				if r.Err != nil || r.Member.ID != canon(t, tc.want) {
					t.Errorf("Resolve(%q) = %+v, want %s", tc.p, r, canon(t, tc.want))
				}
			}

			admins := group(tg, "admins", strings.ToUpper(sambatest.AdminsDN)) // another spelling
			tier1 := group(tg, "tier1", sambatest.Tier1DN)
			empty := group(tg, "empty", sambatest.EmptyDN)
			big := group(tg, "big", sambatest.BigDN)
			missing := group(tg, "missing", "CN=Missing,OU=Groups,DC=example,DC=test")
			before := p.Ops()
			obs, err := p.Read(ctx, []*config.Group{admins, tier1, empty, big, missing})
			if err != nil {
				t.Fatal(err)
			}
			if ops := p.Ops() - before; ops != 1 {
				t.Errorf("reading 5 groups (one of %d members) took %d round trips, want 1", sambatest.BigSize, ops)
			}
			for _, tc := range []struct {
				g    *config.Group
				want []string
			}{
				{admins, []string{canon(t, adAlice)}},
				{tier1, []string{canon(t, sambatest.Tier2DN)}},
				{empty, nil},
			} {
				o := obs[tc.g.Addr]
				if got := ids(o.Members); o.Err != nil || !slices.Equal(got, tc.want) {
					t.Errorf("%s = %v %v, want %v", tc.g.Addr, got, o.Err, tc.want)
				}
			}
			if o := obs[big.Addr]; o.Err != nil || len(o.Members) != sambatest.BigSize {
				t.Errorf("big: %d members, err %v; want %d", len(o.Members), o.Err, sambatest.BigSize)
			}
			if o := obs[missing.Addr]; o.Err == nil {
				t.Error("a missing group must carry an error")
			}
		})
	}

	t.Run("ambiguous with user_filter", func(t *testing.T) {
		// twin1 and twin2 share displayName "twin".
		p := open(t, adTarget(dc, func(c *config.LDAPTarget) { c.UserFilter = "(displayName=%s)" }))
		res, err := p.Resolve(ctx, []string{"twin", "*"})
		if err != nil {
			t.Fatal(err)
		}
		if r := res["twin"]; r.Err == nil || !strings.Contains(r.Err.Error(), "ambiguous") {
			t.Errorf("twin = %+v, want ambiguous", r)
		}
		if r := res["*"]; r.Err == nil {
			t.Errorf("a * principal must match nothing, got %s", r.Member.ID)
		}
	})

	t.Run("nested eligibility", func(t *testing.T) {
		p := open(t, adTarget(dc, nil))
		for _, tc := range []struct {
			who  string
			want map[string]bool
		}{
			{"carol", map[string]bool{sambatest.Tier1DN: true, sambatest.Tier2DN: true, sambatest.AdminsDN: false}},
			{"alice@example.test", map[string]bool{sambatest.Tier1DN: false, sambatest.Tier2DN: false, sambatest.AdminsDN: true}},
		} {
			before := p.Ops()
			got, err := p.InGroups(ctx, tc.who, []string{sambatest.Tier1DN, sambatest.Tier2DN, sambatest.AdminsDN})
			if err != nil {
				t.Fatal(err)
			}
			// Resolve the principal, then one search for all three groups.
			if ops := p.Ops() - before; ops != 2 {
				t.Errorf("InGroups took %d round trips, want 2", ops)
			}
			for g, w := range tc.want {
				if got[g] != w {
					t.Errorf("InGroups(%s)[%s] = %v, want %v (carol is in Tier1 only through Tier2)", tc.who, g, got[g], w)
				}
			}
		}
		if _, err := p.InGroups(ctx, "nobody", []string{sambatest.Tier1DN}); err == nil {
			t.Error("InGroups of an unknown principal must fail")
		}
	})
}

// Ranged retrieval continuation with explicit windows: Samba honours
// member;range=LO-HI, so step = 100 makes the provider walk 16 windows.
func TestSambaRangedRetrieval(t *testing.T) {
	dc := sambatest.Start(t)
	ctx := context.Background()
	want := dc.Values(t, sambatest.BigDN, "member")
	slices.Sort(want)
	for _, tc := range []struct {
		step    int
		maxOps  int64
		minOps  int64
		explain string
	}{
		{0, 1, 1, "Samba returns all values of a plain member request"},
		{100, 1 + 16, 1 + 15, "one search (window 0-99) then one base read per further window"},
		{700, 1 + 3, 1 + 2, "windows 0-699, 700-1399, 1400-2099"},
	} {
		p := open(t, adTarget(dc, nil))
		p.step = tc.step
		before := p.Ops()
		obs, err := p.Read(ctx, []*config.Group{group(adTarget(dc, nil), "big", sambatest.BigDN)})
		if err != nil {
			t.Fatal(err)
		}
		ops := p.Ops() - before
		t.Logf("step %d: %d members in %d round trips", tc.step, len(obs["group.big"].Members), ops)
		o := obs["group.big"]
		if o.Err != nil {
			t.Fatal(o.Err)
		}
		var got []string
		for _, m := range o.Members {
			got = append(got, m.Name)
		}
		slices.Sort(got)
		if !slices.Equal(got, want) {
			t.Errorf("step %d: read %d members, want the server's %d (duplicates or gaps)", tc.step, len(got), len(want))
		}
		if ops < tc.minOps || ops > tc.maxOps {
			t.Errorf("step %d: %d round trips, want %d-%d (%s)", tc.step, ops, tc.minOps, tc.maxOps, tc.explain)
		}
	}
}

func TestSambaApply(t *testing.T) {
	dc := sambatest.Start(t)
	ctx := context.Background()
	tg := adTarget(dc, nil)
	p := open(t, tg)
	res, err := p.Resolve(ctx, []string{"alice", "bob", "carol", "dave"})
	if err != nil {
		t.Fatal(err)
	}
	m := func(n string) providers.Member { return res[n].Member }
	admins := group(tg, "admins", sambatest.AdminsDN)
	empty := group(tg, "empty", sambatest.EmptyDN)
	tier2 := group(tg, "tier2", sambatest.Tier2DN)

	before := p.Ops()
	outs, err := p.Apply(ctx, []providers.GroupChange{
		{Group: admins, Changes: []providers.MemberChange{
			{Action: providers.Add, Member: m("bob")},
			{Action: providers.Add, Member: m("alice")},    // already there
			{Action: providers.Remove, Member: m("carol")}, // not there
		}},
		{Group: empty, Changes: []providers.MemberChange{{Action: providers.Add, Member: m("dave")}}},
		{Group: tier2, Changes: []providers.MemberChange{
			{Action: providers.Add, Member: providers.Member{ID: "cn=ghost,ou=people,dc=example,dc=test", Name: "CN=Ghost,OU=People,DC=example,DC=test"}},
		}},
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []providers.Status{providers.Done, providers.Already, providers.Already, providers.Done, providers.Failed}
	for i, o := range outs {
		if o.Status != want[i] {
			t.Errorf("outcome %d (%s %s in %s) = %s %v, want %s", i, o.Change.Action, o.Change.Member.ID, o.Group, o.Status, o.Err, want[i])
		}
	}
	// A member DN that does not exist: Samba answers 32; the error names
	// the group and the target.
	if e := outs[4].Err; e == nil || !strings.Contains(e.Error(), "target.ldap.ad") || !strings.Contains(e.Error(), "Tier2") {
		t.Errorf("failed add error = %v, want one naming the group and target", e)
	}
	// Three changed groups: one batched read for all, one Modify each.
	if ops := p.Ops() - before; ops != 4 {
		t.Errorf("apply took %d round trips, want 4", ops)
	}
	if got := len(dc.Values(t, sambatest.AdminsDN, "member")); got != 2 {
		t.Errorf("Admins has %d members, want alice and bob", got)
	}
	if got := dc.Values(t, sambatest.Tier2DN, "member"); len(got) != 1 {
		t.Errorf("Tier2 changed after a failed add: %v", got)
	}

	// AD groups may be empty: removing the last members is allowed and
	// needs no placeholder.
	outs, err = p.Apply(ctx, []providers.GroupChange{{Group: admins, Changes: []providers.MemberChange{
		{Action: providers.Remove, Member: m("alice")}, {Action: providers.Remove, Member: m("bob")},
	}}})
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range outs {
		if o.Status != providers.Done {
			t.Errorf("remove %s = %s %v, want done", o.Change.Member.ID, o.Status, o.Err)
		}
	}
	if got := dc.Values(t, sambatest.AdminsDN, "member"); len(got) != 0 {
		t.Errorf("Admins = %v, want empty", got)
	}
}

// Samba answers 68 to an add of a present member and 53 to a delete of an
// absent one (OpenLDAP: 20 and 16). The member-by-member path must see them
// as "already so", and the whole-Modify path must fall back to it when
// someone changed the group between the provider's read and its write.
func TestSambaAlreadyCodes(t *testing.T) {
	dc := sambatest.Start(t)
	ctx := context.Background()
	tg := adTarget(dc, nil)
	p := open(t, tg)
	ge := &groupEntry{dn: sambatest.AdminsDN, shape: shape{"group", "member"}}
	for _, tc := range []struct {
		name string
		v    string
		add  bool
		want providers.Status
	}{
		{"add a member already there (68)", adAlice, true, providers.Already},
		{"remove a non-member (53)", adCarol, false, providers.Already},
		{"add a new member", adBob, true, providers.Done},
		{"add him again (68)", adBob, true, providers.Already},
		{"remove him", adBob, false, providers.Done},
		{"remove him again (53)", adBob, false, providers.Already},
	} {
		st, err := p.one(ctx, ge, tc.v, tc.add)
		if st != tc.want || err != nil {
			t.Errorf("%s: %s %v, want %s", tc.name, st, err, tc.want)
		}
	}

	// Race: the provider read Admins = {alice}; before its Modify, someone
	// adds bob and removes alice by hand. The combined Modify (add bob,
	// remove alice, add carol) then fails whole with 68, and the retry
	// must record bob and alice as already so and still add carol.
	admins := group(tg, "admins", sambatest.AdminsDN)
	racy := &racyTarget{target: p, before: func() {
		dc.Modify(t, sambatest.AdminsDN, []string{adBob}, []string{adAlice})
	}}
	outs := racy.apply(ctx, providers.GroupChange{Group: admins, Changes: []providers.MemberChange{
		{Action: providers.Add, Member: providers.Member{ID: canon(t, adBob), Name: adBob}},
		{Action: providers.Remove, Member: providers.Member{ID: canon(t, adAlice), Name: adAlice}},
		{Action: providers.Add, Member: providers.Member{ID: canon(t, adCarol), Name: adCarol}},
	}})
	want := []providers.Status{providers.Already, providers.Already, providers.Done}
	for i, o := range outs {
		if o.Status != want[i] || o.Err != nil {
			t.Errorf("racy outcome %d (%s %s) = %s %v, want %s", i, o.Change.Action, o.Change.Member.ID, o.Status, o.Err, want[i])
		}
	}
	got := dc.Values(t, sambatest.AdminsDN, "member")
	var gotIDs []string
	for _, v := range got {
		gotIDs = append(gotIDs, canon(t, v))
	}
	slices.Sort(gotIDs)
	wantIDs := []string{canon(t, adBob), canon(t, adCarol)}
	slices.Sort(wantIDs)
	if !slices.Equal(gotIDs, wantIDs) {
		t.Errorf("Admins = %v, want bob and carol", got)
	}
}

// racyTarget runs Apply with a hook between its read and its Modify,
// by wrapping the semaphore-bounded modify through a one-shot hook.
type racyTarget struct {
	target *target
	before func()
}

func (r *racyTarget) apply(ctx context.Context, gc providers.GroupChange) []providers.Outcome {
	r.target.beforeModify = func() {
		r.target.beforeModify = nil
		r.before()
	}
	defer func() { r.target.beforeModify = nil }()
	outs, err := r.target.Apply(ctx, []providers.GroupChange{gc})
	if err != nil {
		panic(err) // Apply errs only when nothing could be attempted
	}
	return outs
}

func TestSambaBindErrors(t *testing.T) {
	dc := sambatest.Start(t)
	ctx := context.Background()
	no := false
	const badPW = "Wrong-Secret-8642!"
	for _, tc := range []struct {
		name string
		mod  func(*config.LDAPTarget)
		want []string
	}{
		{"bad password over ldaps", func(c *config.LDAPTarget) { c.Password = config.NewSecret(badPW) },
			[]string{"target.ldap.ad", "bind", "invalid credentials"}},
		{"bad password over starttls", func(c *config.LDAPTarget) { startTLS(dc)(c); c.Password = config.NewSecret(badPW) },
			[]string{"target.ldap.ad", "bind", "invalid credentials"}},
		{"simple bind over plain ldap is refused", func(c *config.LDAPTarget) {
			c.URL, c.StartTLS, c.InsecurePlaintext, c.CAFile = dc.URL, &no, true, ""
		}, []string{"target.ldap.ad", "bind", "encrypted connection", "ldaps://"}},
		{"ldaps without ca_file", func(c *config.LDAPTarget) { c.CAFile = "" },
			[]string{"target.ldap.ad", "ca_file"}},
		{"unknown bind UPN", func(c *config.LDAPTarget) { c.BindDN = "nobody@example.test" },
			[]string{"target.ldap.ad", "nobody@example.test", "invalid credentials"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tg := adTarget(dc, tc.mod)
			p, err := Open(ctx, tg, providers.Options{})
			if err == nil {
				p.Close()
				t.Fatal("Open succeeded")
			}
			msg := err.Error()
			t.Log(msg)
			for _, w := range tc.want {
				if !strings.Contains(msg, w) {
					t.Errorf("error %q lacks %q", msg, w)
				}
			}
			if pw := tg.LDAP.Password.Reveal(); strings.Contains(msg, pw) {
				t.Errorf("error leaks the password: %q", msg)
			}
		})
	}
}

// Hostile principal and group names against AD's filters (sAMAccountName,
// userPrincipalName, distinguishedName): nothing resolves, no group is
// found, and no member attribute anywhere changes.
func TestSambaHostileNames(t *testing.T) {
	dc := sambatest.Start(t)
	ctx := context.Background()
	tg := adTarget(dc, nil)
	p := open(t, tg)
	dump := func() []string {
		c := dc.Conn(t)
		res, err := c.SearchWithPaging(goldap.NewSearchRequest(sambatest.BaseDN, goldap.ScopeWholeSubtree, goldap.NeverDerefAliases, 0, 0, false,
			"(|(objectClass=group)(objectClass=user))", []string{"member", "sAMAccountName"}, nil), 500)
		if err != nil {
			t.Fatal(err)
		}
		var lines []string
		for _, e := range res.Entries {
			for _, a := range e.Attributes {
				for _, v := range a.Values {
					lines = append(lines, e.DN+"|"+a.Name+"="+v)
				}
			}
		}
		slices.Sort(lines)
		return lines
	}
	hostile := []string{
		"*", "a*", "*@example.test", "alice@*", "*)(sAMAccountName=*", "alice)(|(sAMAccountName=*", `\2a`, "alice\x00", "(", ")", `\`,
		"CN=*,OU=People,DC=example,DC=test", "CN=Admins,OU=Groups,DC=example,DC=test)(objectClass=*",
		`alice,OU=People`, `x+y`, `"quoted"`, "<SID=S-1-5-32-544>", "semi;colon", "eq=ual", " alice", "alice ",
		"ålice-ünïcødé@example.test", strings.Repeat("A", 10*1024),
	}
	before := dump()
	res, err := p.Resolve(ctx, hostile)
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range hostile {
		if r := res[h]; r.Err == nil {
			t.Errorf("hostile principal %q resolved to %s", trunc(h), r.Member.ID)
		}
	}
	var gs []*config.Group
	for i, h := range hostile {
		gs = append(gs, group(tg, fmt.Sprint("d", i), "CN="+h+",OU=Groups,DC=example,DC=test"))
	}
	obs, err := p.Read(ctx, gs)
	if err != nil {
		t.Fatal(err)
	}
	for _, g := range gs {
		if o := obs[g.Addr]; o.Err == nil {
			t.Errorf("hostile group %q was found: %v", trunc(g.DN), ids(o.Members))
		}
	}
	var changes []providers.GroupChange
	for _, g := range gs[:4] {
		changes = append(changes, providers.GroupChange{Group: g, Changes: []providers.MemberChange{{Action: providers.Add, Member: providers.Member{ID: canon(t, adAlice), Name: adAlice}}}})
	}
	outs, _ := p.Apply(ctx, changes)
	for _, o := range outs {
		if o.Status != providers.Failed {
			t.Errorf("apply to hostile group %s = %s", o.Group, o.Status)
		}
	}
	if after := dump(); !slices.Equal(before, after) {
		t.Errorf("the directory changed (%d lines before, %d after)", len(before), len(after))
	}
}
