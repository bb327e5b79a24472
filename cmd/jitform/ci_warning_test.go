package main

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/jitform/jitform/state"
)

// TestCIWarningOnEmptyLocalState: the rule behind the warning, for every
// command and CI value; the script test ci_local_state runs it end to end.
func TestCIWarningOnEmptyLocalState(t *testing.T) {
	t.Parallel()
	empty := t.TempDir()
	full := ledgerRepo(t)
	for _, tc := range []struct {
		command, ci, dir string
		warn             bool
	}{
		{"plan", "true", empty, true},
		{"apply", "true", empty, true},
		{"run", "true", empty, true},
		{"run", "TRUE", empty, true},
		{"apply", "1", empty, true},
		{"apply", "", empty, false},
		{"apply", "false", empty, false},
		{"apply", "true", full, false},
		{"run", "true", full, false},
		{"ledger", "true", empty, false},
		{"grant", "true", empty, false},
		{"show", "true", empty, false},
	} {
		var errb bytes.Buffer
		a := &app{stderr: &errb, command: tc.command, dir: tc.dir,
			getenv: func(k string) string {
				if k == "CI" {
					return tc.ci
				}
				return ""
			}}
		b, err := a.backend()
		if err != nil {
			t.Fatal(err)
		}
		warned := strings.Contains(errb.String(), "will be FORGOTTEN when the job ends")
		if warned != tc.warn {
			t.Errorf("%s with CI=%q on %s state: warned %v, want %v", tc.command, tc.ci, map[bool]string{true: "empty", false: "non-empty"}[tc.dir == empty], warned, tc.warn)
		}
		if tc.warn && !strings.Contains(errb.String(), `state "postgres" block`) {
			t.Errorf("the warning does not name the shared backend: %s", errb.String())
		}
		// The warning only reads: the state it warns about is untouched.
		if _, err := b.(*state.Local).Empty(); err != nil {
			t.Fatal(err)
		}
		if evs, err := b.Events(context.Background()); err != nil || (tc.dir == empty) != (len(evs) == 0) {
			t.Fatalf("state changed by the warning: %d events, %v", len(evs), err)
		}
	}
}
