package ldap

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/jitform/jitform/config"
	"github.com/jitform/jitform/internal/testbed/slapdtest"
	"github.com/jitform/jitform/providers"
)

// benchUsers is the user pool the benchmark's groups draw members from.
const benchUsers = 1000

// benchSeed is N groupOfNames of 5 members each plus the user pool.
func benchSeed(groups int) string {
	var b strings.Builder
	for i := 0; i < benchUsers; i++ {
		fmt.Fprintf(&b, "dn: uid=u%d,ou=people,dc=example,dc=org\nobjectClass: inetOrgPerson\nuid: u%d\ncn: U%d\nsn: U\n\n", i, i, i)
	}
	for g := 0; g < groups; g++ {
		fmt.Fprintf(&b, "dn: cn=g%d,ou=groups,dc=example,dc=org\nobjectClass: groupOfNames\ncn: g%d\n", g, g)
		for k := 0; k < 5; k++ {
			fmt.Fprintf(&b, "member: uid=u%d,ou=people,dc=example,dc=org\n", (g*7+k*131)%benchUsers)
		}
		b.WriteString("\n")
	}
	return b.String()
}

// BenchmarkPlanReads is the plan phase against one slapd: open (StartTLS,
// bind), resolve 100 principals, read every group. It reports the LDAP
// operations per plan: all of them, and those that read groups.
func BenchmarkPlanReads(b *testing.B) {
	for _, n := range []int{100, 1000, 5000} {
		b.Run(fmt.Sprintf("groups=%d", n), func(b *testing.B) {
			s := slapdtest.Start(b, benchSeed(n))
			tg := ldapTarget(s, nil)
			gs := make([]*config.Group, n)
			for i := range gs {
				gs[i] = group(tg, fmt.Sprintf("g%d", i), fmt.Sprintf("cn=g%d,ou=groups,dc=example,dc=org", i))
			}
			principals := make([]string, 100)
			for i := range principals {
				principals[i] = fmt.Sprintf("u%d", i*7)
			}
			ctx := context.Background()
			var ops, readOps int64
			b.ResetTimer()
			for b.Loop() {
				p, err := Open(ctx, tg, providers.Options{})
				if err != nil {
					b.Fatal(err)
				}
				res, err := p.Resolve(ctx, principals)
				if err != nil {
					b.Fatal(err)
				}
				for _, pr := range principals {
					if res[pr].Err != nil {
						b.Fatal(res[pr].Err)
					}
				}
				before := p.(Counter).Ops()
				obs, err := p.Read(ctx, gs)
				if err != nil {
					b.Fatal(err)
				}
				for _, g := range gs {
					if o := obs[g.Addr]; o.Err != nil || len(o.Members) != 5 {
						b.Fatalf("%s: %d members, %v", g.Addr, len(o.Members), o.Err)
					}
				}
				readOps = p.(Counter).Ops() - before
				ops = p.(Counter).Ops()
				p.Close()
			}
			b.ReportMetric(float64(ops), "ldap-ops/plan")
			b.ReportMetric(float64(readOps), "read-ops/plan")
		})
	}
}
