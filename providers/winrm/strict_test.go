package winrm

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/jitform/jitform/config"
	"github.com/jitform/jitform/internal/testbed/winrmtest"
	"github.com/jitform/jitform/providers"
)

// Against a fake as strict as Windows (ADSI compares paths, Add and Remove
// fail with COM codes): each change is classified by the code it got, and
// verified by reading the members again.
func TestApplyClassifiesByCOMCodeAndVerifies(t *testing.T) {
	alice := providers.Member{ID: "S-1-5-21-9-9-9-1104", Name: `CORP\alice`}
	for _, tc := range []struct {
		name   string
		setup  func(*winrmtest.Host)
		change providers.MemberChange
		want   providers.Status
		errHas string
		after  bool // alice in Administrators afterwards
	}{
		{"removing a live member removes it (IsMember would say it is not there)",
			func(h *winrmtest.Host) { h.Groups[0].Members = append(h.Groups[0].Members, alice.ID) },
			providers.MemberChange{Action: providers.Remove, Member: alice}, providers.Done, "", false},
		{"adding a live member already there is already (0x80070562)",
			func(h *winrmtest.Host) { h.Groups[0].Members = append(h.Groups[0].Members, alice.ID) },
			providers.MemberChange{Action: providers.Add, Member: alice}, providers.Already, "", true},
		{"removing a member not there is already (0x80070561)", nil,
			providers.MemberChange{Action: providers.Remove, Member: alice}, providers.Already, "", false},
		{"adding an account that does not exist fails (1387)", nil,
			providers.MemberChange{Action: providers.Add, Member: providers.Member{ID: "S-1-5-21-9-9-9-7777"}}, providers.Failed, "0x8007056B", false},
		{"adding a local group fails (1388)", nil,
			providers.MemberChange{Action: providers.Add, Member: providers.Member{ID: "S-1-5-32-555"}}, providers.Failed, "0x8007056C", false},
		{"a write the re-read does not confirm fails", func(h *winrmtest.Host) { h.IneffectiveWrites = true },
			providers.MemberChange{Action: providers.Add, Member: alice}, providers.Failed, "read again", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := winrmtest.New(t, user, pass, host("web01"))
			h := s.Host(host("web01"))
			if tc.setup != nil {
				tc.setup(h)
			}
			p := openHost(t, s, "web01", nil)
			outs, err := p.Apply(context.Background(), []providers.GroupChange{{Group: grp("admins", "S-1-5-32-544"), Changes: []providers.MemberChange{tc.change}}})
			if err != nil {
				t.Fatal(err)
			}
			if outs[0].Status != tc.want {
				t.Errorf("status = %s (%v), want %s", outs[0].Status, outs[0].Err, tc.want)
			}
			if tc.errHas != "" && (outs[0].Err == nil || !strings.Contains(outs[0].Err.Error(), tc.errHas)) {
				t.Errorf("error = %v, want it to name %s", outs[0].Err, tc.errHas)
			}
			if got := slices.Contains(h.Members("S-1-5-32-544"), alice.ID); got != tc.after {
				t.Errorf("alice in Administrators = %v, want %v", got, tc.after)
			}
		})
	}
}

// Principals that differ only in case are two principals with two answers;
// a group named in another case binds (Windows is case-insensitive).
func TestPrincipalsDifferingOnlyInCaseDoNotCollapse(t *testing.T) {
	s := winrmtest.New(t, user, pass, host("web01"))
	p := openHost(t, s, "web01", nil)
	obs, res, err := p.Observe(context.Background(), []*config.Group{grp("a", "administrators")}, []string{`CORP\alice`, `corp\ALICE`, `CORP\Alice`})
	if err != nil {
		t.Fatal(err)
	}
	if obs["group.a"].Err != nil {
		t.Errorf("group named in lower case: %v", obs["group.a"].Err)
	}
	for _, n := range []string{`CORP\alice`, `corp\ALICE`, `CORP\Alice`} {
		if r := res[n]; r.Err != nil || r.Member.ID != "S-1-5-21-9-9-9-1104" {
			t.Errorf("%s = %+v", n, r)
		}
	}
}

// A group named by SID is bound by name after translation; when a local
// group has the name of the domain group asked for, it is refused.
func TestBoundGroupMustHaveTheRequestedSID(t *testing.T) {
	s := winrmtest.New(t, user, pass, host("web01"))
	h := s.Host(host("web01"))
	h.Accounts["S-1-5-21-9-9-9-2000"] = `CORP\WebAdmins`
	h.Groups = append(h.Groups, &winrmtest.Group{SID: "S-1-5-21-1-2-3-1010", Name: "WebAdmins", Members: []string{"S-1-5-21-9-9-9-1105"}})
	p := openHost(t, s, "web01", nil)
	g := grp("w", "S-1-5-21-9-9-9-2000")
	obs, err := p.Read(context.Background(), []*config.Group{g})
	if err != nil {
		t.Fatal(err)
	}
	if e := obs["group.w"].Err; e == nil || !strings.Contains(e.Error(), "S-1-5-21-1-2-3-1010") {
		t.Errorf("read = %+v; want a refusal naming the SID of the group bound", obs["group.w"])
	}
	outs, _ := p.Apply(context.Background(), []providers.GroupChange{{Group: g, Changes: []providers.MemberChange{{Action: providers.Remove, Member: providers.Member{ID: "S-1-5-21-9-9-9-1105"}}}}})
	if outs[0].Status != providers.Failed || len(h.Groups[2].Members) != 1 {
		t.Errorf("apply into the wrong group = %s %v, members %v", outs[0].Status, outs[0].Err, h.Groups[2].Members)
	}
}

// On a domain controller every group is the domain's: refused unless the
// target opts in.
func TestDomainControllerNeedsOptIn(t *testing.T) {
	alice := providers.Member{ID: "S-1-5-21-9-9-9-1104", Name: `CORP\alice`}
	for _, allow := range []bool{false, true} {
		s := winrmtest.New(t, user, pass, host("dc01"))
		h := s.Host(host("dc01"))
		h.DomainController = true
		p := openHost(t, s, "dc01", func(c *config.WinRMTarget) { c.AllowDomainController = allow })
		obs, err := p.Read(context.Background(), []*config.Group{grp("admins", "S-1-5-32-544")})
		if err != nil {
			t.Fatal(err)
		}
		e := obs["group.admins"].Err
		outs, _ := p.Apply(context.Background(), []providers.GroupChange{{Group: grp("admins", "S-1-5-32-544"), Changes: []providers.MemberChange{{Action: providers.Add, Member: alice}}}})
		if !allow {
			if e == nil || !strings.Contains(e.Error(), "allow_domain_controller") {
				t.Errorf("read on a DC without opt-in: %v", e)
			}
			if outs[0].Status != providers.Failed || slices.Contains(h.Members("S-1-5-32-544"), alice.ID) {
				t.Errorf("apply on a DC without opt-in: %s %v", outs[0].Status, outs[0].Err)
			}
			continue
		}
		if e != nil || outs[0].Status != providers.Done {
			t.Errorf("with allow_domain_controller: read %v, apply %s %v", e, outs[0].Status, outs[0].Err)
		}
	}
}

// Non-ASCII names survive the console code page both ways; a cmd.exe
// AutoRun that prints cannot corrupt the result.
func TestNonASCIIAndAutoRunBanner(t *testing.T) {
	s := winrmtest.New(t, user, pass, host("web01"))
	h := s.Host(host("web01"))
	h.Accounts["S-1-5-21-9-9-9-1107"] = `CORP\jürgen`
	h.Accounts["S-1-5-21-9-9-9-1108"] = `CORP\名前𝄞`
	h.AutoRun = "Microsoft Windows [Version 10.0.20348]\r\n{\"not\":\"the result\"}\r\n"
	p := openHost(t, s, "web01", nil)
	_, res, err := p.Observe(context.Background(), nil, []string{`CORP\jürgen`, `CORP\名前𝄞`})
	if err != nil {
		t.Fatal(err)
	}
	for n, sid := range map[string]string{`CORP\jürgen`: "S-1-5-21-9-9-9-1107", `CORP\名前𝄞`: "S-1-5-21-9-9-9-1108"} {
		if r := res[n]; r.Err != nil || r.Member.ID != sid || r.Member.Name != n {
			t.Errorf("%s = %+v", n, r)
		}
	}
}
