package operation

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jitform/jitform/internal/slapdtest"
	"github.com/jitform/jitform/providers"
	"github.com/jitform/jitform/providers/ldap"
	"github.com/jitform/jitform/state"
)

// TestSoak runs many short, staggered grants through the run loop against
// a real slapd and prints add and remove latency percentiles. It runs only
// when JITFORM_SOAK is set (scripts/soak.sh); JITFORM_SOAK_GRANTS sets how
// many (default 20).
func TestSoak(t *testing.T) {
	if os.Getenv("JITFORM_SOAK") == "" {
		t.Skip("soak test: run scripts/soak.sh")
	}
	n := 20
	if v, err := strconv.Atoi(os.Getenv("JITFORM_SOAK_GRANTS")); err == nil && v > 0 {
		n = v
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
	for i := 0; i < n; i++ {
		// Staggered starts, 1-3 s windows: boundaries fall every second or so.
		st := base.Add(time.Duration(i) * 1500 * time.Millisecond)
		d := time.Duration(1+i%3) * time.Second
		wins[i] = window{st, st.Add(d)}
		fmt.Fprintf(&hcl, "grant \"g%03d\" {\n  policy    = policy.p\n  principal = \"u%03d\"\n  start     = %q\n  duration  = %q\n}\n",
			i, i, st.Format(time.RFC3339Nano), d.String())
	}
	if err := os.WriteFile(filepath.Join(dir, "main.hcl"), []byte(hcl.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("TEST_LDAP_PASSWORD", slapdtest.RootPW)
	b, err := state.NewLocal(dir)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, RunOptions{
			Options:       Options{Dir: dir, Backend: b, Registry: providers.Registry{"ldap": ldap.Open}},
			DriftInterval: time.Minute, MinBackoff: 200 * time.Millisecond,
		})
	}()
	added := make([]time.Time, n)
	removed := make([]time.Time, n)
	end := wins[n-1].end.Add(5 * time.Second)
	for time.Now().Before(end) {
		members := s.Values(t, "cn=admins,ou=groups,dc=example,dc=org", "member")
		now := time.Now()
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
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	var adds, rems []time.Duration
	for i := 0; i < n; i++ {
		if added[i].IsZero() || removed[i].IsZero() {
			t.Errorf("grant g%03d: added %v, removed %v", i, added[i], removed[i])
			continue
		}
		adds = append(adds, added[i].Sub(wins[i].start))
		rems = append(rems, removed[i].Sub(wins[i].end))
	}
	fmt.Printf("SOAK %d grants, membership polled every 20 ms\n", n)
	fmt.Printf("%-8s %10s %10s %10s\n", "event", "p50", "p99", "max")
	for _, row := range []struct {
		name string
		ds   []time.Duration
	}{{"add", adds}, {"remove", rems}} {
		slices.Sort(row.ds)
		if len(row.ds) == 0 {
			continue
		}
		p := func(q float64) time.Duration { return row.ds[int(q*float64(len(row.ds)-1))] }
		fmt.Printf("%-8s %10s %10s %10s\n", row.name, p(0.5).Round(time.Millisecond), p(0.99).Round(time.Millisecond), row.ds[len(row.ds)-1].Round(time.Millisecond))
	}
}

func quoted(n int) string {
	var ps []string
	for i := 0; i < n; i++ {
		ps = append(ps, fmt.Sprintf("%q", fmt.Sprintf("u%03d", i)))
	}
	return strings.Join(ps, ", ")
}
