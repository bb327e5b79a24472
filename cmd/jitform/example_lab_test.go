package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// examples/openldap works as shipped: lab.sh starts its slapd and writes
// the ca.pem main.hcl names, and plan then reads the lab over StartTLS with
// the certificate verified.
func TestOpenLDAPExampleLab(t *testing.T) {
	if _, err := os.Stat("/usr/sbin/slapd"); err != nil {
		if os.Getenv("JITFORM_REQUIRE_SERVERS") != "" {
			t.Fatal("slapd is not installed (scripts/test.sh installs it)")
		}
		t.Skip("slapd is not installed")
	}
	repo := t.TempDir()
	src := filepath.Join("..", "..", "examples", "openldap")
	for _, f := range []string{"main.hcl", "seed.ldif", "lab.sh"} {
		b, err := os.ReadFile(filepath.Join(src, f))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(repo, f), b, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	lab := exec.Command("bash", filepath.Join(repo, "lab.sh"), "start")
	lab.Env = append(os.Environ(), "LAB_DIR="+filepath.Join(t.TempDir(), "lab"))
	out, err := lab.Output()
	if err != nil {
		t.Fatalf("lab.sh start: %v\n%s", err, out)
	}
	t.Cleanup(func() {
		stop := exec.Command("bash", filepath.Join(repo, "lab.sh"), "stop")
		stop.Env = lab.Env
		_ = stop.Run()
	})
	password, ok := strings.CutPrefix(strings.TrimSpace(string(out)), "export JITFORM_LDAP_PASSWORD=")
	if !ok {
		t.Fatalf("lab.sh printed %q, want the export line", out)
	}
	var stdout, stderr strings.Builder
	a := &app{stdout: &stdout, stderr: &stderr, getenv: func(k string) string {
		if k == "JITFORM_LDAP_PASSWORD" {
			return password
		}
		return os.Getenv(k)
	}}
	t.Setenv("JITFORM_LDAP_PASSWORD", password)
	code := a.main(context.Background(), []string{"-C", repo, "plan"})
	if code != exitOK {
		t.Fatalf("plan against the lab exited %d:\n%s%s", code, stdout.String(), stderr.String())
	}
	for _, want := range []string{"group.db_admins on target.ldap.lab", "+ uid=alice,ou=people,dc=example,dc=org", "group.wheel on target.ldap.lab"} {
		if !strings.Contains(stdout.String(), want) {
			t.Errorf("plan lacks %q:\n%s", want, stdout.String())
		}
	}
	if strings.Contains(stdout.String()+stderr.String(), password) {
		t.Error("the bind password appears in plan output")
	}
}
