package main

import (
	"context"
	"fmt"
	"io"
	"strings"

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
	writeGrantTable(a.stdout, out)
	return exitOK
}

func writeGrantTable(w io.Writer, gs []grantJSON) {
	rows := [][]string{{"ID", "STATUS", "PRINCIPAL", "POLICY", "WINDOW", "APPROVERS", "FLAGS"}}
	for _, g := range gs {
		window := "at approval, " + g.Duration
		if g.Start != nil && g.End != nil {
			window = stampOf(*g.Start) + " - " + stampOf(*g.End)
		}
		status := g.Status
		if g.Active {
			status = "active"
		}
		var flags []string
		if g.BreakGlass {
			flags = append(flags, "BREAK-GLASS")
		}
		if g.Unreviewed {
			flags = append(flags, "UNREVIEWED")
		}
		approvers := strings.Join(g.Approvers, ",")
		if approvers == "" {
			approvers = "-"
		}
		rows = append(rows, []string{g.ID, status, g.Principal, g.Policy, window, approvers, strings.Join(flags, " ")})
	}
	widths := make([]int, len(rows[0]))
	for _, r := range rows {
		for i, c := range r {
			widths[i] = max(widths[i], len(c))
		}
	}
	for _, r := range rows {
		var b strings.Builder
		for i, c := range r {
			if i == len(r)-1 {
				b.WriteString(c)
				break
			}
			b.WriteString(c + strings.Repeat(" ", widths[i]-len(c)+2))
		}
		fmt.Fprintln(w, strings.TrimRight(b.String(), " "))
	}
}
