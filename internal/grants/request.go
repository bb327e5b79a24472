package grants

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jitform/jitform/config"
	"github.com/jitform/jitform/state"
)

// request is the request transition (break-glass included): a new grant,
// pending, effective at once (break-glass) or invalid with the reason.
func (b *Book) request(ev state.Event) *Refusal {
	q, err := state.DecodeGrantRequest(ev)
	if err != nil {
		b.warn(ev, "malformed request payload; it does not count", err.Error())
		return &Refusal{Rule: RuleMalformed, Reason: err.Error()}
	}
	if !state.IsGrantID(q.ID) {
		why := fmt.Sprintf("request with malformed grant ID %q; it does not count", q.ID)
		b.warn(ev, why, "")
		return &Refusal{Rule: RuleMalformed, Reason: why}
	}
	if _, dup := b.recs[q.ID]; dup {
		why := fmt.Sprintf("request reuses grant ID %s; the later request does not count", q.ID)
		b.warn(ev, why, "")
		return &Refusal{Rule: RuleDuplicateID, Reason: why}
	}
	at := ev.Time.UTC()
	rec := &Record{
		ID: q.ID, Source: "ledger", Policy: q.Policy, Principal: q.Principal,
		Ticket: q.Ticket, Reason: q.Reason, BreakGlass: q.BreakGlass, Pending: true,
		Subject:         fmt.Sprintf("ledger seq %d", ev.Seq),
		Status:          StatusPending,
		RequestedBy:     ev.Actor,
		RequestedAt:     at,
		RequestHash:     ev.Hash,
		StartAtApproval: q.Start == nil,
		Events:          []int64{ev.Seq},
	}
	b.recs[q.ID] = rec
	b.order = append(b.order, q.ID)

	invalid := func(r *Refusal) *Refusal {
		rec.Status, rec.Refusal, rec.Pending = StatusInvalid, r.Reason, false
		b.warn(ev, fmt.Sprintf("request %s does not count: %s", q.ID, r.Reason), "")
		return r
	}
	d, err := q.DurationValue()
	if err != nil {
		return invalid(&Refusal{Rule: RuleMalformed, Reason: err.Error()})
	}
	rec.Duration = d
	if q.Start != nil {
		rec.Start = q.Start.UTC()
		rec.End = rec.Start.Add(d)
	}
	pol := b.cfg.PolicyByAddr(q.Policy)
	rec.ExpiresAt = at.Add(RequestTTL(pol))
	if r := b.verify(ev); r != nil {
		return invalid(r)
	}
	if !b.checking {
		rec.RequestFactor = FactorOf(b.cur)
	}
	if pol == nil {
		// Nothing can count under a policy that is gone. A grant that was
		// approved (or broke glass) before the policy was deleted is still
		// handed to the planner, which says the policy is gone and removes
		// what it granted, naming it.
		rec.Status, rec.Refusal, rec.Pending, rec.PolicyGone = StatusInvalid, q.Policy+" does not exist", false, true
		if q.BreakGlass {
			openWindow(rec, at)
		}
		return &Refusal{Rule: RulePolicyGone, Reason: rec.Refusal}
	}
	if r := b.requestRules(ev, q, pol, d); r != nil {
		return invalid(r)
	}
	if q.BreakGlass {
		// Effective at once, without approval, flagged until reviewed.
		rec.Start, rec.End = at, at.Add(d)
		rec.Pending, rec.Status, rec.ApprovedAt, rec.Unreviewed = false, StatusApproved, at, true
	}
	return nil
}

// requestRules are the rules a request must satisfy, in the order they
// are checked; the first broken one refuses it.
func (b *Book) requestRules(ev state.Event, q state.GrantRequest, pol *config.Policy, d time.Duration) *Refusal {
	at := ev.Time.UTC()
	if q.Start != nil && !q.Start.Add(d).After(at) {
		return &Refusal{Rule: RuleWindowOver,
			Reason: fmt.Sprintf("the window %s to %s is already over", stamp(*q.Start), stamp(q.Start.Add(d))),
			Advice: fmt.Sprintf("the window %s to %s is already over; choose a later --start, or leave it out to start at approval",
				stamp(*q.Start), stamp(q.Start.Add(d)))}
	}
	// Who may ask: the principal themself when they are a declared actor;
	// otherwise an actor eligible under the policy, on the principal's behalf.
	if b.cfg.ActorByName(q.Principal) != nil {
		if ev.Actor != q.Principal {
			return &Refusal{Rule: RuleActorOnlySelf,
				Reason: fmt.Sprintf("%s is a declared actor, so only %s may request access for %s (requested by %s)",
					q.Principal, q.Principal, q.Principal, ev.Actor),
				Advice: fmt.Sprintf("%s is a declared actor, so only %s may request access for %s: run it --as %s",
					q.Principal, q.Principal, q.Principal, q.Principal)}
		}
	} else if !slices.Contains(pol.Eligible, ev.Actor) {
		return &Refusal{Rule: RuleRequesterEligible,
			Reason: fmt.Sprintf("requested by %s, who is not eligible under %s (eligible: %s)",
				ev.Actor, pol.Addr, strings.Join(pol.Eligible, ", ")),
			Advice: fmt.Sprintf("%s may not request on behalf of %s: only actors eligible under %s (%s) may",
				ev.Actor, q.Principal, pol.Addr, strings.Join(pol.Eligible, ", "))}
	}
	if q.BreakGlass {
		switch {
		case pol.BreakGlass == nil:
			return &Refusal{Rule: RuleNoBreakGlass,
				Reason: pol.Addr + " has no break_glass block, so it allows no break-glass grants",
				Advice: fmt.Sprintf("%s has no break_glass block, so it allows no break-glass grants; request normally and ask an approver (%s)",
					pol.Addr, strings.Join(pol.Approvers, ", "))}
		case ev.Actor != q.Principal:
			return &Refusal{Rule: RuleBreakGlassSelf,
				Reason: fmt.Sprintf("a break-glass grant is for oneself; %s requested it for %s", ev.Actor, q.Principal),
				Advice: fmt.Sprintf("a break-glass grant is for oneself: %s cannot break glass for %s", ev.Actor, q.Principal)}
		case d > pol.BreakGlass.MaxDuration:
			return &Refusal{Rule: RuleBreakGlassMax,
				Reason: fmt.Sprintf("break-glass duration %s is longer than %s's break_glass max_duration %s",
					d, pol.Addr, pol.BreakGlass.MaxDuration),
				Advice: fmt.Sprintf("break-glass --duration %s is longer than %s allows (break_glass max_duration %s)",
					d, pol.Addr, pol.BreakGlass.MaxDuration)}
		case q.Start != nil:
			return &Refusal{Rule: RuleBreakGlassNow,
				Reason: fmt.Sprintf("a break-glass grant starts when it is requested, never later; this one names a start (%s)", stamp(*q.Start)),
				Advice: "a break-glass grant starts now, never later: leave out --start (to plan ahead, request normally and ask an approver)"}
		}
		if r := b.breakGlassBudget(q.Principal, pol, at, d); r != nil {
			return r
		}
	} else if pol.Approval != config.ApprovalLedger {
		return &Refusal{Rule: RuleRepositoryApproval,
			Reason: fmt.Sprintf("%s takes approvals by repository review (approval = %q); declare a grant block, or set approval = %q",
				pol.Addr, pol.Approval, config.ApprovalLedger),
			Advice: fmt.Sprintf("%s takes approvals by repository review (approval = %q): add a grant block in a pull request, "+
				"or set approval = %q on the policy to approve in the ledger", pol.Addr, pol.Approval, config.ApprovalLedger)}
	}
	// After the rules common to writing and replay, so that writing (which
	// sees a security key's flags only once it has signed, CheckSigned) and
	// the replay refuse alike.
	if r := b.securityKey(pol); r != nil {
		return r
	}
	if !b.checking {
		return nil
	}
	// Rules that hold when a request is written. At replay the planner
	// checks conformance against the policy as it is at plan time (which
	// may have been tightened since), and max_active over the grants as
	// they became effective (enforceMaxActive).
	start := at
	if q.Start != nil {
		start = q.Start.UTC()
	}
	if r := conforms(q, ev.Actor, pol, start, d); r != nil {
		return r
	}
	return b.maxActiveAtRequest(q.ID, q.Principal, pol, start, d, at)
}

// conforms applies the policy's own rules (duration, windows, ticket,
// eligibility of the principal, whether it can be approved at all).
func conforms(q state.GrantRequest, as string, pol *config.Policy, start time.Time, d time.Duration) *Refusal {
	spec := config.GrantSpec{Principal: q.Principal, Start: start, End: start.Add(d), Ticket: q.Ticket, BreakGlass: q.BreakGlass}
	if !q.BreakGlass {
		// Approvers are filled with those who could approve, so that only
		// an unapprovable policy (too few approvers besides the requester
		// and principal) is refused here.
		could := without(pol.Approvers, as, q.Principal)
		if len(could) > ApprovalsNeeded(pol) {
			could = could[:ApprovalsNeeded(pol)]
		}
		spec.Approvers = could
	}
	// Eligibility through directory groups needs the directory: the
	// planner checks it, where it reads it.
	viol := pol.Check(spec, func(string) bool { return true })
	if len(viol) == 0 {
		return nil
	}
	parts := make([]string, len(viol))
	for i, v := range viol {
		parts[i] = v.Field + ": " + v.Message
	}
	return &Refusal{Rule: RuleConforms, Reason: fmt.Sprintf("it does not conform to %s: %s", pol.Addr, strings.Join(parts, "; "))}
}

// maxActiveAtRequest: under a policy with max_active, a request is refused
// while the principal already holds max_active grants under it that are
// pending, approved for a window ahead, or open, and overlap the window
// asked for (a pending request whose window starts at approval may open at
// any time before it expires, so it always overlaps).
func (b *Book) maxActiveAtRequest(id, principal string, pol *config.Policy, start time.Time, d time.Duration, at time.Time) *Refusal {
	if pol.MaxActive <= 0 {
		return nil
	}
	end := start.Add(d)
	var held []string
	var firstEnd time.Time
	for _, other := range b.order {
		r := b.recs[other]
		if other == id || r.Policy != pol.Addr || r.Principal != principal || !holds(r, at) {
			continue
		}
		if !r.End.IsZero() && !(effectiveEnd(r).After(start) && r.Start.Before(end)) {
			continue
		}
		held = append(held, r.ID)
		if !r.End.IsZero() && (firstEnd.IsZero() || effectiveEnd(r).Before(firstEnd)) {
			firstEnd = effectiveEnd(r)
		}
	}
	if len(held) < pol.MaxActive {
		return nil
	}
	from := "once one ends"
	if !firstEnd.IsZero() {
		from = "from " + stamp(firstEnd) + " on"
	}
	reason := fmt.Sprintf("%s already holds %d grant(s) under %s overlapping this window (%s) and max_active is %d",
		principal, len(held), pol.Addr, strings.Join(held, ", "), pol.MaxActive)
	return &Refusal{Rule: RuleMaxActive, Reason: reason,
		Advice: reason + ": revoke one (jitform grant revoke ID --reason ...) or request " + from}
}

// holds reports whether a grant takes up one of its principal's max_active
// places at t: pending (not expired), or approved and not yet over.
func holds(r *Record, t time.Time) bool {
	switch {
	case r.Pending:
		return t.Before(r.ExpiresAt)
	case r.Status == StatusApproved:
		return r.End.IsZero() || effectiveEnd(r).After(t)
	case r.Status == StatusRevoked && !r.ApprovedAt.IsZero():
		return effectiveEnd(r).After(t)
	}
	return false
}

// breakGlassBudget: under a break_glass block with max_per_day, the
// principal's break-glass time under the policy from 24 hours before the
// new grant would end, the new grant included, is at most max_per_day. A
// grant still open counts whole (two at once use twice the time); a grant
// revoked early uses only the time it was open.
func (b *Book) breakGlassBudget(principal string, pol *config.Policy, at time.Time, d time.Duration) *Refusal {
	limit := pol.BreakGlass.MaxPerDay
	if limit <= 0 {
		return nil
	}
	end := at.Add(d)
	from := end.Add(-24 * time.Hour)
	var used time.Duration
	var ids []string
	for _, id := range b.order {
		r := b.recs[id]
		if !r.BreakGlass || r.Policy != pol.Addr || r.Principal != principal || r.ApprovedAt.IsZero() ||
			r.Status == StatusInvalid {
			continue
		}
		s, e := maxTime(r.Start, from), effectiveEnd(r)
		if e.After(s) {
			used += e.Sub(s)
			ids = append(ids, r.ID)
		}
	}
	if used+d <= limit {
		return nil
	}
	reason := fmt.Sprintf("break-glass budget: %s already used %s of %s's break_glass max_per_day %s in the 24 hours up to %s (%s); %s more would exceed it",
		principal, used, pol.Addr, limit, stamp(end), strings.Join(ids, ", "), d)
	advice := reason + ": request normally and ask an approver (" + strings.Join(pol.Approvers, ", ") + ")"
	if left := limit - used; left > 0 {
		advice += ", or break glass for at most " + left.String()
	}
	return &Refusal{Rule: RuleBreakGlassBudget, Reason: reason, Advice: advice}
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// openWindow records that a grant became effective at t: its window starts
// then unless the request named a start.
func openWindow(rec *Record, t time.Time) {
	rec.ApprovedAt = t
	if rec.StartAtApproval {
		rec.Start = t
		rec.End = t.Add(rec.Duration)
	}
}

func effectiveEnd(rec *Record) time.Time {
	if rec.Revoked && rec.RevokedAt.Before(rec.End) {
		return rec.RevokedAt
	}
	return rec.End
}
