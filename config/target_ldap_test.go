package config

import (
	"strings"
	"testing"
)

// ttl_links is an Active Directory feature: accepted only with flavor
// "active_directory", refused with a diagnostic at the attribute otherwise.
func TestTTLLinksOnlyWithActiveDirectory(t *testing.T) {
	for _, tc := range []struct {
		name, flavor, ttl string
		want              bool   // TTLLinks after decoding
		err               string // diagnostic expected, "" for none
	}{
		{"active_directory", `"active_directory"`, "true", true, ""},
		{"active_directory_off", `"active_directory"`, "false", false, ""},
		{"default_off", `"active_directory"`, "", false, ""},
		{"openldap", `"openldap"`, "true", false, `targets.hcl:7:15: error: ttl_links requires flavor = "active_directory"`},
		{"no_flavor_means_openldap", "", "true", false, `targets.hcl:7:15: error: ttl_links requires flavor = "active_directory"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src := "target \"ldap\" \"corp\" {\n  url      = \"ldaps://dc01.corp.example\"\n  base_dn  = \"DC=corp,DC=example\"\n"
			if tc.flavor != "" {
				src += "  flavor   = " + tc.flavor + "\n"
			} else {
				src += "\n"
			}
			src += "  bind_dn  = \"CN=svc,DC=corp,DC=example\"\n  password = \"x\"\n"
			if tc.ttl != "" {
				src += "  ttl_links = " + tc.ttl + "\n"
			}
			src += "}\n"
			cfg, diags := validate(t, map[string][]byte{"targets.hcl": []byte(src)})
			if tc.err == "" {
				if diags.HasErrors() {
					t.Fatalf("unexpected diagnostics:\n%s", renderDiags(diags))
				}
				if got := cfg.Targets[0].LDAP.TTLLinks; got != tc.want {
					t.Errorf("TTLLinks = %v, want %v", got, tc.want)
				}
				return
			}
			if !strings.Contains(renderDiags(diags), tc.err) {
				t.Errorf("diagnostics:\n%s\nwant %q", renderDiags(diags), tc.err)
			}
		})
	}
}
