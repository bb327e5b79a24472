package ldap

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	goldap "github.com/go-ldap/ldap/v3"

	"github.com/jitform/jitform/config"
	"github.com/jitform/jitform/internal/testbed/ldapfake"
	"github.com/jitform/jitform/internal/testbed/sambatest"
	"github.com/jitform/jitform/providers"
)

const (
	ttlBind, ttlPW = "CN=svc,DC=corp,DC=example", "Fake-Secret-2!"
	ttlGroup       = "CN=Ops,OU=Groups,DC=corp,DC=example"
	ttlAlice       = "CN=alice,OU=People,DC=corp,DC=example"
	ttlBob         = "CN=bob,OU=People,DC=corp,DC=example"
	ttlCarol       = "CN=carol,OU=People,DC=corp,DC=example"
)

func ttlFake(t *testing.T, pam bool) (*ldapfake.Server, *config.Target) {
	t.Helper()
	s := ldapfake.Start(t, ttlBind, ttlPW, 0, ldapfake.Entry{DN: ttlGroup, Attrs: map[string][]string{
		"objectClass": {"top", "group"}, "cn": {"Ops"}, "member": {ttlBob},
	}})
	if pam {
		s.EnableLinkTTL("DC=corp,DC=example")
	}
	no := false
	return s, &config.Target{Kind: "ldap", Name: "win", Addr: "target.ldap.win", LDAP: &config.LDAPTarget{
		URL: s.URL, BindDN: ttlBind, Password: config.NewSecret(ttlPW), BaseDN: "DC=corp,DC=example",
		Flavor: config.FlavorActiveDirectory, StartTLS: &no, InsecurePlaintext: true, TTLLinks: true,
	}}
}

func near(a, b time.Time) bool { d := a.Sub(b); return d < 2*time.Second && d > -2*time.Second }

// ttl_links on a DC with expiring links (the fake, per MS-ADTS): a grant's
// add is written as <TTL=end-now+grace,DN> with LDAP_SERVER_LINK_TTL; reads
// carry the control and report each link's expiry on the member; a link
// whose expiry no longer matches is rewritten in one Modify; a permanent
// membership is never made to expire; a link that expired server-side is
// simply absent.
func TestTTLLinksWrittenReadAndRewritten(t *testing.T) {
	s, tg := ttlFake(t, true)
	p := open(t, tg)
	p.now = s.Now
	ctx := context.Background()
	g := group(tg, "ops", ttlGroup)
	member := func(d string, until time.Time) providers.Member {
		return providers.Member{ID: canon(t, d), Name: d, Expires: until}
	}
	apply := func(a providers.Action, m providers.Member) providers.Outcome {
		t.Helper()
		outs, err := p.Apply(ctx, []providers.GroupChange{{Group: g, Changes: []providers.MemberChange{{Action: a, Member: m}}}})
		if err != nil || len(outs) != 1 {
			t.Fatalf("Apply = %v %v", outs, err)
		}
		return outs[0]
	}
	read := func() map[string]providers.Member {
		t.Helper()
		obs, err := p.Read(ctx, []*config.Group{g})
		if err != nil || obs[g.Addr].Err != nil {
			t.Fatalf("Read = %v %v", err, obs[g.Addr].Err)
		}
		out := map[string]providers.Member{}
		for _, m := range obs[g.Addr].Members {
			out[m.ID] = m
		}
		return out
	}
	lastModify := func() ldapfake.Modify { ms := s.Modifies(); return ms[len(ms)-1] }
	expiry := func(d string) time.Time { _, exp := s.Values(ttlGroup, "member"); return exp[strings.ToLower(d)] }

	end := s.Now().Add(time.Hour)
	if o := apply(providers.Add, member(ttlAlice, end)); o.Status != providers.Done {
		t.Fatalf("add with a TTL = %s %v", o.Status, o.Err)
	}
	m := lastModify()
	if !slices.Contains(m.Controls, ldapfake.LinkTTLOID) || len(m.Changes) != 1 || !strings.HasPrefix(m.Changes[0], "add member: <TTL=3630,"+ttlAlice) {
		t.Errorf("Modify = %+v, want one add of <TTL=3630,%s> with the control", m, ttlAlice)
	}
	if !near(expiry(ttlAlice), end.Add(config.LDAPTTLGrace)) {
		t.Errorf("link expires %v on the server, want %v", expiry(ttlAlice), end.Add(config.LDAPTTLGrace))
	}
	got := read()
	if a := got[canon(t, ttlAlice)]; !near(a.Expires, end.Add(config.LDAPTTLGrace)) || a.Name != ttlAlice {
		t.Errorf("read alice = %+v, want Name %s and Expires %v", a, ttlAlice, end.Add(config.LDAPTTLGrace))
	}
	if b, ok := got[canon(t, ttlBob)]; !ok || !b.Expires.IsZero() {
		t.Errorf("read bob = %+v (present %v), want a permanent member", b, ok)
	}
	for _, sr := range s.Searches() {
		if !slices.Contains(sr.Controls, ldapfake.LinkTTLOID) && sr.Base != "" && !strings.HasPrefix(sr.Base, "CN=Partitions") {
			t.Errorf("search of %s without LDAP_SERVER_LINK_TTL: TTLs would be invisible", sr.Base)
		}
	}

	// The same window again: the link is right, nothing is written.
	n := len(s.Modifies())
	if o := apply(providers.Add, member(ttlAlice, end)); o.Status != providers.Already {
		t.Errorf("add with the same end = %s %v, want already", o.Status, o.Err)
	}
	if len(s.Modifies()) != n {
		t.Errorf("a matching link was rewritten: %+v", lastModify())
	}
	// The window was shortened: rewrite (remove and re-add in one Modify).
	shorter := s.Now().Add(20 * time.Minute)
	if o := apply(providers.Add, member(ttlAlice, shorter)); o.Status != providers.Done {
		t.Fatalf("rewrite = %s %v", o.Status, o.Err)
	}
	m = lastModify()
	if len(m.Changes) != 2 || m.Changes[0] != "delete member: "+ttlAlice || !strings.HasPrefix(m.Changes[1], "add member: <TTL=1230,") {
		t.Errorf("rewrite Modify = %+v, want delete then add <TTL=1230,...>", m)
	}
	if !near(expiry(ttlAlice), shorter.Add(config.LDAPTTLGrace)) {
		t.Errorf("after rewrite the link expires %v, want %v", expiry(ttlAlice), shorter.Add(config.LDAPTTLGrace))
	}
	// Now a declared (standing) member: the link must not expire.
	if o := apply(providers.Add, member(ttlAlice, time.Time{})); o.Status != providers.Done {
		t.Fatalf("rewrite to permanent = %s %v", o.Status, o.Err)
	}
	if e := expiry(ttlAlice); !e.IsZero() {
		t.Errorf("alice still expires at %v after becoming a standing member", e)
	}
	if a, ok := read()[canon(t, ttlAlice)]; !ok || !a.Expires.IsZero() {
		t.Errorf("read alice = %+v (present %v), want permanent", a, ok)
	}
	// A permanent membership (someone else's, or declared) is never
	// turned into an expiring one by a grant's add.
	n = len(s.Modifies())
	if o := apply(providers.Add, member(ttlBob, end)); o.Status != providers.Already {
		t.Errorf("grant add over a permanent member = %s %v, want already", o.Status, o.Err)
	}
	if len(s.Modifies()) != n || !expiry(ttlBob).IsZero() {
		t.Errorf("bob's permanent membership was rewritten: %+v", lastModify())
	}
	// A window already over is not written at all.
	if o := apply(providers.Add, member(ttlCarol, s.Now().Add(-time.Minute))); o.Status != providers.Failed || o.Err == nil {
		t.Errorf("add for a window that has ended = %s %v, want failed", o.Status, o.Err)
	}
	if len(s.Modifies()) != n {
		t.Errorf("a link was written for a window that has ended: %+v", lastModify())
	}

	// Expiry on the server: carol's link runs out while jitform is away;
	// she is simply absent, not an error.
	if o := apply(providers.Add, member(ttlCarol, s.Now().Add(10*time.Minute))); o.Status != providers.Done {
		t.Fatalf("add carol = %s %v", o.Status, o.Err)
	}
	if _, ok := read()[canon(t, ttlCarol)]; !ok {
		t.Fatal("carol is not a member after her add")
	}
	s.Advance(10*time.Minute + config.LDAPTTLGrace)
	got = read()
	if _, ok := got[canon(t, ttlCarol)]; ok {
		t.Errorf("carol is still a member after her link expired server-side: %+v", got)
	}
	if _, ok := got[canon(t, ttlAlice)]; !ok {
		t.Errorf("the permanent alice vanished")
	}
	// Removing a member whose link already expired is "already so".
	if o := apply(providers.Remove, member(ttlCarol, time.Time{})); o.Status != providers.Already {
		t.Errorf("remove after server-side expiry = %s %v, want already", o.Status, o.Err)
	}
}

// Where the server cannot keep expiring links, ttl_links fails at open
// (plan time) with one error naming ttl_links and the missing control:
// nothing is read, nothing is written.
func TestTTLLinksRefusedWithoutServerSupport(t *testing.T) {
	s, tg := ttlFake(t, false)
	_, err := Open(context.Background(), tg, providers.Options{})
	if err == nil {
		t.Fatal("Open with ttl_links against a server without expiring links succeeded")
	}
	for _, want := range []string{"target.ldap.win", "ttl_links = true", "1.2.840.113556.1.4.2309", "Privileged Access Management", "ttl_links = false"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
	if len(s.Modifies()) != 0 {
		t.Errorf("Open wrote: %+v", s.Modifies())
	}
}

// Samba (4.17) rejects the <TTL=...> member syntax as an invalid DN: with
// ttl_links the target is refused at open with one clear error, before any
// plan, and the refusal is justified (a direct TTL write really fails).
func TestSambaTTLLinksRefusedAtOpen(t *testing.T) {
	dc := sambatest.Start(t)
	tg := adTarget(dc, func(c *config.LDAPTarget) { c.TTLLinks = true })
	_, err := Open(context.Background(), tg, providers.Options{})
	if err == nil {
		t.Fatal("Open with ttl_links against Samba succeeded")
	}
	for _, want := range []string{"target.ldap.ad", "ttl_links = true", "does not list control 1.2.840.113556.1.4.2309", "ttl_links = false"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
	t.Logf("refusal: %v", err)
	if strings.Contains(err.Error(), sambatest.AdminPassword) {
		t.Errorf("error leaks the password")
	}
	before := dc.Values(t, sambatest.AdminsDN, "member")
	c := dc.Conn(t)
	r := goldap.NewModifyRequest(sambatest.AdminsDN, []goldap.Control{&goldap.ControlMicrosoftServerLinkTTL{}})
	r.Add("member", []string{"<TTL=600," + adBob + ">"})
	if err := c.Modify(r); err == nil {
		t.Errorf("Samba accepted a <TTL=...> member: the refusal at open is no longer needed")
	} else {
		t.Logf("Samba refuses the TTL write: %v", err)
	}
	if after := dc.Values(t, sambatest.AdminsDN, "member"); !slices.Equal(before, after) {
		t.Errorf("members changed from %v to %v", before, after)
	}
}

// splitTTL reads what a DC sends: "<TTL=N>,DN" or a plain DN. It never
// panics, keeps a plain value whole, and what it accepts prints back as it
// came.
func FuzzSplitTTL(f *testing.F) {
	for _, s := range []string{"<TTL=60>,CN=a,DC=x", "CN=a,DC=x", "<TTL=>,CN=a", "<TTL=-1>,CN=a", "<TTL=99999999999999999999>,CN=a", "<TTL=5,CN=a>", "<SID=S-1-5-21>;CN=a", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		n, d, ok := splitTTL(v)
		if !ok {
			if d != v {
				t.Fatalf("splitTTL(%q) rejected but changed the value to %q", v, d)
			}
			return
		}
		if n < 0 || !strings.HasPrefix(v, "<TTL=") || !strings.HasSuffix(v, ">,"+d) {
			t.Fatalf("splitTTL(%q) = %d %q", v, n, d)
		}
	})
}

// A link rewrite that goes through the member-by-member retry (someone
// added another of the change's members between jitform's read and its
// write, so the batch Modify was refused whole) is done, with no error,
// and the link expires at the new end.
func TestTTLLinkRewriteAfterTheBatchIsRefused(t *testing.T) {
	s, tg := ttlFake(t, true)
	p := open(t, tg)
	p.now = s.Now
	ctx := context.Background()
	g := group(tg, "ops", ttlGroup)
	member := func(d string, until time.Time) providers.Member {
		return providers.Member{ID: canon(t, d), Name: d, Expires: until}
	}
	outs, err := p.Apply(ctx, []providers.GroupChange{{Group: g, Changes: []providers.MemberChange{{Action: providers.Add, Member: member(ttlAlice, s.Now().Add(time.Hour))}}}})
	if err != nil || outs[0].Status != providers.Done {
		t.Fatalf("add alice = %v %v", outs, err)
	}
	p.beforeModify = func() {
		c, err := goldap.DialURL(s.URL)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if err := c.Bind(ttlBind, ttlPW); err != nil {
			t.Fatal(err)
		}
		r := goldap.NewModifyRequest(ttlGroup, nil)
		r.Add("member", []string{ttlCarol})
		if err := c.Modify(r); err != nil {
			t.Fatal(err)
		}
	}
	shorter := s.Now().Add(20 * time.Minute)
	outs, err = p.Apply(ctx, []providers.GroupChange{{Group: g, Changes: []providers.MemberChange{
		{Action: providers.Add, Member: member(ttlAlice, shorter)},
		{Action: providers.Add, Member: member(ttlCarol, time.Time{})},
	}}})
	if err != nil {
		t.Fatal(err)
	}
	if outs[0].Status != providers.Done || outs[0].Err != nil {
		t.Errorf("rewrite of alice's link = %s %v, want done with no error", outs[0].Status, outs[0].Err)
	}
	if outs[1].Status != providers.Already {
		t.Errorf("carol (added meanwhile) = %s %v, want already", outs[1].Status, outs[1].Err)
	}
	_, exp := s.Values(ttlGroup, "member")
	if !near(exp[strings.ToLower(ttlAlice)], shorter.Add(config.LDAPTTLGrace)) {
		t.Errorf("alice's link expires %v, want %v", exp[strings.ToLower(ttlAlice)], shorter.Add(config.LDAPTTLGrace))
	}
}
