package main

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"time"

	"github.com/jitform/jitform/internal/operation"
	"github.com/jitform/jitform/planner"
)

const showUsage = `
Usage: jitform [-C DIR] show [--json] [PLANFILE]

With PLANFILE (from jitform plan --out), prints that plan as plan does, or as
JSON with --json (docs/plan-json.md). Reads nothing else and changes nothing.

Without PLANFILE, prints what the ledger says jitform manages: every member
jitform added and has not removed, with the grant that justified it.

Examples:
  jitform show tonight.plan
  jitform show --json tonight.plan | jq '.valid_until'
  jitform show
`

func cmdShow(ctx context.Context, a *app, args []string) int {
	fs := a.flagSet("show", showUsage)
	asJSON := fs.Bool("json", false, "print as JSON")
	if code, done := a.parse(fs, args); done {
		return code
	}
	switch fs.NArg() {
	case 0:
		return showManaged(ctx, a, *asJSON)
	case 1:
	default:
		return a.errorf("show takes at most one plan file (got %q)", fs.Args())
	}
	p, err := planner.ReadPlanFile(a.path(fs.Arg(0)))
	if err != nil {
		return a.errorf("%v", err)
	}
	if *asJSON {
		err = planner.RenderJSON(a.stdout, p)
	} else {
		err = planner.RenderText(a.stdout, p, a.color())
	}
	if err != nil {
		return a.errorf("%v", err)
	}
	return exitOK
}

// managedMember is one entry of `show --json` without a plan file.
type managedMember struct {
	Group  string    `json:"group"`
	Member string    `json:"member"`
	Grant  string    `json:"grant,omitempty"`
	Since  time.Time `json:"since"`
}

func showManaged(ctx context.Context, a *app, asJSON bool) int {
	now := time.Now().UTC()
	cfg, warns, err := operation.LoadConfig(a.dir, now)
	if err != nil {
		return a.fail(err)
	}
	a.printDiags(cfg, warns)
	b, err := a.backend()
	if err != nil {
		return a.errorf("%v", err)
	}
	events, err := operation.ReadLedger(ctx, b)
	if err != nil {
		return a.fail(err)
	}
	view, _ := planner.Replay(cfg, events, now)
	list := []managedMember{}
	for g, ms := range view.Managed {
		for id, m := range ms {
			list = append(list, managedMember{Group: g, Member: id, Grant: m.Grant, Since: m.Since.UTC()})
		}
	}
	sort.Slice(list, func(i, j int) bool {
		if list[i].Group != list[j].Group {
			return list[i].Group < list[j].Group
		}
		return list[i].Member < list[j].Member
	})
	if asJSON {
		out, _ := json.MarshalIndent(struct {
			Managed []managedMember `json:"managed"`
		}{list}, "", "  ")
		fmt.Fprintf(a.stdout, "%s\n", out)
		return exitOK
	}
	if len(list) == 0 {
		fmt.Fprintf(a.stdout, "The ledger (%d events) records no member that jitform added and has not removed.\n", len(events))
		return exitOK
	}
	fmt.Fprintf(a.stdout, "Members jitform added and has not removed (ledger, %d events):\n", len(events))
	last := ""
	for _, m := range list {
		if m.Group != last {
			fmt.Fprintf(a.stdout, "\n%s\n", m.Group)
			last = m.Group
		}
		grant := m.Grant
		if grant == "" {
			grant = "no grant recorded"
		}
		fmt.Fprintf(a.stdout, "  %s  since %s  (%s)\n", m.Member, m.Since.Format(time.RFC3339), grant)
	}
	return exitOK
}
