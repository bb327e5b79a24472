package grants

import (
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/jitform/jitform/config"
	"github.com/jitform/jitform/state"
)

// decision runs an approve, deny, revoke or review event: the signature,
// the binding to the request it names, then the transition's own rules.
func (b *Book) decision(ev state.Event) *Refusal {
	d, err := state.DecodeGrantDecision(ev)
	if err != nil {
		b.warn(ev, "malformed "+ev.Type+" payload; it does not count", err.Error())
		return &Refusal{Rule: RuleMalformed, Reason: err.Error()}
	}
	dec := &Decision{Seq: ev.Seq, Type: ev.Type, Actor: ev.Actor, At: ev.Time.UTC(), Until: d.Until, Reason: d.Reason}
	rec := b.recs[d.Grant]
	if rec == nil && ev.Type == state.EventRevoke && strings.HasPrefix(d.Grant, "grant.") {
		return b.revokeBlock(ev, d, dec)
	}
	if rec == nil {
		b.warn(ev, fmt.Sprintf("%s of unknown grant %q does not count", ev.Type, d.Grant),
			"no request with this ID precedes it in the ledger")
		return &Refusal{Rule: RuleUnknownGrant, Reason: "no request with this ID precedes it in the ledger",
			Advice: fmt.Sprintf("no grant %s in the ledger; jitform grant list shows the grants", d.Grant)}
	}
	rec.Events = append(rec.Events, ev.Seq)
	if r := b.verify(ev); r != nil {
		return b.refuse(ev, rec, dec, r)
	}
	if !b.checking {
		dec.Factor = FactorOf(b.cur)
	}
	if r := b.binding(ev, d, rec); r != nil {
		return b.refuse(ev, rec, dec, r)
	}
	var r *Refusal
	switch ev.Type {
	case state.EventApprove:
		r = b.approve(ev, d, rec, dec)
	case state.EventDeny:
		r = b.deny(ev, d, rec, dec)
	case state.EventRevoke:
		r = b.revoke(ev, d, rec, dec)
	case state.EventReview:
		r = b.review(ev, d, rec, dec)
	}
	if r != nil {
		return b.refuse(ev, rec, dec, r)
	}
	rec.Decisions = append(rec.Decisions, *dec)
	return nil
}

// refuse records a decision that does not count, with a warning saying why.
func (b *Book) refuse(ev state.Event, rec *Record, dec *Decision, r *Refusal) *Refusal {
	dec.Why = r.Reason
	rec.Decisions = append(rec.Decisions, *dec)
	b.warn(ev, fmt.Sprintf("%s of %s by %s does not count: %s", ev.Type, rec.ID, ev.Actor, r.Reason), "")
	return r
}

// binding: a decision names the ledger hash of the request it acts on
// (GrantDecision.Request), and its signature covers that hash, so a
// request replaced after it was decided on (and the chain re-hashed)
// invalidates every signature on it. A decision that names another
// request does not count, and, when its signer could act on the grant at
// all, the grant stops counting too: the request in the ledger is not the
// one that was decided on. A deny or revoke that names no request (as
// jitform wrote them before) still counts: it can only take access away.
func (b *Book) binding(ev state.Event, d state.GrantDecision, rec *Record) *Refusal {
	if d.Request != "" && d.Request == rec.RequestHash {
		return nil
	}
	if d.Request == "" {
		if ev.Type == state.EventDeny || ev.Type == state.EventRevoke {
			return nil
		}
		return &Refusal{Rule: RuleBinding,
			Reason: "it does not name the request it acts on (no request hash in its payload, as jitform wrote before approvals were bound to requests), so its signature does not commit to what it " + ev.Type + "s; sign it again"}
	}
	why := fmt.Sprintf("signed for a different request: it names request %s, but the request of %s in the ledger is %s; the request was replaced after it was signed",
		short(d.Request), rec.ID, short(rec.RequestHash))
	if b.mayAct(ev.Actor, rec) && rec.Status != StatusInvalid && rec.Status != StatusRefused {
		rec.Status, rec.Pending, rec.Denied = StatusRefused, false, true
		rec.Refusal = fmt.Sprintf("its request was replaced after %s signed a decision on it (%s, ledger event %d): the request in the ledger is not the one decided on, so the grant does not count",
			ev.Actor, ev.Type, ev.Seq)
		b.warns = append(b.warns, Warning{Summary: fmt.Sprintf("%s does not count: %s", rec.ID, rec.Refusal), Subject: rec.Subject})
	}
	return &Refusal{Rule: RuleBinding, Reason: why}
}

// mayAct: the actors who may make some decision on a grant (approvers of
// its policy, its requester, its principal).
func (b *Book) mayAct(actor string, rec *Record) bool {
	if strings.EqualFold(actor, rec.RequestedBy) || strings.EqualFold(actor, rec.Principal) {
		return true
	}
	pol := b.cfg.PolicyByAddr(rec.Policy)
	return pol != nil && slices.Contains(pol.Approvers, actor)
}

// addApprover records a counted approval and how it was signed.
func (r *Record) addApprover(actor, factor string) {
	r.Approvers = append(r.Approvers, actor)
	if factor != "" && factor != FactorSSHKey {
		if r.ApproverFactors == nil {
			r.ApproverFactors = map[string]string{}
		}
		r.ApproverFactors[actor] = factor
	}
}

// doesNotCount: the request itself (or the grant, refused) does not count.
func doesNotCount(rec *Record, then string) *Refusal {
	return &Refusal{Rule: RuleRequestInvalid, Reason: "the request itself does not count (" + rec.Refusal + ")",
		Advice: "the request does not count (" + rec.Refusal + "); " + then}
}

// expiredAt reports whether a request had expired (unapproved) at t.
func expiredAt(rec *Record, t time.Time) bool {
	return rec.Expired || rec.Pending && !t.Before(rec.ExpiresAt)
}

func (b *Book) approve(ev state.Event, d state.GrantDecision, rec *Record, dec *Decision) *Refusal {
	pol := b.cfg.PolicyByAddr(rec.Policy)
	at := ev.Time.UTC()
	actor := ev.Actor
	switch {
	case rec.PolicyGone:
		if b.checking {
			return &Refusal{Rule: RulePolicyGone, Reason: rec.Policy + " is no longer declared"}
		}
		// Recorded (not counted) so that the planner can name the grant
		// whose policy is gone; the approver list cannot be checked any more.
		dec.Why = rec.Policy + " does not exist"
		if !strings.EqualFold(actor, rec.RequestedBy) && !strings.EqualFold(actor, rec.Principal) && !slices.Contains(rec.Approvers, actor) {
			rec.addApprover(actor, dec.Factor)
			if rec.ApprovedAt.IsZero() {
				openWindow(rec, at)
			}
		}
		return nil
	case rec.Status == StatusInvalid || rec.Status == StatusRefused:
		return doesNotCount(rec, "ask for a new request")
	case pol == nil:
		return &Refusal{Rule: RulePolicyGone, Reason: rec.Policy + " does not exist"}
	case pol.Approval != config.ApprovalLedger:
		return &Refusal{Rule: RuleRepositoryApproval, Reason: fmt.Sprintf("%s does not take ledger approvals (approval = %q)", pol.Addr, pol.Approval)}
	case !slices.Contains(pol.Approvers, actor):
		return &Refusal{Rule: RuleNotApprover, Reason: fmt.Sprintf("%s is not an approver of %s (approvers: %s)",
			actor, pol.Addr, strings.Join(pol.Approvers, ", "))}
	case strings.EqualFold(actor, rec.RequestedBy) || strings.EqualFold(actor, rec.Principal):
		reason := fmt.Sprintf("%s requested this grant (or is its principal) and cannot approve it", actor)
		return &Refusal{Rule: RuleSelfApproval, Reason: reason,
			Advice: reason + "; ask one of: " + strings.Join(without(pol.Approvers, rec.RequestedBy, rec.Principal), ", ")}
	case rec.BreakGlass:
		return &Refusal{Rule: RuleBreakGlassApproval, Reason: "a break-glass grant needs no approval; use grant review",
			Advice: "a break-glass grant needs no approval; review it instead: jitform grant review " + rec.ID}
	case rec.Denied:
		return &Refusal{Rule: RuleDenied, Reason: "the request was denied by " + rec.DeniedBy}
	case rec.Revoked:
		return &Refusal{Rule: RuleRevoked, Reason: "the grant was revoked"}
	case expiredAt(rec, at):
		return &Refusal{Rule: RuleExpired,
			Reason: fmt.Sprintf("the request expired at %s (request_ttl %s), before this approval", stamp(rec.ExpiresAt), RequestTTL(pol)),
			Advice: fmt.Sprintf("the request expired at %s (request_ttl %s); ask the requester for a new one", stamp(rec.ExpiresAt), RequestTTL(pol))}
	case slices.Contains(rec.Approvers, actor):
		return &Refusal{Rule: RuleOnceEach, Reason: actor + " already approved it; one approval per approver",
			Advice: actor + " already approved it; each approver counts once"}
	case !rec.Pending:
		return &Refusal{Rule: RuleAlreadyApproved, Reason: fmt.Sprintf("it is already approved (by %s)", strings.Join(rec.Approvers, ", "))}
	case at.Before(rec.RequestedAt):
		return &Refusal{Rule: RuleBeforeRequest, Reason: "the approval is dated before the request"}
	case !rec.End.IsZero() && !at.Before(rec.End):
		return &Refusal{Rule: RuleWindowEnded, Reason: "the requested window ended at " + stamp(rec.End) + ", before this approval",
			Advice: "the requested window ended at " + stamp(rec.End)}
	}
	need := ApprovalsNeeded(pol)
	completes := len(rec.Approvers)+1 >= need
	if d.Until != nil {
		until := d.Until.UTC()
		end := rec.End
		if rec.StartAtApproval && completes {
			end = at.Add(rec.Duration) // this approval opens the window
		}
		switch {
		case !until.After(at):
			return &Refusal{Rule: RuleUntil, Reason: fmt.Sprintf("until %s is not in the future (the approval is dated %s)", stamp(until), stamp(at)),
				Advice: fmt.Sprintf("--until %s is not in the future; to refuse the request use jitform grant deny %s", stamp(until), rec.ID)}
		case b.checking && !end.IsZero() && until.After(end):
			return &Refusal{Rule: RuleUntil,
				Reason: fmt.Sprintf("until %s is after the window's end %s: an approver may shorten a window, never lengthen it", stamp(until), stamp(end)),
				Advice: fmt.Sprintf("--until %s is after the window's end %s: an approver may shorten a window, never lengthen it", stamp(until), stamp(end))}
		case b.checking && !rec.Start.IsZero() && !until.After(rec.Start):
			return &Refusal{Rule: RuleUntil, Reason: fmt.Sprintf("until %s is not after the window's start %s", stamp(until), stamp(rec.Start)),
				Advice: fmt.Sprintf("--until %s is not after the window's start %s", stamp(until), stamp(rec.Start))}
		}
	}

	// Last of the rules, so that writing (which sees a security key's flags
	// only once it has signed, CheckSigned) and the replay refuse alike.
	if r := b.securityKey(pol); r != nil {
		return r
	}
	rec.addApprover(actor, dec.Factor)
	dec.Counted = true
	if rec.Pending && completes {
		rec.Pending, rec.Status = false, StatusApproved
		openWindow(rec, at)
	}
	if d.Until != nil {
		until := d.Until.UTC()
		requestedEnd := rec.Start.Add(rec.Duration)
		switch {
		case rec.End.IsZero():
			// The window starts at a later approval: remember the bound.
			if rec.untilBound.IsZero() || until.Before(rec.untilBound) {
				rec.untilBound = until
			}
		case until.After(requestedEnd):
			dec.Why = fmt.Sprintf("until %s would lengthen the window (ends %s); an approver may shorten a window, never lengthen it, so it keeps its end",
				stamp(until), stamp(rec.End))
			b.warn(ev, fmt.Sprintf("approval of %s by %s counts, but its until is ignored", rec.ID, actor), dec.Why)
		case !until.Before(rec.End):
			dec.Why = fmt.Sprintf("a stricter until (%s) already holds", stamp(rec.End))
		default:
			rec.End = until
			if !until.After(rec.Start) {
				b.warn(ev, fmt.Sprintf("approval of %s by %s ends the window (until %s) before it starts; the grant never opens",
					rec.ID, actor, stamp(until)), "")
			}
		}
	}
	if !rec.Pending && !rec.untilBound.IsZero() {
		bound := rec.untilBound
		rec.untilBound = time.Time{}
		switch {
		case bound.After(rec.Start.Add(rec.Duration)):
			b.warn(ev, fmt.Sprintf("an approval's until (%s) for %s is after the window's end (%s) and is ignored; an approver may shorten a window, never lengthen it",
				stamp(bound), rec.ID, stamp(rec.End)), "")
		case bound.Before(rec.End):
			rec.End = bound
		}
	}
	return nil
}

func (b *Book) deny(ev state.Event, d state.GrantDecision, rec *Record, dec *Decision) *Refusal {
	pol := b.cfg.PolicyByAddr(rec.Policy)
	at := ev.Time.UTC()
	switch {
	case rec.Status == StatusInvalid || rec.Status == StatusRefused:
		return doesNotCount(rec, "nothing to deny")
	case expiredAt(rec, at):
		return &Refusal{Rule: RuleNotPending, Reason: "it is no longer pending (expired)"}
	case !rec.Pending && rec.Status == StatusApproved:
		return &Refusal{Rule: RuleNotPending, Reason: "it is already approved; end it with jitform grant revoke " + rec.ID,
			Advice: "it is already approved; end it with jitform grant revoke " + rec.ID + " --reason ..."}
	case !rec.Pending:
		return &Refusal{Rule: RuleNotPending, Reason: "it is no longer pending (" + rec.Status + ")"}
	case pol == nil || !(slices.Contains(pol.Approvers, ev.Actor) || ev.Actor == rec.RequestedBy):
		return &Refusal{Rule: RuleMayDeny, Reason: fmt.Sprintf("%s is neither an approver of %s nor the requester", ev.Actor, rec.Policy)}
	}
	dec.Counted = true
	rec.Pending, rec.Denied, rec.Status = false, true, StatusDenied
	rec.DeniedBy, rec.DenyReason = ev.Actor, d.Reason
	return nil
}

// mayEnd: approvers of the policy, the requester and the principal may end
// a grant early (an early check-in is the principal's to make).
func (b *Book) mayEnd(actor string, rec *Record) bool {
	if actor == rec.RequestedBy || actor == rec.Principal {
		return true
	}
	pol := b.cfg.PolicyByAddr(rec.Policy)
	return pol != nil && slices.Contains(pol.Approvers, actor)
}

func (b *Book) revoke(ev state.Event, d state.GrantDecision, rec *Record, dec *Decision) *Refusal {
	at := ev.Time.UTC()
	switch {
	case rec.Status == StatusInvalid || rec.Status == StatusRefused:
		return doesNotCount(rec, "nothing to revoke")
	case rec.Revoked:
		return &Refusal{Rule: RuleRevoked, Reason: "it was already revoked at " + stamp(rec.RevokedAt) + " by " + rec.RevokedBy}
	case rec.Denied:
		return &Refusal{Rule: RuleNothingToRevoke, Reason: "it is denied; it grants nothing"}
	case expiredAt(rec, at):
		return &Refusal{Rule: RuleNothingToRevoke, Reason: "it is expired; it grants nothing"}
	case !rec.End.IsZero() && !rec.End.After(at):
		return &Refusal{Rule: RuleNothingToRevoke, Reason: "its window already ended at " + stamp(rec.End)}
	case !b.mayEnd(ev.Actor, rec):
		return &Refusal{Rule: RuleMayRevoke, Reason: fmt.Sprintf("%s is neither an approver of %s, the requester nor the principal", ev.Actor, rec.Policy)}
	}
	dec.Counted = true
	rec.Revoked, rec.RevokedAt = true, at
	rec.RevokedBy, rec.RevokeReason = ev.Actor, d.Reason
	// A withdrawn request: nothing was granted.
	rec.Pending = false
	rec.Status = StatusRevoked
	return nil
}

func (b *Book) review(ev state.Event, d state.GrantDecision, rec *Record, dec *Decision) *Refusal {
	pol := b.cfg.PolicyByAddr(rec.Policy)
	switch {
	case !rec.BreakGlass:
		return &Refusal{Rule: RuleNotBreakGlass, Reason: rec.ID + " is not a break-glass grant; only break-glass grants are reviewed"}
	case rec.Status == StatusInvalid || rec.Status == StatusRefused:
		return doesNotCount(rec, "nothing to review")
	case pol == nil || !slices.Contains(pol.Approvers, ev.Actor):
		reason := ev.Actor + " is not an approver of " + rec.Policy
		advice := reason
		if pol != nil {
			advice += " (approvers: " + strings.Join(pol.Approvers, ", ") + ")"
		}
		return &Refusal{Rule: RuleNotApprover, Reason: reason, Advice: advice}
	case strings.EqualFold(ev.Actor, rec.Principal) || strings.EqualFold(ev.Actor, rec.RequestedBy):
		reason := ev.Actor + " cannot review their own break-glass grant"
		return &Refusal{Rule: RuleSelfReview, Reason: reason,
			Advice: reason + "; ask one of: " + strings.Join(without(pol.Approvers, ev.Actor, rec.Principal), ", ")}
	case !rec.Unreviewed:
		return &Refusal{Rule: RuleReviewed, Reason: "it was already reviewed by " + rec.ReviewedBy}
	case b.securityKey(pol) != nil:
		return b.securityKey(pol)
	}
	dec.Counted = true
	rec.Unreviewed = false
	rec.ReviewedBy, rec.ReviewedAt = ev.Actor, ev.Time.UTC()
	return nil
}

// revokeBlock is the revocation of a grant block (grant.NAME): signed by
// the principal or an approver of the block's policy, bound to the block's
// content (GrantDecision.Block, state.GrantBlockDigest), so it ends that
// grant and not another one declared later under the same name. The first
// revocation stands.
func (b *Book) revokeBlock(ev state.Event, d state.GrantDecision, dec *Decision) *Refusal {
	var g *config.Grant
	for _, cg := range b.cfg.Grants {
		if cg.Addr == d.Grant {
			g = cg
		}
	}
	refuse := func(r *Refusal) *Refusal {
		b.warn(ev, fmt.Sprintf("revoke of %s by %s does not count: %s", d.Grant, ev.Actor, r.Reason), "")
		return r
	}
	if g == nil {
		b.warn(ev, fmt.Sprintf("revoke of %s does not count: no such grant block in the configuration", d.Grant), "")
		return &Refusal{Rule: RuleNoBlock, Reason: "no grant block " + d.Grant + " in the configuration",
			Advice: fmt.Sprintf("no grant %s: neither a ledger grant ID (g-...) nor a grant block in the repository; jitform grant list shows both", d.Grant)}
	}
	if r := b.verify(ev); r != nil {
		return refuse(r)
	}
	if want := BlockDigest(g); d.Block != "" && d.Block != want {
		return refuse(&Refusal{Rule: RuleBlockBinding,
			Reason: fmt.Sprintf("signed for a different grant block: it names block %s, but %s now declares %s (principal %s, %s, from %s for %s), a grant this revocation was not made for",
				short(d.Block), g.Addr, short(want), g.Principal, g.Policy, stamp(g.Start), g.Duration)})
	}
	approvers := []string{}
	if pol := b.cfg.PolicyByAddr(g.Policy); pol != nil {
		approvers = pol.Approvers
	}
	if ev.Actor != g.Principal && !slices.Contains(approvers, ev.Actor) {
		return refuse(&Refusal{Rule: RuleMayRevoke,
			Reason: fmt.Sprintf("%s is neither an approver of %s nor the principal", ev.Actor, g.Policy),
			Advice: fmt.Sprintf("%s is neither an approver of %s nor the principal of %s", ev.Actor, g.Policy, g.Addr)})
	}
	if prev, ok := b.repo[d.Grant]; ok {
		// The first revocation stands; later ones change nothing.
		return refuse(&Refusal{Rule: RuleRevoked, Reason: fmt.Sprintf("%s was already revoked at %s", d.Grant, stamp(prev.RevokedAt))})
	}
	if b.checking && !g.End().After(ev.Time) {
		return &Refusal{Rule: RuleNothingToRevoke, Reason: fmt.Sprintf("%s already ended at %s", g.Addr, stamp(g.End()))}
	}
	dec.Counted = true
	rec := &Record{
		ID: d.Grant, Source: "repository", Policy: g.Policy, Principal: g.Principal,
		Revoked: true, RevokedAt: ev.Time.UTC(),
		Status: StatusRevoked, RevokedBy: ev.Actor, RevokeReason: d.Reason,
		Decisions: []Decision{*dec}, Events: []int64{ev.Seq},
	}
	b.repo[d.Grant] = rec
	b.repoOrder = append(b.repoOrder, d.Grant)
	return nil
}

// BlockDigest is the digest a revocation of grant block g signs.
func BlockDigest(g *config.Grant) string {
	return state.GrantBlockDigest(g.Policy, g.Principal, g.Start, g.Duration)
}

// enforceMaxActive: under a policy with max_active, a grant that became
// effective while the principal already held max_active overlapping grants
// under that policy does not count. Grants are considered in the order they
// became effective (approval, or the break-glass request).
func (b *Book) enforceMaxActive() {
	var eff []*Record
	for _, id := range b.order {
		rec := b.recs[id]
		if rec.Status == StatusApproved || rec.Status == StatusRevoked && !rec.ApprovedAt.IsZero() {
			eff = append(eff, rec)
		}
	}
	sort.SliceStable(eff, func(i, j int) bool { return eff[i].ApprovedAt.Before(eff[j].ApprovedAt) })
	type key struct{ policy, principal string }
	held := map[key][]*Record{}
	for _, rec := range eff {
		pol := b.cfg.PolicyByAddr(rec.Policy)
		if pol == nil || pol.MaxActive <= 0 {
			continue
		}
		k := key{rec.Policy, rec.Principal}
		end := effectiveEnd(rec)
		overlapping := 0
		for _, h := range held[k] {
			if h.Start.Before(end) && rec.Start.Before(effectiveEnd(h)) {
				overlapping++
			}
		}
		if overlapping >= pol.MaxActive {
			rec.Status, rec.Denied = StatusRefused, true
			rec.Refusal = fmt.Sprintf("%s already held %d overlapping grant(s) under %s, its max_active", rec.Principal, overlapping, pol.Addr)
			b.warns = append(b.warns, Warning{
				Summary: fmt.Sprintf("%s does not count: %s", rec.ID, rec.Refusal),
				Subject: rec.Subject,
			})
			continue
		}
		held[k] = append(held[k], rec)
	}
}
