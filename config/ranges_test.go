package config

import (
	"testing"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
)

// Ranges.Of points a diagnostic at the attribute (or nested block) as
// written; the last nested block of a type is the one named.
func TestRangesPointAtWhereEachAttributeWasWritten(t *testing.T) {
	src := `policy "p" {
  max_duration = "4h"
  break_glass {
    max_duration = "1h"
  }
  break_glass {
    max_per_day = "2h"
  }
}
`
	f, diags := hclsyntax.ParseConfig([]byte(src), "p.hcl", hcl.InitialPos)
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	b := f.Body.(*hclsyntax.Body).Blocks[0]
	r := attrsOf(b.AsHCLBlock()).ranges
	for _, tc := range []struct {
		name     string
		line     int
		col      int
		notThere bool
	}{
		{name: "max_duration", line: 2, col: 18},
		{name: "break_glass", line: 6, col: 3},               // the last block of the type
		{name: "break_glass.max_duration", line: 4, col: 20}, // the last block that has it
		{name: "break_glass.max_per_day", line: 7, col: 19},
		{name: "approvers", notThere: true},
		{name: "break_glass.approvers", notThere: true},
		{name: "max_duration.x", notThere: true}, // an attribute is not a block
	} {
		got, ok := r.Of(tc.name)
		if ok == tc.notThere {
			t.Errorf("%s: written = %v, want %v", tc.name, ok, !tc.notThere)
			continue
		}
		if ok && (got.Start.Line != tc.line || got.Start.Column != tc.col || got.Filename != "p.hcl") {
			t.Errorf("%s: at %s, want p.hcl:%d,%d", tc.name, got, tc.line, tc.col)
		}
	}
	if _, ok := (Ranges{}).Of("max_duration"); ok {
		t.Error("no body: an attribute was found")
	}
}
