package operation

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jitform/jitform/internal/testbed/slapdtest"
	"github.com/jitform/jitform/providers"
	"github.com/jitform/jitform/providers/ldap"
	"github.com/jitform/jitform/state"
)

const latencySeed = `dn: uid=alice,ou=people,dc=example,dc=org
objectClass: inetOrgPerson
uid: alice
cn: Alice
sn: A

dn: uid=svc,ou=people,dc=example,dc=org
objectClass: inetOrgPerson
uid: svc
cn: Svc
sn: S

dn: cn=admins,ou=groups,dc=example,dc=org
objectClass: groupOfNames
cn: admins
member: uid=svc,ou=people,dc=example,dc=org
`

// The run loop against a real slapd with the real clock: a member is added
// within 2 s of its window's start and removed within 2 s of its end.
func TestRunExpiryLatencyAgainstSlapd(t *testing.T) {
	s := slapdtest.Start(t, latencySeed)
	dir := t.TempDir()
	start := time.Now().UTC().Add(2 * time.Second).Truncate(time.Second).Add(time.Second)
	const dur = 3 * time.Second
	hcl := adminsRepo(s, `"alice"`) + fmt.Sprintf(`
grant "alice_short" {
  policy    = policy.p
  principal = "alice"
  start     = %q
  duration  = "3s"
}
`, start.Format(time.RFC3339))
	if err := os.WriteFile(filepath.Join(dir, "main.hcl"), []byte(hcl), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("TEST_LDAP_PASSWORD", slapdtest.RootPW)
	b, err := state.NewLocal(dir)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	logs := &syncBuffer{}
	go func() {
		done <- Run(ctx, RunOptions{
			Options:       Options{Dir: dir, Backend: b, Registry: providers.Registry{"ldap": ldap.Open}},
			DriftInterval: time.Minute, MinBackoff: 200 * time.Millisecond,
			Logger: slog.New(slog.NewJSONHandler(logs, nil)),
		})
	}()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
		checkChangeLogs(t, logs.String(), "grant.alice_short", "add", "remove")
	}()

	alice := "uid=alice,ou=people,dc=example,dc=org"
	var addedAt, removedAt time.Time
	deadline := start.Add(dur + 6*time.Second)
	for time.Now().Before(deadline) && removedAt.IsZero() {
		in := slices.Contains(s.Values(t, "cn=admins,ou=groups,dc=example,dc=org", "member"), alice)
		now := time.Now()
		switch {
		case in && addedAt.IsZero():
			addedAt = now
		case !in && !addedAt.IsZero():
			removedAt = now
		}
		time.Sleep(25 * time.Millisecond)
	}
	if addedAt.IsZero() || removedAt.IsZero() {
		t.Fatalf("added at %v, removed at %v: the window was not honoured", addedAt, removedAt)
	}
	addLat, removeLat := addedAt.Sub(start), removedAt.Sub(start.Add(dur))
	t.Logf("add latency %s, remove latency %s", addLat.Round(time.Millisecond), removeLat.Round(time.Millisecond))
	if addLat < 0 || addLat > 2*time.Second {
		t.Errorf("added %s after the window opened, want within 2 s (and never before)", addLat)
	}
	if removeLat < 0 || removeLat > 2*time.Second {
		t.Errorf("removed %s after the window closed, want within 2 s", removeLat)
	}
	if got := s.Values(t, "cn=admins,ou=groups,dc=example,dc=org", "member"); !slices.Equal(got, []string{"uid=svc,ou=people,dc=example,dc=org"}) {
		t.Errorf("members after the window = %v, want svc alone", got)
	}
}

// The password never reaches the logs, even when the bind fails with it.
func TestRunLogsNoSecrets(t *testing.T) {
	s := slapdtest.Start(t, latencySeed)
	dir := t.TempDir()
	const wrong = "wrong-sekrit-4711"
	if err := os.WriteFile(filepath.Join(dir, "main.hcl"), []byte(adminsRepo(s, `"alice"`)), 0o600); err != nil {
		t.Fatal(err)
	}
	b, err := state.NewLocal(dir)
	if err != nil {
		t.Fatal(err)
	}
	logs := &syncBuffer{}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	clock := &fakeClock{now: time.Now().UTC(), stopAfter: 2, cancel: cancel}
	for _, pw := range []string{wrong, slapdtest.RootPW} {
		t.Setenv("TEST_LDAP_PASSWORD", pw)
		clock.waits = nil
		ctx, cancel = context.WithCancel(context.Background())
		clock.cancel = cancel
		if err := Run(ctx, RunOptions{
			Options: Options{Dir: dir, Backend: b, Registry: providers.Registry{"ldap": ldap.Open}},
			Clock:   clock, Logger: slog.New(slog.NewJSONHandler(logs, nil)),
		}); err != nil {
			t.Fatal(err)
		}
	}
	out := logs.String()
	if !strings.Contains(out, `"msg":"group unreadable"`) || !strings.Contains(out, `"why":"retry after a failed cycle"`) {
		t.Errorf("the failed bind was not logged and retried:\n%s", out)
	}
	if !strings.Contains(out, `"why":"drift interval"`) {
		t.Errorf("the right password did not give a good cycle:\n%s", out)
	}
	for _, secret := range []string{wrong, slapdtest.RootPW} {
		if strings.Contains(out, secret) {
			t.Errorf("logs contain the password %q:\n%s", secret, out)
		}
	}
}

// checkChangeLogs requires a JSON "change" record for grant with each
// action, carrying the fields an operator filters on.
func checkChangeLogs(t *testing.T, out, grant string, actions ...string) {
	t.Helper()
	seen := map[string]bool{}
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("log line is not JSON: %q", line)
		}
		if rec["msg"] != "change" || rec["grant"] != grant {
			continue
		}
		for _, k := range []string{"cycle", "action", "group", "member", "reason", "status"} {
			if rec[k] == nil {
				t.Errorf("change record lacks %q: %s", k, line)
			}
		}
		seen[fmt.Sprint(rec["action"])] = true
	}
	for _, a := range actions {
		if !seen[a] {
			t.Errorf("no %q change logged for grant %s:\n%s", a, grant, out)
		}
	}
	if strings.Contains(out, slapdtest.RootPW) {
		t.Errorf("logs contain the bind password")
	}
}

// syncBuffer is a bytes.Buffer safe for the loop's goroutine and the test.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// adminsRepo is a policy repository managing the non-exclusive admins group
// of a slapdtest server, with a policy "p" (no windows, no approvals) for
// the eligible principals (an HCL list body). The password comes from
// TEST_LDAP_PASSWORD.
func adminsRepo(s *slapdtest.Server, eligible string) string {
	return fmt.Sprintf(`
target "ldap" "corp" {
  url      = %q
  ca_file  = %q
  bind_dn  = %q
  password = env("TEST_LDAP_PASSWORD")
  base_dn  = "dc=example,dc=org"
  flavor   = "openldap"
}
group "admins" {
  target = target.ldap.corp
  dn     = "cn=admins,ou=groups,dc=example,dc=org"
}
policy "p" {
  groups       = [group.admins]
  eligible     = [%s]
  max_duration = "1h"
  approvals    = 0
}
`, s.URL, s.CAFile, slapdtest.RootDN, eligible)
}
