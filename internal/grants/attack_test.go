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
