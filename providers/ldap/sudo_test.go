package ldap

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	goldap "github.com/go-ldap/ldap/v3"

	"github.com/jitform/jitform/config"
	"github.com/jitform/jitform/internal/testbed/slapdtest"
	"github.com/jitform/jitform/providers"
)

const sudoSeed = seed + `
dn: ou=SUDOers,dc=example,dc=org
objectClass: organizationalUnit
ou: SUDOers

dn: cn=db-root,ou=SUDOers,dc=example,dc=org
objectClass: sudoRole
cn: db-root
sudoHost: ALL
sudoCommand: ALL
sudoRunAsUser: postgres
sudoUser: bob
sudoUser: ghost
sudoUser: %dba

dn: cn=jit-only,ou=SUDOers,dc=example,dc=org
objectClass: sudoRole
cn: jit-only
sudoHost: ALL
sudoCommand: /usr/bin/systemctl restart nginx
`

func sudoRole(tg *config.Target, name, roleDN string) *config.Group {
	return &config.Group{Kind: config.SetSudoRole, Name: name, Addr: "sudo_role." + name, BaseAddr: "sudo_role." + name, Target: tg, DN: roleDN}
}

const (
	dbRootDN  = "cn=db-root,ou=SUDOers,dc=example,dc=org"
	jitOnlyDN = "cn=jit-only,ou=SUDOers,dc=example,dc=org"
)

// TestSudoRoleMembersAreSudoUserNames: a sudo_role's members are its
// sudoUser values, mapped to the entry with that uid like a posixGroup's
// memberUid; names that match no entry (a %group, a departed user) keep
// their value as ID so an exclusive role can remove them. Adds and removes
// write plain user names, never DNs, and follow the group outcome rules.
func TestSudoRoleMembersAreSudoUserNames(t *testing.T) {
	s := slapdtest.Start(t, sudoSeed)
	tg := ldapTarget(s, nil)
	p := open(t, tg)
	ctx := context.Background()
	if !providers.Supports(p, config.SetSudoRole) {
		t.Fatal("the ldap target does not declare sudo_role in SetKinds")
	}
	role := sudoRole(tg, "db_root", dbRootDN)
	obs, err := p.Read(ctx, []*config.Group{role})
	if err != nil || obs[role.Addr].Err != nil {
		t.Fatalf("read: %v %v", err, obs[role.Addr].Err)
	}
	got := ids(obs[role.Addr].Members)
	want := []string{"%dba", canon(t, "uid=bob,ou=people,dc=example,dc=org"), "ghost"}
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Fatalf("members = %v, want %v", got, want)
	}

	res, err := p.Resolve(ctx, []string{"alice"})
	if err != nil || res["alice"].Err != nil {
		t.Fatalf("resolve alice: %v %v", err, res["alice"].Err)
	}
	alice := res["alice"].Member
	bob := providers.Member{ID: canon(t, "uid=bob,ou=people,dc=example,dc=org")}
	outs, err := p.Apply(ctx, []providers.GroupChange{{Group: role, Changes: []providers.MemberChange{
		{Action: providers.Add, Member: alice},
		{Action: providers.Remove, Member: providers.Member{ID: "ghost"}},
		{Action: providers.Remove, Member: bob},
		{Action: providers.Remove, Member: providers.Member{ID: "nobody-there"}},
	}}})
	if err != nil {
		t.Fatal(err)
	}
	wantSt := []providers.Status{providers.Done, providers.Done, providers.Done, providers.Already}
	for i, o := range outs {
		if o.Status != wantSt[i] {
			t.Errorf("change %d (%s %s) = %s %v, want %s", i, o.Change.Action, o.Change.Member.ID, o.Status, o.Err, wantSt[i])
		}
	}
	vals := s.Values(t, dbRootDN, "sudoUser")
	slices.Sort(vals)
	if !slices.Equal(vals, []string{"%dba", "alice"}) {
		t.Errorf("sudoUser on slapd = %v, want [%%dba alice] (plain user names, never DNs)", vals)
	}
	// Someone else added alice meanwhile: the server's 20 says already.
	outs, _ = p.Apply(ctx, []providers.GroupChange{{Group: role, Changes: []providers.MemberChange{{Action: providers.Add, Member: alice}}}})
	if outs[0].Status != providers.Already {
		t.Errorf("re-adding alice = %s %v, want already", outs[0].Status, outs[0].Err)
	}
}

// TestSudoRoleKindMustMatchEntry: a sudo_role naming a group, or a group
// naming a sudoRole, is refused at read, so a mistyped DN never turns
// group members into sudo rules or back; nothing is written.
func TestSudoRoleKindMustMatchEntry(t *testing.T) {
	s := slapdtest.Start(t, sudoSeed)
	tg := ldapTarget(s, nil)
	p := open(t, tg)
	ctx := context.Background()
	before := s.Dump(t)
	asRole := sudoRole(tg, "admins", "cn=admins,ou=groups,dc=example,dc=org")
	asGroup := group(tg, "db_root", dbRootDN)
	obs, err := p.Read(ctx, []*config.Group{asRole, asGroup})
	if err != nil {
		t.Fatal(err)
	}
	if e := obs[asRole.Addr].Err; e == nil || !strings.Contains(e.Error(), "not a sudoRole") {
		t.Errorf("sudo_role on a groupOfNames: %v, want 'not a sudoRole'", e)
	}
	if e := obs[asGroup.Addr].Err; e == nil || !strings.Contains(e.Error(), "declare it as a sudo_role") {
		t.Errorf("group on a sudoRole: %v, want 'declare it as a sudo_role'", e)
	}
	outs, _ := p.Apply(ctx, []providers.GroupChange{{Group: asRole, Changes: []providers.MemberChange{{Action: providers.Add, Member: providers.Member{ID: "carol"}}}}})
	if outs[0].Status != providers.Failed {
		t.Errorf("apply to a sudo_role naming a group = %s, want failed", outs[0].Status)
	}
	if after := s.Dump(t); !slices.Equal(before, after) {
		t.Errorf("the directory changed")
	}
}

func sudoTime(t *testing.T, v []string) time.Time {
	t.Helper()
	if len(v) != 1 {
		t.Fatalf("want one value, got %v", v)
	}
	ts, ok := parseSudoTime(v[0])
	if !ok {
		t.Fatalf("%q is not a GeneralizedTime", v[0])
	}
	return ts
}

// TestSudoRoleBoundIsUnionOfGrantWindows: the second lock. A role that
// holds only granted users is bounded by sudoNotBefore/sudoNotAfter, in the
// same Modify as the users: the first grant sets the bound, a later-ending
// grant moves sudoNotAfter out, an earlier-ending one does not pull it in,
// emptying the role removes the bound, a declared member (a standing role)
// removes it, and a role that already held users without a bound is not
// bounded (that would cut their sudo off at a window not theirs).
func TestSudoRoleBoundIsUnionOfGrantWindows(t *testing.T) {
	s := slapdtest.Start(t, sudoSeed)
	tg := ldapTarget(s, nil)
	p := open(t, tg)
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	p.now = func() time.Time { return now }
	ctx := context.Background()
	role := sudoRole(tg, "jit_only", jitOnlyDN)
	end1, end2, end0 := now.Add(2*time.Hour), now.Add(5*time.Hour), now.Add(time.Hour)
	apply := func(g *config.Group, cs ...providers.MemberChange) {
		t.Helper()
		outs, err := p.Apply(ctx, []providers.GroupChange{{Group: g, Changes: cs}})
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range outs {
			if o.Status != providers.Done {
				t.Fatalf("%s %s = %s %v, want done", o.Change.Action, o.Change.Member.ID, o.Status, o.Err)
			}
		}
	}
	add := func(uid string, end time.Time) providers.MemberChange {
		return providers.MemberChange{Action: providers.Add, Member: providers.Member{ID: uid, Expires: end, Grant: "grant." + uid}}
	}
	rm := func(uid string) providers.MemberChange {
		return providers.MemberChange{Action: providers.Remove, Member: providers.Member{ID: uid}}
	}

	apply(role, add("alice", end1))
	if got := sudoTime(t, s.Values(t, jitOnlyDN, "sudoNotAfter")); !got.Equal(end1) {
		t.Errorf("first grant: sudoNotAfter = %s, want %s", got, end1)
	}
	if got := sudoTime(t, s.Values(t, jitOnlyDN, "sudoNotBefore")); !got.Equal(now.Add(-sudoSkew)) {
		t.Errorf("first grant: sudoNotBefore = %s, want %s", got, now.Add(-sudoSkew))
	}
	apply(role, add("bob", end2))
	if got := sudoTime(t, s.Values(t, jitOnlyDN, "sudoNotAfter")); !got.Equal(end2) {
		t.Errorf("later grant: sudoNotAfter = %s, want moved to %s", got, end2)
	}
	apply(role, add("carol", end0))
	if got := sudoTime(t, s.Values(t, jitOnlyDN, "sudoNotAfter")); !got.Equal(end2) {
		t.Errorf("earlier grant: sudoNotAfter = %s, want kept at %s", got, end2)
	}
	if got := sudoTime(t, s.Values(t, jitOnlyDN, "sudoNotBefore")); !got.Equal(now.Add(-sudoSkew)) {
		t.Errorf("sudoNotBefore moved to %s", got)
	}
	apply(role, rm("carol"))
	if got := sudoTime(t, s.Values(t, jitOnlyDN, "sudoNotAfter")); !got.Equal(end2) {
		t.Errorf("after a removal: sudoNotAfter = %s, want kept at %s", got, end2)
	}
	apply(role, rm("alice"), rm("bob"))
	if v := s.Values(t, jitOnlyDN, "sudoNotAfter"); len(v) != 0 {
		t.Errorf("emptied role still bounded: sudoNotAfter %v", v)
	}
	if v := s.Values(t, jitOnlyDN, "sudoNotBefore"); len(v) != 0 {
		t.Errorf("emptied role still bounded: sudoNotBefore %v", v)
	}

	// A granted user, then a declared one: the role is standing.
	apply(role, add("alice", end1))
	standing := sudoRole(tg, "jit_only", jitOnlyDN)
	standing.Members = []string{"carol"}
	apply(standing, providers.MemberChange{Action: providers.Add, Member: providers.Member{ID: "carol"}})
	if v := s.Values(t, jitOnlyDN, "sudoNotAfter"); len(v) != 0 {
		t.Errorf("role with a declared member still bounded: sudoNotAfter %v", v)
	}

	// db-root already holds users with no bound: a grant does not bound it.
	apply(sudoRole(tg, "db_root", dbRootDN), add("alice", end1))
	if v := s.Values(t, dbRootDN, "sudoNotAfter"); len(v) != 0 {
		t.Errorf("a role holding unbounded users was bounded: sudoNotAfter %v", v)
	}
}

// TestSudoRoleHostileNames: sudoUser values are written as data, exactly
// (filter and DN metacharacters, leading spaces, a #uid, UTF-8), and read
// back as written; a value the schema refuses (an empty name) fails with
// the server's result code and nothing changes.
func TestSudoRoleHostileNames(t *testing.T) {
	s := slapdtest.Start(t, sudoSeed)
	tg := ldapTarget(s, nil)
	p := open(t, tg)
	ctx := context.Background()
	role := sudoRole(tg, "jit_only", jitOnlyDN)
	hostile := []string{`x*)(uid=*`, `a\2a,cn=admin`, "  lead", `#0`, "jörg", `%admins`}
	var cs []providers.MemberChange
	for _, h := range hostile {
		cs = append(cs, providers.MemberChange{Action: providers.Add, Member: providers.Member{ID: h}})
	}
	outs, err := p.Apply(ctx, []providers.GroupChange{{Group: role, Changes: cs}})
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range outs {
		if o.Status != providers.Done {
			t.Errorf("add %q = %s %v, want done", o.Change.Member.ID, o.Status, o.Err)
		}
	}
	obs, err := p.Read(ctx, []*config.Group{role})
	if err != nil || obs[role.Addr].Err != nil {
		t.Fatalf("read: %v %v", err, obs[role.Addr].Err)
	}
	got := ids(obs[role.Addr].Members)
	raw := s.Values(t, jitOnlyDN, "sudoUser")
	for _, h := range hostile {
		if !slices.Contains(raw, h) || !slices.Contains(got, h) {
			t.Errorf("%q not stored and read back exactly: stored %q, read %q", h, raw, got)
		}
	}
	if len(raw) != len(hostile) || len(got) != len(hostile) {
		t.Errorf("sudoUser = %q, read back %q; want the %d names as written", raw, got, len(hostile))
	}
	before := s.Dump(t)
	outs, _ = p.Apply(ctx, []providers.GroupChange{{Group: role, Changes: []providers.MemberChange{{Action: providers.Add, Member: providers.Member{ID: ""}}}}})
	if outs[0].Status != providers.Failed || outs[0].Err == nil {
		t.Errorf("empty sudoUser = %s %v, want failed with the server's result code", outs[0].Status, outs[0].Err)
	} else if _, ok := serverResult(outs[0].Err); !ok {
		t.Errorf("empty sudoUser failed without a server result code: %v", outs[0].Err)
	}
	if after := s.Dump(t); !slices.Equal(before, after) {
		t.Errorf("the directory changed after a refused add")
	}
}

// TestSudoRoleLostReplyIsUnknownAndBoundTravelsWithUser: crash safety at
// the operation level. The Modify that adds a granted user and its bound
// is committed but its reply never arrives (as when jitform is killed
// between intent and outcome): the outcome is unknown, never done or
// failed, and on the server the user never holds the role without the
// bound, because both are one Modify.
func TestSudoRoleLostReplyIsUnknownAndBoundTravelsWithUser(t *testing.T) {
	s := slapdtest.Start(t, sudoSeed)
	ctx := context.Background()
	d := startReplyDropper(t, s.URL[len("ldap://"):], 1)
	tg := ldapTarget(s, func(c *config.LDAPTarget) {
		no := false
		c.URL, c.StartTLS, c.InsecurePlaintext = d.URL, &no, true
	})
	p := open(t, tg)
	end := time.Now().Add(time.Hour).Truncate(time.Second).UTC()
	outs, err := p.Apply(ctx, []providers.GroupChange{{Group: sudoRole(tg, "jit_only", jitOnlyDN), Changes: []providers.MemberChange{
		{Action: providers.Add, Member: providers.Member{ID: "alice", Expires: end, Grant: "grant.alice"}},
	}}})
	if err != nil {
		t.Fatal(err)
	}
	if d.Dropped() != 1 {
		t.Fatalf("the proxy dropped %d replies, want 1", d.Dropped())
	}
	if outs[0].Status != providers.Unknown {
		t.Errorf("add whose reply was lost = %s %v, want unknown", outs[0].Status, outs[0].Err)
	}
	if v := s.Values(t, jitOnlyDN, "sudoUser"); !slices.Equal(v, []string{"alice"}) {
		t.Fatalf("sudoUser = %v: the test did not lose a committed reply", v)
	}
	if got := sudoTime(t, s.Values(t, jitOnlyDN, "sudoNotAfter")); !got.Equal(end) {
		t.Errorf("committed user without its bound: sudoNotAfter = %s, want %s", got, end)
	}
}

// TestSudoRoleWhoseUsersAreAllReplacedByGrantsIsBounded: a role that held
// unbounded users, all removed in the same change that adds a granted
// user, holds only granted users afterwards: it gets the grant's bound in
// that Modify, as a role that was empty would.
func TestSudoRoleWhoseUsersAreAllReplacedByGrantsIsBounded(t *testing.T) {
	s := slapdtest.Start(t, sudoSeed)
	tg := ldapTarget(s, nil)
	p := open(t, tg)
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	p.now = func() time.Time { return now }
	end := now.Add(2 * time.Hour)
	bob := providers.Member{ID: canon(t, "uid=bob,ou=people,dc=example,dc=org")}
	outs, err := p.Apply(context.Background(), []providers.GroupChange{{Group: sudoRole(tg, "db_root", dbRootDN), Changes: []providers.MemberChange{
		{Action: providers.Remove, Member: bob},
		{Action: providers.Remove, Member: providers.Member{ID: "ghost"}},
		{Action: providers.Remove, Member: providers.Member{ID: "%dba"}},
		{Action: providers.Add, Member: providers.Member{ID: "alice", Expires: end, Grant: "grant.alice"}},
	}}})
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range outs {
		if o.Status != providers.Done {
			t.Fatalf("%s %s = %s %v, want done", o.Change.Action, o.Change.Member.ID, o.Status, o.Err)
		}
	}
	if v := s.Values(t, dbRootDN, "sudoUser"); !slices.Equal(v, []string{"alice"}) {
		t.Fatalf("sudoUser = %v, want [alice]", v)
	}
	if got := sudoTime(t, s.Values(t, dbRootDN, "sudoNotAfter")); !got.Equal(end) {
		t.Errorf("sudoNotAfter = %s, want the grant's end %s", got, end)
	}
	if got := sudoTime(t, s.Values(t, dbRootDN, "sudoNotBefore")); !got.Equal(now.Add(-sudoSkew)) {
		t.Errorf("sudoNotBefore = %s, want %s", got, now.Add(-sudoSkew))
	}
}

// warnings collects what the provider reports to the user (Progress).
type warnings struct {
	mu   sync.Mutex
	msgs []string
}

func (w *warnings) report(format string, args ...any) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.msgs = append(w.msgs, fmt.Sprintf(format, args...))
}

func (w *warnings) containing(s string) []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []string
	for _, m := range w.msgs {
		if strings.Contains(m, s) {
			out = append(out, m)
		}
	}
	return out
}

// TestSudoRoleBoundSurvivesTheMemberByMemberRetry: someone adds one of
// the users between jitform's read and its write, so the batch Modify is
// refused whole and the users are added one by one. The role still gets
// its bound (written after them), and the user is not warned.
func TestSudoRoleBoundSurvivesTheMemberByMemberRetry(t *testing.T) {
	s := slapdtest.Start(t, sudoSeed)
	tg := ldapTarget(s, nil)
	p := open(t, tg)
	w := &warnings{}
	p.report = w.report
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	p.now = func() time.Time { return now }
	end1, end2 := now.Add(time.Hour), now.Add(3*time.Hour)
	p.beforeModify = func() {
		r := goldap.NewModifyRequest(jitOnlyDN, nil)
		r.Add("sudoUser", []string{"bob"})
		if err := s.Conn(t).Modify(r); err != nil {
			t.Error(err)
		}
	}
	outs, err := p.Apply(context.Background(), []providers.GroupChange{{Group: sudoRole(tg, "jit_only", jitOnlyDN), Changes: []providers.MemberChange{
		{Action: providers.Add, Member: providers.Member{ID: "alice", Expires: end1, Grant: "grant.alice"}},
		{Action: providers.Add, Member: providers.Member{ID: "bob", Expires: end2, Grant: "grant.bob"}},
	}}})
	if err != nil {
		t.Fatal(err)
	}
	if got := statusesOf(outs); !slices.Equal(got, []providers.Status{providers.Done, providers.Already}) {
		t.Fatalf("outcomes = %v, want [done already]", got)
	}
	if got := sudoTime(t, s.Values(t, jitOnlyDN, "sudoNotAfter")); !got.Equal(end2) {
		t.Errorf("sudoNotAfter = %s, want %s", got, end2)
	}
	if got := sudoTime(t, s.Values(t, jitOnlyDN, "sudoNotBefore")); !got.Equal(now.Add(-sudoSkew)) {
		t.Errorf("sudoNotBefore = %s, want %s", got, now.Add(-sudoSkew))
	}
	if len(w.msgs) != 0 {
		t.Errorf("warnings %q, want none", w.msgs)
	}
}

// TestSudoRoleBoundLostAfterTheRetryIsReported: as above, but the reply to
// the Modify that writes the bound is lost. The users' outcomes stand, and
// the user is told the bound may be missing (sudo's second lock).
func TestSudoRoleBoundLostAfterTheRetryIsReported(t *testing.T) {
	s := slapdtest.Start(t, sudoSeed)
	// ModifyResponses through the proxy: the batch (refused), alice, bob,
	// then the bound: its reply is dropped.
	d := startReplyDropper(t, s.URL[len("ldap://"):], 4)
	tg := ldapTarget(s, func(c *config.LDAPTarget) {
		no := false
		c.URL, c.StartTLS, c.InsecurePlaintext = d.URL, &no, true
	})
	p := open(t, tg)
	w := &warnings{}
	p.report = w.report
	end := time.Now().Add(time.Hour).Truncate(time.Second).UTC()
	p.beforeModify = func() {
		r := goldap.NewModifyRequest(jitOnlyDN, nil)
		r.Add("sudoUser", []string{"bob"})
		if err := s.Conn(t).Modify(r); err != nil {
			t.Error(err)
		}
	}
	outs, err := p.Apply(context.Background(), []providers.GroupChange{{Group: sudoRole(tg, "jit_only", jitOnlyDN), Changes: []providers.MemberChange{
		{Action: providers.Add, Member: providers.Member{ID: "alice", Expires: end, Grant: "grant.alice"}},
		{Action: providers.Add, Member: providers.Member{ID: "bob", Expires: end, Grant: "grant.bob"}},
	}}})
	if err != nil {
		t.Fatal(err)
	}
	if d.Dropped() != 1 {
		t.Fatalf("the proxy dropped %d replies, want 1", d.Dropped())
	}
	if got := statusesOf(outs); !slices.Equal(got, []providers.Status{providers.Done, providers.Already}) {
		t.Errorf("outcomes = %v, want [done already]", got)
	}
	if len(w.containing("could not bound sudoRole "+jitOnlyDN)) != 1 {
		t.Errorf("warnings %q, want one saying the bound of %s could not be written", w.msgs, jitOnlyDN)
	}
}

func statusesOf(outs []providers.Outcome) []providers.Status {
	var out []providers.Status
	for _, o := range outs {
		out = append(out, o.Status)
	}
	return out
}
