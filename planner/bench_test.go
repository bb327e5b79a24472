package planner

import (
	"fmt"
	"math/rand/v2"
	"regexp"
	"testing"
	"time"

	"github.com/jitform/jitform/config"
	"github.com/jitform/jitform/providers"
)

// BenchmarkPlan plans a synthetic estate: N groups on 10 directories, one
// policy per 10 groups, 10N grants spread around now (about a third
// active), 50,000 principals. Goal: N=10,000 (100,000 grants) under 1 s,
// growing linearly with N.
func BenchmarkPlan(b *testing.B) {
	for _, n := range []int{1000, 10000} {
		in := syntheticInput(n, 10*n, 50000)
		b.Run(fmt.Sprintf("groups=%d", n), func(b *testing.B) {
			b.ReportAllocs()
			var changes int
			for b.Loop() {
				p, err := Compute(in)
				if err != nil {
					b.Fatal(err)
				}
				changes = len(p.Changes)
			}
			b.ReportMetric(float64(changes), "changes")
		})
	}
}

func syntheticInput(nGroups, nGrants, nPrincipals int) Input {
	rng := rand.New(rand.NewPCG(1, 2))
	now := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	cfg := &config.Config{Digest: "bench"}
	const nTargets = 10
	principal := func(i int) string { return fmt.Sprintf("user%05d", i) }
	id := func(i int) string { return fmt.Sprintf("uid=user%05d,ou=people,dc=corp,dc=example", i) }

	in := Input{
		Config:   cfg,
		Now:      now,
		Observed: make(map[string]providers.Observation, nGroups),
		Resolved: map[string]map[string]providers.Resolution{},
		Ledger:   &LedgerView{Managed: map[string]map[string]Managed{}},
	}
	for t := 0; t < nTargets; t++ {
		tg := &config.Target{Kind: "ldif", Name: fmt.Sprintf("dir%d", t), Addr: fmt.Sprintf("target.ldif.dir%d", t)}
		cfg.Targets = append(cfg.Targets, tg)
		res := make(map[string]providers.Resolution, nPrincipals)
		for p := 0; p < nPrincipals; p++ {
			res[principal(p)] = providers.Resolution{Member: providers.Member{ID: id(p), Name: principal(p)}}
		}
		in.Resolved[tg.Addr] = res
	}
	ticket := regexp.MustCompile(`^CHG[0-9]+$`)
	for i := 0; i < nGroups; i++ {
		g := &config.Group{
			Name:      fmt.Sprintf("g%05d", i),
			Addr:      fmt.Sprintf("group.g%05d", i),
			BaseAddr:  fmt.Sprintf("group.g%05d", i),
			Target:    cfg.Targets[i%nTargets],
			DN:        fmt.Sprintf("cn=g%05d,ou=groups,dc=corp,dc=example", i),
			Exclusive: i%2 == 0,
		}
		var obs []providers.Member
		for k := 0; k < 3; k++ {
			p := rng.IntN(nPrincipals)
			g.Members = append(g.Members, principal(p))
			obs = append(obs, providers.Member{ID: id(p), Name: principal(p)})
		}
		for k := 0; k < 2; k++ { // strays
			p := rng.IntN(nPrincipals)
			obs = append(obs, providers.Member{ID: id(p), Name: principal(p)})
			if k == 0 {
				in.Ledger.Managed[g.Addr] = map[string]Managed{id(p): {Grant: "grant.gone"}}
			}
		}
		cfg.Groups = append(cfg.Groups, g)
		in.Observed[g.Addr] = providers.Observation{Members: obs}
	}
	nPolicies := max(1, nGroups/10)
	for i := 0; i < nPolicies; i++ {
		pol := &config.Policy{
			Name:          fmt.Sprintf("p%05d", i),
			Addr:          fmt.Sprintf("policy.p%05d", i),
			MaxDuration:   4 * time.Hour,
			Approvals:     1,
			Approvers:     []string{"carol", "dave"},
			TicketPattern: ticket,
			Approval:      config.ApprovalRepository,
		}
		for k := 0; k < 10 && i*10+k < nGroups; k++ {
			pol.Groups = append(pol.Groups, cfg.Groups[i*10+k].BaseAddr)
		}
		for p := 0; p < 50; p++ {
			pol.Eligible = append(pol.Eligible, principal(rng.IntN(nPrincipals)))
		}
		cfg.Policies = append(cfg.Policies, pol)
	}
	for i := 0; i < nGrants; i++ {
		pol := cfg.Policies[rng.IntN(nPolicies)]
		start := now.Add(time.Duration(rng.IntN(12*60)-6*60) * time.Minute)
		cfg.Grants = append(cfg.Grants, &config.Grant{
			Name:       fmt.Sprintf("gr%06d", i),
			Addr:       fmt.Sprintf("grant.gr%06d", i),
			Policy:     pol.Addr,
			Principal:  pol.Eligible[rng.IntN(len(pol.Eligible))],
			Start:      start,
			Duration:   time.Duration(1+rng.IntN(4)) * time.Hour,
			Ticket:     fmt.Sprintf("CHG%d", i),
			ApprovedBy: []string{"carol"},
		})
	}
	return in
}
