package planner

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// The grants are evaluated on every core: the plan, its warnings and their
// order must be exactly those of one grant at a time.
func TestGrantEvaluationInParallelGivesTheSamePlan(t *testing.T) {
	in := syntheticInput(200, 6000, 2000)
	for i, g := range in.Config.Grants {
		switch {
		case i%7 == 0:
			g.Duration = 5 * time.Hour // over max_duration: a warning
		case i%11 == 0:
			g.Policy = "policy.gone" // a warning
		}
	}
	plan := func(chunk int) (string, int) {
		t.Helper()
		defer func(old int) { evalChunk = old }(evalChunk)
		evalChunk = chunk
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
	if warns < 1000 || !strings.Contains(one, "does not conform") || !strings.Contains(one, "no longer exists") {
		t.Fatalf("the input should give both kinds of grant warning; %d warnings", warns)
	}
	for _, chunk := range []int{1, 7, 2048} {
		if got, _ := plan(chunk); got != one {
			t.Errorf("chunks of %d: the plan differs from one evaluated in one piece", chunk)
		}
	}
}
