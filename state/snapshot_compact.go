package state

import (
	"bytes"
	"encoding/json"
	"strings"

	"github.com/jitform/jitform/internal/parallel"
)

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
// Account changes (Kind "account": a declared account enabled or
// disabled, an ephemeral account created or deleted) are all kept, with
// their outcomes: the replay builds each account's record (the ephemeral
// accounts jitform created, the passwords delivered to which grants) from
// every one of them, and they are few (about one per grant, whose request
// is kept anyway).
//
// The rules mirror planner.Replay: an add intent makes its member managed;
// an outcome that is not "unknown" closes its intent, and takes the member
// out of the managed set when the member is certainly not there.
func CompactForReplay(events []Event) []Event {
	fields := decodeReplayFields(events)
	keep := make([]bool, len(events))
	type pairKey struct{ group, member string }
	// change is one intent ID: its events (intents and outcomes) and the
	// replay's view of it.
	type change struct {
		// events: the first two inline (an intent and its outcome, nearly
		// always), any more in extra; a slice per ID is an allocation per ID.
		first                    [2]int
		n                        int
		extra                    []int
		intents                  int
		pair                     pairKey
		action                   string
		pending, unknown, warned bool
		// account: the ID's last intent is an account change, which the
		// replay keeps out of the managed sets.
		account bool
	}
	addEvent := func(c *change, i int) {
		if c.n < len(c.first) {
			c.first[c.n] = i
		} else {
			c.extra = append(c.extra, i)
		}
		c.n++
	}
	eachEvent := func(c *change, f func(int)) {
		for _, j := range c.first[:min(c.n, len(c.first))] {
			f(j)
		}
		for _, j := range c.extra {
			f(j)
		}
	}
	intents := 0
	for i := range events {
		if events[i].Type == EventChangeIntent {
			intents++
		}
	}
	ids := make(map[string]int, intents) // intent ID -> index in changes
	changes := make([]change, 0, intents)
	lastDecider := map[pairKey]int{}
	managed := map[pairKey]bool{}
	anyID := map[string]string{}        // group -> an intent ID in it
	deciderPair := map[string]pairKey{} // group -> a pair in it with a deciding event
	for i, ev := range events {
		f := &fields[i]
		switch ev.Type {
		case EventChangeIntent:
			if !f.ok || f.id == "" || f.group == "" || f.member == "" {
				keep[i] = true
				continue
			}
			k, seen := ids[f.id]
			if !seen {
				k = len(changes)
				ids[f.id] = k
				changes = append(changes, change{})
			}
			c := &changes[k]
			pair := pairKey{f.group, f.member}
			addEvent(c, i)
			c.intents++
			c.pair, c.action, c.pending, c.unknown = pair, f.action, true, false
			c.account = f.kind == kindAccount
			if c.account {
				continue
			}
			anyID[f.group] = f.id
			if f.action == "add" {
				lastDecider[pair], managed[pair] = i, true
				deciderPair[f.group] = pair
			}
		case EventChangeApplied, EventChangeFailed:
			if !f.ok {
				keep[i] = true
				continue
			}
			k, seen := ids[f.id]
			if !seen || !changes[k].pending {
				keep[i] = true // an outcome for an unknown intent: a warning
				continue
			}
			c := &changes[k]
			addEvent(c, i)
			observed := f.status == "observed_present" || f.status == "observed_absent"
			if c.unknown && !observed {
				c.warned = true
				continue
			}
			if f.status == "unknown" {
				c.unknown = true
				continue
			}
			c.pending = false
			if c.account {
				continue
			}
			gone := false
			switch f.status {
			case "done", "already":
				gone = c.action == "remove" && ev.Type == EventChangeApplied
			case "failed":
				gone = c.action == "add"
			case "observed_absent":
				gone = true
			}
			if gone {
				lastDecider[c.pair], managed[c.pair] = i, false
				deciderPair[c.pair.group] = c.pair
			}
		default:
			keep[i] = true
		}
	}
	kept := make([]bool, len(changes))
	marked := map[pairKey]bool{} // pairs a kept change touches
	covered := map[string]bool{}
	keepChange := func(k int) {
		if kept[k] {
			return
		}
		kept[k] = true
		eachEvent(&changes[k], func(j int) {
			if events[j].Type == EventChangeIntent {
				marked[pairKey{fields[j].group, fields[j].member}] = true
				covered[fields[j].group] = true
			}
		})
	}
	for k := range changes {
		if c := &changes[k]; c.pending || c.warned || c.intents > 1 || c.account {
			keepChange(k)
		}
	}
	for pair, i := range lastDecider {
		if managed[pair] || marked[pair] {
			keepChange(ids[fields[i].id])
		}
	}
	for g, id := range anyID {
		if covered[g] {
			continue
		}
		if pair, ok := deciderPair[g]; ok {
			keepChange(ids[fields[lastDecider[pair]].id])
		} else {
			keepChange(ids[id])
		}
	}
	for k := range changes {
		if kept[k] {
			eachEvent(&changes[k], func(j int) { keep[j] = true })
		}
	}
	out := make([]Event, 0, len(events)/8)
	for i, k := range keep {
		if k {
			out = append(out, detach(events[i]))
		}
	}
	return out
}

// detach copies an event's payload, hashes and signature out of the
// shared buffers a full read decodes them into (decodeChunk), so that the
// few events a compaction keeps, which a plan may hold for long, do not
// keep the whole ledger's buffers alive.
func detach(e Event) Event {
	e.Payload = bytes.Clone(e.Payload)
	e.Prev, e.Hash = strings.Clone(e.Prev), strings.Clone(e.Hash)
	e.Sig = strings.Clone(e.Sig)
	return e
}

// replayFields is what CompactForReplay reads of a change event's
// payload; ok is false when it does not decode.
type replayFields struct {
	id, group, member, action, status, kind string
	ok                                      bool
}

// kindAccount is Change.Kind of an account change (planner.KindAccount).
const kindAccount = "account"

// decodeReplayFields decodes the change payloads, each on its own, on all
// cores: nearly all of the compaction's cost on a long ledger.
func decodeReplayFields(events []Event) []replayFields {
	out := make([]replayFields, len(events))
	parallel.Chunks(len(events), chunkLines, func(lo, hi int) {
		// Groups, members, actions and statuses repeat: shared, not
		// copied for every event.
		in := map[string]string{}
		intern := func(b []byte) string {
			if s, ok := in[string(b)]; ok {
				return s
			}
			s := string(b)
			in[s] = s
			return s
		}
		// The IDs, unique, are substrings of one string per chunk.
		var ids []byte
		idEnd := make([]int, hi-lo)
		for i := lo; i < hi; i++ {
			p := events[i].Payload
			switch events[i].Type {
			case EventChangeIntent:
				if f, ok := payloadFields(p, changeFields); ok {
					out[i] = replayFields{group: intern(f[1]), member: intern(f[2]), action: intern(f[3]), kind: intern(f[5]), ok: true}
					ids = append(ids, f[0]...)
					break
				}
				c, err := decodeChange(p)
				out[i] = replayFields{id: c.ID, group: c.Group, member: c.Member, action: c.Action, kind: c.Kind, ok: err == nil}
			case EventChangeApplied, EventChangeFailed:
				if f, ok := payloadFields(p, outcomeFields); ok {
					out[i] = replayFields{status: intern(f[4]), ok: true}
					ids = append(ids, f[0]...)
					break
				}
				o, err := decodeOutcome(p)
				out[i] = replayFields{id: o.ID, status: o.Status, ok: err == nil}
			}
			idEnd[i-lo] = len(ids)
		}
		all, start := string(ids), 0
		for i := lo; i < hi; i++ {
			if end := idEnd[i-lo]; end > start {
				out[i].id = all[start:end]
				start = end
			}
		}
	})
	return out
}

// changeFields and outcomeFields are the JSON names of Change and
// ChangeOutcome: what encoding/json would fill.
var (
	changeFields  = []string{"id", "plan_id", "kind", "action", "group", "target", "member", "name", "reason", "grant", "policy", "ticket"}
	outcomeFields = []string{"id", "status", "error"}
)

// payloadFields reads the string fields of a change payload that
// CompactForReplay needs (id, group, member, action, status, kind) as
// encoding/json would decode them into Change or ChangeOutcome (fields
// lists that struct's names), without reflection. ok is false when it
// cannot be sure to agree (not an object, a key that is not lowercase
// ASCII, which encoding/json would match case-insensitively, a field that
// is not a string): the caller then uses encoding/json.
func payloadFields(p []byte, fields []string) (f [6][]byte, ok bool) {
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
				f[0] = v
			case "group":
				f[1] = v
			case "member":
				f[2] = v
			case "action":
				f[3] = v
			case "status":
				f[4] = v
			case "kind":
				f[5] = v
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
		return Change{ID: string(f[0]), Group: string(f[1]), Member: string(f[2]), Action: string(f[3]), Kind: string(f[5])}, nil
	}
	var c Change
	err := json.Unmarshal(p, &c)
	return c, err
}

// decodeOutcome is json.Unmarshal into ChangeOutcome, for the fields
// compaction uses.
func decodeOutcome(p []byte) (ChangeOutcome, error) {
	if f, ok := payloadFields(p, outcomeFields); ok {
		return ChangeOutcome{ID: string(f[0]), Status: string(f[4])}, nil
	}
	var o ChangeOutcome
	err := json.Unmarshal(p, &o)
	return o, err
}
