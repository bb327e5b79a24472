package planner

import (
	"encoding/json"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/jitform/jitform/config"
	"github.com/jitform/jitform/state"
)

func intent(seq int64, id, action, group, member, grant string) state.Event {
	b, _ := json.Marshal(state.Change{ID: id, Action: action, Group: group, Member: member, Grant: grant})
	return state.Event{Seq: seq, Time: time.Date(2026, 11, 23, 9, 0, int(seq), 0, time.UTC), Type: state.EventChangeIntent, Actor: state.SystemActor, Payload: b}
}

func outcome(seq int64, typ, id, status string) state.Event {
	b, _ := json.Marshal(state.ChangeOutcome{ID: id, Status: status})
	return state.Event{Seq: seq, Type: typ, Actor: state.SystemActor, Payload: b}
}

func TestReplayManaged(t *testing.T) {
	t.Parallel()
	const g = "group.helpdesk"
	tests := []struct {
		name        string
		events      []state.Event
		wantManaged []string
		wantWarn    int
	}{
		{"add applied", []state.Event{intent(1, "c1", "add", g, "bob", "grant.b"), outcome(2, state.EventChangeApplied, "c1", "done")}, []string{"bob"}, 0},
		{"add already there", []state.Event{intent(1, "c1", "add", g, "bob", "grant.b"), outcome(2, state.EventChangeApplied, "c1", "already")}, []string{"bob"}, 0},
		{"add intent without outcome (crash)", []state.Event{intent(1, "c1", "add", g, "bob", "grant.b")}, []string{"bob"}, 0},
		{"add failed", []state.Event{intent(1, "c1", "add", g, "bob", "grant.b"), outcome(2, state.EventChangeFailed, "c1", "failed")}, nil, 0},
		// A timeout or dropped connection may have added the member.
		{"add with unknown outcome stays managed", []state.Event{intent(1, "c1", "add", g, "bob", "grant.b"), outcome(2, state.EventChangeFailed, "c1", "unknown")}, []string{"bob"}, 0},
		{"add then remove done", []state.Event{
			intent(1, "c1", "add", g, "bob", "grant.b"), outcome(2, state.EventChangeApplied, "c1", "done"),
			intent(3, "c2", "remove", g, "bob", "grant.b"), outcome(4, state.EventChangeApplied, "c2", "done"),
		}, nil, 0},
		{"remove already gone", []state.Event{
			intent(1, "c1", "add", g, "bob", "grant.b"), outcome(2, state.EventChangeApplied, "c1", "done"),
			intent(3, "c2", "remove", g, "bob", "grant.b"), outcome(4, state.EventChangeApplied, "c2", "already"),
		}, nil, 0},
		{"remove failed keeps it managed", []state.Event{
			intent(1, "c1", "add", g, "bob", "grant.b"), outcome(2, state.EventChangeApplied, "c1", "done"),
			intent(3, "c2", "remove", g, "bob", "grant.b"), outcome(4, state.EventChangeFailed, "c2", "failed"),
		}, []string{"bob"}, 0},
		{"remove intent without outcome keeps it managed", []state.Event{
			intent(1, "c1", "add", g, "bob", "grant.b"), outcome(2, state.EventChangeApplied, "c1", "done"),
			intent(3, "c2", "remove", g, "bob", "grant.b"),
		}, []string{"bob"}, 0},
		// A later read settles what was uncertain (apply closes it).
		{"open add observed present stays managed", []state.Event{intent(1, "c1", "add", g, "bob", "grant.b"), outcome(2, state.EventChangeApplied, "c1", StatusObservedPresent)}, []string{"bob"}, 0},
		{"open add observed absent is not managed", []state.Event{intent(1, "c1", "add", g, "bob", "grant.b"), outcome(2, state.EventChangeFailed, "c1", StatusObservedAbsent)}, nil, 0},
		{"unknown add observed absent is not managed", []state.Event{
			intent(1, "c1", "add", g, "bob", "grant.b"), outcome(2, state.EventChangeFailed, "c1", "unknown"), outcome(3, state.EventChangeFailed, "c1", StatusObservedAbsent),
		}, nil, 0},
		{"unknown add observed present stays managed", []state.Event{
			intent(1, "c1", "add", g, "bob", "grant.b"), outcome(2, state.EventChangeFailed, "c1", "unknown"), outcome(3, state.EventChangeApplied, "c1", StatusObservedPresent),
		}, []string{"bob"}, 0},
		{"open remove observed absent forgets the member", []state.Event{
			intent(1, "c1", "add", g, "bob", "grant.b"), outcome(2, state.EventChangeApplied, "c1", "done"),
			intent(3, "c2", "remove", g, "bob", "grant.b"), outcome(4, state.EventChangeApplied, "c2", StatusObservedAbsent),
		}, nil, 0},
		{"open remove observed present keeps it managed", []state.Event{
			intent(1, "c1", "add", g, "bob", "grant.b"), outcome(2, state.EventChangeApplied, "c1", "done"),
			intent(3, "c2", "remove", g, "bob", "grant.b"), outcome(4, state.EventChangeFailed, "c2", StatusObservedPresent),
		}, []string{"bob"}, 0},
		{"second outcome after a certain one warns", []state.Event{
			intent(1, "c1", "add", g, "bob", "grant.b"), outcome(2, state.EventChangeApplied, "c1", "done"), outcome(3, state.EventChangeFailed, "c1", StatusObservedAbsent),
		}, []string{"bob"}, 1},
		{"unknown outcome followed by a non-observation warns", []state.Event{
			intent(1, "c1", "add", g, "bob", "grant.b"), outcome(2, state.EventChangeFailed, "c1", "unknown"), outcome(3, state.EventChangeFailed, "c1", "failed"),
		}, []string{"bob"}, 1},
		{"outcome without intent warns", []state.Event{outcome(1, state.EventChangeApplied, "nope", "done")}, nil, 1},
		{"malformed payload warns", []state.Event{{Seq: 1, Type: state.EventChangeIntent, Payload: json.RawMessage(`{"id":`)}}, nil, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			v, warns := Replay(&config.Config{}, tt.events, time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC))
			var got []string
			for m := range v.Managed[g] {
				got = append(got, m)
			}
			if len(got) != len(tt.wantManaged) || (len(got) == 1 && got[0] != tt.wantManaged[0]) {
				t.Errorf("managed = %v, want %v", got, tt.wantManaged)
			}
			if len(warns) != tt.wantWarn || len(v.Warnings) != tt.wantWarn {
				t.Errorf("warnings = %v, want %d", warns, tt.wantWarn)
			}
			if len(tt.wantManaged) == 1 && v.Managed[g]["bob"].Grant != "grant.b" {
				t.Errorf("managed record = %+v, want grant.b", v.Managed[g]["bob"])
			}
		})
	}
}

// Uncertain lists, in ledger order, exactly the changes apply must settle
// by reading the group: intents without outcome and unknown outcomes.
func TestReplayUncertainListsOpenAndUnknownChanges(t *testing.T) {
	t.Parallel()
	const g = "group.helpdesk"
	evs := []state.Event{
		intent(1, "open-add", "add", g, "bob", "grant.b"),
		intent(2, "done-add", "add", g, "carol", "grant.c"), outcome(3, state.EventChangeApplied, "done-add", "done"),
		intent(4, "unknown-remove", "remove", g, "dave", ""), outcome(5, state.EventChangeFailed, "unknown-remove", "unknown"),
		intent(6, "closed-unknown", "add", g, "erin", ""), outcome(7, state.EventChangeFailed, "closed-unknown", "unknown"),
		outcome(8, state.EventChangeFailed, "closed-unknown", StatusObservedAbsent),
		intent(9, "closed-open", "add", g, "frank", ""), outcome(10, state.EventChangeApplied, "closed-open", StatusObservedPresent),
		intent(11, "failed-add", "add", g, "gina", ""), outcome(12, state.EventChangeFailed, "failed-add", "failed"),
	}
	v, warns := Replay(&config.Config{}, evs, time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC))
	if len(warns) != 0 {
		t.Fatalf("warnings: %v", warns)
	}
	var got []string
	for _, u := range v.Uncertain {
		got = append(got, fmt.Sprintf("%s:%s@%d", u.Change.ID, u.Status, u.Seq))
	}
	want := []string{"open-add:open@1", "unknown-remove:unknown@4"}
	if !slices.Equal(got, want) {
		t.Errorf("uncertain = %v, want %v", got, want)
	}
}
