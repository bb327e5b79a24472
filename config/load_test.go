package config

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/hcl/v2"
)

var update = flag.Bool("update", false, "rewrite the testdata/*.diags golden files")

// testPlanTime is Monday 2026-11-23 10:00 UTC, the plan time of every test.
var testPlanTime = time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)

const testPassword = "s3cret-from-env-Zq9"

func testOptions() LoadOptions {
	return LoadOptions{
		PlanTime: testPlanTime,
		LookupEnv: func(name string) (string, bool) {
			if name == "JITFORM_TEST_PASSWORD" {
				return testPassword, true
			}
			return "", false
		},
	}
}

// validate is what `jitform validate` does: Load, then CheckGrants.
func validate(t *testing.T, files map[string][]byte) (*Config, hcl.Diagnostics) {
	t.Helper()
	cfg, diags := LoadFiles("testdata", files, testOptions())
	if cfg == nil {
		t.Fatal("LoadFiles returned a nil Config")
	}
	return cfg, append(diags, CheckGrants(cfg)...)
}

// renderDiags prints one diagnostic per line: file:line:col: severity: summary: detail.
func renderDiags(diags hcl.Diagnostics) string {
	var b strings.Builder
	for _, d := range diags {
		sev := "error"
		if d.Severity == hcl.DiagWarning {
			sev = "warning"
		}
		pos := "-"
		if d.Subject != nil {
			pos = fmt.Sprintf("%s:%d:%d", filepath.ToSlash(d.Subject.Filename), d.Subject.Start.Line, d.Subject.Start.Column)
		}
		fmt.Fprintf(&b, "%s: %s: %s: %s\n", pos, sev, d.Summary, d.Detail)
	}
	return b.String()
}

// TestTestdata loads each testdata/*.hcl file as a repository of its own and
// compares every diagnostic (position, severity, summary, detail) with the
// golden NAME.diags. good_* files must have no errors, fail_* at least one.
func TestTestdata(t *testing.T) {
	paths, err := filepath.Glob("testdata/*.hcl")
	if err != nil || len(paths) == 0 {
		t.Fatalf("no testdata: %v", err)
	}
	for _, path := range paths {
		name := filepath.Base(path)
		t.Run(strings.TrimSuffix(name, ".hcl"), func(t *testing.T) {
			t.Parallel()
			src, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			cfg, diags := validate(t, map[string][]byte{name: src})
			if cfg.Files[path] == nil {
				t.Errorf("Files lacks %s: diagnostics could not be rendered", path)
			}
			for _, d := range diags {
				if d.Subject == nil {
					t.Errorf("diagnostic without a source range: %s", d.Summary)
				}
			}
			switch {
			case strings.HasPrefix(name, "good_") && diags.HasErrors():
				t.Errorf("good file has errors:\n%s", renderDiags(diags))
			case strings.HasPrefix(name, "fail_") && !diags.HasErrors():
				t.Errorf("fail file loads without errors")
			}
			got := renderDiags(diags)
			golden := strings.TrimSuffix(path, ".hcl") + ".diags"
			if *update {
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test ./config -run TestTestdata -update)", err)
			}
			if got != string(want) {
				t.Errorf("diagnostics differ from %s\n--- got\n%s--- want\n%s", golden, got, want)
			}
		})
	}
}
