package config

import (
	"strings"
	"testing"
)

// TestInstanceNames: whatever a principal or grant is spelled like, the
// name holds only [a-z0-9._-], so it can reach a DN or a filter unescaped
// without changing its meaning; two grants never share a name.
func TestInstanceNames(t *testing.T) {
	a := &Account{Addr: "account.adm", Base: "ou=jit,dc=example,dc=org", Target: &Target{LDAP: &LDAPTarget{Flavor: FlavorOpenLDAP}}}
	for _, tc := range []struct {
		pattern, principal, grant, want, err string
	}{
		{"", "alice", "g-k3x9q2m7ab", "adm-alice-k3x9q2m7ab", ""},
		{"", `CORP\Alice`, "grant.alice_fix", "adm-alice-alice_fix", ""},
		{"", "alice@corp.example", "g-k3x9q2m7ab", "adm-alice-k3x9q2m7ab", ""},
		{"", "uid=Bob Smith,ou=people,dc=example,dc=org", "g-k3x9q2m7ab", "adm-bob-smith-k3x9q2m7ab", ""},
		{"", "x,cn=admins", "g-k3x9q2m7ab", "adm-x-cn-admins-k3x9q2m7ab", ""},
		{"", "*)(uid=*", "g-k3x9q2m7ab", "", "leaves nothing"},
		{"", "a*)(uid=b", "g-k3x9q2m7ab", "adm-b-k3x9q2m7ab", ""},
		{"", "../../etc", "g-k3x9q2m7ab", "adm-..-..-etc-k3x9q2m7ab", ""},
		{"jit_{grant}", "alice", "g-k3x9q2m7ab", "jit_k3x9q2m7ab", ""},
		{"", "???", "g-k3x9q2m7ab", "", "leaves nothing"},
		{"", "alice", "!!!", "", "leaves nothing"},
		{"", strings.Repeat("a", 70), "g-k3x9q2m7ab", "", "longer than 64"},
	} {
		a.Pattern = tc.pattern
		got, err := a.InstanceName(tc.principal, tc.grant)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("InstanceName(%q, %q) = %q, %v; want an error with %q", tc.principal, tc.grant, got, err, tc.err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("InstanceName(%q, %q) = %q, %v; want %q", tc.principal, tc.grant, got, err, tc.want)
		}
		if strings.Trim(got, "abcdefghijklmnopqrstuvwxyz0123456789._-") != "" {
			t.Errorf("InstanceName(%q) = %q holds a character outside [a-z0-9._-]", tc.principal, got)
		}
	}
	if got := a.InstanceDN("adm-alice-x"); got != "uid=adm-alice-x,ou=jit,dc=example,dc=org" {
		t.Errorf("OpenLDAP DN = %q", got)
	}
	a.Target.LDAP.Flavor = FlavorActiveDirectory
	if got := a.InstanceDN("adm-alice-x"); got != "cn=adm-alice-x,ou=jit,dc=example,dc=org" {
		t.Errorf("Active Directory DN = %q", got)
	}
}

func TestSAMAccountName(t *testing.T) {
	for _, name := range []string{"adm-alice-k3x9q2m7ab", "adm-alexandra-k3x9q2m7ab", "adm-alexandra-k3x9q2m7ac"} {
		got := SAMAccountName(name)
		if len(got) > 20 {
			t.Errorf("SAMAccountName(%q) = %q, longer than 20", name, got)
		}
		if len(name) <= 20 && got != name {
			t.Errorf("SAMAccountName(%q) = %q, want it unchanged", name, got)
		}
	}
	if SAMAccountName("adm-alexandra-k3x9q2m7ab") == SAMAccountName("adm-alexandra-k3x9q2m7ac") {
		t.Error("two long names share a sAMAccountName")
	}
}
