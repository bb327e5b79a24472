package config

import (
	"crypto/ed25519"
	"crypto/rand"
	"strings"
	"testing"

	"golang.org/x/crypto/ssh"

	"github.com/jitform/jitform/internal/grants/sktest"
)

// TestRequireSecurityKey: require_security_key decodes true, false,
// "presence" and "user_verification"; anything else is an error at the
// value; and under it a listed approver or eligible actor whose ssh_key is
// not a security key is an error at the list (they could never count).
func TestRequireSecurityKey(t *testing.T) {
	t.Parallel()
	_, edPriv, _ := ed25519.GenerateKey(rand.Reader)
	plain, _ := ssh.NewSignerFromKey(edPriv)
	plainKey := strings.TrimSpace(string(ssh.MarshalAuthorizedKey(plain.PublicKey())))
	skEd := strings.TrimSpace(sktest.MustNew(sktest.TypeEd25519, 1).AuthorizedKey())
	skEC := strings.TrimSpace(sktest.MustNew(sktest.TypeECDSA, 1).AuthorizedKey())

	src := func(carolKey, alice, attr string) map[string][]byte {
		return map[string][]byte{"main.hcl": []byte(`
target "ldif" "corp" {
  path   = "directory.ldif"
  flavor = "openldap"
}

group "ops" {
  target = target.ldif.corp
  dn     = "cn=ops,dc=example,dc=org"
}

actor "carol" { ssh_key = "` + carolKey + `" }
actor "dave" { ssh_key = "` + skEC + `" }
actor "alice" { ssh_key = "` + alice + `" }

policy "ops" {
  groups       = [group.ops]
  eligible     = ["alice", "bob"]
  max_duration = "4h"
  approval     = "ledger"
  approvers    = ["carol", "dave"]
  ` + attr + `
}
`)}
	}
	tests := []struct {
		name         string
		carol, alice string
		attr         string
		want         string
		err, at      string // substring of the diagnostic, and where
	}{
		{name: "absent: any key", carol: plainKey, alice: plainKey, attr: "", want: ""},
		{name: "false: any key", carol: plainKey, alice: plainKey, attr: "require_security_key = false", want: ""},
		{name: "true is presence", carol: skEd, alice: skEd, attr: "require_security_key = true", want: SecurityKeyPresence},
		{name: "presence", carol: skEd, alice: skEC, attr: `require_security_key = "presence"`, want: SecurityKeyPresence},
		{name: "user_verification", carol: skEd, alice: skEd, attr: `require_security_key = "user_verification"`, want: SecurityKeyUserVerification},
		{name: "unknown mode", carol: skEd, alice: skEd, attr: `require_security_key = "pin"`,
			err: `require_security_key must be true, false, "presence" or "user_verification", not "pin"`, at: "main.hcl:22:26:"},
		{name: "a number", carol: skEd, alice: skEd, attr: `require_security_key = 2`,
			err: "Invalid require_security_key", at: "main.hcl:22:26:"},
		{name: "approver without a security key", carol: plainKey, alice: skEd, attr: "require_security_key = true",
			err: `approver "carol" has a ssh-ed25519 ssh_key (actor "carol" at testdata/main.hcl:12)`, at: "main.hcl:21:18:"},
		{name: "eligible actor without a security key", carol: skEd, alice: plainKey, attr: `require_security_key = "user_verification"`,
			err: `eligible actor "alice" has a ssh-ed25519 ssh_key`, at: "main.hcl:18:18:"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cfg, diags := validate(t, src(tc.carol, tc.alice, tc.attr))
			text := renderDiags(diags)
			if tc.err != "" {
				if !diags.HasErrors() || !strings.Contains(text, tc.err) || !strings.Contains(text, tc.at) {
					t.Fatalf("want an error at %s saying %q, got:\n%s", tc.at, tc.err, text)
				}
				return
			}
			if diags.HasErrors() {
				t.Fatalf("unexpected errors:\n%s", text)
			}
			p := cfg.PolicyByAddr("policy.ops")
			if p == nil || p.RequireSecurityKey != tc.want {
				t.Fatalf("policy = %+v, want RequireSecurityKey %q", p, tc.want)
			}
		})
	}
}

// TestRequireSecurityKeyRepositoryApproval: under approval = "repository"
// without break_glass nothing is signed in the ledger, so the attribute is
// a warning at its line, and approvers with ordinary keys are no error.
func TestRequireSecurityKeyRepositoryApproval(t *testing.T) {
	t.Parallel()
	_, edPriv, _ := ed25519.GenerateKey(rand.Reader)
	plain, _ := ssh.NewSignerFromKey(edPriv)
	cfg, diags := validate(t, map[string][]byte{"main.hcl": []byte(`
target "ldif" "corp" {
  path   = "directory.ldif"
  flavor = "openldap"
}

group "ops" {
  target = target.ldif.corp
  dn     = "cn=ops,dc=example,dc=org"
}

actor "carol" { ssh_key = "` + strings.TrimSpace(string(ssh.MarshalAuthorizedKey(plain.PublicKey()))) + `" }

policy "ops" {
  groups       = [group.ops]
  eligible     = ["alice"]
  max_duration = "4h"
  approvers    = ["carol"]
  require_security_key = true
}
`)})
	text := renderDiags(diags)
	if diags.HasErrors() || !strings.Contains(text, "main.hcl:19:26: warning: require_security_key has no effect") {
		t.Fatalf("want only a warning at main.hcl:19:26, got:\n%s", text)
	}
	if p := cfg.PolicyByAddr("policy.ops"); p == nil || p.RequireSecurityKey != SecurityKeyPresence {
		t.Fatalf("policy = %+v", p)
	}
}
