package ldif

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jitform/jitform/config"
	"github.com/jitform/jitform/providers"
)

// bigDirectory writes an LDIF file with users and groupOfNames groups of
// 50 members each, and returns its path and the groups.
func bigDirectory(b *testing.B, users, groups int) (string, []*config.Group) {
	b.Helper()
	var sb strings.Builder
	sb.WriteString("dn: dc=example,dc=org\nobjectClass: dcObject\ndc: example\n\n")
	for i := range users {
		fmt.Fprintf(&sb, "dn: uid=user%d,ou=people,dc=example,dc=org\nobjectClass: inetOrgPerson\nuid: user%d\ncn: User %d\nsn: %d\n\n", i, i, i, i)
	}
	var gs []*config.Group
	for g := range groups {
		fmt.Fprintf(&sb, "dn: cn=group%d,ou=groups,dc=example,dc=org\nobjectClass: groupOfNames\ncn: group%d\n", g, g)
		for m := range 50 {
			fmt.Fprintf(&sb, "member: UID=user%d, OU=People,DC=example,DC=org\n", (g*50+m)%users)
		}
		sb.WriteString("\n")
		gs = append(gs, group(fmt.Sprintf("g%d", g), fmt.Sprintf("cn=group%d,ou=groups,dc=example,dc=org", g)))
	}
	path := filepath.Join(b.TempDir(), "big.ldif")
	if err := os.WriteFile(path, []byte(sb.String()), 0o600); err != nil {
		b.Fatal(err)
	}
	return path, gs
}

// BenchmarkOpenRead: parse the file and read every group (what plan does).
func BenchmarkOpenRead(b *testing.B) {
	for _, size := range []struct{ users, groups int }{{1000, 100}, {10000, 1000}} {
		b.Run(fmt.Sprintf("users=%d/groups=%d", size.users, size.groups), func(b *testing.B) {
			path, gs := bigDirectory(b, size.users, size.groups)
			ctx := context.Background()
			for b.Loop() {
				tg, err := Open(ctx, ldifTarget(path, ""), providers.Options{})
				if err != nil {
					b.Fatal(err)
				}
				if _, err := tg.Read(ctx, gs); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkApply: one add and one remove in one group, one atomic write.
func BenchmarkApply(b *testing.B) {
	for _, size := range []struct{ users, groups int }{{1000, 100}, {10000, 1000}} {
		b.Run(fmt.Sprintf("users=%d/groups=%d", size.users, size.groups), func(b *testing.B) {
			path, gs := bigDirectory(b, size.users, size.groups)
			ctx := context.Background()
			tg, err := Open(ctx, ldifTarget(path, ""), providers.Options{})
			if err != nil {
				b.Fatal(err)
			}
			a, r := fmt.Sprintf("uid=user%d,ou=people,dc=example,dc=org", size.users-1), "uid=user0,ou=people,dc=example,dc=org"
			for b.Loop() {
				outs, err := tg.Apply(ctx, []providers.GroupChange{{Group: gs[0], Changes: []providers.MemberChange{add(a), remove(r)}}})
				if err != nil || outs[0].Status != providers.Done {
					b.Fatalf("%v %+v", err, outs)
				}
				a, r = r, a
			}
		})
	}
}
