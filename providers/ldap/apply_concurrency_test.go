package ldap

import (
	"context"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	goldap "github.com/go-ldap/ldap/v3"

	"github.com/jitform/jitform/config"
	"github.com/jitform/jitform/internal/testbed/ldapfake"
	"github.com/jitform/jitform/internal/testbed/slapdtest"
	"github.com/jitform/jitform/providers"
)

// modifiesInFlight counts the group Modifies between their read and their
// write (beforeModify) at once. Each waits up to wait for a second one to
// join it, so that two Modifies that can overlap do.
type modifiesInFlight struct {
	wait time.Duration
	mu   sync.Mutex
	n    int
	most int
	once sync.Once
	two  chan struct{}
}

func newModifiesInFlight(wait time.Duration) *modifiesInFlight {
	return &modifiesInFlight{wait: wait, two: make(chan struct{})}
}

func (m *modifiesInFlight) enter() {
	m.mu.Lock()
	m.n++
	m.most = max(m.most, m.n)
	if m.n >= 2 {
		m.once.Do(func() { close(m.two) })
	}
	m.mu.Unlock()
	select {
	case <-m.two:
	case <-time.After(m.wait):
	}
	m.mu.Lock()
	m.n--
	m.mu.Unlock()
}

func (m *modifiesInFlight) max() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.most
}

// TestModifiesOfDistinctGroupsRunAtOnce: an apply that changes several
// groups writes them concurrently (bounded by max_concurrency), so one
// slow group does not hold the others' access back.
func TestModifiesOfDistinctGroupsRunAtOnce(t *testing.T) {
	s := slapdtest.Start(t, seed)
	tg := ldapTarget(s, nil)
	p := open(t, tg)
	m := newModifiesInFlight(5 * time.Second)
	p.beforeModify = m.enter
	bob := providers.Member{ID: canon(t, "uid=bob,ou=people,dc=example,dc=org"), Name: "uid=bob,ou=people,dc=example,dc=org"}
	outs, err := p.Apply(context.Background(), []providers.GroupChange{
		{Group: group(tg, "admins", "cn=admins,ou=groups,dc=example,dc=org"), Changes: []providers.MemberChange{{Action: providers.Add, Member: bob}}},
		{Group: group(tg, "tier1", "cn=tier1,ou=groups,dc=example,dc=org"), Changes: []providers.MemberChange{{Action: providers.Add, Member: bob}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range outs {
		if o.Status != providers.Done {
			t.Errorf("%s: add bob = %s %v, want done", o.Group, o.Status, o.Err)
		}
	}
	if got := m.max(); got != 2 {
		t.Errorf("%d Modifies in flight at once, want 2: the groups were written one after the other", got)
	}
}

// TestChangesToOneGroupAreWrittenInOrder: two change sets for the same
// group would race each other (each was planned from the same read), so
// they are written one at a time, in their order: the first add of a
// member is done and the second is already so, every time.
func TestChangesToOneGroupAreWrittenInOrder(t *testing.T) {
	s := slapdtest.Start(t, seed)
	tg := ldapTarget(s, nil)
	p := open(t, tg)
	m := newModifiesInFlight(500 * time.Millisecond)
	p.beforeModify = m.enter
	bob := providers.Member{ID: canon(t, "uid=bob,ou=people,dc=example,dc=org"), Name: "uid=bob,ou=people,dc=example,dc=org"}
	admins := group(tg, "admins", "cn=admins,ou=groups,dc=example,dc=org")
	outs, err := p.Apply(context.Background(), []providers.GroupChange{
		{Group: admins, Changes: []providers.MemberChange{{Action: providers.Add, Member: bob}}},
		{Group: admins, Changes: []providers.MemberChange{{Action: providers.Add, Member: bob}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := m.max(); got != 1 {
		t.Errorf("%d Modifies of one group in flight at once, want 1", got)
	}
	got := []providers.Status{outs[0].Status, outs[1].Status}
	if want := []providers.Status{providers.Done, providers.Already}; !slices.Equal(got, want) {
		t.Errorf("outcomes = %v, want %v (the first change set wins)", got, want)
	}
}

// TestMemberByMemberRetryOfAGroupWritesOnlyTheChanges: a group (not a
// sudo role) whose batch Modify is refused because someone added one of
// the members meanwhile is retried change by change: one Modify per
// change and nothing else (a group has no bound to write), with no
// warning.
func TestMemberByMemberRetryOfAGroupWritesOnlyTheChanges(t *testing.T) {
	s := slapdtest.Start(t, seed)
	tg := ldapTarget(s, nil)
	p := open(t, tg)
	w := &warnings{}
	p.report = w.report
	adminsDN := "cn=admins,ou=groups,dc=example,dc=org"
	bob := providers.Member{ID: canon(t, "uid=bob,ou=people,dc=example,dc=org"), Name: "uid=bob,ou=people,dc=example,dc=org"}
	carol := providers.Member{ID: canon(t, "uid=carol,ou=people,dc=example,dc=org"), Name: "uid=carol,ou=people,dc=example,dc=org"}
	p.beforeModify = func() {
		r := goldap.NewModifyRequest(adminsDN, nil)
		r.Add("member", []string{bob.Name})
		if err := s.Conn(t).Modify(r); err != nil {
			t.Error(err)
		}
	}
	before := p.Ops()
	outs, err := p.Apply(context.Background(), []providers.GroupChange{{Group: group(tg, "admins", adminsDN), Changes: []providers.MemberChange{
		{Action: providers.Add, Member: bob}, {Action: providers.Add, Member: carol},
	}}})
	if err != nil {
		t.Fatal(err)
	}
	if got := statusesOf(outs); !slices.Equal(got, []providers.Status{providers.Already, providers.Done}) {
		t.Errorf("outcomes = %v, want [already done]", got)
	}
	// The read, the refused batch, then bob and carol one by one.
	if ops := p.Ops() - before; ops != 4 {
		t.Errorf("%d round trips, want 4 (read, batch, one Modify per change)", ops)
	}
	if len(w.msgs) != 0 {
		t.Errorf("warnings %q, want none", w.msgs)
	}
}

// TestRemoveOfAMemberSpelledAnotherWayRemovesIt: a member named by a DN
// written differently from the group's value (attribute types in upper
// case, spaces after the commas) is the same member: the remove is made,
// never reported as already so while the member keeps the group.
func TestRemoveOfAMemberSpelledAnotherWayRemovesIt(t *testing.T) {
	s := slapdtest.Start(t, seed)
	tg := ldapTarget(s, nil)
	p := open(t, tg)
	adminsDN := "cn=admins,ou=groups,dc=example,dc=org"
	spelled := "UID=alice, OU=people, DC=example, DC=org"
	alice := providers.Member{ID: canon(t, spelled), Name: spelled}
	bob := providers.Member{ID: canon(t, "uid=bob,ou=people,dc=example,dc=org"), Name: "uid=bob,ou=people,dc=example,dc=org"}
	outs, err := p.Apply(context.Background(), []providers.GroupChange{{Group: group(tg, "admins", adminsDN), Changes: []providers.MemberChange{
		{Action: providers.Add, Member: bob}, {Action: providers.Remove, Member: alice},
	}}})
	if err != nil {
		t.Fatal(err)
	}
	if got := statusesOf(outs); !slices.Equal(got, []providers.Status{providers.Done, providers.Done}) {
		t.Errorf("outcomes = %v, want [done done]", got)
	}
	if got := s.Values(t, adminsDN, "member"); !slices.Equal(got, []string{bob.Name}) {
		t.Errorf("members on slapd = %v, want only bob", got)
	}
}

// TestPosixGroupMemberNamedByDNIsWrittenAsItsUID: a posixGroup holds user
// names, so a member known only by its DN (not resolved in this run) is
// written as the uid of that entry; an entry with no uid cannot be
// written, and says so.
func TestPosixGroupMemberNamedByDNIsWrittenAsItsUID(t *testing.T) {
	s := slapdtest.Start(t, seed)
	tg := ldapTarget(s, nil)
	p := open(t, tg)
	wheel := &config.Group{Name: "wheel", Addr: "group.wheel", BaseAddr: "group.wheel", Target: tg, GroupName: "wheel"}
	carolDN := "uid=carol,ou=people,dc=example,dc=org"
	noUID := "cn=admins,ou=groups,dc=example,dc=org" // an entry without a uid
	outs, err := p.Apply(context.Background(), []providers.GroupChange{{Group: wheel, Changes: []providers.MemberChange{
		{Action: providers.Add, Member: providers.Member{ID: canon(t, carolDN), Name: carolDN}},
		{Action: providers.Add, Member: providers.Member{ID: canon(t, noUID), Name: noUID}},
	}}})
	if err != nil {
		t.Fatal(err)
	}
	if outs[0].Status != providers.Done {
		t.Errorf("add carol by DN = %s %v, want done", outs[0].Status, outs[0].Err)
	}
	if outs[1].Status != providers.Failed || outs[1].Err == nil || !strings.Contains(outs[1].Err.Error(), "no uid") {
		t.Errorf("add of an entry without uid = %s %v, want failed saying it has no uid", outs[1].Status, outs[1].Err)
	}
	if got := s.Values(t, "cn=wheel,ou=groups,dc=example,dc=org", "memberUid"); !slices.Equal(got, []string{"bob", "ghost", "carol"}) {
		t.Errorf("memberUid on slapd = %v, want [bob ghost carol]", got)
	}
}

// TestPlaceholderIsWrittenOnlyWhenARemoveWouldEmptyTheGroup: a
// groupOfNames that reads as empty (its members hidden from the bind
// account) and a remove that is already so: nothing is written, not even
// the placeholder, which only stands in for a member a remove takes out.
func TestPlaceholderIsWrittenOnlyWhenARemoveWouldEmptyTheGroup(t *testing.T) {
	const bindDN, pw = "CN=svc,DC=corp,DC=example", "Fake-Secret-1!"
	groupDN := "CN=hidden,OU=Groups,DC=corp,DC=example"
	s := ldapfake.Start(t, bindDN, pw, 1500, ldapfake.Entry{DN: groupDN, Attrs: map[string][]string{
		"objectClass": {"top", "groupOfNames"}, "cn": {"hidden"},
	}})
	no := false
	tg := &config.Target{Kind: "ldap", Name: "win", Addr: "target.ldap.win", LDAP: &config.LDAPTarget{
		URL: s.URL, BindDN: bindDN, Password: config.NewSecret(pw), BaseDN: "DC=corp,DC=example",
		Flavor: config.FlavorActiveDirectory, StartTLS: &no, InsecurePlaintext: true,
	}}
	p := open(t, tg)
	g := group(tg, "hidden", groupDN)
	g.Attributes.Placeholder = "CN=nobody,DC=corp,DC=example"
	alice := "CN=alice,OU=People,DC=corp,DC=example"
	outs, err := p.Apply(context.Background(), []providers.GroupChange{{Group: g, Changes: []providers.MemberChange{
		{Action: providers.Remove, Member: providers.Member{ID: canon(t, alice), Name: alice}},
	}}})
	if err != nil {
		t.Fatal(err)
	}
	if outs[0].Status != providers.Already {
		t.Errorf("remove of a non-member = %s %v, want already", outs[0].Status, outs[0].Err)
	}
	if m := s.Modifies(); len(m) != 0 {
		t.Errorf("Modifies sent: %+v, want none", m)
	}
}

// TestSudoRoleNamedByCNMustBeASudoRole: a block that names its entry by cn
// (posixGroups are looked up by name) is held to its kind as one named by
// DN: a sudo_role whose name finds a posixGroup is refused, so a group's
// members never become sudo rules.
func TestSudoRoleNamedByCNMustBeASudoRole(t *testing.T) {
	s := slapdtest.Start(t, seed)
	tg := ldapTarget(s, nil)
	p := open(t, tg)
	role := &config.Group{Kind: config.SetSudoRole, Name: "wheel", Addr: "sudo_role.wheel", BaseAddr: "sudo_role.wheel", Target: tg, GroupName: "wheel"}
	obs, err := p.Read(context.Background(), []*config.Group{role})
	if err != nil {
		t.Fatal(err)
	}
	if e := obs[role.Addr].Err; e == nil || !strings.Contains(e.Error(), "not a sudoRole") {
		t.Errorf("sudo_role named by the cn of a posixGroup: %+v, want refused as not a sudoRole", obs[role.Addr])
	}
}
