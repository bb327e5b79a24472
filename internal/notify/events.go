package notify

import (
	"fmt"
	"time"

	"github.com/jitform/jitform/config"
	"github.com/jitform/jitform/internal/operation"
	"github.com/jitform/jitform/planner"
	"github.com/jitform/jitform/providers"
	"github.com/jitform/jitform/state"
)

// FromLedger turns a grant workflow event just written to the ledger into a
// notification: request (or break_glass), approve, deny, revoke. rec is the
// grant's record after the event (from planner.LedgerGrants), nil if
// unknown. Other events give ok = false.
func FromLedger(ev state.Event, rec *planner.GrantRecord) (Event, bool) {
	out := Event{Time: ev.Time.UTC(), Actor: ev.Actor, LedgerSeq: ev.Seq}
	if rec != nil {
		out.Grant, out.Policy, out.Principal, out.Ticket = rec.ID, rec.Policy, rec.Principal, rec.Ticket
		if !rec.Start.IsZero() {
			s, e := rec.Start.UTC(), rec.End.UTC()
			out.WindowStart, out.WindowEnd = &s, &e
		}
	}
	switch ev.Type {
	case state.EventRequest:
		q, err := state.DecodeGrantRequest(ev)
		if err != nil {
			return Event{}, false
		}
		out.Grant, out.Policy, out.Principal, out.Ticket, out.Reason = q.ID, q.Policy, q.Principal, q.Ticket, q.Reason
		if q.BreakGlass {
			out.Type = config.NotifyBreakGlass
			out.Summary = fmt.Sprintf("%s broke glass under %s for %s: %s (review it with `jitform grant review %s`)",
				ev.Actor, q.Policy, q.Duration, q.Reason, q.ID)
		} else {
			out.Type = config.NotifyRequest
			out.Summary = fmt.Sprintf("%s requests %s for %s under %s: %s (approve with `jitform grant approve %s`)",
				ev.Actor, q.Duration, q.Principal, q.Policy, q.Reason, q.ID)
		}
		return out, true
	case state.EventApprove, state.EventDeny, state.EventRevoke:
		d, err := state.DecodeGrantDecision(ev)
		if err != nil {
			return Event{}, false
		}
		if out.Grant == "" {
			out.Grant = d.Grant
		}
		out.Reason = d.Reason
		verb := map[string]string{state.EventApprove: "approved", state.EventDeny: "denied", state.EventRevoke: "revoked"}[ev.Type]
		out.Type = ev.Type // the event names match: approve, deny, revoke
		out.Summary = fmt.Sprintf("%s %s %s", ev.Actor, verb, d.Grant)
		if out.Principal != "" {
			out.Summary += fmt.Sprintf(" (%s, %s)", out.Principal, out.Policy)
		}
		if ev.Type == state.EventApprove && rec != nil && rec.Status == planner.StatusPending {
			out.Summary += "; more approvals are needed"
		}
		if d.Reason != "" {
			out.Summary += ": " + d.Reason
		}
		return out, true
	}
	return Event{}, false
}

// FromApply lists what an apply's outcomes must tell people: every removal
// that failed (a member who should be gone is still there), and every
// window whose member was removed more than lateAfter after it ended.
func FromApply(outcomes []operation.Outcome, at time.Time, lateAfter time.Duration) []Event {
	var out []Event
	for _, o := range outcomes {
		c := o.Change
		if c.Action != string(providers.Remove) {
			continue
		}
		who := c.Member
		if c.MemberName != "" {
			who = c.MemberName
		}
		ev := Event{Time: at.UTC(), Grant: c.Reason.Grant, Policy: c.Reason.Policy, Principal: c.Principal,
			Group: c.Group, Member: c.Member, Ticket: c.Reason.Ticket, Reason: c.Reason.Kind, WindowEnd: c.Reason.WindowEnd}
		switch {
		case !o.Status.OK():
			ev.Type = config.NotifyRemovalFailed
			if o.Err != nil {
				ev.Error = o.Err.Error()
			}
			ev.Summary = fmt.Sprintf("removing %s from %s failed (%s, %s): the member still holds the privilege", who, c.Group, o.Status, c.Reason.Kind)
		case c.Reason.Kind == planner.ReasonWindowEnded && c.Reason.WindowEnd != nil && at.Sub(*c.Reason.WindowEnd) > lateAfter:
			late := at.Sub(*c.Reason.WindowEnd).Round(time.Second)
			secs := late.Seconds()
			ev.Type, ev.LatencySeconds = config.NotifyWindowEndedLate, &secs
			ev.Summary = fmt.Sprintf("%s was removed from %s %s after the window ended (%s)", who, c.Group, late, c.Reason.Grant)
		default:
			continue
		}
		out = append(out, ev)
	}
	return out
}
