package report

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/jitform/jitform/config"
	"github.com/jitform/jitform/state"
)

// benchLedger builds a ledger of about n events shaped like a busy
// deployment: 10 groups x 100 members, 1,000 repository grants, 1,000 signed
// ledger grants (request + approval), and for each grant cycle an add and a
// removal (intent and outcome each); 1 % of outcomes fail or are unknown.
func benchLedger(tb testing.TB, n int) (*config.Config, []state.Event) {
	target := &config.Target{Kind: "ldif", Name: "dir", Addr: "target.ldif.dir", LDIF: &config.LDIFTarget{}}
	cfg := &config.Config{Targets: []*config.Target{target}}
	var groups []string
	for g := range 10 {
		addr := fmt.Sprintf("group.g%d", g)
		groups = append(groups, addr)
		cfg.Groups = append(cfg.Groups, &config.Group{Name: fmt.Sprintf("g%d", g), Addr: addr, BaseAddr: addr, Target: target, Exclusive: true})
	}
	keys := map[string]ssh.Signer{}
	for _, name := range []string{"req", "appr"} {
		seed := make([]byte, ed25519.SeedSize)
		copy(seed, name)
		s, err := ssh.NewSignerFromKey(ed25519.NewKeyFromSeed(seed))
		if err != nil {
			tb.Fatal(err)
		}
		keys[name] = s
		cfg.Actors = append(cfg.Actors, &config.Actor{Name: name, SSHKey: string(ssh.MarshalAuthorizedKey(s.PublicKey()))})
	}
	cfg.Policies = []*config.Policy{
		{Name: "repo", Addr: "policy.repo", Groups: groups, Eligible: []string{"req"}, MaxDuration: 8 * time.Hour, Approvals: 1,
			Approvers: []string{"appr"}, Approval: config.ApprovalRepository, RequestTTL: 24 * time.Hour},
		{Name: "led", Addr: "policy.led", Groups: groups, Eligible: []string{"req"}, MaxDuration: 8 * time.Hour, Approvals: 1,
			Approvers: []string{"appr"}, Approval: config.ApprovalLedger, RequestTTL: 24 * time.Hour},
	}
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	events := make([]state.Event, 0, n+8)
	add := func(ev state.Event) {
		ev.Seq = int64(len(events) + 1)
		events = append(events, ev)
	}
	plain := func(t time.Time, typ string, payload any) {
		raw, _ := json.Marshal(payload)
		add(state.Event{Time: t, Type: typ, Actor: state.SystemActor, Payload: raw})
	}
	signed := func(t time.Time, typ, actor string, payload any) {
		ev, err := state.NewSignedEvent(typ, actor, t, payload)
		if err != nil {
			tb.Fatal(err)
		}
		if err := state.SignEvent(&ev, keys[actor]); err != nil {
			tb.Fatal(err)
		}
		add(ev)
	}
	const alphabet = "abcdefghijklmnopqrstuvwxyz234567"
	gid := func(i int) string {
		out := make([]byte, 10)
		for k := 9; k >= 0; k-- {
			out[k] = alphabet[i%32]
			i /= 32
		}
		return "g-" + string(out)
	}
	t := base
	for cycle := 0; len(events) < n; cycle++ {
		group := groups[cycle%len(groups)]
		member := fmt.Sprintf("uid=u%d,ou=people,dc=example,dc=org", cycle%100)
		grant := ""
		switch {
		case cycle < 1000:
			grant = fmt.Sprintf("grant.r%d", cycle)
			cfg.Grants = append(cfg.Grants, &config.Grant{Name: fmt.Sprintf("r%d", cycle), Addr: grant, Policy: "policy.repo",
				Principal: fmt.Sprintf("u%d", cycle%100), Start: t, Duration: time.Hour, ApprovedBy: []string{"appr"}})
		case cycle < 2000:
			grant = gid(cycle)
			start := t
			signed(t.Add(-time.Minute), state.EventRequest, "req", state.GrantRequest{ID: grant, Policy: "policy.led",
				Principal: fmt.Sprintf("u%d", cycle%100), Start: &start, Duration: "1h0m0s", Reason: "bench"})
			signed(t.Add(-30*time.Second), state.EventApprove, "appr", state.GrantDecision{Grant: grant})
		default:
			grant = fmt.Sprintf("grant.other%d", cycle)
		}
		id := fmt.Sprintf("run%d-", cycle)
		plain(t, state.EventChangeIntent, state.Change{ID: id + "a", Action: "add", Group: group, Target: target.Addr,
			Member: member, Reason: "grant", Grant: grant, Policy: "policy.repo"})
		status, typ := "done", state.EventChangeApplied
		if cycle%100 == 99 {
			status, typ = "unknown", state.EventChangeFailed
		}
		plain(t.Add(time.Second), typ, state.ChangeOutcome{ID: id + "a", Status: status})
		end := t.Add(time.Hour + 20*time.Second)
		plain(end, state.EventChangeIntent, state.Change{ID: id + "r", Action: "remove", Group: group, Target: target.Addr,
			Member: member, Reason: "window_ended", Grant: grant, Policy: "policy.repo"})
		status, typ = "done", state.EventChangeApplied
		if cycle%100 == 49 {
			status, typ = "failed", state.EventChangeFailed
		}
		plain(end.Add(time.Second), typ, state.ChangeOutcome{ID: id + "r", Status: status, Error: ""})
		t = t.Add(2 * time.Minute)
	}
	return cfg, events
}

// BenchmarkBuild1M is the report over a million ledger events, in memory
// (docs/report.md has the numbers).
func BenchmarkBuild1M(b *testing.B) {
	cfg, events := benchLedger(b, 1_000_000)
	since, until := events[0].Time, events[len(events)-1].Time
	b.ResetTimer()
	for range b.N {
		r := Build(Input{Config: cfg, Events: events, Since: since, Until: until, Now: until})
		if r.Totals.Members == 0 || r.Expiry.Windows == 0 {
			b.Fatal("empty report")
		}
	}
	b.ReportMetric(float64(len(events)), "events")
}

// BenchmarkReadAndBuild1M adds reading and verifying the local ledger file
// (the hash chain) to the report: what `jitform report` costs end to end,
// minus loading the HCL.
func BenchmarkReadAndBuild1M(b *testing.B) {
	cfg, events := benchLedger(b, 1_000_000)
	dir := b.TempDir()
	be, err := state.NewLocal(dir)
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	for i := 0; i < len(events); i += 50_000 {
		batch := make([]state.Event, 0, 50_000)
		for _, ev := range events[i:min(i+50_000, len(events))] {
			ev.Seq, ev.Prev, ev.Hash = 0, "", ""
			batch = append(batch, ev)
		}
		if _, err := be.Append(ctx, batch...); err != nil {
			b.Fatal(err)
		}
	}
	since, until := events[0].Time, events[len(events)-1].Time
	// The two phases' wall and CPU time (all threads, GC included) are
	// reported apart: on a shared machine wall time depends on the load.
	var readWall, buildWall, readCPU, buildCPU time.Duration
	b.ResetTimer()
	for range b.N {
		c0, _ := processCPU()
		t0 := time.Now()
		evs, err := be.AuditEvents(ctx) // what jitform report reads
		if err != nil {
			b.Fatal(err)
		}
		t1 := time.Now()
		c1, _ := processCPU()
		r := Build(Input{Config: cfg, Events: evs, Since: since, Until: until, Now: until})
		if r.LedgerEvents != len(events) {
			b.Fatalf("read %d events, want %d", r.LedgerEvents, len(events))
		}
		c2, _ := processCPU()
		readWall += t1.Sub(t0)
		buildWall += time.Since(t1)
		readCPU += c1 - c0
		buildCPU += c2 - c1
	}
	n := float64(b.N)
	b.ReportMetric(readWall.Seconds()/n, "read-s/op")
	b.ReportMetric(buildWall.Seconds()/n, "build-s/op")
	if _, ok := processCPU(); ok {
		b.ReportMetric(readCPU.Seconds()/n, "read-cpu-s/op")
		b.ReportMetric(buildCPU.Seconds()/n, "build-cpu-s/op")
	}
}
