package faulttest

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	goldap "github.com/go-ldap/ldap/v3"

	"github.com/jitform/jitform/internal/crashpoint"
	"github.com/jitform/jitform/internal/testbed/slapdtest"
)

const admDN = "uid=adm-alice-alice,ou=jit,dc=example,dc=org"

// ephemeralRepo: alice's grant puts an account created for it, not alice,
// into the exclusive admins group on a real slapd.
func ephemeralRepo(t *testing.T, s *slapdtest.Server, now time.Time, grant bool) string {
	key, err := os.ReadFile(filepath.Join("..", "..", "testdata", "keys", "alice.pub"))
	if err != nil {
		t.Fatal(err)
	}
	r := fmt.Sprintf(`target "ldap" "corp" {
  url      = %q
  ca_file  = %q
  bind_dn  = %q
  password = env("FAULTTEST_LDAP_PASSWORD")
  base_dn  = "dc=example,dc=org"
  flavor   = "openldap"
}

group "admins" {
  target    = target.ldap.corp
  dn        = "cn=admins,ou=groups,dc=example,dc=org"
  members   = ["svc"]
  exclusive = true
}

account "adm" {
  target    = target.ldap.corp
  ephemeral = true
  base      = "ou=jit,dc=example,dc=org"
}

actor "alice" {
  ssh_key = %q
}

policy "p" {
  groups       = [group.admins]
  accounts     = [account.adm]
  eligible     = ["alice"]
  max_duration = "4h"
  approvals    = 0
}
`, s.URL, s.CAFile, slapdtest.RootDN, strings.TrimSpace(string(key)))
	if grant {
		r += `
grant "alice" {
  policy    = policy.p
  principal = "alice"
  start     = "` + now.Add(-time.Hour).UTC().Format(time.RFC3339) + `"
  duration  = "2h"
}
`
	}
	return r
}

// TestEphemeralCrashAtEveryPointConverges kills the real binary (SIGKILL)
// at each point of the create against a real slapd; the next apply
// converges to one account, in the group instead of alice, that binds with
// the password only alice can decrypt. Removing the grant then takes the
// account out of the group and deletes it.
func TestEphemeralCrashAtEveryPointConverges(t *testing.T) {
	for _, point := range []string{crashpoint.BeforeIntent, crashpoint.AfterIntent, crashpoint.AfterCall} {
		t.Run(point, func(t *testing.T) {
			s := slapdtest.Start(t, people+"\ndn: ou=jit,dc=example,dc=org\nobjectClass: organizationalUnit\nou: jit\n")
			t.Setenv("FAULTTEST_LDAP_PASSWORD", slapdtest.RootPW)
			dir := t.TempDir()
			write := func(grant bool) {
				if err := os.WriteFile(filepath.Join(dir, "main.hcl"), []byte(ephemeralRepo(t, s, time.Now(), grant)), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			write(true)
			// The create is the first change the apply makes.
			code, out, ps := jitform(t, dir, []string{crashpoint.Env + "=" + point + ":1"}, "apply", "--auto-approve")
			if ws, _ := ps.Sys().(syscall.WaitStatus); !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
				t.Fatalf("apply was not killed at %s (exit %d):\n%s", point, code, out)
			}
			if code, out, _ := jitform(t, dir, nil, "apply", "--auto-approve"); code != 0 {
				t.Fatalf("apply after the crash exited %d:\n%s", code, out)
			}
			members := func() []string {
				var out []string
				for _, v := range s.Values(t, "cn=admins,ou=groups,dc=example,dc=org", "member") {
					out = append(out, strings.ToLower(v))
				}
				slices.Sort(out)
				return out
			}
			if got, want := members(), []string{admDN, svc}; !slices.Equal(got, want) {
				t.Errorf("admins = %v, want %v (the created account, not alice)", got, want)
			}
			key, err := filepath.Abs(filepath.Join("..", "..", "testdata", "keys", "alice"))
			if err != nil {
				t.Fatal(err)
			}
			code, pw, _ := jitform(t, dir, nil, "grant", "credential", "grant.alice", "--key", key)
			if code != 0 {
				t.Fatalf("grant credential exited %d: %s", code, pw)
			}
			c, err := goldap.DialURL(s.URL)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if err := c.Bind(admDN, strings.TrimSpace(pw)); err != nil {
				t.Errorf("the created account does not bind with alice's credential: %v", err)
			}
			if code, out, _ := jitform(t, dir, nil, "plan", "--detailed-exitcode"); code != 0 {
				t.Errorf("plan after convergence exited %d, want 0 (no changes):\n%s", code, out)
			}
			checkLedger(t, dir)

			write(false)
			if code, out, _ := jitform(t, dir, nil, "apply", "--auto-approve"); code != 0 || !strings.Contains(out, "deleted account adm-alice-alice") {
				t.Fatalf("apply without the grant exited %d:\n%s", code, out)
			}
			if got, want := members(), []string{svc}; !slices.Equal(got, want) {
				t.Errorf("admins after the grant = %v, want %v", got, want)
			}
			res, err := s.Conn(t).Search(goldap.NewSearchRequest("ou=jit,dc=example,dc=org", goldap.ScopeSingleLevel, goldap.NeverDerefAliases, 0, 0, false, "(objectClass=*)", []string{"dn"}, nil))
			if err != nil || len(res.Entries) != 0 {
				t.Errorf("the account outlives its grant: %v %v", err, res)
			}
			checkLedger(t, dir)
		})
	}
}
