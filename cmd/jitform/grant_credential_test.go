package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jitform/jitform/providers/ldif"
)

const credentialRepo = `
target "ldif" "dir" {
  path = "dir.ldif"
}

account "jitadmin" {
  target          = target.ldif.dir
  dn              = "uid=jit-admin,ou=people,dc=example,dc=org"
  rotate_password = true
}

actor "alice" {
  ssh_key = "ALICE_KEY"
}

policy "admin" {
  accounts     = [account.jitadmin]
  eligible     = ["alice"]
  max_duration = "4h"
  approvals    = 0
}

grant "alice_admin" {
  policy    = policy.admin
  principal = "alice"
  start     = timeadd(plantimestamp(), "-1h")
  duration  = "2h"
}
`

const credentialLDIF = `version: 1

dn: uid=jit-admin,ou=people,dc=example,dc=org
objectClass: inetOrgPerson
uid: jit-admin
cn: JIT admin
sn: admin
pwdAccountLockedTime: 000001010000Z
`

// TestGrantCredential: after apply enables the account for alice's grant,
// `jitform grant credential ID --key FILE` prints, with alice's key, the
// password the directory now holds; with another key it fails and prints
// nothing; plan and apply output never show the password.
func TestGrantCredential(t *testing.T) {
	dir := t.TempDir()
	keys := filepath.Join("..", "..", "testdata", "keys")
	pub, err := os.ReadFile(filepath.Join(keys, "alice.pub"))
	if err != nil {
		t.Fatal(err)
	}
	hcl := strings.Replace(credentialRepo, "ALICE_KEY", strings.TrimSpace(string(pub)), 1)
	for name, body := range map[string]string{"main.hcl": hcl, "dir.ldif": credentialLDIF} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	run := func(args ...string) (string, string, int) {
		var out, errb bytes.Buffer
		a := &app{stdin: strings.NewReader(""), stdout: &out, stderr: &errb, getenv: func(string) string { return "" }}
		code := a.main(context.Background(), append([]string{"-C", dir}, args...))
		return out.String(), errb.String(), code
	}
	planOut, planErr, code := run("plan")
	if code != exitOK || !strings.Contains(planOut, "~ account uid=jit-admin,ou=people,dc=example,dc=org on dir: enable (password rotated) for alice") {
		t.Fatalf("plan exit %d:\n%s%s", code, planOut, planErr)
	}
	if _, _, code := run("grant", "credential", "grant.alice_admin", "--key", filepath.Join(keys, "alice")); code == exitOK {
		t.Fatal("grant credential succeeded before any password was delivered")
	}
	applyOut, applyErr, code := run("apply", "--auto-approve")
	if code != exitOK || !strings.Contains(applyOut, "jitform grant credential grant.alice_admin --key FILE") {
		t.Fatalf("apply exit %d:\n%s%s", code, applyOut, applyErr)
	}
	absKey, _ := filepath.Abs(filepath.Join(keys, "alice"))
	out, errOut, code := run("grant", "credential", "alice_admin", "--key", absKey)
	if code != exitOK {
		t.Fatalf("grant credential exit %d: %s", code, errOut)
	}
	pw := strings.TrimSpace(out)
	b, _ := os.ReadFile(filepath.Join(dir, "dir.ldif"))
	var stored string
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "userPassword: "); ok {
			stored = v
		}
	}
	if len(pw) < 24 || !ldif.CheckSSHA(stored, pw) {
		t.Fatalf("printed password (%d chars) does not match the directory's userPassword %q", len(pw), stored)
	}
	absBob, _ := filepath.Abs(filepath.Join(keys, "bob"))
	bobOut, bobErr, code := run("grant", "credential", "grant.alice_admin", "--key", absBob)
	if code == exitOK || bobOut != "" || !strings.Contains(bobErr, "decrypt") {
		t.Errorf("with bob's key: exit %d, stdout %q, stderr %q", code, bobOut, bobErr)
	}
	logOut, _, code := run("ledger", "log")
	if code != exitOK || !strings.Contains(logOut, "enable account.jitadmin (uid=jit-admin,ou=people,dc=example,dc=org)") || !strings.Contains(logOut, "password delivered for grant.alice_admin (fingerprint ") {
		t.Errorf("ledger log does not show the account change and the fingerprint:\n%s", logOut)
	}
	for _, s := range []string{planOut, planErr, applyOut, applyErr, bobErr, logOut} {
		if strings.Contains(s, pw) {
			t.Fatal("the password appears in plan, apply or error output")
		}
	}
}
