package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/jitform/jitform/planner"
)

const grantListUsage = `
Usage: jitform [-C DIR] grant list [--active | --pending] [--json]

Lists the grants in the ledger and the repository's grant blocks, newest
request first: ID, status, principal, policy, window, verified approvers and
flags (BREAK-GLASS, UNREVIEWED). Reads only the configuration and the ledger.

  --active    only grants whose window is open now (and that count)
  --pending   only requests waiting for approval

Examples:
  jitform grant list --pending
  jitform grant list --json | jq '.grants[] | select(.unreviewed)'
`

func grantList(ctx context.Context, a *app, args []string) int {
	fs := a.flagSet("grant list", grantListUsage)
	active := fs.Bool("active", false, "only grants in force now")
	pending := fs.Bool("pending", false, "only requests waiting for approval")
	asJSON := fs.Bool("json", false, "print as JSON (docs/grants.md)")
	if code, done := a.parse(fs, args); done {
		return code
	}
	if fs.NArg() > 0 {
		return a.errorf("grant list takes no arguments (got %q)", fs.Args())
	}
	if *active && *pending {
		return a.errorf("--active and --pending exclude each other; use one, or neither for all grants")
	}
	env, code, ok := a.grantEnv(ctx)
	if !ok {
		return code
	}
	all, warns := allGrants(env)
	var out []grantJSON
	for _, g := range all {
		if (*active && !g.Active) || (*pending && g.Status != planner.StatusPending) {
			continue
		}
		out = append(out, g)
	}
	if *asJSON {
		doc := grantListJSON{FormatVersion: grantJSONVersion, At: env.now, Grants: out, Warnings: warns}
		if doc.Grants == nil {
			doc.Grants = []grantJSON{}
		}
		return a.writeJSON(doc)
	}
	for _, w := range warns {
		fmt.Fprintf(a.stderr, "Warning: %s\n", w.Summary)
	}
	if len(out) == 0 {
		switch {
		case *active:
			fmt.Fprintln(a.stdout, "No grant is in force now.")
		case *pending:
			fmt.Fprintln(a.stdout, "No request is waiting for approval.")
		default:
			fmt.Fprintln(a.stdout, "No grants: none in the ledger, no grant blocks in the repository.")
		}
		return exitOK
	}
	writeGrantTable(a.stdout, out, env.now)
	return exitOK
}

func writeGrantTable(w io.Writer, gs []grantJSON, now time.Time) {
	// tabwriter pads by characters, not bytes: zoë lines up with bob.
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tSTATUS\tPRINCIPAL\tPOLICY\tWINDOW\tAPPROVERS\tFLAGS")
	for _, g := range gs {
		window := "at approval, " + g.Duration
		if g.Start != nil && g.End != nil {
			end := *g.End
			if g.RevokedAt != nil && g.RevokedAt.Before(end) {
				end = *g.RevokedAt // it ended when it was revoked
			}
			window = stampOf(*g.Start) + " - " + stampOf(end)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", g.ID, listStatus(g, now), g.Principal, g.Policy, window,
			orDash(approversWithFactors(g, ",")), strings.Join(grantFlags(g), " "))
	}
	_ = tw.Flush()
}

// listStatus is the status a person reads in the table: an approved grant is
// "active" in its window, "ended" after it and "scheduled" before it.
func listStatus(g grantJSON, now time.Time) string {
	switch {
	case g.Active:
		return "active"
	case g.Status == planner.StatusApproved && g.End != nil && !g.End.After(now):
		return "ended"
	case g.Status == planner.StatusApproved && g.Start != nil && g.Start.After(now):
		return "scheduled"
	}
	return g.Status
}

func grantFlags(g grantJSON) []string {
	var flags []string
	if g.BreakGlass {
		flags = append(flags, "BREAK-GLASS")
	}
	if g.Unreviewed {
		flags = append(flags, "UNREVIEWED")
	}
	return flags
}
