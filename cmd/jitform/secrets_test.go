package main

import (
	"bytes"
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jitform/jitform/config"
)

const envCanary = "CANARY-from-env-Wq4-must-not-print"

// syncBuffer is a bytes.Buffer safe for the concurrent writes of `run`.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// secretTargets are targets that cannot be reached, with every required
// attribute; the attribute under test is replaced or added.
var secretTargets = map[string]struct {
	header string
	attrs  [][2]string
	group  string
}{
	config.KindLDAP: {`target "ldap" "corp"`, [][2]string{
		{"url", `"ldap://127.0.0.1:1"`}, {"bind_dn", `"cn=admin,dc=example,dc=org"`}, {"password", `"literal-Pw-93"`},
		{"base_dn", `"dc=example,dc=org"`}, {"flavor", `"openldap"`}, {"start_tls", `false`},
		{"insecure_plaintext", `true`}, {"timeout", `"2s"`},
	}, "group \"corp_admins\" {\n  target = target.ldap.corp\n  dn     = \"cn=admins,ou=groups,dc=example,dc=org\"\n}\n"},
	config.KindLDIF: {`target "ldif" "export"`, [][2]string{{"path", `"export.ldif"`}, {"flavor", `"openldap"`}},
		"group \"export_admins\" {\n  target    = target.ldif.export\n  dn        = \"cn=db-admins,ou=groups,dc=example,dc=org\"\n  exclusive = true\n}\n"},
	config.KindWinRM: {`target "winrm" "web"`, [][2]string{
		{"address", `"127.0.0.1"`}, {"port", `1`}, {"https", `false`}, {"insecure_plaintext", `true`},
		{"user", `"svc"`}, {"password", `"literal-Pw-94"`}, {"timeout", `"2s"`},
	}, "group \"web_admins_win\" {\n  target = target.winrm.web\n  name   = \"S-1-5-32-544\"\n}\n"},
}

// TestEnvValueInEveryTargetAttributeNeverPrints sets each attribute of each
// target kind, one at a time, from env() holding a canary, and runs every
// command that prints: validate, plan (text, --json, --out FILE), show
// --json FILE, apply, run (one cycle; the target cannot be read) and ledger
// log. The canary is in no output and no file jitform wrote. In password
// the value is accepted (and the unreachable target fails without it);
// anywhere else validate refuses it, naming the attribute.
func TestEnvValueInEveryTargetAttributeNeverPrints(t *testing.T) {
	t.Setenv("JITFORM_CANARY", envCanary)
	for _, kind := range []string{config.KindLDAP, config.KindLDIF, config.KindWinRM} {
		spec := secretTargets[kind]
		attrs := config.TargetAttributes(kind)
		if len(attrs) < 2 {
			t.Fatalf("%s: no attributes", kind)
		}
		for _, attr := range attrs {
			t.Run(kind+"/"+attr, func(t *testing.T) {
				dir := filepath.Join(t.TempDir(), "repo")
				if err := copyDir(filepath.Join("..", "..", "examples", "quickstart"), dir); err != nil {
					t.Fatal(err)
				}
				ldif, err := os.ReadFile(filepath.Join(dir, "directory.ldif"))
				if err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(filepath.Join(dir, "export.ldif"), ldif, 0o644); err != nil {
					t.Fatal(err)
				}
				expr := `env("JITFORM_CANARY")`
				if attr == "hosts" {
					expr = `[env("JITFORM_CANARY")]`
				}
				var src strings.Builder
				src.WriteString(spec.header + " {\n")
				replaced := false
				for _, a := range spec.attrs {
					switch {
					case a[0] == attr:
						src.WriteString("  " + attr + " = " + expr + "\n")
						replaced = true
					case attr == "hosts" && a[0] == "address":
					default:
						src.WriteString("  " + a[0] + " = " + a[1] + "\n")
					}
				}
				if !replaced {
					src.WriteString("  " + attr + " = " + expr + "\n")
				}
				src.WriteString("}\n\n" + spec.group)
				if err := os.WriteFile(filepath.Join(dir, "secret.hcl"), []byte(src.String()), 0o644); err != nil {
					t.Fatal(err)
				}

				var outputs []string
				jitform := func(args ...string) (int, string, string) {
					ctx, cancel := context.WithCancel(context.Background())
					defer cancel()
					var stdout, stderr syncBuffer
					a := &app{stdin: strings.NewReader("no\n"), stdout: &stdout, stderr: &stderr, getenv: func(string) string { return "" }}
					done := make(chan int, 1)
					go func() { done <- a.main(ctx, append([]string{"-C", dir}, args...)) }()
					var code int
					if args[0] == "run" {
						// One cycle: stop once it sleeps (or gives up).
						deadline := time.Now().Add(20 * time.Second)
						for time.Now().Before(deadline) && !strings.Contains(stderr.String(), "sleeping") && len(done) == 0 {
							time.Sleep(20 * time.Millisecond)
						}
						cancel()
					}
					select {
					case code = <-done:
					case <-time.After(30 * time.Second):
						t.Fatalf("jitform %v did not finish", args)
					}
					outputs = append(outputs, "jitform "+strings.Join(args, " ")+"\n"+stdout.String()+stderr.String())
					return code, stdout.String(), stderr.String()
				}

				code, _, verr := jitform("validate")
				jitform("plan", "--out", "p.plan")
				jitform("plan", "--json")
				if _, err := os.Stat(filepath.Join(dir, "p.plan")); err == nil {
					jitform("show", "--json", "p.plan")
				}
				jitform("apply", "--auto-approve")
				jitform("run", "--log-format=json", "--drift-interval", "720h")
				jitform("ledger", "log", "--json")

				for _, out := range outputs {
					if strings.Contains(out, envCanary) {
						t.Errorf("the env() value is printed:\n%s", out)
					}
				}
				err = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
					if err != nil || d.IsDir() {
						return err
					}
					b, err := os.ReadFile(p)
					if err == nil && bytes.Contains(b, []byte(envCanary)) {
						t.Errorf("%s holds the env() value", p)
					}
					return err
				})
				if err != nil {
					t.Fatal(err)
				}

				if config.IsSecretAttribute(attr) {
					if code != exitOK {
						t.Errorf("validate refused env() in %s:\n%s", attr, verr)
					}
					if kind != config.KindLDIF && !strings.Contains(strings.Join(outputs, "\n"), "could not be read") {
						t.Errorf("the unreachable target was not reported:\n%s", strings.Join(outputs, "\n"))
					}
					return
				}
				if code == exitOK || !strings.Contains(verr, "env() value outside a password") || !strings.Contains(verr, attr+" gets its value from env()") {
					t.Errorf("validate with env() in %s: exit %d\n%s", attr, code, verr)
				}
			})
		}
	}
}
