package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/jitform/jitform/state"
)

// TestMain makes this test binary act as the jitform command (and a lock
// holder) when testscript runs it, so scripts exercise the real binary:
// flags, stdout, stderr and exit codes.
func TestMain(m *testing.M) {
	os.Exit(testscript.RunMain(m, map[string]func() int{
		"jitform":          Main,
		"jitform-holdlock": holdLock,
	}))
}

// TestScript runs cmd/jitform/testdata/script/*.txtar. Each script starts
// with a copy of examples/quickstart in $WORK/quickstart.
func TestScript(t *testing.T) {
	t.Parallel()
	testscript.Run(t, testscript.Params{
		Dir: "testdata/script",
		Setup: func(env *testscript.Env) error {
			env.Setenv("NO_COLOR", "")
			env.Setenv("JITFORM_CRASHPOINT", "")
			return copyDir(filepath.Join("..", "..", "examples", "quickstart"), filepath.Join(env.WorkDir, "quickstart"))
		},
		Cmds: map[string]func(ts *testscript.TestScript, neg bool, args []string){
			"replace":  cmdReplace,
			"waitfile": cmdWaitFile,
			"exitcode": cmdExitCode,
			"delline":  cmdDelLine,
			"timeless": cmdTimeless,
		},
		RequireExplicitExec: true,
	})
}

// holdLock takes the state lock of a repository and keeps it until a file
// appears: jitform-holdlock DIR READYFILE RELEASEFILE. It is "another
// process" for the lock tests.
func holdLock() int {
	if len(os.Args) != 4 {
		fmt.Fprintln(os.Stderr, "usage: jitform-holdlock DIR READYFILE RELEASEFILE")
		return 2
	}
	dir, ready, release := os.Args[1], os.Args[2], os.Args[3]
	b, err := state.NewLocal(dir)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	info := state.LockInfo{Operation: "apply", Who: "holder@testhost", PID: os.Getpid(), Since: time.Now().UTC()}
	unlock, err := b.Lock(context.Background(), info, 5*time.Second)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer unlock()
	if err := os.WriteFile(ready, []byte("locked\n"), 0o644); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		if _, err := os.Stat(release); err == nil {
			return 0
		}
		time.Sleep(20 * time.Millisecond)
	}
	fmt.Fprintln(os.Stderr, "jitform-holdlock: never released")
	return 1
}

// replace FILE OLD NEW: replace the first occurrence of OLD (Go-quoted
// strings allowed) in FILE; fails when OLD is absent.
func cmdReplace(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 3 {
		ts.Fatalf("usage: replace FILE OLD NEW")
	}
	name := ts.MkAbs(args[0])
	data, err := os.ReadFile(name)
	ts.Check(err)
	old, repl := unquote(ts, args[1]), unquote(ts, args[2])
	if !strings.Contains(string(data), old) {
		ts.Fatalf("replace: %q not found in %s", old, args[0])
	}
	ts.Check(os.WriteFile(name, []byte(strings.Replace(string(data), old, repl, 1)), 0o644))
}

func unquote(ts *testscript.TestScript, s string) string {
	return strings.NewReplacer(`\n`, "\n", `\t`, "\t").Replace(s)
}

// delline FILE N: delete line N (1-based) of FILE.
func cmdDelLine(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: delline FILE N")
	}
	n, err := strconv.Atoi(args[1])
	ts.Check(err)
	name := ts.MkAbs(args[0])
	data, err := os.ReadFile(name)
	ts.Check(err)
	lines := strings.SplitAfter(string(data), "\n")
	if n < 1 || n > len(lines) {
		ts.Fatalf("delline: %s has no line %d", args[0], n)
	}
	lines = append(lines[:n-1], lines[n:]...)
	ts.Check(os.WriteFile(name, []byte(strings.Join(lines, "")), 0o644))
}

var (
	stampRE  = regexp.MustCompile(`\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ`)
	planIDRE = regexp.MustCompile(`(jitform plan) [0-9a-f]{12}`)
)

// timeless FILE: replace RFC 3339 times with TIME and the plan ID with ID,
// so output that depends on the clock can be compared with cmp.
func cmdTimeless(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: timeless FILE")
	}
	name := ts.MkAbs(args[0])
	data, err := os.ReadFile(name)
	ts.Check(err)
	out := stampRE.ReplaceAllString(string(data), "TIME")
	out = planIDRE.ReplaceAllString(out, "$1 ID")
	ts.Check(os.WriteFile(name, []byte(out), 0o644))
}

// waitfile FILE: wait up to 10 s for FILE to exist.
func cmdWaitFile(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: waitfile FILE")
	}
	name := ts.MkAbs(args[0])
	for i := 0; i < 500; i++ {
		if _, err := os.Stat(name); err == nil {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	ts.Fatalf("waitfile: %s did not appear within 10s", args[0])
}

// exitcode N PROG ARGS...: run PROG and require exit code N exactly (the
// builtin "! exec" only knows zero and non-zero; --detailed-exitcode needs 2).
func cmdExitCode(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) < 2 {
		ts.Fatalf("usage: exitcode N PROG ARGS...")
	}
	want, err := strconv.Atoi(args[0])
	ts.Check(err)
	err = ts.Exec(args[1], args[2:]...)
	got := 0
	if err != nil {
		var ee *exec.ExitError
		if !errors.As(err, &ee) {
			ts.Fatalf("exitcode: %v", err)
		}
		got = ee.ExitCode()
	}
	if got != want {
		ts.Fatalf("exit code %d, want %d", got, want)
	}
}

func copyDir(from, to string) error {
	return filepath.WalkDir(from, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(from, path)
		if d.IsDir() {
			if d.Name() == ".jitform" {
				return filepath.SkipDir
			}
			return os.MkdirAll(filepath.Join(to, rel), 0o755)
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(to, rel), data, 0o644)
	})
}
