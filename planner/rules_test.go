package planner

import (
	"strings"
	"testing"
	"time"

	"github.com/jitform/jitform/config"
	"github.com/jitform/jitform/providers"
	"github.com/jitform/jitform/state"
)

// Rules pinned by mutation testing (scripts/mutate.sh): each test asserts
// what the plan says to the person reading it.

var rulesNow = time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)

// oneGroupInput: group.ops (exclusive) on target.ldap.corp, observed
// members as given, policy.ops covering it, and the ledger grants given.
func oneGroupInput(observed []string, grants ...Grant) Input {
	tg := &config.Target{Kind: "ldap", Name: "corp", Addr: "target.ldap.corp"}
	pol := &config.Policy{Name: "ops", Addr: "policy.ops", Groups: []string{"group.ops"},
		Eligible: []string{"alice", "bob"}, MaxDuration: 8 * time.Hour, Approvals: 1,
		Approvers: []string{"carol"}, Approval: config.ApprovalLedger}
	cfg := &config.Config{
		Digest:   "cfg",
		Targets:  []*config.Target{tg},
		Groups:   []*config.Group{{Name: "ops", Addr: "group.ops", BaseAddr: "group.ops", Target: tg, Exclusive: true}},
		Policies: []*config.Policy{pol},
	}
	obs := providers.Observation{Members: []providers.Member{}}
	res := map[string]providers.Resolution{}
	for _, p := range []string{"alice", "bob"} {
		res[p] = providers.Resolution{Member: providers.Member{ID: "corp:" + p, Name: p}}
	}
	for _, p := range observed {
		obs.Members = append(obs.Members, providers.Member{ID: "corp:" + p, Name: p})
	}
	return Input{
		Config:   cfg,
		Now:      rulesNow,
		Observed: map[string]providers.Observation{"group.ops": obs},
		Resolved: map[string]map[string]providers.Resolution{"target.ldap.corp": res},
		Ledger:   &LedgerView{Grants: grants},
	}
}

func ledgerGrant(id, principal string, start, end time.Time) Grant {
	return Grant{ID: id, Source: "ledger", Policy: "policy.ops", Principal: principal, Start: start, End: end, Approvers: []string{"carol"}}
}

// TestARemovalNamesTheGrantThatStoppedLast: when several grants of one
// member have stopped, the removal names the one that stopped last; at
// the same instant a revocation or a policy change explains more than a
// window's end, and between equals the lowest grant ID is named, whatever
// their order.
func TestARemovalNamesTheGrantThatStoppedLast(t *testing.T) {
	t.Parallel()
	h := func(n int) time.Time { return rulesNow.Add(time.Duration(n) * time.Hour) }
	revoked := func(g Grant, at time.Time) Grant { g.Revoked, g.RevokedAt = true, at; return g }
	tests := []struct {
		name   string
		grants []Grant
		kind   string
		grant  string
	}{
		{"the later end", []Grant{ledgerGrant("g-aaaaaaaaaa", "alice", h(-4), h(-2)), ledgerGrant("g-bbbbbbbbbb", "alice", h(-4), h(-1))},
			ReasonWindowEnded, "g-bbbbbbbbbb"},
		{"the later end, listed first", []Grant{ledgerGrant("g-bbbbbbbbbb", "alice", h(-4), h(-1)), ledgerGrant("g-aaaaaaaaaa", "alice", h(-4), h(-2))},
			ReasonWindowEnded, "g-bbbbbbbbbb"},
		{"same end: the lower ID", []Grant{ledgerGrant("g-aaaaaaaaaa", "alice", h(-4), h(-1)), ledgerGrant("g-bbbbbbbbbb", "alice", h(-3), h(-1))},
			ReasonWindowEnded, "g-aaaaaaaaaa"},
		{"same end: the lower ID, listed second", []Grant{ledgerGrant("g-bbbbbbbbbb", "alice", h(-3), h(-1)), ledgerGrant("g-aaaaaaaaaa", "alice", h(-4), h(-1))},
			ReasonWindowEnded, "g-aaaaaaaaaa"},
		{"same instant: a revocation over a window's end", []Grant{ledgerGrant("g-aaaaaaaaaa", "alice", h(-4), h(-1)), revoked(ledgerGrant("g-bbbbbbbbbb", "alice", h(-4), h(2)), h(-1))},
			ReasonRevoked, "g-bbbbbbbbbb"},
		{"same instant: a revocation over a window's end, listed first", []Grant{revoked(ledgerGrant("g-bbbbbbbbbb", "alice", h(-4), h(2)), h(-1)), ledgerGrant("g-aaaaaaaaaa", "alice", h(-4), h(-1))},
			ReasonRevoked, "g-bbbbbbbbbb"},
		{"a later window's end over an earlier revocation", []Grant{revoked(ledgerGrant("g-aaaaaaaaaa", "alice", h(-4), h(2)), h(-2)), ledgerGrant("g-bbbbbbbbbb", "alice", h(-4), h(-1))},
			ReasonWindowEnded, "g-bbbbbbbbbb"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			p, err := Compute(oneGroupInput([]string{"alice"}, tc.grants...))
			if err != nil {
				t.Fatal(err)
			}
			if len(p.Changes) != 1 || p.Changes[0].Action != "remove" {
				t.Fatalf("changes: %+v, want alice removed", p.Changes)
			}
			if r := p.Changes[0].Reason; r.Kind != tc.kind || r.Grant != tc.grant {
				t.Errorf("removal reason %s %s (%s), want %s %s", r.Kind, r.Grant, r.Detail, tc.kind, tc.grant)
			}
		})
	}
}

// TestAMemberWithNothingToChangeGetsNoChange: a group whose members are
// exactly those desired has no changes, and says so in its summary.
func TestAMemberWithNothingToChangeGetsNoChange(t *testing.T) {
	t.Parallel()
	p, err := Compute(oneGroupInput([]string{"alice"}, ledgerGrant("g-aaaaaaaaaa", "alice", rulesNow.Add(-time.Hour), rulesNow.Add(time.Hour))))
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Changes) != 0 || p.HasChanges() {
		t.Fatalf("changes: %+v", p.Changes)
	}
	var b strings.Builder
	if err := RenderText(&b, p, false); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), "No changes.") {
		t.Errorf("rendered:\n%s", b.String())
	}
}

// TestPlanFileErrorsPointAtTheLineAndColumn: a plan file that is not valid
// JSON is refused with the line and column of the fault; an error with no
// position (an unknown field) names none.
func TestPlanFileErrorsPointAtTheLineAndColumn(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, content, want string
	}{
		{"empty", "", "not a jitform plan: line 1, column 1: unexpected end of JSON input"},
		{"cut at the end", `{"format_version":`, "not a jitform plan: line 1, column 19: unexpected end of JSON input"},
		{"on the third line", "{\n  \"format_version\": \"1.0\",\n  \"id\": ,\n}", "not a jitform plan: line 3, column 10: invalid character ',' looking for beginning of value"},
		{"a wrong type", `{"format_version": 1}`, "not a jitform plan: line 1, column 21: json: cannot unmarshal number"},
		{"an unknown field", `{"format_version": "` + FormatVersion + `", "extra": 1}`, `not a jitform plan: json: unknown field "extra"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := parsePlan("plan.json", []byte(tc.content))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want %q", err, tc.want)
			}
		})
	}
}

// TestAChangeLineSaysWhoAndWhy: each line of the text plan names the
// member, the person when the member's ID does not already say it, and
// the reason, in the words an auditor reads.
func TestAChangeLineSaysWhoAndWhy(t *testing.T) {
	t.Parallel()
	end := time.Date(2026, 11, 23, 14, 0, 0, 0, time.UTC)
	grant := Reason{Kind: ReasonGrant, Grant: "grant.a", Policy: "policy.ops", Approvers: []string{"carol"}, WindowEnd: &end}
	tests := []struct {
		name string
		c    Change
		want string
	}{
		{"a declared member", Change{Action: "add", Member: "corp:admin", Principal: "admin",
			Reason: Reason{Kind: ReasonDeclared, Detail: "declared member of group.ops"}},
			"+ corp:admin (admin)  declared member"},
		{"a grant whose policy window closes first", Change{Action: "add", Member: "corp:alice", Principal: "alice",
			Reason: func() Reason {
				r := grant
				r.Detail = "policy.ops's window closes at 2026-11-23T13:00:00Z, before the grant ends"
				return r
			}()},
			"+ corp:alice (alice)  grant.a policy.ops approved by carol, until 2026-11-23T14:00:00Z; policy.ops's window closes at 2026-11-23T13:00:00Z, before the grant ends"},
		{"an undeclared member is named by its directory name", Change{Action: "remove", Member: "corp:mallory", MemberName: "mallory",
			Reason: Reason{Kind: ReasonUndeclared, Detail: "neither declared nor granted"}},
			"- corp:mallory (mallory)  undeclared: neither declared nor granted"},
		{"a member with no name is its ID alone", Change{Action: "remove", Member: "S-1-5-21-9",
			Reason: Reason{Kind: ReasonUndeclared, Detail: "neither declared nor granted"}},
			"- S-1-5-21-9  undeclared: neither declared nor granted"},
		{"a name equal to the ID is not repeated", Change{Action: "remove", Member: "bob", MemberName: "bob",
			Reason: Reason{Kind: ReasonUndeclared, Detail: "neither declared nor granted"}},
			"- bob  undeclared: neither declared nor granted"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := changeLine(tc.c); got != tc.want {
				t.Errorf("line:\n  %s\nwant:\n  %s", got, tc.want)
			}
		})
	}
}

// TestOfTwoGrantsEndingTogetherTheLowerIDJustifiesTheAdd: a member held by
// two grants that end at the same instant is added for the one with the
// lower ID, whatever their order.
func TestOfTwoGrantsEndingTogetherTheLowerIDJustifiesTheAdd(t *testing.T) {
	t.Parallel()
	a := ledgerGrant("g-aaaaaaaaaa", "alice", rulesNow.Add(-time.Hour), rulesNow.Add(time.Hour))
	b := ledgerGrant("g-bbbbbbbbbb", "alice", rulesNow.Add(-2*time.Hour), rulesNow.Add(time.Hour))
	later := ledgerGrant("g-cccccccccc", "alice", rulesNow.Add(-2*time.Hour), rulesNow.Add(2*time.Hour))
	for _, tc := range []struct {
		name   string
		grants []Grant
		want   string
	}{
		{"lower ID first", []Grant{a, b}, "g-aaaaaaaaaa"},
		{"lower ID second", []Grant{b, a}, "g-aaaaaaaaaa"},
		{"the one that lasts longer, first", []Grant{later, a}, "g-cccccccccc"},
		{"the one that lasts longer, second", []Grant{a, later}, "g-cccccccccc"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			p, err := Compute(oneGroupInput(nil, tc.grants...))
			if err != nil {
				t.Fatal(err)
			}
			if len(p.Changes) != 1 || p.Changes[0].Action != "add" || p.Changes[0].Reason.Grant != tc.want {
				t.Fatalf("changes %+v, want alice added for %s", p.Changes, tc.want)
			}
		})
	}
}

// TestAWithdrawnRequestIsNoRemovalReason: a request withdrawn before any
// approval granted nothing, so a removal never names it.
func TestAWithdrawnRequestIsNoRemovalReason(t *testing.T) {
	t.Parallel()
	w := newLedgerWorld(t)
	events := []state.Event{
		w.request(gA, "ops", "alice", "alice", at(0), nil, time.Hour, false),
		w.decide(state.EventRevoke, gA, "alice", at(time.Minute), nil),
	}
	now := at(2 * time.Minute)
	view, _ := Replay(w.cfg, events, now)
	obs := map[string]providers.Observation{"group.ops": {Members: []providers.Member{{ID: "uid=alice,dc=corp,dc=example", Name: "alice"}}}}
	res := map[string]map[string]providers.Resolution{"target.ldif.corp": {
		"alice": {Member: providers.Member{ID: "uid=alice,dc=corp,dc=example", Name: "alice"}}}}
	p, err := Compute(Input{Config: w.cfg, Now: now, Observed: obs, Resolved: res, Ledger: view})
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Changes) != 1 || p.Changes[0].Action != "remove" || p.Changes[0].Reason.Kind != ReasonUndeclared || p.Changes[0].Reason.Grant != "" {
		t.Fatalf("changes %+v, want alice removed as undeclared, naming no grant", p.Changes)
	}
	if p.NextChangeAt != nil {
		t.Errorf("next change %s (%s), want none", p.NextChangeAt, p.NextChange)
	}
}

// TestThePlanSummaryCountsEveryChange: the closing line counts adds and
// removes, and says "No changes" only when there are none.
func TestThePlanSummaryCountsEveryChange(t *testing.T) {
	t.Parallel()
	ch := func(action string) Change {
		return Change{Action: action, Group: "group.ops", Member: "m-" + action, Reason: Reason{Kind: ReasonUndeclared, Detail: "x"}}
	}
	for _, tc := range []struct {
		name string
		p    Plan
		want string
	}{
		{"one of each", Plan{Changes: []Change{ch("add"), ch("remove")}}, "Plan: 1 to add, 1 to remove."},
		{"one of each, a group unread", Plan{Changes: []Change{ch("add"), ch("remove")}, Unreadable: []Unreadable{{Group: "group.x"}}}, "Plan: 1 to add, 1 to remove."},
		{"none", Plan{}, "No changes. Membership matches the policy."},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var b strings.Builder
			if err := RenderText(&b, &tc.p, false); err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(b.String(), tc.want) {
				t.Errorf("rendered:\n%s\nwant %q", b.String(), tc.want)
			}
		})
	}
}
