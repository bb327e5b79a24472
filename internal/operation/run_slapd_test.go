package operation

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/jitform/jitform/internal/slapdtest"
	"github.com/jitform/jitform/providers"
	"github.com/jitform/jitform/providers/ldap"
	"github.com/jitform/jitform/state"
)

const latencySeed = `dn: uid=alice,ou=people,dc=example,dc=org
objectClass: inetOrgPerson
uid: alice
cn: Alice
sn: A

dn: uid=svc,ou=people,dc=example,dc=org
objectClass: inetOrgPerson
uid: svc
cn: Svc
sn: S

dn: cn=admins,ou=groups,dc=example,dc=org
objectClass: groupOfNames
cn: admins
member: uid=svc,ou=people,dc=example,dc=org
`

// The run loop against a real slapd with the real clock: a member is added
// within 2 s of its window's start and removed within 2 s of its end.
func TestRunExpiryLatencyAgainstSlapd(t *testing.T) {
	s := slapdtest.Start(t, latencySeed)
	dir := t.TempDir()
	start := time.Now().UTC().Add(2 * time.Second).Truncate(time.Second).Add(time.Second)
	const dur = 3 * time.Second
	hcl := adminsRepo(s, `"alice"`) + fmt.Sprintf(`
grant "alice_short" {
  policy    = policy.p
  principal = "alice"
  start     = %q
  duration  = "3s"
}
`, start.Format(time.RFC3339))
	if err := os.WriteFile(filepath.Join(dir, "main.hcl"), []byte(hcl), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("TEST_LDAP_PASSWORD", slapdtest.RootPW)
	b, err := state.NewLocal(dir)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, RunOptions{
			Options:       Options{Dir: dir, Backend: b, Registry: providers.Registry{"ldap": ldap.Open}},
			DriftInterval: time.Minute, MinBackoff: 200 * time.Millisecond,
		})
	}()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()

	alice := "uid=alice,ou=people,dc=example,dc=org"
	var addedAt, removedAt time.Time
	deadline := start.Add(dur + 6*time.Second)
	for time.Now().Before(deadline) && removedAt.IsZero() {
		in := slices.Contains(s.Values(t, "cn=admins,ou=groups,dc=example,dc=org", "member"), alice)
		now := time.Now()
		switch {
		case in && addedAt.IsZero():
			addedAt = now
		case !in && !addedAt.IsZero():
			removedAt = now
		}
		time.Sleep(25 * time.Millisecond)
	}
	if addedAt.IsZero() || removedAt.IsZero() {
		t.Fatalf("added at %v, removed at %v: the window was not honoured", addedAt, removedAt)
	}
	addLat, removeLat := addedAt.Sub(start), removedAt.Sub(start.Add(dur))
	t.Logf("add latency %s, remove latency %s", addLat.Round(time.Millisecond), removeLat.Round(time.Millisecond))
	if addLat < 0 || addLat > 2*time.Second {
		t.Errorf("added %s after the window opened, want within 2 s (and never before)", addLat)
	}
	if removeLat < 0 || removeLat > 2*time.Second {
		t.Errorf("removed %s after the window closed, want within 2 s", removeLat)
	}
	if got := s.Values(t, "cn=admins,ou=groups,dc=example,dc=org", "member"); !slices.Equal(got, []string{"uid=svc,ou=people,dc=example,dc=org"}) {
		t.Errorf("members after the window = %v, want svc alone", got)
	}
}

// adminsRepo is a policy repository managing the non-exclusive admins group
// of a slapdtest server, with a policy "p" (no windows, no approvals) for
// the eligible principals (an HCL list body). The password comes from
// TEST_LDAP_PASSWORD.
func adminsRepo(s *slapdtest.Server, eligible string) string {
	return fmt.Sprintf(`
target "ldap" "corp" {
  url      = %q
  ca_file  = %q
  bind_dn  = %q
  password = env("TEST_LDAP_PASSWORD")
  base_dn  = "dc=example,dc=org"
  flavor   = "openldap"
}
group "admins" {
  target = target.ldap.corp
  dn     = "cn=admins,ou=groups,dc=example,dc=org"
}
policy "p" {
  groups       = [group.admins]
  eligible     = [%s]
  max_duration = "1h"
  approvals    = 0
}
`, s.URL, s.CAFile, slapdtest.RootDN, eligible)
}
