package planner

import (
	"testing"
	"time"

	"github.com/jitform/jitform/providers"
	"golang.org/x/tools/txtar"
)

// TestAnExpiringLinkWithinAMinuteOfItsGrantMatches: on a ttl_links target
// a link that expires within a minute of its grant's end plus the grace,
// either way and the minute itself included, is the grant's link (no
// change); a second more and it is rewritten.
func TestAnExpiringLinkWithinAMinuteOfItsGrantMatches(t *testing.T) {
	t.Parallel()
	match := time.Date(2026, 11, 23, 11, 0, 30, 0, time.UTC) // bob's end + grace
	for _, tc := range []struct {
		off     time.Duration
		rewrite bool
	}{
		{0, false},
		{time.Minute, false},
		{-time.Minute, false},
		{time.Minute + time.Second, true},
		{-time.Minute - time.Second, true},
	} {
		in, err := scenarioInput(txtar.Parse([]byte(ttlScenario)))
		if err != nil {
			t.Fatal(err)
		}
		in.Observed = map[string]providers.Observation{"group.ops": {Members: []providers.Member{
			{ID: "cn=admin", Name: "CN=admin"},
			{ID: "cn=alice", Name: "CN=alice", Expires: time.Date(2026, 11, 23, 11, 0, 30, 0, time.UTC)},
			{ID: "cn=bob", Name: "CN=bob", Expires: match.Add(tc.off)},
			{ID: "cn=carol", Name: "CN=carol", Expires: time.Date(2026, 11, 23, 11, 0, 30, 0, time.UTC)},
		}}}
		p, err := Compute(in)
		if err != nil {
			t.Fatal(err)
		}
		rewritten := false
		for _, c := range p.Changes {
			if c.Member == "cn=bob" && c.Action == "add" {
				rewritten = true
			}
		}
		if rewritten != tc.rewrite {
			t.Errorf("bob's link %v off his grant's end + grace: rewritten %v, want %v (changes %+v)", tc.off, rewritten, tc.rewrite, p.Changes)
		}
	}
}
