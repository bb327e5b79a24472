package config

import (
	"strings"
	"testing"
	"time"
)

// TestBreakGlassMaxPerDay: break_glass { max_per_day } decodes into
// BreakGlass.MaxPerDay (0 when absent), and a value that could never be
// met or limits nothing is an error at its own line.
func TestBreakGlassMaxPerDay(t *testing.T) {
	t.Parallel()
	src := func(block string) map[string][]byte {
		return map[string][]byte{"main.hcl": []byte(`
target "ldif" "corp" {
  path   = "directory.ldif"
  flavor = "openldap"
}

group "ops" {
  target = target.ldif.corp
  dn     = "cn=ops,dc=example,dc=org"
}

policy "ops" {
  groups       = [group.ops]
  eligible     = ["alice"]
  max_duration = "4h"
  approvers    = ["carol"]
` + block + `
}
`)}
	}
	tests := []struct {
		name  string
		block string
		want  time.Duration
		err   string // substring of the diagnostic, at main.hcl:19:17
	}{
		{name: "absent: no budget", block: "break_glass {\n  max_duration = \"1h\"\n}"},
		{name: "a day's budget", block: "break_glass {\n  max_duration = \"1h\"\n  max_per_day = \"2h\"\n}", want: 2 * time.Hour},
		{name: "not a duration", block: "break_glass {\n  max_duration = \"1h\"\n  max_per_day = \"lots\"\n}",
			err: "Invalid break_glass max_per_day: break_glass max_per_day must be a duration longer than zero"},
		{name: "shorter than max_duration", block: "break_glass {\n  max_duration = \"1h\"\n  max_per_day = \"30m\"\n}",
			err: "is shorter than its max_duration (1h)"},
		{name: "more than a day limits nothing", block: "break_glass {\n  max_duration = \"1h\"\n  max_per_day = \"25h\"\n}",
			err: "is longer than a day, so it limits nothing"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cfg, diags := validate(t, src(tc.block))
			text := renderDiags(diags)
			if tc.err != "" {
				if !diags.HasErrors() || !strings.Contains(text, tc.err) || !strings.Contains(text, "main.hcl:19:17:") {
					t.Fatalf("want an error at main.hcl:19:17 (the max_per_day value) saying %q, got:\n%s", tc.err, text)
				}
				return
			}
			if diags.HasErrors() {
				t.Fatalf("unexpected errors:\n%s", text)
			}
			p := cfg.PolicyByAddr("policy.ops")
			if p == nil || p.BreakGlass == nil || p.BreakGlass.MaxPerDay != tc.want {
				t.Fatalf("break_glass = %+v, want max_per_day %s", p.BreakGlass, tc.want)
			}
		})
	}
}
