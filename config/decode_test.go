package config

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/hcl/v2"
)

func loadGood(t *testing.T, name string) *Config {
	t.Helper()
	src, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	cfg, diags := validate(t, map[string][]byte{name: src})
	if diags.HasErrors() {
		t.Fatalf("%s: %s", name, renderDiags(diags))
	}
	return cfg
}

// TestDecodeFull checks what good_full.hcl decodes to: every setting, the
// defaults, and the multi-host expansion.
func TestDecodeFull(t *testing.T) {
	t.Parallel()
	cfg := loadGood(t, "good_full.hcl")

	var addrs []string
	for _, tg := range cfg.Targets {
		addrs = append(addrs, tg.Addr)
	}
	wantAddrs := []string{"target.ldap.corp", "target.ldap.lab", "target.ldif.export", "target.winrm.web01",
		`target.winrm.web["web02"]`, `target.winrm.web["web03"]`}
	if !slices.Equal(addrs, wantAddrs) {
		t.Errorf("targets = %q, want %q", addrs, wantAddrs)
	}

	corp := cfg.TargetByAddr("target.ldap.corp").LDAP
	if corp.Password.Reveal() != testPassword || corp.Flavor != FlavorActiveDirectory || corp.Timeout != 10*time.Second ||
		corp.StartTLS != nil || corp.UseStartTLS() || corp.UserBase != "DC=corp,DC=example" ||
		corp.UserFilter != DefaultADUserFilter || corp.PageSize != DefaultLDAPPageSize || corp.MaxConcurrency != DefaultLDAPMaxConcurrency {
		t.Errorf("target.ldap.corp = %+v", corp)
	}
	lab := cfg.TargetByAddr("target.ldap.lab").LDAP
	if lab.UseStartTLS() || !lab.InsecurePlaintext || lab.Password.IsSet() || lab.Flavor != FlavorOpenLDAP ||
		lab.UserFilter != "(cn=%s)" || lab.PageSize != 200 || lab.MaxConcurrency != 2 || lab.Timeout != DefaultLDAPTimeout {
		t.Errorf("target.ldap.lab = %+v", lab)
	}
	if l := cfg.TargetByAddr("target.ldif.export").LDIF; l.Path != "directory.ldif" || l.Flavor != FlavorOpenLDAP {
		t.Errorf("target.ldif.export = %+v", l)
	}
	w1 := cfg.TargetByAddr("target.winrm.web01")
	if w := w1.WinRM; w.Address != "web01.corp.example" || !w.HTTPS || w.Port != 5986 || w.Auth != WinRMAuthNTLM ||
		w.User != `CORP\svc-jitform` || w.Password.Reveal() != "literal-winrm-password" || w.Timeout != DefaultWinRMTimeout || w1.Key != "" {
		t.Errorf("target.winrm.web01 = %+v", w)
	}
	w3 := cfg.TargetByAddr(`target.winrm.web["web03"]`)
	if w3.Key != "web03" || w3.Name != "web" || w3.WinRM.Address != "web03" || w3.WinRM.Auth != WinRMAuthBasic ||
		w3.WinRM.Password.Reveal() != testPassword {
		t.Errorf(`target.winrm.web["web03"] = %+v %+v`, w3, w3.WinRM)
	}
	if w2 := cfg.TargetByAddr(`target.winrm.web["web02"]`); w2.WinRM == w3.WinRM || w2.WinRM.Address != "web02" {
		t.Error("instances must not share their settings")
	}

	var groups []string
	for _, g := range cfg.Groups {
		groups = append(groups, fmt.Sprintf("%s base=%s key=%s on %s", g.Addr, g.BaseAddr, g.Key, g.Target.Addr))
	}
	wantGroups := []string{
		"group.web01_admins base=group.web01_admins key= on target.winrm.web01",
		`group.web_admins["web02"] base=group.web_admins key=web02 on target.winrm.web["web02"]`,
		`group.web_admins["web03"] base=group.web_admins key=web03 on target.winrm.web["web03"]`,
		`group.web03_rdp base=group.web03_rdp key= on target.winrm.web["web03"]`,
		"group.domain_admins base=group.domain_admins key= on target.ldap.corp",
		"group.ops base=group.ops key= on target.ldif.export",
	}
	if !slices.Equal(groups, wantGroups) {
		t.Errorf("groups:\n%s\nwant:\n%s", strings.Join(groups, "\n"), strings.Join(wantGroups, "\n"))
	}
	g := cfg.GroupByAddr("group.web01_admins")
	if g.GroupName != "S-1-5-32-544" || !g.Exclusive || !slices.Equal(g.Members, []string{`CORP\svc-backup`}) || g.MembersRange.Start.Line != 43 {
		t.Errorf("group.web01_admins = %+v", g)
	}
	if ops := cfg.GroupByAddr("group.ops"); ops.Attributes.Placeholder != "cn=nobody,dc=corp,dc=example" || ops.Exclusive {
		t.Errorf("group.ops = %+v", ops)
	}

	web := cfg.PolicyByAddr("policy.web_maintenance")
	if !slices.Equal(web.Groups, []string{"group.web01_admins", "group.web_admins"}) || web.MaxDuration != 4*time.Hour ||
		web.Approvals != DefaultApprovals || web.Approval != ApprovalRepository || web.RequestTTL != DefaultRequestTTL ||
		web.MaxActive != 0 || web.BreakGlass == nil || web.BreakGlass.MaxDuration != time.Hour ||
		web.TicketPattern.String() != "^CHG[0-9]+$" || len(web.Windows) != 2 {
		t.Errorf("policy.web_maintenance = %+v", web)
	}
	if w := web.Windows[1]; w.Spec != "Sat 09:00-12:00 Europe/Berlin" || w.Range.Start.Line != 82 || w.Range.Start.Column != 58 {
		t.Errorf("second window = %q at %s", w.Spec, w.Range)
	}
	if r, _ := web.Ranges.Of("max_duration"); r.Start.Line != 79 {
		t.Errorf("Ranges[max_duration] = %s", r)
	}
	dom := cfg.PolicyByAddr("policy.domain")
	if dom.MaxDuration != 24*time.Hour || dom.Approvals != 2 || dom.Approval != ApprovalLedger || dom.RequestTTL != 2*time.Hour ||
		dom.MaxActive != 1 || dom.BreakGlass != nil || dom.TicketPattern != nil || dom.Windows != nil {
		t.Errorf("policy.domain = %+v", dom)
	}

	if len(cfg.Actors) != 2 || cfg.ActorByName("dave") == nil || !strings.HasPrefix(cfg.ActorByName("carol").SSHKey, "ssh-ed25519 ") {
		t.Errorf("actors = %+v", cfg.Actors)
	}

	if len(cfg.Grants) != 2 {
		t.Fatalf("grants = %d", len(cfg.Grants))
	}
	a := cfg.Grants[0]
	if a.Addr != "grant.alice_chg1042" || a.Policy != "policy.web_maintenance" || a.Principal != "alice" ||
		!a.Start.Equal(utc("2026-11-23T09:00:00Z")) || a.Start.Location() != time.UTC || a.Duration != 2*time.Hour ||
		!a.End().Equal(utc("2026-11-23T11:00:00Z")) || a.Ticket != "CHG1042" || a.Reason != "patch IIS" ||
		!slices.Equal(a.ApprovedBy, []string{"carol"}) {
		t.Errorf("grant.alice_chg1042 = %+v", a)
	}
	for _, attr := range []string{"policy", "principal", "start", "duration", "ticket", "reason", "approved_by"} {
		if r, ok := a.Ranges.Of(attr); !ok || r.Filename != filepath.Join("testdata", "good_full.hcl") {
			t.Errorf("grant.alice_chg1042 Ranges[%s] = %v", attr, r)
		}
	}
	if b := cfg.Grants[1]; !b.Start.Equal(utc("2026-11-23T10:30:00Z")) || b.Duration != 90*time.Minute {
		t.Errorf("timeadd: grant.bob_chg1043 starts %s for %s", b.Start, b.Duration)
	}
}

// TestSecretsNeverInDiagnostics: passwords, given literally or through env(),
// appear in no diagnostic (summary, detail, or the rendered text with source
// snippets for env()), nor in a printed or JSON-encoded target.
func TestSecretsNeverInDiagnostics(t *testing.T) {
	t.Parallel()
	const literal = "literal-P4ss-word"
	src := []byte(`
target "ldap" "corp" {
  url       = "ldap://dc01.corp.example"
  start_tls = false
  bind_dn   = "cn=svc,dc=corp,dc=example"
  password  = env("JITFORM_TEST_PASSWORD")
  base_dn   = "dc=corp,dc=example"
  flavor    = "openldapp"
  timeout   = env("JITFORM_TEST_PASSWORD")
  user_base = env("JITFORM_TEST_PASSWORD")
}

target "winrm" "web" {
  hosts    = ["web01", env("JITFORM_TEST_PASSWORD")]
  https    = false
  user     = "svc"
  password = "` + literal + `"
  port     = 0
}

target "winrm" "typed" {
  address  = "web02"
  user     = "svc"
  password = ["` + literal + `", env("JITFORM_TEST_PASSWORD")]
}

target "winrm" "summed" {
  address  = "web03"
  user     = "svc"
  password = env("JITFORM_TEST_PASSWORD") + 1
}

group "g" {
  target = target.winrm.web
  name   = env("JITFORM_TEST_PASSWORD") + "x"
}
`)
	cfg, diags := LoadFiles("testdata", map[string][]byte{"secrets.hcl": src}, testOptions())
	// A block whose values do not decode stops there (flavor is not
	// checked after timeout failed), and env() is evaluated only when a
	// target opens (summed fails then), so five, not more.
	if len(diags) < 5 {
		t.Fatalf("expected many diagnostics, got %d:\n%s", len(diags), renderDiags(diags))
	}
	if summed := cfg.TargetByAddr("target.winrm.summed"); summed == nil {
		t.Error("target.winrm.summed did not load")
	} else if _, err := summed.WinRM.Password.Value(); err == nil || strings.Contains(err.Error(), testPassword) {
		t.Errorf("password = env() + 1 revealed: %v", err)
	}
	// env() outside a password is refused at the attribute, whatever the type.
	for _, attr := range []string{"timeout", "user_base", "hosts"} {
		if !strings.Contains(renderDiags(diags), "env() value outside a password: "+attr+" gets its value from env()") {
			t.Errorf("env() in %s is not refused:\n%s", attr, renderDiags(diags))
		}
	}
	for _, d := range diags {
		for _, s := range []string{d.Summary, d.Detail} {
			if strings.Contains(s, testPassword) || strings.Contains(s, literal) {
				t.Errorf("diagnostic leaks a password: %s: %s", d.Summary, d.Detail)
			}
		}
	}
	var text bytes.Buffer
	wr := hcl.NewDiagnosticTextWriter(&text, cfg.Files, 100, false)
	if err := wr.WriteDiagnostics(diags); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(text.String(), testPassword) {
		t.Errorf("rendered diagnostics leak the env() password:\n%s", text.String())
	}

	// A loaded target prints and encodes without its password.
	ok, okDiags := LoadFiles("testdata", map[string][]byte{"ok.hcl": []byte(`
target "ldap" "corp" {
  url      = "ldaps://dc01.corp.example"
  bind_dn  = "cn=svc,dc=corp,dc=example"
  password = env("JITFORM_TEST_PASSWORD")
  base_dn  = "dc=corp,dc=example"
}
target "winrm" "web" {
  address  = "web01"
  user     = "svc"
  password = "` + literal + `"
}
`)}, testOptions())
	if okDiags.HasErrors() {
		t.Fatal(renderDiags(okDiags))
	}
	js, err := json.Marshal(ok.Targets)
	if err != nil {
		t.Fatal(err)
	}
	for _, out := range []string{string(js), fmt.Sprintf("%v %+v %#v", ok.Targets[0].LDAP, ok.Targets[1].WinRM, *ok.Targets[1].WinRM)} {
		if strings.Contains(out, testPassword) || strings.Contains(out, literal) {
			t.Errorf("a target leaks its password: %s", out)
		}
	}
	if ok.Targets[0].LDAP.Password.Reveal() != testPassword || ok.Targets[1].WinRM.Password.Reveal() != literal {
		t.Error("Reveal must return the password")
	}
}

// TestManyProblemsOnePass: one repository with a dozen unrelated mistakes in
// several files; validate (Load + CheckGrants) reports every one of them.
func TestManyProblemsOnePass(t *testing.T) {
	t.Parallel()
	files := map[string][]byte{
		"targets.hcl": []byte(`
target "ldap" "corp" {
  url       = "ldap://dc01"
  start_tls = false
  base_dn   = "dc=corp"
  flavor    = "ad"
}
target "ftp" "x" {
}
target "ldif" "export" {
  path = "d.ldif"
}
`),
		"groups.hcl": []byte(`
group "admins" {
  target  = target.ldif.export
  dn      = "cn=admins,dc=corp"
  colour  = "red"
}
group "ops" {
  target = target.ldif.exprt
  dn     = "cn=ops,dc=corp"
}
`),
		"policies.hcl": []byte(`
policy "web" {
  groups       = [group.admins, group.nope]
  eligible     = ["alice"]
  max_duration = "4hours"
  approvers    = ["carol"]
  windows      = ["Mon-Fri 07:00-19:00 Europe/Berlin"]
}
policy "ok" {
  groups         = [group.admins]
  eligible       = ["alice"]
  max_duration   = "1h"
  approvers      = ["carol"]
  ticket_pattern = "^CHG"
}
`),
		"grants.hcl": []byte(`
grant "a" {
  policy      = policy.ok
  principal   = "alice"
  start       = "2026-11-23T09:00:00"
  duration    = "1h"
  approved_by = ["carol"]
}
grant "b" {
  policy      = policy.ok
  principal   = "bob"
  start       = "2026-11-23T09:00:00Z"
  duration    = "3h"
  ticket      = "INC9"
  approved_by = ["bob"]
}
grant "c" {
  policy    = policy.missing
  principal = "alice"
  start     = "2026-11-23T09:00:00Z"
  duration  = "1h"
}
`),
	}
	_, diags := validate(t, files)
	want := []string{
		"grants.hcl:5:17: Invalid start",
		"grants.hcl:11:17: Grant does not conform to its policy", // principal bob
		"grants.hcl:13:17: Grant does not conform to its policy", // duration 3h
		"grants.hcl:14:17: Grant does not conform to its policy", // ticket
		"grants.hcl:15:17: Grant does not conform to its policy", // self-approval
		"grants.hcl:15:17: Grant does not conform to its policy", // too few approvals
		"grants.hcl:18:15: Reference to an undeclared policy",
		"groups.hcl:5:3: Unsupported argument",
		"groups.hcl:8:12: Reference to an undeclared target",
		"policies.hcl:3:33: Reference to an undeclared group",
		"policies.hcl:5:18: Invalid max_duration",
		"targets.hcl:4:15: plain ldap:// without start_tls requires insecure_plaintext=true",
		"targets.hcl:6:15: Unknown directory flavor",
		"targets.hcl:8:8: Unknown target kind",
	}
	var got []string
	for _, d := range diags {
		got = append(got, fmt.Sprintf("%s:%d:%d: %s", filepath.Base(d.Subject.Filename), d.Subject.Start.Line, d.Subject.Start.Column, d.Summary))
	}
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("got %d diagnostics:\n%s\nwant %d:\n%s\n\n%s", len(got), strings.Join(got, "\n"), len(want), strings.Join(want, "\n"), renderDiags(diags))
	}
}

// TestDecodeKinds: rights and sudo roles decode as managed sets of their
// kind (one type with groups), accounts as their own type, and policies
// list each kind separately; a right's name takes its documented spelling.
func TestDecodeKinds(t *testing.T) {
	t.Parallel()
	cfg := loadGood(t, "good_kinds.hcl")
	var sets []string
	for _, g := range cfg.Groups {
		sets = append(sets, g.SetKind()+" "+g.Addr+" "+g.GroupName+g.DN)
	}
	want := []string{
		"group group.admins cn=admins,ou=groups,dc=example,dc=org",
		"right right.web01_backup SeBackupPrivilege",
		`right right.web_rdp["web02"] SeRemoteInteractiveLogonRight`,
		`right right.web_rdp["web03"] SeRemoteInteractiveLogonRight`,
		"sudo_role sudo_role.db_root cn=db-root,ou=SUDOers,dc=example,dc=org",
	}
	if !slices.Equal(sets, want) {
		t.Errorf("sets:\n%s\nwant:\n%s", strings.Join(sets, "\n"), strings.Join(want, "\n"))
	}
	if g := cfg.GroupByAddr("right.web01_backup"); !g.Exclusive || !slices.Equal(g.Members, []string{`CORP\svc-backup`}) || g.BaseAddr != "right.web01_backup" {
		t.Errorf("right.web01_backup = %+v", g)
	}
	var accs []string
	for _, a := range cfg.Accounts {
		accs = append(accs, fmt.Sprintf("%s %s %s rotate=%v", a.Addr, a.Target.Addr, a.Display(), a.RotatePassword))
	}
	wantAccs := []string{
		"account.web01_jitadmin target.winrm.web01 jit-admin rotate=true",
		"account.dir_admin target.ldif.dir uid=jit-admin,ou=people,dc=example,dc=org rotate=false",
	}
	if !slices.Equal(accs, wantAccs) {
		t.Errorf("accounts = %q, want %q", accs, wantAccs)
	}
	p := cfg.PolicyByAddr("policy.break_fix")
	if len(p.Groups) != 0 || !slices.Equal(p.Rights, []string{"right.web01_backup", "right.web_rdp"}) ||
		!slices.Equal(p.SudoRoles, []string{"sudo_role.db_root"}) ||
		!slices.Equal(p.Accounts, []string{"account.web01_jitadmin", "account.dir_admin"}) {
		t.Errorf("policy.break_fix = groups %q rights %q sudo_roles %q accounts %q", p.Groups, p.Rights, p.SudoRoles, p.Accounts)
	}
	if got := p.Sets(); !slices.Equal(got, []string{"right.web01_backup", "right.web_rdp", "sudo_role.db_root"}) {
		t.Errorf("Sets() = %q", got)
	}
	if got := cfg.PolicyByAddr("policy.groups_only").Sets(); !slices.Equal(got, []string{"group.admins"}) {
		t.Errorf("groups_only Sets() = %q", got)
	}
}
