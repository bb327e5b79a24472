package planner

import (
	"errors"
	"fmt"
	"runtime"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/jitform/jitform/config"
	"github.com/jitform/jitform/state"
)

// DefaultRequestTTL is how long a request waits for its approvals when the
// policy does not set request_ttl.
const DefaultRequestTTL = 24 * time.Hour

// Grant record statuses, as `grant list` prints them.
const (
	StatusPending  = "pending"  // waiting for approvals
	StatusApproved = "approved" // approved; its window may be ahead, open or over (see Start/End)
	StatusDenied   = "denied"
	StatusExpired  = "expired" // not approved within request_ttl
	StatusRevoked  = "revoked" // ended early
	StatusRefused  = "refused" // does not count: see Refusal
	StatusInvalid  = "invalid" // the request itself does not count (bad signature, unknown policy ...)
)

// GrantRecord is everything the ledger says about one ledger grant: the
// request, each decision and whether it counted. The planner uses the Grant
// part; `grant list` and `grant show` print the rest.
type GrantRecord struct {
	Grant
	Status      string
	RequestedBy string
	RequestedAt time.Time
	Duration    time.Duration // as requested
	// StartAtApproval: the request named no start; the window opens at the
	// approval that completes the policy's approvals.
	StartAtApproval bool
	ExpiresAt       time.Time // pending: when the request expires
	ApprovedAt      time.Time // when the last needed approval arrived
	Decisions       []Decision
	DeniedBy        string
	DenyReason      string
	RevokedBy       string
	RevokeReason    string
	ReviewedBy      string
	ReviewedAt      time.Time
	// PolicyGone: the request names a policy that is not declared (any more).
	PolicyGone bool
	// Refusal says why an approved-looking grant does not count
	// (Status refused or invalid).
	Refusal string
	// Events are the ledger sequence numbers of the grant's events.
	Events []int64
}

// Decision is one signed event about a grant and whether it counted.
type Decision struct {
	Seq     int64
	Type    string
	Actor   string
	At      time.Time
	Until   *time.Time
	Reason  string
	Counted bool
	Why     string // when not counted: why
}

// LedgerGrants is ledgerGrants with the full records, for the grant
// commands. It is pure, like the rest of the planner.
func LedgerGrants(cfg *config.Config, events []state.Event, now time.Time) ([]GrantRecord, []Warning) {
	r := newGrantReplay(cfg, now)
	r.verifyAll(events)
	for i, ev := range events {
		r.cur = i
		r.event(ev)
	}
	r.finish()
	out := make([]GrantRecord, 0, len(r.order))
	for _, id := range r.order {
		out = append(out, *r.recs[id])
	}
	return out, r.warns
}

// ledgerGrants derives the grants requested and decided in the ledger,
// counting only approvals whose signatures verify against a declared
// approver's key. Revocations of repository grants come back as entries with
// Source "repository" and Revoked set (see Replay).
func ledgerGrants(cfg *config.Config, events []state.Event, now time.Time) ([]Grant, []Warning) {
	recs, warns := LedgerGrants(cfg, events, now)
	var out []Grant
	for _, rec := range recs {
		g := rec.Grant
		switch {
		case rec.PolicyGone && !rec.ApprovedAt.IsZero():
			// Compute reports that its policy is gone.
		case rec.Status == StatusInvalid:
			continue // nothing counts of it, and the warning says why
		case rec.Source == "ledger" && rec.Revoked && rec.ApprovedAt.IsZero():
			// A request withdrawn before approval granted nothing: inert.
			g.Denied = true
		}
		out = append(out, g)
	}
	return out, warns
}

type grantReplay struct {
	cfg   *config.Config
	now   time.Time
	recs  map[string]*GrantRecord
	order []string
	// repo: repository grants revoked in the ledger, by address.
	repo      map[string]*GrantRecord
	repoOrder []string
	// sigs: armored signature -> the first event that carried it, to name a
	// replayed signature as such rather than as a mere forgery.
	sigs  map[string]state.Event
	warns []Warning
	// approved: grant ID -> approver -> their approval counted.
	approved map[string]map[string]bool
	// verified: signature check results by event index (verifyAll);
	// cur is the index of the event being replayed.
	verified []verifyResult
	cur      int
	// keys: parsed ssh_key per actor name.
	keys map[string]ssh.PublicKey
	// untilBounds: grant ID -> earliest "until" of approvals given before
	// the window's start was known (start at approval).
	untilBounds map[string]time.Time
}

func newGrantReplay(cfg *config.Config, now time.Time) *grantReplay {
	return &grantReplay{
		cfg:      cfg,
		now:      now.UTC(),
		recs:     map[string]*GrantRecord{},
		repo:     map[string]*GrantRecord{},
		sigs:     map[string]state.Event{},
		approved: map[string]map[string]bool{},

		untilBounds: map[string]time.Time{},
		keys:        map[string]ssh.PublicKey{},
	}
}

func (r *grantReplay) warn(ev state.Event, summary, detail string) {
	r.warns = append(r.warns, ledgerWarning(ev, summary, detail))
}

// verify checks the event's signature against the actor's declared key and
// says why it does not count when it does not.
func (r *grantReplay) verify(ev state.Event) error {
	defer func() {
		if ev.Sig != "" {
			if _, ok := r.sigs[ev.Sig]; !ok {
				r.sigs[ev.Sig] = ev
			}
		}
	}()
	actor := r.cfg.ActorByName(ev.Actor)
	if actor == nil {
		return fmt.Errorf("%q is not a declared actor (add an actor block with its ssh_key)", ev.Actor)
	}
	var err error
	if r.cur < len(r.verified) && r.verified[r.cur].done {
		err = r.verified[r.cur].err
	} else {
		pub, perr := r.key(actor)
		if perr != nil {
			return perr
		}
		err = state.VerifyEventKey(ev, pub)
	}
	if err == nil {
		return nil
	}
	if prev, ok := r.sigs[ev.Sig]; ok && ev.Sig != "" && errors.Is(err, state.ErrBadSignature) {
		return fmt.Errorf("replayed signature: it was made for ledger event %d (%s of %s), and a signature covers the grant it names",
			prev.Seq, prev.Type, payloadGrant(prev))
	}
	switch {
	case errors.Is(err, state.ErrUnsigned):
		return fmt.Errorf("not signed: every grant event must carry the SSH signature of actor %s", ev.Actor)
	case errors.Is(err, state.ErrWrongKey):
		return fmt.Errorf("wrong key: %v", err)
	case errors.Is(err, state.ErrBadSignature), errors.Is(err, state.ErrMalformedSignature):
		return fmt.Errorf("forged or altered: %v", err)
	}
	return fmt.Errorf("actor %s: %v", ev.Actor, err)
}

func (r *grantReplay) key(actor *config.Actor) (ssh.PublicKey, error) {
	if k, ok := r.keys[actor.Name]; ok {
		return k, nil
	}
	k, err := state.ParsePublicKey(actor.SSHKey)
	if err != nil {
		return nil, fmt.Errorf("actor %s: %v", actor.Name, err)
	}
	r.keys[actor.Name] = k
	return k, nil
}

type verifyResult struct {
	done bool
	err  error
}

// verifyAll checks the signatures of every grant event by a declared actor
// up front, on all cores: signature verification is nearly all of a
// replay's cost (BenchmarkLedgerGrants), and each check is independent.
// The replay itself stays sequential, in ledger order.
func (r *grantReplay) verifyAll(events []state.Event) {
	type job struct {
		i   int
		pub ssh.PublicKey
	}
	var jobs []job
	for i, ev := range events {
		if !state.IsGrantEvent(ev.Type) {
			continue
		}
		actor := r.cfg.ActorByName(ev.Actor)
		if actor == nil {
			continue
		}
		if pub, err := r.key(actor); err == nil {
			jobs = append(jobs, job{i, pub})
		}
	}
	if len(jobs) == 0 {
		return
	}
	r.verified = make([]verifyResult, len(events))
	workers := min(runtime.GOMAXPROCS(0), (len(jobs)+31)/32)
	var next atomic.Int64
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				n := int(next.Add(1)) - 1
				if n >= len(jobs) {
					return
				}
				j := jobs[n]
				r.verified[j.i] = verifyResult{done: true, err: state.VerifyEventKey(events[j.i], j.pub)}
			}
		}()
	}
	wg.Wait()
}

func payloadGrant(ev state.Event) string {
	if ev.Type == state.EventRequest {
		if q, err := state.DecodeGrantRequest(ev); err == nil {
			return q.ID
		}
	}
	if d, err := state.DecodeGrantDecision(ev); err == nil && d.Grant != "" {
		return d.Grant
	}
	return "another grant"
}

func (r *grantReplay) event(ev state.Event) {
	switch ev.Type {
	case state.EventRequest:
		r.request(ev)
	case state.EventApprove:
		r.decision(ev, r.approve)
	case state.EventDeny:
		r.decision(ev, r.deny)
	case state.EventRevoke:
		r.decision(ev, r.revoke)
	case state.EventReview:
		r.decision(ev, r.review)
	}
}

// RequestTTLOf is how long a request under pol waits for its approvals.
func RequestTTLOf(pol *config.Policy) time.Duration { return requestTTL(pol) }

func requestTTL(pol *config.Policy) time.Duration {
	if pol != nil && pol.RequestTTL > 0 {
		return pol.RequestTTL
	}
	return DefaultRequestTTL
}

func (r *grantReplay) request(ev state.Event) {
	q, err := state.DecodeGrantRequest(ev)
	if err != nil {
		r.warn(ev, "malformed request payload; it does not count", err.Error())
		return
	}
	if !state.IsGrantID(q.ID) {
		r.warn(ev, fmt.Sprintf("request with malformed grant ID %q; it does not count", q.ID), "")
		return
	}
	if _, dup := r.recs[q.ID]; dup {
		r.warn(ev, fmt.Sprintf("request reuses grant ID %s; the later request does not count", q.ID), "")
		return
	}
	at := ev.Time.UTC()
	rec := &GrantRecord{
		Grant: Grant{
			ID:         q.ID,
			Source:     "ledger",
			Policy:     q.Policy,
			Principal:  q.Principal,
			Ticket:     q.Ticket,
			Reason:     q.Reason,
			BreakGlass: q.BreakGlass,
			Pending:    true,
			Subject:    fmt.Sprintf("ledger seq %d", ev.Seq),
		},
		Status:          StatusPending,
		RequestedBy:     ev.Actor,
		RequestedAt:     at,
		StartAtApproval: q.Start == nil,
		Events:          []int64{ev.Seq},
	}
	r.recs[q.ID] = rec
	r.order = append(r.order, q.ID)
	r.approved[q.ID] = map[string]bool{}

	invalid := func(why string) {
		rec.Status, rec.Refusal, rec.Pending = StatusInvalid, why, false
		r.warn(ev, fmt.Sprintf("request %s does not count: %s", q.ID, why), "")
	}
	d, err := q.DurationValue()
	if err != nil {
		invalid(err.Error())
		return
	}
	rec.Duration = d
	if q.Start != nil {
		rec.Start = q.Start.UTC()
		rec.End = rec.Start.Add(d)
	}
	pol := r.cfg.PolicyByAddr(q.Policy)
	rec.ExpiresAt = at.Add(requestTTL(pol))
	if err := r.verify(ev); err != nil {
		invalid(err.Error())
		return
	}
	if pol == nil {
		// Nothing can count under a policy that is gone. A grant that was
		// approved (or broke glass) before the policy was deleted is still
		// handed to Compute, which says the policy is gone and removes what
		// it granted, naming it.
		rec.Status, rec.Refusal, rec.Pending, rec.PolicyGone = StatusInvalid, q.Policy+" does not exist", false, true
		if q.BreakGlass {
			r.openWindow(rec, at)
		}
		return
	}
	// Who may ask: the principal themself when they are a declared actor;
	// otherwise an actor eligible under the policy, on the principal's behalf.
	if r.cfg.ActorByName(q.Principal) != nil {
		if ev.Actor != q.Principal {
			invalid(fmt.Sprintf("%s is a declared actor, so only %s may request access for %s (requested by %s)",
				q.Principal, q.Principal, q.Principal, ev.Actor))
			return
		}
	} else if !slices.Contains(pol.Eligible, ev.Actor) {
		invalid(fmt.Sprintf("requested by %s, who is not eligible under %s (eligible: %s)",
			ev.Actor, pol.Addr, strings.Join(pol.Eligible, ", ")))
		return
	}
	if q.BreakGlass {
		switch {
		case pol.BreakGlass == nil:
			invalid(pol.Addr + " has no break_glass block, so it allows no break-glass grants")
			return
		case ev.Actor != q.Principal:
			invalid(fmt.Sprintf("a break-glass grant is for oneself; %s requested it for %s", ev.Actor, q.Principal))
			return
		case d > pol.BreakGlass.MaxDuration:
			invalid(fmt.Sprintf("break-glass duration %s is longer than %s's break_glass max_duration %s",
				d, pol.Addr, pol.BreakGlass.MaxDuration))
			return
		}
		// Effective at once, without approval, flagged until reviewed.
		if rec.StartAtApproval {
			rec.Start = at
			rec.End = at.Add(d)
		}
		rec.Pending, rec.Status, rec.ApprovedAt, rec.Unreviewed = false, StatusApproved, at, true
		return
	}
	if pol.Approval != config.ApprovalLedger {
		invalid(fmt.Sprintf("%s takes approvals by repository review (approval = %q); declare a grant block, or set approval = %q",
			pol.Addr, pol.Approval, config.ApprovalLedger))
		return
	}
}

// decision parses an approve/deny/revoke/review event and hands it on with
// its grant record (nil for a repository grant revocation).
func (r *grantReplay) decision(ev state.Event, f func(state.Event, state.GrantDecision, *GrantRecord, *Decision)) {
	d, err := state.DecodeGrantDecision(ev)
	if err != nil {
		r.warn(ev, "malformed "+ev.Type+" payload; it does not count", err.Error())
		return
	}
	dec := &Decision{Seq: ev.Seq, Type: ev.Type, Actor: ev.Actor, At: ev.Time.UTC(), Until: d.Until, Reason: d.Reason}
	rec := r.recs[d.Grant]
	if rec == nil && ev.Type == state.EventRevoke && strings.HasPrefix(d.Grant, "grant.") {
		r.revokeRepo(ev, d, dec)
		return
	}
	if rec == nil {
		r.warn(ev, fmt.Sprintf("%s of unknown grant %q does not count", ev.Type, d.Grant),
			"no request with this ID precedes it in the ledger")
		return
	}
	rec.Events = append(rec.Events, ev.Seq)
	if err := r.verify(ev); err != nil {
		r.refuse(ev, rec, dec, err.Error())
		return
	}
	f(ev, d, rec, dec)
	rec.Decisions = append(rec.Decisions, *dec)
}

// refuse records a decision that does not count, with a warning saying why.
func (r *grantReplay) refuse(ev state.Event, rec *GrantRecord, dec *Decision, why string) {
	dec.Why = why
	rec.Decisions = append(rec.Decisions, *dec)
	r.warn(ev, fmt.Sprintf("%s of %s by %s does not count: %s", ev.Type, rec.ID, ev.Actor, why), "")
}

// refuseIn is refuse for the decision handlers, whose caller appends.
func (r *grantReplay) refuseIn(ev state.Event, rec *GrantRecord, dec *Decision, why string) {
	dec.Why = why
	r.warn(ev, fmt.Sprintf("%s of %s by %s does not count: %s", ev.Type, rec.ID, ev.Actor, why), "")
}

// expiredAt reports whether a pending request had expired at t.
func (r *grantReplay) expiredAt(rec *GrantRecord, t time.Time) bool {
	return rec.Pending && !t.Before(rec.ExpiresAt)
}

func (r *grantReplay) approve(ev state.Event, d state.GrantDecision, rec *GrantRecord, dec *Decision) {
	pol := r.cfg.PolicyByAddr(rec.Policy)
	at := ev.Time.UTC()
	switch {
	case rec.PolicyGone:
		// Recorded (not counted) so that Compute can name the grant whose
		// policy is gone; the approver list cannot be checked any more.
		dec.Why = rec.Policy + " does not exist"
		if !strings.EqualFold(ev.Actor, rec.RequestedBy) && !strings.EqualFold(ev.Actor, rec.Principal) && !slices.Contains(rec.Approvers, ev.Actor) {
			rec.Approvers = append(rec.Approvers, ev.Actor)
			if rec.ApprovedAt.IsZero() {
				r.openWindow(rec, at)
			}
		}
		return
	case rec.Status == StatusInvalid:
		r.refuseIn(ev, rec, dec, "the request itself does not count ("+rec.Refusal+")")
		return
	case pol == nil:
		r.refuseIn(ev, rec, dec, rec.Policy+" does not exist")
		return
	case pol.Approval != config.ApprovalLedger:
		r.refuseIn(ev, rec, dec, fmt.Sprintf("%s does not take ledger approvals (approval = %q)", pol.Addr, pol.Approval))
		return
	case !slices.Contains(pol.Approvers, ev.Actor):
		r.refuseIn(ev, rec, dec, fmt.Sprintf("%s is not an approver of %s (approvers: %s)",
			ev.Actor, pol.Addr, strings.Join(pol.Approvers, ", ")))
		return
	case strings.EqualFold(ev.Actor, rec.RequestedBy) || strings.EqualFold(ev.Actor, rec.Principal):
		r.refuseIn(ev, rec, dec, fmt.Sprintf("%s requested this grant (or is its principal) and cannot approve it", ev.Actor))
		return
	case rec.BreakGlass:
		r.refuseIn(ev, rec, dec, "a break-glass grant needs no approval; use grant review")
		return
	case rec.Denied:
		r.refuseIn(ev, rec, dec, "the request was denied")
		return
	case rec.Revoked:
		r.refuseIn(ev, rec, dec, "the grant was revoked")
		return
	case r.expiredAt(rec, at):
		r.refuseIn(ev, rec, dec, fmt.Sprintf("the request expired at %s (request_ttl %s), before this approval",
			stamp(rec.ExpiresAt), requestTTL(pol)))
		return
	case r.approved[rec.ID][ev.Actor]:
		r.refuseIn(ev, rec, dec, ev.Actor+" already approved it; one approval per approver")
		return
	case at.Before(rec.RequestedAt):
		r.refuseIn(ev, rec, dec, "the approval is dated before the request")
		return
	case !rec.End.IsZero() && !at.Before(rec.End):
		r.refuseIn(ev, rec, dec, "the requested window ended at "+stamp(rec.End)+", before this approval")
		return
	}
	r.approved[rec.ID][ev.Actor] = true
	rec.Approvers = append(rec.Approvers, ev.Actor)
	dec.Counted = true
	need := max(pol.Approvals, 1)
	if rec.Pending && len(rec.Approvers) >= need {
		rec.Pending, rec.Status, rec.ApprovedAt = false, StatusApproved, at
		if rec.StartAtApproval {
			rec.Start = at
			rec.End = at.Add(rec.Duration)
		}
	}
	if d.Until != nil {
		until := d.Until.UTC()
		switch {
		case rec.End.IsZero():
			// The window starts at a later approval: remember the bound.
			r.pendingUntil(rec, until)
		case until.After(rec.End):
			dec.Why = fmt.Sprintf("until %s would lengthen the window (ends %s); an approver may shorten a window, never lengthen it, so it keeps its end",
				stamp(until), stamp(rec.End))
			r.warn(ev, fmt.Sprintf("approval of %s by %s counts, but its until is ignored", rec.ID, ev.Actor), dec.Why)
		default:
			rec.End = until
			if !until.After(rec.Start) {
				r.warn(ev, fmt.Sprintf("approval of %s by %s ends the window (until %s) before it starts; the grant never opens",
					rec.ID, ev.Actor, stamp(until)), "")
			}
		}
	}
	if !rec.Pending {
		r.applyPendingUntil(rec, ev)
	}
}

// openWindow records that a grant became effective at t: its window starts
// then unless the request named a start.
func (r *grantReplay) openWindow(rec *GrantRecord, t time.Time) {
	rec.ApprovedAt = t
	if rec.StartAtApproval {
		rec.Start = t
		rec.End = t.Add(rec.Duration)
	}
}

// pendingUntil keeps the earliest "until" of approvals given before the
// window's start was known.
func (r *grantReplay) pendingUntil(rec *GrantRecord, until time.Time) {
	if b, ok := r.untilBounds[rec.ID]; !ok || until.Before(b) {
		r.untilBounds[rec.ID] = until
	}
}

func (r *grantReplay) applyPendingUntil(rec *GrantRecord, ev state.Event) {
	b, ok := r.untilBounds[rec.ID]
	if !ok {
		return
	}
	delete(r.untilBounds, rec.ID)
	if b.After(rec.End) {
		r.warn(ev, fmt.Sprintf("an approval's until (%s) for %s is after the window's end (%s) and is ignored; an approver may shorten a window, never lengthen it",
			stamp(b), rec.ID, stamp(rec.End)), "")
		return
	}
	rec.End = b
}

func (r *grantReplay) deny(ev state.Event, d state.GrantDecision, rec *GrantRecord, dec *Decision) {
	pol := r.cfg.PolicyByAddr(rec.Policy)
	switch {
	case rec.Status == StatusInvalid:
		r.refuseIn(ev, rec, dec, "the request itself does not count ("+rec.Refusal+")")
		return
	case !rec.Pending:
		r.refuseIn(ev, rec, dec, "the grant is no longer pending ("+rec.Status+"); an approved grant is ended with grant revoke")
		return
	case pol == nil || !(slices.Contains(pol.Approvers, ev.Actor) || ev.Actor == rec.RequestedBy):
		r.refuseIn(ev, rec, dec, ev.Actor+" is neither an approver of "+rec.Policy+" nor the requester")
		return
	}
	dec.Counted = true
	rec.Pending, rec.Denied, rec.Status = false, true, StatusDenied
	rec.DeniedBy, rec.DenyReason = ev.Actor, d.Reason
}

// mayEnd: approvers of the policy, the requester and the principal may end a
// grant early (an early check-in is the principal's to make).
func (r *grantReplay) mayEnd(actor string, policy, requester, principal string) bool {
	if actor == requester || actor == principal {
		return true
	}
	pol := r.cfg.PolicyByAddr(policy)
	return pol != nil && slices.Contains(pol.Approvers, actor)
}

func (r *grantReplay) revoke(ev state.Event, d state.GrantDecision, rec *GrantRecord, dec *Decision) {
	switch {
	case rec.Status == StatusInvalid:
		r.refuseIn(ev, rec, dec, "the request itself does not count ("+rec.Refusal+")")
		return
	case rec.Revoked:
		r.refuseIn(ev, rec, dec, "already revoked at "+stamp(rec.RevokedAt))
		return
	case !r.mayEnd(ev.Actor, rec.Policy, rec.RequestedBy, rec.Principal):
		r.refuseIn(ev, rec, dec, ev.Actor+" is neither an approver of "+rec.Policy+", the requester nor the principal")
		return
	}
	dec.Counted = true
	rec.Revoked, rec.RevokedAt = true, ev.Time.UTC()
	rec.RevokedBy, rec.RevokeReason = ev.Actor, d.Reason
	if rec.Pending {
		// A withdrawn request: nothing was granted.
		rec.Pending = false
	}
	rec.Status = StatusRevoked
}

func (r *grantReplay) revokeRepo(ev state.Event, d state.GrantDecision, dec *Decision) {
	var g *config.Grant
	for _, cg := range r.cfg.Grants {
		if cg.Addr == d.Grant {
			g = cg
		}
	}
	if g == nil {
		r.warn(ev, fmt.Sprintf("revoke of %s does not count: no such grant block in the configuration", d.Grant), "")
		return
	}
	if err := r.verify(ev); err != nil {
		r.warn(ev, fmt.Sprintf("revoke of %s by %s does not count: %v", d.Grant, ev.Actor, err), "")
		return
	}
	approvers := []string{}
	if pol := r.cfg.PolicyByAddr(g.Policy); pol != nil {
		approvers = pol.Approvers
	}
	if ev.Actor != g.Principal && !slices.Contains(approvers, ev.Actor) {
		r.warn(ev, fmt.Sprintf("revoke of %s by %s does not count: %s is neither an approver of %s nor the principal",
			d.Grant, ev.Actor, ev.Actor, g.Policy), "")
		return
	}
	if prev, ok := r.repo[d.Grant]; ok {
		_ = prev // the first revocation stands; later ones change nothing
		return
	}
	dec.Counted = true
	rec := &GrantRecord{
		Grant: Grant{ID: d.Grant, Source: "repository", Policy: g.Policy, Principal: g.Principal,
			Revoked: true, RevokedAt: ev.Time.UTC()},
		Status: StatusRevoked, RevokedBy: ev.Actor, RevokeReason: d.Reason,
		Decisions: []Decision{*dec}, Events: []int64{ev.Seq},
	}
	r.repo[d.Grant] = rec
	r.repoOrder = append(r.repoOrder, d.Grant)
}

func (r *grantReplay) review(ev state.Event, d state.GrantDecision, rec *GrantRecord, dec *Decision) {
	pol := r.cfg.PolicyByAddr(rec.Policy)
	switch {
	case !rec.BreakGlass || rec.Status == StatusInvalid:
		r.refuseIn(ev, rec, dec, "only a counting break-glass grant is reviewed")
		return
	case pol == nil || !slices.Contains(pol.Approvers, ev.Actor):
		r.refuseIn(ev, rec, dec, ev.Actor+" is not an approver of "+rec.Policy)
		return
	case strings.EqualFold(ev.Actor, rec.Principal) || strings.EqualFold(ev.Actor, rec.RequestedBy):
		r.refuseIn(ev, rec, dec, ev.Actor+" cannot review their own break-glass grant")
		return
	case !rec.Unreviewed:
		r.refuseIn(ev, rec, dec, "already reviewed by "+rec.ReviewedBy)
		return
	}
	dec.Counted = true
	rec.Unreviewed = false
	rec.ReviewedBy, rec.ReviewedAt = ev.Actor, ev.Time.UTC()
}

// finish settles what depends on now and on the whole ledger: expiry of
// pending requests and max_active.
func (r *grantReplay) finish() {
	for _, id := range r.order {
		rec := r.recs[id]
		if rec.Pending && !r.now.Before(rec.ExpiresAt) {
			rec.Pending, rec.Expired, rec.Status = false, true, StatusExpired
		}
	}
	r.enforceMaxActive()
	for _, id := range r.repoOrder {
		r.order = append(r.order, id)
		r.recs[id] = r.repo[id]
	}
}

// enforceMaxActive: under a policy with max_active, a grant that became
// effective while the principal already held max_active overlapping grants
// under that policy does not count. Grants are considered in the order they
// became effective (approval, or the break-glass request).
func (r *grantReplay) enforceMaxActive() {
	var eff []*GrantRecord
	for _, id := range r.order {
		rec := r.recs[id]
		if rec.Status == StatusApproved || rec.Status == StatusRevoked && !rec.ApprovedAt.IsZero() {
			eff = append(eff, rec)
		}
	}
	sort.SliceStable(eff, func(i, j int) bool { return eff[i].ApprovedAt.Before(eff[j].ApprovedAt) })
	type key struct{ policy, principal string }
	held := map[key][]*GrantRecord{}
	for _, rec := range eff {
		pol := r.cfg.PolicyByAddr(rec.Policy)
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
			r.warns = append(r.warns, Warning{
				Summary: fmt.Sprintf("%s does not count: %s", rec.ID, rec.Refusal),
				Subject: rec.Subject,
			})
			continue
		}
		held[k] = append(held[k], rec)
	}
}

func effectiveEnd(rec *GrantRecord) time.Time {
	if rec.Revoked && rec.RevokedAt.Before(rec.End) {
		return rec.RevokedAt
	}
	return rec.End
}
