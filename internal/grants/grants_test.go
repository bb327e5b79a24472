package grants

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jitform/jitform/state"
)

// TestTransitions runs each rule of the workflow twice, the way it is used:
// Check (the CLI, before it signs and appends the proposed event) and Apply
// (the planner, finding the signed event in the ledger). Both must give
// the same answer, with the same words, except where a case says the rule
// holds only when an event is written.
func TestTransitions(t *testing.T) {
	t.Parallel()
	type tcase struct {
		name    string
		prior   func(w *world)
		propose func(w *world) state.Event
		rule    string // the refusing rule; "" accepted
		// onlyCheck: a rule that holds when the event is written; at replay
		// the event is accepted (the planner re-judges it at plan time).
		onlyCheck bool
		// onlyReplay: a rule about the signature, which Check cannot see.
		onlyReplay bool
		// after checks the Book once the event is replayed (at the
		// event's time unless now is set).
		now   time.Time
		after func(t *testing.T, b *Book)
	}
	status := func(id, want string) func(*testing.T, *Book) {
		return func(t *testing.T, b *Book) {
			t.Helper()
			rec, ok := b.Record(id)
			if !ok || rec.Status != want {
				t.Errorf("%s status = %q (refusal %q), want %q", id, rec.Status, rec.Refusal, want)
			}
		}
	}
	window := func(id string, start, end time.Time) func(*testing.T, *Book) {
		return func(t *testing.T, b *Book) {
			t.Helper()
			rec, _ := b.Record(id)
			if !rec.Start.Equal(start) || !rec.End.Equal(end) {
				t.Errorf("%s window = %s..%s, want %s..%s", id, stamp(rec.Start), stamp(rec.End), stamp(start), stamp(end))
			}
		}
	}
	pendingA := func(policy string) func(w *world) {
		return func(w *world) { w.request(gA, policy, "alice", "alice", at(0), nil, time.Hour, false) }
	}
	approvedA := func(policy string) func(w *world) {
		return func(w *world) {
			w.request(gA, policy, "alice", "alice", at(0), nil, 2*time.Hour, false)
			w.decide(state.EventApprove, gA, "carol", at(time.Minute), nil)
		}
	}
	glassA := func(policy string) func(w *world) {
		return func(w *world) { w.request(gA, policy, "alice", "alice", at(0), nil, time.Hour, true) }
	}
	tests := []tcase{
		// Requests.
		{name: "request: a declared actor is requested for only by themself",
			propose: func(w *world) state.Event {
				return w.requestEvent(gA, "ops", "alice", "bob", at(0), nil, time.Hour, false)
			},
			rule: RuleActorOnlySelf},
		{name: "request: on someone's behalf only by an eligible actor",
			propose: func(w *world) state.Event {
				return w.requestEvent(gA, "ops", "svc-x", "erin", at(0), nil, time.Hour, false)
			},
			rule: RuleRequesterEligible},
		{name: "request: on someone's behalf by an eligible actor",
			propose: func(w *world) state.Event {
				return w.requestEvent(gA, "ops", "svc-deploy", "bob", at(0), nil, time.Hour, false)
			},
			after: status(gA, StatusPending)},
		{name: "request: a window already over is refused",
			propose: func(w *world) state.Event {
				return w.requestEvent(gA, "ops", "alice", "alice", at(3*time.Hour), ptr(at(0)), time.Hour, false)
			},
			rule: RuleWindowOver, after: status(gA, StatusInvalid)},
		{name: "request: a repository-approval policy takes no ledger requests",
			propose: func(w *world) state.Event {
				return w.requestEvent(gA, "repo", "alice", "alice", at(0), nil, time.Hour, false)
			},
			rule: RuleRepositoryApproval},
		{name: "request: it conforms to the policy when written (the planner re-checks at plan time)",
			propose: func(w *world) state.Event {
				return w.requestEvent(gA, "ops", "alice", "alice", at(0), nil, 5*time.Hour, false)
			},
			rule: RuleConforms, onlyCheck: true},
		{name: "request: the ticket_pattern holds when written",
			propose: func(w *world) state.Event {
				return w.make(state.EventRequest, "alice", at(0), state.GrantRequest{ID: gA, Policy: "policy.ticketed",
					Principal: "alice", Duration: "1h0m0s", Ticket: "INC1", Reason: "x"})
			},
			rule: RuleConforms, onlyCheck: true},
		{name: "request: a grant ID is used once",
			prior: pendingA("ops"),
			propose: func(w *world) state.Event {
				return w.requestEvent(gA, "ops", "bob", "bob", at(time.Minute), nil, 4*time.Hour, false)
			},
			rule:  RuleDuplicateID,
			after: window(gA, time.Time{}, time.Time{})},
		{name: "request: a forged request does not count",
			propose: func(w *world) state.Event {
				ev := w.requestEvent(gA, "ops", "alice", "alice", at(0), nil, time.Hour, false)
				ev.Payload = json.RawMessage(`{"duration":"4h0m0s","id":"` + gA + `","policy":"policy.ops","principal":"alice","reason":"patch","ticket":"CHG1"}`)
				return ev
			},
			rule: RuleSignature, onlyReplay: true, after: status(gA, StatusInvalid)},
		{name: "max_active: a pending request holds a place",
			prior: pendingA("capped"),
			propose: func(w *world) state.Event {
				return w.requestEvent(gB, "capped", "alice", "alice", at(time.Minute), nil, time.Hour, false)
			},
			rule: RuleMaxActive, onlyCheck: true},
		{name: "max_active: an approved grant whose window is ahead holds a place",
			prior: func(w *world) {
				w.request(gA, "capped", "alice", "alice", at(0), ptr(at(5*time.Hour)), time.Hour, false)
				w.decide(state.EventApprove, gA, "carol", at(time.Minute), nil)
			},
			propose: func(w *world) state.Event {
				return w.requestEvent(gB, "capped", "alice", "alice", at(2*time.Minute), ptr(at(5*time.Hour+30*time.Minute)), time.Hour, false)
			},
			rule: RuleMaxActive, onlyCheck: true},
		{name: "max_active: a grant whose window does not overlap leaves the place free",
			prior: func(w *world) {
				w.request(gA, "capped", "alice", "alice", at(0), ptr(at(5*time.Hour)), time.Hour, false)
				w.decide(state.EventApprove, gA, "carol", at(time.Minute), nil)
			},
			propose: func(w *world) state.Event {
				return w.requestEvent(gB, "capped", "alice", "alice", at(2*time.Minute), ptr(at(7*time.Hour)), time.Hour, false)
			},
			after: status(gB, StatusPending)},
		{name: "max_active: an expired request holds no place",
			prior: pendingA("short_ttl"),
			propose: func(w *world) state.Event {
				return w.requestEvent(gB, "short_ttl", "alice", "alice", at(2*time.Hour), nil, time.Hour, false)
			},
			after: status(gA, StatusExpired)},

		// Break-glass.
		{name: "break-glass: counts at once, flagged unreviewed",
			propose: func(w *world) state.Event {
				return w.requestEvent(gA, "bg", "alice", "alice", at(0), nil, time.Hour, true)
			},
			after: func(t *testing.T, b *Book) {
				rec, _ := b.Record(gA)
				if rec.Status != StatusApproved || !rec.Unreviewed || !rec.Start.Equal(at(0)) || !rec.End.Equal(at(time.Hour)) {
					t.Errorf("break-glass record: %+v", rec)
				}
			}},
		{name: "break-glass: only under a policy with a break_glass block",
			propose: func(w *world) state.Event {
				return w.requestEvent(gA, "ops", "alice", "alice", at(0), nil, time.Hour, true)
			},
			rule: RuleNoBreakGlass},
		{name: "break-glass: for oneself only",
			propose: func(w *world) state.Event {
				return w.requestEvent(gA, "bg", "svc-deploy", "bob", at(0), nil, time.Hour, true)
			},
			rule: RuleBreakGlassSelf},
		{name: "break-glass: at most break_glass max_duration",
			propose: func(w *world) state.Event {
				return w.requestEvent(gA, "bg", "alice", "alice", at(0), nil, 2*time.Hour, true)
			},
			rule: RuleBreakGlassMax},
		{name: "break-glass: starts now, never later",
			propose: func(w *world) state.Event {
				return w.requestEvent(gA, "bg", "alice", "alice", at(0), ptr(at(time.Hour)), time.Hour, true)
			},
			rule: RuleBreakGlassNow, after: status(gA, StatusInvalid)},
		{name: "break-glass: a start equal to the request is still a start",
			propose: func(w *world) state.Event {
				return w.requestEvent(gA, "bg", "alice", "alice", at(0), ptr(at(0)), time.Hour, true)
			},
			rule: RuleBreakGlassNow},
		{name: "break-glass: max_per_day caps the time in any 24 hours",
			prior: func(w *world) {
				w.request(gA, "budget", "alice", "alice", at(0), nil, time.Hour, true)
				w.request(gB, "budget", "alice", "alice", at(time.Hour), nil, time.Hour, true)
			},
			propose: func(w *world) state.Event {
				return w.requestEvent(gC, "budget", "alice", "alice", at(2*time.Hour), nil, time.Hour, true)
			},
			rule: RuleBreakGlassBudget, after: status(gC, StatusInvalid)},
		{name: "break-glass: the budget is per principal",
			prior: func(w *world) {
				w.request(gA, "budget", "alice", "alice", at(0), nil, time.Hour, true)
				w.request(gB, "budget", "alice", "alice", at(time.Hour), nil, time.Hour, true)
			},
			propose: func(w *world) state.Event {
				return w.requestEvent(gC, "budget", "bob", "bob", at(2*time.Hour), nil, time.Hour, true)
			},
			after: status(gC, StatusApproved)},
		{name: "break-glass: the budget rolls: time older than 24 hours is free again",
			prior: func(w *world) {
				w.request(gA, "budget", "alice", "alice", at(0), nil, time.Hour, true)
				w.request(gB, "budget", "alice", "alice", at(time.Hour), nil, time.Hour, true)
			},
			propose: func(w *world) state.Event {
				return w.requestEvent(gC, "budget", "alice", "alice", at(25*time.Hour), nil, time.Hour, true)
			},
			after: status(gC, StatusApproved)},
		{name: "break-glass: a grant still open counts whole against the budget",
			prior: func(w *world) {
				w.request(gA, "budget", "alice", "alice", at(0), nil, time.Hour, true)
				w.request(gB, "budget", "alice", "alice", at(time.Hour), nil, time.Hour, true)
			},
			propose: func(w *world) state.Event {
				return w.requestEvent(gC, "budget", "alice", "alice", at(90*time.Minute), nil, 10*time.Minute, true)
			},
			rule: RuleBreakGlassBudget},
		{name: "break-glass: a grant revoked early uses only the time it was open",
			prior: func(w *world) {
				w.request(gA, "budget", "alice", "alice", at(0), nil, time.Hour, true)
				w.decide(state.EventRevoke, gA, "alice", at(30*time.Minute), nil)
				w.request(gB, "budget", "alice", "alice", at(time.Hour), nil, time.Hour, true)
			},
			propose: func(w *world) state.Event {
				return w.requestEvent(gC, "budget", "alice", "alice", at(2*time.Hour), nil, 30*time.Minute, true)
			},
			after: status(gC, StatusApproved)},

		// Approvals.
		{name: "approve: by an approver of the policy",
			prior: pendingA("ops"),
			propose: func(w *world) state.Event {
				return w.decisionEvent(state.EventApprove, gA, "carol", at(10*time.Minute), nil)
			},
			after: window(gA, at(10*time.Minute), at(70*time.Minute))},
		{name: "approve: an approval dated before its request does not count",
			prior: func(w *world) { w.request(gA, "ops", "alice", "alice", at(10*time.Minute), nil, time.Hour, false) },
			propose: func(w *world) state.Event {
				return w.decisionEvent(state.EventApprove, gA, "carol", at(5*time.Minute), nil)
			},
			now: at(20 * time.Minute), rule: RuleBeforeRequest, after: status(gA, StatusPending)},
		{name: "approve: at the exact instant the request expires is too late",
			prior: pendingA("short_ttl"),
			propose: func(w *world) state.Event {
				return w.decisionEvent(state.EventApprove, gA, "carol", at(time.Hour), nil)
			},
			rule: RuleExpired, after: status(gA, StatusExpired)},
		{name: "approve: a second before the request expires counts",
			prior: pendingA("short_ttl"),
			propose: func(w *world) state.Event {
				return w.decisionEvent(state.EventApprove, gA, "carol", at(time.Hour-time.Second), nil)
			},
			after: status(gA, StatusApproved)},
		{name: "approve: only an approver of the policy",
			prior: pendingA("ops"),
			propose: func(w *world) state.Event {
				return w.decisionEvent(state.EventApprove, gA, "erin", at(time.Minute), nil)
			},
			rule: RuleNotApprover},
		{name: "approve: no self-approval, whatever the case of the name",
			prior: pendingA("peer"),
			propose: func(w *world) state.Event {
				return w.decisionEvent(state.EventApprove, gA, "ALICE", at(time.Minute), nil)
			},
			rule: RuleSelfApproval, after: status(gA, StatusPending)},
		{name: "approve: the requester cannot approve a grant for someone else",
			prior: func(w *world) { w.request(gA, "peer", "svc-deploy", "bob", at(0), nil, time.Hour, false) },
			propose: func(w *world) state.Event {
				return w.decisionEvent(state.EventApprove, gA, "bob", at(time.Minute), nil)
			},
			rule: RuleSelfApproval},
		{name: "approve: one approval per approver",
			prior: func(w *world) {
				w.request(gA, "two", "alice", "alice", at(0), nil, time.Hour, false)
				w.decide(state.EventApprove, gA, "carol", at(time.Minute), nil)
			},
			propose: func(w *world) state.Event {
				return w.decisionEvent(state.EventApprove, gA, "carol", at(2*time.Minute), nil)
			},
			rule: RuleOnceEach, after: status(gA, StatusPending)},
		{name: "approve: an approved grant takes no more approvals",
			prior: approvedA("ops"),
			propose: func(w *world) state.Event {
				return w.decisionEvent(state.EventApprove, gA, "dave", at(2*time.Minute), nil)
			},
			rule: RuleAlreadyApproved},
		{name: "approve: a denied request stays denied",
			prior: func(w *world) {
				pendingA("ops")(w)
				w.decide(state.EventDeny, gA, "dave", at(time.Minute), nil)
			},
			propose: func(w *world) state.Event {
				return w.decisionEvent(state.EventApprove, gA, "carol", at(2*time.Minute), nil)
			},
			rule: RuleDenied, after: status(gA, StatusDenied)},
		{name: "approve: a break-glass grant is reviewed, not approved",
			prior: glassA("bg"),
			propose: func(w *world) state.Event {
				return w.decisionEvent(state.EventApprove, gA, "carol", at(time.Minute), nil)
			},
			rule: RuleBreakGlassApproval},
		{name: "approve: after the requested window ended, at the exact instant",
			prior: func(w *world) { w.request(gA, "ops", "alice", "alice", at(0), ptr(at(0)), time.Hour, false) },
			propose: func(w *world) state.Event {
				return w.decisionEvent(state.EventApprove, gA, "carol", at(time.Hour), nil)
			},
			rule: RuleWindowEnded},
		{name: "approve: until shortens the window",
			prior: func(w *world) { w.request(gA, "ops", "alice", "alice", at(0), ptr(at(0)), 4*time.Hour, false) },
			propose: func(w *world) state.Event {
				return w.decisionEvent(state.EventApprove, gA, "carol", at(time.Minute), ptr(at(time.Hour)))
			},
			after: window(gA, at(0), at(time.Hour))},
		{name: "approve: until never lengthens: refused when written, ignored at replay",
			prior: func(w *world) { w.request(gA, "ops", "alice", "alice", at(0), ptr(at(0)), time.Hour, false) },
			propose: func(w *world) state.Event {
				return w.decisionEvent(state.EventApprove, gA, "carol", at(time.Minute), ptr(at(3*time.Hour)))
			},
			rule: RuleUntil, onlyCheck: true, after: window(gA, at(0), at(time.Hour))},
		{name: "approve: until in the past does not count",
			prior: pendingA("ops"),
			propose: func(w *world) state.Event {
				return w.decisionEvent(state.EventApprove, gA, "carol", at(time.Minute), ptr(at(30*time.Second)))
			},
			rule: RuleUntil, after: status(gA, StatusPending)},
		{name: "approve: the stricter of several untils holds (stricter first)",
			prior: func(w *world) {
				w.request(gA, "two", "alice", "alice", at(0), nil, 2*time.Hour, false)
				w.decide(state.EventApprove, gA, "carol", at(time.Minute), ptr(at(40*time.Minute)))
			},
			propose: func(w *world) state.Event {
				return w.decisionEvent(state.EventApprove, gA, "dave", at(5*time.Minute), ptr(at(50*time.Minute)))
			},
			after: window(gA, at(5*time.Minute), at(40*time.Minute))},
		{name: "approve: the stricter of several untils holds (stricter last)",
			prior: func(w *world) {
				w.request(gA, "two", "alice", "alice", at(0), nil, 2*time.Hour, false)
				w.decide(state.EventApprove, gA, "carol", at(time.Minute), ptr(at(50*time.Minute)))
			},
			propose: func(w *world) state.Event {
				return w.decisionEvent(state.EventApprove, gA, "dave", at(5*time.Minute), ptr(at(40*time.Minute)))
			},
			after: window(gA, at(5*time.Minute), at(40*time.Minute))},

		// Binding to the request.
		{name: "binding: a decision signed for a different request does not count, and the grant stops counting",
			prior: pendingA("ops"),
			propose: func(w *world) state.Event {
				return w.make(state.EventApprove, "carol", at(time.Minute), state.GrantDecision{Grant: gA, Request: strings.Repeat("0", 64)})
			},
			rule: RuleBinding, after: status(gA, StatusRefused)},
		{name: "binding: an outsider naming another request changes nothing",
			prior: pendingA("ops"),
			propose: func(w *world) state.Event {
				return w.make(state.EventApprove, "erin", at(time.Minute), state.GrantDecision{Grant: gA, Request: strings.Repeat("0", 64)})
			},
			rule: RuleBinding, after: status(gA, StatusPending)},
		{name: "binding: an approval that names no request does not count",
			prior: pendingA("ops"),
			propose: func(w *world) state.Event {
				return w.make(state.EventApprove, "carol", at(time.Minute), state.GrantDecision{Grant: gA})
			},
			rule: RuleBinding, after: status(gA, StatusPending)},
		{name: "binding: a revocation that names no request still ends the grant",
			prior: approvedA("ops"),
			propose: func(w *world) state.Event {
				return w.make(state.EventRevoke, "carol", at(30*time.Minute), state.GrantDecision{Grant: gA, Reason: "old jitform"})
			},
			after: status(gA, StatusRevoked)},

		// Denials.
		{name: "deny: after approval it is revoke, not deny",
			prior: approvedA("ops"),
			propose: func(w *world) state.Event {
				return w.decisionEvent(state.EventDeny, gA, "dave", at(2*time.Minute), nil)
			},
			rule: RuleNotPending, after: status(gA, StatusApproved)},
		{name: "deny: only an approver or the requester",
			prior:   pendingA("ops"),
			propose: func(w *world) state.Event { return w.decisionEvent(state.EventDeny, gA, "erin", at(time.Minute), nil) },
			rule:    RuleMayDeny},
		{name: "deny: the requester withdraws their request",
			prior:   pendingA("ops"),
			propose: func(w *world) state.Event { return w.decisionEvent(state.EventDeny, gA, "alice", at(time.Minute), nil) },
			after:   status(gA, StatusDenied)},

		// Revocations.
		{name: "revoke: the principal checks in early",
			prior: approvedA("ops"),
			propose: func(w *world) state.Event {
				return w.decisionEvent(state.EventRevoke, gA, "alice", at(30*time.Minute), nil)
			},
			after: status(gA, StatusRevoked)},
		{name: "revoke: the requester of a grant for someone else may end it",
			prior: func(w *world) {
				w.request(gA, "ops", "svc-deploy", "bob", at(0), nil, time.Hour, false)
				w.decide(state.EventApprove, gA, "carol", at(time.Minute), nil)
			},
			propose: func(w *world) state.Event {
				return w.decisionEvent(state.EventRevoke, gA, "bob", at(30*time.Minute), nil)
			},
			after: status(gA, StatusRevoked)},
		{name: "revoke: not by an outsider",
			prior: approvedA("ops"),
			propose: func(w *world) state.Event {
				return w.decisionEvent(state.EventRevoke, gA, "erin", at(30*time.Minute), nil)
			},
			rule: RuleMayRevoke, after: status(gA, StatusApproved)},
		{name: "revoke: of two revocations the first stands",
			prior: func(w *world) {
				approvedA("ops")(w)
				w.decide(state.EventRevoke, gA, "carol", at(30*time.Minute), nil)
			},
			propose: func(w *world) state.Event {
				return w.decisionEvent(state.EventRevoke, gA, "alice", at(40*time.Minute), nil)
			},
			rule: RuleRevoked,
			after: func(t *testing.T, b *Book) {
				rec, _ := b.Record(gA)
				if rec.RevokedBy != "carol" || !rec.RevokedAt.Equal(at(30*time.Minute)) {
					t.Errorf("revoked by %s at %s, want carol at %s", rec.RevokedBy, stamp(rec.RevokedAt), stamp(at(30*time.Minute)))
				}
			}},
		{name: "revoke: a denied request grants nothing to revoke",
			prior: func(w *world) {
				pendingA("ops")(w)
				w.decide(state.EventDeny, gA, "dave", at(time.Minute), nil)
			},
			propose: func(w *world) state.Event {
				return w.decisionEvent(state.EventRevoke, gA, "carol", at(2*time.Minute), nil)
			},
			rule: RuleNothingToRevoke},
		{name: "revoke: after the window ended there is nothing to revoke",
			prior: approvedA("ops"),
			propose: func(w *world) state.Event {
				return w.decisionEvent(state.EventRevoke, gA, "carol", at(3*time.Hour), nil)
			},
			rule: RuleNothingToRevoke},
		{name: "revoke: a grant block, bound to its content",
			propose: func(w *world) state.Event {
				return w.make(state.EventRevoke, "carol", at(30*time.Minute), state.GrantDecision{Grant: "grant.alice_chg1", Block: BlockDigest(w.cfg.Grants[0])})
			},
			after: status("grant.alice_chg1", StatusRevoked)},
		{name: "revoke: a grant block whose content changed is another grant",
			propose: func(w *world) state.Event {
				g := *w.cfg.Grants[0]
				g.Duration = 4 * time.Hour
				return w.make(state.EventRevoke, "carol", at(30*time.Minute), state.GrantDecision{Grant: "grant.alice_chg1", Block: BlockDigest(&g)})
			},
			rule: RuleBlockBinding},
		{name: "revoke: a grant block by its principal or an approver only",
			propose: func(w *world) state.Event {
				return w.make(state.EventRevoke, "erin", at(30*time.Minute), state.GrantDecision{Grant: "grant.alice_chg1", Block: BlockDigest(w.cfg.Grants[0])})
			},
			rule: RuleMayRevoke},
		{name: "revoke: of two grant block revocations the first stands",
			prior: func(w *world) {
				w.chain(w.make(state.EventRevoke, "carol", at(20*time.Minute), state.GrantDecision{Grant: "grant.alice_chg1", Block: BlockDigest(w.cfg.Grants[0])}))
			},
			propose: func(w *world) state.Event {
				return w.make(state.EventRevoke, "alice", at(30*time.Minute), state.GrantDecision{Grant: "grant.alice_chg1", Block: BlockDigest(w.cfg.Grants[0])})
			},
			rule: RuleRevoked,
			after: func(t *testing.T, b *Book) {
				if rec, _ := b.Record("grant.alice_chg1"); rec.RevokedBy != "carol" {
					t.Errorf("revoked by %s, want carol", rec.RevokedBy)
				}
			}},

		// Reviews.
		{name: "review: by an approver",
			prior: glassA("bg"),
			propose: func(w *world) state.Event {
				return w.decisionEvent(state.EventReview, gA, "carol", at(time.Minute), nil)
			},
			after: func(t *testing.T, b *Book) {
				if rec, _ := b.Record(gA); rec.Unreviewed || rec.ReviewedBy != "carol" {
					t.Errorf("after review: %+v", rec)
				}
			}},
		{name: "review: only break-glass grants are reviewed",
			prior: approvedA("ops"),
			propose: func(w *world) state.Event {
				return w.decisionEvent(state.EventReview, gA, "dave", at(2*time.Minute), nil)
			},
			rule: RuleNotBreakGlass},
		{name: "review: not by a non-approver",
			prior: glassA("bg"),
			propose: func(w *world) state.Event {
				return w.decisionEvent(state.EventReview, gA, "erin", at(time.Minute), nil)
			},
			rule: RuleNotApprover},
		{name: "review: an approver cannot review their own break-glass grant",
			prior: glassA("peer"),
			propose: func(w *world) state.Event {
				return w.decisionEvent(state.EventReview, gA, "alice", at(time.Minute), nil)
			},
			rule: RuleSelfReview, after: status(gA, StatusApproved)},
		{name: "review: once",
			prior: func(w *world) {
				glassA("bg")(w)
				w.decide(state.EventReview, gA, "carol", at(time.Minute), nil)
			},
			propose: func(w *world) state.Event {
				return w.decisionEvent(state.EventReview, gA, "dave", at(2*time.Minute), nil)
			},
			rule: RuleReviewed},
		// require_security_key.
		{name: "security key: a request signed with an ordinary key does not count",
			propose: func(w *world) state.Event {
				return w.requestEvent(gA, "fido", "alice", "alice", at(0), nil, time.Hour, false)
			},
			rule: RuleSecurityKey, after: status(gA, StatusInvalid)},
		{name: "security key: a request with presence counts",
			propose: func(w *world) state.Event {
				return w.requestEvent(gA, "fido", "sam", "sam", at(0), nil, time.Hour, false)
			},
			after: func(t *testing.T, b *Book) {
				rec, _ := b.Record(gA)
				if rec.Status != StatusPending || rec.RequestFactor != FactorSecurityKeyPresence {
					t.Errorf("status %q factor %q", rec.Status, rec.RequestFactor)
				}
			}},
		{name: "security key: an approval signed with an ordinary key does not count",
			prior: func(w *world) { w.request(gA, "fido", "sam", "sam", at(0), nil, time.Hour, false) },
			propose: func(w *world) state.Event {
				return w.decisionEvent(state.EventApprove, gA, "carol", at(time.Minute), nil)
			},
			rule: RuleSecurityKey, after: status(gA, StatusPending)},
		{name: "security key: an approval without the presence flag does not count",
			prior: func(w *world) { w.request(gA, "fido", "sam", "sam", at(0), nil, time.Hour, false) },
			propose: func(w *world) state.Event {
				return w.decisionEvent(state.EventApprove, gA, "nora", at(time.Minute), nil)
			},
			rule: RuleSKPresence, onlyReplay: true, after: status(gA, StatusPending)},
		{name: "security key: an untouched signature counts for no event, a deny included",
			prior: func(w *world) { w.request(gA, "fido", "sam", "sam", at(0), nil, time.Hour, false) },
			propose: func(w *world) state.Event {
				return w.decisionEvent(state.EventDeny, gA, "nora", at(time.Minute), nil)
			},
			rule: RuleSKPresence, onlyReplay: true, after: status(gA, StatusPending)},
		{name: "security key: presence without user verification does not count under user_verification",
			prior: func(w *world) { w.request(gA, "fido_uv", "vic", "vic", at(0), nil, time.Hour, false) },
			propose: func(w *world) state.Event {
				return w.decisionEvent(state.EventApprove, gA, "sam", at(time.Minute), nil)
			},
			rule: RuleSKVerification, onlyReplay: true, after: status(gA, StatusPending)},
		{name: "security key: a request with presence alone does not count under user_verification",
			propose: func(w *world) state.Event {
				return w.requestEvent(gA, "fido_uv", "sam", "sam", at(0), nil, time.Hour, false)
			},
			rule: RuleSKVerification, onlyReplay: true},
		{name: "security key: a user-verified approval counts and names its factor",
			prior: func(w *world) { w.request(gA, "fido_uv", "vic", "vic", at(0), nil, time.Hour, false) },
			propose: func(w *world) state.Event {
				return w.decisionEvent(state.EventApprove, gA, "uma", at(time.Minute), nil)
			},
			after: func(t *testing.T, b *Book) {
				rec, _ := b.Record(gA)
				if rec.Status != StatusApproved || rec.ApproverFactors["uma"] != FactorSecurityKeyUserVerified ||
					rec.Decisions[0].Factor != FactorSecurityKeyUserVerified {
					t.Errorf("status %q factors %v decisions %+v", rec.Status, rec.ApproverFactors, rec.Decisions)
				}
			}},
		{name: "security key: a touched approval counts under presence",
			prior: func(w *world) { w.request(gA, "fido", "vic", "vic", at(0), nil, time.Hour, false) },
			propose: func(w *world) state.Event {
				return w.decisionEvent(state.EventApprove, gA, "sam", at(time.Minute), nil)
			},
			after: func(t *testing.T, b *Book) {
				rec, _ := b.Record(gA)
				if rec.Status != StatusApproved || rec.ApproverFactors["sam"] != FactorSecurityKeyPresence {
					t.Errorf("status %q factors %v", rec.Status, rec.ApproverFactors)
				}
			}},
		{name: "security key: the review of a break-glass grant needs one",
			prior: func(w *world) { w.request(gA, "fido", "sam", "sam", at(0), nil, time.Hour, true) },
			propose: func(w *world) state.Event {
				return w.decisionEvent(state.EventReview, gA, "carol", at(time.Minute), nil)
			},
			rule: RuleSecurityKey, after: func(t *testing.T, b *Book) {
				if rec, _ := b.Record(gA); !rec.Unreviewed {
					t.Errorf("carol's review with an ordinary key counted: %+v", rec)
				}
			}},
		{name: "security key: a deny takes access away and needs none",
			prior: func(w *world) { w.request(gA, "fido", "sam", "sam", at(0), nil, time.Hour, false) },
			propose: func(w *world) state.Event {
				return w.decisionEvent(state.EventDeny, gA, "carol", at(time.Minute), nil)
			},
			after: status(gA, StatusDenied)},
		{name: "security key: without require_security_key an ordinary key approves, and a security key is named",
			prior: pendingA("ops"),
			propose: func(w *world) state.Event {
				return w.decisionEvent(state.EventApprove, gA, "carol", at(time.Minute), nil)
			},
			after: func(t *testing.T, b *Book) {
				rec, _ := b.Record(gA)
				if rec.Status != StatusApproved || len(rec.ApproverFactors) != 0 || rec.Decisions[0].Factor != FactorSSHKey {
					t.Errorf("status %q factors %v", rec.Status, rec.ApproverFactors)
				}
			}},
		{name: "decision: of an unknown grant",
			propose: func(w *world) state.Event {
				return w.decisionEvent(state.EventApprove, gC, "carol", at(time.Minute), nil)
			},
			rule: RuleUnknownGrant},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			w := newWorld(t)
			if tc.prior != nil {
				tc.prior(w)
			}
			ev := tc.propose(w)

			// Writing: the CLI checks the proposed event against the ledger.
			_, ref := w.replay(ev.Time).Check(ev)
			want := tc.rule
			if tc.onlyReplay {
				want = ""
			}
			if got := ruleOf(ref); got != want {
				t.Errorf("Check: rule %q (%v), want %q", got, ref, want)
			}

			// Replaying: the same event found in the ledger.
			w.chain(ev)
			b := New(w.cfg, NewSSHVerifier(w.cfg, w.events))
			var last *Refusal
			for _, e := range w.events {
				last = b.Apply(e)
			}
			now := ev.Time
			if !tc.now.IsZero() {
				now = tc.now
			}
			b.Finish(now)
			want = tc.rule
			if tc.onlyCheck {
				want = ""
			}
			if got := ruleOf(last); got != want {
				t.Errorf("Apply: rule %q (%v), want %q\nwarnings:\n%s", got, last, want, warningsText(b.Warnings()))
			}
			if last != nil && !hasWarning(b.Warnings(), last.Reason) {
				t.Errorf("the refusal %q is not among the replay's warnings:\n%s", last.Reason, warningsText(b.Warnings()))
			}
			if ref != nil && last != nil && ref.Reason != last.Reason && tc.rule != RuleUnknownGrant {
				t.Errorf("Check and Apply refuse in different words:\n  check:  %s\n  replay: %s", ref.Reason, last.Reason)
			}
			if tc.after != nil {
				tc.after(t, b)
			}
		})
	}
}

func ruleOf(r *Refusal) string {
	if r == nil {
		return ""
	}
	return r.Rule
}

// TestCheckChangesNothing: a refused or accepted proposal leaves the Book
// as it was.
func TestCheckChangesNothing(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	w.request(gA, "two", "alice", "alice", at(0), nil, time.Hour, false)
	w.decide(state.EventApprove, gA, "carol", at(time.Minute), ptr(at(50*time.Minute)))
	b := w.replay(at(2 * time.Minute))
	before := b.Records()
	rec, ref := b.Check(w.decisionEvent(state.EventApprove, gA, "dave", at(2*time.Minute), nil))
	if ref != nil || rec.Status != StatusApproved || !rec.End.Equal(at(50*time.Minute)) {
		t.Fatalf("dave's approval would complete it, ending at carol's until: %+v %v", rec, ref)
	}
	if _, ref := b.Check(w.decisionEvent(state.EventApprove, gA, "erin", at(2*time.Minute), nil)); ref == nil {
		t.Fatal("erin is no approver")
	}
	after := b.Records()
	if len(after) != len(before) || after[0].Status != StatusPending || len(after[0].Approvers) != 1 || !after[0].End.IsZero() {
		t.Fatalf("Check changed the Book: %+v", after)
	}
	if !slices.Equal(after[0].Events, before[0].Events) {
		t.Fatalf("Check changed the record's events: %v -> %v", before[0].Events, after[0].Events)
	}
}
