package state

import "encoding/json"

// CompactForReplay returns the events of a verified ledger (or of an
// earlier compaction followed by the events after it) that the planner's
// replay (planner.Replay) needs, in ledger order: replaying the result,
// then any later events, gives exactly what replaying the whole ledger
// gives — the same managed members (with the same grant and time), the
// same uncertain changes in the same order, the same grants, revocations
// and warnings.
//
// Every event that is not a membership change (requests, decisions,
// sessions_ended) is kept, and so is every event the replay warns about.
// Membership changes are kept by intent ID, an intent and all its outcomes
// together, so each kept change replays as it did: the changes still
// uncertain; for each group and member that jitform manages (or that
// another kept change touches), the change whose event decided that last;
// and one change per group that ever had one (the plan command warns about
// groups jitform never changed). The rest — changes opened and closed long
// ago whose member jitform no longer manages — are what a long ledger is
// made of, and are dropped. planner's tests check the equivalence on
// random ledgers.
//
// The rules mirror planner.Replay: an add intent makes its member managed;
// an outcome that is not "unknown" closes its intent, and takes the member
// out of the managed set when the member is certainly not there.
func CompactForReplay(events []Event) []Event {
	keep := make([]bool, len(events))
	type pend struct {
		pair, group, action string
		unknown             bool
	}
	pending := map[string]*pend{}
	members := map[string][]int{} // intent ID -> its events
	intentsOf := map[string]int{} // intent ID -> intents written with it
	lastDecider := map[string]int{}
	managed := map[string]bool{}
	warned := map[string]bool{}
	anyID := map[string]string{}       // group -> an intent ID in it
	deciderPair := map[string]string{} // group -> a pair in it with a deciding event
	for i, ev := range events {
		switch ev.Type {
		case EventChangeIntent:
			var c Change
			if json.Unmarshal(ev.Payload, &c) != nil || c.ID == "" || c.Group == "" || c.Member == "" {
				keep[i] = true
				continue
			}
			pair := c.Group + "\x00" + c.Member
			members[c.ID] = append(members[c.ID], i)
			intentsOf[c.ID]++
			pending[c.ID] = &pend{pair: pair, group: c.Group, action: c.Action}
			anyID[c.Group] = c.ID
			if c.Action == "add" {
				lastDecider[pair], managed[pair] = i, true
				deciderPair[c.Group] = pair
			}
		case EventChangeApplied, EventChangeFailed:
			var o ChangeOutcome
			if json.Unmarshal(ev.Payload, &o) != nil {
				keep[i] = true
				continue
			}
			p, ok := pending[o.ID]
			if !ok {
				keep[i] = true // an outcome for an unknown intent: a warning
				continue
			}
			members[o.ID] = append(members[o.ID], i)
			observed := o.Status == "observed_present" || o.Status == "observed_absent"
			if p.unknown && !observed {
				warned[o.ID] = true
				continue
			}
			if o.Status == "unknown" {
				p.unknown = true
				continue
			}
			delete(pending, o.ID)
			gone := false
			switch o.Status {
			case "done", "already":
				gone = p.action == "remove" && ev.Type == EventChangeApplied
			case "failed":
				gone = p.action == "add"
			case "observed_absent":
				gone = true
			}
			if gone {
				lastDecider[p.pair], managed[p.pair] = i, false
				deciderPair[p.group] = p.pair
			}
		default:
			keep[i] = true
		}
	}
	idOf := func(i int) string {
		var c struct {
			ID string `json:"id"`
		}
		_ = json.Unmarshal(events[i].Payload, &c)
		return c.ID
	}
	keepIDs := map[string]bool{}
	marked := map[string]bool{} // pairs a kept change touches
	covered := map[string]bool{}
	keepID := func(id string) {
		if keepIDs[id] {
			return
		}
		keepIDs[id] = true
		for _, j := range members[id] {
			if events[j].Type == EventChangeIntent {
				var c Change
				_ = json.Unmarshal(events[j].Payload, &c)
				marked[c.Group+"\x00"+c.Member] = true
				covered[c.Group] = true
			}
		}
	}
	for id := range pending {
		keepID(id)
	}
	for id := range warned {
		keepID(id)
	}
	for id, n := range intentsOf {
		if n > 1 {
			keepID(id)
		}
	}
	for pair, i := range lastDecider {
		if managed[pair] || marked[pair] {
			keepID(idOf(i))
		}
	}
	for g, id := range anyID {
		if covered[g] {
			continue
		}
		if pair, ok := deciderPair[g]; ok {
			keepID(idOf(lastDecider[pair]))
		} else {
			keepID(id)
		}
	}
	for id := range keepIDs {
		for _, j := range members[id] {
			keep[j] = true
		}
	}
	out := make([]Event, 0, len(events)/8)
	for i, k := range keep {
		if k {
			out = append(out, events[i])
		}
	}
	return out
}
