package report

import (
	"encoding/json"
	"runtime"
	"sync"

	"github.com/jitform/jitform/state"
)

// Change payloads are most of a ledger and encoding/json is most of a
// report's time, so the two flat payload shapes are decoded by hand: an
// object of string values with known keys and no escapes. Anything else
// (an escape, another type, an unknown key) falls back to encoding/json,
// so the result is always what json.Unmarshal gives.

// scanFlat calls set for each "key":"value" pair of a flat JSON object of
// plain strings. It returns false, having maybe called set, when raw is not
// such an object or set refuses a key.
func scanFlat(raw []byte, set func(key, val []byte) bool) bool {
	i, n := 0, len(raw)
	ws := func() {
		for i < n && (raw[i] == ' ' || raw[i] == '\n' || raw[i] == '\t' || raw[i] == '\r') {
			i++
		}
	}
	str := func() ([]byte, bool) {
		if i >= n || raw[i] != '"' {
			return nil, false
		}
		i++
		start := i
		for i < n {
			switch c := raw[i]; {
			case c == '"':
				s := raw[start:i]
				i++
				return s, true
			case c == '\\' || c < 0x20:
				return nil, false
			}
			i++
		}
		return nil, false
	}
	ws()
	if i >= n || raw[i] != '{' {
		return false
	}
	i++
	ws()
	if i < n && raw[i] == '}' {
		i++
		ws()
		return i == n
	}
	for {
		ws()
		k, ok := str()
		if !ok {
			return false
		}
		ws()
		if i >= n || raw[i] != ':' {
			return false
		}
		i++
		ws()
		v, ok := str()
		if !ok || !set(k, v) {
			return false
		}
		ws()
		if i >= n {
			return false
		}
		if raw[i] == '}' {
			i++
			ws()
			return i == n
		}
		if raw[i] != ',' {
			return false
		}
		i++
	}
}

// interner shares the strings that repeat across a ledger (groups,
// members, reasons, policies), so a million changes do not make millions of
// copies of a few hundred values.
type interner map[string]string

func (in interner) get(b []byte) string {
	if s, ok := in[string(b)]; ok { // no allocation for the lookup
		return s
	}
	s := string(b)
	in[s] = s
	return s
}

func decodeChange(raw []byte, c *state.Change, in interner) error {
	*c = state.Change{}
	ok := scanFlat(raw, func(k, v []byte) bool {
		switch string(k) {
		case "id":
			c.ID = string(v)
		case "plan_id":
			c.PlanID = string(v)
		case "kind":
			c.Kind = in.get(v)
		case "action":
			c.Action = in.get(v)
		case "group":
			c.Group = in.get(v)
		case "target":
			c.Target = in.get(v)
		case "member":
			c.Member = in.get(v)
		case "name":
			c.Name = in.get(v)
		case "reason":
			c.Reason = in.get(v)
		case "grant":
			c.Grant = string(v)
		case "policy":
			c.Policy = in.get(v)
		case "ticket":
			c.Ticket = string(v)
		case "run":
			c.Run = in.get(v)
		default:
			return false
		}
		return true
	})
	if ok {
		return nil
	}
	*c = state.Change{}
	return json.Unmarshal(raw, c)
}

func decodeOutcome(raw []byte, o *state.ChangeOutcome) error {
	*o = state.ChangeOutcome{}
	ok := scanFlat(raw, func(k, v []byte) bool {
		switch string(k) {
		case "id":
			o.ID = string(v)
		case "status":
			o.Status = string(v)
		case "error":
			o.Error = string(v)
		case "run":
			o.Run = string(v)
		default:
			return false
		}
		return true
	})
	if ok {
		return nil
	}
	*o = state.ChangeOutcome{}
	return json.Unmarshal(raw, o)
}

// decodeWindow is how many events Build decodes ahead, in parallel, before
// replaying them in order: bounded so that a long ledger's payloads are
// not all held decoded at once.
const decodeWindow = 1 << 16

// payloadDecoder decodes the change payloads of a window of events on all
// cores (decoding is most of a report's time; the replay must stay in
// order). changes, outcomes and errs are indexed like the window.
type payloadDecoder struct {
	changes  []state.Change
	outcomes []state.ChangeOutcome
	errs     []error
	strs     []interner // one per worker: an interner is not safe to share
}

func newPayloadDecoder() *payloadDecoder {
	d := &payloadDecoder{strs: make([]interner, runtime.GOMAXPROCS(0))}
	for i := range d.strs {
		d.strs[i] = interner{}
	}
	return d
}

func (d *payloadDecoder) decode(win []state.Event) {
	if cap(d.errs) < len(win) {
		d.changes = make([]state.Change, len(win))
		d.outcomes = make([]state.ChangeOutcome, len(win))
		d.errs = make([]error, len(win))
	}
	d.changes, d.outcomes, d.errs = d.changes[:len(win)], d.outcomes[:len(win)], d.errs[:len(win)]
	part := (len(win) + len(d.strs) - 1) / len(d.strs)
	var wg sync.WaitGroup
	for w := range d.strs {
		lo, hi := w*part, min((w+1)*part, len(win))
		if lo >= hi {
			break
		}
		wg.Go(func() {
			for i := lo; i < hi; i++ {
				d.errs[i] = nil
				switch win[i].Type {
				case state.EventChangeIntent:
					d.errs[i] = decodeChange(win[i].Payload, &d.changes[i], d.strs[w])
				case state.EventChangeApplied, state.EventChangeFailed:
					d.errs[i] = decodeOutcome(win[i].Payload, &d.outcomes[i])
				}
			}
		})
	}
	wg.Wait()
}
