package state

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"
)

// benchLedger writes n change events in batches of 1,000.
func benchLedger(b *testing.B, n int) *Local {
	b.Helper()
	l, err := NewLocal(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	batch := make([]Event, 0, 1000)
	for i := range n {
		p, _ := json.Marshal(Change{ID: fmt.Sprintf("c-%d", i), PlanID: "p-1", Action: "add", Group: "group.db_admins",
			Target: "target.ldap.corp", Member: fmt.Sprintf("uid=user%d,ou=people,dc=example,dc=org", i), Reason: "grant",
			Grant: "grant.g", Policy: "policy.p", Ticket: "CHG1"})
		batch = append(batch, Event{Time: time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC), Type: EventChangeIntent, Actor: SystemActor, Payload: p})
		if len(batch) == cap(batch) || i == n-1 {
			if _, err := l.Append(context.Background(), batch...); err != nil {
				b.Fatal(err)
			}
			batch = batch[:0]
		}
	}
	return l
}

// BenchmarkEvents: reading and verifying a whole ledger, as every plan does.
func BenchmarkEvents(b *testing.B) {
	for _, n := range []int{1_000, 10_000, 100_000} {
		b.Run(fmt.Sprintf("events=%d", n), func(b *testing.B) {
			l := benchLedger(b, n)
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				events, err := l.Events(context.Background())
				if err != nil || len(events) != n {
					b.Fatalf("%d events, %v", len(events), err)
				}
			}
		})
	}
}

// BenchmarkAppend: one event per call (an apply writes intent, then
// outcome, per change) on a ledger that already holds n events; the cost
// must not grow with n (only the tail is re-read). Dominated by fsync.
func BenchmarkAppend(b *testing.B) {
	for _, n := range []int{0, 100_000} {
		b.Run(fmt.Sprintf("existing=%d", n), func(b *testing.B) {
			l := benchLedger(b, n)
			ev := testEvent("bench", 1)
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				if _, err := l.Append(context.Background(), ev); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkLedgerRead: a ledger of n events of history (members added and
// removed, each change with its outcome), read as `ledger verify` reads it
// (full: every event decoded, checked canonical and hashed) and as plan
// and apply read it (plan: the snapshot and the events after it, here
// none; the snapshot is written by the first read, untimed).
func BenchmarkLedgerRead(b *testing.B) {
	for _, n := range []int{10_000, 100_000, 1_000_000} {
		l, err := NewLocal(b.TempDir())
		if err != nil {
			b.Fatal(err)
		}
		for i := 0; i < n; i += 100_000 {
			churn(b, l, i/4, min(100_000, n-i)/4)
		}
		if _, _, err := l.PlanEvents(context.Background()); err != nil {
			b.Fatal(err)
		}
		b.Run(fmt.Sprintf("events=%d/plan", n), func(b *testing.B) {
			for range b.N {
				if _, _, err := l.PlanEvents(context.Background()); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(fmt.Sprintf("events=%d/full", n), func(b *testing.B) {
			for range b.N {
				events, err := l.Events(context.Background())
				if err != nil || len(events) != n {
					b.Fatalf("%d events, %v", len(events), err)
				}
			}
		})
	}
}
