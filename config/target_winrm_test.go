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
