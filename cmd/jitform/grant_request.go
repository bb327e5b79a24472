package main

import (
	"context"
	"fmt"
	"strings"

	"github.com/jitform/jitform/config"
	"github.com/jitform/jitform/planner"
	"github.com/jitform/jitform/state"
)

const grantRequestUsage = `
Usage: jitform [-C DIR] grant request --policy P [--principal U] --duration D
         [--start T] [--ticket X] --reason "..." [--break-glass] --as NAME [--key FILE]

Asks for principal U (default: the actor signing) to hold the groups of
policy P for D. The request is checked against the policy now (eligibility,
max_duration, windows, ticket_pattern, max_active, which counts pending and
future grants too) and refused with the reason if it does not conform. The window starts at the approval that completes the
policy's approvals, unless --start names a time. A pending request expires
after the policy's request_ttl (default 24h).

--break-glass (only under a policy with a break_glass block) grants the
signing actor access at once, without approval, for at most the block's
max_duration and, with max_per_day, within the actor's break-glass budget
for any 24 hours. It starts now: --start is refused. The grant is flagged
in every plan and list until an approver runs jitform grant review.

Prints the new grant's ID on stdout (details on stderr), or with --json the
grant as grant show --json prints it.

Examples:
  jitform grant request --as alice --policy ops --duration 2h --ticket CHG1042 --reason "patch IIS"
  ID=$(jitform grant request --as alice --policy ops --duration 90m --start 2026-11-24T07:00 --ticket CHG7 --reason "db upgrade")
  jitform grant request --as alice --policy ops --duration 30m --break-glass --reason "INC42 outage"
`

func grantRequest(ctx context.Context, a *app, args []string) int {
	fs := a.flagSet("grant request", grantRequestUsage)
	policy := fs.String("policy", "", "the policy `P` (ops or policy.ops)")
	principal := fs.String("principal", "", "who gets access, `U` (default: the --as actor)")
	start := fs.String("start", "", "when the window opens, `TIME` (default: at approval)")
	duration := fs.String("duration", "", "how long, `D` (90m, 2h, 1h30m, 2d)")
	ticket := fs.String("ticket", "", "change or incident `ID` (checked against ticket_pattern)")
	reason := fs.String("reason", "", "why access is needed (recorded in the ledger)")
	breakGlass := fs.Bool("break-glass", false, "grant yourself access now, without approval (policy break_glass)")
	asJSON := fs.Bool("json", false, "print the new grant as JSON")
	as, key := identityFlags(a, fs)
	if code, done := a.parse(fs, args); done {
		return code
	}
	if fs.NArg() > 0 {
		return a.errorf("grant request takes no arguments (got %q); use --reason \"...\" for the reason", fs.Args())
	}
	env, code, ok := a.grantEnv(ctx)
	if !ok {
		return code
	}
	if err := checkActor(env.cfg, *as, "requesting"); err != nil {
		return a.errorf("%v", err)
	}
	pol, err := policyArg(env.cfg, *policy)
	if err != nil {
		return a.errorf("%v", err)
	}
	if *principal == "" {
		*principal = *as
	}
	q := state.GrantRequest{Policy: pol.Addr, Principal: *principal, Ticket: *ticket, Reason: strings.TrimSpace(*reason), BreakGlass: *breakGlass}
	if msg := requestArgs(env, pol, &q, *start, *duration); msg != "" {
		return a.errorf("request refused: %s", msg)
	}
	id, err := state.NewGrantID()
	if err != nil {
		return a.errorf("%v", err)
	}
	q.ID = id
	ev, err := state.NewSignedEvent(state.EventRequest, *as, env.now, q)
	if err != nil {
		return a.errorf("%v", err)
	}
	// The grant workflow decides, before anything is signed or written.
	if _, refusal := env.book().Check(ev); refusal != nil {
		return a.errorf("request refused: %s", refusal.Interactive())
	}
	if _, err := a.appendSigned(ctx, env, ev, *key); err != nil {
		return a.errorf("%v", err)
	}
	rec, warns := findRecord(env, id)
	if rec == nil || rec.Status == planner.StatusInvalid {
		// The planner must count what request just wrote; if not, say so.
		return a.errorf("the request was written but the planner does not count it: %s", warningsFor(warns, id))
	}
	if *asJSON {
		return a.writeJSON(grantToJSON(env.cfg, rec, env.now))
	}
	fmt.Fprintln(a.stdout, id)
	if q.BreakGlass {
		fmt.Fprintf(a.stderr, "Break-glass grant %s: %s holds %s from %s to %s, without approval.\n"+
			"It is flagged UNREVIEWED in every plan until an approver runs: jitform grant review %s --as NAME\n",
			id, q.Principal, pol.Addr, stampOf(rec.Start), stampOf(rec.End), id)
		return exitOK
	}
	when := "at approval"
	if q.Start != nil {
		when = "at " + stampOf(*q.Start)
	}
	fmt.Fprintf(a.stderr, "Requested %s: %s in %s for %s, window starting %s.\n"+
		"It needs %d approval(s) from %s before %s: jitform grant approve %s --as NAME\n",
		id, q.Principal, pol.Addr, rec.Duration, when, approvalsNeeded(pol),
		strings.Join(without(pol.Approvers, *as, q.Principal), ", "), stampOf(rec.ExpiresAt), id)
	return exitOK
}

// requestArgs turns --reason, --duration and --start into the request's
// fields, or says which flag is missing or malformed. The rules about
// what may be requested are the grant workflow's (internal/grants).
func requestArgs(env *grantEnv, pol *config.Policy, q *state.GrantRequest, startArg, durArg string) string {
	if q.Reason == "" {
		return "--reason is required: say why access is needed (it is recorded in the ledger)"
	}
	if durArg == "" {
		return fmt.Sprintf("--duration is required (e.g. --duration 2h; %s allows at most %s)", pol.Addr, pol.MaxDuration)
	}
	d, err := config.ParseDuration(durArg)
	if err != nil || d <= 0 {
		return fmt.Sprintf("--duration %q is not a positive duration like 90m, 2h, 1h30m or 2d", durArg)
	}
	q.Duration = d.String()
	if startArg != "" {
		t, err := parseAt(startArg, env.now)
		if err != nil {
			return "--start: " + err.Error()
		}
		q.Start = &t
	}
	return ""
}
