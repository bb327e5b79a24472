package report

import (
	"fmt"
	"testing"
	"time"

	"github.com/jitform/jitform/state"
)

// started records an apply_started by runner and returns its run ID.
func (w *world) started(t time.Time, id string, runner state.Runner) string {
	w.ev(t, state.EventApplyStarted, state.ApplyStarted{ID: id, PlanID: "p-" + id, Operation: "run", Runner: runner})
	return id
}

// changeIn is change with the intent (and outcome) recorded by run.
func (w *world) changeIn(run string, t time.Time, action, group, member, grant, status string) string {
	w.n++
	id := fmt.Sprintf("c%d", w.n)
	w.ev(t, state.EventChangeIntent, state.Change{ID: id, Action: action, Group: "group." + group, Target: "target.ldif.dir",
		Member: member, Name: member, Reason: "grant", Grant: grant, Policy: "policy.db", Run: run})
	switch status {
	case "done":
		w.ev(t.Add(time.Second), state.EventChangeApplied, state.ChangeOutcome{ID: id, Status: status, Run: run})
	case "failed":
		w.ev(t.Add(time.Second), state.EventChangeFailed, state.ChangeOutcome{ID: id, Status: status, Error: "boom", Run: run})
	}
	return id
}

// Each interval names who ran the add and the removal, each problem who
// ran the change, and changes are counted per runner; a ledger from before
// runners were recorded says so rather than guessing.
func TestChangesNameTheirRunner(t *testing.T) {
	w := newWorld()
	ci := state.Runner{User: "runner", Host: "gh7", CI: &state.CI{Provider: "github", Actor: "bot", Repository: "acme/p", RunID: "9"}}
	ops := state.Runner{User: "ops", Host: "bastion"}
	w.change(at(time.Hour), "add", "web_admins", "carol", "grant.old", "done") // no runner recorded
	r1 := w.started(at(10*time.Hour), "r1", ci)
	w.changeIn(r1, at(10*time.Hour), "add", "db_admins", "alice", "grant.a", "done")
	r2 := w.started(at(12*time.Hour), "r2", ops)
	w.changeIn(r2, at(12*time.Hour), "remove", "db_admins", "alice", "grant.a", "done")
	w.changeIn(r2, at(12*time.Hour), "remove", "web_admins", "carol", "grant.old", "failed")
	r := w.build(t0, t0.Add(week))

	iv := member(r, "db_admins", "alice").Intervals[0]
	if iv.By != ci.String() || iv.RemovedBy != RemovedByJitform || iv.EndedBy != ops.String() {
		t.Errorf("alice's interval by %q, removed by %q (%q); want by %q, removed by jitform (%q)", iv.By, iv.RemovedBy, iv.EndedBy, ci.String(), ops.String())
	}
	if civ := member(r, "web_admins", "carol").Intervals[0]; civ.By != "" || civ.RemovedBy != "" {
		t.Errorf("carol's interval (no runner recorded, still active) = by %q removed by %q; want neither", civ.By, civ.RemovedBy)
	}
	if len(r.Problems) != 1 || r.Problems[0].By != ops.String() {
		t.Errorf("problems = %+v, want carol's failed removal by %s", r.Problems, ops.String())
	}
	want := map[string]int{ci.String(): 1, ops.String(): 2, notRecorded: 1}
	got := map[string]int{}
	for _, c := range r.ChangesByRunner {
		got[c.Key] = c.Count
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("changes by runner = %v, want %v", got, want)
	}
}

// A removal not made by jitform (removed_by_server) ends the interval at
// the lock's expiry when it is known, else when the member was found gone,
// and the report says which lock ended it.
func TestServerLockEndsTheInterval(t *testing.T) {
	added := at(10 * time.Hour)
	expiry := at(12 * time.Hour)
	observed := at(15 * time.Hour)
	later := at(20 * time.Hour)
	tests := []struct {
		name        string
		lock        string
		expires     *time.Time
		jitformGone bool // jitform removed the member before the lock was observed
		wantEnd     time.Time
		wantBy      string
	}{
		{"a TTL link ends the interval at its expiry", state.LockTTLLink, &expiry, false, expiry, RemovedByTTLLink},
		{"a Windows switch ends the interval at its expiry", state.LockWindowsSwitch, &expiry, false, expiry, RemovedByWindowsSwitch},
		{"without a known expiry the interval ends when the member was found gone", state.LockWindowsSwitch, nil, false, observed, RemovedByWindowsSwitch},
		{"an expiry after the observation (clock skew) never extends past it", state.LockTTLLink, &later, false, observed, RemovedByTTLLink},
		{"an unknown lock is named unknown", state.LockUnknown, nil, false, observed, RemovedByUnknown},
		{"a member jitform already removed is not removed again by the lock", state.LockTTLLink, &expiry, true, added.Add(time.Hour + time.Second), RemovedByJitform},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := newWorld()
			run := w.started(added, "r1", state.Runner{User: "ops", Host: "h"})
			intent := w.changeIn(run, added, "add", "db_admins", "alice", "grant.a", "done")
			if tt.jitformGone {
				w.changeIn(run, added.Add(time.Hour), "remove", "db_admins", "alice", "grant.a", "done")
			}
			w.ev(observed, state.EventRemovedByServer, state.RemovedByServer{Run: "r2", Intent: intent, Group: "group.db_admins",
				Member: "alice", Grant: "grant.a", Lock: tt.lock, Expires: tt.expires, ObservedAt: observed})
			r := w.build(t0, t0.Add(week))
			m := member(r, "db_admins", "alice")
			if m == nil || len(m.Intervals) != 1 {
				t.Fatalf("alice = %+v, want one interval", m)
			}
			iv := m.Intervals[0]
			if !iv.End.Equal(tt.wantEnd) || iv.Open || iv.RemovedBy != tt.wantBy {
				t.Errorf("interval ends %s (open %v) removed by %q; want %s by %q", iv.End, iv.Open, iv.RemovedBy, tt.wantEnd, tt.wantBy)
			}
			if got := activeOf(r, "db_admins", "alice"); got != tt.wantEnd.Sub(added) {
				t.Errorf("active %s, want %s", got, tt.wantEnd.Sub(added))
			}
			if len(r.RemovalsBy) != 1 || r.RemovalsBy[0] != (Count{tt.wantBy, 1}) {
				t.Errorf("removals by = %+v, want %s 1", r.RemovalsBy, tt.wantBy)
			}
		})
	}
}
