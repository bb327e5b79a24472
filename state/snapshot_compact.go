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
			c, err := decodeChange(ev.Payload)
			if err != nil || c.ID == "" || c.Group == "" || c.Member == "" {
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
			o, err := decodeOutcome(ev.Payload)
			if err != nil {
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
		if events[i].Type == EventChangeIntent {
			c, _ := decodeChange(events[i].Payload)
			return c.ID
		}
		o, _ := decodeOutcome(events[i].Payload)
		return o.ID
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
				c, _ := decodeChange(events[j].Payload)
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

// changeFields and outcomeFields are the JSON names of Change and
// ChangeOutcome: what encoding/json would fill.
var (
	changeFields  = []string{"id", "plan_id", "action", "group", "target", "member", "name", "reason", "grant", "policy", "ticket"}
	outcomeFields = []string{"id", "status", "error"}
)

// payloadFields reads the string fields of a change payload that
// CompactForReplay needs (id, group, member, action, status) as
// encoding/json would decode them into Change or ChangeOutcome (fields
// lists that struct's names), without reflection. ok is false when it
// cannot be sure to agree (not an object, a key that is not lowercase
// ASCII, which encoding/json would match case-insensitively, a field that
// is not a string): the caller then uses encoding/json.
func payloadFields(p []byte, fields []string) (f [5]string, ok bool) {
	b, ok := cutPrefix(p, "{")
	if !ok {
		return f, false
	}
	if len(b) > 0 && b[0] == '}' {
		return f, len(b) == 1
	}
	for {
		key, rest, ok := canonStringBytes(b)
		if !ok || len(rest) == 0 || rest[0] != ':' {
			return f, false
		}
		for _, c := range key {
			if !(c >= 'a' && c <= 'z' || c == '_') {
				return f, false
			}
		}
		val := rest[1:]
		known := false
		for _, name := range fields {
			if string(key) == name {
				known = true
				break
			}
		}
		if known {
			v, after, ok := canonStringBytes(val)
			if !ok {
				return f, false
			}
			switch string(key) {
			case "id":
				f[0] = string(v)
			case "group":
				f[1] = string(v)
			case "member":
				f[2] = string(v)
			case "action":
				f[3] = string(v)
			case "status":
				f[4] = string(v)
			}
			b = after
		} else if b, ok = canonValue(val, 1); !ok {
			return f, false
		}
		switch {
		case len(b) == 1 && b[0] == '}':
			return f, true
		case len(b) > 0 && b[0] == ',':
			b = b[1:]
		default:
			return f, false
		}
	}
}

// decodeChange is json.Unmarshal into Change, for the fields compaction
// uses.
func decodeChange(p []byte) (Change, error) {
	if f, ok := payloadFields(p, changeFields); ok {
		return Change{ID: f[0], Group: f[1], Member: f[2], Action: f[3]}, nil
	}
	var c Change
	err := json.Unmarshal(p, &c)
	return c, err
}

// decodeOutcome is json.Unmarshal into ChangeOutcome, for the fields
// compaction uses.
func decodeOutcome(p []byte) (ChangeOutcome, error) {
	if f, ok := payloadFields(p, outcomeFields); ok {
		return ChangeOutcome{ID: f[0], Status: f[4]}, nil
	}
	var o ChangeOutcome
	err := json.Unmarshal(p, &o)
	return o, err
}
