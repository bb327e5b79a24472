// Package faulttest kills the real jitform binary at each point of an apply
// (SIGKILL, as a crash would) and proves that the next apply converges with
// no leaked membership and a ledger that verifies.
package faulttest

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	goldap "github.com/go-ldap/ldap/v3"

	"github.com/jitform/jitform/internal/crashpoint"
	"github.com/jitform/jitform/internal/testbed/slapdtest"
	"github.com/jitform/jitform/state"
)

var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "jitform-faulttest")
	if err != nil {
		panic(err)
	}
	binary = filepath.Join(dir, "jitform")
	if out, err := exec.Command("go", "build", "-o", binary, "github.com/jitform/jitform/cmd/jitform").CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "build jitform: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

const people = `dn: uid=alice,ou=people,dc=example,dc=org
objectClass: inetOrgPerson
uid: alice
cn: Alice
sn: A

dn: uid=bob,ou=people,dc=example,dc=org
objectClass: inetOrgPerson
uid: bob
cn: Bob
sn: B

dn: uid=svc,ou=people,dc=example,dc=org
objectClass: inetOrgPerson
uid: svc
cn: Svc
sn: S

dn: uid=mallory,ou=people,dc=example,dc=org
objectClass: inetOrgPerson
uid: mallory
cn: Mallory
sn: M

dn: cn=admins,ou=groups,dc=example,dc=org
objectClass: groupOfNames
cn: admins
member: uid=svc,ou=people,dc=example,dc=org
member: uid=mallory,ou=people,dc=example,dc=org

dn: cn=ops,ou=groups,dc=example,dc=org
objectClass: groupOfNames
cn: ops
member: uid=svc,ou=people,dc=example,dc=org
`

// directory is where the test's groups live: an LDIF file or a slapd.
type directory struct {
	target  string                                    // the HCL target block
	members func(t *testing.T, group string) []string // canonical lowercase DNs
	add     func(t *testing.T, group, member string)  // a change made by hand, outside jitform
}

func ldifDirectory(t *testing.T, dir string) directory {
	seed := "dn: dc=example,dc=org\nobjectClass: dcObject\nobjectClass: organization\ndc: example\no: Example\n\n" +
		"dn: ou=people,dc=example,dc=org\nobjectClass: organizationalUnit\nou: people\n\n" +
		"dn: ou=groups,dc=example,dc=org\nobjectClass: organizationalUnit\nou: groups\n\n" + people
	if err := os.WriteFile(filepath.Join(dir, "directory.ldif"), []byte(seed), 0o600); err != nil {
		t.Fatal(err)
	}
	return directory{
		target: `target "ldif" "corp" {
  path   = "directory.ldif"
  flavor = "openldap"
}`,
		members: func(t *testing.T, group string) []string {
			f, err := os.Open(filepath.Join(dir, "directory.ldif"))
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			var in bool
			var out []string
			sc := bufio.NewScanner(f)
			for sc.Scan() {
				l := sc.Text()
				if strings.HasPrefix(l, "dn: ") {
					in = strings.EqualFold(l, "dn: "+group)
				}
				if in && strings.HasPrefix(l, "member: ") {
					out = append(out, strings.ToLower(strings.TrimPrefix(l, "member: ")))
				}
			}
			slices.Sort(out)
			return out
		},
		add: func(t *testing.T, group, member string) {
			path := filepath.Join(dir, "directory.ldif")
			b, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			head := "dn: " + group + "\n"
			i := strings.Index(string(b), head)
			if i < 0 {
				t.Fatalf("%s not in the LDIF", group)
			}
			i += len(head)
			b = []byte(string(b[:i]) + "member: " + member + "\n" + string(b[i:]))
			if err := os.WriteFile(path, b, 0o600); err != nil {
				t.Fatal(err)
			}
		},
	}
}

func slapdDirectory(t *testing.T) directory {
	s := slapdtest.Start(t, people)
	t.Setenv("FAULTTEST_LDAP_PASSWORD", slapdtest.RootPW)
	return directory{
		target: fmt.Sprintf(`target "ldap" "corp" {
  url      = %q
  ca_file  = %q
  bind_dn  = %q
  password = env("FAULTTEST_LDAP_PASSWORD")
  base_dn  = "dc=example,dc=org"
  flavor   = "openldap"
}`, s.URL, s.CAFile, slapdtest.RootDN),
		members: func(t *testing.T, group string) []string {
			var out []string
			for _, v := range s.Values(t, group, "member") {
				out = append(out, strings.ToLower(v))
			}
			slices.Sort(out)
			return out
		},
		add: func(t *testing.T, group, member string) {
			req := goldap.NewModifyRequest(group, nil)
			req.Add("member", []string{member})
			if err := s.Conn(t).Modify(req); err != nil {
				t.Fatalf("add %s to %s by hand: %v", member, group, err)
			}
		},
	}
}

// policyRepo: admins is exclusive (svc declared, alice granted, mallory
// undeclared); ops is non-exclusive (bob granted when grantBob).
func policyRepo(target string, now time.Time, grantBob bool) string {
	start := now.Add(-time.Hour).UTC().Format(time.RFC3339)
	s := target + `
group "admins" {
  target    = target.ldif.corp
  dn        = "cn=admins,ou=groups,dc=example,dc=org"
  members   = ["svc"]
  exclusive = true
}
group "ops" {
  target = target.ldif.corp
  dn     = "cn=ops,ou=groups,dc=example,dc=org"
}
policy "p" {
  groups       = [group.admins, group.ops]
  eligible     = ["alice", "bob"]
  max_duration = "4h"
  approvals    = 0
}
grant "alice" {
  policy    = policy.p
  principal = "alice"
  start     = "` + start + `"
  duration  = "2h"
}
`
	if grantBob {
		s += `
grant "bob" {
  policy    = policy.p
  principal = "bob"
  start     = "` + start + `"
  duration  = "2h"
}
`
	}
	if strings.Contains(target, `"ldap"`) {
		s = strings.ReplaceAll(s, "target.ldif.corp", "target.ldap.corp")
	}
	return s
}

func jitform(t *testing.T, dir string, env []string, args ...string) (int, string, *os.ProcessState) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, append([]string{"-C", dir}, args...)...)
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatalf("run jitform %v: %v", args, err)
	}
	return cmd.ProcessState.ExitCode(), string(out), cmd.ProcessState
}

// checkLedger: the chain verifies, seqs are contiguous, every intent has at
// most one outcome from its own apply, followed only when that outcome is
// missing (a kill) or "unknown" by one observation (observed_present or
// observed_absent, written by the next apply that read the group); every
// intent of the last apply has an outcome; and no change that succeeded was
// attempted again: a later intent for the same action on the same member
// and group needs the opposite change in between.
func checkLedger(t *testing.T, dir string) {
	t.Helper()
	if code, out, _ := jitform(t, dir, nil, "ledger", "verify"); code != 0 {
		t.Fatalf("ledger verify exited %d:\n%s", code, out)
	}
	b, err := state.NewLocal(dir)
	if err != nil {
		t.Fatal(err)
	}
	evs, err := b.Events(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	observation := func(s string) bool { return s == "observed_present" || s == "observed_absent" }
	intents := map[string]state.Change{}
	var order []string          // intent IDs in ledger order
	last := map[string]string{} // intent ID -> status of its latest outcome
	done := map[string]bool{}   // "group member": the last successful action was an add (create, enable)
	// observed: that success was only observed by a later read. An account
	// created or enabled by a run that died before its outcome is created
	// or enabled again: the password it got was never recorded as delivered.
	observed := map[string]bool{}
	gives := func(action string) bool { return action == "add" || action == "create" || action == "enable" }
	for i, ev := range evs {
		if ev.Seq != int64(i+1) {
			t.Errorf("event %d has seq %d", i+1, ev.Seq)
		}
		switch ev.Type {
		case state.EventChangeIntent:
			var c state.Change
			if err := json.Unmarshal(ev.Payload, &c); err != nil {
				t.Fatal(err)
			}
			if _, dup := intents[c.ID]; dup {
				t.Errorf("event %d: intent ID %s used twice", ev.Seq, c.ID)
			}
			key := c.Target + " " + c.Group + " " + c.Member
			if added, seen := done[key]; seen && added == gives(c.Action) && !(c.Kind == "account" && added && observed[key]) {
				t.Errorf("event %d: intent to %s %s in %s again, after that already succeeded", ev.Seq, c.Action, c.Member, c.Group)
			}
			intents[c.ID] = c
			order = append(order, c.ID)
		case state.EventChangeApplied, state.EventChangeFailed:
			var o state.ChangeOutcome
			if err := json.Unmarshal(ev.Payload, &o); err != nil {
				t.Fatal(err)
			}
			c, ok := intents[o.ID]
			if !ok {
				t.Errorf("event %d: outcome for %s, which has no intent before it", ev.Seq, o.ID)
			}
			switch prev, had := last[o.ID]; {
			case !had:
			case prev == "unknown" && observation(o.Status):
			default:
				t.Errorf("event %d: intent %s gets outcome %q after %q", ev.Seq, o.ID, o.Status, prev)
			}
			last[o.ID] = o.Status
			if ev.Type == state.EventChangeApplied && (o.Status == "done" || o.Status == "already" || observation(o.Status)) {
				done[c.Target+" "+c.Group+" "+c.Member] = gives(c.Action)
				observed[c.Target+" "+c.Group+" "+c.Member] = observation(o.Status)
			}
		}
	}
	if len(order) > 0 {
		lastPlan := intents[order[len(order)-1]].PlanID
		for _, id := range order {
			if _, had := last[id]; intents[id].PlanID == lastPlan && !had {
				t.Errorf("intent %s of the last apply (plan %s) has no outcome", id, lastPlan)
			}
		}
	}
}

// ledgerChanges returns the payloads of every change_intent, in order.
func ledgerChanges(t *testing.T, dir string) []state.Change {
	t.Helper()
	b, err := state.NewLocal(dir)
	if err != nil {
		t.Fatal(err)
	}
	evs, err := b.Events(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var out []state.Change
	for _, ev := range evs {
		if ev.Type != state.EventChangeIntent {
			continue
		}
		var c state.Change
		if err := json.Unmarshal(ev.Payload, &c); err != nil {
			t.Fatal(err)
		}
		out = append(out, c)
	}
	return out
}

const (
	alice  = "uid=alice,ou=people,dc=example,dc=org"
	bob    = "uid=bob,ou=people,dc=example,dc=org"
	svc    = "uid=svc,ou=people,dc=example,dc=org"
	admins = "cn=admins,ou=groups,dc=example,dc=org"
	opsDN  = "cn=ops,ou=groups,dc=example,dc=org"
)

// Kill the apply at every point, on the first and a later change, against
// an LDIF file and a real slapd; the next apply converges.
func TestCrashAtEveryPointConverges(t *testing.T) {
	for _, kind := range []string{"ldif", "slapd"} {
		for _, point := range []string{crashpoint.BeforeIntent, crashpoint.AfterIntent, crashpoint.AfterCall} {
			for _, nth := range []int{1, 3} {
				t.Run(fmt.Sprintf("%s/%s:%d", kind, point, nth), func(t *testing.T) {
					dir := t.TempDir()
					d := ldifDirectory(t, dir)
					if kind == "slapd" {
						d = slapdDirectory(t)
					}
					if err := os.WriteFile(filepath.Join(dir, "main.hcl"), []byte(policyRepo(d.target, time.Now(), true)), 0o600); err != nil {
						t.Fatal(err)
					}
					code, out, ps := jitform(t, dir, []string{crashpoint.Env + "=" + fmt.Sprintf("%s:%d", point, nth)}, "apply", "--auto-approve")
					ws, _ := ps.Sys().(syscall.WaitStatus)
					if !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
						t.Fatalf("apply was not killed at %s:%d (exit %d):\n%s", point, nth, code, out)
					}
					if code, out, _ := jitform(t, dir, nil, "apply", "--auto-approve"); code != 0 {
						t.Fatalf("apply after the crash exited %d:\n%s", code, out)
					}
					// The policy grants both groups: alice and bob belong in
					// both; mallory, undeclared, is gone from the exclusive one.
					if got, want := d.members(t, admins), []string{alice, bob, svc}; !slices.Equal(got, want) {
						t.Errorf("admins = %v, want %v", got, want)
					}
					if got, want := d.members(t, opsDN), []string{alice, bob, svc}; !slices.Equal(got, want) {
						t.Errorf("ops = %v, want %v", got, want)
					}
					if code, out, _ := jitform(t, dir, nil, "plan", "--detailed-exitcode"); code != 0 {
						t.Errorf("plan after convergence exited %d, want 0 (no changes):\n%s", code, out)
					}
					checkLedger(t, dir)
					if n := checkRetries(t, dir, point); point == crashpoint.AfterIntent && n == 0 {
						t.Error("the change killed between intent and call was not intended again, yet the call was never made")
					}
				})
			}
		}
	}
}

// checkRetries: the policy did not change between the killed apply and the
// next, so a change is intended again only when the kill left its intent
// open (no outcome) with the call not made: the next apply closes it with
// change_failed (observed: the change did not happen) and intends it again.
// After the call nothing may be retried: the change is on the server, the
// next apply closes the intent as change_applied and must intend nothing.
// It returns how many changes were intended again.
func checkRetries(t *testing.T, dir, point string) (retried int) {
	t.Helper()
	seen := map[string]state.Change{}
	open := map[string]bool{}
	b, err := state.NewLocal(dir)
	if err != nil {
		t.Fatal(err)
	}
	evs, err := b.Events(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, ev := range evs {
		switch ev.Type {
		case state.EventChangeIntent:
			var c state.Change
			if err := json.Unmarshal(ev.Payload, &c); err != nil {
				t.Fatal(err)
			}
			key := c.Action + " " + c.Member + " " + c.Group
			if first, again := seen[key]; again {
				retried++
				switch {
				case point == crashpoint.AfterCall:
					t.Errorf("event %d: %s intended again after a kill that came after its provider call", ev.Seq, key)
				case !open[first.ID]:
					t.Errorf("event %d: %s intended again though intent %s has an outcome", ev.Seq, key, first.ID)
				case first.PlanID == c.PlanID:
					t.Errorf("event %d: %s intended twice in one apply", ev.Seq, key)
				}
			} else {
				seen[key] = c
			}
			open[c.ID] = true
		case state.EventChangeApplied, state.EventChangeFailed:
			var o state.ChangeOutcome
			if err := json.Unmarshal(ev.Payload, &o); err != nil {
				t.Fatal(err)
			}
			if ev.Type == state.EventChangeFailed && (o.Status == "observed_present" || o.Status == "observed_absent") {
				continue // closed by a read that found the change not made: open at the kill
			}
			delete(open, o.ID)
		}
	}
	return retried
}

// The leak case: an add to a non-exclusive group is made, then the process
// dies before the outcome is recorded. When the grant goes, a later apply
// must still remove the member, because the intent says jitform may have
// added it.
func TestCrashAfterCallLeaksNothing(t *testing.T) {
	for _, tc := range []struct{ kind, gone string }{
		{"ldif", "deleted"}, {"ldif", "ended"}, {"slapd", "deleted"}, {"slapd", "ended"},
	} {
		kind := tc.kind
		t.Run(kind+"/grant-"+tc.gone, func(t *testing.T) {
			dir := t.TempDir()
			d := ldifDirectory(t, dir)
			if kind == "slapd" {
				d = slapdDirectory(t)
			}
			write := func(grantBob bool) {
				repo := policyRepo(d.target, time.Now(), grantBob)
				if !grantBob && tc.gone == "ended" {
					// Keep bob's grant, its window over: started 3h ago, 2h long.
					repo = policyRepo(d.target, time.Now(), true)
					i := strings.LastIndex(repo, `start     = "`) + len(`start     = "`)
					repo = repo[:i] + time.Now().Add(-3*time.Hour).UTC().Format(time.RFC3339) + repo[i+strings.IndexByte(repo[i:], '"'):]
				}
				if err := os.WriteFile(filepath.Join(dir, "main.hcl"), []byte(repo), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			write(true)
			// One provider call for the target with both groups; the
			// after-call point is passed once per change after it (5: admins
			// remove mallory, add alice, add bob; ops add alice, add bob), so
			// the 4th comes after the call that added bob to ops, killed
			// before any outcome is recorded.
			_, out, ps := jitform(t, dir, []string{crashpoint.Env + "=" + crashpoint.AfterCall + ":4"}, "apply", "--auto-approve")
			if ws, _ := ps.Sys().(syscall.WaitStatus); !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
				t.Fatalf("apply was not killed by SIGKILL:\n%s", out)
			}
			if !slices.Contains(d.members(t, opsDN), bob) {
				t.Fatalf("the crash came before bob's add reached the directory: %v", d.members(t, opsDN))
			}
			// The crash hid the outcome: bob's add is an open intent.
			open := 0
			for _, c := range ledgerChanges(t, dir) {
				if c.Member == bob && c.Group == "group.ops" && c.Action == "add" {
					open++
				}
			}
			if open != 1 {
				t.Fatalf("%d intents to add bob to group.ops, want the 1 the crash left open", open)
			}
			write(false) // bob's grant is gone (deleted, or its window ended)
			code, out, _ := jitform(t, dir, nil, "apply", "--auto-approve")
			if code != 0 {
				t.Fatalf("apply exited %d:\n%s", code, out)
			}
			if got := d.members(t, opsDN); slices.Contains(got, bob) {
				t.Errorf("bob leaked: still in the non-exclusive group after his grant went (%v)\n%s", got, out)
			}
			if got := d.members(t, opsDN); !slices.Contains(got, svc) || !slices.Contains(got, alice) {
				t.Errorf("svc (never added by jitform) and alice (still granted) must stay in the non-exclusive group: %v", got)
			}
			checkLedger(t, dir)
		})
	}
}
