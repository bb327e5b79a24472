package main

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/jitform/jitform/examples"
	"github.com/jitform/jitform/internal/operation"
	"github.com/jitform/jitform/state"
)

const initUsage = `
Usage: jitform [-C DIR] init [--example ldif|ldap|active-directory|winrm]

Checks that the policy repository loads and creates its state directory
(.jitform/, holding the ledger and the lock) beside the configuration.
Safe to run again: an existing ledger is verified, never rewritten.

With a state "postgres" block, init creates the schema (table jitform.ledger)
in PostgreSQL instead, or upgrades it to this jitform's version; a schema
newer than this jitform is refused. Run it as a role that may create tables.

--example NAME, in a directory that holds no .hcl file yet, first writes a
commented policy repository to start from: ldif (the quickstart: an LDIF
file as the directory, no server needed), ldap (OpenLDAP), active-directory
or winrm (Windows hosts). Edit its targets, then plan.

Examples:
  jitform init
  jitform -C policies init
  mkdir policies && jitform -C policies init --example ldif && jitform -C policies plan
`

func cmdInit(ctx context.Context, a *app, args []string) int {
	fs := a.flagSet("init", initUsage)
	example := fs.String("example", "", "first write an example repository: `NAME` is ldif, ldap, active-directory or winrm")
	if code, done := a.parse(fs, args); done {
		return code
	}
	if fs.NArg() > 0 {
		return a.errorf("init takes no arguments (got %q); use -C DIR to choose the repository", fs.Args())
	}
	if *example != "" {
		n, err := scaffold(a.dir, *example)
		if err != nil {
			return a.errorf("init --example %s: %v", *example, err)
		}
		fmt.Fprintf(a.stdout, "Wrote %d file(s) of the %s example to %s.\n", n, *example, a.dir)
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

// scaffold writes the example repository name into dir, which must hold no
// .hcl file yet: init --example never overwrites a policy.
func scaffold(dir, name string) (int, error) {
	src, ok := examples.Scaffolds[name]
	if !ok {
		names := make([]string, 0, len(examples.Scaffolds))
		for n := range examples.Scaffolds {
			names = append(names, n)
		}
		slices.Sort(names)
		return 0, fmt.Errorf("no example %q; choose one of %s", name, strings.Join(names, ", "))
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return 0, err
	}
	existing, err := filepath.Glob(filepath.Join(dir, "*.hcl"))
	if err != nil {
		return 0, err
	}
	if len(existing) > 0 {
		return 0, fmt.Errorf("%s already holds a policy repository (%s); --example only starts a new one", dir, filepath.Base(existing[0]))
	}
	entries, err := fs.ReadDir(examples.FS, src)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, e := range entries {
		data, err := fs.ReadFile(examples.FS, path.Join(src, e.Name()))
		if err != nil {
			return n, err
		}
		mode := os.FileMode(0o644)
		if strings.HasSuffix(e.Name(), ".sh") {
			mode = 0o755
		}
		dst := filepath.Join(dir, e.Name())
		if _, err := os.Stat(dst); err == nil {
			return n, fmt.Errorf("%s exists; move it away first", dst)
		}
		if err := os.WriteFile(dst, data, mode); err != nil {
			return n, err
		}
		n++
	}
	return n, nil
}
