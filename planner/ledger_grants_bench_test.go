package planner

import (
	"fmt"
	"testing"
	"time"

	"github.com/jitform/jitform/state"
)

// BenchmarkLedgerGrants replays a ledger of n requests, each approved by
// two approvers under a 2-of-M policy: every event's signature is verified.
// Reported per replay; ns/event is the number that scales with ledger size.
func BenchmarkLedgerGrants(b *testing.B) {
	for _, n := range []int{100, 1000} {
		b.Run(fmt.Sprintf("grants=%d", n), func(b *testing.B) {
			w := newLedgerWorld(b)
			var events []state.Event
			mk := func(typ, actor string, at time.Time, payload any) state.Event {
				ev, err := state.NewSignedEvent(typ, actor, at, payload)
				if err != nil {
					b.Fatal(err)
				}
				if err := state.SignEvent(&ev, w.keys[actor]); err != nil {
					b.Fatal(err)
				}
				ev.Seq = int64(len(events) + 1)
				ev.Hash = fmt.Sprintf("hash-%d", ev.Seq)
				return ev
			}
			for i := range n {
				id := "g-" + base32ish(i)
				at := t0.Add(time.Duration(i) * time.Minute)
				rq := mk(state.EventRequest, "alice", at, state.GrantRequest{
					ID: id, Policy: "policy.two", Principal: "alice", Duration: "1h0m0s", Reason: "bench"})
				events = append(events, rq)
				events = append(events, mk(state.EventApprove, "carol", at.Add(time.Second), state.GrantDecision{Grant: id, Request: rq.Hash}))
				events = append(events, mk(state.EventApprove, "dave", at.Add(2*time.Second), state.GrantDecision{Grant: id, Request: rq.Hash}))
			}
			now := t0.Add(time.Duration(n) * time.Minute)
			b.ResetTimer()
			for range b.N {
				recs, warns := LedgerGrants(w.cfg, events, now)
				if len(recs) != n || len(warns) != 0 {
					b.Fatalf("%d records, %d warnings", len(recs), len(warns))
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(events)), "ns/event")
		})
	}
}

// base32ish makes a valid grant ID suffix from i.
func base32ish(i int) string {
	const alphabet = "abcdefghijklmnopqrstuvwxyz234567"
	out := make([]byte, 10)
	for k := 9; k >= 0; k-- {
		out[k] = alphabet[i%32]
		i /= 32
	}
	return string(out)
}
