package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2"
)

const minimalRepo = `
target "ldif" "export" {
  path = "directory.ldif"
}

group "admins" {
  target = target.ldif.export
  dn     = "cn=admins,dc=example"
}
`

func writeFiles(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, src := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestLoadDirectory(t *testing.T) {
	t.Parallel()
	dir := writeFiles(t, map[string]string{
		"main.hcl":        minimalRepo,
		"policy.hcl":      "policy \"p\" {\n  groups = [group.admins]\n  eligible = [\"alice\"]\n  max_duration = \"1h\"\n  approvals = 0\n}\n",
		".hidden.hcl":     "this is not HCL {",
		"notes.txt":       "ignored",
		"sub/ignored.hcl": "also not HCL {",
	})
	cfg, diags := Load(dir, testOptions())
	if diags.HasErrors() {
		t.Fatal(renderDiags(diags))
	}
	if cfg.Dir != dir || len(cfg.Files) != 2 || cfg.Files[filepath.Join(dir, "main.hcl")] == nil || len(cfg.Groups) != 1 || len(cfg.Policies) != 1 {
		t.Errorf("cfg = %+v", cfg)
	}
	if len(cfg.Digest) != 64 {
		t.Errorf("digest %q", cfg.Digest)
	}

	// The digest covers names and bytes, not where the repository lives.
	same := writeFiles(t, map[string]string{"main.hcl": minimalRepo, "policy.hcl": string(mustRead(t, filepath.Join(dir, "policy.hcl")))})
	if c2, _ := Load(same, testOptions()); c2.Digest != cfg.Digest {
		t.Error("the same files elsewhere must have the same digest")
	}
	renamed := writeFiles(t, map[string]string{"main2.hcl": minimalRepo, "policy.hcl": string(mustRead(t, filepath.Join(dir, "policy.hcl")))})
	if c3, _ := Load(renamed, testOptions()); c3.Digest == cfg.Digest {
		t.Error("renaming a file must change the digest")
	}
	edited := writeFiles(t, map[string]string{"main.hcl": minimalRepo + "\n", "policy.hcl": string(mustRead(t, filepath.Join(dir, "policy.hcl")))})
	if c4, _ := Load(edited, testOptions()); c4.Digest == cfg.Digest {
		t.Error("editing a file must change the digest")
	}
}

func mustRead(t *testing.T, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestLoadDirectoryProblems(t *testing.T) {
	t.Parallel()
	empty := t.TempDir()
	cfg, diags := Load(empty, testOptions())
	if cfg == nil || cfg.Files == nil || !diags.HasErrors() || !strings.Contains(diags[0].Detail, "contains no *.hcl files") {
		t.Errorf("empty dir: %v", diags)
	}
	cfg, diags = Load(filepath.Join(empty, "missing"), testOptions())
	if cfg == nil || cfg.Files == nil || !diags.HasErrors() || !strings.Contains(diags[0].Detail, "no such file or directory") {
		t.Errorf("missing dir: %v", diags)
	}
	// Two files with syntax errors: both reported, and the good file is
	// still decoded (so its own mistakes are reported too).
	dir := writeFiles(t, map[string]string{
		"a.hcl": "target \"ldif\" \"x\" {\n  path = \n}\n",
		"b.hcl": "group \"g\" {\n",
		"c.hcl": "actor \"carol\" {\n  ssh_key = \"nope\"\n}\n",
	})
	cfg, diags = Load(dir, testOptions())
	var files []string
	for _, d := range diags {
		files = append(files, filepath.Base(d.Subject.Filename))
	}
	if got := strings.Join(files, " "); got != "a.hcl b.hcl c.hcl" {
		t.Errorf("diagnostics in %q, want one per file:\n%s", got, renderDiags(diags))
	}
	if len(cfg.Files) != 3 {
		t.Errorf("Files has %d entries; every file is needed to render its diagnostics", len(cfg.Files))
	}
}

func TestFunctions(t *testing.T) {
	t.Parallel()
	dir := writeFiles(t, map[string]string{
		"keys/carol.pub": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAICZWrdNaWzB/aW9sgLk1L4mawakGJaNYcSEw4eYjWxed carol@laptop\n",
		"main.hcl": minimalRepo + `
actor "carol" {
  ssh_key = file("keys/carol.pub")
}

policy "p" {
  groups       = [group.admins]
  eligible     = ["alice"]
  max_duration = "2d"
  approvals    = 0
}

grant "now" {
  policy    = policy.p
  principal = "alice"
  start     = plantimestamp()
  duration  = "1h"
}

grant "later" {
  policy    = policy.p
  principal = "alice"
  start     = timeadd("2026-11-23T10:00:00Z", "1d2h")
  duration  = "1h"
}

grant "earlier" {
  policy    = policy.p
  principal = "alice"
  start     = timeadd(plantimestamp(), "-90m")
  duration  = "1h"
}
`,
	})
	cfg, diags := Load(dir, testOptions())
	if diags.HasErrors() {
		t.Fatal(renderDiags(diags))
	}
	if !strings.HasPrefix(cfg.ActorByName("carol").SSHKey, "ssh-ed25519 AAAA") {
		t.Errorf("file(): %q", cfg.ActorByName("carol").SSHKey)
	}
	wantStarts := map[string]string{"now": "2026-11-23T10:00:00Z", "later": "2026-11-24T12:00:00Z", "earlier": "2026-11-23T08:30:00Z"}
	for _, g := range cfg.Grants {
		if got := g.Start.Format("2006-01-02T15:04:05Z07:00"); got != wantStarts[g.Name] {
			t.Errorf("grant %s starts %s, want %s", g.Name, got, wantStarts[g.Name])
		}
	}
	// Both plantimestamp() grants are warned about, the timeadd one on a fixed time is not.
	var warned []int
	for _, d := range diags {
		if d.Severity == hcl.DiagWarning && strings.Contains(d.Summary, "plantimestamp()") {
			warned = append(warned, d.Subject.Start.Line)
		}
	}
	if len(warned) != 2 || warned[0] != 25 || warned[1] != 39 {
		t.Errorf("plantimestamp warnings at lines %v, want [25 39]:\n%s", warned, renderDiags(diags))
	}

	bad := writeFiles(t, map[string]string{"main.hcl": minimalRepo + `
policy "p" {
  groups       = [group.admins]
  eligible     = [env("JITFORM_NOT_SET_ANYWHERE"), file("../outside")]
  max_duration = timeadd("yesterday", "1h")
  approvals    = 0
}
grant "g" {
  policy    = policy.p
  principal = "alice"
  start     = timeadd("2026-11-23T10:00:00Z", "soon")
  duration  = "1h"
}
`})
	_, diags = Load(bad, testOptions())
	text := renderDiags(diags)
	for _, want := range []string{
		"env() value outside a password: eligible gets its value from env()",
		`"../outside" leaves the policy repository`,
		`"yesterday" is not an RFC 3339 timestamp`,
		`duration "soon"`,
	} {
		if !strings.Contains(text, want) {
			t.Errorf("diagnostics lack %q:\n%s", want, text)
		}
	}
}

func TestFormat(t *testing.T) {
	t.Parallel()
	in := "group \"g\" {\ntarget=target.ldif.x\n    dn = \"cn=g\"\n  members=[\"a\",\"b\"]\n}\n"
	want := "group \"g\" {\n  target  = target.ldif.x\n  dn      = \"cn=g\"\n  members = [\"a\", \"b\"]\n}\n"
	got, err := Format([]byte(in))
	if err != nil || string(got) != want {
		t.Fatalf("Format = %q, %v; want %q", got, err, want)
	}
	again, err := Format(got)
	if err != nil || string(again) != want {
		t.Errorf("Format is not idempotent: %q", again)
	}
	_, err = Format([]byte("group \"g\" {\n  dn = \"x\n}\n"))
	if err == nil || !strings.Contains(err.Error(), "line 2, column") {
		t.Errorf("Format of broken input: %v, want an error naming line 2", err)
	}
	_, err = FormatFile("main.hcl", []byte("group {\n"))
	if err == nil || !strings.HasPrefix(err.Error(), "main.hcl:1:") {
		t.Errorf("FormatFile error %v, want it to start with main.hcl:1:", err)
	}
}
