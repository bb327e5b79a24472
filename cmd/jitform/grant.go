package main

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jitform/jitform/config"
	"github.com/jitform/jitform/internal/grants"
	"github.com/jitform/jitform/internal/operation"
	"github.com/jitform/jitform/planner"
	"github.com/jitform/jitform/state"
)

const grantUsage = `
Usage: jitform [-C DIR] grant <command> [flags] [args]

Request, approve, deny, revoke and review grants in the ledger. Every event a
person writes is signed with their SSH key (the way ssh-keygen -Y sign signs,
namespace "jitform"); the planner counts only approvals whose signature
verifies against the ssh_key declared for an approver of the policy.

Commands:
  request   ask for a principal to hold a policy's groups for a while
  approve   approve a pending request (an approver; never the requester)
  deny      deny a pending request
  revoke    end a grant early (a ledger grant ID, or a grant block's address)
  review    review a break-glass grant (clears its "unreviewed" flag)
  list      list grants: all, --active or --pending
  show      show one grant with every decision and whether it counted
  credential  print the account password delivered for a grant (--key FILE)

Identity (request, approve, deny, revoke, review):
  --as NAME   a declared actor (actor "NAME" { ssh_key = "..." }); default $JITFORM_ACTOR
  --key FILE  that actor's private key; default $JITFORM_KEY; without it the
              ssh-agent (SSH_AUTH_SOCK) key matching the actor's ssh_key signs

Examples:
  jitform grant request --as alice --policy ops --duration 2h --ticket CHG1042 --reason "patch IIS"
  jitform grant approve g-k3x9q2m7ab --as carol --key ~/.ssh/id_ed25519
  jitform grant approve g-k3x9q2m7ab --as carol --until 2026-11-23T11:00:00Z
  jitform grant revoke g-k3x9q2m7ab --as alice --reason "done early"
  jitform grant list --pending
  jitform grant show g-k3x9q2m7ab --json

"jitform grant <command> --help" shows a command's flags. See docs/grants.md.
`

func cmdGrant(ctx context.Context, a *app, args []string) int {
	if len(args) == 0 {
		fmt.Fprint(a.stderr, strings.TrimLeft(grantUsage, "\n"))
		return exitError
	}
	sub, rest := args[0], args[1:]
	switch sub {
	case "-h", "--help", "-help", "help":
		fmt.Fprint(a.stdout, strings.TrimLeft(grantUsage, "\n"))
		return exitOK
	case "request":
		return grantRequest(ctx, a, rest)
	case "approve", "deny", "revoke", "review":
		return grantDecide(ctx, a, sub, rest)
	case "list":
		return grantList(ctx, a, rest)
	case "show":
		return grantShow(ctx, a, rest)
	case "credential":
		return grantCredential(ctx, a, rest)
	}
	return a.errorf("unknown grant command %q: use request, approve, deny, revoke, review, list, show or credential (jitform grant --help)", sub)
}

// grantEnv is what every grant command reads: the configuration, the
// verified ledger and the clock.
type grantEnv struct {
	cfg    *config.Config
	b      state.Backend
	events []state.Event
	now    time.Time
	// replayed is the grant workflow's state of events (book).
	replayed *grants.Book
}

// book replays the ledger through the grant workflow: what the CLI checks
// a proposed event against, with the rules the planner's replay applies.
func (env *grantEnv) book() *grants.Book {
	if env.replayed == nil {
		env.replayed = grants.Replay(env.cfg, grants.NewSSHVerifier(env.cfg, env.events), env.events, env.now)
	}
	return env.replayed
}

func (a *app) grantEnv(ctx context.Context) (*grantEnv, int, bool) {
	now := time.Now().UTC()
	cfg, warns, err := operation.LoadConfig(a.dir, now)
	a.printDiags(cfg, warns)
	if err != nil {
		return nil, a.fail(err), false
	}
	b, err := a.backend()
	if err != nil {
		return nil, a.errorf("%v", err), false
	}
	events, err := operation.ReadLedger(ctx, b)
	if err != nil {
		return nil, a.errorf("%v", err), false
	}
	return &grantEnv{cfg: cfg, b: b, events: events, now: now}, 0, true
}

// policyArg accepts "ops" and "policy.ops".
func policyArg(cfg *config.Config, s string) (*config.Policy, error) {
	if s == "" {
		return nil, fmt.Errorf("--policy is required: name the policy to request under (e.g. --policy %s)", firstPolicy(cfg))
	}
	addr := s
	if !strings.HasPrefix(addr, "policy.") {
		addr = "policy." + s
	}
	if p := cfg.PolicyByAddr(addr); p != nil {
		return p, nil
	}
	names := make([]string, 0, len(cfg.Policies))
	for _, p := range cfg.Policies {
		names = append(names, p.Name)
	}
	return nil, fmt.Errorf("policy %q is not declared (policies: %s)", s, strings.Join(names, ", "))
}

func firstPolicy(cfg *config.Config) string {
	if len(cfg.Policies) > 0 {
		return cfg.Policies[0].Name
	}
	return "NAME"
}

func approvalsNeeded(p *config.Policy) int { return grants.ApprovalsNeeded(p) }

func findRecord(env *grantEnv, id string) (*planner.GrantRecord, []planner.Warning) {
	recs, warns := planner.LedgerGrants(env.cfg, env.events, env.now)
	for i := range recs {
		if recs[i].ID == id {
			return &recs[i], warns
		}
	}
	return nil, warns
}

// warningsFor picks the planner warnings that mention id.
func warningsFor(warns []planner.Warning, id string) string {
	var out []string
	for _, w := range warns {
		if strings.Contains(w.Summary, id) {
			out = append(out, w.Summary)
		}
	}
	if len(out) == 0 {
		return "no reason given; run jitform grant show " + id
	}
	return strings.Join(out, "; ")
}

// without returns xs minus the given names, in order.
func without(xs []string, drop ...string) []string {
	var out []string
	for _, x := range xs {
		if !slices.Contains(drop, x) && !slices.Contains(out, x) {
			out = append(out, x)
		}
	}
	return out
}

func stampOf(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}

// describeGrantEvent summarises a grant event for `ledger log`, flagging
// break-glass requests so that they stand out in the audit trail.
func describeGrantEvent(ev state.Event) (string, bool) {
	if !state.IsGrantEvent(ev.Type) {
		return "", false
	}
	signed := ""
	if ev.Sig == "" {
		signed = " (UNSIGNED)"
	}
	if ev.Type == state.EventRequest {
		q, err := state.DecodeGrantRequest(ev)
		if err != nil {
			return "", false
		}
		s := fmt.Sprintf("%s: %s in %s for %s", q.ID, q.Principal, q.Policy, q.Duration)
		if q.Start != nil {
			s += " from " + stampOf(*q.Start)
		}
		if q.Ticket != "" {
			s += ", ticket " + q.Ticket
		}
		if q.BreakGlass {
			s += " BREAK-GLASS"
		}
		return s + signed, true
	}
	d, err := state.DecodeGrantDecision(ev)
	if err != nil {
		return "", false
	}
	s := d.Grant
	if d.Until != nil {
		s += " until " + stampOf(*d.Until)
	}
	if d.Reason != "" {
		s += ": " + d.Reason
	}
	return s + signed, true
}
