package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/jitform/jitform/internal/operation"
	"github.com/jitform/jitform/state"
)

const ledgerUsage = `
Usage: jitform [-C DIR] ledger verify [--checkpoint SEQ:HASH]
       jitform [-C DIR] ledger checkpoint [--json]
       jitform [-C DIR] ledger log [--json] [--since TIME] [--type TYPE]...

The ledger (.jitform/ledger.jsonl) is the append-only, hash-chained record of
grant requests, approvals, revocations and every membership change jitform
made (an intent before, the outcome after).

  verify      walk the hash chain; on any edit, insertion or deletion name the
              first bad event and exit 1. plan and apply refuse a ledger that
              fails verification. With --checkpoint, also prove that the ledger
              still contains that event at that seq with that hash: a cut end,
              a rewritten chain or a deleted .jitform/ fail.
  checkpoint  print the current head as SEQ:HASH (one line; --json for an
              object), to record somewhere the writers of .jitform/ cannot
              change (a CI log, a ticket) and check later with
              verify --checkpoint.
  log         print the audit trail, oldest first; outcome lines name the
              member, group and plan of their intent. --json prints one event
              per line exactly as stored (JSON lines, for a SIEM). --since and
              --type select events for both forms.

Examples:
  jitform ledger verify
  jitform ledger checkpoint >> anchors.txt
  jitform ledger verify --checkpoint "$(tail -1 anchors.txt)"
  tail -1 anchors.txt | jitform ledger verify --checkpoint -
  jitform ledger log --since -24h --type change_failed
  jitform ledger log --json --since 2026-11-23T00:00:00Z --type request --type approve
`

// knownEventTypes are the types `ledger log --type` accepts without seeing
// them in the ledger (a type present in the ledger is accepted too).
var knownEventTypes = []string{
	state.EventRequest, state.EventApprove, state.EventDeny, state.EventRevoke, state.EventReview,
	state.EventChangeIntent, state.EventChangeApplied, state.EventChangeFailed,
	state.EventApplyStarted, state.EventApplySigned, state.EventRemovedByServer, state.EventSessionsEnded,
}

func cmdLedger(ctx context.Context, a *app, args []string) int {
	fs := a.flagSet("ledger", ledgerUsage)
	asJSON := fs.Bool("json", false, "log: print events as JSON lines; checkpoint: print a JSON object")
	checkpoint := fs.String("checkpoint", "", "verify: also prove the ledger still contains this `SEQ:HASH` (from ledger checkpoint; - reads it from stdin)")
	since := fs.String("since", "", "log: only events at or after `TIME` (RFC 3339, or -24h relative to now)")
	types := fs.StringSlice("type", nil, "log: only events of this `TYPE` (repeat, or separate with commas)")
	if code, done := a.parse(fs, args); done {
		return code
	}
	if fs.NArg() != 1 {
		return a.errorf("ledger needs one command: `jitform ledger verify`, `jitform ledger checkpoint` or `jitform ledger log` (see jitform ledger --help)")
	}
	sub := fs.Arg(0)
	switch sub {
	case "verify", "log", "checkpoint":
	default:
		return a.errorf("unknown ledger command %q: use `jitform ledger verify`, `jitform ledger checkpoint` or `jitform ledger log`", sub)
	}
	for flag, only := range map[string]string{"checkpoint": "verify", "since": "log", "type": "log"} {
		if fs.Changed(flag) && sub != only {
			return a.errorf("--%s is a flag of `jitform ledger %s`, not of `ledger %s`", flag, only, sub)
		}
	}
	if fs.Changed("json") && sub == "verify" {
		return a.errorf("--json is a flag of `jitform ledger log` and `ledger checkpoint`, not of `ledger verify`")
	}
	var cp state.Checkpoint
	if sub == "verify" && fs.Changed("checkpoint") {
		text := *checkpoint
		if text == "-" {
			// From an anchor store: tail -1 anchors.txt | jitform ledger verify --checkpoint -
			b, err := io.ReadAll(io.LimitReader(a.stdin, 4096))
			if err != nil {
				return a.errorf("--checkpoint -: read standard input: %v", err)
			}
			text = string(b)
		}
		var err error
		if cp, err = state.ParseCheckpoint(text); err != nil {
			return a.errorf("--checkpoint: %v", err)
		}
	}
	var sinceT time.Time
	if *since != "" {
		var err error
		if sinceT, err = parseAt(*since, time.Now()); err != nil {
			return a.errorf("--since: %v", err)
		}
	}
	b, err := a.backend()
	if err != nil {
		return a.errorf("%v", err)
	}
	events, err := b.Events(ctx)
	if err != nil {
		var ce *state.ChainError
		if errors.As(err, &ce) {
			return a.errorf("the ledger fails verification at event %v (line %v): %s.\n"+
				"Events from there on cannot be trusted; plan and apply refuse to run. Restore the ledger from a trusted copy (e.g. git history or a backup).",
				ce.Seq, ce.Line, ce.Reason)
		}
		return a.errorf("read the ledger: %v", err)
	}
	switch sub {
	case "verify":
		head := state.Head(events)
		if head == "" {
			head = "(empty)"
		}
		if code, bad := a.verifyApplySignatures(events); bad {
			return code
		}
		if fs.Changed("checkpoint") {
			if err := state.VerifyCheckpoint(events, cp); err != nil {
				return a.errorf("%v.%s\nThe chain that is there verifies, but it is not the ledger the checkpoint was taken from: "+
					"events recorded before the checkpoint are missing or were replaced. Restore .jitform/ from a trusted copy (a backup, git history).",
					err, a.missingStateNote(b))
			}
			fmt.Fprintf(a.stdout, "Ledger OK: %d event(s), hash chain intact, head %s; contains checkpoint %s\n", len(events), head, cp)
			return exitOK
		}
		fmt.Fprintf(a.stdout, "Ledger OK: %d event(s), hash chain intact, head %s\n", len(events), head)
		if len(events) == 0 {
			a.progress("Note: an empty ledger always verifies, also when .jitform/ was deleted. " +
				"To prove nothing was lost, verify against a checkpoint taken earlier: jitform ledger verify --checkpoint SEQ:HASH")
		}
		return exitOK
	case "checkpoint":
		c, ok := state.CheckpointOf(events)
		if !ok {
			return a.errorf("the ledger is empty: there is no head to anchor yet (run it after the first apply or grant event)")
		}
		if *asJSON {
			out, err := json.Marshal(struct {
				Seq        int64  `json:"seq"`
				Hash       string `json:"hash"`
				Checkpoint string `json:"checkpoint"`
			}{c.Seq, c.Hash, c.String()})
			if err != nil {
				return a.errorf("encode checkpoint: %v", err)
			}
			fmt.Fprintf(a.stdout, "%s\n", out)
			return exitOK
		}
		fmt.Fprintln(a.stdout, c)
		return exitOK
	default:
		want, err := selectTypes(*types, events)
		if err != nil {
			return a.errorf("--type: %v", err)
		}
		keep := func(ev state.Event) bool {
			if !sinceT.IsZero() && ev.Time.Before(sinceT) {
				return false
			}
			return want == nil || want[ev.Type]
		}
		w := bufio.NewWriter(a.stdout)
		if *asJSON {
			for _, ev := range events {
				if !keep(ev) {
					continue
				}
				// The stored canonical line: a SIEM can recompute its hash.
				line, err := state.EncodeEvent(ev)
				if err != nil {
					return a.errorf("encode event %d: %v", ev.Seq, err)
				}
				w.Write(line)
				w.WriteByte('\n')
			}
			if err := w.Flush(); err != nil {
				return a.errorf("write the events: %v", err)
			}
			return exitOK
		}
		if len(events) == 0 {
			fmt.Fprintln(a.stdout, "The ledger is empty.")
			return exitOK
		}
		intents := intentsByID(events)
		runners := runnersByID(events)
		shown := 0
		for _, ev := range events {
			if !keep(ev) {
				continue
			}
			shown++
			fmt.Fprintf(w, "%5d  %s  %-15s %-12s %s\n", ev.Seq, ev.Time.UTC().Format(time.RFC3339), ev.Type, ev.Actor, describe(ev, intents, runners))
		}
		if shown == 0 {
			fmt.Fprintf(w, "No event of the %d in the ledger matches.\n", len(events))
		}
		if err := w.Flush(); err != nil {
			return a.errorf("write the log: %v", err)
		}
		return exitOK
	}
}

// verifyApplySignatures checks the signatures of apply --as (apply_signed
// events) against the actors declared in the repository, as grant
// signatures are checked; bad is true when verify must fail.
func (a *app) verifyApplySignatures(events []state.Event) (code int, bad bool) {
	signed := 0
	for _, ev := range events {
		if ev.Type == state.EventApplySigned {
			signed++
		}
	}
	if signed == 0 {
		return exitOK, false
	}
	cfg, _, err := operation.LoadConfig(a.dir, time.Now().UTC())
	if err != nil {
		return a.errorf("cannot check the %d signed apply(s) without the configuration's actors: %v", signed, err), true
	}
	if _, err := operation.VerifyApplySignatures(cfg, events); err != nil {
		return a.errorf("the ledger's hash chain is intact, but a signed apply does not verify: %v", err), true
	}
	a.progress("%d signed apply(s) verified against the declared actors' keys", signed)
	return exitOK, false
}

// selectTypes turns --type values (repeated or comma-separated) into a set;
// nil means every type. A type neither known nor present in the ledger is a
// typo, and an export that silently matched nothing would hide it.
func selectTypes(values []string, events []state.Event) (map[string]bool, error) {
	if len(values) == 0 {
		return nil, nil
	}
	present := map[string]bool{}
	for _, ev := range events {
		present[ev.Type] = true
	}
	want := map[string]bool{}
	for _, v := range values {
		t := strings.TrimSpace(v)
		if t == "" {
			continue
		}
		if !present[t] && !slices.Contains(knownEventTypes, t) {
			return nil, fmt.Errorf("unknown event type %q (known: %s)", t, strings.Join(knownEventTypes, ", "))
		}
		want[t] = true
	}
	if len(want) == 0 {
		return nil, errors.New("no event type given")
	}
	return want, nil
}

// missingStateNote adds, for local state, that .jitform/ is gone: the
// likeliest reason a checkpoint is missing from an empty ledger.
func (a *app) missingStateNote(b state.Backend) string {
	l, ok := b.(*state.Local)
	if !ok {
		return ""
	}
	if _, err := os.Stat(l.Dir()); errors.Is(err, fs.ErrNotExist) {
		return fmt.Sprintf("\nThe state directory %s does not exist: it was deleted (or this is not the repository the checkpoint came from).", l.Dir())
	}
	return ""
}

// intentsByID indexes the change intents, so an outcome line can say what
// it is the outcome of.
func intentsByID(events []state.Event) map[string]state.Change {
	m := map[string]state.Change{}
	for _, ev := range events {
		if ev.Type != state.EventChangeIntent {
			continue
		}
		var c state.Change
		if json.Unmarshal(ev.Payload, &c) == nil && c.ID != "" {
			m[c.ID] = c
		}
	}
	return m
}

// runnersByID indexes who ran each apply (apply_started), so change lines
// can name their runner.
func runnersByID(events []state.Event) map[string]state.Runner {
	m := map[string]state.Runner{}
	for _, ev := range events {
		if ev.Type != state.EventApplyStarted {
			continue
		}
		var st state.ApplyStarted
		if json.Unmarshal(ev.Payload, &st) == nil && st.ID != "" {
			m[st.ID] = st.Runner
		}
	}
	return m
}

// byRunner is " by RUNNER" for a change of run id, or "" when the ledger
// does not record who ran it.
func byRunner(runners map[string]state.Runner, id string) string {
	if r, ok := runners[id]; ok && id != "" {
		return " by " + r.String()
	}
	return ""
}

// describe summarises an event's payload in one line for people. intents
// (by ID) lets an outcome name its member, group and plan; runners (by
// apply_started ID) who ran it.
func describe(ev state.Event, intents map[string]state.Change, runners map[string]state.Runner) string {
	switch ev.Type {
	case state.EventApplyStarted:
		var st state.ApplyStarted
		if json.Unmarshal(ev.Payload, &st) == nil {
			s := fmt.Sprintf("%s by %s [run %s, plan %s]", dashIfEmpty(st.Operation), st.Runner.String(), st.ID, dashIfEmpty(st.PlanID))
			if st.Runner.CI != nil && st.Runner.CI.URL != "" {
				s += " " + st.Runner.CI.URL
			}
			return s
		}
	case state.EventApplySigned:
		var sg state.ApplySigned
		if json.Unmarshal(ev.Payload, &sg) == nil {
			return fmt.Sprintf("plan %s (sha256 %s) signed by %s%s [run %s]", sg.PlanID, abbrev(sg.PlanDigest), ev.Actor, byRunner(runners, sg.Run), sg.Run)
		}
	case state.EventRemovedByServer:
		var rb state.RemovedByServer
		if json.Unmarshal(ev.Payload, &rb) == nil {
			s := fmt.Sprintf("%s found gone from %s, removed by %s", rb.Member, rb.Group, rb.Lock)
			if rb.Expires != nil {
				s += " (due " + rb.Expires.UTC().Format(time.RFC3339) + ")"
			}
			if rb.Grant != "" {
				s += " " + rb.Grant
			}
			return s + fmt.Sprintf(" [added by %s; found%s]", rb.Intent, byRunner(runners, rb.Run))
		}
	case state.EventChangeIntent:
		var c state.Change
		if json.Unmarshal(ev.Payload, &c) == nil {
			why := c.Reason
			if c.Grant != "" {
				why += " " + c.Grant
			}
			if c.Ticket != "" {
				why += " " + c.Ticket
			}
			return fmt.Sprintf("%s (%s) [%s, plan %s]%s", changeText(c), why, c.ID, dashIfEmpty(c.PlanID), byRunner(runners, c.Run))
		}
	case state.EventChangeApplied, state.EventChangeFailed:
		var o state.ChangeOutcome
		if json.Unmarshal(ev.Payload, &o) == nil {
			var s string
			if c, ok := intents[o.ID]; ok {
				s = fmt.Sprintf("%s: %s [%s, plan %s]", o.Status, changeText(c), o.ID, dashIfEmpty(c.PlanID))
			} else {
				s = fmt.Sprintf("%s [%s] (no change_intent with this id in the ledger)", o.Status, o.ID)
			}
			if o.Error != "" {
				s += ": " + o.Error
			}
			for _, g := range slices.Sorted(maps.Keys(o.Credentials)) {
				s += fmt.Sprintf("; password delivered for %s (fingerprint %s)", g, o.Credentials[g])
			}
			run := o.Run
			if run == "" {
				run = intents[o.ID].Run
			}
			return s + byRunner(runners, run)
		}
	}
	if s, ok := describeGrantEvent(ev); ok {
		return s
	}
	return strings.TrimSpace(string(ev.Payload))
}

// changeText is "add MEMBER to GROUP" / "remove MEMBER from GROUP".
func changeText(c state.Change) string {
	if c.Kind == "account" { // "enable account.NAME (jit-admin)"
		return fmt.Sprintf("%s %s (%s)", c.Action, c.Group, c.Member)
	}
	dir := "to"
	if c.Action == "remove" {
		dir = "from"
	}
	return fmt.Sprintf("%s %s %s %s", c.Action, c.Member, dir, c.Group)
}

// abbrev is the first 12 characters of a digest.
func abbrev(s string) string {
	if len(s) > 12 {
		return s[:12]
	}
	return s
}

func dashIfEmpty(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
