package winrmtest

import (
	"encoding/base64"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/text/encoding/unicode"
)

// The scripts under test: the current ones (providers/winrm/scripts) and
// the ones this fake was made strict against (testdata/v1, the scripts of
// before issue 16). Every strictness knob has a test that the v1 scripts
// fail and the current ones pass, so a script change that brings a defect
// back fails here.
type scriptSet struct{ bootstrap, read, apply string }

func loadScripts(t *testing.T, dir string) scriptSet {
	t.Helper()
	rd := func(n string) string {
		b, err := os.ReadFile(filepath.Join(dir, n))
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	apply := rd("apply.ps1")
	if strings.Contains(apply, "#SWITCH#") {
		// As providers/winrm builds it: the switch in its here-string.
		apply = strings.Replace(apply, "#SWITCH#", strings.TrimRight(rd("switch.ps1"), "\n"), 1)
	}
	return scriptSet{rd("bootstrap.ps1"), rd("read.ps1"), apply}
}

func current(t *testing.T) scriptSet {
	return loadScripts(t, filepath.Join("..", "..", "..", "providers", "winrm", "scripts"))
}
func v1(t *testing.T) scriptSet { return loadScripts(t, filepath.Join("testdata", "v1")) }

func commandLine(bootstrap string) string {
	u16, _ := unicode.UTF16(unicode.LittleEndian, unicode.IgnoreBOM).NewEncoder().String(bootstrap)
	return "powershell.exe -NoProfile -NonInteractive -EncodedCommand " + base64.StdEncoding.EncodeToString([]byte(u16))
}

// run executes script with data on h and decodes the result the way the
// provider does: between the markers when the bootstrap writes them.
func run(t *testing.T, h *Host, s scriptSet, script string, data any) (map[string]any, string, int) {
	t.Helper()
	b, err := json.Marshal(data)
	if err != nil {
		t.Fatal(err)
	}
	stdin := base64.StdEncoding.EncodeToString([]byte(script)) + "\n" + string(b)
	out, serr, code := h.Execute(commandLine(s.bootstrap), stdin)
	text := string(out)
	if i := strings.LastIndex(text, "<<<JITFORM-RESULT>>>"); i >= 0 {
		text = strings.TrimSuffix(text[i+len("<<<JITFORM-RESULT>>>"):], "<<<JITFORM-END>>>")
	}
	var m map[string]any
	if code == 0 {
		if err := json.Unmarshal([]byte(text), &m); err != nil {
			t.Fatalf("output %q: %v", text, err)
		}
	}
	return m, string(serr), code
}

func newHost() *Host {
	s := &Server{hosts: map[string]*Host{}}
	h := s.AddHost("web01.winrm.test")
	h.Accounts["S-1-5-21-9-9-9-1107"] = `CORP\jürgen`
	return h
}

type change struct {
	Group  map[string]string `json:"group"`
	Action string            `json:"action"`
	SID    string            `json:"sid"`
}

func applyReq(cs ...change) map[string]any {
	return map[string]any{"op": "apply", "changes": cs}
}

var admins = map[string]string{"key": "group.admins", "sid": "S-1-5-32-544"}

func results(t *testing.T, m map[string]any) []map[string]any {
	t.Helper()
	var out []map[string]any
	switch r := m["results"].(type) {
	case []any:
		for _, x := range r {
			out = append(out, x.(map[string]any))
		}
	case map[string]any:
		out = append(out, r)
	}
	return out
}

// IsMember compares ADsPaths as strings: a live account's path is
// WinNT://DOMAIN/name, so IsMember('WinNT://<SID>') is false for it. The v1
// script therefore reports the removal of a live member as "already" and
// leaves it in the group; the current script removes it.
func TestADSIIsMemberComparesPaths(t *testing.T) {
	for _, tc := range []struct {
		name    string
		scripts func(*testing.T) scriptSet
		status  string
		left    bool
	}{
		{"v1 script: removal of a live member is reported already and the member stays", v1, "already", true},
		{"current script: the live member is removed", current, "done", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHost()
			h.Groups[0].Members = append(h.Groups[0].Members, "S-1-5-21-9-9-9-1104")
			s := tc.scripts(t)
			m, serr, code := run(t, h, s, s.apply, applyReq(change{admins, "remove", "S-1-5-21-9-9-9-1104"}))
			if code != 0 {
				t.Fatalf("exit %d: %s", code, serr)
			}
			if got := results(t, m)[0]["status"]; got != tc.status {
				t.Errorf("status = %v, want %s", got, tc.status)
			}
			if got := member(h.Groups[0], "S-1-5-21-9-9-9-1104") >= 0; got != tc.left {
				t.Errorf("member left in the group = %v, want %v", got, tc.left)
			}
		})
	}
	// Only an orphaned SID has a SID path.
	h := newHost()
	h.Groups[0].Members = append(h.Groups[0].Members, "S-1-5-21-9-9-9-4242", "S-1-5-21-9-9-9-1104")
	if !h.isMemberPath(h.Groups[0], "WinNT://S-1-5-21-9-9-9-4242") {
		t.Error("an orphaned SID's path is WinNT://<SID>")
	}
	if h.isMemberPath(h.Groups[0], "WinNT://S-1-5-21-9-9-9-1104") || !h.isMemberPath(h.Groups[0], "WinNT://corp/ALICE") {
		t.Error("a live account's path is WinNT://DOMAIN/name, compared case-insensitively")
	}
}

// Add and Remove fail with the Win32 code as an HRESULT; the script
// classifies them. The error for a method call reaches the script wrapped in
// MethodInvocationException, whose own HResult is not the COM code.
func TestAddRemoveCOMErrorCodes(t *testing.T) {
	cur := func(t *testing.T) scriptSet { return current(t) }
	noUnwrap := func(t *testing.T) scriptSet {
		s := current(t)
		s.apply = strings.Replace(s.apply, "if ($x -is [System.Runtime.InteropServices.COMException]) { break }", "", 1)
		return s
	}
	noAlreadyTable := func(t *testing.T) scriptSet {
		s := current(t)
		s.apply = strings.Replace(s.apply, "'0x80070562', ", "", 1)
		return s
	}
	noReread := func(t *testing.T) scriptSet {
		s := current(t)
		s.apply = strings.Replace(s.apply, "foreach ($m in @($grp.psbase.Invoke('Members'))) { $sids += Get-Sid $m }", "", 1)
		return s
	}
	for _, tc := range []struct {
		name      string
		scripts   func(*testing.T) scriptSet
		setup     func(*Host)
		c         change
		status    string
		errSubstr string
	}{
		{"add of a live member already there is already (0x80070562)", cur, nil,
			change{admins, "add", "S-1-5-21-1-2-3-500"}, "already", ""},
		{"v1: add of a live member already there fails with 0x80070562", v1, nil,
			change{admins, "add", "S-1-5-21-1-2-3-500"}, "failed", "already a member"},
		{"without unwrapping to the COMException, add of a member already there fails", noUnwrap, nil,
			change{admins, "add", "S-1-5-21-1-2-3-500"}, "failed", "0x80131501"},
		{"without 0x80070562 in the table, add of a member already there fails", noAlreadyTable, nil,
			change{admins, "add", "S-1-5-21-1-2-3-500"}, "failed", "0x80070562"},
		{"remove of a non-member is already (0x80070561)", cur, nil,
			change{admins, "remove", "S-1-5-21-9-9-9-1105"}, "already", ""},
		{"add of an account that does not exist fails (1387)", cur, nil,
			change{admins, "add", "S-1-5-21-9-9-9-7777"}, "failed", "0x8007056B"},
		{"add of a local group fails (1388)", cur, nil,
			change{admins, "add", "S-1-5-32-555"}, "failed", "0x8007056C"},
		{"remove of an orphaned SID is done", cur, func(h *Host) { h.Groups[0].Members = append(h.Groups[0].Members, "S-1-5-21-9-9-9-4242") },
			change{admins, "remove", "S-1-5-21-9-9-9-4242"}, "done", ""},
		{"a write that does not take effect is caught by the re-read", cur, func(h *Host) { h.IneffectiveWrites = true },
			change{admins, "add", "S-1-5-21-9-9-9-1104"}, "failed", "read again"},
		{"without the re-read, a write that does not take effect is reported done", noReread, func(h *Host) { h.IneffectiveWrites = true },
			change{admins, "add", "S-1-5-21-9-9-9-1104"}, "done", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHost()
			if tc.setup != nil {
				tc.setup(h)
			}
			s := tc.scripts(t)
			m, serr, code := run(t, h, s, s.apply, applyReq(tc.c))
			if code != 0 {
				t.Fatalf("exit %d: %s", code, serr)
			}
			r := results(t, m)[0]
			if r["status"] != tc.status {
				t.Errorf("status = %v (%v), want %s", r["status"], r["error"], tc.status)
			}
			if tc.errSubstr != "" && !strings.Contains(r["error"].(string), tc.errSubstr) {
				t.Errorf("error = %v, want it to name %q", r["error"], tc.errSubstr)
			}
		})
	}
}

// Windows looks names up case-insensitively: a group named in another case
// binds, a principal in another case resolves. Principals that differ only
// in case are two requests and get two answers; the v1 script's hashtable
// folded them into one.
func TestCaseInsensitiveNameLookups(t *testing.T) {
	req := map[string]any{"op": "read",
		"groups":     []map[string]string{{"key": "group.a", "name": "administrators"}},
		"principals": []string{`CORP\alice`, `corp\ALICE`}}
	h := newHost()
	s := current(t)
	m, serr, code := run(t, h, s, s.read, req)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, serr)
	}
	g := m["groups"].(map[string]any)
	if g["sid"] != "S-1-5-32-544" || g["key"] != "group.a" {
		t.Errorf("group bound by a lower-case name = %v", g)
	}
	ps := m["principals"].([]any)
	if len(ps) != 2 {
		t.Fatalf("principals = %v, want two answers", ps)
	}
	for i, want := range []string{`CORP\alice`, `corp\ALICE`} {
		p := ps[i].(map[string]any)
		if p["principal"] != want || p["sid"] != "S-1-5-21-9-9-9-1104" {
			t.Errorf("principal %d = %v", i, p)
		}
	}
	// v1 keyed its answers by name in a PowerShell hashtable.
	old := v1(t)
	m, _, _ = run(t, h, old, old.read, req)
	if got := m["principals"].(map[string]any); len(got) != 1 {
		t.Errorf("v1 answers = %v; the fake must fold keys that differ only in case, as PowerShell does", got)
	}
}

// A group named by SID is bound by name after translation; a local group
// with the name of a domain group is another group. The current script
// refuses it; v1 read the wrong group.
func TestGroupBoundByNameMustHaveItsSID(t *testing.T) {
	h := newHost()
	h.Accounts["S-1-5-21-9-9-9-2000"] = `CORP\WebAdmins`
	h.Groups = append(h.Groups, &Group{SID: "S-1-5-21-1-2-3-1010", Name: "webadmins", Members: []string{"S-1-5-21-9-9-9-1105"}})
	req := map[string]any{"op": "read", "groups": []map[string]string{{"key": "group.w", "sid": "S-1-5-21-9-9-9-2000"}}, "principals": []string{}}
	s := current(t)
	m, _, _ := run(t, h, s, s.read, req)
	if g := m["groups"].(map[string]any); g["error"] == nil || !strings.Contains(g["error"].(string), "S-1-5-21-1-2-3-1010") {
		t.Errorf("current script read %v; want a refusal naming the bound group's SID", g)
	}
	old := v1(t)
	m, _, _ = run(t, h, old, old.read, req)
	if g := m["groups"].(map[string]any)["group.w"].(map[string]any); g["sid"] != "S-1-5-21-1-2-3-1010" {
		t.Errorf("v1 read %v; the fake must bind by name as ADSI does", g)
	}
}

// stdin and stdout pass through the console's code page. Escaped JSON
// passes; raw UTF-8 does not.
func TestConsoleCodePage(t *testing.T) {
	h := newHost()
	req := map[string]any{"op": "read", "groups": []any{}, "principals": []string{`CORP\jürgen`}}
	raw, _ := json.Marshal(req)
	escaped := strings.ReplaceAll(string(raw), "ü", `\u00fc`)
	s := current(t)
	stdin := base64.StdEncoding.EncodeToString([]byte(s.read)) + "\n"
	for _, tc := range []struct {
		name, data string
		ok         bool
	}{
		{"escaped JSON resolves", escaped, true},
		{"raw UTF-8 is garbled by the code page", string(raw), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, _, _ := h.Execute(commandLine(s.bootstrap), stdin+tc.data)
			text := string(out)
			if strings.ContainsAny(text, "ü") || !strings.HasPrefix(text, "<<<JITFORM-RESULT>>>") {
				t.Fatalf("output %q: want ASCII between the markers", text)
			}
			got := strings.Contains(text, `"sid":"S-1-5-21-9-9-9-1107"`) && strings.Contains(text, `j\u00fcrgen`)
			if got != tc.ok {
				t.Errorf("resolved = %v, want %v: %s", got, tc.ok, text)
			}
		})
	}
	// v1 wrote raw characters through the code page: the name comes back
	// as another byte, not UTF-8.
	old := v1(t)
	out, _, _ := h.Execute(commandLine(old.bootstrap), base64.StdEncoding.EncodeToString([]byte(old.read))+"\n"+escaped)
	if strings.Contains(string(out), "jürgen") || !strings.Contains(string(out), "S-1-5-21-9-9-9-1107") {
		t.Errorf("v1 output %q: want the SID resolved and the name not UTF-8", out)
	}
}
