package planner

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// Grants are evaluated and groups planned on every core: the plan, its
// warnings, errors and their order must be exactly those of one grant and
// one group at a time.
func TestPlanningInParallelGivesTheSamePlan(t *testing.T) {
	in := syntheticInput(1200, 6000, 2000)
	for i, g := range in.Config.Grants {
		switch {
		case i%7 == 0:
			g.Duration = 5 * time.Hour // over max_duration: a warning
		case i%11 == 0:
			g.Policy = "policy.gone" // a warning
		}
	}
	in.Unsupported = map[string]string{}
	for i, g := range in.Config.Groups {
		switch {
		case i%13 == 0:
			delete(in.Observed, g.Addr) // unreadable
		case i%17 == 0:
			g.Members = append(g.Members, "nobody") // an error: unknown principal
		case i%19 == 0:
			in.Unsupported[g.Addr] = "not this kind" // a warning
		}
	}
	plan := func(chunk int) (string, int) {
		t.Helper()
		defer func(e, g int) { evalChunk, groupChunk = e, g }(evalChunk, groupChunk)
		evalChunk, groupChunk = chunk, chunk
		p, err := Compute(in)
		if err != nil {
			t.Fatal(err)
		}
		b, err := json.Marshal(p)
		if err != nil {
			t.Fatal(err)
		}
		return string(b), len(p.Warnings)
	}
	one, warns := plan(len(in.Config.Grants))
	for _, want := range []string{"does not conform", "no longer exists", "is not managed", "unknown principal", "membership was not read"} {
		if !strings.Contains(one, want) {
			t.Fatalf("the input should give a plan that says %q; %d warnings", want, warns)
		}
	}
	for _, chunk := range []int{1, 7, 2048} {
		if got, _ := plan(chunk); got != one {
			t.Errorf("chunks of %d: the plan differs from one planned in one piece", chunk)
		}
	}
}
