package planner

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/jitform/jitform/config"
	"github.com/jitform/jitform/providers"
)

// structInput is a small estate built from Go values, for properties that
// do not depend on HCL (the scenarios cover the language end to end).
func structInput() Input {
	now := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	tg := &config.Target{Kind: "ldap", Name: "corp", Addr: "target.ldap.corp",
		LDAP: &config.LDAPTarget{URL: "ldaps://dc01", BindDN: "cn=svc", Password: config.NewSecret("hunter2-do-not-print")}}
	wg := &config.Target{Kind: "winrm", Name: "web01", Addr: "target.winrm.web01",
		WinRM: &config.WinRMTarget{Address: "web01", User: "svc", Password: config.NewSecret("winrm-secret-xyz")}}
	mk := func(name string, t *config.Target, excl bool, members ...string) *config.Group {
		return &config.Group{Name: name, Addr: "group." + name, BaseAddr: "group." + name, Target: t, Exclusive: excl, Members: members}
	}
	cfg := &config.Config{
		Digest:  "cfg",
		Targets: []*config.Target{tg, wg},
		// Deliberately not in address order.
		Groups: []*config.Group{mk("zeta", tg, true, "admin"), mk("alpha", tg, true), mk("web", wg, true)},
	}
	res := func(t string, ps ...string) map[string]providers.Resolution {
		m := map[string]providers.Resolution{}
		for _, p := range ps {
			m[p] = providers.Resolution{Member: providers.Member{ID: t + ":" + p, Name: p}}
		}
		return m
	}
	obs := func(t string, ps ...string) providers.Observation {
		o := providers.Observation{Members: []providers.Member{}}
		for _, p := range ps {
			o.Members = append(o.Members, providers.Member{ID: t + ":" + p, Name: p})
		}
		return o
	}
	return Input{
		Config: cfg,
		Now:    now,
		Observed: map[string]providers.Observation{
			"group.zeta":  obs("corp", "mallory", "eve"),
			"group.alpha": obs("corp", "bob"),
			"group.web":   obs("web", "x"),
		},
		Resolved: map[string]map[string]providers.Resolution{
			"target.ldap.corp":   res("corp", "admin"),
			"target.winrm.web01": res("web"),
		},
		LedgerHead: "head",
	}
}

func TestComputeOrdersChangesAndSummaries(t *testing.T) {
	t.Parallel()
	p, err := Compute(structInput())
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, c := range p.Changes {
		got = append(got, c.Action+" "+c.Group+" "+c.Member+" "+c.Reason.Kind)
	}
	want := []string{
		"remove group.alpha corp:bob undeclared",
		"remove group.web web:x undeclared",
		"remove group.zeta corp:eve undeclared",
		"remove group.zeta corp:mallory undeclared",
		"add group.zeta corp:admin declared",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("changes:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	var groups []string
	for _, g := range p.Groups {
		groups = append(groups, g.Group)
	}
	if strings.Join(groups, ",") != "group.alpha,group.web,group.zeta" {
		t.Errorf("group summaries not in address order: %v", groups)
	}
	if p.NextChangeAt != nil {
		t.Errorf("NextChangeAt = %v, want none (no grants)", p.NextChangeAt)
	}
	if want := p.At.Add(MaxPlanAge); !p.ValidUntil.Equal(want) {
		t.Errorf("ValidUntil = %v, want now+MaxPlanAge %v", p.ValidUntil, want)
	}
	if len(p.Observed) != 3 || p.Observed["group.zeta"] == "" {
		t.Errorf("observed digests = %v", p.Observed)
	}
}

func TestComputeIsDeterministicAndIDTracksContent(t *testing.T) {
	t.Parallel()
	in := structInput()
	a, _ := Compute(in)
	b, _ := Compute(in)
	if a.ID != b.ID {
		t.Fatalf("same input, different IDs: %s %s", a.ID, b.ID)
	}
	in.Now = in.Now.Add(time.Second)
	c, _ := Compute(in)
	if c.ID == a.ID {
		t.Errorf("plans for different instants share an ID")
	}
	in = structInput()
	in.Config.Digest = "other"
	d, _ := Compute(in)
	if d.ID == a.ID {
		t.Errorf("plans from different configs share an ID")
	}
}

func TestComputeNeverShowsSecrets(t *testing.T) {
	t.Parallel()
	in := structInput()
	in.Observed["group.alpha"] = providers.Observation{Err: errTest("bind failed")}
	p, err := Compute(in)
	if err != nil {
		t.Fatal(err)
	}
	var text, js bytes.Buffer
	if err := RenderText(&text, p, true); err != nil {
		t.Fatal(err)
	}
	if err := RenderJSON(&js, p); err != nil {
		t.Fatal(err)
	}
	for _, out := range []string{text.String(), js.String()} {
		for _, secret := range []string{"hunter2-do-not-print", "winrm-secret-xyz"} {
			if strings.Contains(out, secret) {
				t.Errorf("plan output contains a secret:\n%s", out)
			}
		}
	}
}

func TestComputeUnknownPrincipalBlocksOnlyItsGroup(t *testing.T) {
	t.Parallel()
	in := structInput()
	in.Config.Groups[0].Members = []string{"admin", "ghost"}
	in.Config.Groups[0].MembersRange.Filename = "main.hcl"
	in.Config.Groups[0].MembersRange.Start.Line = 7
	in.Config.Groups[0].MembersRange.Start.Column = 13
	p, err := Compute(in)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range p.Changes {
		if c.Group == "group.zeta" {
			t.Errorf("blocked group got a change: %+v", c)
		}
	}
	if len(p.Changes) != 2 {
		t.Errorf("other groups should still be planned, got %d changes", len(p.Changes))
	}
	if len(p.Errors) != 1 || !strings.Contains(p.Errors[0].Summary, `"ghost"`) || p.Errors[0].Subject != "main.hcl:7:13" {
		t.Errorf("errors = %+v, want one naming ghost at main.hcl:7:13", p.Errors)
	}
}

func TestRenderTextColourOnlyWhenAsked(t *testing.T) {
	t.Parallel()
	p, err := Compute(structInput())
	if err != nil {
		t.Fatal(err)
	}
	var plain, colour bytes.Buffer
	if err := RenderText(&plain, p, false); err != nil {
		t.Fatal(err)
	}
	if err := RenderText(&colour, p, true); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(plain.String(), "\x1b[") {
		t.Errorf("plain output has escape codes")
	}
	if !strings.Contains(colour.String(), ansiRed+"- corp:eve") {
		t.Errorf("removal not red in colour output:\n%q", colour.String())
	}
	if !strings.Contains(plain.String(), "Plan: 1 to add, 4 to remove.") {
		t.Errorf("summary line missing:\n%s", plain.String())
	}
}

type errTest string

func (e errTest) Error() string { return string(e) }

// A plan with nothing to change but unreadable groups must not claim that
// membership matches the policy: nobody looked.
func TestRenderTextDoesNotVouchForUnreadGroups(t *testing.T) {
	cases := []struct {
		name string
		p    Plan
		want string
		not  string
	}{
		{"all read", Plan{}, "No changes. Membership matches the policy.", "could not be"},
		{"one unreadable", Plan{Unreadable: []Unreadable{{Group: "group.a", Target: "target.winrm.h", Error: "timeout"}}},
			"No changes for the groups that could be read; 1 could not be.", "Membership matches the policy"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var b strings.Builder
			if err := RenderText(&b, &tc.p, false); err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(b.String(), tc.want) || strings.Contains(b.String(), tc.not) {
				t.Errorf("rendered:\n%s\nwant %q and not %q", b.String(), tc.want, tc.not)
			}
		})
	}
}
