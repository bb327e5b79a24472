package main

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/jitform/jitform/internal/operation"
	"github.com/jitform/jitform/planner"
	"github.com/jitform/jitform/state"
)

const planUsage = `
Usage: jitform [-C DIR] plan [flags]

Reads the real membership of every managed group, compares it with what the
declarations and the grants active now require, and prints the changes, each
with its reason: the grant, policy, ticket, approvers and window end of an
add; why a member is removed (window ended, revoked, never declared, policy
changed). Changes nothing. The plan is valid until the next window boundary.

Examples:
  jitform plan
  jitform plan --out tonight.plan       # then: jitform apply tonight.plan
  jitform plan --json | jq '.changes[] | select(.action == "remove")'
  jitform plan --detailed-exitcode      # exit 2 when there are changes (CI drift check)
  jitform plan --target group.db_admins --target target.ldap.corp
  jitform plan --at 2026-11-24T08:00:00Z   # what would change at that time

Exit codes: 0 success (no changes under --detailed-exitcode); 1 error, also
a plan with errors (apply would refuse it) or with groups that could not be
read; 2 changes under --detailed-exitcode.
`

func cmdPlan(ctx context.Context, a *app, args []string) int {
	fs := a.flagSet("plan", planUsage)
	out := fs.String("out", "", "save the plan to `FILE` for `jitform apply FILE`")
	asJSON := fs.Bool("json", false, "print the plan as JSON (docs/plan-json.md) instead of text")
	detailed := fs.Bool("detailed-exitcode", false, "exit 0 for no changes, 1 for errors, 2 for changes")
	targets := fs.StringArray("target", nil, "plan only this target or group `ADDR` (repeatable)")
	parallelism := fs.Int("parallelism", operation.DefaultParallelism, "read at most `N` targets at once")
	at := fs.String("at", "", "plan for `TIME` instead of now (RFC 3339, or -2h / +30m relative to now)")
	lockTimeout := fs.Duration("lock-timeout", 0, "wait up to `D` for the state lock (e.g. 30s)")
	if code, done := a.parse(fs, args); done {
		return code
	}
	if fs.NArg() > 0 {
		return a.errorf("plan takes no arguments (got %q); to apply a saved plan use `jitform apply FILE`", fs.Args())
	}
	b, err := a.backend()
	if err != nil {
		return a.errorf("%v", err)
	}
	opts := a.options(b, *parallelism, *lockTimeout)
	saveMemo, err := a.useVerifyCache(&opts)
	if err != nil {
		return a.errorf("%v", err)
	}
	defer saveMemo()
	opts.Targets = *targets
	if *at != "" {
		t, err := parseAt(*at, time.Now())
		if err != nil {
			return a.errorf("--at: %v", err)
		}
		opts.At = t
	}
	p, s, err := operation.Plan(ctx, opts)
	if s != nil {
		a.printDiags(s.Config, s.ConfigWarnings)
	}
	if err != nil {
		return a.fail(err)
	}

	if *asJSON {
		err = planner.RenderJSON(a.stdout, p)
	} else {
		err = planner.RenderText(a.stdout, p, a.color())
	}
	if err != nil {
		return a.errorf("%v", err)
	}
	if len(p.Errors) > 0 {
		if *out != "" {
			fmt.Fprintf(a.stderr, "The plan was not saved to %s: it has errors, and apply refuses a plan with errors.\n", *out)
		}
		return a.errorf("the plan has %d error(s); apply would refuse it", len(p.Errors))
	}
	if *out != "" {
		if err := planner.WritePlanFile(a.path(*out), p); err != nil {
			return a.errorf("save the plan: %v", err)
		}
		msg := a.stdout
		if *asJSON {
			msg = a.stderr // stdout is the JSON document
		}
		fmt.Fprintf(msg, "\nSaved the plan to: %s\nTo apply exactly these changes before %s, run:\n  jitform %sapply %s\n",
			a.path(*out), p.ValidUntil.UTC().Format(time.RFC3339), a.chdirArg(), *out)
	}
	if s != nil {
		a.warnAdoption(p, s.Events)
	}
	if len(p.Unreadable) > 0 {
		return a.errorf("%d group(s) could not be read, so nothing is planned for them (see above); the rest of the plan stands", len(p.Unreadable))
	}
	if *detailed && p.HasChanges() {
		return exitChanges
	}
	return exitOK
}

// adoptThreshold is how many undeclared members an exclusive group may lose
// in its first apply before plan warns that they may be real administrators.
const adoptThreshold = 3

// warnAdoption warns before the first apply on an exclusive group that would
// remove several members nobody declared: adopting an existing group with
// exclusive = true strips everyone not in members, and import prevents that.
func (a *app) warnAdoption(p *planner.Plan, events []state.Event) {
	applied := map[string]bool{}
	for _, ev := range events {
		if ev.Type != state.EventChangeIntent {
			continue
		}
		var c state.Change
		if json.Unmarshal(ev.Payload, &c) == nil {
			applied[c.Group] = true
		}
	}
	removals := map[string][]string{}
	var order []string
	for _, c := range p.Changes {
		if c.Action != "remove" || c.Reason.Kind != planner.ReasonUndeclared || applied[c.Group] {
			continue
		}
		if removals[c.Group] == nil {
			order = append(order, c.Group)
		}
		who := c.MemberName
		if who == "" {
			who = c.Member
		}
		removals[c.Group] = append(removals[c.Group], who)
	}
	for _, g := range order {
		who := removals[g]
		if len(who) < adoptThreshold {
			continue
		}
		fmt.Fprintf(a.stderr, "%s %s is exclusive and jitform has never applied to it: this plan removes %d members nobody declared (%s).\n"+
			"  If they should keep access, adopt them first: jitform %simport --target %s --write\n",
			a.paintErr(yellow+bold, "Warning:"), g, len(who), strings.Join(who, ", "), a.chdirArg(), g)
	}
}

// chdirArg is "-C DIR " when the command ran with -C, for hints to copy.
func (a *app) chdirArg() string {
	if a.dir == "" || a.dir == "." {
		return ""
	}
	return "-C " + a.dir + " "
}

// parseAt reads --at: an RFC 3339 time, a date and time without zone (UTC),
// or a signed duration relative to now ("-2h", "+30m").
func parseAt(s string, now time.Time) (time.Time, error) {
	if strings.HasPrefix(s, "-") || strings.HasPrefix(s, "+") {
		d, err := time.ParseDuration(s)
		if err != nil {
			return time.Time{}, fmt.Errorf("%q is not a duration like -2h or +30m: %v", s, err)
		}
		return now.Add(d).UTC().Truncate(time.Second), nil
	}
	for _, layout := range []string{time.RFC3339, "2006-01-02T15:04", "2006-01-02 15:04", "2006-01-02"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UTC(), nil
		}
	}
	return time.Time{}, fmt.Errorf("%q is not a time: use RFC 3339 (2026-11-23T09:00:00Z), 2026-11-23T09:00 (UTC), or -2h / +30m relative to now", s)
}
