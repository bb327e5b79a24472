package operation

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jitform/jitform/planner"
	"github.com/jitform/jitform/state"
)

// countingBackend counts Append calls (each is one durable write: for the
// local backend an fsync of the ledger and of the new head) and the events
// they carry.
type countingBackend struct {
	state.Backend
	appends, events atomic.Int64
}

func (c *countingBackend) Append(ctx context.Context, evs ...state.Event) ([]state.Event, error) {
	c.appends.Add(1)
	c.events.Add(int64(len(evs)))
	return c.Backend.Append(ctx, evs...)
}

// manyGroups is a repository with n groups on each of two targets; alice
// is granted every group, and each group holds an undeclared member to
// remove (exclusive): 2 changes per group.
func manyGroups(n int) (string, map[string][]string) {
	var b strings.Builder
	b.WriteString(`target "ldif" "a" {
  path = "a.ldif"
}
target "ldif" "b" {
  path = "b.ldif"
}
`)
	groups := map[string][]string{}
	var refs []string
	for _, t := range []string{"a", "b"} {
		for i := range n {
			name := fmt.Sprintf("%s%04d", t, i)
			fmt.Fprintf(&b, "group %q {\n  target    = target.ldif.%s\n  dn        = \"cn=%s,dc=example,dc=org\"\n  exclusive = true\n}\n", name, t, name)
			refs = append(refs, "group."+name)
			groups["group."+name] = []string{dn("mallory")}
		}
	}
	fmt.Fprintf(&b, `policy "p" {
  groups       = [%s]
  eligible     = ["alice"]
  max_duration = "4h"
  approvals    = 0
}
grant "alice_now" {
  policy    = policy.p
  principal = "alice"
  start     = timeadd(plantimestamp(), "-1h")
  duration  = "2h"
}
`, strings.Join(refs, ", "))
	return b.String(), groups
}

// The ledger is written a small constant number of times per apply,
// whatever the number of changes: the intents of each target's batch in one
// append before its one provider call, the outcomes in one after, and
// concurrent targets' appends coalesced. Each target gets one provider call.
func TestApplyAppendsAConstantNumberOfTimes(t *testing.T) {
	t.Parallel()
	for _, n := range []int{1, 10, 250} {
		t.Run(fmt.Sprintf("%d_groups_per_target", n), func(t *testing.T) {
			t.Parallel()
			hcl, groups := manyGroups(n)
			f := newFixture(t, hcl)
			f.d.groups = groups
			cb := &countingBackend{Backend: f.opts.Backend}
			f.opts.Backend = cb
			res, err := Apply(context.Background(), f.opts, nil, nil)
			if err != nil {
				t.Fatal(err)
			}
			added, removed, failed := res.Counts()
			if added != 2*n || removed != 2*n || failed != 0 {
				t.Fatalf("counts = %d, %d, %d; want %d added, %d removed, 0 failed", added, removed, failed, 2*n, 2*n)
			}
			if got := f.d.applies.Load(); got != 2 {
				t.Errorf("%d provider Apply calls, want 2 (one per target)", got)
			}
			// 2 targets: intents in at most 2 appends, outcomes in at most 2.
			if got := cb.appends.Load(); got > 4 {
				t.Errorf("%d Append calls for %d changes, want at most 4 (two targets: intents, outcomes)", got, 4*n)
			}
			if got, want := cb.events.Load(), int64(8*n+1); got != want {
				t.Errorf("%d events appended, want %d (an intent and an outcome per change, one apply_started)", got, want)
			}
		})
	}
}

// Concurrent appends are coalesced into one backend write, and each caller
// returns only when its events are stored, in one contiguous run.
func TestGroupCommitCoalescesConcurrentAppends(t *testing.T) {
	t.Parallel()
	f := newFixture(t, repo)
	slow := &slowBackend{Backend: f.opts.Backend, delay: 20 * time.Millisecond}
	cb := &countingBackend{Backend: slow}
	gc := &groupCommit{b: cb, now: time.Now}
	const writers = 16
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			var evs []state.Event
			for i := range 3 {
				ev, err := gc.event(state.EventChangeIntent, state.Change{ID: fmt.Sprintf("w%d-%d", w, i), Action: "add", Group: "group.ga", Member: dn("alice")})
				if err != nil {
					t.Error(err)
					return
				}
				evs = append(evs, ev)
			}
			if err := gc.append(context.Background(), evs); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if got := cb.appends.Load(); got < 1 || got > 3 {
		t.Errorf("%d backend appends for %d concurrent writers, want them coalesced (1 to 3)", got, writers)
	}
	evs := events(t, f.opts.Backend)
	if len(evs) != 3*writers {
		t.Fatalf("%d events stored, want %d", len(evs), 3*writers)
	}
	// Each writer's events are contiguous and in its order.
	for i := 0; i < len(evs); i += 3 {
		var first string
		for j := range 3 {
			id := string(evs[i+j].Payload)
			w := id[strings.Index(id, `"id":"`)+6:]
			w = w[:strings.IndexByte(w, '"')]
			prefix, k, _ := strings.Cut(w, "-")
			if j == 0 {
				first = prefix
			}
			if prefix != first || k != fmt.Sprint(j) {
				t.Errorf("event %d is %s: a writer's events are split or reordered", evs[i+j].Seq, w)
			}
		}
	}
}

// slowBackend makes every Append take a while, so that writers queue.
type slowBackend struct {
	state.Backend
	delay time.Duration
}

func (s *slowBackend) Append(ctx context.Context, evs ...state.Event) ([]state.Event, error) {
	time.Sleep(s.delay)
	return s.Backend.Append(ctx, evs...)
}

// The next apply settles, under the lock and before its own changes, every
// change an earlier run left uncertain whose group it read: one outcome each,
// all in one append, saying what was found. A group it could not read, or no
// longer configured, stays uncertain for a later run.
func TestApplyClosesUncertainChangesByReading(t *testing.T) {
	t.Parallel()
	f := newFixture(t, repo+`
group "gc" {
  target    = target.ldif.b
  dn        = "cn=gc,dc=example,dc=org"
}
`)
	f.d.groups["group.gc"] = []string{dn("svc")}
	f.d.readErr["group.gc"] = errors.New("no such object")
	ctx := context.Background()
	gc := &groupCommit{b: f.opts.Backend, now: time.Now}
	var seed []state.Event
	add := func(typ string, payload any) {
		ev, err := gc.event(typ, payload)
		if err != nil {
			t.Fatal(err)
		}
		seed = append(seed, ev)
	}
	intent := func(id, action, group, target, member string) {
		add(state.EventChangeIntent, state.Change{ID: id, PlanID: "old", Action: action, Group: group, Target: target, Member: member})
	}
	intent("open-add-absent", "add", "group.ga", "target.ldif.a", dn("alice")) // crash before the call
	intent("unknown-add-present", "add", "group.ga", "target.ldif.a", dn("mallory"))
	add(state.EventChangeFailed, state.ChangeOutcome{ID: "unknown-add-present", Status: "unknown", Error: "i/o timeout"})
	intent("open-remove-present", "remove", "group.ga", "target.ldif.a", dn("svc"))
	intent("unreadable", "add", "group.gc", "target.ldif.b", dn("alice"))
	intent("gone", "add", "group.old", "target.ldif.a", dn("alice"))
	if err := gc.append(ctx, seed); err != nil {
		t.Fatal(err)
	}
	cb := &countingBackend{Backend: f.opts.Backend}
	f.opts.Backend = cb

	res, err := Apply(ctx, f.opts, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Closed) != 3 {
		t.Errorf("%d changes closed, want 3: %+v", len(res.Closed), res.Closed)
	}
	evs := events(t, f.opts.Backend)
	got := map[string]string{}
	firstNewIntent, lastClosing := int64(0), int64(0)
	for _, ev := range evs[len(seed):] {
		switch ev.Type {
		case state.EventChangeIntent:
			if firstNewIntent == 0 {
				firstNewIntent = ev.Seq
			}
		case state.EventChangeApplied, state.EventChangeFailed:
			var o state.ChangeOutcome
			if err := json.Unmarshal(ev.Payload, &o); err != nil {
				t.Fatal(err)
			}
			if strings.HasPrefix(o.Status, "observed_") {
				got[o.ID] = ev.Type + " " + o.Status
				lastClosing = ev.Seq
				if ev.Type == state.EventChangeFailed && !strings.Contains(o.Error, "a later read found") {
					t.Errorf("closing of %s does not say what was found: %q", o.ID, o.Error)
				}
			}
		}
	}
	want := map[string]string{
		"open-add-absent":     "change_failed observed_absent",
		"unknown-add-present": "change_applied observed_present",
		"open-remove-present": "change_failed observed_present",
	}
	for id, w := range want {
		if got[id] != w {
			t.Errorf("%s closed with %q, want %q", id, got[id], w)
		}
	}
	for _, id := range []string{"unreadable", "gone"} {
		if g, ok := got[id]; ok {
			t.Errorf("%s closed with %q, though its group was not read", id, g)
		}
	}
	if firstNewIntent == 0 || lastClosing > firstNewIntent {
		t.Errorf("closings (last at seq %d) must come before the apply's own intents (first at seq %d)", lastClosing, firstNewIntent)
	}
	// closings: 1 append; then intents and outcomes, at most 2 each.
	if n := cb.appends.Load(); n > 5 {
		t.Errorf("%d appends, want at most 5", n)
	}

	// The next apply has nothing left to close but the two it cannot read.
	cfg, _, err := LoadConfig(f.dir, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	view, warns := planner.Replay(cfg, events(t, f.opts.Backend), time.Now())
	if len(warns) != 0 {
		t.Errorf("replay warnings: %v", warns)
	}
	var left []string
	for _, u := range view.Uncertain {
		left = append(left, u.Change.ID)
	}
	if !slices.Equal(left, []string{"unreadable", "gone"}) {
		t.Errorf("still uncertain: %v, want [unreadable gone]", left)
	}
}

// failingBackend refuses every append (a full disk).
type failingBackend struct{ state.Backend }

func (failingBackend) Append(context.Context, ...state.Event) ([]state.Event, error) {
	return nil, errors.New("no space left on device")
}

// Without its intents on record no change is made: when the one append
// of a batch's intents fails, the provider is never called, every change
// of every target fails as not attempted, and apply says the ledger could
// not be written.
func TestApplyMakesNoChangeWhenIntentsCannotBeRecorded(t *testing.T) {
	t.Parallel()
	f := newFixture(t, repo)
	f.opts.Backend = failingBackend{f.opts.Backend}
	res, err := Apply(context.Background(), f.opts, nil, nil)
	if err == nil || !strings.Contains(err.Error(), "no space left on device") {
		t.Fatalf("Apply error = %v, want the ledger's", err)
	}
	if n := f.d.applies.Load(); n != 0 {
		t.Errorf("provider called %d times though no intent was recorded", n)
	}
	if res == nil || len(res.Outcomes) != 3 {
		t.Fatalf("result = %+v, want 3 outcomes", res)
	}
	for _, o := range res.Outcomes {
		if o.Status != "failed" || !strings.Contains(o.Err.Error(), "not attempted") {
			t.Errorf("%s %s: %s %v, want failed, not attempted", o.Change.Action, o.Change.Member, o.Status, o.Err)
		}
	}
	if got := f.d.groups["group.ga"]; len(got) != 2 {
		t.Errorf("group.ga changed to %v", got)
	}
}
