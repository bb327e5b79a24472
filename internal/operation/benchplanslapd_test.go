package operation

import (
	"context"
	"fmt"
	"io"
	"testing"
	"time"

	"github.com/jitform/jitform/internal/testbed/slapdtest"
	"github.com/jitform/jitform/planner"
	"github.com/jitform/jitform/providers"
	"github.com/jitform/jitform/providers/ldap"
	"github.com/jitform/jitform/state"
)

// BenchmarkPlanSlapd is `jitform plan` on the bench-apply workload (1,000
// users, G groupOfNames of 20 members, +2/-2 declared per group) against a
// real slapd, in phases: config load, ledger read and provider reads
// (prepare), the planner, and rendering the text plan. Each phase is
// reported in ms/op, so that a CPU profile (-cpuprofile) can be read
// against them; scripts/bench-apply.sh PLAN_ONLY=1 times the real binary.
func BenchmarkPlanSlapd(b *testing.B) {
	for _, groups := range []int{1000, 5000} {
		s := slapdtest.Start(b, benchSeed(groups))
		dir := b.TempDir()
		if err := benchRepo(dir, s.URL, groups); err != nil {
			b.Fatal(err)
		}
		b.Setenv("JITFORM_BENCH_PASSWORD", slapdtest.RootPW)
		b.Run(fmt.Sprintf("groups=%d", groups), func(b *testing.B) {
			b.ReportAllocs()
			var load, gather, compute, render time.Duration
			for b.Loop() {
				ctx := context.Background()
				l, err := state.NewLocal(dir)
				if err != nil {
					b.Fatal(err)
				}
				opts := Options{Dir: dir, Backend: l, Registry: providers.Registry{"ldap": ldap.Open}}
				t0 := time.Now()
				cfg, warns, err := LoadConfigContext(ctx, dir, opts.at())
				if err != nil {
					b.Fatal(err)
				}
				t1 := time.Now()
				sess, err := prepare(ctx, opts, cfg, warns)
				if err != nil {
					b.Fatal(err)
				}
				t2 := time.Now()
				p, err := sess.Plan()
				if err != nil {
					b.Fatal(err)
				}
				t3 := time.Now()
				if err := planner.RenderText(io.Discard, p, false); err != nil {
					b.Fatal(err)
				}
				t4 := time.Now()
				sess.Close()
				if len(p.Changes) != 4*groups {
					b.Fatalf("%d changes, want %d", len(p.Changes), 4*groups)
				}
				load += t1.Sub(t0)
				gather += t2.Sub(t1)
				compute += t3.Sub(t2)
				render += t4.Sub(t3)
			}
			n := float64(b.N) * 1e6
			b.ReportMetric(float64(load)/n, "load-ms/op")
			b.ReportMetric(float64(gather)/n, "read-ms/op")
			b.ReportMetric(float64(compute)/n, "planner-ms/op")
			b.ReportMetric(float64(render)/n, "render-ms/op")
		})
		s.Stop()
	}
}
