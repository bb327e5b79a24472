package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/fsnotify/fsnotify"
	"github.com/hashicorp/hcl/v2"

	"github.com/jitform/jitform/config"
	"github.com/jitform/jitform/internal/operation"
	"github.com/jitform/jitform/state"
)

const stateUsage = `
Usage: jitform [-C DIR] state push [--lock-timeout D]
       jitform [-C DIR] state pull [--lock-timeout D]

Moves the ledger between local files (.jitform/) and the PostgreSQL state the
repository declares in a state "postgres" block (see docs/state-postgres.md).

  push   copy the local ledger (verified first) into the EMPTY PostgreSQL
         ledger, keeping every event's seq, prev and hash; a PostgreSQL
         ledger that holds any event is refused and left as it is.
  pull   export the PostgreSQL ledger (verified first) to .jitform/ledger.jsonl
         and ledger.head, byte for byte, for audits and offline plans. A local
         ledger with another history is refused, never overwritten.

Run ` + "`jitform init`" + ` first: it creates the PostgreSQL schema.

Examples:
  jitform state push
  jitform state pull && jitform ledger verify
`

func cmdState(ctx context.Context, a *app, args []string) int {
	fs := a.flagSet("state", stateUsage)
	lockTimeout := fs.Duration("lock-timeout", time.Minute, "wait up to `D` for the local state lock")
	if code, done := a.parse(fs, args); done {
		return code
	}
	if fs.NArg() != 1 || (fs.Arg(0) != "push" && fs.Arg(0) != "pull") {
		return a.errorf("state needs one command: `jitform state push` or `jitform state pull` (see jitform state --help)")
	}
	pg, err := a.postgresState()
	if err != nil {
		return a.errorf("%v", err)
	}
	if pg == nil {
		return a.errorf("state %s needs a state \"postgres\" block in the repository (%s); without one the state is the local files", fs.Arg(0), a.dir)
	}
	defer pg.Close()
	switch fs.Arg(0) {
	case "push":
		local, err := state.NewLocal(a.dir)
		if err != nil {
			return a.errorf("open the local state in %s: %v", a.dir, err)
		}
		events, err := local.Events(ctx)
		if err != nil {
			return a.errorf("the local ledger fails verification; nothing was copied: %v", err)
		}
		if len(events) == 0 {
			return a.errorf("the local ledger in %s is empty: nothing to push", local.Dir())
		}
		if err := pg.Import(ctx, events); err != nil {
			return a.errorf("%v", err)
		}
		fmt.Fprintf(a.stdout, "Pushed %d event(s) to %s; head %s.\n", len(events), pg.Where(), state.Head(events))
		fmt.Fprintln(a.stdout, "The PostgreSQL ledger is now the state of this repository; keep the local files only as a backup.")
	case "pull":
		n, err := state.PullToLocal(ctx, pg, a.dir, *lockTimeout)
		if err != nil {
			return a.errorf("%v", err)
		}
		fmt.Fprintf(a.stdout, "Pulled %d event(s) from %s into %s.\n", n, pg.Where(), a.path(state.StateDirName))
	}
	return exitOK
}

// postgresState opens the PostgreSQL state the repository declares, or
// returns nil when it declares none (local files). A state block that
// cannot be read is an error, never a fallback to local files.
func (a *app) postgresState() (*state.Postgres, error) {
	st, diags := config.LoadState(a.dir, config.LoadOptions{})
	if diags.HasErrors() {
		return nil, fmt.Errorf("read the state block: %s", diagLines(diags))
	}
	if st == nil {
		return nil, nil
	}
	if st.Postgres == nil {
		return nil, fmt.Errorf("the state block at %s cannot be used", st.DeclRange)
	}
	// The URL's env() is read now, when the state is opened.
	url, err := st.Postgres.URL.Value()
	if err != nil {
		return nil, fmt.Errorf("state \"postgres\" at %s: url: %w", st.DeclRange, err)
	}
	return state.NewPostgres(state.PostgresConfig{
		URL:    url,
		Schema: st.Postgres.Schema,
		CAFile: st.Postgres.CAFile,
	})
}

// diagLines renders error diagnostics as "file:line:col: summary: detail".
func diagLines(diags hcl.Diagnostics) string {
	var lines []string
	for _, d := range diags {
		if d.Severity != hcl.DiagError {
			continue
		}
		where := ""
		if d.Subject != nil {
			where = fmt.Sprintf("%s:%d:%d: ", d.Subject.Filename, d.Subject.Start.Line, d.Subject.Start.Column)
		}
		msg := d.Summary
		if d.Detail != "" {
			msg += ": " + strings.Join(strings.Fields(d.Detail), " ")
		}
		lines = append(lines, where+msg)
	}
	return strings.Join(lines, "; ")
}

// openBackend is the state the repository declares: PostgreSQL when it has
// a state "postgres" block (never falling back to local files), else the
// local files in .jitform/.
func (a *app) openBackend() (state.Backend, error) {
	pg, err := a.postgresState()
	if err != nil {
		return nil, err
	}
	if pg != nil {
		a.opened = append(a.opened, pg)
		return pg, nil
	}
	b, err := state.NewLocal(a.dir)
	if err != nil {
		return nil, fmt.Errorf("open the state in %s: %w", a.dir, err)
	}
	a.warnEphemeralState(b) // CI on local state that starts empty
	return b, nil
}

// closeState closes the backends the command opened (their connections).
func (a *app) closeState() {
	for _, c := range a.opened {
		c.Close()
	}
	a.opened = nil
}

// initPostgres creates or upgrades the PostgreSQL schema for `jitform init`.
func (a *app) initPostgres(ctx context.Context, pg *state.Postgres) error {
	from, to, err := pg.Migrate(ctx)
	var sv *state.SchemaVersionError
	switch {
	case errors.As(err, &sv):
		return err
	case err != nil:
		return err
	case from == 0:
		fmt.Fprintf(a.stdout, "Created the PostgreSQL state at %s, schema version %d.\n", pg.Where(), to)
	case from < to:
		fmt.Fprintf(a.stdout, "Upgraded the PostgreSQL state at %s from schema version %d to %d.\n", pg.Where(), from, to)
	default:
		fmt.Fprintf(a.stdout, "The PostgreSQL state at %s is at schema version %d (up to date).\n", pg.Where(), to)
	}
	return nil
}

// watchLocalLedger calls notify when a grant event (request, approve,
// deny, revoke, review) is appended to the local ledger, until ctx is
// done: every append ends by renaming a new ledger.head into .jitform/,
// which the watch sees; the new events are then read. Change events (what
// an apply, including this run's own, records) do not wake it.
func watchLocalLedger(ctx context.Context, dir string, notify func()) error {
	local, err := state.NewLocal(dir)
	if err != nil {
		return err
	}
	if err := local.Init(ctx); err != nil {
		return err
	}
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return fmt.Errorf("watch the ledger: %w", err)
	}
	defer w.Close()
	if err := w.Add(local.Dir()); err != nil {
		return fmt.Errorf("watch the ledger in %s: %w", local.Dir(), err)
	}
	seen := -1 // events already looked at; -1: not read yet
	if events, err := local.Events(ctx); err == nil {
		seen = len(events)
	}
	check := func() {
		events, err := local.Events(ctx)
		if err != nil || seen < 0 || len(events) < seen {
			notify() // the cycle reports what is wrong
			seen = len(events)
			return
		}
		grant := false
		for _, e := range events[seen:] {
			switch e.Type {
			case state.EventChangeIntent, state.EventChangeApplied, state.EventChangeFailed,
				state.EventApplyStarted, state.EventApplySigned, state.EventRemovedByServer, state.EventSessionsEnded:
			default:
				grant = true
			}
		}
		seen = len(events)
		if grant {
			notify()
		}
	}
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case ev, ok := <-w.Events:
			if !ok {
				return nil
			}
			if filepath.Base(ev.Name) == state.HeadFileName && ev.Op&(fsnotify.Create|fsnotify.Write|fsnotify.Rename) != 0 {
				check()
			}
		case err, ok := <-w.Errors:
			if !ok {
				return nil
			}
			return fmt.Errorf("watch the ledger in %s: %w", local.Dir(), err)
		}
	}
}

// replicaClaims makes this `jitform run` one of possibly several replicas
// on a PostgreSQL state (operation.ReplicaClaims), registered as this user,
// host and process.
func (a *app) replicaClaims(ctx context.Context, pg *state.Postgres, watchEvery time.Duration, wake func()) (claim func(context.Context) ([]string, error), closeFn func(), err error) {
	host, _ := os.Hostname()
	who := os.Getenv("USER") + "@" + host
	return operation.ReplicaClaims(ctx, pg, a.dir, state.LockInfo{Operation: "run", Who: who, PID: os.Getpid()}, watchEvery, wake)
}
