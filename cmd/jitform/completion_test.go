package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// The bash script completes commands, subcommands and a command's own flags
// (read from its --help), in a real bash.
func TestCompletionBash(t *testing.T) {
	if _, err := exec.LookPath("bash"); err != nil {
		t.Skip("no bash")
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "jitform")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	var script strings.Builder
	a := &app{stdout: &script, stderr: os.Stderr, getenv: func(string) string { return "" }}
	if code := a.main(context.Background(), []string{"completion", "bash"}); code != exitOK {
		t.Fatalf("completion bash exited %d", code)
	}
	if err := os.WriteFile(filepath.Join(dir, "c.bash"), []byte(script.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct{ words, want, notWant string }{
		{"jitform gr", "grant", ""},
		{"jitform grant ap", "approve", ""},
		{"jitform ledger ", "verify log checkpoint", ""},
		{"jitform plan --det", "--detailed-exitcode", ""},
		// Flags come from the Flags: section only, not from the help's prose.
		{"jitform -C dir grant approve --a", "--as", "--auto-approve"},
	}
	for _, tt := range tests {
		words := strings.Fields(tt.words)
		cword := len(words) - 1
		if strings.HasSuffix(tt.words, " ") {
			words = append(words, "")
			cword++
		}
		quoted := make([]string, len(words))
		for i, w := range words {
			quoted[i] = "'" + w + "'"
		}
		cmd := exec.Command("bash", "-c", `source c.bash; COMP_WORDS=(`+strings.Join(quoted, " ")+`); COMP_CWORD=`+
			string(rune('0'+cword))+`; _jitform; echo "${COMPREPLY[@]}"`)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "PATH="+dir+":"+os.Getenv("PATH"))
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("%q: %v\n%s", tt.words, err, out)
		}
		got := strings.TrimSpace(string(out))
		if !strings.Contains(got, tt.want) || (tt.notWant != "" && strings.Contains(got, tt.notWant)) {
			t.Errorf("complete %q = %q, want %q without %q", tt.words, got, tt.want, tt.notWant)
		}
	}
	for _, shell := range []string{"zsh", "fish", "powershell"} {
		var out strings.Builder
		a := &app{stdout: &out, stderr: os.Stderr, getenv: func(string) string { return "" }}
		if code := a.main(context.Background(), []string{"completion", shell}); code != exitOK || !strings.Contains(out.String(), "jitform") {
			t.Errorf("completion %s exited %d:\n%s", shell, code, out.String())
		}
	}
}
