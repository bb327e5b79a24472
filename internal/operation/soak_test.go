package operation

import (
	"bytes"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jitform/jitform/internal/testbed/slapdtest"
)

// TestSoak runs many short, staggered grants through the real `jitform run`
// binary against a real slapd and prints add and remove latency
// percentiles. It runs only when JITFORM_SOAK is set (scripts/soak.sh).
// JITFORM_SOAK_BIN is the binary (built here when unset),
// JITFORM_SOAK_GRANTS how many grants (default 20), JITFORM_SOAK_SPREAD over
// how long their starts are staggered (default 45s).
func TestSoak(t *testing.T) {
	if os.Getenv("JITFORM_SOAK") == "" {
		t.Skip("soak test: run scripts/soak.sh")
	}
	n := 20
	if v, err := strconv.Atoi(os.Getenv("JITFORM_SOAK_GRANTS")); err == nil && v > 0 {
		n = v
	}
	spread := 45 * time.Second
	if v, err := time.ParseDuration(os.Getenv("JITFORM_SOAK_SPREAD")); err == nil && v > 0 {
		spread = v
	}
	bin := os.Getenv("JITFORM_SOAK_BIN")
	if bin == "" {
		bin = filepath.Join(t.TempDir(), "jitform")
		if out, err := exec.Command("go", "build", "-o", bin, "../../cmd/jitform").CombinedOutput(); err != nil {
			t.Fatalf("build jitform: %v\n%s", err, out)
		}
	}

	var seed strings.Builder
	seed.WriteString(latencySeed)
	for i := 0; i < n; i++ {
		fmt.Fprintf(&seed, "\ndn: uid=u%03d,ou=people,dc=example,dc=org\nobjectClass: inetOrgPerson\nuid: u%03d\ncn: U\nsn: U\n", i, i)
	}
	s := slapdtest.Start(t, seed.String())
	dir := t.TempDir()
	base := time.Now().UTC().Truncate(time.Second).Add(3 * time.Second)
	type window struct{ start, end time.Time }
	wins := make([]window, n)
	var hcl strings.Builder
	hcl.WriteString(adminsRepo(s, quoted(n)))
	step := spread / time.Duration(n)
	for i := 0; i < n; i++ {
		// Staggered starts, 1-3 s windows, overlapping: several members
		// come and go in the same group.
		st := base.Add(time.Duration(i) * step)
		d := time.Duration(1+i%3) * time.Second
		wins[i] = window{st, st.Add(d)}
		fmt.Fprintf(&hcl, "grant \"g%03d\" {\n  policy    = policy.p\n  principal = \"u%03d\"\n  start     = %q\n  duration  = %q\n}\n",
			i, i, st.Format(time.RFC3339Nano), d.String())
	}
	if err := os.WriteFile(filepath.Join(dir, "main.hcl"), []byte(hcl.String()), 0o600); err != nil {
		t.Fatal(err)
	}

	var logs bytes.Buffer
	cmd := exec.Command(bin, "-C", dir, "run", "--log-format", "json", "--drift-interval", "1m")
	cmd.Env = append(os.Environ(), "TEST_LDAP_PASSWORD="+slapdtest.RootPW)
	cmd.Stderr = &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			<-exited
		}
	})

	added := make([]time.Time, n)
	removed := make([]time.Time, n)
	end := wins[n-1].end.Add(5 * time.Second)
	polls := 0
	for time.Now().Before(end) {
		select {
		case err := <-exited:
			t.Fatalf("jitform run exited early: %v\n%s", err, logs.String())
		default:
		}
		members := s.Values(t, "cn=admins,ou=groups,dc=example,dc=org", "member")
		now := time.Now()
		polls++
		for i := 0; i < n; i++ {
			in := slices.Contains(members, fmt.Sprintf("uid=u%03d,ou=people,dc=example,dc=org", i))
			if in && added[i].IsZero() {
				added[i] = now
			}
			if !in && !added[i].IsZero() && removed[i].IsZero() {
				removed[i] = now
			}
		}
		time.Sleep(20 * time.Millisecond)
	}

	// SIGTERM: the loop finishes what it is doing and exits 0.
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		if err != nil {
			t.Errorf("jitform run after SIGTERM: %v, want exit 0", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("jitform run did not exit within 10 s of SIGTERM")
	}
	out := logs.String()
	if strings.Contains(out, slapdtest.RootPW) {
		t.Error("the logs contain the bind password")
	}
	if v, err := exec.Command(bin, "-C", dir, "ledger", "verify").CombinedOutput(); err != nil {
		t.Errorf("jitform ledger verify after the soak: %v\n%s", err, v)
	}
	if got := s.Values(t, "cn=admins,ou=groups,dc=example,dc=org", "member"); !slices.Equal(got, []string{"uid=svc,ou=people,dc=example,dc=org"}) {
		t.Errorf("members after the soak = %v, want svc alone", got)
	}

	var adds, rems []time.Duration
	for i := 0; i < n; i++ {
		if added[i].IsZero() || removed[i].IsZero() {
			t.Errorf("grant g%03d: added %v, removed %v", i, added[i], removed[i])
			continue
		}
		a, r := added[i].Sub(wins[i].start), removed[i].Sub(wins[i].end)
		if a < 0 || r < 0 {
			t.Errorf("grant g%03d: added %s, removed %s relative to its window: outside the window", i, a, r)
		}
		adds = append(adds, a)
		rems = append(rems, r)
	}
	cycles := strings.Count(out, `"msg":"cycle start"`)
	failed := strings.Count(out, `"msg":"cycle failed"`) + strings.Count(out, `"msg":"change failed"`)
	fmt.Printf("SOAK %d grants over %s through the jitform binary; %d cycles, %d failures; membership polled %d times (every ~20 ms)\n",
		n, spread, cycles, failed, polls)
	fmt.Printf("%-8s %10s %10s %10s\n", "event", "p50", "p99", "max")
	for _, row := range []struct {
		name string
		ds   []time.Duration
	}{{"add", adds}, {"remove", rems}} {
		if len(row.ds) == 0 {
			continue
		}
		slices.Sort(row.ds)
		fmt.Printf("%-8s %10s %10s %10s\n", row.name, pct(row.ds, 0.5), pct(row.ds, 0.99), row.ds[len(row.ds)-1].Round(time.Millisecond))
		if max := row.ds[len(row.ds)-1]; max > 2*time.Second {
			t.Errorf("%s latency up to %s, want within 2 s", row.name, max)
		}
	}
}

// pct is the nearest-rank percentile of sorted ds.
func pct(ds []time.Duration, q float64) time.Duration {
	i := int(math.Ceil(q*float64(len(ds)))) - 1
	return ds[max(i, 0)].Round(time.Millisecond)
}

func quoted(n int) string {
	var ps []string
	for i := 0; i < n; i++ {
		ps = append(ps, fmt.Sprintf("%q", fmt.Sprintf("u%03d", i)))
	}
	return strings.Join(ps, ", ")
}
