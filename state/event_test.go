package state

import "testing"

// TestWhoRanAnApplyIsShownOnOneLine: the runner of an apply, as `jitform
// ledger` shows it: user@host, then the CI provider with the actor, the
// repository and the run (or, without a run ID, the job's URL); any value
// holding a control character (C0, DEL, NEL, the Unicode line and paragraph
// separators) is shown quoted, so a recorded value never forges a line.
func TestWhoRanAnApplyIsShownOnOneLine(t *testing.T) {
	for _, tc := range []struct {
		name string
		r    Runner
		want string
	}{
		{"local", Runner{User: "ops", Host: "bastion", PID: 7}, "ops@bastion"},
		{"a space is printable", Runner{User: "o ps", Host: "b~"}, "o ps@b~"},
		{"CI with everything", Runner{User: "runner", Host: "gh-7", CI: &CI{Provider: "github", Actor: "bot", Repository: "org/repo", RunID: "42", URL: "https://ci/42"}},
			"runner@gh-7 via github (bot, org/repo, run 42)"},
		{"CI without a run ID shows the URL", Runner{User: "runner", Host: "gl", CI: &CI{Provider: "gitlab", URL: "https://ci/job/9"}},
			"runner@gl via gitlab (https://ci/job/9)"},
		{"CI with nothing but its provider", Runner{User: "u", Host: "h", CI: &CI{Provider: "generic"}}, "u@h via generic"},
		{"CI actor only", Runner{User: "u", Host: "h", CI: &CI{Provider: "generic", Actor: "a"}}, "u@h via generic (a)"},
		{"CI repository only", Runner{User: "u", Host: "h", CI: &CI{Provider: "generic", Repository: "r"}}, "u@h via generic (r)"},
		{"newline in the user", Runner{User: "ops\nroot@evil", Host: "h"}, `"ops\nroot@evil"@h`},
		{"unit separator in the host", Runner{User: "u", Host: "h\x1f"}, `u@"h\x1f"`},
		{"DEL", Runner{User: "u\x7f", Host: "h"}, `"u\x7f"@h`},
		{"NEL", Runner{User: "u\u0085", Host: "h"}, `"u\u0085"@h`},
		{"line separator", Runner{User: "u", Host: "h\u2028"}, `u@"h\u2028"`},
		{"paragraph separator", Runner{User: "u", Host: "h\u2029"}, `u@"h\u2029"`},
		{"control characters in CI values", Runner{User: "u", Host: "h", CI: &CI{Provider: "g\r", Actor: "a\n", Repository: "r\t", RunID: "1\n"}},
			`u@h via "g\r" ("a\n", "r\t", run "1\n")`},
		{"control character in the URL", Runner{User: "u", Host: "h", CI: &CI{Provider: "g", URL: "x\ny"}}, `u@h via g ("x\ny")`},
	} {
		if got := tc.r.String(); got != tc.want {
			t.Errorf("%s: %q, want %q", tc.name, got, tc.want)
		}
	}
}
