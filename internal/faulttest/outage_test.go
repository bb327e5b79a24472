package faulttest

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jitform/jitform/internal/crashpoint"
	"github.com/jitform/jitform/internal/testbed/slapdtest"
)

// outageRepo: a healthy LDIF target (admins, exclusive, svc declared; bob
// granted when grantBob) and a slapd target whose non-exclusive group ops
// gets alice for her grant, which has ended when aliceEnded.
func outageRepo(ldifTarget string, s *slapdtest.Server, now time.Time, grantBob, aliceEnded bool) string {
	active := now.Add(-time.Hour).UTC().Format(time.RFC3339)
	aliceStart := active
	if aliceEnded {
		aliceStart = now.Add(-3 * time.Hour).UTC().Format(time.RFC3339)
	}
	hcl := ldifTarget + fmt.Sprintf(`
target "ldap" "dir" {
  url      = %q
  ca_file  = %q
  bind_dn  = %q
  password = env("FAULTTEST_LDAP_PASSWORD")
  base_dn  = "dc=example,dc=org"
  flavor   = "openldap"
  timeout  = "1s" # a hung server fails fast: the test waits on this, asserts nothing about it
}
group "admins" {
  target    = target.ldif.corp
  dn        = "cn=admins,ou=groups,dc=example,dc=org"
  members   = ["svc"]
  exclusive = true
}
group "remote" {
  target = target.ldap.dir
  dn     = "cn=ops,ou=groups,dc=example,dc=org"
}
policy "local" {
  groups       = [group.admins]
  eligible     = ["bob"]
  max_duration = "4h"
  approvals    = 0
}
policy "remote" {
  groups       = [group.remote]
  eligible     = ["alice"]
  max_duration = "4h"
  approvals    = 0
}
grant "alice" {
  policy    = policy.remote
  principal = "alice"
  start     = %q
  duration  = "1h30m"
}
`, s.URL, s.CAFile, slapdtest.RootDN, aliceStart)
	if grantBob {
		hcl += fmt.Sprintf(`
grant "bob" {
  policy    = policy.local
  principal = "bob"
  start     = %q
  duration  = "2h"
}
`, active)
	}
	return hcl
}

// frozenApply starts `jitform apply --auto-approve` that freezes itself
// (SIGSTOP) at the given crash point and waits until it has. resume lets
// it go on and returns its exit code and output.
func frozenApply(t *testing.T, dir string, spec crashpoint.Spec) (resume func() (int, string)) {
	t.Helper()
	var out bytes.Buffer
	cmd := exec.Command(binary, "-C", dir, "apply", "--auto-approve")
	cmd.Env = append(os.Environ(), crashpoint.Env+"="+spec.String())
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		select {
		case <-done:
		default:
			_ = cmd.Process.Kill()
			_ = syscall.Kill(cmd.Process.Pid, syscall.SIGCONT)
			<-done
		}
	})
	stat := fmt.Sprintf("/proc/%d/stat", cmd.Process.Pid)
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(10 * time.Millisecond) {
		b, err := os.ReadFile(stat)
		select {
		case <-done:
			t.Fatalf("apply exited before its crash point %s:\n%s", spec, out.String())
		default:
		}
		// pid (comm) STATE ...: the state follows the last ')'.
		if err == nil {
			if f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:])); len(f) > 0 && f[0] == "T" {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("apply never reached %s:\n%s", spec, out.String())
		}
	}
	return func() (int, string) {
		if err := syscall.Kill(cmd.Process.Pid, syscall.SIGCONT); err != nil {
			t.Fatal(err)
		}
		select {
		case <-done:
		case <-time.After(2 * time.Minute):
			t.Fatalf("apply did not finish after SIGCONT:\n%s", out.String())
		}
		return cmd.ProcessState.ExitCode(), out.String()
	}
}

// The directory hangs between plan and apply, just as an expired member is
// to be removed: apply exits 1, the failed removal comes first and loud,
// the healthy target converges anyway; the ledger keeps the member as
// jitform's, so once the directory answers again the next apply removes it.
func TestExpiredRemovalFailsLoudlyThenHeals(t *testing.T) {
	dir := t.TempDir()
	d := ldifDirectory(t, dir)
	s := slapdtest.Start(t, people)
	t.Setenv("FAULTTEST_LDAP_PASSWORD", slapdtest.RootPW)
	write := func(grantBob, aliceEnded bool) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(dir, "main.hcl"), []byte(outageRepo(d.target, s, time.Now(), grantBob, aliceEnded)), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	remoteMembers := func() []string {
		var out []string
		for _, v := range s.Values(t, opsDN, "member") {
			out = append(out, strings.ToLower(v))
		}
		slices.Sort(out)
		return out
	}

	write(false, false)
	if code, out, _ := jitform(t, dir, nil, "apply", "--auto-approve"); code != 0 {
		t.Fatalf("first apply exited %d:\n%s", code, out)
	}
	if got := remoteMembers(); !slices.Equal(got, []string{alice, svc}) {
		t.Fatalf("after the first apply ops = %v, want alice (granted) and svc", got)
	}

	// Alice's grant has ended and bob's begins. Plan both, freeze before
	// the first change, hang the directory, go on.
	write(true, true)
	resume := frozenApply(t, dir, crashpoint.Spec{Point: crashpoint.BeforeIntent, N: 1, Stop: true})
	s.Pause(t)
	code, out := resume()
	t.Logf("apply against a hung directory:\n%s", out)
	if code != 1 {
		t.Fatalf("apply against a hung directory exited %d, want 1:\n%s", code, out)
	}
	failedAt := strings.Index(out, "FAILED to remove "+alice)
	if failedAt < 0 {
		failedAt = strings.Index(out, "UNKNOWN whether jitform removed "+alice)
	}
	addedAt := strings.Index(out, "+ added "+bob)
	if failedAt < 0 || addedAt < 0 || failedAt > addedAt {
		t.Errorf("want the failed removal of alice named, before bob's add:\n%s", out)
	}
	for _, want := range []string{"group.remote", "may still hold the privilege", "Apply failed", "1 failed"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if got, want := d.members(t, admins), []string{bob, svc}; !slices.Equal(got, want) {
		t.Errorf("the healthy target did not converge: admins = %v, want %v", got, want)
	}
	checkLedger(t, dir)

	s.Resume()
	if got := remoteMembers(); !slices.Contains(got, alice) {
		t.Fatalf("alice's removal reached the hung directory after all (%v); the test proves nothing", got)
	}
	if code, out, _ := jitform(t, dir, nil, "apply", "--auto-approve"); code != 0 {
		t.Fatalf("apply once the directory answers exited %d:\n%s", code, out)
	}
	if got := remoteMembers(); !slices.Equal(got, []string{svc}) {
		t.Errorf("ops = %v once the directory answers, want only svc: alice's access outlived her grant", got)
	}
	if code, out, _ := jitform(t, dir, nil, "plan", "--detailed-exitcode"); code != 0 {
		t.Errorf("plan after recovery exited %d, want 0:\n%s", code, out)
	}
	checkLedger(t, dir)
}

// A directory that is down or hung when apply starts: its group is named
// as unreadable, apply exits 1 and writes nothing for it, the healthy
// target converges.
func TestUnreachableDirectoryIsIsolated(t *testing.T) {
	for _, tc := range []struct {
		name  string
		fault func(t *testing.T, s *slapdtest.Server)
	}{
		{"down", func(t *testing.T, s *slapdtest.Server) { s.Stop() }},
		{"hung", func(t *testing.T, s *slapdtest.Server) { s.Pause(t) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			d := ldifDirectory(t, dir)
			s := slapdtest.Start(t, people)
			t.Setenv("FAULTTEST_LDAP_PASSWORD", slapdtest.RootPW)
			if err := os.WriteFile(filepath.Join(dir, "main.hcl"), []byte(outageRepo(d.target, s, time.Now(), true, false)), 0o600); err != nil {
				t.Fatal(err)
			}
			tc.fault(t, s)
			code, out, _ := jitform(t, dir, nil, "apply", "--auto-approve")
			if code != 1 {
				t.Fatalf("apply exited %d, want 1:\n%s", code, out)
			}
			for _, want := range []string{"group.remote", "could not be read", "+ added " + bob} {
				if !strings.Contains(out, want) {
					t.Errorf("output lacks %q:\n%s", want, out)
				}
			}
			if got, want := d.members(t, admins), []string{bob, svc}; !slices.Equal(got, want) {
				t.Errorf("admins = %v, want %v", got, want)
			}
			for _, ev := range ledgerChanges(t, dir) {
				if ev.Group == "group.remote" {
					t.Errorf("an intent was written for the unreadable group: %+v", ev)
				}
			}
			checkLedger(t, dir)
		})
	}
}
