package state

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// Child roles: the test binary re-executed as "another process".
const helperEnv = "JITFORM_STATE_TEST_HELPER"

func TestMain(m *testing.M) {
	switch os.Getenv(helperEnv) {
	case "":
		os.Exit(m.Run())
	case "append":
		os.Exit(helperAppend())
	case "lock":
		os.Exit(helperLock())
	case "crash":
		os.Exit(helperCrash())
	default:
		fmt.Fprintln(os.Stderr, "unknown helper role")
		os.Exit(2)
	}
}

// helperAppend appends N events one at a time, each naming this child.
func helperAppend() int {
	dir, who := os.Getenv("JITFORM_DIR"), os.Getenv("JITFORM_WHO")
	n, _ := strconv.Atoi(os.Getenv("JITFORM_N"))
	l, err := NewLocal(dir)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	for i := range n {
		if _, err := l.Append(context.Background(), testEvent(who, i)); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
	}
	return 0
}

// helperCrash appends one event and is killed (SIGKILL, no cleanup) at
// the crash point JITFORM_POINT.
func helperCrash() int {
	l, err := NewLocal(os.Getenv("JITFORM_DIR"))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	point := os.Getenv("JITFORM_POINT")
	l.crash = func(p string) {
		if p == point {
			self, _ := os.FindProcess(os.Getpid())
			self.Kill()
			select {}
		}
	}
	if _, err := l.Append(context.Background(), testEvent("crash", 1), testEvent("crash", 2)); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

// helperLock takes the lock, says so in a file, and sleeps until killed.
func helperLock() int {
	l, err := NewLocal(os.Getenv("JITFORM_DIR"))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	info := LockInfo{Operation: "apply", Who: "child@testhost", PID: os.Getpid(), Since: time.Now().UTC()}
	if _, err := l.Lock(context.Background(), info, 5*time.Second); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if err := os.WriteFile(os.Getenv("JITFORM_READY"), []byte("locked"), 0o600); err != nil {
		return 1
	}
	time.Sleep(time.Minute)
	return 0
}

func helperCmd(t *testing.T, role string, env ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), append([]string{helperEnv + "=" + role}, env...)...)
	cmd.Stderr = os.Stderr
	return cmd
}

type testPayload struct {
	Who string `json:"who"`
	I   int    `json:"i"`
}

func testEvent(who string, i int) Event {
	p, _ := json.Marshal(testPayload{Who: who, I: i})
	return Event{
		Time: time.Date(2026, 11, 23, 9, 0, i%60, 0, time.UTC), Type: EventChangeApplied, Actor: SystemActor,
		Payload: p,
	}
}

// newLedger makes a state with n events and returns the config dir.
func newLedger(t *testing.T, n int) (string, *Local) {
	t.Helper()
	dir := t.TempDir()
	l, err := NewLocal(dir)
	if err != nil {
		t.Fatal(err)
	}
	for i := range n {
		ev := Event{Type: EventChangeApplied, Actor: SystemActor, Time: time.Date(2026, 11, 23, 9, i, 0, 0, time.UTC),
			Payload: json.RawMessage(fmt.Sprintf(`{"id":"c%d","status":"done"}`, i+1))}
		if _, err := l.Append(context.Background(), ev); err != nil {
			t.Fatal(err)
		}
	}
	return dir, l
}

func ledgerLines(t *testing.T, dir string) [][]byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, StateDirName, LedgerFileName))
	if err != nil {
		t.Fatal(err)
	}
	return bytes.SplitAfter(b, []byte("\n"))[:bytes.Count(b, []byte("\n"))]
}

func writeLedger(t *testing.T, dir string, lines [][]byte) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, StateDirName, LedgerFileName), bytes.Join(lines, nil), 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestAppendAndRead(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	l, err := NewLocal(dir)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	events, err := l.Events(ctx)
	if err != nil || len(events) != 0 {
		t.Fatalf("Events of a missing ledger = %v, %v; want none", events, err)
	}
	berlin := time.FixedZone("CET", 3600)
	in := []Event{
		// Non-canonical payload: spaces, key order, HTML characters.
		{Type: EventChangeIntent, Actor: SystemActor, Time: time.Date(2026, 11, 23, 10, 0, 0, 5, berlin),
			Payload: json.RawMessage(`{ "z": 1, "a": "<b>&amp;</b>", "n": 1.50 }`)},
		{Type: EventChangeApplied, Actor: SystemActor, Payload: nil},
	}
	stored, err := l.Append(ctx, in...)
	if err != nil {
		t.Fatal(err)
	}
	if stored[0].Seq != 1 || stored[1].Seq != 2 || stored[0].Prev != "" || stored[1].Prev != stored[0].Hash {
		t.Fatalf("chain fields not filled: %+v", stored)
	}
	if got := string(stored[0].Payload); got != `{"a":"<b>&amp;</b>","n":1.50,"z":1}` {
		t.Errorf("payload not canonical: %s", got)
	}
	if stored[0].Time.Location() != time.UTC || !stored[0].Time.Equal(in[0].Time) {
		t.Errorf("time = %v, want %v in UTC", stored[0].Time, in[0].Time)
	}
	if stored[1].Time.IsZero() || string(stored[1].Payload) != "null" {
		t.Errorf("defaults not filled: %+v", stored[1])
	}
	read, err := l.Events(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(read) != 2 {
		t.Fatalf("read %d events, want 2", len(read))
	}
	for i := range read {
		a, _ := EncodeEvent(read[i])
		b, _ := EncodeEvent(stored[i])
		if !bytes.Equal(a, b) {
			t.Errorf("event %d read back as\n%s\nwant\n%s", i+1, a, b)
		}
	}
	if err := Verify(read); err != nil {
		t.Fatal(err)
	}
	if Head(read) != stored[1].Hash || Head(nil) != "" {
		t.Errorf("Head = %q, want %q", Head(read), stored[1].Hash)
	}
	// The same logical payload written differently hashes the same.
	e1, e2 := stored[0], stored[0]
	e2.Payload = json.RawMessage("{\"n\":1.50,\n \"z\":1,\"a\":\"<b>&amp;</b>\"}")
	h1, _ := HashEvent(e1)
	h2, _ := HashEvent(e2)
	if h1 != h2 || h1 != stored[0].Hash {
		t.Errorf("hash depends on payload spelling: %s %s %s", h1, h2, stored[0].Hash)
	}

	for name, want := range map[string]os.FileMode{
		StateDirName: 0o700, StateDirName + "/" + LedgerFileName: 0o600, StateDirName + "/" + HeadFileName: 0o600,
	} {
		fi, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != want {
			t.Errorf("%s mode %v, want %v", name, fi.Mode().Perm(), want)
		}
	}
	// The next append continues the chain.
	more, err := l.Append(ctx, testEvent("x", 1))
	if err != nil || more[0].Seq != 3 || more[0].Prev != stored[1].Hash {
		t.Fatalf("third append: %+v, %v", more, err)
	}
}

func TestAppendRejectsBadEvents(t *testing.T) {
	t.Parallel()
	_, l := newLedger(t, 1)
	for _, e := range []Event{
		{Type: "", Actor: SystemActor, Payload: json.RawMessage(`{}`)},
		{Type: EventRequest, Actor: SystemActor, Payload: json.RawMessage(`{`)},
		{Type: EventRequest, Actor: SystemActor, Payload: json.RawMessage(`{} {}`)},
	} {
		if _, err := l.Append(context.Background(), testEvent("ok", 0), e); err == nil {
			t.Errorf("Append(%+v) succeeded", e)
		}
	}
	// Nothing of a refused batch was written.
	events, err := l.Events(context.Background())
	if err != nil || len(events) != 1 {
		t.Fatalf("after refused appends: %d events, %v; want 1", len(events), err)
	}
}

// TestChainTamper: every kind of damage is found, naming the first bad event.
func TestChainTamper(t *testing.T) {
	t.Parallel()
	head := func(dir string) string { return filepath.Join(dir, StateDirName, HeadFileName) }
	tests := []struct {
		name     string
		damage   func(t *testing.T, dir string, lines [][]byte)
		seq      int64
		line     int
		reason   string
		noAppend bool // Append still works (damage before the tail)
	}{
		{"edit a field", func(t *testing.T, dir string, lines [][]byte) {
			lines[2] = bytes.Replace(lines[2], []byte(`"status":"done"`), []byte(`"status":"failed"`), 1)
			writeLedger(t, dir, lines)
		}, 3, 3, "was edited", true},
		{"edit the actor", func(t *testing.T, dir string, lines [][]byte) {
			lines[0] = bytes.Replace(lines[0], []byte(`"actor":"jitform"`), []byte(`"actor":"mallory"`), 1)
			writeLedger(t, dir, lines)
		}, 1, 1, "was edited", true},
		{"delete a middle line", func(t *testing.T, dir string, lines [][]byte) {
			writeLedger(t, dir, append(lines[:2:2], lines[3:]...))
		}, 4, 3, "deleted, inserted or moved", true},
		{"delete the first line", func(t *testing.T, dir string, lines [][]byte) {
			writeLedger(t, dir, lines[1:])
		}, 2, 1, "deleted, inserted or moved", true},
		{"delete the last line", func(t *testing.T, dir string, lines [][]byte) {
			writeLedger(t, dir, lines[:4])
		}, 5, 5, "removed from the end", false},
		{"empty the ledger", func(t *testing.T, dir string, lines [][]byte) {
			writeLedger(t, dir, nil)
		}, 1, 1, "removed", false},
		{"swap two lines", func(t *testing.T, dir string, lines [][]byte) {
			lines[1], lines[2] = lines[2], lines[1]
			writeLedger(t, dir, lines)
		}, 3, 2, "deleted, inserted or moved", true},
		{"duplicate a line", func(t *testing.T, dir string, lines [][]byte) {
			writeLedger(t, dir, append(lines[:3:3], lines[2:]...))
		}, 3, 4, "deleted, inserted or moved", true},
		{"bad JSON", func(t *testing.T, dir string, lines [][]byte) {
			lines[1] = []byte("{\"seq\":2,\"time\":\n")
			writeLedger(t, dir, lines)
		}, 2, 2, "not a JSON event", true},
		{"blank line", func(t *testing.T, dir string, lines [][]byte) {
			writeLedger(t, dir, append(lines[:1:1], append([][]byte{[]byte("\n")}, lines[1:]...)...))
		}, 2, 2, "empty line", true},
		{"reformatted line, same content", func(t *testing.T, dir string, lines [][]byte) {
			lines[3] = bytes.Replace(lines[3], []byte(`,"type"`), []byte(`, "type"`), 1)
			writeLedger(t, dir, lines)
		}, 4, 4, "canonical form", true},
		{"unknown field added", func(t *testing.T, dir string, lines [][]byte) {
			lines[3] = bytes.Replace(lines[3], []byte(`{"seq"`), []byte(`{"x":1,"seq"`), 1)
			writeLedger(t, dir, lines)
		}, 4, 4, "canonical form", true},
		{"torn last line (crash mid-append)", func(t *testing.T, dir string, lines [][]byte) {
			// The crash came before the head was recorded.
			writeLedger(t, dir, append(lines[:4:4], lines[4][:len(lines[4])/2]))
			var h headRecord
			b, _ := os.ReadFile(head(dir))
			json.Unmarshal(b, &h)
			var e Event
			json.Unmarshal(lines[3], &e)
			b, _ = json.Marshal(headRecord{Seq: 4, Hash: e.Hash})
			os.WriteFile(head(dir), b, 0o600)
		}, 5, 5, "last write was interrupted", false},
		{"cut inside the last event, head intact (not a crash)", func(t *testing.T, dir string, lines [][]byte) {
			writeLedger(t, dir, append(lines[:4:4], lines[4][:len(lines[4])/2]))
		}, 5, 5, "a crash cannot do this", false},
		{"partial line after the last event", func(t *testing.T, dir string, lines [][]byte) {
			writeLedger(t, dir, append(lines, []byte(`{"seq":6,"ti`)))
		}, 6, 6, "truncate -s", false},
		{"head deleted", func(t *testing.T, dir string, lines [][]byte) {
			os.Remove(head(dir))
		}, 1, 1, "ledger.head is missing", false},
		{"head rewritten", func(t *testing.T, dir string, lines [][]byte) {
			os.WriteFile(head(dir), []byte(`{"seq":5,"hash":"00"}`), 0o600)
		}, 5, 5, "rewritten", false},
		{"ledger deleted", func(t *testing.T, dir string, lines [][]byte) {
			os.Remove(filepath.Join(dir, StateDirName, LedgerFileName))
		}, 1, 1, "the ledger was deleted", false},
		{"head garbage", func(t *testing.T, dir string, lines [][]byte) {
			os.WriteFile(head(dir), []byte(`seq 5`), 0o600)
		}, 1, 1, "not a valid head record", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir, l := newLedger(t, 5)
			tc.damage(t, dir, ledgerLines(t, dir))
			_, err := l.Events(context.Background())
			var ce *ChainError
			if !errors.As(err, &ce) {
				t.Fatalf("Events error = %v, want a *ChainError", err)
			}
			if ce.Seq != tc.seq || ce.Line != tc.line || !strings.Contains(ce.Reason, tc.reason) {
				t.Fatalf("ChainError = {Seq %d, Line %d, %q}, want {Seq %d, Line %d, ...%q...}", ce.Seq, ce.Line, ce.Reason, tc.seq, tc.line, tc.reason)
			}
			// The report's read verifies exactly as much.
			if _, aerr := l.AuditEvents(context.Background()); aerr == nil || aerr.Error() != err.Error() {
				t.Fatalf("AuditEvents error = %v, want Events' %v", aerr, err)
			}
			// Append re-reads the tail: damage at the end is refused there
			// too; damage before it is left to Events, which plan and apply
			// run first.
			before, _ := os.ReadFile(filepath.Join(dir, StateDirName, LedgerFileName))
			_, aerr := l.Append(context.Background(), testEvent("late", 0))
			if !tc.noAppend {
				if aerr == nil {
					t.Fatalf("Append on a ledger with damaged tail succeeded")
				}
				after, _ := os.ReadFile(filepath.Join(dir, StateDirName, LedgerFileName))
				if !bytes.Equal(before, after) {
					t.Fatalf("a refused Append changed the ledger")
				}
			}
		})
	}
}

func TestHeadBehindAfterCrash(t *testing.T) {
	t.Parallel()
	// A crash after the ledger fsync and before the head rename leaves the
	// head one append behind: that is not tampering.
	dir, l := newLedger(t, 3)
	lines := ledgerLines(t, dir)
	var e Event
	json.Unmarshal(lines[1], &e)
	b, _ := json.Marshal(headRecord{Seq: 2, Hash: e.Hash})
	if err := os.WriteFile(filepath.Join(dir, StateDirName, HeadFileName), b, 0o600); err != nil {
		t.Fatal(err)
	}
	if events, err := l.Events(context.Background()); err != nil || len(events) != 3 {
		t.Fatalf("Events = %d, %v; want 3 events", len(events), err)
	}
	if _, err := l.Append(context.Background(), testEvent("x", 0)); err != nil {
		t.Fatal(err)
	}
	if events, err := l.Events(context.Background()); err != nil || len(events) != 4 {
		t.Fatalf("Events = %d, %v; want 4 events", len(events), err)
	}
}

func TestVerify(t *testing.T) {
	t.Parallel()
	_, l := newLedger(t, 4)
	events, err := l.Events(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if err := Verify(events); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		change func([]Event) []Event
		seq    int64
		reason string
	}{
		{"edited payload", func(e []Event) []Event { e[1].Payload = json.RawMessage(`{"id":"c2","status":"failed"}`); return e }, 2, "edited"},
		{"edited time", func(e []Event) []Event { e[2].Time = e[2].Time.Add(time.Second); return e }, 3, "edited"},
		{"deleted", func(e []Event) []Event { return append(e[:1], e[2:]...) }, 3, "deleted"},
		{"prev rewritten", func(e []Event) []Event { e[3].Prev = "x"; return e }, 4, "prev"},
		{"bad seq", func(e []Event) []Event { e[0].Seq = 0; return e }, 1, "not positive"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			err := Verify(tc.change(append([]Event(nil), events...)))
			var ce *ChainError
			if !errors.As(err, &ce) || ce.Seq != tc.seq || !strings.Contains(ce.Reason, tc.reason) {
				t.Fatalf("Verify = %v, want event %d: ...%s...", err, tc.seq, tc.reason)
			}
		})
	}
}

func checkAppendedOnce(t *testing.T, events []Event, writers []string, n int) {
	t.Helper()
	if err := Verify(events); err != nil {
		t.Fatal(err)
	}
	if len(events) != len(writers)*n {
		t.Fatalf("%d events, want %d", len(events), len(writers)*n)
	}
	seen := map[testPayload]bool{}
	for _, e := range events {
		var p testPayload
		if err := json.Unmarshal(e.Payload, &p); err != nil {
			t.Fatal(err)
		}
		if seen[p] {
			t.Fatalf("event %+v recorded twice", p)
		}
		seen[p] = true
	}
	for _, w := range writers {
		for i := range n {
			if !seen[testPayload{w, i}] {
				t.Fatalf("event %s/%d lost", w, i)
			}
		}
	}
}

func TestConcurrentAppendGoroutines(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	const n = 40
	writers := []string{"g1", "g2", "g3"}
	var wg sync.WaitGroup
	errs := make(chan error, len(writers))
	for _, w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			l, err := NewLocal(dir) // each its own backend, as separate commands would
			if err != nil {
				errs <- err
				return
			}
			for i := range n {
				if _, err := l.Append(context.Background(), testEvent(w, i)); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	l, _ := NewLocal(dir)
	events, err := l.Events(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	checkAppendedOnce(t, events, writers, n)
}

func TestConcurrentAppendProcesses(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	const n = 30
	writers := []string{"p1", "p2"}
	var cmds []*exec.Cmd
	for _, w := range writers {
		cmd := helperCmd(t, "append", "JITFORM_DIR="+dir, "JITFORM_WHO="+w, "JITFORM_N="+strconv.Itoa(n))
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		cmds = append(cmds, cmd)
	}
	for _, cmd := range cmds {
		if err := cmd.Wait(); err != nil {
			t.Fatalf("child: %v", err)
		}
	}
	l, _ := NewLocal(dir)
	events, err := l.Events(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	checkAppendedOnce(t, events, writers, n)
}

func TestLockTimeoutNamesHolder(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	l, _ := NewLocal(dir)
	since := time.Date(2026, 11, 23, 9, 30, 0, 0, time.UTC)
	unlock, err := l.Lock(context.Background(), LockInfo{Operation: "apply", Who: "carol@ci-runner", PID: 4242, Since: since}, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	other, _ := NewLocal(dir)
	_, err = other.Lock(context.Background(), LockInfo{Operation: "plan", Who: "dave@laptop", PID: 7}, 100*time.Millisecond)
	var le *LockError
	if !errors.As(err, &le) {
		t.Fatalf("second Lock = %v, want a *LockError", err)
	}
	msg := err.Error()
	for _, want := range []string{"held by apply", "carol@ci-runner", "pid 4242", "since 2026-11-23T09:30:00Z", "--lock-timeout", filepath.Join(StateDirName, LockFileName)} {
		if !strings.Contains(msg, want) {
			t.Errorf("lock error %q does not say %q", msg, want)
		}
	}
	if le.Waited < 100*time.Millisecond {
		t.Errorf("gave up after %v, before the timeout", le.Waited)
	}
	// A cancelled context ends the wait with the context's error.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := other.Lock(ctx, LockInfo{}, time.Minute); !errors.Is(err, context.Canceled) {
		t.Errorf("Lock with a cancelled context = %v", err)
	}
	if err := unlock(); err != nil {
		t.Fatal(err)
	}
	unlock2, err := other.Lock(context.Background(), LockInfo{Operation: "plan", Who: "dave@laptop", PID: 7}, time.Second)
	if err != nil {
		t.Fatalf("Lock after release: %v", err)
	}
	b, _ := os.ReadFile(filepath.Join(dir, StateDirName, LockFileName))
	if !strings.Contains(string(b), "dave@laptop") {
		t.Errorf("lock file holds %q, want the new holder", b)
	}
	unlock2()
}

// TestLockReleasedWhenHolderDies: a killed holder never wedges the lock.
func TestLockReleasedWhenHolderDies(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ready := filepath.Join(t.TempDir(), "ready")
	cmd := helperCmd(t, "lock", "JITFORM_DIR="+dir, "JITFORM_READY="+ready)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	deadline := time.Now().Add(20 * time.Second)
	for {
		if _, err := os.Stat(ready); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("child never took the lock")
		}
		time.Sleep(10 * time.Millisecond)
	}
	l, _ := NewLocal(dir)
	_, err := l.Lock(context.Background(), LockInfo{Operation: "apply"}, 50*time.Millisecond)
	if err == nil || !strings.Contains(err.Error(), fmt.Sprintf("pid %d", cmd.Process.Pid)) || !strings.Contains(err.Error(), "child@testhost") {
		t.Fatalf("Lock while the child holds it = %v, want it to name the child", err)
	}
	if err := cmd.Process.Kill(); err != nil { // SIGKILL: no cleanup runs
		t.Fatal(err)
	}
	cmd.Wait()
	unlock, err := l.Lock(context.Background(), LockInfo{Operation: "apply"}, 5*time.Second)
	if err != nil {
		t.Fatalf("Lock after the holder was killed: %v", err)
	}
	unlock()
}

func TestNewLocalErrors(t *testing.T) {
	t.Parallel()
	if _, err := NewLocal(filepath.Join(t.TempDir(), "missing")); err == nil {
		t.Error("NewLocal of a missing directory succeeded")
	}
	f := filepath.Join(t.TempDir(), "file")
	os.WriteFile(f, nil, 0o600)
	if _, err := NewLocal(f); err == nil {
		t.Error("NewLocal of a file succeeded")
	}
}

// TestHashIsOfTheWrittenLine proves what docs/ledger.md tells users: the
// hash is SHA-256 of the stored line with "hash":"" (checkable with sed
// and sha256sum), and prev is the previous line's hash.
func TestHashIsOfTheWrittenLine(t *testing.T) {
	t.Parallel()
	dir, _ := newLedger(t, 3)
	prev := ""
	for i, line := range ledgerLines(t, dir) {
		line = bytes.TrimSuffix(line, []byte("\n"))
		var e Event
		if err := json.Unmarshal(line, &e); err != nil {
			t.Fatal(err)
		}
		blank := bytes.Replace(line, []byte(`"hash":"`+e.Hash+`"}`), []byte(`"hash":""}`), 1)
		sum := sha256.Sum256(blank)
		if hex.EncodeToString(sum[:]) != e.Hash {
			t.Fatalf("line %d: hash %s is not sha256 of the line with an empty hash", i+1, e.Hash)
		}
		if e.Prev != prev {
			t.Fatalf("line %d: prev %s, want %s", i+1, e.Prev, prev)
		}
		prev = e.Hash
	}
}

func TestAppendWaitsForContext(t *testing.T) {
	t.Parallel()
	dir, l := newLedger(t, 1)
	// Another writer holds the ledger's flock: Append waits, and gives up
	// when its context ends, writing nothing.
	f, err := os.OpenFile(filepath.Join(dir, StateDirName, LedgerFileName), os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if ok, err := tryLock(f, true); !ok || err != nil {
		t.Fatalf("take the ledger's lock: %v, %v", ok, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := l.Append(ctx, testEvent("x", 0)); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Append while another holds the ledger = %v, want the context's deadline", err)
	}
	unlockFile(f)
	if events, err := l.Events(context.Background()); err != nil || len(events) != 1 {
		t.Fatalf("Events = %d, %v; want the 1 event from before", len(events), err)
	}
}

func TestInit(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	l, _ := NewLocal(dir)
	if err := l.Init(context.Background()); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(l.Dir())
	if err != nil || fi.Mode().Perm() != 0o700 || !fi.IsDir() {
		t.Fatalf("state dir %v, %v; want a 0700 directory", fi, err)
	}
	if err := l.Init(context.Background()); err != nil {
		t.Fatalf("second Init: %v", err)
	}
}

// TestCrashDuringAppend kills a real process inside Append. A crash after
// the lines are durable but before the head is recorded loses nothing; a
// crash mid-write is reported as an interrupted write, never silently
// dropped, and the advice in the message repairs it.
func TestCrashDuringAppend(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		point  string
		events int // after the crash
	}{
		{"before-head", 4},
		{"torn", 3}, // the batch's first event is whole; its second is cut
	} {
		t.Run(tc.point, func(t *testing.T) {
			t.Parallel()
			dir, l := newLedger(t, 2)
			cmd := helperCmd(t, "crash", "JITFORM_DIR="+dir, "JITFORM_POINT="+tc.point)
			if err := cmd.Run(); err == nil {
				t.Fatal("the child was not killed")
			}
			events, err := l.Events(context.Background())
			if tc.point == "torn" {
				var ce *ChainError
				if !errors.As(err, &ce) || ce.Seq != 4 || !strings.Contains(ce.Reason, "last write was interrupted") {
					t.Fatalf("Events after a torn write = %v, want event 4 named as an interrupted write", err)
				}
				if _, err := l.Append(context.Background(), testEvent("x", 0)); err == nil {
					t.Fatal("Append after a torn write succeeded")
				}
				// The documented repair: truncate -s N.
				var n int64
				if _, err := fmt.Sscanf(ce.Reason[strings.Index(ce.Reason, "truncate -s ")+len("truncate -s "):], "%d", &n); err != nil {
					t.Fatalf("no size in %q", ce.Reason)
				}
				if err := os.Truncate(filepath.Join(dir, StateDirName, LedgerFileName), n); err != nil {
					t.Fatal(err)
				}
				events, err = l.Events(context.Background())
			}
			if err != nil || len(events) != tc.events {
				t.Fatalf("Events = %d, %v; want %d events", len(events), err, tc.events)
			}
			more, err := l.Append(context.Background(), testEvent("after", 0))
			if err != nil || more[0].Seq != int64(tc.events)+1 {
				t.Fatalf("Append after the crash = %+v, %v", more, err)
			}
			if _, err := l.Events(context.Background()); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestAuditEventsWritesNothing: the report's read returns what Events
// returns and leaves the state directory as it was (no plan snapshot).
func TestAuditEventsWritesNothing(t *testing.T) {
	dir, l := newLedger(t, 5)
	before, err := os.ReadDir(filepath.Join(dir, StateDirName))
	if err != nil {
		t.Fatal(err)
	}
	got, err := l.AuditEvents(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	after, _ := os.ReadDir(filepath.Join(dir, StateDirName))
	if len(after) != len(before) {
		t.Errorf("AuditEvents changed the state directory: %d entries, then %d", len(before), len(after))
	}
	want, err := l.Events(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 5 || len(got) != len(want) || got[4].Hash != want[4].Hash {
		t.Errorf("AuditEvents read %d events, Events %d", len(got), len(want))
	}
	if _, err := os.Stat(filepath.Join(dir, StateDirName, SnapshotFileName)); err != nil {
		t.Errorf("Events did not write the snapshot (the test proves nothing): %v", err)
	}
}
