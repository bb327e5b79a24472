package operation

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jitform/jitform/state"
)

func at(s string) *time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return &t
}

func TestNextWake(t *testing.T) {
	now := *at("2026-11-23T10:00:00Z")
	cases := []struct {
		name  string
		now   *time.Time // default: now
		next  *time.Time
		drift time.Duration
		want  time.Duration
		why   string
	}{
		{"boundary before drift", nil, at("2026-11-23T10:01:30Z"), 5 * time.Minute, 90 * time.Second, "next window boundary"},
		{"drift before boundary", nil, at("2026-11-23T12:00:00Z"), 5 * time.Minute, 5 * time.Minute, "drift interval"},
		{"nothing scheduled", nil, nil, 5 * time.Minute, 5 * time.Minute, "drift interval"},
		{"boundary already past: plan now", nil, at("2026-11-23T09:59:59Z"), 5 * time.Minute, 0, "next window boundary"},
		{"boundary exactly now", nil, at("2026-11-23T10:00:00Z"), 5 * time.Minute, 0, "next window boundary"},
		// Boundaries come from the planner in UTC, already DST-shifted: a
		// Berlin window opening at 07:00 local on the day clocks go back.
		{"DST-shifted boundary", at("2026-10-25T05:00:00Z"), at("2026-10-25T06:00:00Z"), 24 * time.Hour, time.Hour, "next window boundary"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			n := now
			if tc.now != nil {
				n = *tc.now
			}
			got, why := NextWake(n, tc.next, tc.drift)
			if got != tc.want || why != tc.why {
				t.Errorf("NextWake = %s (%s), want %s (%s)", got, why, tc.want, tc.why)
			}
		})
	}
}

func TestRetryDelay(t *testing.T) {
	now := *at("2026-11-23T10:00:00Z")
	min, max := 2*time.Second, 5*time.Minute
	cases := []struct {
		name     string
		attempt  int
		deadline *time.Time
		jitter   float64
		want     time.Duration
	}{
		{"first failure", 1, nil, 0, 2 * time.Second},
		{"doubles", 3, nil, 0, 8 * time.Second},
		{"capped", 20, nil, 0, 5 * time.Minute},
		{"jitter shortens by up to a quarter", 1, nil, 0.999, 2*time.Second - time.Duration(float64(2*time.Second)*0.25*0.999)},
		{"never past the next boundary", 20, at("2026-11-23T10:00:30Z"), 0, 30 * time.Second},
		{"a past boundary is ignored", 3, at("2026-11-23T09:00:00Z"), 0, 8 * time.Second},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := RetryDelay(now, tc.attempt, tc.deadline, min, max, tc.jitter); got != tc.want {
				t.Errorf("RetryDelay = %s, want %s", got, tc.want)
			}
		})
	}
}

// fakeClock never sleeps: After records the wait and fires at once; after
// stopAfter waits it cancels the loop.
type fakeClock struct {
	mu        sync.Mutex
	now       time.Time
	waits     []time.Duration
	stopAfter int
	cancel    func()
	onWait    func(n int)
}

func (c *fakeClock) Now() time.Time { return c.now }

func (c *fakeClock) After(d time.Duration) <-chan time.Time {
	c.mu.Lock()
	c.waits = append(c.waits, d)
	n := len(c.waits)
	c.mu.Unlock()
	if c.onWait != nil {
		c.onWait(n)
	}
	ch := make(chan time.Time, 1)
	if n >= c.stopAfter {
		c.cancel()
		return ch // never fires: the loop sees ctx done
	}
	ch <- c.now.Add(d)
	return ch
}

// A failing target makes the loop back off (doubling), never stop; once it
// recovers the loop sleeps until the grant's window ends.
func TestRunRetriesWithBackoffThenSleepsToTheBoundary(t *testing.T) {
	f := newFixture(t, repo)
	f.d.failOn["target.ldif.a"] = errors.New("server said no")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	clock := &fakeClock{now: time.Now().UTC().Truncate(time.Second), stopAfter: 4, cancel: cancel}
	clock.onWait = func(n int) {
		if n == 2 { // the target recovers before the third cycle
			delete(f.d.failOn, "target.ldif.a")
		}
	}
	var logs bytes.Buffer
	err := Run(ctx, RunOptions{
		Options: f.opts, DriftInterval: 2 * time.Hour, Clock: clock,
		MinBackoff: time.Second, MaxBackoff: time.Minute, Jitter: func() float64 { return 0 },
		Logger: slog.New(slog.NewJSONHandler(&logs, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	// The grant (timeadd(plantimestamp(), "-1h"), 2h) ends an hour from now.
	want := []time.Duration{time.Second, 2 * time.Second, time.Hour, time.Hour}
	if len(clock.waits) != len(want) {
		t.Fatalf("waits = %v, want %v", clock.waits, want)
	}
	for i := range want {
		if clock.waits[i] != want[i] {
			t.Errorf("wait %d = %s, want %s (all: %v)", i, clock.waits[i], want[i], clock.waits)
		}
	}
	// Logs are structured and name each failed change.
	var failed int
	for _, line := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("log line is not JSON: %q", line)
		}
		if rec["msg"] == "change failed" {
			failed++
			if rec["group"] == nil || rec["member"] == nil || rec["error"] == nil {
				t.Errorf("failed change log lacks fields: %v", rec)
			}
		}
	}
	if failed == 0 {
		t.Error("no 'change failed' log line for the failing target")
	}
}

// A signal during a cycle lets the change in flight finish: every intent
// in the ledger has its outcome, and Run returns cleanly.
func TestRunFinishesTheChangeInFlightOnSignal(t *testing.T) {
	f := newFixture(t, repo)
	ctx, cancel := context.WithCancel(context.Background())
	f.d.beforeApply = func() {
		cancel() // SIGTERM arrives while the provider is working
		time.Sleep(50 * time.Millisecond)
	}
	clock := &fakeClock{now: time.Now().UTC(), stopAfter: 100, cancel: cancel}
	if err := Run(ctx, RunOptions{Options: f.opts, Clock: clock, Grace: 10 * time.Second}); err != nil {
		t.Fatal(err)
	}
	intents, outcomes := map[string]bool{}, map[string]bool{}
	for _, ev := range events(t, f.opts.Backend) {
		var p struct {
			ID string `json:"id"`
		}
		_ = json.Unmarshal(ev.Payload, &p)
		switch ev.Type {
		case state.EventChangeIntent:
			intents[p.ID] = true
		case state.EventChangeApplied, state.EventChangeFailed:
			outcomes[p.ID] = true
		}
	}
	if len(intents) == 0 {
		t.Fatal("no change was attempted")
	}
	for id := range intents {
		if !outcomes[id] {
			t.Errorf("intent %s has no outcome: the signal cut the change", id)
		}
	}
	if len(clock.waits) != 0 {
		t.Errorf("the loop slept after the signal: %v", clock.waits)
	}
}

// steppingClock advances its time by every wait, so the loop sees time pass
// without sleeping; onWait may change the world between cycles.
type steppingClock struct {
	mu     sync.Mutex
	now    time.Time
	waits  []time.Duration
	onWait func(n int)
	stopAt int
	cancel func()
}

func (c *steppingClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *steppingClock) After(d time.Duration) <-chan time.Time {
	c.mu.Lock()
	c.waits = append(c.waits, d)
	n := len(c.waits)
	c.now = c.now.Add(d)
	now := c.now
	c.mu.Unlock()
	if c.onWait != nil {
		c.onWait(n)
	}
	ch := make(chan time.Time, 1)
	if n >= c.stopAt {
		c.cancel()
		return ch
	}
	ch <- now
	return ch
}

// A config error after a successful cycle: the loop backs off exponentially
// but wakes exactly at the boundary the last good plan knew of (the grant's
// end), and changes nothing while the config is broken.
func TestRunBackoffNeverSkipsTheLastKnownBoundary(t *testing.T) {
	t0 := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	// The grant started an hour ago and ends at t0+30m.
	good := strings.Replace(repo, `timeadd(plantimestamp(), "-1h")`, `"2026-11-23T09:00:00Z"`, 1)
	good = strings.Replace(good, `duration    = "2h"`, `duration    = "1h30m"`, 1)
	f := newFixture(t, good)
	main := filepath.Join(f.dir, "main.hcl")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var eventsWhileBroken int
	clock := &steppingClock{now: t0, stopAt: 5, cancel: cancel}
	clock.onWait = func(n int) {
		switch n {
		case 1: // after the first, good cycle: break the config
			eventsWhileBroken = len(events(t, f.opts.Backend))
			f.d.mu.Lock()
			if !slices.Contains(f.d.groups["group.ga"], dn("alice")) {
				t.Errorf("the first cycle did not add alice: %v", f.d.groups["group.ga"])
			}
			f.d.mu.Unlock()
			if err := os.WriteFile(main, []byte(good+"\ngrant \"broken\" {\n"), 0o644); err != nil {
				t.Fatal(err)
			}
		case 4: // fixed just before the boundary
			if got := len(events(t, f.opts.Backend)); got != eventsWhileBroken {
				t.Errorf("%d ledger events written while the config was broken", got-eventsWhileBroken)
			}
			if err := os.WriteFile(main, []byte(good), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	var logs bytes.Buffer
	err := Run(ctx, RunOptions{
		Options: f.opts, DriftInterval: 10 * time.Minute, Clock: clock,
		MinBackoff: 4 * time.Minute, MaxBackoff: time.Hour, Jitter: func() float64 { return 0 },
		Logger: slog.New(slog.NewJSONHandler(&logs, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	// good cycle: drift (10m) before the boundary (30m); then 4m, 8m, and
	// 16m cut to the 8m left until t0+30m; then nothing scheduled: drift.
	want := []time.Duration{10 * time.Minute, 4 * time.Minute, 8 * time.Minute, 8 * time.Minute, 10 * time.Minute}
	if !slices.Equal(clock.waits, want) {
		t.Fatalf("waits = %v, want %v\nlogs:\n%s", clock.waits, want, logs.String())
	}
	// The cycle at the boundary removed alice everywhere.
	f.d.mu.Lock()
	defer f.d.mu.Unlock()
	for g, ms := range f.d.groups {
		if slices.Contains(ms, dn("alice")) {
			t.Errorf("%s still has alice after her grant ended: %v", g, ms)
		}
	}
	if !strings.Contains(logs.String(), `"msg":"cycle failed"`) {
		t.Errorf("no 'cycle failed' log for the broken config:\n%s", logs.String())
	}
}

// stuckClock's timers never fire: only a wake or a signal ends a sleep.
type stuckClock struct {
	now   time.Time
	waits chan time.Duration
}

func (c *stuckClock) Now() time.Time { return c.now }

func (c *stuckClock) After(d time.Duration) <-chan time.Time {
	c.waits <- d
	return nil
}

// A wake (SIGHUP) ends the sleep at once: a grant added meanwhile is
// applied without waiting for the drift interval.
func TestRunWakesEarly(t *testing.T) {
	f := newFixture(t, repo)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	clock := &stuckClock{now: time.Now().UTC(), waits: make(chan time.Duration, 10)}
	wake := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, RunOptions{Options: f.opts, DriftInterval: 5 * time.Minute, Clock: clock, Wake: wake})
	}()
	<-clock.waits // asleep after the first cycle
	f.d.mu.Lock()
	f.d.groups["group.ga"] = append(f.d.groups["group.ga"], dn("mallory")) // changed by hand
	f.d.mu.Unlock()
	wake <- struct{}{}
	select {
	case <-clock.waits: // asleep after the second cycle
	case <-time.After(10 * time.Second):
		t.Fatal("the wake did not start a cycle")
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	f.d.mu.Lock()
	defer f.d.mu.Unlock()
	if slices.Contains(f.d.groups["group.ga"], dn("mallory")) {
		t.Errorf("the cycle after the wake did not correct the drift: %v", f.d.groups["group.ga"])
	}
}

// AfterCycle sees every cycle's result before the loop sleeps, a failed
// removal included (what run's removal_failed notification is made from),
// and each cycle's apply is recorded as operation "run".
func TestRunCallsAfterCycleWithEachResult(t *testing.T) {
	f := newFixture(t, repo)
	f.d.failOn["target.ldif.a"] = errors.New("server said no")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	clock := &fakeClock{now: time.Now().UTC().Truncate(time.Second), stopAfter: 2, cancel: cancel}
	var seen []*Result
	waitsAtCall := []int{}
	err := Run(ctx, RunOptions{
		Options: f.opts, DriftInterval: 2 * time.Hour, Clock: clock,
		MinBackoff: time.Second, MaxBackoff: time.Minute, Jitter: func() float64 { return 0 },
		AfterCycle: func(ctx context.Context, res *Result) {
			if ctx.Err() != nil {
				t.Errorf("AfterCycle got a cancelled context")
			}
			clock.mu.Lock()
			waitsAtCall = append(waitsAtCall, len(clock.waits))
			clock.mu.Unlock()
			seen = append(seen, res)
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(seen) != 2 {
		t.Fatalf("AfterCycle called %d time(s) for 2 cycles", len(seen))
	}
	for i, n := range waitsAtCall {
		if n != i {
			t.Errorf("AfterCycle of cycle %d ran after %d sleep(s), want before the cycle's sleep", i+1, n)
		}
	}
	failedRemoval := false
	for _, o := range seen[0].Outcomes {
		if o.Change.Action == "remove" && !o.Status.OK() {
			failedRemoval = true
		}
	}
	if !failedRemoval {
		t.Errorf("first cycle's result lacks the failed removal: %+v", seen[0].Outcomes)
	}
	for _, ev := range events(t, f.opts.Backend) {
		if ev.Type == state.EventApplyStarted {
			var st state.ApplyStarted
			_ = json.Unmarshal(ev.Payload, &st)
			if st.Operation != "run" {
				t.Errorf("apply_started operation = %q, want run", st.Operation)
			}
		}
	}
}
