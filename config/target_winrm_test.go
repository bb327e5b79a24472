package config

import (
	"strings"
	"testing"
)

// allow_domain_controller is off unless set, and must be a bool.
func TestWinrmAllowDomainController(t *testing.T) {
	for _, tc := range []struct {
		name, attr string
		want       bool
		diag       string
	}{
		{"default off", "", false, ""},
		{"opt in", "allow_domain_controller = true", true, ""},
		{"not a bool", `allow_domain_controller = "maybe"`, false, "a bool is required"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src := []byte("target \"winrm\" \"dc\" {\n  address  = \"dc01\"\n  user     = \"svc\"\n  password = \"p\"\n  " + tc.attr + "\n}\n")
			cfg, diags := LoadFiles("testdata", map[string][]byte{"dc.hcl": src}, testOptions())
			if tc.diag != "" {
				if !diags.HasErrors() || !strings.Contains(renderDiags(diags), tc.diag) || !strings.Contains(renderDiags(diags), "dc.hcl:5") {
					t.Fatalf("diagnostics = %s; want one naming dc.hcl:5 and %s", renderDiags(diags), tc.diag)
				}
				return
			}
			if diags.HasErrors() {
				t.Fatal(renderDiags(diags))
			}
			if got := cfg.TargetByAddr("target.winrm.dc").WinRM.AllowDomainController; got != tc.want {
				t.Errorf("AllowDomainController = %v, want %v", got, tc.want)
			}
		})
	}
}

// end_sessions is off unless set, applies to groups on winrm targets, and
// is refused on a directory group with its file and line.
func TestGroupEndSessions(t *testing.T) {
	const targets = "target \"winrm\" \"web\" {\n  address  = \"web01\"\n  user     = \"svc\"\n  password = \"p\"\n}\n" +
		"target \"ldap\" \"corp\" {\n  url     = \"ldaps://ldap.example.org\"\n  bind_dn = \"cn=jitform,dc=example,dc=org\"\n  password = \"p\"\n  base_dn = \"dc=example,dc=org\"\n}\n"
	for _, tc := range []struct {
		name, group string
		want        bool
		diag        string
	}{
		{"default off", "group \"g\" {\n  target = target.winrm.web\n  name   = \"S-1-5-32-544\"\n}\n", false, ""},
		{"opt in", "group \"g\" {\n  target       = target.winrm.web\n  name         = \"S-1-5-32-544\"\n  end_sessions = true\n}\n", true, ""},
		{"not a bool", "group \"g\" {\n  target       = target.winrm.web\n  name         = \"S-1-5-32-544\"\n  end_sessions = \"yes\"\n}\n", false, "a bool is required"},
		{"directory group", "group \"g\" {\n  target       = target.ldap.corp\n  dn           = \"cn=admins,dc=example,dc=org\"\n  end_sessions = true\n}\n", false, "winrm targets only"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, diags := LoadFiles("testdata", map[string][]byte{"t.hcl": []byte(targets), "g.hcl": []byte(tc.group)}, testOptions())
			if tc.diag != "" {
				if !diags.HasErrors() || !strings.Contains(renderDiags(diags), tc.diag) || !strings.Contains(renderDiags(diags), "g.hcl:4") {
					t.Fatalf("diagnostics = %s; want one naming g.hcl:4 and %s", renderDiags(diags), tc.diag)
				}
				return
			}
			if diags.HasErrors() {
				t.Fatal(renderDiags(diags))
			}
			if got := cfg.GroupByAddr("group.g").Attributes.EndSessions; got != tc.want {
				t.Errorf("EndSessions = %v, want %v", got, tc.want)
			}
		})
	}
}
