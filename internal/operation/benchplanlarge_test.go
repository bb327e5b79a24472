package operation

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jitform/jitform/planner"
	"github.com/jitform/jitform/providers"
	"github.com/jitform/jitform/providers/ldif"
	"github.com/jitform/jitform/state"
)

// largeAt is the plan time of the large estate: about a third of its
// grants are active then.
var largeAt = time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC)

// writeLargeRepo writes the issue-11 estate: an LDIF directory of 1,000
// users and `groups` groupOfNames of 20 members, each declared exclusive
// with exactly those members (no drift); a policy per 10 groups with 20
// eligible users; and `grants` repository grants spread over the 12 hours
// around largeAt, in files of 25,000 (a file may hold 8 MiB).
func writeLargeRepo(dir string, groups, grants int) error {
	if err := os.WriteFile(filepath.Join(dir, "dir.ldif"), []byte(benchSeed(groups)), 0o600); err != nil {
		return err
	}
	var src strings.Builder
	src.WriteString("target \"ldif\" \"dir\" {\n  path = \"dir.ldif\"\n}\n\n")
	for g := range groups {
		fmt.Fprintf(&src, "group \"g%d\" {\n  target    = target.ldif.dir\n  dn        = \"cn=g%d,ou=groups,dc=example,dc=org\"\n  exclusive = true\n  members   = [", g, g)
		for k := range 20 {
			if k > 0 {
				src.WriteString(", ")
			}
			fmt.Fprintf(&src, "\"u%d\"", benchMember(g, k))
		}
		src.WriteString("]\n}\n\n")
	}
	policies := max(1, groups/10)
	eligible := func(p, k int) int { return (p*13 + k*47) % benchUsers }
	for p := range policies {
		var gs, el []string
		for k := 0; k < 10 && p*10+k < groups; k++ {
			gs = append(gs, fmt.Sprintf("group.g%d", p*10+k))
		}
		for k := range 20 {
			el = append(el, fmt.Sprintf("%q", fmt.Sprintf("u%d", eligible(p, k))))
		}
		fmt.Fprintf(&src, "policy \"p%d\" {\n  groups         = [%s]\n  eligible       = [%s]\n  max_duration   = \"4h\"\n  approvers      = [\"carol\", \"dave\"]\n  ticket_pattern = \"^CHG[0-9]+$\"\n  windows        = [\"daily 00:00-24:00 UTC\"]\n}\n\n",
			p, strings.Join(gs, ", "), strings.Join(el, ", "))
	}
	if err := os.WriteFile(filepath.Join(dir, "main.hcl"), []byte(src.String()), 0o600); err != nil {
		return err
	}
	const perFile = 25_000
	for f := 0; f*perFile < grants; f++ {
		var b strings.Builder
		for i := f * perFile; i < min(grants, (f+1)*perFile); i++ {
			p := i % policies
			start := largeAt.Add(time.Duration(i%720-360) * time.Minute)
			fmt.Fprintf(&b, "grant \"gr%d\" {\n  policy      = policy.p%d\n  principal   = \"u%d\"\n  start       = %q\n  duration    = \"%dh\"\n  ticket      = \"CHG%d\"\n  approved_by = [\"carol\"]\n}\n\n",
				i, p, eligible(p, (i/policies)%20), start.Format(time.RFC3339), 1+i%3, i)
		}
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("grants%d.hcl", f)), []byte(b.String()), 0o600); err != nil {
			return err
		}
	}
	return nil
}

// BenchmarkPlanLarge: operation.Plan and the text rendering on 10,000 groups
// and 100,000 grants (LDIF directory, empty ledger), end to end from the
// files; the goal (issue 11) is 3 s. Phases as in BenchmarkPlanSlapd.
func BenchmarkPlanLarge(b *testing.B) {
	dir := b.TempDir()
	if err := writeLargeRepo(dir, 10_000, 100_000); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	var load, gather, compute, render time.Duration
	for b.Loop() {
		ctx := context.Background()
		l, err := state.NewLocal(dir)
		if err != nil {
			b.Fatal(err)
		}
		opts := Options{Dir: dir, Backend: l, At: largeAt, Registry: providers.Registry{"ldif": ldif.Open}}
		t0 := time.Now()
		cfg, warns, err := LoadConfigContext(ctx, dir, opts.at())
		if err != nil {
			b.Fatal(err)
		}
		t1 := time.Now()
		s, err := prepare(ctx, opts, cfg, warns)
		if err != nil {
			b.Fatal(err)
		}
		t2 := time.Now()
		p, err := s.Plan()
		if err != nil {
			b.Fatal(err)
		}
		t3 := time.Now()
		if err := planner.RenderText(io.Discard, p, false); err != nil {
			b.Fatal(err)
		}
		t4 := time.Now()
		s.Close()
		if len(p.Changes) == 0 || len(p.Errors) > 0 {
			b.Fatalf("%d changes, %d errors (%v)", len(p.Changes), len(p.Errors), p.Errors[:min(3, len(p.Errors))])
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
}

// TestBenchPlanLarge is the harness behind the large row of
// scripts/bench-apply.sh PLAN_ONLY=1, skipped unless JITFORM_BENCH_BIN names
// a jitform binary: `jitform plan --at` on the BenchmarkPlanLarge estate,
// JITFORM_BENCH_RUNS times (default 3); prints the fastest run's wall and
// CPU time and its peak RSS (getrusage), prefixed "BENCHLARGE".
func TestBenchPlanLarge(t *testing.T) {
	bin := os.Getenv("JITFORM_BENCH_BIN")
	if bin == "" {
		t.Skip("JITFORM_BENCH_BIN is not set (scripts/bench-apply.sh sets it)")
	}
	dir := t.TempDir()
	const groups, grants = 10_000, 100_000
	if err := writeLargeRepo(dir, groups, grants); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(bin, "-C", dir, "init").CombinedOutput(); err != nil {
		t.Fatalf("init: %v\n%s", err, out)
	}
	runs, _ := strconv.Atoi(os.Getenv("JITFORM_BENCH_RUNS"))
	if runs <= 0 {
		runs = 3
	}
	var best, cpu time.Duration
	var rss int64
	for range runs {
		cmd := exec.Command(bin, "-C", dir, "plan", "--at", largeAt.Format(time.RFC3339))
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		t0 := time.Now()
		if err := cmd.Run(); err != nil {
			t.Fatalf("plan: %v\n%s", err, stderr.String())
		}
		took := time.Since(t0)
		if !strings.Contains(stdout.String(), "to add") {
			t.Fatalf("the plan has no additions:\n%.2000s", stdout.String())
		}
		if best == 0 || took < best {
			best = took
			cpu = cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
			if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
				rss = ru.Maxrss << 10
			}
		}
	}
	fmt.Printf("BENCHLARGE label=%s groups=%d grants=%d plan_s=%.3f plan_cpu_s=%.3f plan_rss_mb=%.0f\n",
		os.Getenv("JITFORM_BENCH_LABEL"), groups, grants, best.Seconds(), cpu.Seconds(), float64(rss)/(1<<20))
}
