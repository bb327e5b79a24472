package main

import (
	"context"
	"fmt"
	"time"

	"github.com/jitform/jitform/internal/operation"
	"github.com/jitform/jitform/state"
)

const initUsage = `
Usage: jitform [-C DIR] init

Checks that the policy repository loads and creates its state directory
(.jitform/, holding the ledger and the lock) beside the configuration.
Safe to run again: an existing ledger is verified, never rewritten.

With a state "postgres" block, init creates the schema (table jitform.ledger)
in PostgreSQL instead, or upgrades it to this jitform's version; a schema
newer than this jitform is refused. Run it as a role that may create tables.

Examples:
  jitform init
  jitform -C policies init
`

func cmdInit(ctx context.Context, a *app, args []string) int {
	fs := a.flagSet("init", initUsage)
	if code, done := a.parse(fs, args); done {
		return code
	}
	if fs.NArg() > 0 {
		return a.errorf("init takes no arguments (got %q); use -C DIR to choose the repository", fs.Args())
	}
	cfg, warns, err := operation.LoadConfig(a.dir, time.Now().UTC())
	if err != nil {
		return a.fail(err)
	}
	a.printDiags(cfg, warns)
	// A state "postgres" block: create or upgrade the schema there, and
	// never touch local files.
	pg, err := a.postgresState()
	if err != nil {
		return a.errorf("%v", err)
	}
	var b state.Backend
	if pg != nil {
		defer pg.Close()
		if err := a.initPostgres(ctx, pg); err != nil {
			return a.errorf("%v", err)
		}
		b = pg
	} else {
		// The state directory holds the ledger and the lock: 0700, created by
		// the state package like every other writer of it.
		local, err := state.NewLocal(a.dir)
		if err != nil {
			return a.errorf("open the state in %s: %v", a.dir, err)
		}
		if err := local.Init(ctx); err != nil {
			return a.errorf("create the state directory: %v", err)
		}
		b = local
	}
	events, err := operation.ReadLedger(ctx, b)
	if err != nil {
		return a.fail(err)
	}
	kinds := registry()
	for _, t := range cfg.Targets {
		if _, ok := kinds[t.Kind]; !ok {
			return a.errorf("%s: no provider for target kind %q (known: %v)", t.Addr, t.Kind, kinds.Kinds())
		}
	}
	fmt.Fprintf(a.stdout, "jitform has been initialized in %s: %d target(s), %d group(s), %d policy(ies), %d grant(s); ledger holds %d event(s).\n",
		a.dir, len(cfg.Targets), len(cfg.Groups), len(cfg.Policies), len(cfg.Grants), len(events))
	fmt.Fprintln(a.stdout, "Next: run `jitform plan` to see which memberships would change.")
	return exitOK
}
