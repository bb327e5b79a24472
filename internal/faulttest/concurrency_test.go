package faulttest

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jitform/jitform/internal/crashpoint"
	"github.com/jitform/jitform/state"
)

// proc is a jitform process running in the background.
type proc struct {
	cmd  *exec.Cmd
	out  bytes.Buffer // stdout
	mu   sync.Mutex
	errs []string // stderr lines (run's logs)
	done chan struct{}
}

func start(t *testing.T, dir string, env []string, args ...string) *proc {
	t.Helper()
	p := &proc{done: make(chan struct{})}
	p.cmd = exec.Command(binary, append([]string{"-C", dir}, args...)...)
	p.cmd.Env = append(os.Environ(), env...)
	p.cmd.Stdout = &p.out
	stderr, err := p.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			p.mu.Lock()
			p.errs = append(p.errs, sc.Text())
			p.mu.Unlock()
		}
		_ = p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			_ = p.cmd.Process.Kill()
			_ = syscall.Kill(p.cmd.Process.Pid, syscall.SIGCONT)
			<-p.done
		}
	})
	return p
}

// wait waits for the process to exit and returns its exit code (-1 when a
// signal ended it).
func (p *proc) wait(t *testing.T, within time.Duration) int {
	t.Helper()
	select {
	case <-p.done:
		return p.cmd.ProcessState.ExitCode()
	case <-time.After(within):
		t.Fatalf("jitform %v did not exit within %s:\n%s%s", p.cmd.Args[1:], within, p.out.String(), p.stderr())
		return 0
	}
}

func (p *proc) stderr() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return strings.Join(p.errs, "\n")
}

// logged waits until a JSON log record with this msg appears on stderr and
// returns it.
func (p *proc) logged(t *testing.T, msg string, within time.Duration) map[string]any {
	t.Helper()
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		p.mu.Lock()
		lines := slices.Clone(p.errs)
		p.mu.Unlock()
		for _, l := range lines {
			var rec map[string]any
			if json.Unmarshal([]byte(l), &rec) == nil && rec["msg"] == msg {
				return rec
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("no %q log record within %s:\n%s", msg, within, p.stderr())
	return nil
}

// stopped waits until the process has frozen itself at its crash point.
func (p *proc) stopped(t *testing.T) {
	t.Helper()
	path := fmt.Sprintf("/proc/%d/stat", p.cmd.Process.Pid)
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatalf("jitform exited before its crash point: %v\n%s%s", err, p.out.String(), p.stderr())
		}
		// pid (comm) STATE ...: the state follows the last ')'.
		if f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:])); len(f) > 0 && f[0] == "T" {
			return
		}
	}
	t.Fatalf("jitform did not reach its crash point:\n%s%s", p.out.String(), p.stderr())
}

func ledgerEvents(t *testing.T, dir string) []state.Event {
	t.Helper()
	b, err := state.NewLocal(dir)
	if err != nil {
		t.Fatal(err)
	}
	evs, err := b.Events(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return evs
}

// writerRuns checks that the change events of each apply run (intent IDs
// are RUNID-N, outcomes name their intent) form one contiguous block, with
// one outcome per intent, and returns the runs in ledger order.
func writerRuns(t *testing.T, evs []state.Event) []string {
	t.Helper()
	var runs []string
	intents := map[string]bool{}
	outcomes := map[string]int{}
	for _, ev := range evs {
		var p struct {
			ID string `json:"id"`
		}
		switch ev.Type {
		case state.EventChangeIntent, state.EventChangeApplied, state.EventChangeFailed:
			if err := json.Unmarshal(ev.Payload, &p); err != nil {
				t.Fatal(err)
			}
		default:
			continue
		}
		run, _, _ := strings.Cut(p.ID, "-")
		if len(runs) == 0 || runs[len(runs)-1] != run {
			if slices.Contains(runs, run) {
				t.Errorf("event %d: run %s writes again after run %s: two processes interleaved in the ledger", ev.Seq, run, runs[len(runs)-1])
			}
			runs = append(runs, run)
		}
		if ev.Type == state.EventChangeIntent {
			intents[p.ID] = true
		} else {
			outcomes[p.ID]++
		}
	}
	for id := range intents {
		if outcomes[id] != 1 {
			t.Errorf("intent %s has %d outcomes, want 1", id, outcomes[id])
		}
	}
	return runs
}

// One apply is frozen mid-change, holding the lock with an intent on
// record and its provider call not made. Meanwhile a second apply gives up
// naming it, and a `jitform run` waits; neither writes a thing. Once the
// first goes on and finishes, the run gets the lock, finds nothing to do,
// and exits 0 on SIGTERM.
func TestTwoProcessesNeverBothWrite(t *testing.T) {
	dir := t.TempDir()
	d := ldifDirectory(t, dir)
	if err := os.WriteFile(filepath.Join(dir, "main.hcl"), []byte(policyRepo(d.target, time.Now(), true)), 0o600); err != nil {
		t.Fatal(err)
	}
	first := start(t, dir, []string{crashpoint.Env + "=" + crashpoint.Spec{Point: crashpoint.AfterIntent, N: 2, Stop: true}.String()},
		"apply", "--auto-approve")
	first.stopped(t)
	frozen := ledgerEvents(t, dir)
	// All intents of the target's batch are made durable in one write
	// before its one provider call: admins (3 changes) and ops (2), after
	// the apply_started event that names who runs it.
	intents := 0
	for _, ev := range frozen {
		if ev.Type == state.EventChangeIntent {
			intents++
		}
	}
	if len(frozen) != 6 || frozen[0].Type != state.EventApplyStarted || intents != 5 {
		t.Fatalf("the frozen apply has written %d events (%d intents), want apply_started and the 5 intents of its batch", len(frozen), intents)
	}

	code, out, _ := jitform(t, dir, nil, "apply", "--auto-approve", "--lock-timeout", "500ms")
	if code != 1 || !strings.Contains(out, "pid "+strconv.Itoa(first.cmd.Process.Pid)) {
		t.Errorf("a second apply exited %d, want 1 naming the holder's pid %d:\n%s", code, first.cmd.Process.Pid, out)
	}
	run := start(t, dir, nil, "run", "--log-format", "json", "--lock-timeout", "1m", "--drift-interval", "1h")
	run.logged(t, "cycle start", 10*time.Second)
	time.Sleep(300 * time.Millisecond) // give the run every chance to write, were the lock not held
	if got := ledgerEvents(t, dir); len(got) != len(frozen) {
		t.Fatalf("the ledger grew from %d to %d events while another process held the lock", len(frozen), len(got))
	}
	if got := d.members(t, admins); !slices.Contains(got, "uid=mallory,ou=people,dc=example,dc=org") {
		t.Fatalf("the directory changed while the lock holder was frozen: admins = %v", got)
	}

	if err := syscall.Kill(first.cmd.Process.Pid, syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	if code := first.wait(t, 30*time.Second); code != 0 {
		t.Fatalf("the first apply exited %d after being resumed:\n%s", code, first.out.String())
	}
	rec := run.logged(t, "cycle done", 30*time.Second)
	if rec["added"] != 0.0 || rec["removed"] != 0.0 || rec["failed"] != 0.0 {
		t.Errorf("the run's cycle after the first apply = %v, want nothing left to do", rec)
	}
	run.logged(t, "sleeping", 10*time.Second)
	if err := run.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if code := run.wait(t, 30*time.Second); code != 0 {
		t.Errorf("jitform run exited %d on SIGTERM, want 0:\n%s", code, run.stderr())
	}

	evs := ledgerEvents(t, dir)
	if runs := writerRuns(t, evs); len(runs) != 1 {
		t.Errorf("%d runs wrote changes (%v), want only the first apply", len(runs), runs)
	}
	if got, want := d.members(t, admins), []string{alice, bob, svc}; !slices.Equal(got, want) {
		t.Errorf("admins = %v, want %v", got, want)
	}
	checkLedger(t, dir)
}

// Several applies started at once on one state: exactly one makes the
// changes, the others wait for the lock, plan again under it and find
// nothing to do; no two interleave in the ledger.
func TestConcurrentAppliesRace(t *testing.T) {
	for _, kind := range []string{"ldif", "slapd"} {
		t.Run(kind, func(t *testing.T) {
			dir := t.TempDir()
			d := ldifDirectory(t, dir)
			if kind == "slapd" {
				d = slapdDirectory(t)
			}
			if err := os.WriteFile(filepath.Join(dir, "main.hcl"), []byte(policyRepo(d.target, time.Now(), true)), 0o600); err != nil {
				t.Fatal(err)
			}
			const n = 4
			procs := make([]*proc, n)
			for i := range procs {
				procs[i] = start(t, dir, nil, "apply", "--auto-approve", "--lock-timeout", "1m")
			}
			changed := 0
			for _, p := range procs {
				if code := p.wait(t, time.Minute); code != 0 {
					t.Fatalf("apply exited %d:\n%s%s", code, p.out.String(), p.stderr())
				}
				// A no-change apply says "No changes." and then
				// "Apply complete! 0 added, 0 removed.".
				switch {
				case strings.Contains(p.out.String(), "No changes"):
				case strings.Contains(p.out.String(), "Apply complete"):
					changed++
				default:
					t.Errorf("apply neither changed anything nor found nothing to do:\n%s", p.out.String())
				}
			}
			if changed != 1 {
				t.Errorf("%d of %d concurrent applies made changes, want exactly 1", changed, n)
			}
			if runs := writerRuns(t, ledgerEvents(t, dir)); len(runs) != 1 {
				t.Errorf("%d runs wrote changes, want 1", len(runs))
			}
			if got, want := d.members(t, admins), []string{alice, bob, svc}; !slices.Equal(got, want) {
				t.Errorf("admins = %v, want %v", got, want)
			}
			checkLedger(t, dir)
		})
	}
}
