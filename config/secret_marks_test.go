package config

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"sort"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/gohcl"
)

const canaryValue = "CANARY-env-value-Qx7-never-printed"

func canaryOptions() LoadOptions {
	o := testOptions()
	o.LookupEnv = func(name string) (string, bool) {
		if name == "JITFORM_CANARY" {
			return canaryValue, true
		}
		return "", false
	}
	return o
}

// attrLine is one attribute of a block in the all-attributes repository.
type attrLine struct{ name, expr string }

// blockSpec is a block of the repository below with every attribute its
// kind accepts, each with a valid literal value.
type blockSpec struct {
	header string
	schema any // the gohcl struct the block decodes into
	attrs  []attrLine
	nested string // a nested block, written as is
}

func allAttributeBlocks() []blockSpec {
	return []blockSpec{
		{`target "ldap" "corp"`, &ldapHCL{}, []attrLine{
			{"url", `"ldaps://dc01.corp.example"`}, {"bind_dn", `"cn=svc,dc=corp,dc=example"`},
			{"password", `"literal-pw-1"`}, {"base_dn", `"dc=corp,dc=example"`}, {"flavor", `"openldap"`},
			{"ca_file", `"ca.pem"`}, {"start_tls", `false`}, {"insecure_plaintext", `false`},
			{"insecure_skip_verify", `false`}, {"ttl_links", `false`}, {"timeout", `"10s"`}, {"user_base", `"ou=people,dc=corp,dc=example"`},
			{"user_filter", `"(uid=%s)"`}, {"page_size", `100`}, {"max_concurrency", `2`},
		}, ""},
		{`target "ldif" "export"`, &ldifHCL{}, []attrLine{{"path", `"directory.ldif"`}, {"flavor", `"openldap"`}}, ""},
		{`target "winrm" "web"`, &winrmHCL{}, []attrLine{
			{"address", `"web01"`}, {"port", `5986`}, {"https", `true`}, {"insecure", `false`},
			{"insecure_plaintext", `false`}, {"ca_file", `"ca.pem"`}, {"auth", `"ntlm"`}, {"allow_domain_controller", `false`}, {"user", `"CORP\\svc"`},
			{"password", `"literal-pw-2"`}, {"timeout", `"10s"`},
		}, ""},
		{`target "winrm" "fleet"`, &winrmHCL{}, []attrLine{
			{"hosts", `["web02", "web03"]`}, {"user", `"CORP\\svc"`}, {"password", `"literal-pw-3"`},
		}, ""},
		{`group "dir"`, &groupHCL{}, []attrLine{
			{"target", `target.ldap.corp`}, {"dn", `"cn=admins,dc=corp,dc=example"`}, {"members", `["svc-backup"]`},
			{"exclusive", `true`}, {"placeholder", `"cn=nobody,dc=corp,dc=example"`}, {"end_sessions", `false`},
		}, ""},
		{`group "win"`, &groupHCL{}, []attrLine{{"target", `target.winrm.web`}, {"name", `"S-1-5-32-544"`}}, ""},
		{`right "r"`, &rightHCL{}, []attrLine{
			{"target", `target.winrm.web`}, {"name", `"SeBackupPrivilege"`}, {"members", `["CORP\\svc"]`}, {"exclusive", `false`},
		}, ""},
		{`sudo_role "s"`, &sudoRoleHCL{}, []attrLine{
			{"target", `target.ldap.corp`}, {"dn", `"cn=db-root,ou=SUDOers,dc=corp,dc=example"`}, {"members", `["svc"]`}, {"exclusive", `true`},
		}, ""},
		{`account "a"`, &accountHCL{}, []attrLine{
			{"target", `target.ldap.corp`}, {"dn", `"uid=jit-admin,dc=corp,dc=example"`}, {"rotate_password", `false`},
			{"ephemeral", `false`},
		}, ""},
		{`account "e"`, &accountHCL{}, []attrLine{
			{"target", `target.ldap.corp`}, {"ephemeral", `true`}, {"pattern", `"adm-{principal}-{grant}"`}, {"base", `"ou=jit,dc=corp,dc=example"`},
		}, ""},
		{`account "w"`, &accountHCL{}, []attrLine{{"target", `target.winrm.web`}, {"name", `"jit-admin"`}}, ""},
		{`actor "carol"`, &actorHCL{}, []attrLine{{"ssh_key", `"` + testActorKey + `"`}}, ""},
		{`policy "p"`, &policyHCL{}, []attrLine{
			{"groups", `[group.dir]`}, {"rights", `[right.r]`}, {"sudo_roles", `[sudo_role.s]`}, {"accounts", `[account.a]`}, {"eligible", `["alice"]`}, {"max_duration", `"4h"`}, {"approvals", `1`},
			{"approvers", `["carol"]`}, {"ticket_pattern", `"^CHG[0-9]+$"`}, {"windows", `["Mon-Sun 00:00-24:00 UTC"]`},
			{"approval", `"repository"`}, {"request_ttl", `"24h"`}, {"max_active", `2`}, {"require_security_key", `false`},
		}, "  break_glass {\n    max_duration = \"1h\"\n  }\n"},
		{`grant "g"`, &grantHCL{}, []attrLine{
			{"policy", `policy.p`}, {"principal", `"alice"`}, {"start", `"2026-11-23T09:00:00Z"`}, {"duration", `"2h"`},
			{"ticket", `"CHG1"`}, {"reason", `"patch"`}, {"approved_by", `["carol"]`},
		}, ""},
	}
}

const testActorKey = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl carol@laptop"

// render writes the repository; override replaces one attribute of one
// block (index bi) and, when drop is set, leaves out another.
func renderRepo(blocks []blockSpec, bi int, name, expr, drop string) string {
	var b strings.Builder
	for i, blk := range blocks {
		fmt.Fprintf(&b, "%s {\n", blk.header)
		for _, a := range blk.attrs {
			e := a.expr
			if i == bi && a.name == drop {
				continue
			}
			if i == bi && a.name == name {
				e = expr
			}
			fmt.Fprintf(&b, "  %s = %s\n", a.name, e)
		}
		if i == bi && name == "break_glass.max_duration" {
			b.WriteString("  break_glass {\n    max_duration = " + expr + "\n  }\n")
		} else {
			b.WriteString(blk.nested)
		}
		b.WriteString("}\n\n")
	}
	return b.String()
}

// TestEnvValuesReachOnlyPasswords sets every attribute of every block, one
// at a time, from env() holding a canary: in password it loads (and the
// Secret reveals it); anywhere else it is an error at the attribute, and the
// canary is in no diagnostic, no rendered diagnostic with source snippets,
// and no decoded (JSON-encoded or printed) configuration.
func TestEnvValuesReachOnlyPasswords(t *testing.T) {
	t.Parallel()
	blocks := allAttributeBlocks()
	if _, diags := LoadFiles("repo", map[string][]byte{"main.hcl": []byte(renderRepo(blocks, -1, "", "", ""))}, canaryOptions()); diags.HasErrors() {
		t.Fatalf("the all-attributes repository does not load:\n%s", renderDiags(diags))
	}
	tried := 0
	wanted, covered := map[string]map[string]bool{}, map[string]map[string]bool{}
	for bi, blk := range blocks {
		// Every attribute each kind of block accepts is covered (checked
		// below), so a new attribute is too.
		schema, _ := gohcl.ImpliedBodySchema(blk.schema)
		kind := reflect.TypeOf(blk.schema).String()
		if wanted[kind] == nil {
			wanted[kind], covered[kind] = map[string]bool{}, map[string]bool{}
		}
		for _, a := range schema.Attributes {
			wanted[kind][a.Name] = true
		}
		names := []string{}
		for _, a := range blk.attrs {
			covered[kind][a.name] = true
			names = append(names, a.name)
		}
		if blk.nested != "" {
			names = append(names, "break_glass.max_duration")
		}
		for _, name := range names {
			expr := `env("JITFORM_CANARY")`
			for _, a := range blk.attrs {
				if a.name == name && strings.HasPrefix(a.expr, "[") {
					expr = `[env("JITFORM_CANARY")]`
				}
			}
			t.Run(strings.ReplaceAll(blk.header, `"`, "")+"/"+name, func(t *testing.T) {
				tried++
				src := renderRepo(blocks, bi, name, expr, "")
				cfg, diags := LoadFiles("repo", map[string][]byte{"main.hcl": []byte(src)}, canaryOptions())
				var text bytes.Buffer
				if err := hcl.NewDiagnosticTextWriter(&text, cfg.Files, 120, false).WriteDiagnostics(diags); err != nil {
					t.Fatal(err)
				}
				if strings.Contains(text.String(), canaryValue) {
					t.Errorf("the diagnostics show the env() value:\n%s", text.String())
				}
				js, err := json.Marshal(struct {
					T []*Target
					G []*Group
					A []*Actor
					P []*Policy
					R []*Grant
				}{cfg.Targets, cfg.Groups, cfg.Actors, cfg.Policies, cfg.Grants})
				if err != nil {
					t.Fatal(err)
				}
				printed := fmt.Sprintf("%+v %+v", cfg.Targets, cfg.Groups)
				for _, tg := range cfg.Targets {
					printed += fmt.Sprintf("%+v %+v %+v", tg.LDAP, tg.LDIF, tg.WinRM)
				}
				if strings.Contains(string(js), canaryValue) || strings.Contains(printed, canaryValue) {
					t.Errorf("the decoded configuration holds the env() value outside a Secret")
				}
				if IsSecretAttribute(name) {
					if diags.HasErrors() {
						t.Fatalf("env() in %s is refused:\n%s", name, renderDiags(diags))
					}
					found := false
					for _, tg := range cfg.Targets {
						if s := secretOf(tg.LDAP); s != nil && s.Reveal() == canaryValue {
							found = true
						}
						if s := secretOf(tg.WinRM); s != nil && s.Reveal() == canaryValue {
							found = true
						}
					}
					if !found {
						t.Errorf("no target's password reveals the env() value")
					}
					return
				}
				wantMsg := "env() value outside a password: " + name + " gets its value from env()"
				switch name {
				case "target", "groups", "policy", "rights", "sudo_roles", "accounts":
					wantMsg = "Invalid reference"
				}
				if !diags.HasErrors() || !strings.Contains(renderDiags(diags), wantMsg) {
					t.Errorf("env() in %s: want an error %q, got:\n%s", name, wantMsg, renderDiags(diags))
				}
			})
		}
	}
	for kind, attrs := range wanted {
		var missing []string
		for a := range attrs {
			if !covered[kind][a] {
				missing = append(missing, a)
			}
		}
		sort.Strings(missing)
		if len(missing) > 0 {
			t.Errorf("%s: the test does not cover %v", kind, missing)
		}
	}
	if tried < 45 {
		t.Errorf("only %d attributes tried", tried)
	}
}

// TestEnvMarkFollowsExpressions: the sensitive mark survives templates,
// function calls, conditionals, lists and for expressions, so no shape of
// expression launders an env() value into a printed attribute.
func TestEnvMarkFollowsExpressions(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ attr, expr string }{
		{"dn", `"cn=${env("JITFORM_CANARY")},dc=example"`},
		{"dn", `"cn=${timeadd(env("JITFORM_CANARY"), "1h")}"`},
		{"dn", `env("JITFORM_CANARY") == "x" ? "cn=a,dc=example" : "cn=b,dc=example"`},
		{"members", `[for m in [env("JITFORM_CANARY")] : m]`},
		{"members", `[for m in ["a"] : "${m}${env("JITFORM_CANARY")}"]`},
		{"members", `env("JITFORM_CANARY") != "" ? ["a"] : ["b"]`},
		{"placeholder", `<<EOT
cn=${env("JITFORM_CANARY")}
EOT`},
	} {
		src := minimalRepo + "\ngroup \"g2\" {\n  target = target.ldif.export\n  dn = \"cn=g2,dc=example\"\n  " + tc.attr + " = " + tc.expr + "\n}\n"
		if tc.attr == "dn" {
			src = strings.Replace(src, "  dn = \"cn=g2,dc=example\"\n", "", 1)
		}
		cfg, diags := LoadFiles("repo", map[string][]byte{"main.hcl": []byte(src)}, canaryOptions())
		text := renderDiags(diags)
		if !strings.Contains(text, "env() value outside a password: "+tc.attr) {
			t.Errorf("%s = %s: want it refused:\n%s", tc.attr, tc.expr, text)
		}
		if strings.Contains(text, canaryValue) || len(cfg.Groups) != 1 {
			t.Errorf("%s = %s: leaked or loaded:\n%s", tc.attr, tc.expr, text)
		}
	}
}

// TestLoadReadsNoEnvironment: loading never reads an environment variable
// (so commands that open no target need no password), and the password is
// read when revealed, with errors that name the variable and never a value.
func TestLoadReadsNoEnvironment(t *testing.T) {
	t.Parallel()
	env := map[string]string{"PW": "pw-Value-1", "EMPTY": "", "PART": "half-Two", "WHEN": "not-a-time-Secret"}
	var reads []string
	opts := testOptions()
	opts.LookupEnv = func(name string) (string, bool) {
		reads = append(reads, name)
		v, ok := env[name]
		return v, ok
	}
	target := func(name, pw string) string {
		return "target \"ldap\" \"" + name + "\" {\n  url = \"ldaps://dc01\"\n  bind_dn = \"cn=svc\"\n  base_dn = \"dc=x\"\n  password = " + pw + "\n}\n"
	}
	src := target("plain", `env("PW")`) + target("unset", `env("JITFORM_CORP_PASSWORD")`) + target("empty", `env("EMPTY")`) +
		target("joined", `"${env("PART")}-${env("PW")}"`) + target("literal", `"literal-Pw"`) +
		target("fn", `timeadd(env("WHEN"), "1h")`) + target("nofile", `file(env("PW"))`)
	cfg, diags := LoadFiles(t.TempDir(), map[string][]byte{"main.hcl": []byte(src)}, opts)
	if diags.HasErrors() {
		t.Fatal(renderDiags(diags))
	}
	if len(reads) != 0 {
		t.Fatalf("loading read %v", reads)
	}
	for _, tc := range []struct{ target, want, wantErr string }{
		{"plain", "pw-Value-1", ""},
		{"unset", "", "environment variable JITFORM_CORP_PASSWORD is not set"},
		{"empty", "", "environment variable EMPTY is empty"},
		{"joined", "half-Two-pw-Value-1", ""},
		{"literal", "literal-Pw", ""},
		{"fn", "", `"(sensitive)" is not an RFC 3339 timestamp`},
		{"nofile", "", "read (sensitive): no such file or directory"},
	} {
		s := cfg.TargetByAddr("target.ldap." + tc.target).LDAP.Password
		got, err := s.Value()
		if tc.wantErr == "" && (err != nil || got != tc.want) {
			t.Errorf("%s: Value() = %q, %v; want %q", tc.target, got, err, tc.want)
		}
		if tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)) {
			t.Errorf("%s: Value() error %v, want %q", tc.target, err, tc.wantErr)
		}
		if err != nil {
			for _, v := range env {
				if v != "" && strings.Contains(err.Error(), v) {
					t.Errorf("%s: the error shows a value: %v", tc.target, err)
				}
			}
		}
		if !s.IsSet() || fmt.Sprint(s) != "(sensitive)" {
			t.Errorf("%s: IsSet %v, prints %q", tc.target, s.IsSet(), fmt.Sprint(s))
		}
	}
}
