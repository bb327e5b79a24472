package grants

import (
	"testing"
	"time"

	"github.com/jitform/jitform/state"
)

// TestForgedReplacementOfARequest is issue 10's forgery, done with the
// state package's own functions: alice signs a 30-minute request, carol
// approves it, alice signs a 4-hour request under the same ID, swaps it in
// and re-hashes the chain. The ledger verifies; carol's signature still
// verifies (her event is unchanged); only the binding to the request's
// hash shows that she approved another request, so the grant does not
// count, and the warning says why.
func TestForgedReplacementOfARequest(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	w.request(gA, "ops", "alice", "alice", at(0), nil, 30*time.Minute, false)
	w.decide(state.EventApprove, gA, "carol", at(time.Minute), nil)
	if rec, _ := w.replay(at(10 * time.Minute)).Record(gA); rec.Status != StatusApproved || rec.End.Sub(rec.Start) != 30*time.Minute {
		t.Fatalf("before the forgery: a 30m approved grant, got %+v", rec)
	}

	forged := w.requestEvent(gA, "ops", "alice", "alice", at(0), nil, 4*time.Hour, false)
	events := append([]state.Event(nil), w.events...)
	events[0].Payload, events[0].Sig = forged.Payload, forged.Sig
	prev := ""
	for i := range events {
		events[i].Prev = prev
		h, err := state.HashEvent(events[i])
		if err != nil {
			t.Fatal(err)
		}
		events[i].Hash, prev = h, h
	}
	if err := state.Verify(events); err != nil {
		t.Fatalf("the re-hashed chain should verify (that is the attack): %v", err)
	}
	v := NewSSHVerifier(w.cfg, events)
	for _, ev := range events {
		if err := v.Verify(ev); err != nil {
			t.Fatalf("every signature should still verify (that is the attack): event %d: %v", ev.Seq, err)
		}
	}

	b := Replay(w.cfg, v, events, at(10*time.Minute))
	rec, _ := b.Record(gA)
	if rec.Status != StatusRefused || !rec.Denied || len(rec.Approvers) != 0 {
		t.Fatalf("the swapped request must not count: %+v", rec)
	}
	for _, want := range []string{
		"approve of g-aaaaaaaaaa by carol does not count: signed for a different request",
		"g-aaaaaaaaaa does not count: its request was replaced after carol signed a decision on it (approve, ledger event 2)",
	} {
		if !hasWarning(b.Warnings(), want) {
			t.Errorf("no warning says %q:\n%s", want, warningsText(b.Warnings()))
		}
	}
}

// TestBreakGlassDayOfSelfGrants is issue 10's break-glass attack under a
// policy with max_active = 1 and break_glass { max_duration = "1h",
// max_per_day = "2h" }: alice tries 24 back-to-back one-hour self-grants.
// Through the CLI (Check before each write) only the first two are
// written; written anyway (a ledger built without the CLI), only the first
// two count at replay. Asking for them all at once with future starts is
// refused outright: break-glass starts now.
func TestBreakGlassDayOfSelfGrants(t *testing.T) {
	t.Parallel()
	id := func(i int) string { return "g-" + string(rune('a'+i)) + "aaaaaaaaa" }

	t.Run("one an hour, checked before writing", func(t *testing.T) {
		t.Parallel()
		w := newWorld(t)
		var written []string
		for i := range 24 {
			ev := w.requestEvent(id(i), "budget", "alice", "alice", at(time.Duration(i)*time.Hour), nil, time.Hour, true)
			_, ref := w.replay(ev.Time).Check(ev)
			if ref != nil {
				if ref.Rule != RuleBreakGlassBudget {
					t.Fatalf("grant %d refused by %s (%s), want the budget", i, ref.Rule, ref.Reason)
				}
				continue
			}
			w.chain(ev)
			written = append(written, id(i))
		}
		if len(written) != 2 {
			t.Fatalf("%d break-glass grants were accepted in a day, want 2 (max_per_day 2h of 1h grants): %v", len(written), written)
		}
	})

	t.Run("one an hour, all in the ledger", func(t *testing.T) {
		t.Parallel()
		w := newWorld(t)
		for i := range 24 {
			w.request(id(i), "budget", "alice", "alice", at(time.Duration(i)*time.Hour), nil, time.Hour, true)
		}
		b := w.replay(at(24 * time.Hour))
		var open time.Duration
		for _, rec := range b.Records() {
			if rec.Status == StatusApproved {
				open += rec.End.Sub(rec.Start)
			}
		}
		if open != 2*time.Hour {
			t.Fatalf("replay counts %s of break-glass access in a day, want 2h", open)
		}
		if !hasWarning(b.Warnings(), "request "+id(2)+" does not count: break-glass budget: alice already used 2h0m0s of policy.budget's break_glass max_per_day 2h0m0s") {
			t.Fatalf("no budget warning for the third grant:\n%s", warningsText(b.Warnings()))
		}
	})

	t.Run("all at once with future starts", func(t *testing.T) {
		t.Parallel()
		w := newWorld(t)
		b := w.replay(at(0))
		for i := range 24 {
			ev := w.requestEvent(id(i), "bg", "alice", "alice", at(0), ptr(at(time.Duration(i)*time.Hour)), time.Hour, true)
			if _, ref := b.Check(ev); ref == nil || ref.Rule != RuleBreakGlassNow {
				t.Fatalf("break-glass grant %d starting at +%dh: refusal %v, want %s", i, i, ref, RuleBreakGlassNow)
			}
			w.chain(ev)
		}
		for _, rec := range w.replay(at(24 * time.Hour)).Records() {
			if rec.Status != StatusInvalid {
				t.Fatalf("a break-glass request naming a start counts at replay: %+v", rec)
			}
		}
	})
}
