package main

import (
	"context"
	"fmt"
	"strings"

	"github.com/jitform/jitform/config"
	"github.com/jitform/jitform/internal/grants"
	"github.com/jitform/jitform/planner"
	"github.com/jitform/jitform/state"
)

const grantDecideUsage = `
Usage: jitform [-C DIR] grant approve ID [--until T] --as NAME [--key FILE]
       jitform [-C DIR] grant deny ID --reason "..." --as NAME [--key FILE]
       jitform [-C DIR] grant revoke ID --reason "..." --as NAME [--key FILE]
       jitform [-C DIR] grant review ID [--reason "..."] --as NAME [--key FILE]

approve  an approver of the policy approves a pending request; never the
         requester or principal. --until shortens the window (never lengthens
         it). With approvals = N, N distinct approvers are needed; the window
         starts at the approval that completes them unless the request named
         a start.
deny     an approver (or the requester, withdrawing it) denies a pending request.
revoke   ends a grant now: the next plan removes the member. ID is a ledger
         grant ID or a grant block's address (grant.NAME). An approver of the
         policy, the requester or the principal (an early check-in) may revoke.
review   an approver other than the principal reviews a break-glass grant,
         clearing its "unreviewed" flag.

Each writes one event signed with the actor's SSH key; the signature covers
the hash of the request it decides (for a grant block: a digest of the
block), so it cannot be moved onto a replaced request (docs/grants.md).

Examples:
  jitform grant approve g-k3x9q2m7ab --as carol
  jitform grant approve g-k3x9q2m7ab --as carol --until +1h
  jitform grant deny g-k3x9q2m7ab --as carol --reason "no change ticket"
  jitform grant revoke grant.alice_chg1042 --as alice --reason "done early"
  jitform grant review g-k3x9q2m7ab --as dave --reason "INC42 post-mortem done"
`

func grantDecide(ctx context.Context, a *app, typ string, args []string) int {
	fs := a.flagSet("grant "+typ, grantDecideUsage)
	reason := fs.String("reason", "", "why (recorded in the ledger; required for deny and revoke)")
	var until *string
	if typ == state.EventApprove {
		until = fs.String("until", "", "shorten the window to end at `TIME` (RFC 3339, or +1h from now)")
	}
	asJSON := fs.Bool("json", false, "print the grant afterwards as JSON")
	as, key := identityFlags(a, fs)
	if code, done := a.parse(fs, args); done {
		return code
	}
	if fs.NArg() != 1 {
		return a.errorf("grant %s takes one grant ID (got %d arguments); jitform grant list shows the IDs", typ, fs.NArg())
	}
	id := fs.Arg(0)
	env, code, ok := a.grantEnv(ctx)
	if !ok {
		return code
	}
	if err := checkActor(env.cfg, *as, "signing"); err != nil {
		return a.errorf("%v", err)
	}
	if (typ == state.EventDeny || typ == state.EventRevoke) && strings.TrimSpace(*reason) == "" {
		return a.errorf("--reason is required for grant %s: say why (it is recorded in the ledger)", typ)
	}
	d := state.GrantDecision{Grant: id, Reason: strings.TrimSpace(*reason)}
	if until != nil && *until != "" {
		t, err := parseAt(*until, env.now)
		if err != nil {
			return a.errorf("%s refused: --until: %v", typ, err)
		}
		d.Until = &t
	}

	if typ == state.EventRevoke && !state.IsGrantID(id) {
		return a.revokeRepository(ctx, env, d, *as, *key)
	}
	rec, ok := env.book().Record(id)
	if !ok || rec.Source != "ledger" {
		return a.errorf("no grant %s in the ledger; jitform grant list shows the grants", id)
	}
	// The decision signs the exact request it acts on.
	d.Request = rec.RequestHash
	ev, err := state.NewSignedEvent(typ, *as, env.now, d)
	if err != nil {
		return a.errorf("%v", err)
	}
	if _, refusal := env.book().Check(ev); refusal != nil {
		return a.errorf("%s refused: %s", typ, refusal.Interactive())
	}
	ev, err = a.appendSigned(ctx, env, ev, *key)
	if err != nil {
		return a.errorf("%v", err)
	}
	after, warns := findRecord(env, id)
	if after == nil || !decisionCounted(after, ev.Seq) {
		return a.errorf("the %s was written but the planner does not count it: %s", typ, warningsFor(warns, id))
	}
	if *asJSON {
		return a.writeJSON(grantToJSON(env.cfg, after, env.now))
	}
	a.describeOutcome(env, typ, after)
	return exitOK
}

func decisionCounted(rec *planner.GrantRecord, seq int64) bool {
	for _, d := range rec.Decisions {
		if d.Seq == seq {
			return d.Counted
		}
	}
	return false
}

func (a *app) describeOutcome(env *grantEnv, typ string, rec *planner.GrantRecord) {
	pol := env.cfg.PolicyByAddr(rec.Policy)
	switch typ {
	case state.EventApprove:
		if rec.Pending {
			more := approvalsNeeded(pol) - len(rec.Approvers)
			fmt.Fprintf(a.stdout, "Approval of %s recorded (%d of %d); it needs %d more from: %s.\n", rec.ID,
				len(rec.Approvers), approvalsNeeded(pol), more,
				strings.Join(without(pol.Approvers, append([]string{rec.RequestedBy, rec.Principal}, rec.Approvers...)...), ", "))
			return
		}
		fmt.Fprintf(a.stdout, "Approved %s (by %s): %s holds %s from %s to %s; the next plan adds the member when the window is open.\n",
			rec.ID, strings.Join(rec.Approvers, ", "), rec.Principal, rec.Policy, stampOf(rec.Start), stampOf(rec.End))
	case state.EventDeny:
		fmt.Fprintf(a.stdout, "Denied %s.\n", rec.ID)
	case state.EventRevoke:
		fmt.Fprintf(a.stdout, "Revoked %s at %s; the next plan removes %s from %s's groups.\n", rec.ID, stampOf(rec.RevokedAt), rec.Principal, rec.Policy)
	case state.EventReview:
		fmt.Fprintf(a.stdout, "Reviewed break-glass grant %s; it is no longer flagged unreviewed.\n", rec.ID)
	}
}

// revokeRepository revokes a grant block (grant.NAME, or NAME).
func (a *app) revokeRepository(ctx context.Context, env *grantEnv, d state.GrantDecision, as, key string) int {
	addr := d.Grant
	if !strings.HasPrefix(addr, "grant.") {
		addr = "grant." + addr
	}
	var g *config.Grant
	for _, cg := range env.cfg.Grants {
		if cg.Addr == addr {
			g = cg
		}
	}
	if g == nil {
		return a.errorf("no grant %s: neither a ledger grant ID (g-...) nor a grant block in the repository; jitform grant list shows both", d.Grant)
	}
	d.Grant = addr
	// The revocation signs the block's content: it ends this grant, not
	// another one declared later under the same name.
	d.Block = grants.BlockDigest(g)
	ev, err := state.NewSignedEvent(state.EventRevoke, as, env.now, d)
	if err != nil {
		return a.errorf("%v", err)
	}
	if _, refusal := env.book().Check(ev); refusal != nil {
		return a.errorf("revoke refused: %s", refusal.Interactive())
	}
	if _, err := a.appendSigned(ctx, env, ev, key); err != nil {
		return a.errorf("%v", err)
	}
	view, warns := planner.Replay(env.cfg, env.events, env.now)
	if view.RevokedRepo[addr].IsZero() {
		return a.errorf("the revoke was written but the planner does not count it: %s", warningsFor(warns, addr))
	}
	fmt.Fprintf(a.stdout, "Revoked %s at %s; the next plan removes %s from %s's groups. Delete the grant block in your next change.\n",
		addr, stampOf(env.now), g.Principal, g.Policy)
	return exitOK
}
