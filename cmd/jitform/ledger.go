package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jitform/jitform/state"
)

const ledgerUsage = `
Usage: jitform [-C DIR] ledger verify
       jitform [-C DIR] ledger log [--json]

The ledger (.jitform/ledger.jsonl) is the append-only, hash-chained record of
grant requests, approvals, revocations and every membership change jitform
made (an intent before, the outcome after).

  verify   walk the hash chain; on any edit, insertion or deletion name the
           first bad event and exit 1. plan and apply refuse a ledger that
           fails verification.
  log      print the audit trail, oldest first; --json prints the events as
           JSON lines, exactly as stored.

Examples:
  jitform ledger verify
  jitform ledger log
  jitform ledger log --json | jq -c 'select(.type == "change_applied")'
`

func cmdLedger(ctx context.Context, a *app, args []string) int {
	fs := a.flagSet("ledger", ledgerUsage)
	asJSON := fs.Bool("json", false, "log: print events as JSON lines")
	if code, done := a.parse(fs, args); done {
		return code
	}
	if fs.NArg() != 1 {
		return a.errorf("ledger needs one command: `jitform ledger verify` or `jitform ledger log [--json]` (see jitform ledger --help)")
	}
	sub := fs.Arg(0)
	if sub != "verify" && sub != "log" {
		return a.errorf("unknown ledger command %q: use `jitform ledger verify` or `jitform ledger log`", sub)
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
		fmt.Fprintf(a.stdout, "Ledger OK: %d event(s), hash chain intact, head %s\n", len(events), head)
		return exitOK
	default:
		if *asJSON {
			for _, ev := range events {
				line, err := json.Marshal(ev)
				if err != nil {
					return a.errorf("encode event %d: %v", ev.Seq, err)
				}
				fmt.Fprintf(a.stdout, "%s\n", line)
			}
			return exitOK
		}
		if len(events) == 0 {
			fmt.Fprintln(a.stdout, "The ledger is empty.")
			return exitOK
		}
		for _, ev := range events {
			fmt.Fprintf(a.stdout, "%5d  %s  %-15s %-12s %s\n", ev.Seq, ev.Time.UTC().Format(time.RFC3339), ev.Type, ev.Actor, describe(ev))
		}
		return exitOK
	}
}

// describe summarises an event's payload in one line for people.
func describe(ev state.Event) string {
	switch ev.Type {
	case state.EventChangeIntent:
		var c state.Change
		if json.Unmarshal(ev.Payload, &c) == nil {
			dir := "to"
			if c.Action == "remove" {
				dir = "from"
			}
			why := c.Reason
			if c.Grant != "" {
				why += " " + c.Grant
			}
			if c.Ticket != "" {
				why += " " + c.Ticket
			}
			return fmt.Sprintf("%s %s %s %s (%s) [%s]", c.Action, c.Member, dir, c.Group, why, c.ID)
		}
	case state.EventChangeApplied, state.EventChangeFailed:
		var o state.ChangeOutcome
		if json.Unmarshal(ev.Payload, &o) == nil {
			s := fmt.Sprintf("%s [%s]", o.Status, o.ID)
			if o.Error != "" {
				s += ": " + o.Error
			}
			return s
		}
	}
	if s, ok := describeGrantEvent(ev); ok {
		return s
	}
	return strings.TrimSpace(string(ev.Payload))
}
