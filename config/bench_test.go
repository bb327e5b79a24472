package config

import (
	"fmt"
	"strings"
	"testing"
)

// benchRepo is a repository of `targets` LDIF targets with ten groups each,
// one policy per target and `grantsPerGroup` grants per group.
func benchRepo(targets, grantsPerGroup int) map[string][]byte {
	var t, g, p, gr strings.Builder
	for ti := range targets {
		fmt.Fprintf(&t, "target \"ldif\" \"t%d\" {\n  path = \"t%d.ldif\"\n}\n\n", ti, ti)
		var refs []string
		for gi := range 10 {
			name := fmt.Sprintf("g%d_%d", ti, gi)
			refs = append(refs, "group."+name)
			fmt.Fprintf(&g, "group %q {\n  target    = target.ldif.t%d\n  dn        = \"cn=%s,ou=groups,dc=example,dc=org\"\n  members   = [\"svc\"]\n  exclusive = true\n}\n\n", name, ti, name)
		}
		fmt.Fprintf(&p, "policy \"p%d\" {\n  groups         = [%s]\n  eligible       = [\"alice\", \"bob\"]\n  max_duration   = \"4h\"\n  approvers      = [\"carol\", \"dave\"]\n  ticket_pattern = \"^CHG[0-9]+$\"\n  windows        = [\"Mon-Fri 07:00-19:00 Europe/Berlin\"]\n}\n\n", ti, strings.Join(refs, ", "))
		for i := range 10 * grantsPerGroup {
			fmt.Fprintf(&gr, "grant \"g%d_%d\" {\n  policy      = policy.p%d\n  principal   = \"alice\"\n  start       = \"2026-11-%02dT08:00:00Z\"\n  duration    = \"2h\"\n  ticket      = \"CHG%d\"\n  approved_by = [\"carol\"]\n}\n\n", ti, i, ti, 23+i%5, i)
		}
	}
	return map[string][]byte{"targets.hcl": []byte(t.String()), "groups.hcl": []byte(g.String()),
		"policies.hcl": []byte(p.String()), "grants.hcl": []byte(gr.String())}
}

func BenchmarkLoad(b *testing.B) {
	for _, size := range []struct{ targets, grantsPerGroup int }{{10, 1}, {100, 1}, {100, 10}, {500, 2}} {
		files := benchRepo(size.targets, size.grantsPerGroup)
		b.Run(fmt.Sprintf("groups=%d/grants=%d", size.targets*10, size.targets*10*size.grantsPerGroup), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				cfg, diags := LoadFiles("bench", files, testOptions())
				if diags.HasErrors() || len(cfg.Groups) != size.targets*10 {
					b.Fatal(renderDiags(diags))
				}
			}
		})
	}
}

func BenchmarkCheckGrants(b *testing.B) {
	cfg, diags := LoadFiles("bench", benchRepo(100, 10), testOptions())
	if diags.HasErrors() {
		b.Fatal(renderDiags(diags))
	}
	b.ReportAllocs()
	for b.Loop() {
		if d := CheckGrants(cfg); d.HasErrors() {
			b.Fatal(renderDiags(d))
		}
	}
}
