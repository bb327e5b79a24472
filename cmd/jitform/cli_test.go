package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"
)

func TestNormalizeArgs(t *testing.T) {
	t.Parallel()
	newFS := func() *pflag.FlagSet {
		fs := pflag.NewFlagSet("t", pflag.ContinueOnError)
		fs.Bool("auto-approve", false, "")
		fs.Bool("json", false, "")
		fs.String("out", "", "")
		fs.Duration("lock-timeout", 0, "")
		fs.StringP("chdir", "C", ".", "")
		fs.BoolP("verbose", "v", false, "")
		return fs
	}
	tests := []struct {
		name string
		in   []string
		want []string
	}{
		{"terraform spellings", []string{"-auto-approve", "-out=p.plan", "-json", "-lock-timeout=30s"},
			[]string{"--auto-approve", "--out=p.plan", "--json", "--lock-timeout=30s"}},
		{"gnu spellings untouched", []string{"--auto-approve", "--out", "p.plan"}, []string{"--auto-approve", "--out", "p.plan"}},
		{"shorthand untouched", []string{"-C", "dir", "-v"}, []string{"-C", "dir", "-v"}},
		{"value of a long flag is not a flag", []string{"--out", "-json"}, []string{"--out", "-json"}},
		{"value of a single-dash long flag is not a flag", []string{"-out", "-json"}, []string{"--out", "-json"}},
		{"value of a shorthand is not a flag", []string{"-C", "-json"}, []string{"-C", "-json"}},
		{"unknown single-dash word untouched", []string{"-bogus", "file"}, []string{"-bogus", "file"}},
		{"after -- untouched", []string{"-json", "--", "-auto-approve"}, []string{"--json", "--", "-auto-approve"}},
		{"positional untouched", []string{"plan.out", "-auto-approve"}, []string{"plan.out", "--auto-approve"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := normalizeArgs(newFS(), tt.in)
			if strings.Join(got, " ") != strings.Join(tt.want, " ") {
				t.Errorf("normalizeArgs(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestParseAt(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	tests := []struct {
		in      string
		want    time.Time
		wantErr bool
	}{
		{"2026-11-24T08:00:00Z", time.Date(2026, 11, 24, 8, 0, 0, 0, time.UTC), false},
		{"2026-11-24T08:00:00+01:00", time.Date(2026, 11, 24, 7, 0, 0, 0, time.UTC), false},
		{"2026-11-24T08:00", time.Date(2026, 11, 24, 8, 0, 0, 0, time.UTC), false},
		{"2026-11-24", time.Date(2026, 11, 24, 0, 0, 0, 0, time.UTC), false},
		{"-2h", now.Add(-2 * time.Hour), false},
		{"+30m", now.Add(30 * time.Minute), false},
		{"tomorrow", time.Time{}, true},
		{"-2x", time.Time{}, true},
	}
	for _, tt := range tests {
		got, err := parseAt(tt.in, now)
		if (err != nil) != tt.wantErr {
			t.Errorf("parseAt(%q) error = %v, wantErr %v", tt.in, err, tt.wantErr)
			continue
		}
		if !got.Equal(tt.want) {
			t.Errorf("parseAt(%q) = %s, want %s", tt.in, got, tt.want)
		}
	}
}

func TestUnifiedDiff(t *testing.T) {
	t.Parallel()
	old := "a\nb\nc\nd\ne\nf\ng\nh\ni\nj\nk\n"
	new := "a\nB\nc\nd\ne\nf\ng\nh\ni\nj\nK\n"
	got := unifiedDiff("x.hcl", old, new, false)
	want := `--- x.hcl
+++ x.hcl (formatted)
@@ -1,5 +1,5 @@
 a
-b
+B
 c
 d
 e
@@ -8,4 +8,4 @@
 h
 i
 j
-k
+K
`
	if got != want {
		t.Errorf("unifiedDiff:\n%s\nwant:\n%s", got, want)
	}
	if d := unifiedDiff("x.hcl", old, old, false); d != "--- x.hcl\n+++ x.hcl (formatted)\n" {
		t.Errorf("no change should give no hunk, got %q", d)
	}
}

func TestAskYes(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]bool{"yes\n": true, "  yes  \n": true, "y\n": false, "YES\n": false, "": false, "no\n": false} {
		var out strings.Builder
		got, err := askYes(strings.NewReader(in), &out)
		if err != nil || got != want {
			t.Errorf("askYes(%q) = %v, %v; want %v", in, got, err, want)
		}
		if !strings.Contains(out.String(), "Only 'yes' will be accepted to approve.") {
			t.Errorf("prompt lacks Terraform's sentence: %q", out.String())
		}
	}
}

func TestColor(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		tty     bool
		noColor bool
		env     string
		want    bool
	}{
		{"terminal", true, false, "", true},
		{"not a terminal", false, false, "", false},
		{"NO_COLOR", true, false, "1", false},
		{"--no-color", true, true, "", false},
	}
	for _, tt := range tests {
		a := &app{outTTY: tt.tty, errTTY: tt.tty, noColor: tt.noColor, getenv: func(k string) string {
			if k == "NO_COLOR" {
				return tt.env
			}
			return ""
		}}
		if got := a.color(); got != tt.want {
			t.Errorf("%s: color() = %v, want %v", tt.name, got, tt.want)
		}
		if got := a.errColor(); got != tt.want {
			t.Errorf("%s: errColor() = %v, want %v", tt.name, got, tt.want)
		}
	}
}

func TestCommandIndex(t *testing.T) {
	t.Parallel()
	fs := pflag.NewFlagSet("jitform", pflag.ContinueOnError)
	fs.StringP("chdir", "C", ".", "")
	fs.Bool("no-color", false, "")
	tests := []struct {
		args []string
		want int
	}{
		{[]string{"plan", "-json"}, 0},
		{[]string{"-C", "dir", "plan", "-no-color"}, 2},
		{[]string{"-chdir=dir", "-no-color", "apply"}, 2},
		{[]string{"--chdir", "plan", "plan"}, 2}, // a directory named plan
		{[]string{"-Cdir", "plan"}, 1},
		{[]string{"--no-color"}, 1},
	}
	for _, tt := range tests {
		if got := commandIndex(fs, tt.args); got != tt.want {
			t.Errorf("commandIndex(%q) = %d, want %d", tt.args, got, tt.want)
		}
	}
}

// init creates the state directory private to its owner: it holds the
// ledger and the lock.
func TestInitCreatesPrivateStateDir(t *testing.T) {
	dir := t.TempDir()
	src, err := os.ReadFile(filepath.Join("..", "..", "examples", "quickstart", "main.hcl"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "main.hcl"), src, 0o600); err != nil {
		t.Fatal(err)
	}
	var out, errOut strings.Builder
	a := &app{stdout: &out, stderr: &errOut, stdin: strings.NewReader(""), getenv: func(string) string { return "" }, dir: dir}
	if code := cmdInit(context.Background(), a, nil); code != exitOK {
		t.Fatalf("init exited %d: %s", code, errOut.String())
	}
	fi, err := os.Stat(filepath.Join(dir, ".jitform"))
	if err != nil {
		t.Fatal(err)
	}
	if perm := fi.Mode().Perm(); perm != 0o700 {
		t.Errorf(".jitform has mode %o, want 700", perm)
	}
}

// -input=false on a terminal: apply asks nothing, so without --auto-approve
// it refuses and writes nothing, even when "yes" is waiting on stdin.
func TestInputFalseNeverAsks(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	for _, f := range []string{"main.hcl", "directory.ldif"} {
		b, err := os.ReadFile(filepath.Join("..", "..", "examples", "quickstart", f))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, f), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	run := func(args ...string) (int, string) {
		var out, errb strings.Builder
		a := &app{stdin: strings.NewReader("yes\n"), stdout: &out, stderr: &errb,
			getenv: func(string) string { return "" }, stdinTTY: true}
		code := a.main(context.Background(), append([]string{"-C", dir}, args...))
		return code, out.String() + errb.String()
	}
	code, out := run("apply", "-input=false")
	if code != exitError || !strings.Contains(out, "auto-approve") {
		t.Fatalf("apply -input=false exited %d, want 1 asking for --auto-approve:\n%s", code, out)
	}
	if _, err := os.Stat(filepath.Join(dir, ".jitform", "ledger.jsonl")); err == nil {
		t.Fatal("apply -input=false wrote the ledger")
	}
	// The control: the same terminal answering yes does apply.
	if code, out := run("apply"); code != exitOK || !strings.Contains(out, "Apply complete!") {
		t.Fatalf("apply with yes on the terminal exited %d:\n%s", code, out)
	}
}

// On a terminal, the configuration's warnings come before the prompt, so a
// person reads them before saying yes, and only once.
func TestApplyWarnsBeforeThePrompt(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	for _, f := range []string{"main.hcl", "directory.ldif"} {
		b, err := os.ReadFile(filepath.Join("..", "..", "examples", "quickstart", f))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, f), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	var both strings.Builder // stdout and stderr in the order written
	a := &app{stdin: strings.NewReader("yes\n"), stdout: &both, stderr: &both,
		getenv: func(string) string { return "" }, stdinTTY: true}
	if code := a.main(context.Background(), []string{"-C", dir, "apply"}); code != exitOK {
		t.Fatalf("apply exited %d:\n%s", code, both.String())
	}
	out := both.String()
	warn, prompt := strings.Index(out, "Warning: Grant start uses plantimestamp()"), strings.Index(out, "Do you want to make these changes?")
	if warn < 0 || prompt < 0 || warn > prompt {
		t.Fatalf("the warning (at %d) must come before the prompt (at %d):\n%s", warn, prompt, out)
	}
	if n := strings.Count(out, "Warning: Grant start uses plantimestamp()"); n != 1 {
		t.Errorf("the warning is shown %d times, want once:\n%s", n, out)
	}
}
