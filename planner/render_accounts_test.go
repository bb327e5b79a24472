package planner

import (
	"bytes"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jitform/jitform/internal/ansi"
	"golang.org/x/tools/txtar"
)

// TestAccountChangesAreColouredByWhatTheyGive: in a coloured plan, an
// account change that gives access (enable, create) is green and one that
// takes it away (disable, delete) is red, as for group members.
func TestAccountChangesAreColouredByWhatTheyGive(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ scenario, line, colour string }{
		{"account_enabled_in_window", "~ account jit-admin on web01: enable", ansi.Green},
		{"account_disabled_after_window", "~ account jit-admin on web01: disable", ansi.Red},
		{"ephemeral_created_for_grant", "+ account adm-alice-alice_fix on corp: create", ansi.Green},
		{"ephemeral_deleted_after_window", "- account adm-alice-alice_fix on corp: delete", ansi.Red},
	} {
		ar, err := txtar.ParseFile(filepath.Join(scenarioDir, tc.scenario+".txtar"))
		if err != nil {
			t.Fatal(err)
		}
		in, err := scenarioInput(ar)
		if err != nil {
			t.Fatal(err)
		}
		p, err := Compute(in)
		if err != nil {
			t.Fatal(err)
		}
		var out bytes.Buffer
		if err := RenderText(&out, p, true); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(out.String(), "  "+tc.colour+tc.line) {
			t.Errorf("%s: no %q line in %q:\n%s", tc.scenario, tc.line, tc.colour, out.String())
		}
	}
}

// TestChangeLinesNameTheHostAndWhoGetsThePassword: a change line names the
// target by its name (web02 for target.winrm.web["web02"]), and an
// enable or create that sets a new password says for whom only when it is
// delivered to someone.
func TestChangeLinesNameTheHostAndWhoGetsThePassword(t *testing.T) {
	for _, tc := range []struct {
		c    Change
		want string
	}{
		{Change{Kind: KindAccount, Action: ActionEnable, Object: "jit-admin", Target: "target.winrm.web01"},
			"~ account jit-admin on web01: enable"},
		{Change{Kind: KindAccount, Action: ActionEnable, Object: "jit-admin", Target: `target.winrm.web["web02"]`},
			"~ account jit-admin on web02: enable"},
		{Change{Kind: KindAccount, Action: ActionEnable, Object: "jit-admin", Target: `target.winrm.web["a.b"]`},
			"~ account jit-admin on a.b: enable"},
		{Change{Kind: KindAccount, Action: ActionEnable, Object: "jit-admin", Target: "target.winrm.web01", PasswordRotated: true},
			"~ account jit-admin on web01: enable (password rotated)"},
		{Change{Kind: KindAccount, Action: ActionCreate, Object: "adm-a", Target: "target.ldap.corp", PasswordRotated: true,
			Credentials: []Credential{{Grant: "grant.a", Principal: "alice"}, {Grant: "grant.b", Principal: "bob"}}},
			"+ account adm-a on corp: create (password rotated) for alice, bob"},
	} {
		if got := changeLine(tc.c); !strings.HasPrefix(got, tc.want) || strings.HasPrefix(got, tc.want+" for") {
			t.Errorf("changeLine(%+v) = %q, want %q", tc.c, got, tc.want)
		}
	}
}
