package main

import (
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/jitform/jitform/internal/grants/filememo"
)

// With JITFORM_VERIFY_CACHE, plan keeps the ledger's verified signatures
// in that directory (0600 files) and the next plan is the same plan; a
// directory inside the policy repository or writable by others is refused.
func TestPlanVerifyCache(t *testing.T) {
	r := newGrantRepo(t)
	ldif := filepath.Join(r.dir, "directory.ldif")
	b, err := os.ReadFile(ldif)
	if err != nil {
		t.Fatal(err)
	}
	b = append(b, "\ndn: uid=alice,ou=people,dc=example,dc=org\nobjectClass: inetOrgPerson\nuid: alice\ncn: alice\nsn: alice\n"...)
	if err := os.WriteFile(ldif, b, 0o644); err != nil {
		t.Fatal(err)
	}
	id := r.request("alice", "--policy", "ops", "--duration", "2h", "--ticket", "CHG1042", "--reason", "patch")
	r.mustOK(r.as("carol", "grant", "approve", id))
	// The plan's add line for the ledger grant (the plan's header has its
	// own ID and time).
	addLine := func(plan string) string {
		for _, l := range strings.Split(plan, "\n") {
			if strings.Contains(l, "+ uid=alice") && strings.Contains(l, id) {
				return l
			}
		}
		t.Fatalf("the plan does not add alice for %s:\n%s", id, plan)
		return ""
	}
	without := addLine(r.mustOK(r.run("plan")))

	cache := filepath.Join(t.TempDir(), "verify-cache")
	r.env[filememo.EnvVar] = cache
	entries := filepath.Join(cache, filememo.EntriesFileName)
	for i := range 2 {
		if out := addLine(r.mustOK(r.run("plan"))); out != without {
			t.Fatalf("plan %d with the cache:\n%s\nwithout:\n%s", i+1, out, without)
		}
		b, err := os.ReadFile(entries)
		if err != nil {
			t.Fatal(err)
		}
		if n := strings.Count(string(b), "\n"); n != 3 {
			t.Fatalf("plan %d: %d lines in %s, want a header and 2 entries (request, approval):\n%s", i+1, n, entries, b)
		}
		if fi, _ := os.Stat(entries); runtime.GOOS != "windows" && fi.Mode().Perm() != 0o600 {
			t.Fatalf("%s: mode %04o", entries, fi.Mode().Perm())
		}
	}

	for name, dir := range map[string]string{
		"inside the repository": filepath.Join(r.dir, "cache"),
		"group-writable":        filepath.Join(t.TempDir(), "open"),
	} {
		if name == "group-writable" {
			if runtime.GOOS == "windows" {
				continue
			}
			if err := os.Mkdir(dir, 0o700); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(dir, 0o775); err != nil {
				t.Fatal(err)
			}
		}
		r.env[filememo.EnvVar] = dir
		_, stderr, code := r.run("plan")
		if code != 1 || !strings.Contains(stderr, dir) || !strings.Contains(stderr, "refusing the verified-signature cache") {
			t.Errorf("%s: exit %d, stderr:\n%s\nwant a refusal naming %s", name, code, stderr, dir)
		}
	}
}
