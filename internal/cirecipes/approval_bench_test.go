package cirecipes

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	goldap "github.com/go-ldap/ldap/v3"

	"github.com/jitform/jitform/internal/testbed/pgtest"
	"github.com/jitform/jitform/internal/testbed/slapdtest"
)

// TestBenchApprovalToMember measures, for both state backends, the time
// from `jitform grant approve` returning to the member being in a real
// slapd group, with `jitform run` running (drift interval one hour, so only
// its wake on a ledger change — fsnotify on local files, LISTEN/NOTIFY on
// PostgreSQL — can bring the change). The directory is polled every 10 ms
// with go-ldap. It prints one BENCH line per backend for
// scripts/bench-approval.sh and fails when an approval does not reach the
// directory within 30 s. Opt-in: JITFORM_BENCH_APPROVAL=1.
func TestBenchApprovalToMember(t *testing.T) {
	if os.Getenv("JITFORM_BENCH_APPROVAL") != "1" {
		t.Skip("benchmark: run scripts/bench-approval.sh (JITFORM_BENCH_APPROVAL=1)")
	}
	requireTools(t, "ssh-keygen", "go")
	n := 20
	if v, err := strconv.Atoi(os.Getenv("JITFORM_BENCH_N")); err == nil && v > 0 {
		n = v
	}
	bin := os.Getenv("JITFORM_BENCH_BIN")
	if bin == "" {
		bin = filepath.Join(t.TempDir(), "jitform")
		build := exec.Command("go", "build", "-o", bin, "./cmd/jitform")
		build.Dir = repoRoot(t)
		if out, err := build.CombinedOutput(); err != nil {
			t.Fatalf("go build: %v\n%s", err, out)
		}
	}
	for _, backend := range []string{"local", "postgres"} {
		t.Run(backend, func(t *testing.T) {
			lat := benchApprovals(t, bin, backend, n)
			sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
			q := func(p float64) time.Duration { // nearest rank
				i := int(p*float64(len(lat))+0.999999) - 1
				if i < 0 {
					i = 0
				}
				return lat[i]
			}
			fmt.Printf("BENCH backend=%s n=%d p50_ms=%d p99_ms=%d max_ms=%d min_ms=%d\n", backend, len(lat),
				q(0.50).Milliseconds(), q(0.99).Milliseconds(), lat[len(lat)-1].Milliseconds(), lat[0].Milliseconds())
		})
	}
}

func benchApprovals(t *testing.T, bin, backend string, n int) []time.Duration {
	var seed strings.Builder
	for i := 1; i <= n; i++ {
		fmt.Fprintf(&seed, "dn: uid=u%02d,ou=people,dc=example,dc=org\nobjectClass: inetOrgPerson\nuid: u%02d\ncn: u%02d\nsn: u%02d\n\n", i, i, i, i)
	}
	seed.WriteString("dn: uid=placeholder,ou=people,dc=example,dc=org\nobjectClass: inetOrgPerson\nuid: placeholder\ncn: placeholder\nsn: placeholder\n\n")
	seed.WriteString("dn: cn=ops,ou=groups,dc=example,dc=org\nobjectClass: groupOfNames\ncn: ops\nmember: uid=placeholder,ou=people,dc=example,dc=org\n")
	srv := slapdtest.Start(t, seed.String())

	dir := t.TempDir()
	keys := map[string]string{}
	for _, actor := range []string{"req", "carol"} {
		key := filepath.Join(dir, actor+".key")
		if out, err := exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", actor, "-f", key).CombinedOutput(); err != nil {
			t.Fatalf("ssh-keygen: %v\n%s", err, out)
		}
		pub, err := os.ReadFile(key + ".pub")
		if err != nil {
			t.Fatal(err)
		}
		keys[actor] = strings.TrimSpace(string(pub))
	}
	eligible := []string{`"req"`}
	for i := 1; i <= n; i++ {
		eligible = append(eligible, fmt.Sprintf(`"u%02d"`, i))
	}
	hcl := fmt.Sprintf(`target "ldap" "lab" {
  url      = %q
  bind_dn  = %q
  password = env("JITFORM_LDAP_PASSWORD")
  base_dn  = %q
  flavor   = "openldap"
  ca_file  = %q
}

group "ops" {
  target    = target.ldap.lab
  dn        = "cn=ops,ou=groups,dc=example,dc=org"
  exclusive = false
}

actor "req" { ssh_key = %q }
actor "carol" { ssh_key = %q }

policy "ops" {
  groups       = [group.ops]
  eligible     = [%s]
  max_duration = "4h"
  approval     = "ledger"
  approvals    = 1
  approvers    = ["carol"]
}
`, srv.URL, slapdtest.RootDN, slapdtest.BaseDN, srv.CAFile, keys["req"], keys["carol"], strings.Join(eligible, ", "))
	env := append(os.Environ(), "JITFORM_LDAP_PASSWORD="+slapdtest.RootPW, "NO_COLOR=1", "CI=")
	if backend == "postgres" {
		c := pgtest.Start(t)
		db := c.NewDatabase(t)
		hcl += "\nstate \"postgres\" {\n  url = env(\"JITFORM_STATE_URL\")\n}\n"
		env = append(env, "JITFORM_STATE_URL="+c.SuperURL(db))
	}
	if err := os.WriteFile(filepath.Join(dir, "main.hcl"), []byte(hcl), 0o600); err != nil {
		t.Fatal(err)
	}
	jf := func(args ...string) string {
		t.Helper()
		cmd := exec.Command(bin, append([]string{"-C", dir}, args...)...)
		cmd.Env = env
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		if err := cmd.Run(); err != nil {
			t.Fatalf("jitform %s: %v\n%s%s", strings.Join(args, " "), err, stdout.String(), stderr.String())
		}
		return strings.TrimSpace(stdout.String())
	}
	if backend == "postgres" {
		jf("init")
	}

	// jitform run, asleep for an hour unless the ledger changes.
	ctx, cancel := context.WithCancel(context.Background())
	run := exec.CommandContext(ctx, bin, "-C", dir, "run", "--drift-interval", "1h")
	run.Env = env
	var runLog bytes.Buffer
	run.Stdout, run.Stderr = &runLog, &runLog
	run.Cancel = func() error { return run.Process.Signal(os.Interrupt) }
	run.WaitDelay = 10 * time.Second
	if err := run.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cancel()
		_ = run.Wait()
		if t.Failed() {
			t.Logf("jitform run log:\n%s", runLog.String())
		}
	})

	conn, err := goldap.DialURL(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if err := conn.Bind(slapdtest.RootDN, slapdtest.RootPW); err != nil {
		t.Fatal(err)
	}
	isMember := func(dn string) bool {
		res, err := conn.Search(goldap.NewSearchRequest("cn=ops,ou=groups,dc=example,dc=org", goldap.ScopeBaseObject,
			goldap.NeverDerefAliases, 0, 0, false, "(member="+goldap.EscapeFilter(dn)+")", []string{"1.1"}, nil))
		if err != nil {
			t.Fatalf("poll the directory: %v", err)
		}
		return len(res.Entries) == 1
	}
	time.Sleep(time.Second) // run's first cycle (nothing to do)

	var lat []time.Duration
	for i := 1; i <= n; i++ {
		principal := fmt.Sprintf("u%02d", i)
		dn := "uid=" + principal + ",ou=people,dc=example,dc=org"
		id := jf("grant", "request", "--as", "req", "--key", filepath.Join(dir, "req.key"), "--policy", "ops",
			"--principal", principal, "--duration", "1h", "--reason", "bench")
		// The request wakes run too (a cycle with nothing to add); approve
		// at varying points after it, as people do.
		time.Sleep(time.Duration(200+37*i%300) * time.Millisecond)
		if isMember(dn) {
			t.Fatalf("%s is in the group before its approval", principal)
		}
		jf("grant", "approve", id, "--as", "carol", "--key", filepath.Join(dir, "carol.key"))
		start := time.Now()
		for !isMember(dn) {
			if time.Since(start) > 30*time.Second {
				t.Fatalf("approval %d (%s): %s not in the group 30 s after grant approve returned", i, id, principal)
			}
			time.Sleep(10 * time.Millisecond)
		}
		lat = append(lat, time.Since(start))
	}
	return lat
}
