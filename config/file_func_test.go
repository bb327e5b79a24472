//go:build unix

package config

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestFileReadsOnlyRegularFilesInsideTheRepository: file() in a hostile pull
// request cannot read the CI's environment, system files, files beside the
// repository, devices, fifos or huge files; it fails with a diagnostic at the
// call that names the path and never the content. A regular file inside the
// repository (also through a symlink that stays inside) is read.
func TestFileReadsOnlyRegularFilesInsideTheRepository(t *testing.T) {
	t.Parallel()
	const canary = "CANARY-outside-content-7731"
	parent := t.TempDir()
	repo := filepath.Join(parent, "repo")
	if err := os.MkdirAll(filepath.Join(repo, "keys"), 0o755); err != nil {
		t.Fatal(err)
	}
	write := func(p, s string) {
		t.Helper()
		if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(filepath.Join(parent, "outside"), canary)
	write(filepath.Join(repo, "keys", "members.txt"), "svc-backup")
	write(filepath.Join(repo, "big.txt"), strings.Repeat("a", 2<<20))
	write(filepath.Join(repo, "exactly.txt"), strings.Repeat("b", MaxFileSize))
	for link, to := range map[string]string{
		"out.txt":   filepath.Join(parent, "outside"),
		"rel.txt":   "../outside",
		"in.txt":    "keys/members.txt",
		"zero":      "/dev/zero",
		"environ":   "/proc/self/environ",
		"dirlink":   "..",
		"keys/up":   "../../outside",
		"keys/back": "../keys/members.txt",
	} {
		if err := os.Symlink(to, filepath.Join(repo, link)); err != nil {
			t.Fatal(err)
		}
	}
	if err := syscall.Mkfifo(filepath.Join(repo, "fifo"), 0o644); err != nil {
		t.Fatal(err)
	}

	cases := []struct {
		name, path string
		want       string // in the diagnostic; "" means it loads
		content    string // when it loads
	}{
		{"the CI environment", "/proc/self/environ", "is an absolute path", ""},
		{"a system secret", "/etc/shadow", "is an absolute path", ""},
		{"a device by absolute path", "/dev/zero", "is an absolute path", ""},
		{"dot-dot out", "../outside", "leaves the policy repository", ""},
		{"dot-dot out after a step in", "keys/../../outside", "leaves the policy repository", ""},
		{"absolute symlink out", "out.txt", "outside the policy repository", ""},
		{"relative symlink out", "rel.txt", "outside the policy repository", ""},
		{"symlink out from a subdirectory", "keys/up", "outside the policy repository", ""},
		{"symlink to a directory out", "dirlink/outside", "outside the policy repository", ""},
		{"symlink to /dev/zero", "zero", "outside the policy repository", ""},
		{"symlink to /proc/self/environ", "environ", "outside the policy repository", ""},
		{"a fifo", "fifo", "is not a regular file (a fifo)", ""},
		{"a directory", "keys", "is not a regular file (a directory)", ""},
		{"a 2 MiB file", "big.txt", "is 2097152 bytes; file() reads at most 1048576 bytes", ""},
		{"a missing file", "nothing.txt", "no such file or directory", ""},
		{"an empty path", "", "the path is empty", ""},
		{"a relative file", "keys/members.txt", "", "svc-backup"},
		{"a symlink that stays inside", "in.txt", "", "svc-backup"},
		{"a symlink inside via a subdirectory", "keys/back", "", "svc-backup"},
		{"exactly 1 MiB", "exactly.txt", "", strings.Repeat("b", MaxFileSize)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			src := minimalRepo + "\nactor \"carol\" {\n  ssh_key = file(\"" + tc.path + "\")\n}\n"
			src = strings.Replace(src, `dn     = "cn=admins,dc=example"`, `dn     = "cn=admins,dc=example"`+"\n  members = [file(\""+tc.path+"\")]", 1)
			if err := os.WriteFile(filepath.Join(repo, "main.hcl"), []byte(src), 0o644); err != nil {
				t.Fatal(err)
			}
			start := time.Now()
			cfg, diags := Load(repo, testOptions())
			if d := time.Since(start); d > 5*time.Second {
				t.Errorf("loading took %s", d)
			}
			text := renderDiags(diags)
			if tc.want == "" {
				if len(cfg.Groups) != 1 || len(cfg.Groups[0].Members) != 1 || cfg.Groups[0].Members[0] != tc.content {
					t.Fatalf("file(%q) did not load its content:\n%s", tc.path, text)
				}
				return
			}
			if !diags.HasErrors() || !strings.Contains(text, tc.want) {
				t.Fatalf("file(%q): want an error containing %q, got:\n%s", tc.path, tc.want, text)
			}
			if !strings.Contains(text, "main.hcl:") || !strings.Contains(text, `Call to function "file" failed`) {
				t.Errorf("the error does not point at the call:\n%s", text)
			}
			for _, leak := range []string{canary, "svc-backup", "root:", "PATH=", "aaaaaaaa"} {
				if strings.Contains(text, leak) {
					t.Errorf("the diagnostic shows file content %q:\n%s", leak, text)
				}
			}
			if len(cfg.Groups) != 0 {
				t.Errorf("a group loaded with a failing file() in its members")
			}
		})
	}
}
