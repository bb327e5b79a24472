package faulttest

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jitform/jitform/internal/testbed/slapdtest"
	"github.com/jitform/jitform/state"
)

// A directory that is down and a write the server refuses make apply exit
// 1, naming each failure, the failed removal first; the healthy target
// still converges.
func TestProviderFaultsAreLoudAndIsolated(t *testing.T) {
	dir := t.TempDir()
	d := ldifDirectory(t, dir)
	down := slapdtest.Start(t, people)
	t.Setenv("FAULTTEST_LDAP_PASSWORD", slapdtest.RootPW)
	start := time.Now().Add(-time.Hour).UTC().Format(time.RFC3339)
	hcl := d.target + fmt.Sprintf(`
target "ldap" "down" {
  url      = %q
  ca_file  = %q
  bind_dn  = %q
  password = env("FAULTTEST_LDAP_PASSWORD")
  base_dn  = "dc=example,dc=org"
  flavor   = "openldap"
}
# Exclusive, and only svc is declared: removing mallory is fine, but ops
# below must lose its only member, which a groupOfNames refuses.
group "ops" {
  target    = target.ldif.corp
  dn        = "cn=ops,ou=groups,dc=example,dc=org"
  exclusive = true
}
group "admins" {
  target    = target.ldif.corp
  dn        = "cn=admins,ou=groups,dc=example,dc=org"
  members   = ["svc"]
  exclusive = true
}
group "remote" {
  target = target.ldap.down
  dn     = "cn=admins,ou=groups,dc=example,dc=org"
}
policy "p" {
  groups       = [group.admins, group.remote]
  eligible     = ["alice"]
  max_duration = "4h"
  approvals    = 0
}
grant "alice" {
  policy    = policy.p
  principal = "alice"
  start     = %q
  duration  = "2h"
}
`, down.URL, down.CAFile, slapdtest.RootDN, start)
	if err := os.WriteFile(filepath.Join(dir, "main.hcl"), []byte(hcl), 0o600); err != nil {
		t.Fatal(err)
	}
	down.Stop()

	code, out, _ := jitform(t, dir, nil, "apply", "--auto-approve")
	if code != 1 {
		t.Fatalf("apply exited %d, want 1:\n%s", code, out)
	}
	for _, want := range []string{
		"FAILED to remove uid=svc,ou=people,dc=example,dc=org", // the refused removal, named
		"group.remote", // the unreachable directory, named
		"Apply failed", // the summary
		"1 failed",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	failedAt, addedAt := strings.Index(out, "FAILED to remove"), strings.Index(out, "+ added")
	if failedAt < 0 || addedAt < 0 || failedAt > addedAt {
		t.Errorf("the failed removal must be listed before the successful changes:\n%s", out)
	}
	// The healthy group converged despite the other failures.
	if got, want := d.members(t, admins), []string{alice, svc}; !slices.Equal(got, want) {
		t.Errorf("admins = %v, want %v", got, want)
	}
	if got := d.members(t, opsDN); !slices.Equal(got, []string{svc}) {
		t.Errorf("ops = %v: a refused removal must leave the group as it was", got)
	}
	checkLedger(t, dir)
}

// A second apply waits for the lock, then fails naming its holder; the
// ledger is untouched by it.
func TestSecondApplyWaitsForTheLock(t *testing.T) {
	dir := t.TempDir()
	d := ldifDirectory(t, dir)
	if err := os.WriteFile(filepath.Join(dir, "main.hcl"), []byte(policyRepo(d.target, time.Now(), true)), 0o600); err != nil {
		t.Fatal(err)
	}
	// Another run holds the lock: flock is per process, so holding it here
	// blocks the real binary exactly as a second jitform would.
	b, err := state.NewLocal(dir)
	if err != nil {
		t.Fatal(err)
	}
	unlock, err := b.Lock(context.Background(), state.LockInfo{Operation: "apply", Who: "ci@runner-7", PID: os.Getpid(), Since: time.Now().UTC()}, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer unlock()
	code, out, _ := jitform(t, dir, nil, "apply", "--auto-approve", "--lock-timeout", "1s")
	if code != 1 || !strings.Contains(out, "ci@runner-7") {
		t.Fatalf("apply under a held lock exited %d, want 1 naming the holder ci@runner-7:\n%s", code, out)
	}
	evs, err := b.Events(context.Background())
	if err != nil || len(evs) != 0 {
		t.Errorf("the ledger has %d events (%v), want none", len(evs), err)
	}
	if got := d.members(t, admins); slices.Contains(got, alice) {
		t.Error("an apply that did not get the lock changed the directory")
	}
}
