package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jitform/jitform/internal/testbed/pgtest"
	"github.com/jitform/jitform/state"
)

// jitform runs the command in-process and returns exit code, stdout, stderr.
func jitform(t *testing.T, ctx context.Context, dir string, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	a := &app{stdin: strings.NewReader(""), stdout: &out, stderr: &errb, getenv: os.Getenv}
	code := a.main(ctx, append([]string{"-C", dir}, args...))
	return code, out.String(), errb.String()
}

// quickstartWithState copies the quickstart and adds a state "postgres" block.
func quickstartWithState(t *testing.T, schema string) string {
	t.Helper()
	dir := t.TempDir()
	if err := copyDir(filepath.Join("..", "..", "examples", "quickstart"), dir); err != nil {
		t.Fatal(err)
	}
	if schema != "" {
		block := fmt.Sprintf("state \"postgres\" {\n  url    = env(\"JITFORM_STATE_URL\")\n  schema = %q\n}\n", schema)
		if err := os.WriteFile(filepath.Join(dir, "state.hcl"), []byte(block), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func noLocalState(t *testing.T, dir string) {
	t.Helper()
	if _, err := os.Stat(filepath.Join(dir, state.StateDirName)); err == nil {
		t.Fatalf("%s was created: a repository with a state \"postgres\" block fell back to local files", state.StateDirName)
	}
}

// TestPostgresStateCommands drives the CLI against a real cluster: plan
// before init says to run init and touches no local file; init creates the
// schema; apply writes the ledger to PostgreSQL only; ledger verify reads
// it; state pull exports it and the local verifier accepts it; a newer
// schema is refused by plan and init; an unreachable database is a loud
// error without the password, never a fallback to local files.
func TestPostgresStateCommands(t *testing.T) {
	c := pgtest.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	db := c.NewDatabase(t)
	t.Setenv("JITFORM_STATE_URL", c.SuperURL(db))
	dir := quickstartWithState(t, "jitform")

	code, _, stderr := jitform(t, ctx, dir, "plan")
	if code != exitError || !strings.Contains(stderr, "jitform init") {
		t.Fatalf("plan before init: exit %d, stderr %q; want a refusal saying to run jitform init", code, stderr)
	}
	noLocalState(t, dir)

	code, stdout, stderr := jitform(t, ctx, dir, "init")
	if code != exitOK || !strings.Contains(stdout, "Created the PostgreSQL state") || !strings.Contains(stdout, fmt.Sprintf("schema version %d", state.PostgresSchemaVersion())) {
		t.Fatalf("init: exit %d\n%s\n%s", code, stdout, stderr)
	}
	if code, stdout, _ = jitform(t, ctx, dir, "init"); code != exitOK || !strings.Contains(stdout, "up to date") {
		t.Fatalf("second init: exit %d, %s", code, stdout)
	}
	code, stdout, stderr = jitform(t, ctx, dir, "apply", "--auto-approve")
	if code != exitOK || !strings.Contains(stdout, "Apply complete") {
		t.Fatalf("apply: exit %d\n%s\n%s", code, stdout, stderr)
	}
	noLocalState(t, dir)
	code, stdout, _ = jitform(t, ctx, dir, "ledger", "verify")
	if code != exitOK || !strings.Contains(stdout, "Ledger OK") {
		t.Fatalf("ledger verify: exit %d, %s", code, stdout)
	}
	pgHead := strings.Fields(stdout)[len(strings.Fields(stdout))-1]

	code, stdout, stderr = jitform(t, ctx, dir, "state", "pull")
	if code != exitOK || !strings.Contains(stdout, "Pulled") {
		t.Fatalf("state pull: exit %d\n%s\n%s", code, stdout, stderr)
	}
	local, err := state.NewLocal(dir)
	if err != nil {
		t.Fatal(err)
	}
	events, err := local.Events(ctx)
	if err != nil || len(events) == 0 || state.Head(events) != pgHead {
		t.Fatalf("pulled ledger: %d events, head %s, %v; want PostgreSQL's head %s", len(events), state.Head(events), err, pgHead)
	}
	// A second apply converges (nothing to do) and reads PostgreSQL, not the pulled copy.
	if code, stdout, stderr = jitform(t, ctx, dir, "plan", "--detailed-exitcode"); code != exitOK {
		t.Fatalf("plan after apply: exit %d\n%s\n%s", code, stdout, stderr)
	}

	c.Exec(t, db, "INSERT INTO jitform.schema_version (version, name) VALUES (999, '0999_future.sql')")
	for _, cmd := range [][]string{{"plan"}, {"init"}, {"ledger", "verify"}} {
		code, _, stderr = jitform(t, ctx, dir, cmd...)
		if code != exitError || !strings.Contains(stderr, "newer than this jitform") || !strings.Contains(stderr, "upgrade jitform") {
			t.Errorf("%v on a newer schema: exit %d, stderr %q", cmd, code, stderr)
		}
	}

	const secret = "Zq-unreachable-pw-5519"
	other := quickstartWithState(t, "jitform")
	t.Setenv("JITFORM_STATE_URL", fmt.Sprintf("postgres://jitform:%s@127.0.0.1:1/jitform", secret))
	for _, cmd := range [][]string{{"plan"}, {"apply", "--auto-approve"}, {"init"}, {"ledger", "log"}, {"state", "pull"}} {
		code, stdout, stderr = jitform(t, ctx, other, cmd...)
		if code != exitError {
			t.Errorf("%v against an unreachable database: exit %d", cmd, code)
		}
		if strings.Contains(stdout+stderr, secret) {
			t.Errorf("%v: the password is in the output: %s %s", cmd, stdout, stderr)
		}
		if !strings.Contains(stderr, "127.0.0.1") {
			t.Errorf("%v: the error does not say which database: %s", cmd, stderr)
		}
	}
	noLocalState(t, other)
}

// TestStatePushKeepsEveryHash: a repository with local state is moved to
// PostgreSQL with `state push`: same events, same head; a second push into
// the non-empty ledger is refused and changes nothing.
func TestStatePushKeepsEveryHash(t *testing.T) {
	c := pgtest.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	db := c.NewDatabase(t)
	t.Setenv("JITFORM_STATE_URL", c.SuperURL(db))
	dir := quickstartWithState(t, "")
	if code, stdout, stderr := jitform(t, ctx, dir, "apply", "--auto-approve"); code != exitOK {
		t.Fatalf("local apply: exit %d\n%s\n%s", code, stdout, stderr)
	}
	_, localOut, _ := jitform(t, ctx, dir, "ledger", "verify")
	if code, _, stderr := jitform(t, ctx, dir, "state", "push"); code != exitError || !strings.Contains(stderr, "state \"postgres\" block") {
		t.Fatalf("push without a state block: exit %d, %s", code, stderr)
	}
	block := "state \"postgres\" {\n  url    = env(\"JITFORM_STATE_URL\")\n  schema = \"team_a\"\n}\n"
	if err := os.WriteFile(filepath.Join(dir, "state.hcl"), []byte(block), 0o600); err != nil {
		t.Fatal(err)
	}
	if code, stdout, stderr := jitform(t, ctx, dir, "init"); code != exitOK {
		t.Fatalf("init: %d %s %s", code, stdout, stderr)
	}
	code, stdout, stderr := jitform(t, ctx, dir, "state", "push")
	if code != exitOK || !strings.Contains(stdout, "Pushed") || !strings.Contains(stdout, "schema team_a") {
		t.Fatalf("push: exit %d\n%s\n%s", code, stdout, stderr)
	}
	_, pgOut, _ := jitform(t, ctx, dir, "ledger", "verify")
	if pgOut != localOut || !strings.Contains(pgOut, "Ledger OK") {
		t.Fatalf("after push, ledger verify says %q; with local files it said %q", pgOut, localOut)
	}
	code, _, stderr = jitform(t, ctx, dir, "state", "push")
	if code != exitError || !strings.Contains(stderr, "already holds") {
		t.Fatalf("second push: exit %d, %s", code, stderr)
	}
	if _, again, _ := jitform(t, ctx, dir, "ledger", "verify"); again != pgOut {
		t.Fatalf("a refused push changed the ledger: %q then %q", pgOut, again)
	}
}

// syncBuf is a stderr that tests read while the command writes.
type syncBuf struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuf) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuf) count(s string) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return strings.Count(b.buf.String(), s)
}

// TestPostgresRunWakesOnLedgerAppend: `jitform run` with a drift interval
// of a month sleeps after its first cycle; an append by another process
// (here another state handle, as `grant approve` would) wakes it within
// two seconds, and its own appends do not keep it awake.
func TestPostgresRunWakesOnLedgerAppend(t *testing.T) {
	c := pgtest.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	db := c.NewDatabase(t)
	t.Setenv("JITFORM_STATE_URL", c.SuperURL(db))
	dir := quickstartWithState(t, "jitform")
	if code, stdout, stderr := jitform(t, ctx, dir, "init"); code != exitOK {
		t.Fatalf("init: %d %s %s", code, stdout, stderr)
	}
	rctx, stop := context.WithCancel(ctx)
	stderr := &syncBuf{}
	a := &app{stdin: strings.NewReader(""), stdout: io.Discard, stderr: stderr, getenv: os.Getenv}
	done := make(chan int, 1)
	go func() {
		done <- a.main(rctx, []string{"-C", dir, "run", "--log-format", "json", "--drift-interval", "720h"})
	}()
	waitFor := func(what string, n int, within time.Duration) time.Duration {
		t.Helper()
		start := time.Now()
		for stderr.count(what) < n {
			if time.Since(start) > within {
				t.Fatalf("no %d× %s within %s:\n%s", n, what, within, stderr.buf.String())
			}
			time.Sleep(10 * time.Millisecond)
		}
		return time.Since(start)
	}
	waitFor(`"msg":"sleeping"`, 1, 30*time.Second)
	// Its own apply (the quickstart's 4 changes) must not wake it.
	time.Sleep(time.Second)
	if n := stderr.count(`"msg":"woken early"`); n != 0 {
		t.Fatalf("run woke itself with its own appends:\n%s", stderr.buf.String())
	}
	other, err := state.NewPostgres(state.PostgresConfig{URL: c.SuperURL(db)})
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	start := time.Now()
	if _, err := other.Append(ctx, state.Event{Type: state.EventReview, Actor: "carol", Payload: []byte(`{"note":"wake up"}`)}); err != nil {
		t.Fatal(err)
	}
	waitFor(`"msg":"woken early"`, 1, 2*time.Second)
	waitFor(`"msg":"cycle start"`, 2, 2*time.Second)
	t.Logf("run started its next cycle %s after another process appended", time.Since(start).Round(time.Millisecond))
	stop()
	if code := <-done; code != exitOK {
		t.Fatalf("run exit %d", code)
	}
}

// TestPostgresEightConcurrentApplies runs 8 `jitform apply` processes at
// once on one repository with a PostgreSQL state: the state lock (an
// advisory lock) serialises them, so every change is made exactly once
// (4 intents, 4 outcomes), the other applies find nothing to do, and the
// chain verifies.
func TestPostgresEightConcurrentApplies(t *testing.T) {
	c := pgtest.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	bin := buildJitform(t)
	db := c.NewDatabase(t)
	t.Setenv("JITFORM_STATE_URL", c.SuperURL(db))
	dir := quickstartWithState(t, "jitform")
	if code, stdout, stderr := jitform(t, ctx, dir, "init"); code != exitOK {
		t.Fatalf("init: %d %s %s", code, stdout, stderr)
	}
	const procs = 8
	var wg sync.WaitGroup
	outs := make([]string, procs)
	errs := make([]error, procs)
	start := time.Now()
	for i := range procs {
		wg.Go(func() {
			cmd := exec.CommandContext(ctx, bin, "-C", dir, "apply", "--auto-approve", "--lock-timeout", "2m")
			out, err := cmd.CombinedOutput()
			outs[i], errs[i] = string(out), err
		})
	}
	wg.Wait()
	t.Logf("%d concurrent applies took %s", procs, time.Since(start).Round(time.Millisecond))
	for i := range procs {
		if errs[i] != nil {
			t.Errorf("apply %d: %v\n%s", i, errs[i], outs[i])
		}
	}
	p, err := state.NewPostgres(state.PostgresConfig{URL: c.SuperURL(db)})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	events, err := p.Events(ctx)
	if err != nil {
		t.Fatalf("the chain does not verify after concurrent applies: %v", err)
	}
	count := map[string]int{}
	for _, e := range events {
		count[e.Type]++
	}
	if count[state.EventChangeIntent] != 4 || count[state.EventChangeApplied] != 4 || count[state.EventChangeFailed] != 0 {
		t.Fatalf("events by type %v: want each of the quickstart's 4 changes made exactly once", count)
	}
	if code, stdout, _ := jitform(t, ctx, dir, "plan", "--detailed-exitcode"); code != exitOK {
		t.Fatalf("plan after the applies: exit %d\n%s", code, stdout)
	}
}

// TestStateLocalRunWakesOnGrantEvent: on local files, `jitform run` wakes
// within two seconds when another process appends a grant event to
// .jitform/ledger.jsonl, and its own change events do not wake it.
func TestStateLocalRunWakesOnGrantEvent(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	dir := quickstartWithState(t, "")
	rctx, stop := context.WithCancel(ctx)
	stderr := &syncBuf{}
	a := &app{stdin: strings.NewReader(""), stdout: io.Discard, stderr: stderr, getenv: os.Getenv}
	done := make(chan int, 1)
	go func() {
		done <- a.main(rctx, []string{"-C", dir, "run", "--log-format", "json", "--drift-interval", "720h"})
	}()
	waitFor := func(what string, n int, within time.Duration) {
		t.Helper()
		start := time.Now()
		for stderr.count(what) < n {
			if time.Since(start) > within {
				stop()
				<-done
				t.Fatalf("no %d× %s within %s:\n%s", n, what, within, stderr.buf.String())
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	waitFor(`"msg":"sleeping"`, 1, 30*time.Second)
	time.Sleep(time.Second)
	if n := stderr.count(`"msg":"woken early"`); n != 0 {
		t.Fatalf("run woke itself with its own change events:\n%s", stderr.buf.String())
	}
	other, err := state.NewLocal(dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := other.Append(ctx, state.Event{Type: state.EventReview, Actor: "carol", Payload: []byte(`{"note":"wake up"}`)}); err != nil {
		t.Fatal(err)
	}
	waitFor(`"msg":"woken early"`, 1, 2*time.Second)
	waitFor(`"msg":"cycle start"`, 2, 2*time.Second)
	stop()
	if code := <-done; code != exitOK {
		t.Fatalf("run exit %d", code)
	}
}

// buildJitform builds the jitform binary into the test's temp dir (the
// tests need real, separate processes to freeze and kill; the build cache
// makes every build after the first a link).
func buildJitform(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "jitform")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build jitform: %v\n%s", err, out)
	}
	return bin
}

// TestPostgresKillAtEveryApplyStep kills `jitform apply` (SIGKILL) at each
// step of its second change — before the intent, after the intent, after
// the directory call — with the PostgreSQL state. The killed process's
// lock dies with its session: the next apply, started at once, takes it,
// converges, and the chain verifies with no change applied twice. A frozen
// apply (SIGSTOP) holding the lock is named by a waiter that times out.
func TestPostgresKillAtEveryApplyStep(t *testing.T) {
	c := pgtest.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	bin := buildJitform(t)
	for _, point := range []string{"apply.before-intent", "apply.after-intent", "apply.after-call"} {
		t.Run(point, func(t *testing.T) {
			db := c.NewDatabase(t)
			t.Setenv("JITFORM_STATE_URL", c.SuperURL(db))
			dir := quickstartWithState(t, "jitform")
			if code, stdout, stderr := jitform(t, ctx, dir, "init"); code != exitOK {
				t.Fatalf("init: %d %s %s", code, stdout, stderr)
			}
			cmd := exec.CommandContext(ctx, bin, "-C", dir, "apply", "--auto-approve")
			cmd.Env = append(os.Environ(), "JITFORM_CRASHPOINT="+point+":2:stop")
			var out bytes.Buffer
			cmd.Stdout, cmd.Stderr = &out, &out
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			// Frozen at the point (SIGSTOP), holding the lock: a waiter names it.
			deadline := time.Now().Add(30 * time.Second)
			for !stopped(cmd.Process.Pid) {
				if time.Now().After(deadline) {
					t.Fatalf("apply never reached %s:\n%s", point, out.String())
				}
				time.Sleep(10 * time.Millisecond)
			}
			code, _, stderr := jitform(t, ctx, dir, "apply", "--auto-approve", "--lock-timeout", "200ms")
			if code != exitError || !strings.Contains(stderr, fmt.Sprintf("pid %d", cmd.Process.Pid)) {
				t.Fatalf("a waiter did not name the frozen apply (pid %d): exit %d: %s", cmd.Process.Pid, code, stderr)
			}
			if !strings.Contains(stderr, "apply") || !strings.Contains(stderr, "database session") {
				t.Errorf("lock error does not name the operation or say how the lock is freed: %s", stderr)
			}
			_ = cmd.Process.Kill()
			_ = cmd.Wait()

			killed := time.Now()
			code, stdout, stderr := jitform(t, ctx, dir, "apply", "--auto-approve", "--lock-timeout", "30s")
			t.Logf("the next apply finished %s after the kill", time.Since(killed).Round(time.Millisecond))
			if code != exitOK {
				t.Fatalf("apply after the kill: exit %d\n%s\n%s", code, stdout, stderr)
			}
			if code, stdout, _ := jitform(t, ctx, dir, "plan", "--detailed-exitcode"); code != exitOK {
				t.Fatalf("not converged after the kill at %s: exit %d\n%s", point, code, stdout)
			}
			p, err := state.NewPostgres(state.PostgresConfig{URL: c.SuperURL(db)})
			if err != nil {
				t.Fatal(err)
			}
			defer p.Close()
			events, err := p.Events(ctx)
			if err != nil {
				t.Fatalf("chain after the kill at %s: %v", point, err)
			}
			outcomes := map[string]int{}
			for _, e := range events {
				if e.Type == state.EventChangeApplied {
					var o state.ChangeOutcome
					if err := json.Unmarshal(e.Payload, &o); err != nil {
						t.Fatal(err)
					}
					outcomes[o.ID]++
					if outcomes[o.ID] > 1 {
						t.Errorf("change %s has two outcomes", o.ID)
					}
				}
			}
		})
	}
}

// stopped reports whether process pid is stopped (SIGSTOP): state T in /proc.
func stopped(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// pid (comm) STATE ...: the state follows the last ')'.
	i := bytes.LastIndexByte(b, ')')
	return i > 0 && i+2 < len(b) && (b[i+2] == 'T' || b[i+2] == 't')
}

// TestPostgresApplyLocksPerTarget: with the PostgreSQL state, an apply
// holds a lock per target it touches. While one apply of target A is frozen
// mid-change, an apply of target B runs to the end; a plan of A and a full
// apply wait and name the frozen holder; after it is killed everything
// converges and the chain verifies.
func TestPostgresApplyLocksPerTarget(t *testing.T) {
	c := pgtest.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	bin := buildJitform(t)
	db := c.NewDatabase(t)
	t.Setenv("JITFORM_STATE_URL", c.SuperURL(db))
	dir := quickstartWithState(t, "jitform")
	ldif, err := os.ReadFile(filepath.Join(dir, "directory.ldif"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "other.ldif"), ldif, 0o600); err != nil {
		t.Fatal(err)
	}
	other := `target "ldif" "other" {
  path   = "other.ldif"
  flavor = "openldap"
}

group "other_db_admins" {
  target    = target.ldif.other
  dn        = "cn=db-admins,ou=groups,dc=example,dc=org"
  members   = ["svc-backup"]
  exclusive = true
}
`
	if err := os.WriteFile(filepath.Join(dir, "other.hcl"), []byte(other), 0o600); err != nil {
		t.Fatal(err)
	}
	if code, stdout, stderr := jitform(t, ctx, dir, "init"); code != exitOK {
		t.Fatalf("init: %d %s %s", code, stdout, stderr)
	}
	// A scoped apply is the apply of a plan made with --target.
	if code, stdout, stderr := jitform(t, ctx, dir, "plan", "--target", "target.ldif.directory", "--out", "directory.plan"); code != exitOK {
		t.Fatalf("plan: %d %s %s", code, stdout, stderr)
	}
	frozen := exec.CommandContext(ctx, bin, "-C", dir, "apply", "directory.plan")
	frozen.Env = append(os.Environ(), "JITFORM_CRASHPOINT=apply.after-intent:1:stop")
	var out bytes.Buffer
	frozen.Stdout, frozen.Stderr = &out, &out
	if err := frozen.Start(); err != nil {
		t.Fatal(err)
	}
	defer frozen.Process.Kill()
	deadline := time.Now().Add(30 * time.Second)
	for !stopped(frozen.Process.Pid) {
		if time.Now().After(deadline) {
			t.Fatalf("apply never reached its first intent:\n%s", out.String())
		}
		time.Sleep(10 * time.Millisecond)
	}

	// Planned and applied while the frozen apply holds the first target
	// (planned now: a saved plan is stale once the ledger moved on).
	start := time.Now()
	if code, stdout, stderr := jitform(t, ctx, dir, "plan", "--target", "target.ldif.other", "--out", "other.plan", "--lock-timeout", "5s"); code != exitOK {
		t.Fatalf("plan of the other target while the first is frozen: %d %s %s", code, stdout, stderr)
	}
	code, stdout, stderr := jitform(t, ctx, dir, "apply", "other.plan", "--lock-timeout", "5s")
	if code != exitOK || !strings.Contains(stdout, "Apply complete") {
		t.Fatalf("apply of the other target while the first is frozen: exit %d\n%s\n%s", code, stdout, stderr)
	}
	t.Logf("the other target's apply ran beside the frozen one in %s", time.Since(start).Round(time.Millisecond))
	b, _ := os.ReadFile(filepath.Join(dir, "other.ldif"))
	if strings.Contains(string(b), "member: uid=mallory") {
		t.Fatalf("the other target's apply did not remove mallory:\n%s", stdout)
	}

	pid := fmt.Sprintf("pid %d", frozen.Process.Pid)
	for _, args := range [][]string{
		{"plan", "--target", "target.ldif.directory", "--lock-timeout", "200ms"},
		{"apply", "--auto-approve", "--lock-timeout", "200ms"},
	} {
		code, _, stderr := jitform(t, ctx, dir, args...)
		if code != exitError || !strings.Contains(stderr, pid) || !strings.Contains(stderr, "target.ldif.directory") {
			t.Errorf("%v while target.ldif.directory is held: exit %d, stderr %q; want a wait naming %s", args, code, stderr, pid)
		}
	}
	_ = frozen.Process.Kill()
	_ = frozen.Wait()
	if code, stdout, stderr := jitform(t, ctx, dir, "apply", "--auto-approve", "--lock-timeout", "30s"); code != exitOK {
		t.Fatalf("apply after the kill: exit %d\n%s\n%s", code, stdout, stderr)
	}
	if code, stdout, _ := jitform(t, ctx, dir, "plan", "--detailed-exitcode"); code != exitOK {
		t.Fatalf("not converged: exit %d\n%s", code, stdout)
	}
	if code, stdout, _ := jitform(t, ctx, dir, "ledger", "verify"); code != exitOK {
		t.Fatalf("ledger verify: %d %s", code, stdout)
	}
}

// TestPostgresRunReplicasSplitAndTakeOver runs two `jitform run` processes
// on one PostgreSQL state and four LDIF targets: they split the targets two
// and two (disjoint claims), and after one is killed with SIGKILL the other
// takes its targets over and corrects them on its next cycles.
func TestPostgresRunReplicasSplitAndTakeOver(t *testing.T) {
	c := pgtest.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	bin := buildJitform(t)
	db := c.NewDatabase(t)
	t.Setenv("JITFORM_STATE_URL", c.SuperURL(db))
	dir := quickstartWithState(t, "jitform")
	seed, err := os.ReadFile(filepath.Join(dir, "directory.ldif"))
	if err != nil {
		t.Fatal(err)
	}
	files := []string{"directory.ldif"}
	for i := 1; i <= 3; i++ {
		name := fmt.Sprintf("other%d", i)
		files = append(files, name+".ldif")
		hcl := fmt.Sprintf(`target "ldif" %q {
  path   = "%s.ldif"
  flavor = "openldap"
}

group "%s_admins" {
  target    = target.ldif.%s
  dn        = "cn=db-admins,ou=groups,dc=example,dc=org"
  members   = ["svc-backup"]
  exclusive = true
}
`, name, name, name, name)
		if err := os.WriteFile(filepath.Join(dir, name+".hcl"), []byte(hcl), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	seedAll := func() {
		for _, f := range files {
			if err := os.WriteFile(filepath.Join(dir, f), seed, 0o600); err != nil {
				t.Fatal(err)
			}
		}
	}
	seedAll()
	if code, stdout, stderr := jitform(t, ctx, dir, "init"); code != exitOK {
		t.Fatalf("init: %d %s %s", code, stdout, stderr)
	}
	type replica struct {
		cmd *exec.Cmd
		log *syncBuf
	}
	var reps []replica
	for range 2 {
		r := replica{log: &syncBuf{}}
		r.cmd = exec.CommandContext(ctx, bin, "-C", dir, "run", "--log-format", "json", "--drift-interval", "1h")
		r.cmd.Stderr = r.log
		if err := r.cmd.Start(); err != nil {
			t.Fatal(err)
		}
		defer r.cmd.Process.Kill()
		reps = append(reps, r)
	}
	clean := func(within time.Duration) time.Duration {
		t.Helper()
		start := time.Now()
		for {
			dirty := 0
			for _, f := range files {
				b, _ := os.ReadFile(filepath.Join(dir, f))
				if bytes.Contains(b, []byte("member: uid=mallory")) {
					dirty++
				}
			}
			if dirty == 0 {
				return time.Since(start)
			}
			if time.Since(start) > within {
				t.Fatalf("%d target(s) still have mallory after %s\nreplica 0:\n%s\nreplica 1:\n%s", dirty, within, reps[0].log.buf.String(), reps[1].log.buf.String())
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	clean(30 * time.Second)

	// Let both see each other, then read their latest claims.
	lastClaims := func(r replica) []string {
		r.log.mu.Lock()
		defer r.log.mu.Unlock()
		var last []string
		for _, line := range strings.Split(r.log.buf.String(), "\n") {
			var rec struct {
				Msg     string `json:"msg"`
				Targets string `json:"targets"`
			}
			if json.Unmarshal([]byte(line), &rec) == nil && rec.Msg == "targets claimed" {
				last = strings.Fields(rec.Targets)
			}
		}
		return last
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		a, b := lastClaims(reps[0]), lastClaims(reps[1])
		all := map[string]bool{}
		for _, x := range append(append([]string{}, a...), b...) {
			all[x] = true
		}
		if len(a) == 2 && len(b) == 2 && len(all) == 4 {
			t.Logf("split: %v | %v", a, b)
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the replicas did not split the 4 targets 2 and 2: %v | %v", a, b)
		}
		time.Sleep(100 * time.Millisecond)
	}

	killed := time.Now()
	if err := reps[0].cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = reps[0].cmd.Wait()
	seedAll()
	took := clean(30 * time.Second)
	t.Logf("after kill -9 of one replica, the other corrected all 4 targets %s after the re-seed (%s after the kill)", took.Round(time.Millisecond), time.Since(killed).Round(time.Millisecond))
	if got := lastClaims(reps[1]); len(got) != 4 {
		t.Errorf("the surviving replica claims %v, want all 4 targets", got)
	}
	_ = reps[1].cmd.Process.Signal(syscall.SIGTERM)
	if err := reps[1].cmd.Wait(); err != nil {
		t.Errorf("surviving replica after SIGTERM: %v", err)
	}
	p, err := state.NewPostgres(state.PostgresConfig{URL: c.SuperURL(db)})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if _, err := p.Events(ctx); err != nil {
		t.Fatalf("chain after the replicas: %v", err)
	}
}
