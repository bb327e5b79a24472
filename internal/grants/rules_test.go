package grants

import (
	"strings"
	"testing"
	"time"

	"github.com/jitform/jitform/config"
	"github.com/jitform/jitform/state"
)

// Rules whose every instant and every branch is pinned by a test, found by
// mutation testing (scripts/mutate.sh): each test asserts what a person
// sees (who holds access when, what the replay or the CLI says).

// addPolicy declares one more policy like policy.ops, changed by mut.
func (w *world) addPolicy(name string, mut func(*config.Policy)) {
	p := &config.Policy{
		Name: name, Addr: "policy." + name, Groups: []string{"group.ops"},
		Eligible: []string{"alice", "bob", "svc-deploy"}, MaxDuration: 4 * time.Hour,
		Approvals: 1, Approvers: []string{"carol", "dave"}, Approval: config.ApprovalLedger,
	}
	mut(p)
	w.cfg.Policies = append(w.cfg.Policies, p)
}

// TestMaxActiveAtReplay: a ledger written without the CLI (so without the
// check at request time) still grants at most max_active overlapping
// grants per principal and policy; grants are taken in the order they were
// approved.
func TestMaxActiveAtReplay(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		policy string
		events func(w *world)
		now    time.Time
		want   map[string]string // grant -> status
	}{
		{name: "the later of two overlapping approved grants does not count", policy: "capped",
			events: func(w *world) {
				w.request(gA, "capped", "alice", "alice", at(0), nil, 2*time.Hour, false)
				w.decide(state.EventApprove, gA, "carol", at(time.Minute), nil)
				w.request(gB, "capped", "alice", "alice", at(2*time.Minute), nil, time.Hour, false)
				w.decide(state.EventApprove, gB, "carol", at(3*time.Minute), nil)
			},
			now:  at(4 * time.Minute),
			want: map[string]string{gA: StatusApproved, gB: StatusRefused}},
		{name: "approval order decides, not request order", policy: "capped",
			events: func(w *world) {
				w.request(gA, "capped", "alice", "alice", at(0), nil, 2*time.Hour, false)
				w.request(gB, "capped", "alice", "alice", at(time.Minute), nil, time.Hour, false)
				w.decide(state.EventApprove, gB, "carol", at(2*time.Minute), nil)
				w.decide(state.EventApprove, gA, "carol", at(3*time.Minute), nil)
			},
			now:  at(4 * time.Minute),
			want: map[string]string{gA: StatusRefused, gB: StatusApproved}},
		{name: "a grant revoked later held its place while it was open", policy: "capped",
			events: func(w *world) {
				w.request(gA, "capped", "alice", "alice", at(0), nil, 2*time.Hour, false)
				w.decide(state.EventApprove, gA, "carol", at(time.Minute), nil)
				w.request(gB, "capped", "alice", "alice", at(2*time.Minute), nil, time.Hour, false)
				w.decide(state.EventApprove, gB, "carol", at(10*time.Minute), nil)
				w.decide(state.EventRevoke, gA, "carol", at(90*time.Minute), nil)
			},
			now:  at(100 * time.Minute),
			want: map[string]string{gA: StatusRevoked, gB: StatusRefused}},
		{name: "a grant revoked before the next was approved leaves its place free", policy: "capped",
			events: func(w *world) {
				w.request(gA, "capped", "alice", "alice", at(0), nil, 2*time.Hour, false)
				w.decide(state.EventApprove, gA, "carol", at(time.Minute), nil)
				w.decide(state.EventRevoke, gA, "alice", at(5*time.Minute), nil)
				w.request(gB, "capped", "alice", "alice", at(6*time.Minute), nil, time.Hour, false)
				w.decide(state.EventApprove, gB, "carol", at(10*time.Minute), nil)
			},
			now:  at(11 * time.Minute),
			want: map[string]string{gA: StatusRevoked, gB: StatusApproved}},
		{name: "a pending or denied request holds no place", policy: "capped",
			events: func(w *world) {
				w.request(gA, "capped", "alice", "alice", at(0), nil, 2*time.Hour, false)
				w.request(gC, "capped", "alice", "alice", at(0), nil, 2*time.Hour, false)
				w.decide(state.EventDeny, gC, "carol", at(time.Minute), nil)
				w.request(gB, "capped", "alice", "alice", at(2*time.Minute), nil, time.Hour, false)
				w.decide(state.EventApprove, gB, "carol", at(3*time.Minute), nil)
			},
			now:  at(4 * time.Minute),
			want: map[string]string{gA: StatusPending, gB: StatusApproved, gC: StatusDenied}},
		{name: "windows that only touch do not overlap", policy: "capped",
			events: func(w *world) {
				w.request(gA, "capped", "alice", "alice", at(0), ptr(at(time.Hour)), time.Hour, false)
				w.request(gB, "capped", "alice", "alice", at(0), ptr(at(2*time.Hour)), time.Hour, false)
				w.decide(state.EventApprove, gA, "carol", at(time.Minute), nil)
				w.decide(state.EventApprove, gB, "carol", at(2*time.Minute), nil)
			},
			now:  at(3 * time.Minute),
			want: map[string]string{gA: StatusApproved, gB: StatusApproved}},
		{name: "a window that starts a second before the other ends overlaps", policy: "capped",
			events: func(w *world) {
				w.request(gA, "capped", "alice", "alice", at(0), ptr(at(time.Hour)), time.Hour, false)
				w.request(gB, "capped", "alice", "alice", at(0), ptr(at(2*time.Hour-time.Second)), time.Hour, false)
				w.decide(state.EventApprove, gA, "carol", at(time.Minute), nil)
				w.decide(state.EventApprove, gB, "carol", at(2*time.Minute), nil)
			},
			now:  at(3 * time.Minute),
			want: map[string]string{gA: StatusApproved, gB: StatusRefused}},
		{name: "a window that ends a second after the other starts overlaps", policy: "capped",
			events: func(w *world) {
				w.request(gA, "capped", "alice", "alice", at(0), ptr(at(2*time.Hour)), time.Hour, false)
				w.request(gB, "capped", "alice", "alice", at(0), ptr(at(time.Hour+time.Second)), time.Hour, false)
				w.decide(state.EventApprove, gA, "carol", at(time.Minute), nil)
				w.decide(state.EventApprove, gB, "carol", at(2*time.Minute), nil)
			},
			now:  at(3 * time.Minute),
			want: map[string]string{gA: StatusApproved, gB: StatusRefused}},
		{name: "the cap is per principal", policy: "capped",
			events: func(w *world) {
				w.request(gA, "capped", "alice", "alice", at(0), nil, 2*time.Hour, false)
				w.decide(state.EventApprove, gA, "carol", at(time.Minute), nil)
				w.request(gB, "capped", "bob", "bob", at(2*time.Minute), nil, time.Hour, false)
				w.decide(state.EventApprove, gB, "carol", at(3*time.Minute), nil)
			},
			now:  at(4 * time.Minute),
			want: map[string]string{gA: StatusApproved, gB: StatusApproved}},
		{name: "without max_active overlapping grants all count", policy: "ops",
			events: func(w *world) {
				w.request(gA, "ops", "alice", "alice", at(0), nil, 2*time.Hour, false)
				w.decide(state.EventApprove, gA, "carol", at(time.Minute), nil)
				w.request(gB, "ops", "alice", "alice", at(2*time.Minute), nil, time.Hour, false)
				w.decide(state.EventApprove, gB, "carol", at(3*time.Minute), nil)
			},
			now:  at(4 * time.Minute),
			want: map[string]string{gA: StatusApproved, gB: StatusApproved}},
		{name: "max_active = 2 grants two overlapping grants, not three", policy: "capped2",
			events: func(w *world) {
				w.request(gA, "capped2", "alice", "alice", at(0), nil, 2*time.Hour, false)
				w.decide(state.EventApprove, gA, "carol", at(time.Minute), nil)
				w.request(gB, "capped2", "alice", "alice", at(2*time.Minute), nil, time.Hour, false)
				w.decide(state.EventApprove, gB, "carol", at(3*time.Minute), nil)
				w.request(gC, "capped2", "alice", "alice", at(4*time.Minute), nil, time.Hour, false)
				w.decide(state.EventApprove, gC, "carol", at(5*time.Minute), nil)
			},
			now:  at(6 * time.Minute),
			want: map[string]string{gA: StatusApproved, gB: StatusApproved, gC: StatusRefused}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			w := newWorld(t)
			w.addPolicy("capped2", func(p *config.Policy) { p.MaxActive = 2; p.RequestTTL = 24 * time.Hour })
			tc.events(w)
			b := w.replay(tc.now)
			for id, want := range tc.want {
				rec, _ := b.Record(id)
				if rec.Status != want {
					t.Errorf("%s: status %q (%s), want %q\nwarnings:\n%s", id, rec.Status, rec.Refusal, want, warningsText(b.Warnings()))
				}
				if want == StatusRefused && !hasWarning(b.Warnings(), id+" does not count: alice already held") {
					t.Errorf("no max_active warning names %s:\n%s", id, warningsText(b.Warnings()))
				}
			}
		})
	}
}

// TestARequestWithoutRequestTTLWaitsADay: a policy that sets no
// request_ttl gives approvers 24 hours; an approval at that instant is too
// late.
func TestARequestWithoutRequestTTLWaitsADay(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		after  time.Duration
		counts bool
	}{
		{"a second before a day", 24*time.Hour - time.Second, true},
		{"at the exact day", 24 * time.Hour, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			w := newWorld(t)
			w.addPolicy("nottl", func(p *config.Policy) {})
			w.request(gA, "nottl", "alice", "alice", at(0), nil, time.Hour, false)
			ev := w.decisionEvent(state.EventApprove, gA, "carol", at(tc.after), nil)
			_, ref := w.replay(ev.Time).Check(ev)
			w.chain(ev)
			rec, _ := w.replay(ev.Time).Record(gA)
			if tc.counts != (ref == nil) || tc.counts != (rec.Status == StatusApproved) {
				t.Fatalf("approval %s after the request: check %v, status %s; want counted=%v", tc.after, ref, rec.Status, tc.counts)
			}
			if !rec.ExpiresAt.Equal(at(24 * time.Hour)) {
				t.Errorf("the request expires at %s, want %s", stamp(rec.ExpiresAt), stamp(at(24*time.Hour)))
			}
			if !tc.counts && !strings.Contains(ref.Interactive(), "request_ttl 24h0m0s") {
				t.Errorf("the refusal does not name the default request_ttl: %s", ref.Interactive())
			}
		})
	}
}

// TestRefusalsTellWhoMayAct: the CLI's refusal names who could do it
// instead; a refusal with no advice shows its reason.
func TestRefusalsTellWhoMayAct(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	w.request(gA, "bg", "alice", "alice", at(0), nil, time.Hour, true)
	w.request(gB, "ops", "bob", "bob", at(0), nil, time.Hour, false)
	b := w.replay(at(time.Minute))

	_, ref := b.Check(w.decisionEvent(state.EventReview, gA, "erin", at(time.Minute), nil))
	if ref == nil || ref.Interactive() != "erin is not an approver of policy.bg (approvers: carol, dave)" {
		t.Errorf("review by a non-approver: %v", ref)
	}
	_, ref = b.Check(w.decisionEvent(state.EventApprove, gB, "erin", at(time.Minute), nil))
	if ref == nil || ref.Advice != "" || ref.Interactive() != ref.Reason || ref.Error() != ref.Reason ||
		ref.Reason != "erin is not an approver of policy.ops (approvers: carol, dave)" {
		t.Errorf("approval by a non-approver: %+v", ref)
	}
}

// TestAReplayedSignatureIsNamedAsSuch: a signature copied from one ledger
// event onto another does not count, and the warning says where it came
// from, rather than calling it a mere forgery.
func TestAReplayedSignatureIsNamedAsSuch(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		build func(w *world) (copied state.Event, onto state.Event)
		want  string
	}{
		{name: "an approval's signature onto an approval of another grant",
			build: func(w *world) (state.Event, state.Event) {
				w.request(gA, "ops", "alice", "alice", at(0), nil, time.Hour, false)
				w.request(gB, "ops", "bob", "bob", at(0), nil, time.Hour, false)
				src := w.decide(state.EventApprove, gA, "carol", at(time.Minute), nil)
				ev := w.decisionEvent(state.EventApprove, gB, "carol", at(time.Minute), nil)
				return src, ev
			},
			want: "replayed signature: it was made for ledger event 3 (approve of " + gA + ")"},
		{name: "a request's signature onto another request",
			build: func(w *world) (state.Event, state.Event) {
				src := w.request(gA, "ops", "alice", "alice", at(0), nil, time.Hour, false)
				ev := w.requestEvent(gB, "ops", "alice", "alice", at(0), nil, 2*time.Hour, false)
				return src, ev
			},
			want: "replayed signature: it was made for ledger event 1 (request of " + gA + ")"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			w := newWorld(t)
			src, ev := tc.build(w)
			ev.Sig = src.Sig
			w.chain(ev)
			b := w.replay(at(2 * time.Minute))
			if !hasWarning(b.Warnings(), tc.want) {
				t.Fatalf("no warning %q:\n%s", tc.want, warningsText(b.Warnings()))
			}
			if rec, _ := b.Record(gB); rec.Status == StatusApproved {
				t.Fatalf("%s counts with a replayed signature", gB)
			}
		})
	}
}

// TestGrantListShowsARevokedGrantBlockWithoutLedgerGrants: the records
// (grant list) include a revoked grant block when the ledger holds no
// ledger grant at all.
func TestGrantListShowsARevokedGrantBlockWithoutLedgerGrants(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	w.chain(w.make(state.EventRevoke, "carol", at(30*time.Minute), state.GrantDecision{Grant: "grant.alice_chg1", Block: BlockDigest(w.cfg.Grants[0])}))
	recs := w.replay(at(time.Hour)).Records()
	if len(recs) != 1 || recs[0].ID != "grant.alice_chg1" || recs[0].Status != StatusRevoked || recs[0].RevokedBy != "carol" {
		t.Fatalf("records: %+v", recs)
	}
}

// TestCheckShowsWhatTheGrantWouldBecome: before writing, the CLI shows the
// grant as the proposed event would leave it.
func TestCheckShowsWhatTheGrantWouldBecome(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	b := w.replay(at(0))
	rec, ref := b.Check(w.requestEvent(gA, "bg", "alice", "alice", at(0), nil, time.Hour, true))
	if ref != nil || rec.ID != gA || rec.Status != StatusApproved || !rec.Start.Equal(at(0)) || !rec.End.Equal(at(time.Hour)) || !rec.Unreviewed {
		t.Errorf("a break-glass request would leave %+v (%v), want %s approved from %s to %s, unreviewed", rec, ref, gA, stamp(at(0)), stamp(at(time.Hour)))
	}
	rec, ref = b.Check(w.requestEvent(gB, "ops", "bob", "bob", at(0), nil, time.Hour, false))
	if ref != nil || rec.ID != gB || rec.Status != StatusPending || !rec.ExpiresAt.Equal(at(24*time.Hour)) {
		t.Errorf("a request would leave %+v (%v), want %s pending until %s", rec, ref, gB, stamp(at(24*time.Hour)))
	}
}

// TestARequestNoOneCouldApproveIsRefusedWhenWritten: when the policy's
// approvers, less the requester and the principal, are too few for its
// approvals, the request is refused before it is written.
func TestARequestNoOneCouldApproveIsRefusedWhenWritten(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name      string
		approvers []string
		refused   bool
	}{
		{"one approver left of two needed", []string{"alice", "carol"}, true},
		{"exactly two left", []string{"alice", "carol", "dave"}, false},
		{"more than enough", []string{"alice", "carol", "dave", "frank"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			w := newWorld(t)
			w.addPolicy("pair", func(p *config.Policy) { p.Approvals = 2; p.Approvers = tc.approvers; p.RequestTTL = time.Hour })
			_, ref := w.replay(at(0)).Check(w.requestEvent(gA, "pair", "alice", "alice", at(0), nil, time.Hour, false))
			if !tc.refused {
				if ref != nil {
					t.Fatalf("refused: %v", ref)
				}
				return
			}
			if ref == nil || ref.Rule != RuleConforms || !strings.Contains(ref.Reason, "policy.pair needs 2 distinct approval(s) from alice, carol, not the requester; it has 1") {
				t.Fatalf("refusal %v, want %s naming the approvals it cannot gather", ref, RuleConforms)
			}
		})
	}
}

// TestABindingRefusalQuotesTheRequestNamed: a decision that names another
// request is refused with the request it named, as written (hashes cut to
// 12 characters), and the one in the ledger.
func TestABindingRefusalQuotesTheRequestNamed(t *testing.T) {
	t.Parallel()
	for _, named := range []string{"0123abcd", "0123456789ab", strings.Repeat("f", 64)} {
		t.Run(named, func(t *testing.T) {
			t.Parallel()
			w := newWorld(t)
			w.request(gA, "ops", "alice", "alice", at(0), nil, time.Hour, false)
			_, ref := w.replay(at(time.Minute)).Check(w.make(state.EventApprove, "carol", at(time.Minute), state.GrantDecision{Grant: gA, Request: named}))
			short := named
			if len(short) > 12 {
				short = short[:12]
			}
			want := "it names request " + short + ", but the request of " + gA + " in the ledger is " + w.requestHash(gA)[:12] + ";"
			if ref == nil || ref.Rule != RuleBinding || !strings.Contains(ref.Reason, want) {
				t.Fatalf("refusal %v, want %q", ref, want)
			}
		})
	}
}

// TestBreakGlassBudgetAdviceSaysWhatIsLeft: refused for the budget, the
// person breaking glass is told how much they may still take, and nothing
// when nothing is left.
func TestBreakGlassBudgetAdviceSaysWhatIsLeft(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		prior []time.Duration // earlier break-glass grants, back to back
		ask   time.Duration
		left  string // "" when nothing is left
	}{
		{"half an hour left", []time.Duration{time.Hour, 30 * time.Minute}, time.Hour, ", or break glass for at most 30m0s"},
		{"nothing left", []time.Duration{time.Hour, time.Hour}, time.Minute, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			w := newWorld(t)
			now := at(0)
			for i, d := range tc.prior {
				w.request([]string{gA, gB}[i], "budget", "alice", "alice", now, nil, d, true)
				now = now.Add(d)
			}
			_, ref := w.replay(now).Check(w.requestEvent(gC, "budget", "alice", "alice", now, nil, tc.ask, true))
			if ref == nil || ref.Rule != RuleBreakGlassBudget {
				t.Fatalf("refusal %v, want %s", ref, RuleBreakGlassBudget)
			}
			if got := strings.Contains(ref.Advice, "or break glass for at most"); got != (tc.left != "") ||
				tc.left != "" && !strings.HasSuffix(ref.Advice, tc.left) {
				t.Fatalf("advice %q, want it to end %q", ref.Advice, tc.left)
			}
		})
	}
}

// TestAnEventByAnUndeclaredActorDoesNotCount: only declared actors (with
// an ssh_key) sign grant events.
func TestAnEventByAnUndeclaredActorDoesNotCount(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	w.request(gA, "ops", "alice", "alice", at(0), nil, time.Hour, false)
	ev := w.decisionEvent(state.EventApprove, gA, "carol", at(time.Minute), nil)
	ev.Actor = "mallory"
	w.chain(ev)
	b := w.replay(at(2 * time.Minute))
	if rec, _ := b.Record(gA); rec.Status != StatusPending {
		t.Fatalf("%s is %s after an approval by an undeclared actor", gA, rec.Status)
	}
	if !hasWarning(b.Warnings(), `"mallory" is not a declared actor`) {
		t.Fatalf("no warning names the undeclared actor:\n%s", warningsText(b.Warnings()))
	}
}

// TestDenyingWhatIsNotPendingSaysWhatToDoInstead: a deny of an approved
// grant points at revoke; of a withdrawn one it says what it is.
func TestDenyingWhatIsNotPendingSaysWhatToDoInstead(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	w.request(gA, "ops", "alice", "alice", at(0), nil, time.Hour, false)
	w.decide(state.EventApprove, gA, "carol", at(time.Minute), nil)
	w.request(gB, "ops", "bob", "bob", at(0), nil, time.Hour, false)
	w.decide(state.EventRevoke, gB, "bob", at(time.Minute), nil)
	b := w.replay(at(2 * time.Minute))

	_, ref := b.Check(w.decisionEvent(state.EventDeny, gA, "dave", at(2*time.Minute), nil))
	if ref == nil || ref.Rule != RuleNotPending || ref.Interactive() != "it is already approved; end it with jitform grant revoke "+gA+" --reason ..." {
		t.Errorf("deny of an approved grant: %+v", ref)
	}
	_, ref = b.Check(w.decisionEvent(state.EventDeny, gB, "dave", at(2*time.Minute), nil))
	if ref == nil || ref.Rule != RuleNotPending || ref.Interactive() != "it is no longer pending (revoked)" {
		t.Errorf("deny of a withdrawn request: %+v", ref)
	}
}

// TestAGrantRefusedAfterApprovalHoldsNoMaxActivePlace: once a grant stops
// counting (its request was replaced after approval), its principal may
// request again under a max_active policy.
func TestAGrantRefusedAfterApprovalHoldsNoMaxActivePlace(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	w.request(gA, "capped", "alice", "alice", at(0), nil, 2*time.Hour, false)
	w.decide(state.EventApprove, gA, "carol", at(time.Minute), nil)
	w.chain(w.make(state.EventApprove, "dave", at(2*time.Minute), state.GrantDecision{Grant: gA, Request: strings.Repeat("0", 64)}))
	b := w.replay(at(3 * time.Minute))
	if rec, _ := b.Record(gA); rec.Status != StatusRefused {
		t.Fatalf("%s is %s, want refused", gA, rec.Status)
	}
	if rec, ref := b.Check(w.requestEvent(gB, "capped", "alice", "alice", at(3*time.Minute), nil, time.Hour, false)); ref != nil || rec.Status != StatusPending {
		t.Fatalf("a new request after the refused grant: %v (%s)", ref, rec.Status)
	}
}
