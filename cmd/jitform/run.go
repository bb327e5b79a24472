package main

import (
	"context"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/jitform/jitform/internal/operation"
	"github.com/jitform/jitform/state"
)

const runUsage = `
Usage: jitform [-C DIR] run [flags]

Keeps membership as the policy says, continuously: plans and applies, then
sleeps until the next window opens or closes (the plan's next_change_at) or
the drift interval passes, whichever is first, and does it again. Every
change is recorded in the ledger, as with apply.

A failing cycle (a target down, a change refused, a config or ledger error)
is logged and retried with exponential backoff, which never waits past the
next window boundary. A config or ledger problem never leads to a partial
apply: nothing is changed until it is fixed.

SIGINT or SIGTERM: the change in flight finishes (up to --grace), then jitform
exits 0. SIGHUP: plan again now instead of at the next wake (after editing
the config or approving a grant). Any ledger append by another process
(grant approve, revoke) wakes run within a second: LISTEN/NOTIFY with a
state "postgres" block, a file watch on .jitform/ otherwise.

With a state "postgres" block, several run processes (replicas) on one
database split the targets between them: each acts only on the targets it
claims, and the targets of a replica that dies are taken over within seconds. Logs go to stderr, as text or JSON
(--log-format json).

After every cycle the notify "webhook" blocks hear of failed removals
(removal_failed) and of removals made more than 15m after their window
ended (window_ended_late), as after jitform apply; a failed delivery is
logged and never stops or delays the loop beyond the notifier's budget.

Examples:
  jitform run
  jitform run --drift-interval 1m --log-format json

Exit codes: 0 after a signal, 1 on bad flags or state that cannot be opened.
`

func cmdRun(ctx context.Context, a *app, args []string) int {
	fs := a.flagSet("run", runUsage)
	drift := fs.Duration("drift-interval", operation.DefaultDriftInterval, "plan again at least every `D`, to correct changes made by hand")
	format := fs.String("log-format", "text", "log format on stderr: `text` or json")
	parallelism := fs.Int("parallelism", operation.DefaultParallelism, "read and change at most `N` targets at once")
	lockTimeout := fs.Duration("lock-timeout", time.Minute, "wait up to `D` for the state lock held by another run")
	grace := fs.Duration("grace", operation.DefaultGrace, "after a signal, let the cycle in flight run up to `D`")
	if code, done := a.parse(fs, args); done {
		return code
	}
	if fs.NArg() > 0 {
		return a.errorf("run takes no arguments (got %q)", fs.Args())
	}
	if *drift <= 0 {
		return a.errorf("--drift-interval must be positive (got %s)", *drift)
	}
	var h slog.Handler
	switch *format {
	case "text":
		h = slog.NewTextHandler(a.stderr, nil)
	case "json":
		h = slog.NewJSONHandler(a.stderr, nil)
	default:
		return a.errorf("--log-format must be text or json (got %q)", *format)
	}
	b, err := a.backend()
	if err != nil {
		return a.errorf("%v", err)
	}
	log := slog.New(h)
	opts := a.options(b, *parallelism, *lockTimeout)
	opts.Progress = nil // structured logs replace progress lines
	opts.Runner = a.runner()
	opts.Operation = "run"
	// SIGHUP wakes the loop early; a burst of them is one wake.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	wake := make(chan struct{}, 1)
	wctx, stop := context.WithCancel(ctx)
	defer stop()
	go func() {
		for {
			select {
			case <-hup:
				select {
				case wake <- struct{}{}:
				default:
				}
			case <-wctx.Done():
				return
			}
		}
	}()
	// On PostgreSQL, another writer's append (an approval, a revocation)
	// wakes the loop too: LISTEN/NOTIFY, within a second.
	// On local files, a file watch on .jitform/ does the same.
	notify := func() {
		select {
		case wake <- struct{}{}:
		default:
		}
	}
	var claim func(context.Context) ([]string, error)
	if pg, ok := b.(*state.Postgres); ok {
		go func() {
			_ = pg.Watch(wctx, notify, func(err error) { log.Warn("ledger watch", "error", err.Error()) })
		}()
		// Replicas on one database split the targets (state.go).
		c, closeClaims, err := a.replicaClaims(ctx, pg, 2*time.Second, notify)
		if err != nil {
			return a.errorf("%v", err)
		}
		defer closeClaims()
		claim = c
	} else {
		go func() {
			if err := watchLocalLedger(wctx, a.dir, notify); err != nil && wctx.Err() == nil {
				log.Warn("ledger watch stopped; approvals wait for the next wake or SIGHUP", "error", err.Error())
			}
		}()
	}
	log.Info("jitform run", "dir", a.dir, "drift_interval", drift.String(), "parallelism", *parallelism)
	if err := operation.Run(ctx, operation.RunOptions{
		Options: opts, DriftInterval: *drift, Grace: *grace, Logger: log, Wake: wake, Claim: claim,
		AfterCycle: notifyRun(log),
	}); err != nil {
		return a.errorf("%v", err)
	}
	return exitOK
}
