package operation

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jitform/jitform/internal/crashpoint"
	"github.com/jitform/jitform/planner"
	"github.com/jitform/jitform/providers"
	"github.com/jitform/jitform/providers/ldif"
	"github.com/jitform/jitform/state"
)

// Ephemeral accounts end to end on the LDIF provider: an account created
// for alice's grant, standing in for her in the policy's exclusive group,
// its password delivered only to her; deleted, and out of the group, after
// the window. Crash safety between intent and outcome, and entries jitform
// did not make are never touched.

const ephemeralRepo = `
target "ldif" "dir" {
  path = "dir.ldif"
}

group "db_admins" {
  target    = target.ldif.dir
  dn        = "cn=db-admins,ou=groups,dc=example,dc=org"
  exclusive = true
  members   = ["uid=dba,ou=people,dc=example,dc=org"]
}

account "adm" {
  target    = target.ldif.dir
  ephemeral = true
  base      = "ou=jit,dc=example,dc=org"
}

actor "alice" {
  ssh_key = "ALICE_KEY"
}

actor "carol" {
  ssh_key = "CAROL_KEY"
}

policy "db_break_fix" {
  groups       = [group.db_admins]
  accounts     = [account.adm]
  eligible     = ["alice"]
  max_duration = "4h"
  approvals    = 1
  approvers    = ["carol"]
}

grant "alice_fix" {
  policy      = policy.db_break_fix
  principal   = "alice"
  start       = "2026-11-23T09:00:00Z"
  duration    = "2h"
  ticket      = "CHG1"
  approved_by = ["carol"]
}
`

const ephemeralLDIF = `version: 1

# people
dn: uid=alice,ou=people,dc=example,dc=org
objectClass: inetOrgPerson
uid: alice
cn: Alice
sn: A

dn: uid=dba,ou=people,dc=example,dc=org
objectClass: inetOrgPerson
uid: dba
cn: DBA
sn: D

dn: ou=jit,dc=example,dc=org
objectClass: organizationalUnit
ou: jit

dn: cn=db-admins,ou=groups,dc=example,dc=org
objectClass: groupOfNames
cn: db-admins
member: uid=dba,ou=people,dc=example,dc=org
`

const admDN = "uid=adm-alice-alice_fix,ou=jit,dc=example,dc=org"

func ephemeralEnv(t *testing.T, extraLDIF string) (string, *time.Time, Options) {
	t.Helper()
	dir, now, opts, _ := accountsEnv(t)
	alice, _ := testKey(t, "alice")
	carol, _ := testKey(t, "carol")
	hcl := strings.NewReplacer("ALICE_KEY", alice, "CAROL_KEY", carol).Replace(ephemeralRepo)
	if err := os.WriteFile(filepath.Join(dir, "main.hcl"), []byte(hcl), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "dir.ldif"), []byte(ephemeralLDIF+extraLDIF), 0o600); err != nil {
		t.Fatal(err)
	}
	return dir, now, opts
}

func changeLines(p *planner.Plan) []string {
	var out []string
	for _, c := range p.Changes {
		out = append(out, c.Kind+" "+c.Action+" "+c.Group+" "+c.Member)
	}
	return out
}

func TestEphemeralAccountLifecycle(t *testing.T) {
	dir, now, opts := ephemeralEnv(t, "")
	ctx := context.Background()
	_, alicePriv := testKey(t, "alice")

	p, _, err := Plan(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"group add group.db_admins " + admDN,
		"account create account.adm " + admDN,
	}
	if got := changeLines(p); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("plan in the window:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	text := renderAll(t, p)
	for _, s := range []string{"+ account adm-alice-alice_fix on dir: create (password rotated) for alice", "+ " + admDN + " (alice)", `"action": "create"`} {
		if !strings.Contains(text, s) {
			t.Errorf("the plan does not say %q:\n%s", s, text)
		}
	}

	res, err := Apply(ctx, opts, nil, nil)
	if err != nil || res.Failed() {
		t.Fatalf("apply in the window: %v %+v", err, res)
	}
	if got := entryAttr(t, dir, admDN, "description"); len(got) != 1 || got[0] != "jitform account.adm grant grant.alice_fix" {
		t.Fatalf("created account's description = %q", got)
	}
	members := entryAttr(t, dir, "cn=db-admins,ou=groups,dc=example,dc=org", "member")
	if strings.Join(members, ";") != "uid=dba,ou=people,dc=example,dc=org;"+admDN {
		t.Errorf("group members = %q: want the declared member and the created account, not alice herself", members)
	}
	ct, err := os.ReadFile(filepath.Join(dir, state.StateDirName, state.CredentialsDirName, "grant.alice_fix.age"))
	if err != nil {
		t.Fatal(err)
	}
	pw, err := DecryptCredential(ct, alicePriv, nil)
	if err != nil {
		t.Fatalf("alice cannot decrypt: %v", err)
	}
	if !ldif.CheckSSHA(entryAttr(t, dir, admDN, "userPassword")[0], pw.Reveal()) {
		t.Fatal("the delivered password is not the created account's")
	}
	if !strings.Contains(readFile(t, dir, "dir.ldif"), "# people") {
		t.Error("the directory file lost its comment: the rewrite must keep unchanged records byte for byte")
	}

	if p, _, err = Plan(ctx, opts); err != nil || p.HasChanges() {
		t.Fatalf("not converged in the window: %v %v", err, changeLines(p))
	}

	*now = now.Add(2 * time.Hour)
	p, _, err = Plan(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	want = []string{
		"group remove group.db_admins " + admDN,
		"account delete account.adm " + admDN,
	}
	if got := changeLines(p); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("plan after the window:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	for _, c := range p.Changes {
		if c.Reason.Kind != planner.ReasonWindowEnded || c.Reason.Grant != "grant.alice_fix" {
			t.Errorf("%s %s: reason %+v, want window_ended naming grant.alice_fix", c.Kind, c.Action, c.Reason)
		}
	}
	res, err = Apply(ctx, opts, nil, nil)
	if err != nil || res.Failed() {
		t.Fatalf("apply after the window: %v %+v", err, res)
	}
	if strings.Contains(readFile(t, dir, "dir.ldif"), "adm-alice") {
		t.Errorf("the account or its membership is still in the directory:\n%s", readFile(t, dir, "dir.ldif"))
	}
	if _, err := os.Stat(filepath.Join(dir, state.StateDirName, state.CredentialsDirName, "grant.alice_fix.age")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the credential outlives the account: %v", err)
	}
	if p, _, err = Plan(ctx, opts); err != nil || p.HasChanges() {
		t.Fatalf("not converged after the window: %v %v", err, changeLines(p))
	}
	seen := ledgerText(t, dir) + readFile(t, dir, "dir.ldif")
	if strings.Contains(seen, pw.Reveal()) {
		t.Fatal("the password reached the ledger or the directory in clear")
	}
}

func readFile(t *testing.T, dir, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestEphemeralAccountsNotOursAreLeftAlone: an entry at the account's DN
// without the marker is never taken over (the create fails and changes
// nothing), and a marked entry the ledger does not record is never deleted.
func TestEphemeralAccountsNotOursAreLeftAlone(t *testing.T) {
	squatter := `
dn: ` + admDN + `
objectClass: inetOrgPerson
uid: adm-alice-alice_fix
cn: squatter
sn: s
userPassword: {SSHA}c3F1YXR0ZXJzcXVhdHRlcnNxdWF0dGVy
`
	forged := `
dn: uid=adm-bob-x,ou=jit,dc=example,dc=org
objectClass: inetOrgPerson
uid: adm-bob-x
cn: forged
sn: f
description: jitform account.adm grant g-aaaaaaaaaa
`
	t.Run("squatter", func(t *testing.T) {
		dir, _, opts := ephemeralEnv(t, squatter)
		res, err := Apply(context.Background(), opts, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		var create *Outcome
		for i, o := range res.Outcomes {
			if o.Change.Action == planner.ActionCreate {
				create = &res.Outcomes[i]
			}
		}
		if create == nil || create.Status != providers.Failed || !strings.Contains(create.Err.Error(), "not jitform's account") {
			t.Fatalf("create over a squatter: %+v", create)
		}
		if got := entryAttr(t, dir, admDN, "userPassword"); len(got) != 1 || got[0] != "{SSHA}c3F1YXR0ZXJzcXVhdHRlcnNxdWF0dGVy" {
			t.Errorf("the squatter's password was changed: %q", got)
		}
	})
	t.Run("forged marker", func(t *testing.T) {
		dir, now, opts := ephemeralEnv(t, forged)
		*now = now.Add(24 * time.Hour) // no grant counts
		p, _, err := Plan(context.Background(), opts)
		if err != nil {
			t.Fatal(err)
		}
		if p.HasChanges() {
			t.Fatalf("a marked entry jitform never created is planned: %v", changeLines(p))
		}
		warned := false
		for _, w := range p.Warnings {
			warned = warned || strings.Contains(w.Summary, "no record of jitform creating it")
		}
		if !warned {
			t.Errorf("no warning about the unrecorded marked entry: %+v", p.Warnings)
		}
		if _, err := Apply(context.Background(), opts, nil, nil); err != nil {
			t.Fatal(err)
		}
		if len(entryAttr(t, dir, "uid=adm-bob-x,ou=jit,dc=example,dc=org", "cn")) != 1 {
			t.Error("the unrecorded entry was deleted")
		}
	})
}

// TestEphemeralCrashBetweenIntentAndOutcome kills the apply (SIGKILL) at
// each point around the create; the next apply converges to one account
// whose password alice holds, in the group, and nothing stays uncertain.
func TestEphemeralCrashBetweenIntentAndOutcome(t *testing.T) {
	if os.Getenv("JITFORM_TEST_ACCOUNT_APPLY") != "" {
		return
	}
	for _, point := range []string{crashpoint.BeforeIntent, crashpoint.AfterIntent, crashpoint.AfterCall} {
		t.Run(point, func(t *testing.T) {
			dir, _, opts := ephemeralEnv(t, "")
			_, alicePriv := testKey(t, "alice")
			// The create is the target's first change (before its groups).
			cmd := exec.Command(os.Args[0], "-test.run=^TestAccountApplyHelper$", "-test.count=1")
			cmd.Env = append(os.Environ(), "JITFORM_TEST_ACCOUNT_APPLY="+dir, crashpoint.Env+"="+point+":1")
			out, err := cmd.CombinedOutput()
			var ee *exec.ExitError
			if !errors.As(err, &ee) || ee.ExitCode() != -1 {
				t.Fatalf("the helper was not killed at %s: %v\n%s", point, err, out)
			}
			res, err := Apply(context.Background(), opts, nil, nil)
			if err != nil || res.Failed() {
				t.Fatalf("recovery apply: %v %+v", err, res)
			}
			ct, err := os.ReadFile(filepath.Join(dir, state.StateDirName, state.CredentialsDirName, "grant.alice_fix.age"))
			if err != nil {
				t.Fatal(err)
			}
			pw, err := DecryptCredential(ct, alicePriv, nil)
			if err != nil {
				t.Fatal(err)
			}
			if !ldif.CheckSSHA(entryAttr(t, dir, admDN, "userPassword")[0], pw.Reveal()) {
				t.Error("after recovery alice's credential is not the account's password")
			}
			if strings.Count(readFile(t, dir, "dir.ldif"), "dn: "+admDN) != 1 {
				t.Error("after recovery the account is not there exactly once")
			}
			p, sess, err := Plan(context.Background(), opts)
			if err != nil || p.HasChanges() {
				t.Errorf("not converged after recovery: %v %v", err, changeLines(p))
			}
			if sess != nil && len(sess.Input.Ledger.Uncertain) != 0 {
				t.Errorf("the crashed change is still uncertain: %+v", sess.Input.Ledger.Uncertain)
			}
		})
	}
}

// TestEphemeralAccountOrphanedIsLoud: when the block that created an
// account no longer manages it (here its base moved), nothing would read or
// delete the account: every plan says so, naming it.
func TestEphemeralAccountOrphanedIsLoud(t *testing.T) {
	dir, _, opts := ephemeralEnv(t, "")
	ctx := context.Background()
	if res, err := Apply(ctx, opts, nil, nil); err != nil || res.Failed() {
		t.Fatalf("apply: %v %+v", err, res)
	}
	hcl := readFile(t, dir, "main.hcl")
	hcl = strings.Replace(hcl, `base      = "ou=jit,dc=example,dc=org"`, `base      = "ou=people,dc=example,dc=org"`, 1)
	if err := os.WriteFile(filepath.Join(dir, "main.hcl"), []byte(hcl), 0o600); err != nil {
		t.Fatal(err)
	}
	p, _, err := Plan(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	warned := false
	for _, w := range p.Warnings {
		warned = warned || strings.Contains(w.Summary, "jitform created "+strings.ToLower(admDN)) && strings.Contains(w.Summary, "neither read nor deleted")
	}
	if !warned {
		t.Errorf("no warning names the orphaned account: %+v", p.Warnings)
	}
}
