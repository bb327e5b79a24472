package planner

import (
	"testing"

	"github.com/jitform/jitform/providers"
)

// TestApplyingThePlanConverges applies every planned change to a synthetic
// estate (membership and the ledger's managed records, as apply would) and
// plans again: the second plan must be empty. Along the way it checks the
// rules no plan may break.
func TestApplyingThePlanConverges(t *testing.T) {
	t.Parallel()
	in := syntheticInput(200, 2000, 500)
	p, err := Compute(in)
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Changes) == 0 {
		t.Fatal("synthetic estate needs changes for this test to mean anything")
	}
	groups := map[string]bool{}
	for _, g := range in.Config.Groups {
		groups[g.Addr] = g.Exclusive
	}
	for _, c := range p.Changes {
		if c.Reason.Kind == "" {
			t.Errorf("change without a reason: %+v", c)
		}
		if c.Action == "remove" && !groups[c.Group] {
			if _, ok := in.Ledger.Managed[c.Group][c.Member]; !ok {
				t.Errorf("removes %s from non-exclusive %s although jitform never added it", c.Member, c.Group)
			}
		}
		if c.Action == "remove" && c.Reason.Kind == ReasonDeclared {
			t.Errorf("declared member removed: %+v", c)
		}
	}

	// Apply.
	members := map[string]map[string]providers.Member{}
	for addr, o := range in.Observed {
		members[addr] = map[string]providers.Member{}
		for _, m := range o.Members {
			members[addr][m.ID] = m
		}
	}
	for _, c := range p.Changes {
		switch c.Action {
		case "add":
			members[c.Group][c.Member] = providers.Member{ID: c.Member, Name: c.MemberName}
			if in.Ledger.Managed[c.Group] == nil {
				in.Ledger.Managed[c.Group] = map[string]Managed{}
			}
			in.Ledger.Managed[c.Group][c.Member] = Managed{Grant: c.Reason.Grant}
		case "remove":
			delete(members[c.Group], c.Member)
			delete(in.Ledger.Managed[c.Group], c.Member)
		}
	}
	in.Observed = map[string]providers.Observation{}
	for addr, ms := range members {
		o := providers.Observation{Members: []providers.Member{}}
		for _, m := range ms {
			o.Members = append(o.Members, m)
		}
		in.Observed[addr] = o
	}
	again, err := Compute(in)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(again.Changes); n != 0 {
		t.Errorf("after applying %d changes, the next plan still has %d, first %+v", len(p.Changes), n, again.Changes[0])
	}
	if again.ID == p.ID {
		t.Errorf("plans over different observations share an ID")
	}
}
