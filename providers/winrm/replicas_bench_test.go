package winrm

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jitform/jitform/config"
	"github.com/jitform/jitform/internal/operation"
	"github.com/jitform/jitform/internal/testbed/pgtest"
	"github.com/jitform/jitform/internal/testbed/winrmtest"
	"github.com/jitform/jitform/providers"
	"github.com/jitform/jitform/state"
)

// The replica benchmark (scripts/bench-replicas.sh). It runs only when
// asked: JITFORM_BENCH=1 go test ./providers/winrm -run TestBenchReplicas.
//
// One real PostgreSQL (internal/testbed/pgtest) and one WS-Management fake per
// scenario, every host 50 ms slower per request; a policy repository with
// a winrm target of JITFORM_BENCH_HOSTS hosts (default 1,000), one local
// group per host and a grant active now, so every host needs one add; R
// replicas of the `jitform run` loop (operation.Run with the claim wiring
// of cmd/jitform, operation.ReplicaClaims), parallelism 50 each.
//
// It measures the wall time from the replicas' start until the fake shows
// the member on every host, and, with two replicas, the takeover after one
// is killed (its context cancelled and every one of its PostgreSQL
// sessions terminated at once, so it releases nothing): until the survivor
// has claimed every target, and until a new grant is applied on every host
// the dead replica held. From the ledger it checks that every host was
// acted on by exactly one replica and that the split was even.

const (
	benchRDP   = "S-1-5-32-555" // Remote Desktop Users: non-exclusive, empty
	benchAlice = "S-1-5-21-9-9-9-1104"
	benchBob   = "S-1-5-21-9-9-9-1105"
)

func TestBenchReplicas(t *testing.T) {
	if os.Getenv("JITFORM_BENCH") != "1" {
		t.Skip("a benchmark: set JITFORM_BENCH=1 (scripts/bench-replicas.sh)")
	}
	n := 1000
	if v := os.Getenv("JITFORM_BENCH_HOSTS"); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil || n < 1 {
			t.Fatalf("JITFORM_BENCH_HOSTS=%q: want a positive number", v)
		}
	}
	counts := []int{1, 2, 3}
	if v := os.Getenv("JITFORM_BENCH_REPLICAS"); v != "" {
		counts = nil
		for _, f := range strings.Split(v, ",") {
			r, err := strconv.Atoi(strings.TrimSpace(f))
			if err != nil || r < 1 {
				t.Fatalf("JITFORM_BENCH_REPLICAS=%q: want numbers like 1,2,3", v)
			}
			counts = append(counts, r)
		}
	}
	cl := pgtest.Start(t)
	for _, r := range counts {
		f := newBenchFleet(t, cl, n, r)
		f.startAll(t)
		wall := f.waitConverged(t, benchAlice, f.names, 30*time.Minute)
		per := f.checkLedger(t, benchAlice)
		var reqs int
		for _, nm := range f.names {
			rq, _ := f.s.Host(nm).Stats()
			reqs += rq
		}
		fmt.Printf("BENCH-REPLICAS replicas=%d hosts=%d wall=%.2f per_replica=%s requests_per_host=%.1f\n",
			r, n, wall.Seconds(), joinInts(per), float64(reqs)/float64(n))
		f.stopAll()
	}
	if os.Getenv("JITFORM_BENCH_TAKEOVER") == "0" {
		return
	}
	f := newBenchFleet(t, cl, n, 2)
	f.startAll(t)
	f.waitConverged(t, benchAlice, f.names, 30*time.Minute)
	f.checkLedger(t, benchAlice)
	f.waitIdle(t)
	// The dead replica's hosts, by the ledger: those its applies changed.
	dead := f.reps[1]
	var deadHosts []string
	for tg, reps := range f.actedBy(t, benchAlice) {
		if reps[0] == dead.name {
			deadHosts = append(deadHosts, strings.TrimSuffix(strings.TrimPrefix(tg, `target.winrm.fleet["`), `"]`))
		}
	}
	if len(deadHosts) == 0 {
		t.Fatal("the replica to kill applied nothing")
	}
	// A second grant, in the files only: nothing wakes a replica for it
	// (drift interval 1h), so the survivor applies it in the takeover cycle.
	f.writeRepo(t, true)
	survivor := f.reps[0]
	before := survivor.claimCalls.Load()
	killed := time.Now()
	dead.kill(t, f.cl, f.db)
	var claimedAll time.Duration
	deadline := time.Now().Add(30 * time.Minute)
	for claimedAll == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the survivor never claimed every target")
		}
		if survivor.claimCalls.Load() > before && int(survivor.lastClaimed.Load()) == n {
			claimedAll = time.Duration(survivor.lastClaimAt.Load() - killed.UnixNano())
		}
		time.Sleep(20 * time.Millisecond)
	}
	deadDone := f.waitConvergedSince(t, benchBob, deadHosts, killed, 30*time.Minute)
	allDone := f.waitConvergedSince(t, benchBob, f.names, killed, 30*time.Minute)
	f.waitIdle(t)
	// Bob was added once per host, every time by the survivor.
	for tg, reps := range f.actedBy(t, benchBob) {
		if len(reps) != 1 || reps[0] != survivor.name {
			t.Errorf("%s: bob added by %v, want once by %s", tg, reps, survivor.name)
		}
	}
	fmt.Printf("BENCH-TAKEOVER replicas=2 hosts=%d dead_hosts=%d claimed_all=%.2f dead_hosts_granted=%.2f all_hosts_granted=%.2f\n",
		n, len(deadHosts), claimedAll.Seconds(), deadDone.Seconds(), allDone.Seconds())
	f.stopAll()
}

type benchFleet struct {
	cl    *pgtest.Cluster
	db    string
	dir   string
	s     *winrmtest.Server
	names []string
	reps  []*benchReplica
}

type benchReplica struct {
	name   string // the runner host in the ledger and the PostgreSQL application_name
	pg     *state.Postgres
	cancel context.CancelFunc
	done   chan struct{}
	closeC func()
	// From the claim wrapper and the log.
	claimCalls  atomic.Int64
	lastClaimed atomic.Int64
	lastClaimAt atomic.Int64 // unix nanos
	cycles      atomic.Int64 // "cycle start"
	sleeps      atomic.Int64 // "sleeping"
}

func newBenchFleet(t *testing.T, cl *pgtest.Cluster, n, replicas int) *benchFleet {
	t.Helper()
	f := &benchFleet{cl: cl, db: cl.NewDatabase(t), dir: t.TempDir()}
	for i := range n {
		f.names = append(f.names, host(fmt.Sprintf("h%04d", i)))
	}
	f.s = winrmtest.New(t, user, pass, f.names...)
	for _, nm := range f.names {
		f.s.Host(nm).Latency = 50 * time.Millisecond
	}
	if err := os.WriteFile(filepath.Join(f.dir, "ca.pem"), mustRead(t, f.s.CAFile), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("TEST_WINRM_PASSWORD", pass)
	t.Setenv("JITFORM_BENCH_STATE_URL", cl.SuperURL(f.db))
	f.writeRepo(t, false)
	pg := f.openState(t, "bench-init")
	if _, _, err := pg.Migrate(context.Background()); err != nil {
		t.Fatalf("migrate: %v", err)
	}
	pg.Close()
	for i := range replicas {
		f.reps = append(f.reps, &benchReplica{name: fmt.Sprintf("replica-%d", i+1)})
	}
	return f
}

// writeRepo writes the policy repository: every host in one winrm
// target, one local group per host, alice's grant active now and, with
// bob, a second one.
func (f *benchFleet) writeRepo(t *testing.T, bob bool) {
	t.Helper()
	quoted := make([]string, len(f.names))
	for i, nm := range f.names {
		quoted[i] = strconv.Quote(nm)
	}
	start := time.Now().UTC().Add(-10 * time.Minute).Truncate(time.Minute).Format(time.RFC3339)
	hcl := fmt.Sprintf(`
state "postgres" {
  url = env("JITFORM_BENCH_STATE_URL")
}
target "winrm" "fleet" {
  hosts    = [%s]
  ca_file  = "ca.pem"
  auth     = "ntlm"
  user     = "CORP\\svc-jitform"
  password = env("TEST_WINRM_PASSWORD")
}
group "rdp" {
  target = target.winrm.fleet
  name   = %q
}
policy "ops" {
  groups       = [group.rdp]
  eligible     = ["CORP\\alice", "CORP\\bob"]
  max_duration = "8h"
  approvers    = ["carol"]
}
grant "alice_now" {
  policy      = policy.ops
  principal   = "CORP\\alice"
  start       = %q
  duration    = "8h"
  approved_by = ["carol"]
}
`, strings.Join(quoted, ", "), benchRDP, start)
	if bob {
		hcl += fmt.Sprintf(`
grant "bob_now" {
  policy      = policy.ops
  principal   = "CORP\\bob"
  start       = %q
  duration    = "8h"
  approved_by = ["carol"]
}
`, start)
	}
	if err := os.WriteFile(filepath.Join(f.dir, "main.hcl"), []byte(hcl), 0o600); err != nil {
		t.Fatal(err)
	}
}

// openState opens the repository's state block as `jitform` does, with
// its own application_name, so a replica's sessions can be found and cut.
func (f *benchFleet) openState(t *testing.T, appName string) *state.Postgres {
	t.Helper()
	st, diags := config.LoadState(f.dir, config.LoadOptions{})
	if diags.HasErrors() || st == nil || st.Postgres == nil {
		t.Fatalf("state block: %v", diags)
	}
	url, err := st.Postgres.URL.Value()
	if err != nil {
		t.Fatal(err)
	}
	pg, err := state.NewPostgres(state.PostgresConfig{URL: url + "&application_name=" + appName, Schema: st.Postgres.Schema, CAFile: st.Postgres.CAFile})
	if err != nil {
		t.Fatal(err)
	}
	return pg
}

// startAll registers every replica first (as replicas that have been up
// for a while have), then starts their loops together.
func (f *benchFleet) startAll(t *testing.T) {
	t.Helper()
	type started struct {
		r    *benchReplica
		ro   operation.RunOptions
		ctx  context.Context
		wake chan struct{}
	}
	var all []started
	for _, r := range f.reps {
		r.pg = f.openState(t, "bench-"+r.name)
		ctx, cancel := context.WithCancel(context.Background())
		r.cancel, r.done = cancel, make(chan struct{})
		wake := make(chan struct{}, 1)
		notify := func() {
			select {
			case wake <- struct{}{}:
			default:
			}
		}
		// As cmd/jitform/run.go: the ledger watch and the replica claims.
		go func() { _ = r.pg.Watch(ctx, notify, func(error) {}) }()
		claim, closeC, err := operation.ReplicaClaims(ctx, r.pg, f.dir,
			state.LockInfo{Operation: "run", Who: "bench@" + r.name, PID: os.Getpid()}, 2*time.Second, notify)
		if err != nil {
			t.Fatalf("%s: replica claims: %v", r.name, err)
		}
		r.closeC = closeC
		s := f.s
		ro := operation.RunOptions{
			Options: operation.Options{
				Dir: f.dir, Parallelism: 50, Backend: r.pg, LockTimeout: time.Minute, Operation: "run",
				Runner: &state.Runner{User: "bench", Host: r.name, PID: os.Getpid()},
				Registry: providers.Registry{"winrm": func(ctx context.Context, tg *config.Target, o providers.Options) (providers.Target, error) {
					return open(ctx, tg, o, s.Dial)
				}},
			},
			DriftInterval: time.Hour,
			Grace:         time.Millisecond, // a kill cuts the cycle in flight
			Logger:        slog.New(&cycleCounter{r: r}),
			Wake:          wake,
			Claim: func(ctx context.Context) ([]string, error) {
				got, err := claim(ctx)
				r.lastClaimed.Store(int64(len(got)))
				r.lastClaimAt.Store(time.Now().UnixNano())
				r.claimCalls.Add(1)
				return got, err
			},
		}
		all = append(all, started{r: r, ro: ro, ctx: ctx, wake: wake})
	}
	for _, s := range all {
		go func() {
			defer close(s.r.done)
			if err := operation.Run(s.ctx, s.ro); err != nil {
				t.Errorf("%s: run: %v", s.r.name, err)
			}
		}()
	}
}

// kill stops a replica as kill -9 would: its loop stops and every
// PostgreSQL session it has is cut by the server, so it gives nothing
// back (no unlock, no unregister).
func (r *benchReplica) kill(t *testing.T, cl *pgtest.Cluster, db string) {
	t.Helper()
	r.cancel()
	cl.Exec(t, db, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1", "bench-"+r.name)
	<-r.done
	r.closeC = nil // its sessions are gone; nothing to release
}

func (f *benchFleet) stopAll() {
	for _, r := range f.reps {
		r.cancel()
		<-r.done
		if r.closeC != nil {
			r.closeC()
		}
		r.pg.Close()
	}
}

// waitConverged waits until every host in hosts has member in the group,
// and returns how long it took since the replicas started (now - start is
// measured by the caller's clock: the first call after startAll).
func (f *benchFleet) waitConverged(t *testing.T, member string, hosts []string, limit time.Duration) time.Duration {
	return f.waitConvergedSince(t, member, hosts, time.Now(), limit)
}

func (f *benchFleet) waitConvergedSince(t *testing.T, member string, hosts []string, since time.Time, limit time.Duration) time.Duration {
	t.Helper()
	deadline := since.Add(limit)
	for {
		missing := 0
		for _, h := range hosts {
			if !slices.Contains(f.s.Host(h).Members(benchRDP), member) {
				missing++
			}
		}
		if missing == 0 {
			return time.Since(since)
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %s, %d of %d hosts still lack %s", limit, missing, len(hosts), member)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waitIdle waits until every live replica sleeps and the ledger has not
// grown for two seconds (the other replicas' appends wake each one once).
func (f *benchFleet) waitIdle(t *testing.T) {
	t.Helper()
	last, stable := -1, 0
	for stable < 10 {
		time.Sleep(200 * time.Millisecond)
		idle := true
		for _, r := range f.reps {
			if r.closeC != nil && r.cycles.Load() != r.sleeps.Load() {
				idle = false
			}
		}
		evs, err := f.reps[0].pg.Events(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if idle && len(evs) == last {
			stable++
		} else {
			stable = 0
		}
		last = len(evs)
	}
}

// actedBy maps every target on which member was added to the replicas
// whose applies wrote an add intent for it, one entry per intent.
func (f *benchFleet) actedBy(t *testing.T, member string) map[string][]string {
	t.Helper()
	evs, err := f.reps[0].pg.Events(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	runs := map[string]string{}
	out := map[string][]string{}
	for _, e := range evs {
		switch e.Type {
		case state.EventApplyStarted:
			var as state.ApplyStarted
			if err := json.Unmarshal(e.Payload, &as); err != nil {
				t.Fatal(err)
			}
			runs[as.ID] = as.Runner.Host
		case state.EventChangeIntent:
			var c state.Change
			if err := json.Unmarshal(e.Payload, &c); err != nil {
				t.Fatal(err)
			}
			if c.Member == member && c.Action == "add" {
				out[c.Target] = append(out[c.Target], runs[c.Run])
			}
		}
	}
	return out
}

// checkLedger proves the split: every host was added to once, by one
// replica, and no replica did more than its share (ceil(hosts/replicas)).
// It returns how many hosts each replica acted on.
func (f *benchFleet) checkLedger(t *testing.T, member string) []int {
	t.Helper()
	acted := f.actedBy(t, member)
	if len(acted) != len(f.names) {
		t.Errorf("ledger: %s added on %d targets, want %d", member, len(acted), len(f.names))
	}
	per := map[string]int{}
	for tg, reps := range acted {
		if len(reps) != 1 {
			t.Errorf("%s: acted on %d times, by %v; want once", tg, len(reps), reps)
		}
		per[reps[0]]++
	}
	share := state.ShareOf(len(f.names), len(f.reps))
	var out []int
	for _, r := range f.reps {
		out = append(out, per[r.name])
		if per[r.name] > share || per[r.name] < len(f.names)-share*(len(f.reps)-1) {
			t.Errorf("uneven split: %s acted on %d hosts, share %d (all: %v)", r.name, per[r.name], share, per)
		}
	}
	return out
}

func joinInts(v []int) string {
	s := make([]string, len(v))
	for i, x := range v {
		s[i] = strconv.Itoa(x)
	}
	return strings.Join(s, "/")
}

// cycleCounter is a slog handler that counts the loop's cycle starts and
// sleeps, so the benchmark knows when a replica is idle.
type cycleCounter struct {
	r *benchReplica
}

func (h *cycleCounter) Enabled(context.Context, slog.Level) bool { return true }
func (h *cycleCounter) Handle(_ context.Context, rec slog.Record) error {
	switch rec.Message {
	case "cycle start":
		h.r.cycles.Add(1)
	case "sleeping":
		h.r.sleeps.Add(1)
	}
	return nil
}
func (h *cycleCounter) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *cycleCounter) WithGroup(string) slog.Handler      { return h }
