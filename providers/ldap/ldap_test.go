package ldap

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/jitform/jitform/config"
	"github.com/jitform/jitform/internal/dn"
	"github.com/jitform/jitform/internal/testbed/slapdtest"
	"github.com/jitform/jitform/providers"
)

const seed = `dn: uid=alice,ou=people,dc=example,dc=org
objectClass: inetOrgPerson
uid: alice
cn: Alice
sn: A

dn: uid=bob,ou=people,dc=example,dc=org
objectClass: inetOrgPerson
uid: bob
cn: Bob
sn: B

dn: uid=carol,ou=people,dc=example,dc=org
objectClass: inetOrgPerson
uid: carol
cn: Carol
sn: C

dn: uid=twin,ou=people,dc=example,dc=org
objectClass: inetOrgPerson
uid: twin
cn: Twin
sn: T

dn: cn=twin,ou=groups,dc=example,dc=org
objectClass: inetOrgPerson
uid: twin
cn: twin
sn: T2

dn: cn=admins,ou=groups,dc=example,dc=org
objectClass: groupOfNames
cn: admins
member: uid=alice,ou=people,dc=example,dc=org

dn: cn=ops,ou=groups,dc=example,dc=org
objectClass: groupOfUniqueNames
cn: ops
uniqueMember: uid=bob,ou=people,dc=example,dc=org

dn: cn=wheel,ou=groups,dc=example,dc=org
objectClass: posixGroup
cn: wheel
gidNumber: 10
memberUid: bob
memberUid: ghost

dn: cn=tier1,ou=groups,dc=example,dc=org
objectClass: groupOfNames
cn: tier1
member: uid=carol,ou=people,dc=example,dc=org
`

func ldapTarget(s *slapdtest.Server, mod func(*config.LDAPTarget)) *config.Target {
	yes := true
	c := &config.LDAPTarget{
		URL: s.URL, BindDN: slapdtest.RootDN, Password: config.NewSecret(slapdtest.RootPW),
		BaseDN: slapdtest.BaseDN, Flavor: config.FlavorOpenLDAP, CAFile: s.CAFile, StartTLS: &yes,
	}
	if mod != nil {
		mod(c)
	}
	return &config.Target{Kind: "ldap", Name: "corp", Addr: "target.ldap.corp", LDAP: c}
}

func open(t *testing.T, tg *config.Target) *target {
	t.Helper()
	p, err := Open(context.Background(), tg, providers.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p.(*target)
}

func group(tg *config.Target, name, groupDN string) *config.Group {
	return &config.Group{Name: name, Addr: "group." + name, BaseAddr: "group." + name, Target: tg, DN: groupDN}
}

func canon(t *testing.T, s string) string {
	t.Helper()
	c, err := dn.Canonical(s)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func ids(ms []providers.Member) []string {
	var out []string
	for _, m := range ms {
		out = append(out, m.ID)
	}
	slices.Sort(out)
	return out
}

func TestResolveReadApply(t *testing.T) {
	s := slapdtest.Start(t, seed)
	tg := ldapTarget(s, nil)
	p := open(t, tg)
	ctx := context.Background()
	alice, bob, carol := canon(t, "uid=alice,ou=people,dc=example,dc=org"), canon(t, "uid=bob,ou=people,dc=example,dc=org"), canon(t, "uid=carol,ou=people,dc=example,dc=org")

	res, err := p.Resolve(ctx, []string{"alice", "BOB", "uid=Carol, ou=People,dc=example,dc=org", "nobody", "twin", "uid=ghost,ou=people,dc=example,dc=org"})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		p, want, err string
	}{
		{"alice", alice, ""}, {"BOB", bob, ""}, {"uid=Carol, ou=People,dc=example,dc=org", carol, ""},
		{"nobody", "", "no user"}, {"twin", "", "ambiguous"}, {"uid=ghost,ou=people,dc=example,dc=org", "", "no entry"},
	} {
		r := res[tc.p]
		if tc.err != "" {
			if r.Err == nil || !strings.Contains(r.Err.Error(), tc.err) {
				t.Errorf("Resolve(%q) err = %v, want %q", tc.p, r.Err, tc.err)
			}
			continue
		}
		if r.Err != nil || r.Member.ID != tc.want {
			t.Errorf("Resolve(%q) = %+v, want %s", tc.p, r, tc.want)
		}
	}

	admins := group(tg, "admins", "CN=Admins,OU=Groups,DC=example,DC=org")
	ops := group(tg, "ops", "cn=ops,ou=groups,dc=example,dc=org")
	wheel := &config.Group{Name: "wheel", Addr: "group.wheel", Target: tg, GroupName: "wheel"}
	missing := group(tg, "missing", "cn=missing,ou=groups,dc=example,dc=org")
	obs, err := p.Read(ctx, []*config.Group{admins, ops, wheel, missing})
	if err != nil {
		t.Fatal(err)
	}
	if got := ids(obs["group.admins"].Members); !slices.Equal(got, []string{alice}) {
		t.Errorf("admins = %v", got)
	}
	if got := ids(obs["group.ops"].Members); !slices.Equal(got, []string{bob}) {
		t.Errorf("ops = %v", got)
	}
	if got := ids(obs["group.wheel"].Members); !slices.Equal(got, []string{"ghost", bob}) {
		t.Errorf("wheel = %v (memberUid bob maps to his DN, ghost keeps its uid)", got)
	}
	if obs["group.missing"].Err == nil {
		t.Error("a missing group must carry an error")
	}

	m := func(id, name string) providers.Member { return providers.Member{ID: id, Name: name} }
	outs, err := p.Apply(ctx, []providers.GroupChange{
		{Group: admins, Changes: []providers.MemberChange{
			{Action: providers.Add, Member: res["BOB"].Member},
			{Action: providers.Add, Member: res["alice"].Member}, // already there
		}},
		{Group: wheel, Changes: []providers.MemberChange{
			{Action: providers.Add, Member: res["alice"].Member},
			{Action: providers.Remove, Member: m("ghost", "memberUid=ghost")},
		}},
		{Group: ops, Changes: []providers.MemberChange{
			{Action: providers.Remove, Member: m(carol, "uid=carol,ou=people,dc=example,dc=org")}, // not there
			{Action: providers.Add, Member: res["uid=Carol, ou=People,dc=example,dc=org"].Member},
		}},
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []providers.Status{providers.Done, providers.Already, providers.Done, providers.Done, providers.Already, providers.Done}
	for i, o := range outs {
		if o.Status != want[i] || (o.Status == providers.Failed) {
			t.Errorf("outcome %d (%s %s in %s) = %s %v, want %s", i, o.Change.Action, o.Change.Member.ID, o.Group, o.Status, o.Err, want[i])
		}
	}
	if got := s.Values(t, "cn=admins,ou=groups,dc=example,dc=org", "member"); len(got) != 2 {
		t.Errorf("admins members on the server = %v", got)
	}
	if got := s.Values(t, "cn=wheel,ou=groups,dc=example,dc=org", "memberUid"); !slices.Equal(got, []string{"bob", "alice"}) {
		t.Errorf("wheel memberUid on the server = %v", got)
	}
}

// A Modify fails whole on "already so": the provider must find out, change
// by change, which were already done, and still make the rest.
func TestAlreadyCodesFallBackPerMember(t *testing.T) {
	s := slapdtest.Start(t, seed)
	tg := ldapTarget(s, nil)
	p := open(t, tg)
	ctx := context.Background()
	admins := group(tg, "admins", "cn=admins,ou=groups,dc=example,dc=org")
	bob := providers.Member{ID: canon(t, "uid=bob,ou=people,dc=example,dc=org"), Name: "uid=bob,ou=people,dc=example,dc=org"}
	carol := providers.Member{ID: canon(t, "uid=carol,ou=people,dc=example,dc=org"), Name: "uid=carol,ou=people,dc=example,dc=org"}
	// Someone adds bob between our read and our write: simulate by adding
	// him on the server, then asking the provider's one-by-one path.
	ge := &groupEntry{dn: "cn=admins,ou=groups,dc=example,dc=org", shape: shape{"groupOfNames", "member"}}
	if st, err := p.one(ctx, ge, bob.Name, true); st != providers.Done || err != nil {
		t.Fatalf("first add = %s %v", st, err)
	}
	if st, err := p.one(ctx, ge, bob.Name, true); st != providers.Already || err != nil {
		t.Errorf("second add = %s %v, want already (result 20)", st, err)
	}
	if st, err := p.one(ctx, ge, carol.Name, false); st != providers.Already || err != nil {
		t.Errorf("remove of a non-member = %s %v, want already (result 16)", st, err)
	}
	_ = admins
}

func TestLastMemberOfGroupOfNames(t *testing.T) {
	s := slapdtest.Start(t, seed)
	tg := ldapTarget(s, nil)
	p := open(t, tg)
	ctx := context.Background()
	alice := providers.Member{ID: canon(t, "uid=alice,ou=people,dc=example,dc=org"), Name: "uid=alice,ou=people,dc=example,dc=org"}
	admins := group(tg, "admins", "cn=admins,ou=groups,dc=example,dc=org")

	outs, _ := p.Apply(ctx, []providers.GroupChange{{Group: admins, Changes: []providers.MemberChange{{Action: providers.Remove, Member: alice}}}})
	if outs[0].Status != providers.Failed || !strings.Contains(outs[0].Err.Error(), "placeholder") {
		t.Fatalf("removing the last member = %s %v, want a refusal naming placeholder", outs[0].Status, outs[0].Err)
	}
	if got := s.Values(t, "cn=admins,ou=groups,dc=example,dc=org", "member"); len(got) != 1 {
		t.Fatalf("the group changed after a refusal: %v", got)
	}

	admins.Attributes.Placeholder = "cn=nobody,dc=example,dc=org"
	outs, _ = p.Apply(ctx, []providers.GroupChange{{Group: admins, Changes: []providers.MemberChange{{Action: providers.Remove, Member: alice}}}})
	if outs[0].Status != providers.Done {
		t.Fatalf("with a placeholder = %s %v", outs[0].Status, outs[0].Err)
	}
	if got := s.Values(t, "cn=admins,ou=groups,dc=example,dc=org", "member"); !slices.Equal(got, []string{"cn=nobody,dc=example,dc=org"}) {
		t.Fatalf("members = %v, want only the placeholder", got)
	}
	// The placeholder is not a member to plan for: Read hides it (written
	// in another case here), so an exclusive group never removes it, and it
	// stays when members come back.
	admins.Attributes.Placeholder = "CN=Nobody, DC=example,DC=org"
	read := func() []string {
		obs, err := p.Read(ctx, []*config.Group{admins})
		if err != nil || obs[admins.Addr].Err != nil {
			t.Fatal(err, obs[admins.Addr].Err)
		}
		return ids(obs[admins.Addr].Members)
	}
	if got := read(); len(got) != 0 {
		t.Errorf("Read with only the placeholder = %v, want no members", got)
	}
	outs, _ = p.Apply(ctx, []providers.GroupChange{{Group: admins, Changes: []providers.MemberChange{{Action: providers.Add, Member: alice}}}})
	if outs[0].Status != providers.Done {
		t.Fatalf("add after the placeholder = %s %v", outs[0].Status, outs[0].Err)
	}
	if got := read(); !slices.Equal(got, []string{alice.ID}) {
		t.Errorf("Read = %v, want alice only", got)
	}
	if got := s.Values(t, "cn=admins,ou=groups,dc=example,dc=org", "member"); len(got) != 2 {
		t.Errorf("members on the server = %v, want the placeholder and alice", got)
	}
	// With the placeholder still there, alice is not the last member.
	outs, _ = p.Apply(ctx, []providers.GroupChange{{Group: admins, Changes: []providers.MemberChange{{Action: providers.Remove, Member: alice}}}})
	if outs[0].Status != providers.Done {
		t.Fatalf("remove beside the placeholder = %s %v", outs[0].Status, outs[0].Err)
	}
}

func TestConnectionSecurityAndErrors(t *testing.T) {
	s := slapdtest.Start(t, seed)
	ctx := context.Background()
	no := false
	cases := []struct {
		name    string
		mod     func(*config.LDAPTarget)
		wantErr string
	}{
		{"starttls with ca_file", nil, ""},
		{"ldaps with ca_file", func(c *config.LDAPTarget) { c.URL = s.LDAPSURL; c.StartTLS = nil }, ""},
		{"ldaps without the CA is refused", func(c *config.LDAPTarget) { c.URL = s.LDAPSURL; c.StartTLS = nil; c.CAFile = "" }, "ca_file"},
		{"starttls without the CA is refused", func(c *config.LDAPTarget) { c.CAFile = "" }, "certificate"},
		{"plaintext when asked", func(c *config.LDAPTarget) { c.StartTLS = &no; c.InsecurePlaintext = true; c.CAFile = "" }, ""},
		{"bad password", func(c *config.LDAPTarget) { c.Password = config.NewSecret("wrong-Secret-9731") }, "invalid credentials"},
		{"unreachable", func(c *config.LDAPTarget) { c.URL = "ldap://127.0.0.1:1" }, "check the host"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tg := ldapTarget(s, tc.mod)
			p, err := Open(ctx, tg, providers.Options{})
			if tc.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				defer p.Close()
				if _, err := p.Resolve(ctx, []string{"alice"}); err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil {
				p.Close()
				t.Fatalf("Open succeeded, want an error with %q", tc.wantErr)
			}
			msg := err.Error()
			if !strings.Contains(msg, tc.wantErr) || !strings.Contains(msg, "target.ldap.corp") {
				t.Errorf("error %q should name the target and contain %q", msg, tc.wantErr)
			}
			if pw := tg.LDAP.Password.Reveal(); strings.Contains(msg, pw) {
				t.Errorf("error leaks the password: %q", msg)
			}
		})
	}
}

// G groups must not cost G round trips: one search per 100 groups.
func TestReadIsBatched(t *testing.T) {
	var b strings.Builder
	const n = 250
	for i := 0; i < n; i++ {
		fmt.Fprintf(&b, "dn: cn=g%d,ou=groups,dc=example,dc=org\nobjectClass: groupOfNames\ncn: g%d\nmember: uid=alice,ou=people,dc=example,dc=org\n\n", i, i)
	}
	s := slapdtest.Start(t, seed+"\n"+b.String())
	tg := ldapTarget(s, nil)
	p := open(t, tg)
	var gs []*config.Group
	for i := 0; i < n; i++ {
		gs = append(gs, group(tg, fmt.Sprintf("g%d", i), fmt.Sprintf("cn=g%d,ou=groups,dc=example,dc=org", i)))
	}
	before := p.Ops()
	obs, err := p.Read(context.Background(), gs)
	if err != nil {
		t.Fatal(err)
	}
	for _, g := range gs {
		if o := obs[g.Addr]; o.Err != nil || len(o.Members) != 1 {
			t.Fatalf("%s = %+v", g.Addr, o)
		}
	}
	if ops := p.Ops() - before; ops > 3 {
		t.Errorf("reading %d groups took %d round trips, want at most 3 (one per 100)", n, ops)
	}
}

// OpenLDAP eligibility is direct membership in any of the three shapes;
// groups under base_dn are checked 100 per search.
func TestEligibilityByDirectoryGroup(t *testing.T) {
	var b strings.Builder
	const n = 150
	for i := 0; i < n; i++ {
		fmt.Fprintf(&b, "dn: cn=e%d,ou=groups,dc=example,dc=org\nobjectClass: groupOfNames\ncn: e%d\nmember: uid=alice,ou=people,dc=example,dc=org\n", i, i)
		if i%50 == 7 {
			b.WriteString("member: uid=bob,ou=people,dc=example,dc=org\n")
		}
		b.WriteString("\n")
	}
	s := slapdtest.Start(t, seed+"\n"+b.String())
	p := open(t, ldapTarget(s, nil))
	ctx := context.Background()
	const (
		tier1  = "cn=tier1,ou=groups,dc=example,dc=org"
		admins = "CN=Admins, OU=Groups,DC=example,DC=org"
		ops    = "cn=ops,ou=groups,dc=example,dc=org"   // groupOfUniqueNames: bob
		wheel  = "cn=wheel,ou=groups,dc=example,dc=org" // posixGroup: memberUid bob
		other  = "cn=tier1,dc=elsewhere"                // outside base_dn
		absent = "cn=absent,ou=groups,dc=example,dc=org"
	)
	var many []string
	for i := 0; i < n; i++ {
		many = append(many, fmt.Sprintf("cn=e%d,ou=groups,dc=example,dc=org", i))
	}
	for _, tc := range []struct {
		who    string
		groups []string
		want   []string // the groups the principal is in
		maxOps int64
	}{
		{"carol", []string{tier1, admins, ops, wheel, absent}, []string{tier1}, 2},
		{"bob", []string{tier1, admins, ops, wheel, other}, []string{ops, wheel}, 3},
		{"alice", []string{admins, tier1}, []string{admins}, 2},
		{"bob", many, []string{many[7], many[57], many[107]}, 3},
	} {
		before := p.Ops()
		got, err := p.InGroups(ctx, tc.who, tc.groups)
		if err != nil {
			t.Fatal(err)
		}
		for _, g := range tc.groups {
			if w := slices.Contains(tc.want, g); got[g] != w {
				t.Errorf("InGroups(%s)[%s] = %v, want %v", tc.who, g, got[g], w)
			}
		}
		if len(got) != len(tc.groups) {
			t.Errorf("InGroups(%s) answered %d groups, asked %d", tc.who, len(got), len(tc.groups))
		}
		if ops := p.Ops() - before; ops > tc.maxOps {
			t.Errorf("InGroups(%s, %d groups) took %d round trips, want at most %d", tc.who, len(tc.groups), ops, tc.maxOps)
		}
	}
	if _, err := p.InGroups(ctx, "alice", []string{"not a dn"}); err == nil {
		t.Error("InGroups with group \"not a dn\": want an error")
	}
	// A DN whose value carries filter syntax is just a name: escaped, it
	// matches no group.
	hostile := []string{`cn=x)(member=*,ou=groups,dc=example,dc=org`, `cn=*,ou=groups,dc=example,dc=org`, `cn=admins\29(cn=*,ou=groups,dc=example,dc=org`}
	got, err := p.InGroups(ctx, "alice", hostile)
	if err != nil {
		t.Fatal(err)
	}
	for _, g := range hostile {
		if got[g] {
			t.Errorf("InGroups(alice)[%q] = true", g)
		}
	}
	if _, err := p.InGroups(ctx, "nobody", []string{tier1}); err == nil {
		t.Error("InGroups of an unknown principal must fail")
	}
}

// Hostile names must match nothing they should not, and change nothing.
func TestHostileNames(t *testing.T) {
	s := slapdtest.Start(t, seed)
	tg := ldapTarget(s, nil)
	p := open(t, tg)
	ctx := context.Background()
	hostile := []string{
		"*", "a*", "*)(uid=*", "alice)(|(uid=*", `\2a`, "alice\x00", "(", ")", `\`,
		"uid=*,ou=people,dc=example,dc=org", "cn=admins,ou=groups,dc=example,dc=org)(objectClass=*",
		`bob,ou=people`, `x+y`, `"quoted"`, "<angle>", "semi;colon", "eq=ual", " alice", "alice ",
		"ålice-ünïcødé", strings.Repeat("A", 10*1024),
	}
	before := s.Dump(t)
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
		gs = append(gs, &config.Group{Name: fmt.Sprint("h", i), Addr: fmt.Sprint("group.h", i), Target: tg, GroupName: h})
		gs = append(gs, &config.Group{Name: fmt.Sprint("d", i), Addr: fmt.Sprint("group.d", i), Target: tg, DN: "cn=" + h + ",ou=groups,dc=example,dc=org"})
	}
	obs, err := p.Read(ctx, gs)
	if err != nil {
		t.Fatal(err)
	}
	for _, g := range gs {
		if o := obs[g.Addr]; o.Err == nil {
			t.Errorf("hostile group %s (%q / %q) was found: %v", g.Addr, trunc(g.GroupName), trunc(g.DN), ids(o.Members))
		}
	}
	// The same corpus through a batched user_filter and eligibility.
	pf := open(t, ldapTarget(s, func(c *config.LDAPTarget) { c.UserFilter = "(&(objectClass=inetOrgPerson)(uid=%s))" }))
	res, err = pf.Resolve(ctx, hostile)
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range hostile {
		if r := res[h]; r.Err == nil {
			t.Errorf("hostile principal %q resolved to %s through user_filter", trunc(h), r.Member.ID)
		}
		if _, err := p.InGroups(ctx, h, []string{"cn=admins,ou=groups,dc=example,dc=org"}); err == nil {
			t.Errorf("InGroups of hostile principal %q: want an error", trunc(h))
		}
	}
	var gdns []string
	for _, g := range gs {
		if g.DN != "" && dn.IsDN(g.DN) {
			gdns = append(gdns, g.DN)
		}
	}
	in, err := p.InGroups(ctx, "alice", gdns)
	if err != nil {
		t.Fatal(err)
	}
	for g, ok := range in {
		if ok {
			t.Errorf("alice is in hostile group %q", trunc(g))
		}
	}
	outs, _ := p.Apply(ctx, []providers.GroupChange{{Group: gs[0], Changes: []providers.MemberChange{{Action: providers.Add, Member: providers.Member{ID: "x", Name: "uid=alice,ou=people,dc=example,dc=org"}}}}})
	if outs[0].Status != providers.Failed {
		t.Errorf("apply to a hostile group = %s", outs[0].Status)
	}
	if after := s.Dump(t); !slices.Equal(before, after) {
		t.Error("the directory changed")
	}
}

func trunc(s string) string {
	if len(s) > 40 {
		return s[:40] + "…"
	}
	return s
}

func TestBatchKey(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		tmpl string
		want filterKey
		ok   bool
	}{
		{"(uid=%s)", filterKey{attr: "uid"}, true},
		{"(&(objectClass=inetOrgPerson)(uid=%s))", filterKey{attr: "uid"}, true},
		{"(&(objectClass=person)(&(!(cn=x))(mail=%s@corp.example)))", filterKey{attr: "mail", suffix: "@corp.example"}, true},
		{`(&(objectClass=user)(employeeID=E\2a%s))`, filterKey{attr: "employeeID", prefix: "E*"}, true},
		{"(|(uid=%s)(cn=admin))", filterKey{}, false},       // any entry with cn=admin matches every principal
		{"(!(uid=%s))", filterKey{}, false},                 // a negation matches nearly everything
		{"(&(objectClass=*)(cn=*%s*))", filterKey{}, false}, // a substring
		{"(uidNumber>=%s)", filterKey{}, false},
		{"(uid:caseExactMatch:=%s)", filterKey{}, false},
		{"(uid=%s", filterKey{}, false},
	} {
		got, ok := batchKey(tc.tmpl)
		if ok != tc.ok || got != tc.want {
			t.Errorf("batchKey(%q) = %+v, %v; want %+v, %v", tc.tmpl, got, ok, tc.want, tc.ok)
		}
	}
}

// A user_filter whose principal can be told from its entry resolves in one
// search per 100 principals, like the default; one that cannot costs one
// search each. Both give the same answers.
func TestUserFilterResolution(t *testing.T) {
	s := slapdtest.Start(t, seed)
	ctx := context.Background()
	alice, bob := canon(t, "uid=alice,ou=people,dc=example,dc=org"), canon(t, "uid=bob,ou=people,dc=example,dc=org")
	principals := []string{"alice", "Bob", "nobody", "twin", "*", "alice)(uid=*"}
	for _, tc := range []struct {
		filter, base string
		ops          int64
		twin         string // error for "twin"
	}{
		{"(&(objectClass=inetOrgPerson)(uid=%s))", "", 1, "ambiguous"},
		{"(&(objectClass=inetOrgPerson)(uid=%s))", "ou=people,dc=example,dc=org", 1, ""},
		{"(|(&(objectClass=inetOrgPerson)(uid=%s))(cn=no-such-entry))", "", int64(len(principals)), "ambiguous"},
	} {
		p := open(t, ldapTarget(s, func(c *config.LDAPTarget) { c.UserFilter = tc.filter; c.UserBase = tc.base }))
		before := p.Ops()
		res, err := p.Resolve(ctx, principals)
		if err != nil {
			t.Fatal(err)
		}
		if ops := p.Ops() - before; ops != tc.ops {
			t.Errorf("%s: %d round trips for %d principals, want %d", tc.filter, ops, len(principals), tc.ops)
		}
		if r := res["alice"]; r.Err != nil || r.Member.ID != alice {
			t.Errorf("%s: alice = %+v", tc.filter, r)
		}
		if r := res["Bob"]; r.Err != nil || r.Member.ID != bob {
			t.Errorf("%s: Bob = %+v", tc.filter, r)
		}
		for _, h := range []string{"nobody", "*", "alice)(uid=*"} {
			if r := res[h]; r.Err == nil {
				t.Errorf("%s: %q resolved to %s", tc.filter, h, r.Member.ID)
			}
		}
		r := res["twin"]
		switch {
		case tc.twin == "" && r.Err != nil:
			t.Errorf("%s under %q: twin = %v, want the one under the user base", tc.filter, tc.base, r.Err)
		case tc.twin != "" && (r.Err == nil || !strings.Contains(r.Err.Error(), tc.twin)):
			t.Errorf("%s: twin = %+v, want %q", tc.filter, r, tc.twin)
		}
	}
}
