// Package cirecipes proves the CI recipes in examples/ci against a real
// PostgreSQL (internal/testbed/pgtest) and measures how fast an approval reaches a
// real slapd (internal/testbed/slapdtest) with `jitform run` running. It has tests
// only; scripts/ci-recipes.sh and scripts/bench-approval.sh drive them.
package cirecipes

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/jitform/jitform/internal/testbed/pgtest"
)

// repoRoot is the jitform checkout this package lives in.
func repoRoot(t testing.TB) string {
	t.Helper()
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		t.Fatal("cannot locate the source tree")
	}
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
}

func requireTools(t testing.TB, tools ...string) {
	t.Helper()
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			if os.Getenv("JITFORM_REQUIRE_SERVERS") == "1" {
				t.Fatalf("%s is not installed; JITFORM_REQUIRE_SERVERS=1", tool)
			}
			t.Skipf("%s is not installed", tool)
		}
	}
}

// TestCIRecipes replays every recipe in examples/ci (scripts/ci-recipes.sh)
// in fresh clones of a throwaway policy repository: two applies in a row, a
// grant whose window ends between them removed by the second, and two
// runners applying at once (each change made once, the ledger verifies), on
// PostgreSQL state as a least-privilege runner role and on local state
// committed back to a bare git remote. It takes minutes (a release build and
// a grant window that must end), so it runs under JITFORM_REQUIRE_SERVERS=1
// (scripts/test.sh) or JITFORM_CI_RECIPES=postgres|local|all.
func TestCIRecipes(t *testing.T) {
	variants := os.Getenv("JITFORM_CI_RECIPES")
	if variants == "" {
		if os.Getenv("JITFORM_REQUIRE_SERVERS") != "1" {
			t.Skip("slow (minutes): set JITFORM_CI_RECIPES=all or run scripts/ci-recipes.sh")
		}
		variants = "all"
	}
	requireTools(t, "bash", "git", "curl", "sha256sum", "psql", "tar", "go")
	c := pgtest.Start(t)
	db := c.NewDatabase(t)
	const runnerPW = "ci-runner-secret"
	c.Exec(t, db, "CREATE ROLE jitform_runner LOGIN PASSWORD '"+runnerPW+"'")

	root := repoRoot(t)
	cmd := exec.Command("bash", filepath.Join(root, "scripts", "ci-recipes.sh"), variants)
	cmd.Dir = root
	cmd.Env = append(os.Environ(),
		"JITFORM_CI_TEST_OWNER_URL="+c.SuperURL(db),
		"JITFORM_CI_TEST_RUNNER_URL="+c.URL("jitform_runner", runnerPW, db),
	)
	out, err := cmd.CombinedOutput()
	t.Logf("scripts/ci-recipes.sh %s:\n%s", variants, out)
	if err != nil {
		t.Fatalf("scripts/ci-recipes.sh %s: %v", variants, err)
	}
	for _, want := range []string{"ci-recipes: all recipes proven", "(c) each change made once"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("the script's output lacks %q", want)
		}
	}
	// Secrets never reach a log: neither the runner's nor the owner's password.
	for _, secret := range []string{runnerPW, pgtest.SuperPassword} {
		if strings.Contains(string(out), secret) {
			t.Errorf("a database password appears in the recipes' output")
		}
	}
}
