package operation

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jitform/jitform/config"
	"github.com/jitform/jitform/planner"
	"github.com/jitform/jitform/providers"
	"github.com/jitform/jitform/state"
)

// These tests drive the orchestration with an in-memory directory standing
// in for a provider (the providers have their own tests against real
// servers); what they prove is the order of ledger writes and provider
// calls, isolation between targets, and refusals that change nothing.

const repo = `
target "ldif" "a" {
  path = "a.ldif"
}
target "ldif" "b" {
  path = "b.ldif"
}
group "ga" {
  target    = target.ldif.a
  dn        = "cn=ga,dc=example,dc=org"
  members   = ["svc"]
  exclusive = true
}
group "gb" {
  target    = target.ldif.b
  dn        = "cn=gb,dc=example,dc=org"
  exclusive = true
}
policy "p" {
  groups       = [group.ga, group.gb]
  eligible     = ["alice", "ghost"]
  max_duration = "4h"
  approvals    = 1
  approvers    = ["carol"]
}
grant "alice_now" {
  policy      = policy.p
  principal   = "alice"
  start       = timeadd(plantimestamp(), "-1h")
  duration    = "2h"
  approved_by = ["carol"]
}
`

func dn(user string) string { return "uid=" + user + ",ou=people,dc=example,dc=org" }

// directory is the shared in-memory state of every fake target.
type directory struct {
	mu      sync.Mutex
	groups  map[string][]string // group address -> member IDs
	failOn  map[string]error    // target address -> error every Apply returns
	callErr map[string]error    // target address -> error the Apply call itself returns
	readErr map[string]error    // group address -> why it cannot be read
	backend state.Backend
	t       testing.TB
	opens   atomic.Int32
	applies atomic.Int32
	// concurrency accounting for Open
	inOpen, maxInOpen atomic.Int32
	sleep             time.Duration // how long each Open takes
	beforeApply       func()        // runs at the start of every Apply call
}

func (d *directory) open(ctx context.Context, t *config.Target, _ providers.Options) (providers.Target, error) {
	d.opens.Add(1)
	n := d.inOpen.Add(1)
	for {
		m := d.maxInOpen.Load()
		if n <= m || d.maxInOpen.CompareAndSwap(m, n) {
			break
		}
	}
	time.Sleep(d.sleep) // let other opens overlap if the bound allowed it
	d.inOpen.Add(-1)
	return &fakeTarget{d: d, addr: t.Addr}, nil
}

type fakeTarget struct {
	d    *directory
	addr string
}

func (f *fakeTarget) Resolve(ctx context.Context, ps []string) (map[string]providers.Resolution, error) {
	out := map[string]providers.Resolution{}
	for _, p := range ps {
		if p == "ghost" {
			out[p] = providers.Resolution{Err: fmt.Errorf("no user %q", p)}
			continue
		}
		out[p] = providers.Resolution{Member: providers.Member{ID: dn(p), Name: p}}
	}
	return out, nil
}

func (f *fakeTarget) Read(ctx context.Context, gs []*config.Group) (map[string]providers.Observation, error) {
	f.d.mu.Lock()
	defer f.d.mu.Unlock()
	out := map[string]providers.Observation{}
	for _, g := range gs {
		if err := f.d.readErr[g.Addr]; err != nil {
			out[g.Addr] = providers.Observation{Err: err}
			continue
		}
		var ms []providers.Member
		for _, id := range f.d.groups[g.Addr] {
			ms = append(ms, providers.Member{ID: id})
		}
		out[g.Addr] = providers.Observation{Members: ms}
	}
	return out, nil
}

func (f *fakeTarget) Apply(ctx context.Context, changes []providers.GroupChange) ([]providers.Outcome, error) {
	if f.d.beforeApply != nil {
		f.d.beforeApply()
	}
	f.d.applies.Add(1)
	// Every change must be announced in the ledger before the call.
	events, err := f.d.backend.Events(ctx)
	if err != nil {
		f.d.t.Errorf("read ledger during apply: %v", err)
	}
	announced := map[string]bool{}
	for _, ev := range events {
		if ev.Type == state.EventChangeIntent {
			var c state.Change
			_ = json.Unmarshal(ev.Payload, &c)
			announced[c.Action+" "+c.Group+" "+c.Member] = true
		}
	}
	var outs []providers.Outcome
	for _, gc := range changes {
		for _, c := range gc.Changes {
			if !announced[string(c.Action)+" "+gc.Group.Addr+" "+c.Member.ID] {
				f.d.t.Errorf("%s %s on %s reached the provider before its intent was in the ledger", c.Action, c.Member.ID, gc.Group.Addr)
			}
		}
	}
	if err := f.d.callErr[f.addr]; err != nil {
		return nil, err
	}
	if err := f.d.failOn[f.addr]; err != nil {
		for _, gc := range changes {
			for _, c := range gc.Changes {
				outs = append(outs, providers.Outcome{Group: gc.Group.Addr, Change: c, Status: providers.Failed, Err: err})
			}
		}
		return outs, nil
	}
	f.d.mu.Lock()
	defer f.d.mu.Unlock()
	for _, gc := range changes {
		for _, c := range gc.Changes {
			cur := f.d.groups[gc.Group.Addr]
			var next []string
			for _, m := range cur {
				if m != c.Member.ID {
					next = append(next, m)
				}
			}
			if c.Action == providers.Add {
				next = append(next, c.Member.ID)
			}
			f.d.groups[gc.Group.Addr] = next
			outs = append(outs, providers.Outcome{Group: gc.Group.Addr, Change: c, Status: providers.Done})
		}
	}
	return outs, nil
}

func (f *fakeTarget) Close() error { return nil }

type fixture struct {
	dir  string
	d    *directory
	opts Options
}

func newFixture(t testing.TB, hcl string) *fixture {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "main.hcl"), []byte(hcl), 0o644); err != nil {
		t.Fatal(err)
	}
	b, err := state.NewLocal(dir)
	if err != nil {
		t.Fatal(err)
	}
	d := &directory{
		groups: map[string][]string{
			"group.ga": {dn("svc"), dn("mallory")},
			"group.gb": {},
		},
		failOn:  map[string]error{},
		callErr: map[string]error{},
		readErr: map[string]error{},
		sleep:   5 * time.Millisecond,
		backend: b,
		t:       t,
	}
	return &fixture{dir: dir, d: d, opts: Options{
		Dir:      dir,
		Registry: providers.Registry{"ldif": d.open},
		Backend:  b,
	}}
}

func events(t *testing.T, b state.Backend) []state.Event {
	t.Helper()
	evs, err := b.Events(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return evs
}

func TestApplyRecordsIntentBeforeAndOutcomeAfter(t *testing.T) {
	t.Parallel()
	f := newFixture(t, repo)
	res, err := Apply(context.Background(), f.opts, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	added, removed, failed := res.Counts()
	if added != 2 || removed != 1 || failed != 0 {
		t.Fatalf("counts = %d added, %d removed, %d failed; want 2, 1, 0 (%+v)", added, removed, failed, res.Outcomes)
	}
	evs := events(t, f.opts.Backend)
	var intents, outcomes int
	ids := map[string]bool{}
	for _, ev := range evs {
		switch ev.Type {
		case state.EventChangeIntent:
			var c state.Change
			if err := json.Unmarshal(ev.Payload, &c); err != nil {
				t.Fatal(err)
			}
			ids[c.ID] = true
			intents++
		case state.EventChangeApplied:
			var o state.ChangeOutcome
			if err := json.Unmarshal(ev.Payload, &o); err != nil {
				t.Fatal(err)
			}
			if !ids[o.ID] {
				t.Errorf("outcome %s before (or without) its intent", o.ID)
			}
			outcomes++
		}
	}
	if intents != 3 || outcomes != 3 {
		t.Errorf("ledger has %d intents and %d outcomes, want 3 and 3", intents, outcomes)
	}
	// A second plan sees nothing to do.
	p, _, err := Plan(context.Background(), f.opts)
	if err != nil {
		t.Fatal(err)
	}
	if p.HasChanges() {
		t.Errorf("second plan has changes: %+v", p.Changes)
	}
}

func TestApplyFailingTargetDoesNotStopOthers(t *testing.T) {
	t.Parallel()
	f := newFixture(t, repo)
	f.d.failOn["target.ldif.a"] = errors.New("server said no")
	res, err := Apply(context.Background(), f.opts, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	added, removed, failed := res.Counts()
	if added != 1 || removed != 0 || failed != 2 {
		t.Fatalf("counts = %d, %d, %d; want 1 added (target b), 0 removed, 2 failed (target a)", added, removed, failed)
	}
	// The failed removal of mallory is listed first.
	first := res.Outcomes[0]
	if first.Status != providers.Failed || first.Change.Action != "remove" || first.Change.Member != dn("mallory") {
		t.Errorf("first outcome = %+v, want the failed removal of mallory", first)
	}
	if got := f.d.groups["group.gb"]; len(got) != 1 || got[0] != dn("alice") {
		t.Errorf("group.gb = %v, want alice added despite target a failing", got)
	}
	var failedEvents int
	for _, ev := range events(t, f.opts.Backend) {
		if ev.Type == state.EventChangeFailed {
			failedEvents++
			if !strings.Contains(string(ev.Payload), "server said no") {
				t.Errorf("change_failed does not carry the error: %s", ev.Payload)
			}
		}
	}
	if failedEvents != 2 {
		t.Errorf("%d change_failed events, want 2", failedEvents)
	}
}

func TestApplyRefusesPlanWithErrors(t *testing.T) {
	t.Parallel()
	f := newFixture(t, repo+`
grant "ghost_now" {
  policy      = policy.p
  principal   = "ghost"
  start       = timeadd(plantimestamp(), "-1h")
  duration    = "2h"
  approved_by = ["carol"]
}
`)
	res, err := Apply(context.Background(), f.opts, nil, nil)
	var pe *PlanErrorsError
	if !errors.As(err, &pe) {
		t.Fatalf("Apply = %v, %v; want a *PlanErrorsError", res, err)
	}
	if n := f.d.applies.Load(); n != 0 {
		t.Errorf("provider Apply called %d times for a plan with errors", n)
	}
	if evs := events(t, f.opts.Backend); len(evs) != 0 {
		t.Errorf("ledger has %d events after a refused apply", len(evs))
	}
}

func TestConfigErrorStopsBeforeAnyIO(t *testing.T) {
	t.Parallel()
	f := newFixture(t, repo+"\nwidget \"x\" {}\n")
	_, _, err := Plan(context.Background(), f.opts)
	var ce *ConfigError
	if !errors.As(err, &ce) {
		t.Fatalf("Plan error = %v, want *ConfigError", err)
	}
	if !strings.Contains(ce.Error(), "main.hcl") {
		t.Errorf("error does not name the file: %v", ce)
	}
	if n := f.d.opens.Load(); n != 0 {
		t.Errorf("%d targets opened despite a config error", n)
	}
}

func TestBrokenLedgerStopsPlanAndApply(t *testing.T) {
	t.Parallel()
	f := newFixture(t, repo)
	if _, err := Apply(context.Background(), f.opts, nil, nil); err != nil {
		t.Fatal(err)
	}
	ledger := filepath.Join(f.dir, ".jitform", "ledger.jsonl")
	raw, err := os.ReadFile(ledger)
	if err != nil {
		t.Fatal(err)
	}
	tampered := strings.Replace(string(raw), `"action":"remove"`, `"action":"add"`, 1)
	if tampered == string(raw) {
		t.Fatal("fixture: nothing to tamper with")
	}
	if err := os.WriteFile(ledger, []byte(tampered), 0o644); err != nil {
		t.Fatal(err)
	}
	opens := f.d.opens.Load()
	_, _, err = Plan(context.Background(), f.opts)
	var le *LedgerError
	if !errors.As(err, &le) || !strings.Contains(err.Error(), "jitform ledger verify") {
		t.Fatalf("Plan error = %v; want a *LedgerError pointing at `jitform ledger verify`", err)
	}
	if _, err := Apply(context.Background(), f.opts, nil, nil); !errors.As(err, &le) {
		t.Fatalf("Apply error = %v; want a *LedgerError", err)
	}
	if n := f.d.opens.Load(); n != opens {
		t.Errorf("targets opened on a broken ledger")
	}
}

func TestSavedPlanRefusedWhenMembershipMoved(t *testing.T) {
	t.Parallel()
	f := newFixture(t, repo)
	saved, _, err := Plan(context.Background(), f.opts)
	if err != nil {
		t.Fatal(err)
	}
	f.d.mu.Lock()
	f.d.groups["group.gb"] = []string{dn("erin")}
	f.d.mu.Unlock()
	_, err = Apply(context.Background(), f.opts, saved, nil)
	var se *StaleError
	if !errors.As(err, &se) || !strings.Contains(err.Error(), "group.gb") {
		t.Fatalf("Apply(saved) = %v; want a stale error naming group.gb", err)
	}
	if n := f.d.applies.Load(); n != 0 {
		t.Errorf("provider called for a stale plan")
	}
}

func TestConfirmDeclinedChangesNothing(t *testing.T) {
	t.Parallel()
	f := newFixture(t, repo)
	var shown *planner.Plan
	_, err := Apply(context.Background(), f.opts, nil, func(p *planner.Plan) (bool, error) {
		shown = p
		return false, nil
	})
	if !errors.Is(err, ErrCancelled) {
		t.Fatalf("Apply = %v, want ErrCancelled", err)
	}
	if shown == nil || len(shown.Changes) != 3 {
		t.Errorf("confirm was shown %v, want the fresh plan with 3 changes", shown)
	}
	if f.d.applies.Load() != 0 || len(events(t, f.opts.Backend)) != 0 {
		t.Errorf("declined apply changed something")
	}
}

func TestTargetsOpenedWithinParallelism(t *testing.T) {
	t.Parallel()
	var b strings.Builder
	for i := range 6 {
		fmt.Fprintf(&b, "target \"ldif\" \"t%d\" {\n  path = \"t%d.ldif\"\n}\ngroup \"g%d\" {\n  target = target.ldif.t%d\n  dn     = \"cn=g%d,dc=example,dc=org\"\n}\n", i, i, i, i, i)
	}
	f := newFixture(t, b.String())
	f.opts.Parallelism = 2
	if _, _, err := Plan(context.Background(), f.opts); err != nil {
		t.Fatal(err)
	}
	if n := f.d.opens.Load(); n != 6 {
		t.Errorf("opened %d targets, want 6", n)
	}
	if m := f.d.maxInOpen.Load(); m > 2 {
		t.Errorf("%d targets opened at once, want at most 2", m)
	}
}

func TestTargetFilter(t *testing.T) {
	t.Parallel()
	f := newFixture(t, repo)
	f.opts.Targets = []string{"group.gb"}
	p, _, err := Plan(context.Background(), f.opts)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range p.Changes {
		if c.Group != "group.gb" {
			t.Errorf("change outside the --target selection: %+v", c)
		}
	}
	if len(p.Changes) != 1 || f.d.opens.Load() != 1 {
		t.Errorf("%d changes from %d opened targets; want 1 change, 1 target", len(p.Changes), f.d.opens.Load())
	}
	f.opts.Targets = []string{"group.nope"}
	if _, _, err := Plan(context.Background(), f.opts); err == nil || !strings.Contains(err.Error(), "group.nope") {
		t.Errorf("unknown --target: err = %v", err)
	}
}

// BenchmarkPlan measures the orchestration around the planner (load, open,
// resolve and read in parallel, replay, compute) for 100 targets with 10
// groups each, against the in-memory directory: what jitform itself costs
// per plan, without network time.
func BenchmarkPlan(b *testing.B) {
	var src strings.Builder
	groups := map[string][]string{}
	for ti := range 100 {
		fmt.Fprintf(&src, "target \"ldif\" \"t%d\" {\n  path = \"t%d.ldif\"\n}\n", ti, ti)
		for gi := range 10 {
			name := fmt.Sprintf("g%d_%d", ti, gi)
			fmt.Fprintf(&src, "group %q {\n  target    = target.ldif.t%d\n  dn        = \"cn=%s,dc=example,dc=org\"\n  members   = [\"svc\"]\n  exclusive = true\n}\n", name, ti, name)
			groups["group."+name] = []string{dn("svc")}
		}
	}
	f := newFixture(b, src.String())
	f.d.groups = groups
	f.d.sleep = 0
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		p, _, err := Plan(context.Background(), f.opts)
		if err != nil {
			b.Fatal(err)
		}
		if p.HasChanges() {
			b.Fatal("unexpected changes")
		}
	}
}

// A provider call that fails as a whole (a timeout) leaves each change's
// fate unknown: recorded as such, and the add stays managed, so a later run
// still removes the member when the grant ends.
func TestApplyCallErrorIsUnknownAndStaysManaged(t *testing.T) {
	t.Parallel()
	f := newFixture(t, repo)
	f.d.callErr["target.ldif.b"] = errors.New("i/o timeout")
	res, err := Apply(context.Background(), f.opts, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	var unknown int
	for _, o := range res.Outcomes {
		if o.Change.Target == "target.ldif.b" {
			if o.Status != providers.Unknown || !strings.Contains(o.Err.Error(), "i/o timeout") {
				t.Errorf("outcome on b = %s %v, want unknown with the call's error", o.Status, o.Err)
			}
			unknown++
		}
	}
	if unknown != 1 || !res.Failed() {
		t.Fatalf("%d unknown outcomes, Failed() = %v; want 1 and true", unknown, res.Failed())
	}
	cfg, _, err := LoadConfig(f.dir, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	view, _ := planner.Replay(cfg, events(t, f.opts.Backend), time.Now())
	if _, ok := view.Managed["group.gb"][dn("alice")]; !ok {
		t.Errorf("an add with an unknown outcome is not managed: %+v", view.Managed)
	}
}
