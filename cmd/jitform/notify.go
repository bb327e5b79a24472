package main

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/jitform/jitform/config"
	"github.com/jitform/jitform/internal/notify"
	"github.com/jitform/jitform/internal/operation"
	"github.com/jitform/jitform/internal/report"
	"github.com/jitform/jitform/planner"
	"github.com/jitform/jitform/state"
)

// notifyLedger tells the configured webhooks about a grant event just
// appended (request, break-glass, approve, deny, revoke). ledger is the
// ledger including ev. It never fails and waits at most notify's budget.
func (a *app) notifyLedger(ctx context.Context, cfg *config.Config, ledger []state.Event, ev state.Event) {
	if cfg == nil || len(cfg.Notify) == 0 {
		return
	}
	id := ""
	if ev.Type == state.EventRequest {
		if q, err := state.DecodeGrantRequest(ev); err == nil {
			id = q.ID
		}
	} else if d, err := state.DecodeGrantDecision(ev); err == nil {
		id = d.Grant
	}
	var rec *planner.GrantRecord
	if id != "" {
		recs, _ := planner.LedgerGrants(cfg, ledger, ev.Time)
		for i := range recs {
			if recs[i].ID == id {
				rec = &recs[i]
			}
		}
	}
	if n, ok := notify.FromLedger(ev, rec); ok {
		a.deliver(ctx, cfg, n)
	}
}

// notifyApply tells the webhooks about an apply's failed removals and
// windows whose member was removed late.
func (a *app) notifyApply(ctx context.Context, res *operation.Result) {
	if res == nil || res.Config == nil || len(res.Config.Notify) == 0 {
		return
	}
	a.deliver(ctx, res.Config, notify.FromApply(res.Outcomes, time.Now().UTC(), report.DefaultLateAfter)...)
}

func (a *app) deliver(ctx context.Context, cfg *config.Config, events ...notify.Event) {
	deliverTo(ctx, cfg, a.progress, events...)
}

// notifyRun is `jitform run`'s AfterCycle: after each cycle, the webhooks
// hear of its failed removals and late removals, as after an apply; what
// the notifier has to say goes to the run's log.
func notifyRun(log *slog.Logger) func(ctx context.Context, res *operation.Result) {
	logf := func(format string, args ...any) { log.Warn(fmt.Sprintf(format, args...)) }
	return func(ctx context.Context, res *operation.Result) {
		if res == nil || res.Config == nil || len(res.Config.Notify) == 0 {
			return
		}
		deliverTo(ctx, res.Config, logf, notify.FromApply(res.Outcomes, time.Now().UTC(), report.DefaultLateAfter)...)
	}
}

func deliverTo(ctx context.Context, cfg *config.Config, logf func(string, ...any), events ...notify.Event) {
	if len(events) == 0 {
		return
	}
	n := &notify.Notifier{Hooks: cfg.Notify, Log: logf}
	if res := n.Notify(ctx, events...); res.Failed > 0 {
		logf("notify: %d notification(s) not delivered (%d delivered); the command's own work is unaffected", res.Failed, res.Delivered)
	}
}
