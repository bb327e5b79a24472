package planner

import (
	"encoding/json"
	"fmt"
	"math/rand"
	"reflect"
	"testing"
	"time"

	"github.com/jitform/jitform/config"
	"github.com/jitform/jitform/state"
)

// randomChangeLedger writes n change events over a small space of groups,
// members and intent IDs, so that every replay case occurs: adds and
// removes done, failed, unknown, observed; intents left open; outcomes for
// unknown or closed intents; IDs written twice; malformed payloads; and
// account changes (declared accounts enabled and disabled, ephemeral ones
// created and deleted, passwords delivered to grants).
func randomChangeLedger(r *rand.Rand, n int) []state.Event {
	var events []state.Event
	var open []string
	next := 0
	for len(events) < n {
		seq := int64(len(events)) + 1
		g := fmt.Sprintf("group.g%d", r.Intn(4))
		m := fmt.Sprintf("u%d", r.Intn(5))
		switch k := r.Intn(20); {
		case k < 8:
			id := fmt.Sprintf("c%d", next)
			if r.Intn(15) == 0 && next > 0 {
				id = fmt.Sprintf("c%d", r.Intn(next)) // an ID written twice
			}
			next++
			if r.Intn(4) == 0 {
				events = append(events, accountIntent(r, seq, id))
			} else {
				action := "add"
				if r.Intn(2) == 0 {
					action = "remove"
				}
				events = append(events, intent(seq, id, action, g, m, "grant.x"))
			}
			open = append(open, id)
		case k < 17 && len(open) > 0:
			i := r.Intn(len(open))
			id := open[i]
			typ := state.EventChangeApplied
			if r.Intn(2) == 0 {
				typ = state.EventChangeFailed
			}
			status := []string{"done", "already", "failed", "unknown", StatusObservedPresent, StatusObservedAbsent}[r.Intn(6)]
			ev := outcome(seq, typ, id, status)
			if r.Intn(3) == 0 {
				// A password delivered to a grant (account enables and creates).
				ev.Payload, _ = json.Marshal(state.ChangeOutcome{ID: id, Status: status, Credentials: map[string]string{fmt.Sprintf("g-%d", r.Intn(3)): "f"}})
			}
			events = append(events, ev)
			if status != "unknown" && r.Intn(4) > 0 {
				open = append(open[:i], open[i+1:]...)
			}
		case k == 17:
			events = append(events, outcome(seq, state.EventChangeApplied, fmt.Sprintf("c%d", r.Intn(next+1)), "done"))
		case k == 18:
			events = append(events, state.Event{Seq: seq, Type: state.EventChangeIntent, Actor: state.SystemActor, Payload: []byte(`{"id":""}`)})
		default:
			events = append(events, state.Event{Seq: seq, Type: state.EventSessionsEnded, Actor: state.SystemActor, Payload: []byte(`{}`)})
		}
	}
	return events
}

// accountIntent is an account change over a small space of accounts,
// ephemeral instances and grants.
func accountIntent(r *rand.Rand, seq int64, id string) state.Event {
	action := []string{ActionEnable, ActionDisable, ActionCreate, ActionDelete}[r.Intn(4)]
	acct := fmt.Sprintf("account.a%d", r.Intn(2))
	member := ""
	if action == ActionCreate || action == ActionDelete {
		member = fmt.Sprintf("cn=tmp%d", r.Intn(4))
	} else {
		member = "cn=" + acct
	}
	b, _ := json.Marshal(state.Change{ID: id, Kind: KindAccount, Action: action, Group: acct, Member: member, Grant: fmt.Sprintf("g-%d", r.Intn(3))})
	return state.Event{Seq: seq, Time: time.Date(2026, 11, 23, 9, 0, int(seq), 0, time.UTC), Type: state.EventChangeIntent, Actor: state.SystemActor, Payload: b}
}

// TestCompactForReplayReplaysTheSame proves the snapshot's compaction
// (state.CompactForReplay) loses nothing the planner reads: replaying a
// compacted prefix followed by the rest of the ledger, compacted again at a
// later point or not, gives the same managed members, uncertain changes,
// grants and warnings as replaying the whole ledger.
func TestCompactForReplayReplaysTheSame(t *testing.T) {
	t.Parallel()
	cfg := &config.Config{}
	now := time.Date(2026, 11, 24, 0, 0, 0, 0, time.UTC)
	shrunk := 0
	for seed := int64(0); seed < 400; seed++ {
		r := rand.New(rand.NewSource(seed))
		events := randomChangeLedger(r, 20+r.Intn(200))
		want, _ := Replay(cfg, events, now)
		cut := r.Intn(len(events) + 1)
		cut2 := cut + r.Intn(len(events)-cut+1)
		once := append(state.CompactForReplay(events[:cut]), events[cut:]...)
		twice := append(state.CompactForReplay(append(state.CompactForReplay(events[:cut]), events[cut:cut2]...)), events[cut2:]...)
		for name, got := range map[string][]state.Event{"once": once, "twice": twice} {
			v, _ := Replay(cfg, got, now)
			if !reflect.DeepEqual(v, want) {
				t.Fatalf("seed %d, cut %d/%d (%s): replay differs:\n got %+v\nwant %+v", seed, cut, cut2, name, v, want)
			}
		}
		if len(state.CompactForReplay(events)) < len(events) {
			shrunk++
		}
	}
	if shrunk < 300 {
		t.Fatalf("compaction dropped events in only %d of 400 ledgers", shrunk)
	}
}
