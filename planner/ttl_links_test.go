package planner

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"golang.org/x/tools/txtar"

	"github.com/jitform/jitform/providers"
)

const ttlScenario = `
-- now --
2026-11-23T10:00:00Z
-- main.hcl --
target "ldap" "corp" {
  url       = "ldaps://dc01.corp.example"
  bind_dn   = "CN=svc,DC=corp,DC=example"
  password  = "x"
  base_dn   = "DC=corp,DC=example"
  flavor    = "active_directory"
  ttl_links = true
}
group "ops" {
  target    = target.ldap.corp
  dn        = "CN=Ops,DC=corp,DC=example"
  members   = ["admin"]
  exclusive = true
}
policy "ops" {
  groups       = [group.ops]
  eligible     = ["alice", "bob", "carol"]
  max_duration = "4h"
  approvals    = 1
  approvers    = ["zed"]
}
grant "a" {
  policy = policy.ops
  principal = "alice"
  start = "2026-11-23T09:00:00Z"
  duration = "2h"
  approved_by = ["zed"]
}
grant "b" {
  policy = policy.ops
  principal = "bob"
  start = "2026-11-23T09:00:00Z"
  duration = "2h"
  approved_by = ["zed"]
}
grant "c" {
  policy = policy.ops
  principal = "carol"
  start = "2026-11-23T09:00:00Z"
  duration = "2h"
  approved_by = ["zed"]
}
-- resolved.txt --
target.ldap.corp admin: cn=admin | CN=admin
target.ldap.corp alice: cn=alice | CN=alice
target.ldap.corp bob: cn=bob | CN=bob
target.ldap.corp carol: cn=carol | CN=carol
`

// On a target with ttl_links, membership held by an expiring link is
// planned by its expiry: a grant's add says when the server drops it; a
// link that matches its grant's end (+ grace) is no change; a link that no
// longer matches (the window was shortened) or that would drop a declared
// member is rewritten (planned as an add); a removal names when the server
// would drop the link anyway. Applying the plan converges.
func TestTTLLinksPlannedByExpiry(t *testing.T) {
	t.Parallel()
	in, err := scenarioInput(txtar.Parse([]byte(ttlScenario)))
	if err != nil {
		t.Fatal(err)
	}
	at := func(s string) time.Time {
		v, err := time.Parse(time.RFC3339, s)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	in.Observed = map[string]providers.Observation{"group.ops": {Members: []providers.Member{
		{ID: "cn=admin", Name: "CN=admin", Expires: at("2026-11-23T12:00:00Z")}, // declared, must not expire
		{ID: "cn=bob", Name: "CN=bob", Expires: at("2026-11-23T11:00:30Z")},     // matches its grant
		{ID: "cn=carol", Name: "CN=carol", Expires: at("2026-11-23T13:00:30Z")}, // outlives its grant
		{ID: "cn=dave", Name: "CN=dave", Expires: at("2026-11-23T10:30:00Z")},   // undeclared
	}}}
	p, err := Compute(in)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]Change{}
	for _, c := range p.Changes {
		got[c.Action+" "+c.Member] = c
	}
	if len(p.Changes) != 4 {
		t.Errorf("changes = %+v, want 4 (remove dave; add alice; rewrite admin and carol)", p.Changes)
	}
	if c, ok := got["add cn=alice"]; !ok || c.ServerExpires == nil || !c.ServerExpires.Equal(at("2026-11-23T11:00:30Z")) {
		t.Errorf("alice's add = %+v, want server_expires 11:00:30 (window end + grace)", c)
	}
	if c, ok := got["add cn=carol"]; !ok || !strings.Contains(c.Reason.Detail, "rewrite the expiring link") {
		t.Errorf("carol (link outlives the grant) = %+v, want a rewrite", c)
	}
	if c, ok := got["add cn=admin"]; !ok || c.Reason.Kind != ReasonDeclared || c.ServerExpires != nil {
		t.Errorf("admin (declared, expiring link) = %+v, want a rewrite to a permanent link", c)
	}
	if _, ok := got["add cn=bob"]; ok {
		t.Errorf("bob's link matches his grant and was planned: %+v", got["add cn=bob"])
	}
	if c, ok := got["remove cn=dave"]; !ok || c.ServerExpires == nil || !c.ServerExpires.Equal(at("2026-11-23T10:30:00Z")) {
		t.Errorf("dave's removal = %+v, want server_expires 10:30", c)
	}
	var buf bytes.Buffer
	if err := RenderText(&buf, p, false); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(buf.String(), "+ cn=alice (alice) [expires server-side at 2026-11-23T11:00:30Z]") {
		t.Errorf("plan text does not say when alice's link expires:\n%s", buf.String())
	}

	// Apply as the provider would (links written with the planned
	// expiry), plan again: nothing left to do.
	obs := map[string]providers.Member{}
	for _, m := range in.Observed["group.ops"].Members {
		obs[m.ID] = m
	}
	for _, c := range p.Changes {
		if c.Action == "remove" {
			delete(obs, c.Member)
			continue
		}
		m := providers.Member{ID: c.Member, Name: c.MemberName}
		if c.Reason.Kind == ReasonGrant {
			m.Expires = c.Reason.WindowEnd.Add(30 * time.Second)
		}
		obs[c.Member] = m
	}
	o := providers.Observation{Members: []providers.Member{}}
	for _, m := range obs {
		o.Members = append(o.Members, m)
	}
	in.Observed["group.ops"] = o
	p2, err := Compute(in)
	if err != nil {
		t.Fatal(err)
	}
	if len(p2.Changes) != 0 {
		t.Errorf("after applying, the plan still has changes: %+v", p2.Changes)
	}
}
