package main

import (
	"context"
	"fmt"
	"slices"

	"github.com/jitform/jitform/internal/grants"
	"github.com/jitform/jitform/planner"
)

const grantShowUsage = `
Usage: jitform [-C DIR] grant show ID [--json]

Shows one grant: the request, its window, and every decision (approve, deny,
revoke, review) with whether it counted and, if not, why (a forged or wrong
signature, an actor who is not an approver, the requester approving, an
approval after the request expired ...). ID is a ledger grant ID or a grant
block's address (grant.NAME).

Examples:
  jitform grant show g-k3x9q2m7ab
  jitform grant show g-k3x9q2m7ab --json | jq '.decisions[] | select(.counted | not)'
`

func grantShow(ctx context.Context, a *app, args []string) int {
	fs := a.flagSet("grant show", grantShowUsage)
	asJSON := fs.Bool("json", false, "print as JSON (docs/grants.md)")
	if code, done := a.parse(fs, args); done {
		return code
	}
	if fs.NArg() != 1 {
		return a.errorf("grant show takes one grant ID (got %d arguments); jitform grant list shows the IDs", fs.NArg())
	}
	env, code, ok := a.grantEnv(ctx)
	if !ok {
		return code
	}
	id := fs.Arg(0)
	all, _ := allGrants(env)
	i := slices.IndexFunc(all, func(g grantJSON) bool { return g.ID == id || g.ID == "grant."+id })
	if i < 0 {
		return a.errorf("no grant %s in the ledger or the repository; jitform grant list shows the grants", id)
	}
	g := all[i]
	if *asJSON {
		return a.writeJSON(g)
	}
	w := a.stdout
	status := g.Status
	if g.Active {
		status += ", active now"
	}
	fmt.Fprintf(w, "Grant %s (%s, %s)\n", g.ID, g.Source, status)
	fmt.Fprintf(w, "  policy:     %s\n  principal:  %s\n", g.Policy, g.Principal)
	if g.RequestedBy != "" {
		by := g.RequestedBy
		if f := grants.FactorText(g.RequestFactor); f != "" {
			by += " (" + f + ")"
		}
		fmt.Fprintf(w, "  requested:  by %s at %s\n", by, stampOf(*g.RequestedAt))
	}
	if g.Start != nil && g.End != nil {
		fmt.Fprintf(w, "  window:     %s - %s\n", stampOf(*g.Start), stampOf(*g.End))
	} else {
		fmt.Fprintf(w, "  window:     %s, starting at approval\n", g.Duration)
	}
	if g.Ticket != "" {
		fmt.Fprintf(w, "  ticket:     %s\n", g.Ticket)
	}
	if g.Reason != "" {
		fmt.Fprintf(w, "  reason:     %s\n", g.Reason)
	}
	fmt.Fprintf(w, "  approvers:  %s (%d needed)\n", orDash(approversWithFactors(g, ", ")), g.ApprovalsNeeded)
	if g.ExpiresAt != nil && g.Status == planner.StatusPending {
		fmt.Fprintf(w, "  expires:    %s unless approved\n", stampOf(*g.ExpiresAt))
	}
	if g.BreakGlass {
		rv := "UNREVIEWED"
		if !g.Unreviewed {
			rv = "reviewed by " + g.ReviewedBy
		}
		fmt.Fprintf(w, "  break-glass: yes, %s\n", rv)
	}
	if g.RevokedAt != nil {
		fmt.Fprintf(w, "  revoked:    at %s by %s: %s\n", stampOf(*g.RevokedAt), g.RevokedBy, g.RevokeReason)
	}
	if g.DeniedBy != "" {
		fmt.Fprintf(w, "  denied:     by %s: %s\n", g.DeniedBy, g.DenyReason)
	}
	if g.Refusal != "" {
		fmt.Fprintf(w, "  NOT COUNTED: %s\n", g.Refusal)
	}
	if len(g.Decisions) > 0 {
		fmt.Fprintln(w, "  decisions:")
		for _, d := range g.Decisions {
			verdict := "counted"
			if !d.Counted {
				verdict = "NOT COUNTED: " + d.Why
			} else if d.Why != "" {
				verdict += "; " + d.Why
			}
			extra := ""
			if d.Until != nil {
				extra = " until " + stampOf(*d.Until)
			}
			by := d.Actor
			if f := grants.FactorText(d.Factor); f != "" {
				by += " (" + f + ")"
			}
			fmt.Fprintf(w, "    #%d %s %s by %s%s: %s\n", d.Seq, stampOf(d.At), d.Type, by, extra, verdict)
		}
	}
	return exitOK
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// findRecord replays the ledger and returns the record of grant id.
