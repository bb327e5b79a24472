package ldap

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jitform/jitform/internal/crashpoint"
	"github.com/jitform/jitform/internal/testbed/slapdtest"
)

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// jitformBinary builds cmd/jitform once per test binary (only the crash
// tests need it).
func jitformBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "jitform-ldap-crash")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "jitform")
		if out, err := exec.Command("go", "build", "-o", binPath, "github.com/jitform/jitform/cmd/jitform").CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("build jitform: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

func runJitform(t *testing.T, dir string, env []string, args ...string) (int, string, *os.ProcessState) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, jitformBinary(t), append([]string{"-C", dir}, args...)...)
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatalf("run jitform %v: %v", args, err)
	}
	return cmd.ProcessState.ExitCode(), string(out), cmd.ProcessState
}

// TestKillBetweenIntentAndOutcomeConverges: the real jitform binary is
// killed (SIGKILL) at each crash point of an apply that adds a granted
// sudoUser (with its bound) and enables an account with a rotated
// password on real slapd: before the intent, after it, after the LDAP
// write inside the provider call (the first and the second write), and
// after the provider call. The next apply converges: alice is the only
// sudoUser, the role is bounded by her window end, the account is
// unlocked and its credential is stored for her; the plan after that is
// empty and the ledger verifies.
//
// And the other way: when the window has ended, the kill comes while
// jitform removes the sudoUser (and the bound) and rotates and locks the
// account, including between the Password Modify (after which ppolicy has
// unlocked the entry) and the lock: the next apply leaves the role empty
// and unbounded and the account locked.
func TestKillBetweenIntentAndOutcomeConverges(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the jitform binary")
	}
	points := []string{
		crashpoint.BeforeIntent + ":1", crashpoint.BeforeIntent + ":2",
		crashpoint.AfterIntent + ":1", crashpoint.AfterIntent + ":2",
		crashpoint.AfterWrite + ":1", crashpoint.AfterWrite + ":2", // the sudoRole Modify, the Password Modify
		crashpoint.AfterCall + ":1", crashpoint.AfterCall + ":2",
	}
	for _, point := range points {
		t.Run("grant/"+point, func(t *testing.T) {
			killAndConverge(t, point, true)
		})
	}
	for _, point := range append(points, crashpoint.AfterWrite+":3") { // the lock
		t.Run("ended/"+point, func(t *testing.T) {
			killAndConverge(t, point, false)
		})
	}
}

// endedSeed: alice holds the role, bounded by a window that is over, and
// the account is unlocked.
func endedSeed(end time.Time) string {
	sd := accountSeed + sudoSeed[len(seed):]
	sd = strings.Replace(sd, "pwdAccountLockedTime: 000001010000Z\n", "", 1)
	return strings.Replace(sd, "sudoCommand: /usr/bin/systemctl restart nginx\n",
		"sudoCommand: /usr/bin/systemctl restart nginx\nsudoUser: alice\nsudoNotBefore: 20200101000000Z\nsudoNotAfter: "+end.Format(generalizedTime)+"\n", 1)
}

func killAndConverge(t *testing.T, point string, active bool) {
	t.Helper()
	start := time.Now().Add(-time.Hour).UTC().Truncate(time.Second)
	if !active {
		start = start.Add(-2 * time.Hour)
	}
	end := start.Add(2 * time.Hour)
	sd := accountSeed + sudoSeed[len(seed):]
	if !active {
		sd = endedSeed(end)
	}
	s := slapdtest.Start(t, sd)
	dir := t.TempDir()
	repo := fmt.Sprintf(`target "ldap" "corp" {
  url      = %q
  ca_file  = %q
  bind_dn  = %q
  password = env("CRASHTEST_LDAP_PASSWORD")
  base_dn  = "dc=example,dc=org"
  flavor   = "openldap"
}
sudo_role "jit_only" {
  target    = target.ldap.corp
  dn        = %q
  exclusive = true
}
account "jitadmin" {
  target          = target.ldap.corp
  dn              = %q
  rotate_password = true
}
actor "alice" {
  ssh_key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIDbuvazf3bFf4fTWWF33HPyj+cwGqgp2l069iohYH3a8 alice"
}
policy "p" {
  sudo_roles   = [sudo_role.jit_only]
  accounts     = [account.jitadmin]
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
`, s.URL, s.CAFile, slapdtest.RootDN, jitOnlyDN, jitAdminDN, start.Format(time.RFC3339))
	if err := os.WriteFile(filepath.Join(dir, "main.hcl"), []byte(repo), 0o600); err != nil {
		t.Fatal(err)
	}
	env := []string{"CRASHTEST_LDAP_PASSWORD=" + slapdtest.RootPW}
	code, out, ps := runJitform(t, dir, append(env, crashpoint.Env+"="+point), "apply", "--auto-approve")
	ws, _ := ps.Sys().(syscall.WaitStatus)
	if !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		t.Fatalf("apply was not killed at %s (exit %d):\n%s", point, code, out)
	}
	if code, out, _ := runJitform(t, dir, env, "apply", "--auto-approve"); code != 0 {
		t.Fatalf("apply after the kill exited %d:\n%s", code, out)
	}
	if !active {
		if got := s.Values(t, jitOnlyDN, "sudoUser"); len(got) != 0 {
			t.Errorf("sudoUser = %v after the window, want none", got)
		}
		if got := s.Values(t, jitOnlyDN, "sudoNotAfter"); len(got) != 0 {
			t.Errorf("the emptied role is still bounded: sudoNotAfter %v", got)
		}
		if got := s.Values(t, jitAdminDN, "pwdAccountLockedTime"); !slices.Equal(got, []string{LockedForever}) {
			t.Errorf("the account is not locked after the window: pwdAccountLockedTime %v", got)
		}
	} else {
		if got := s.Values(t, jitOnlyDN, "sudoUser"); !slices.Equal(got, []string{"alice"}) {
			t.Errorf("sudoUser = %v, want [alice]", got)
		}
		if got := s.Values(t, jitOnlyDN, "sudoNotAfter"); len(got) != 1 {
			t.Errorf("sudoNotAfter = %v, want one value", got)
		} else if ts, ok := parseSudoTime(got[0]); !ok || !ts.Equal(end) {
			t.Errorf("sudoNotAfter = %s, want the window end %s", got[0], end)
		}
		if got := s.Values(t, jitAdminDN, "pwdAccountLockedTime"); len(got) != 0 {
			t.Errorf("the account is still locked: pwdAccountLockedTime %v", got)
		}
		if _, err := os.Stat(filepath.Join(dir, ".jitform", "credentials", "grant.alice.age")); err != nil {
			t.Errorf("no credential stored for alice: %v", err)
		}
	}
	if code, out, _ := runJitform(t, dir, env, "plan", "--detailed-exitcode"); code != 0 {
		t.Errorf("plan after convergence exited %d, want 0 (no changes):\n%s", code, out)
	}
	if code, out, _ := runJitform(t, dir, env, "ledger", "verify"); code != 0 {
		t.Errorf("ledger verify exited %d:\n%s", code, out)
	}
}
