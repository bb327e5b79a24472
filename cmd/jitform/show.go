package main

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/jitform/jitform/config"
	"github.com/jitform/jitform/internal/operation"
	"github.com/jitform/jitform/planner"
	"github.com/jitform/jitform/providers"
)

const showUsage = `
Usage: jitform [-C DIR] show [--json] [PLANFILE]

With PLANFILE (from jitform plan --out), prints that plan as plan does, or as
JSON with --json (docs/plan-json.md). Reads nothing else and changes nothing.

Without PLANFILE, prints what the ledger says jitform manages: every member
jitform added and has not removed, with the grant that justified it; then
the dead-man's switches pending on each Windows host (winrm targets): the
scheduled tasks that remove a member at its window end + 60 s if jitform has
not (docs/revocation.md). Listing them connects to every Windows host.

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

// hostSwitches is one host's pending dead-man's switches in `show --json`.
type hostSwitches struct {
	Target   string             `json:"target"`
	Host     string             `json:"host"`
	Switches []providers.Switch `json:"switches"`
	Error    string             `json:"error,omitempty"`
}

// switchKinds are the target kinds whose provider leaves switches on the
// host (providers.SwitchLister); show connects to those only.
var switchKinds = map[string]bool{config.KindWinRM: true}

// showRegistry opens targets for show (tests replace it).
var showRegistry = registry

// listSwitches asks every host of a switch kind, ten at a time, for its
// pending switches. A host that cannot answer is listed with its error.
func listSwitches(ctx context.Context, a *app, cfg *config.Config) []hostSwitches {
	var todo []*config.Target
	for _, t := range cfg.Targets {
		if switchKinds[t.Kind] {
			todo = append(todo, t)
		}
	}
	out := make([]hostSwitches, len(todo))
	reg := showRegistry()
	sem := make(chan struct{}, 10)
	var wg sync.WaitGroup
	for i, t := range todo {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			hs := hostSwitches{Target: t.Addr, Host: t.Key, Switches: []providers.Switch{}}
			if hs.Host == "" && t.WinRM != nil {
				hs.Host = t.WinRM.Address
			}
			p, err := reg.Open(ctx, t, providers.Options{BaseDir: a.dir})
			if err == nil {
				if l, ok := p.(providers.SwitchLister); ok {
					var sw []providers.Switch
					if sw, err = l.Switches(ctx); err == nil {
						hs.Switches = append(hs.Switches, sw...)
						sort.Slice(hs.Switches, func(i, j int) bool { return hs.Switches[i].At.Before(hs.Switches[j].At) })
					}
				}
				_ = p.Close()
			}
			if err != nil {
				hs.Error = err.Error()
			}
			out[i] = hs
		}()
	}
	wg.Wait()
	return out
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
	switches := listSwitches(ctx, a, cfg)
	if asJSON {
		out, _ := json.MarshalIndent(struct {
			Managed  []managedMember `json:"managed"`
			Switches []hostSwitches  `json:"switches"`
		}{list, switches}, "", "  ")
		fmt.Fprintf(a.stdout, "%s\n", out)
		return exitOK
	}
	defer printSwitches(a, switches)
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

// printSwitches lists each Windows host's pending dead-man's switches.
func printSwitches(a *app, hosts []hostSwitches) {
	if len(hosts) == 0 {
		return
	}
	fmt.Fprintf(a.stdout, "\nDead-man's switches pending on Windows hosts (scheduled tasks that remove the member if jitform has not):\n")
	for _, h := range hosts {
		fmt.Fprintf(a.stdout, "\n%s (%s)\n", h.Host, h.Target)
		switch {
		case h.Error != "":
			fmt.Fprintf(a.stdout, "  could not list: %s\n", h.Error)
		case len(h.Switches) == 0:
			fmt.Fprintf(a.stdout, "  none\n")
		}
		for _, s := range h.Switches {
			grant := s.Grant
			if grant == "" {
				grant = "no grant recorded"
			}
			fmt.Fprintf(a.stdout, "  %s  fires %s  removes %s from %s  (%s)\n", s.Name, s.At.Format(time.RFC3339), s.Member, s.Group, grant)
		}
	}
}
