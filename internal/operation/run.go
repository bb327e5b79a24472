package operation

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/jitform/jitform/internal/grants"
	"github.com/jitform/jitform/planner"
)

// Clock is what the run loop needs of time, so tests need not sleep.
type Clock interface {
	Now() time.Time
	After(d time.Duration) <-chan time.Time
}

type realClock struct{}

func (realClock) Now() time.Time                         { return time.Now().UTC() }
func (realClock) After(d time.Duration) <-chan time.Time { return time.After(d) }

// RunOptions configure `jitform run`.
type RunOptions struct {
	Options
	// DriftInterval bounds how long the loop sleeps with nothing scheduled:
	// membership changed by hand is corrected within it.
	DriftInterval time.Duration
	// Grace is how long a cycle in flight may still run after a signal, so a
	// change is never cut between its intent and its outcome.
	Grace time.Duration
	// MinBackoff and MaxBackoff bound the retry delay after a failed cycle.
	MinBackoff, MaxBackoff time.Duration
	Logger                 *slog.Logger
	Clock                  Clock
	// Jitter returns a number in [0,1); nil means math/rand.
	Jitter func() float64
	// Wake, when it receives, ends a sleep early (SIGHUP): a grant just
	// added to the config or the ledger need not wait for the drift interval.
	Wake <-chan struct{}
	// Claim, when set (run replicas on a shared state), returns the target
	// addresses this process acts on in the coming cycle; the others are
	// another replica's. No target: the cycle does nothing.
	Claim func(ctx context.Context) ([]string, error)
	// AfterCycle, when set, is called after every cycle that applied (with
	// its result, also a failed one), before the loop sleeps: `jitform run`
	// sends its removal_failed and window_ended_late notifications from it.
	// It runs on a context a signal does not cancel, and must bound its own
	// time.
	AfterCycle func(ctx context.Context, res *Result)
}

// Defaults of RunOptions.
const (
	DefaultDriftInterval = 5 * time.Minute
	DefaultGrace         = 30 * time.Second
	DefaultMinBackoff    = 2 * time.Second
	DefaultMaxBackoff    = 5 * time.Minute
)

// NextWake says how long to sleep after a successful cycle: until the plan's
// next window boundary, or the drift interval, whichever is first; never
// negative (a boundary already past means plan again now).
func NextWake(now time.Time, next *time.Time, drift time.Duration) (time.Duration, string) {
	if next != nil && next.Sub(now) < drift {
		d := next.Sub(now)
		if d < 0 {
			d = 0
		}
		return d, "next window boundary"
	}
	return drift, "drift interval"
}

// RetryDelay says how long to wait after the attempt-th failed cycle in a
// row: exponential from min, capped at max, jittered downwards by up to a
// quarter, and never past a known future deadline (a window that opens or
// closes then must not wait for the backoff).
func RetryDelay(now time.Time, attempt int, deadline *time.Time, min, max time.Duration, jitter float64) time.Duration {
	d := min
	for i := 1; i < attempt && d < max; i++ {
		d *= 2
	}
	if d > max {
		d = max
	}
	d -= time.Duration(float64(d) * 0.25 * jitter)
	if deadline != nil && deadline.After(now) && deadline.Sub(now) < d {
		d = deadline.Sub(now)
	}
	return d
}

// Run plans and applies, then sleeps until the next window boundary or the
// drift interval, until ctx is cancelled (SIGINT, SIGTERM). A failing cycle
// is logged and retried with backoff; it never ends the loop. Only a cancelled
// ctx does, and then after the cycle in flight has finished.
func Run(ctx context.Context, ro RunOptions) error {
	ro.defaults()
	log := ro.Logger
	if ro.VerifyMemo == nil {
		// Every cycle replays the same ledger: its signatures are checked
		// once per process. Process memory is not the state's to write.
		ro.VerifyMemo = grants.NewMemoryMemo()
	}
	cycles, _ := ro.VerifyMemo.(cycleMemo)
	var deadline *time.Time // the last known future window boundary
	failures := 0
	for cycle := 1; ; cycle++ {
		if ctx.Err() != nil {
			log.Info("stopping", "reason", "signal")
			return nil
		}
		start := ro.Clock.Now()
		log.Info("cycle start", "cycle", cycle)
		plan, res, err := runCycle(ctx, ro)
		ok := logCycle(log, cycle, plan, res, err)
		if cycles != nil {
			st := cycles.EndCycle()
			log.Debug("signatures", "cycle", cycle, "verified", st.Misses, "memoized", st.Hits,
				"forgotten", st.Dropped, "kept", st.Size)
		}
		if res != nil && ro.AfterCycle != nil {
			ro.AfterCycle(context.WithoutCancel(ctx), res)
		}
		if plan != nil && plan.NextChangeAt != nil {
			deadline = plan.NextChangeAt
		}
		if ctx.Err() != nil {
			log.Info("stopping", "reason", "signal", "after_cycle", cycle)
			return nil
		}
		now := ro.Clock.Now()
		var wait time.Duration
		var why string
		if ok {
			failures = 0
			var next *time.Time
			if plan != nil {
				next = plan.NextChangeAt
			}
			wait, why = NextWake(now, next, ro.DriftInterval)
		} else {
			failures++
			wait = RetryDelay(now, failures, deadline, ro.MinBackoff, ro.MaxBackoff, ro.Jitter())
			why = "retry after a failed cycle"
		}
		log.Info("sleeping", "cycle", cycle, "took", now.Sub(start).Round(time.Millisecond).String(),
			"wake_at", now.Add(wait).Format(time.RFC3339), "for", wait.Round(time.Millisecond).String(), "why", why)
		select {
		case <-ctx.Done():
			log.Info("stopping", "reason", "signal")
			return nil
		case <-ro.Clock.After(wait):
		case <-ro.Wake:
			log.Info("woken early", "cycle", cycle, "reason", "wake signal")
		}
	}
}

// cycleMemo is a memo bounded to what each cycle used (grants.MemoryMemo).
type cycleMemo interface {
	EndCycle() grants.MemoStats
}

// runCycle runs one plan+apply on a context that a signal does not cancel,
// so the change in flight finishes; the grace period bounds how long.
func runCycle(ctx context.Context, ro RunOptions) (*planner.Plan, *Result, error) {
	cctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	defer cancel()
	stop := context.AfterFunc(ctx, func() {
		t := time.NewTimer(ro.Grace)
		defer t.Stop()
		select {
		case <-t.C:
			cancel()
		case <-cctx.Done():
		}
	})
	defer stop()
	opts := ro.Options
	opts.At = time.Time{} // always now
	opts.Now = ro.Clock.Now
	if opts.Operation == "" {
		opts.Operation = "run"
	}
	if ro.Claim != nil {
		targets, err := ro.Claim(cctx)
		if err != nil {
			return nil, nil, fmt.Errorf("claim targets: %w", err)
		}
		if len(targets) == 0 {
			ro.Logger.Info("no target claimed: the other replicas hold them all")
			return nil, nil, nil
		}
		ro.Logger.Info("targets claimed", "count", len(targets), "targets", strings.Join(targets, " "))
		opts.Targets = targets
	}
	return PlanAndApply(cctx, opts)
}

// logCycle logs what a cycle did and reports whether it succeeded.
func logCycle(log *slog.Logger, cycle int, plan *planner.Plan, res *Result, err error) bool {
	ok := err == nil
	unreadable := 0
	if plan != nil {
		for _, u := range plan.Unreadable {
			log.Error("group unreadable", "cycle", cycle, "group", u.Group, "target", u.Target, "error", u.Error)
			unreadable++
			ok = false
		}
		for _, w := range plan.Warnings {
			log.Warn("plan warning", "cycle", cycle, "summary", w.Summary, "subject", w.Subject)
		}
	}
	if res != nil {
		for _, c := range res.Closed {
			log.Info("uncertain change closed", "cycle", cycle, "id", c.Change.Change.ID, "action", c.Change.Change.Action,
				"group", c.Change.Change.Group, "member", c.Change.Change.Member, "was", c.Change.Status, "status", c.Status)
		}
		for _, rb := range res.ServerRemovals {
			log.Info("member removed without jitform", "cycle", cycle, "group", rb.Group, "member", rb.Member,
				"grant", rb.Grant, "lock", rb.Lock)
		}
		for _, o := range res.Outcomes {
			c := o.Change
			attrs := []any{"cycle", cycle, "action", c.Action, "group", c.Group, "member", c.Member,
				"reason", c.Reason.Kind, "status", string(o.Status)}
			if c.Reason.Grant != "" {
				attrs = append(attrs, "grant", c.Reason.Grant)
			}
			if o.Err != nil {
				attrs = append(attrs, "error", o.Err.Error())
				log.Error("change failed", attrs...)
				continue
			}
			log.Info("change", attrs...)
		}
		added, removed, failed := res.Counts()
		if failed > 0 {
			ok = false
		}
		log.Info("cycle done", "cycle", cycle, "added", added, "removed", removed, "failed", failed, "unreadable", unreadable)
	}
	if err != nil {
		var pe *PlanErrorsError
		kind := "error"
		if errors.As(err, &pe) {
			kind = "plan has errors"
		}
		log.Error("cycle failed", "cycle", cycle, "kind", kind, "error", err.Error())
	}
	return ok
}

func (ro *RunOptions) defaults() {
	if ro.DriftInterval <= 0 {
		ro.DriftInterval = DefaultDriftInterval
	}
	if ro.Grace <= 0 {
		ro.Grace = DefaultGrace
	}
	if ro.MinBackoff <= 0 {
		ro.MinBackoff = DefaultMinBackoff
	}
	if ro.MaxBackoff <= 0 {
		ro.MaxBackoff = DefaultMaxBackoff
	}
	if ro.Clock == nil {
		ro.Clock = realClock{}
	}
	if ro.Jitter == nil {
		ro.Jitter = rand.Float64
	}
	if ro.Logger == nil {
		ro.Logger = slog.New(slog.DiscardHandler)
	}
}
