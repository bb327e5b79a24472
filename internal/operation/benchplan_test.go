package operation

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jitform/jitform/providers"
	"github.com/jitform/jitform/providers/ldif"
	"github.com/jitform/jitform/state"
)

// benchPlanRepo writes the bench-apply workload (1,000 users, G groups of
// 20 members, +2/-2 per group declared) for the LDIF provider, and a
// ledger of n events appended with the state's own Append in large
// batches: a history of members added to and removed from the groups, each
// change with its outcome, as years of applies leave it.
func benchPlanRepo(b *testing.B, groups, events int) string {
	b.Helper()
	dir, err := os.MkdirTemp("", "jitform-benchplan")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.WriteFile(filepath.Join(dir, "dir.ldif"), []byte(benchSeed(groups)), 0o600); err != nil {
		b.Fatal(err)
	}
	var src strings.Builder
	src.WriteString("target \"ldif\" \"dir\" {\n  path = \"dir.ldif\"\n}\n")
	for g := range groups {
		fmt.Fprintf(&src, "group \"g%d\" {\n  target    = target.ldif.dir\n  dn        = \"cn=g%d,ou=groups,dc=example,dc=org\"\n  exclusive = true\n  members   = [", g, g)
		for k := range 22 {
			if k == 18 || k == 19 {
				continue
			}
			if k > 0 {
				src.WriteString(", ")
			}
			fmt.Fprintf(&src, "\"u%d\"", benchMember(g, k))
		}
		src.WriteString("]\n}\n")
	}
	if err := os.WriteFile(filepath.Join(dir, "main.hcl"), []byte(src.String()), 0o600); err != nil {
		b.Fatal(err)
	}
	l, err := state.NewLocal(dir)
	if err != nil {
		b.Fatal(err)
	}
	at := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	batch := make([]state.Event, 0, 20_000)
	for i := 0; i < events; i += 4 {
		for k, action := range []string{"add", "remove"} {
			id := fmt.Sprintf("c-%d-%d", i, k)
			c, _ := json.Marshal(state.Change{ID: id, PlanID: "p", Action: action, Group: fmt.Sprintf("group.g%d", i%groups),
				Target: "target.ldif.dir", Member: benchUser(i), Reason: "grant", Grant: "grant.x"})
			o, _ := json.Marshal(state.ChangeOutcome{ID: id, Status: "done"})
			batch = append(batch,
				state.Event{Time: at, Type: state.EventChangeIntent, Actor: state.SystemActor, Payload: c},
				state.Event{Time: at, Type: state.EventChangeApplied, Actor: state.SystemActor, Payload: o})
		}
		if len(batch) >= cap(batch)-4 || i+4 >= events {
			if _, err := l.Append(context.Background(), batch...); err != nil {
				b.Fatal(err)
			}
			batch = batch[:0]
		}
	}
	return dir
}

func benchPlanOnce(b *testing.B, dir string) {
	l, err := state.NewLocal(dir)
	if err != nil {
		b.Fatal(err)
	}
	p, s, err := Plan(context.Background(), Options{Dir: dir, Backend: l, Registry: providers.Registry{"ldif": ldif.Open}})
	if err != nil {
		b.Fatal(err)
	}
	s.Close()
	if len(p.Changes) == 0 {
		b.Fatal("the plan has no changes")
	}
}

// BenchmarkPlanLDIF: operation.Plan (config load, ledger read and replay, the
// LDIF provider's read, the planner) at 1,000 and 5,000 groups with a
// 100k-event ledger. The first plan (not timed) writes the snapshot.
func BenchmarkPlanLDIF(b *testing.B) {
	for _, groups := range []int{1000, 5000} {
		dir := benchPlanRepo(b, groups, 100_000)
		benchPlanOnce(b, dir)
		b.Run(fmt.Sprintf("groups=%d/events=100000", groups), func(b *testing.B) {
			b.ReportAllocs()
			for range b.N {
				benchPlanOnce(b, dir)
			}
		})
	}
}

// BenchmarkPlanLedgerSize: the same plan at 1,000 groups on a ledger of
// 10k and of 1M events; the goal (issue 11) is < 20% apart. Both ledgers
// are built first and the two are timed in turn, three rounds, so that
// the load of a shared machine falls on both alike.
func BenchmarkPlanLedgerSize(b *testing.B) {
	sizes := []int{10_000, 1_000_000}
	dirs := map[int]string{}
	for _, events := range sizes {
		dirs[events] = benchPlanRepo(b, 1000, events)
		benchPlanOnce(b, dirs[events])
	}
	for range 3 {
		for _, events := range sizes {
			b.Run(fmt.Sprintf("groups=1000/events=%d", events), func(b *testing.B) {
				for range b.N {
					benchPlanOnce(b, dirs[events])
				}
			})
		}
	}
}
