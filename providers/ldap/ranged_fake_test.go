package ldap

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/jitform/jitform/config"
	"github.com/jitform/jitform/internal/testbed/ldapfake"
	"github.com/jitform/jitform/providers"
)

// Windows cuts a plain "member" at MaxValRange (1,500) and answers
// "member;range=0-1499"; Samba never does (TESTBEDS.md). Against a
// protocol-level fake that truncates like Windows, the provider must follow
// the ranges to the end with no explicit window (step 0), and read every
// member once.
func TestRangedRetrievalWindowsTruncation(t *testing.T) {
	const bindDN, pw = "CN=svc,DC=corp,DC=example", "Fake-Secret-1!"
	mk := func(name string, n int) ldapfake.Entry {
		ms := make([]string, n)
		for i := range ms {
			ms[i] = fmt.Sprintf("CN=u%05d,OU=People,DC=corp,DC=example", i)
		}
		return ldapfake.Entry{DN: "CN=" + name + ",OU=Groups,DC=corp,DC=example", Attrs: map[string][]string{
			"objectClass": {"top", "group"}, "cn": {name}, "member": ms,
		}}
	}
	sizes := []int{0, 1, 1499, 1500, 1501, 3000, 4321}
	var entries []ldapfake.Entry
	for _, n := range sizes {
		entries = append(entries, mk(fmt.Sprintf("g%d", n), n))
	}
	s := ldapfake.Start(t, bindDN, pw, 1500, entries...)
	no := false
	tg := &config.Target{Kind: "ldap", Name: "win", Addr: "target.ldap.win", LDAP: &config.LDAPTarget{
		URL: s.URL, BindDN: bindDN, Password: config.NewSecret(pw), BaseDN: "DC=corp,DC=example",
		Flavor: config.FlavorActiveDirectory, StartTLS: &no, InsecurePlaintext: true,
	}}
	p := open(t, tg)
	var gs []*config.Group
	for _, n := range sizes {
		gs = append(gs, group(tg, fmt.Sprintf("g%d", n), fmt.Sprintf("CN=g%d,OU=Groups,DC=corp,DC=example", n)))
	}
	before := p.Ops()
	obs, err := p.Read(context.Background(), gs)
	if err != nil {
		t.Fatal(err)
	}
	ops := p.Ops() - before
	// One search for all groups, then per group ceil(n/1500)-1 further windows.
	want := int64(1)
	for i, n := range sizes {
		o := obs[gs[i].Addr]
		if o.Err != nil {
			t.Fatalf("%s: %v", gs[i].Addr, o.Err)
		}
		got := ids(o.Members)
		if len(got) != n || len(slices.Compact(slices.Clone(got))) != n {
			t.Errorf("group of %d: read %d members (%d distinct)", n, len(got), len(slices.Compact(slices.Clone(got))))
		}
		if n > 1500 {
			want += int64((n+1499)/1500 - 1)
		}
	}
	if ops != want {
		t.Errorf("%d round trips, want %d", ops, want)
	}
	// The continuation asked for open-ended windows where the last one
	// ended: 1500-*, 3000-*.
	var asked []string
	for _, q := range s.Searches() {
		for _, a := range q.Attrs {
			if strings.HasPrefix(a, "member;") {
				asked = append(asked, a)
			}
		}
	}
	slices.Sort(asked)
	if w := []string{"member;range=1500-*", "member;range=1500-*", "member;range=1500-*", "member;range=3000-*"}; !slices.Equal(asked, w) {
		t.Errorf("continuation requests = %v, want %v", asked, w)
	}

	// Explicit windows against the same fake: step 1000 on 4,321 members.
	p.step = 1000
	mark := len(s.Searches())
	obs, err = p.Read(context.Background(), gs[len(gs)-1:])
	if err != nil {
		t.Fatal(err)
	}
	if got := len(obs[gs[len(gs)-1].Addr].Members); got != 4321 {
		t.Errorf("step 1000: %d members, want 4321", got)
	}
	// Each window asks for step values: 0-999, then 1000-1999 and on.
	asked = nil
	for _, q := range s.Searches()[mark:] {
		for _, a := range q.Attrs {
			if strings.HasPrefix(a, "member;") {
				asked = append(asked, a)
			}
		}
	}
	if w := []string{"member;range=0-999", "member;range=1000-1999", "member;range=2000-2999", "member;range=3000-3999", "member;range=4000-4999"}; !slices.Equal(asked, w) {
		t.Errorf("step 1000: windows asked %v, want %v", asked, w)
	}

	// A bad password is refused by the fake like a real server, and the
	// error names the target without the password.
	bad := *tg
	bl := *tg.LDAP
	bl.Password = config.NewSecret("Wrong-Fake-2!")
	bad.LDAP = &bl
	if _, err := Open(context.Background(), &bad, providers.Options{}); err == nil || !strings.Contains(err.Error(), "target.ldap.win") || strings.Contains(err.Error(), "Wrong-Fake-2!") {
		t.Errorf("bad password: %v", err)
	}
}

// A server that ignores range options (OpenLDAP answers member;range=0-99
// with no attribute at all) must not look like an empty group: the provider
// reads plain member instead.
func TestRangedRetrievalServerIgnoresRanges(t *testing.T) {
	const bindDN, pw = "cn=admin,dc=example,dc=org", "Fake-Secret-3!"
	ms := []string{"uid=a,ou=people,dc=example,dc=org", "uid=b,ou=people,dc=example,dc=org"}
	s := ldapfake.Start(t, bindDN, pw, -1, ldapfake.Entry{DN: "cn=g,ou=groups,dc=example,dc=org", Attrs: map[string][]string{
		"objectClass": {"group"}, "member": ms,
	}})
	no := false
	tg := &config.Target{Kind: "ldap", Name: "x", Addr: "target.ldap.x", LDAP: &config.LDAPTarget{
		URL: s.URL, BindDN: bindDN, Password: config.NewSecret(pw), BaseDN: "dc=example,dc=org",
		Flavor: config.FlavorActiveDirectory, StartTLS: &no, InsecurePlaintext: true,
	}}
	p := open(t, tg)
	p.step = 100
	before := p.Ops()
	obs, err := p.Read(context.Background(), []*config.Group{group(tg, "g", "cn=g,ou=groups,dc=example,dc=org")})
	if err != nil {
		t.Fatal(err)
	}
	if got := len(obs["group.g"].Members); got != 2 || obs["group.g"].Err != nil {
		t.Errorf("read %d members (%v), want 2 via the plain member fallback", got, obs["group.g"].Err)
	}
	if ops := p.Ops() - before; ops != 2 {
		t.Errorf("%d round trips, want 2 (the ranged search, then plain member)", ops)
	}
}

// A server whose window holds one value answers member;range=0-0 first:
// that is a window, not the end; the read follows it to the last member.
func TestRangedRetrievalOfOneValueWindows(t *testing.T) {
	const bindDN, pw = "CN=svc,DC=corp,DC=example", "Fake-Secret-1!"
	ms := []string{"CN=a,OU=People,DC=corp,DC=example", "CN=b,OU=People,DC=corp,DC=example", "CN=c,OU=People,DC=corp,DC=example"}
	s := ldapfake.Start(t, bindDN, pw, 1, ldapfake.Entry{DN: "CN=g,OU=Groups,DC=corp,DC=example", Attrs: map[string][]string{
		"objectClass": {"group"}, "cn": {"g"}, "member": ms,
	}})
	no := false
	tg := &config.Target{Kind: "ldap", Name: "win", Addr: "target.ldap.win", LDAP: &config.LDAPTarget{
		URL: s.URL, BindDN: bindDN, Password: config.NewSecret(pw), BaseDN: "DC=corp,DC=example",
		Flavor: config.FlavorActiveDirectory, StartTLS: &no, InsecurePlaintext: true,
	}}
	p := open(t, tg)
	g := group(tg, "g", "CN=g,OU=Groups,DC=corp,DC=example")
	obs, err := p.Read(context.Background(), []*config.Group{g})
	if err != nil || obs[g.Addr].Err != nil {
		t.Fatal(err, obs[g.Addr].Err)
	}
	var got []string
	for _, m := range obs[g.Addr].Members {
		got = append(got, m.Name)
	}
	if !slices.Equal(got, ms) {
		t.Errorf("members = %v, want %v", got, ms)
	}
}
