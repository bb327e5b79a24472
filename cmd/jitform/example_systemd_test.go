package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// The shipped unit, and the copy in docs/operations.md, pass
// systemd-analyze verify without a single complaint (an inline comment
// after a value, an unknown key or a bad time would each print one).
func TestSystemdUnitVerifies(t *testing.T) {
	if _, err := exec.LookPath("systemd-analyze"); err != nil {
		t.Skip("systemd-analyze is not installed")
	}
	unit, err := os.ReadFile(filepath.Join("..", "..", "examples", "systemd", "jitform.service"))
	if err != nil {
		t.Fatal(err)
	}
	doc, err := os.ReadFile(filepath.Join("..", "..", "docs", "operations.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, fromDoc, ok := strings.Cut(string(doc), "# /etc/systemd/system/jitform.service\n")
	if !ok {
		t.Fatal("docs/operations.md has no jitform.service block")
	}
	fromDoc, _, _ = strings.Cut(fromDoc, "```")
	body := string(unit)[strings.Index(string(unit), "[Unit]"):]
	if fromDoc != body {
		t.Errorf("docs/operations.md's unit differs from examples/systemd/jitform.service")
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "jitform")
	if err := os.WriteFile(bin, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	for name, text := range map[string]string{"shipped": string(unit), "bad": "[Service]\nExecStart=/bin/true\nTimeoutStopSec=60  # comment\n"} {
		path := filepath.Join(dir, name+".service")
		text = strings.ReplaceAll(text, "/usr/local/bin/jitform", bin)
		if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		out, err := exec.Command("systemd-analyze", "verify", path).CombinedOutput()
		clean := err == nil && strings.TrimSpace(string(out)) == ""
		if name == "bad" && clean {
			t.Fatal("systemd-analyze verify accepts an inline comment: the check proves nothing here")
		}
		if name == "shipped" && !clean {
			t.Errorf("systemd-analyze verify jitform.service: %v\n%s", err, out)
		}
	}
}
