package state

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/jitform/jitform/internal/testbed/pgtest"
)

// pgHelperEnv makes this test binary a helper process for the PostgreSQL
// tests (the local tests' TestMain knows only its own roles, so the
// helpers run from init, before TestMain).
const pgHelperEnv = "JITFORM_PG_HELPER"

func init() {
	role := os.Getenv(pgHelperEnv)
	if role == "" {
		return
	}
	p, err := NewPostgres(PostgresConfig{URL: os.Getenv("JITFORM_PG_URL"), Schema: os.Getenv("JITFORM_PG_SCHEMA")})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	ctx := context.Background()
	switch role {
	case "append":
		who := os.Getenv("JITFORM_WHO")
		n, _ := strconv.Atoi(os.Getenv("JITFORM_N"))
		for i := range n {
			if _, err := p.Append(ctx, testEvent(who, i)); err != nil {
				fmt.Fprintln(os.Stderr, err)
				os.Exit(1)
			}
		}
		os.Exit(0)
	case "lock":
		info := LockInfo{Operation: "apply", Who: "child@testhost", PID: os.Getpid(), Since: time.Now().UTC()}
		if _, err := p.Lock(ctx, info, 10*time.Second); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		if err := os.WriteFile(os.Getenv("JITFORM_READY"), []byte("locked"), 0o600); err != nil {
			os.Exit(1)
		}
		time.Sleep(time.Minute)
		os.Exit(0)
	}
	fmt.Fprintln(os.Stderr, "unknown PostgreSQL helper role", role)
	os.Exit(2)
}

// pgState is a migrated PostgreSQL state in a fresh database of c.
func pgState(t *testing.T, c *pgtest.Cluster) (*Postgres, string) {
	t.Helper()
	db := c.NewDatabase(t)
	url := c.SuperURL(db)
	p, err := NewPostgres(PostgresConfig{URL: url})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	if _, _, err := p.Migrate(context.Background()); err != nil {
		t.Fatalf("migrate: %v", err)
	}
	return p, url
}

func pgCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// TestPostgresLedgerIsTheLocalLedgerByteForByte appends the same events
// with the same clock to both backends: the PostgreSQL rows, exported, are
// exactly the local ledger.jsonl, and both read back the same verified events.
func TestPostgresLedgerIsTheLocalLedgerByteForByte(t *testing.T) {
	c := pgtest.Start(t)
	ctx := pgCtx(t)
	p, _ := pgState(t, c)
	dir := t.TempDir()
	l, err := NewLocal(dir)
	if err != nil {
		t.Fatal(err)
	}
	clock := func() time.Time { return time.Date(2026, 11, 23, 9, 30, 0, 123456789, time.FixedZone("x", 3600)) }
	p.now, l.now = clock, clock
	batches := [][]Event{
		{testEvent("alice", 1)},
		{testEvent("bob", 2), {Type: EventRequest, Actor: "carol", Payload: json.RawMessage(`{"z": 1, "a": "<&>", "u": "\u00e9"}`)}},
		{{Type: EventRevoke, Actor: "dave", Sig: "-----BEGIN SSH SIGNATURE-----\nabc\n-----END SSH SIGNATURE-----", Payload: json.RawMessage(`null`)}},
	}
	var fromPG []Event
	for _, b := range batches {
		got, err := p.Append(ctx, b...)
		if err != nil {
			t.Fatalf("postgres append: %v", err)
		}
		fromPG = append(fromPG, got...)
		if _, err := l.Append(ctx, b...); err != nil {
			t.Fatalf("local append: %v", err)
		}
	}
	lines, err := p.Lines(ctx)
	if err != nil {
		t.Fatal(err)
	}
	file, err := os.ReadFile(filepath.Join(dir, StateDirName, LedgerFileName))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(lines, file) {
		t.Fatalf("PostgreSQL ledger differs from the local one:\npg:    %s\nlocal: %s", lines, file)
	}
	events, err := p.Events(ctx)
	if err != nil {
		t.Fatalf("Events: %v", err)
	}
	if len(events) != 4 || Verify(events) != nil {
		t.Fatalf("read %d events, verify: %v", len(events), Verify(events))
	}
	for i := range events {
		if events[i].Hash != fromPG[i].Hash || events[i].Seq != int64(i+1) {
			t.Errorf("event %d: read %d/%s, Append returned %d/%s", i, events[i].Seq, events[i].Hash, fromPG[i].Seq, fromPG[i].Hash)
		}
	}
}

// TestPostgresEditedRowFailsVerification: a superuser (who bypasses the
// append-only trigger) edits an event's actor; Events names that event.
func TestPostgresEditedRowFailsVerification(t *testing.T) {
	c := pgtest.Start(t)
	ctx := pgCtx(t)
	p, _ := pgState(t, c)
	for i := range 3 {
		if _, err := p.Append(ctx, testEvent("a", i)); err != nil {
			t.Fatal(err)
		}
	}
	db := p.poolCfg.ConnConfig.Database
	c.Exec(t, db, `UPDATE jitform.ledger SET line = replace(line, '"actor":"jitform"', '"actor":"mallory"') WHERE seq = 2`)
	_, err := p.Events(ctx)
	var ce *ChainError
	if !errors.As(err, &ce) || ce.Seq != 2 {
		t.Fatalf("Events after an edit of event 2 = %v, want a ChainError at 2", err)
	}
}

// runnerGrants is the least-privilege runner role of docs/state-postgres.md.
const runnerGrants = `
CREATE ROLE jitform_runner LOGIN PASSWORD 'runner-Pw-7731';
GRANT USAGE ON SCHEMA jitform TO jitform_runner;
GRANT SELECT, INSERT ON jitform.ledger TO jitform_runner;
GRANT SELECT ON jitform.schema_version TO jitform_runner;
GRANT SELECT, INSERT, UPDATE, DELETE ON jitform.locks TO jitform_runner;
GRANT SELECT, INSERT, DELETE ON jitform.credentials TO jitform_runner;
GRANT SELECT, INSERT ON jitform.snapshots TO jitform_runner;
`

// TestPostgresRunnerRoleCannotEditOrCutTheLedger proves the documented
// runner role (and even a role granted every privilege on the table) can
// append and read but never UPDATE, DELETE or TRUNCATE the ledger, nor
// disable the trigger that forbids it.
func TestPostgresRunnerRoleCannotEditOrCutTheLedger(t *testing.T) {
	c := pgtest.Start(t)
	ctx := pgCtx(t)
	p, _ := pgState(t, c)
	db := p.poolCfg.ConnConfig.Database
	c.Exec(t, db, runnerGrants)
	c.Exec(t, db, `CREATE ROLE overgranted LOGIN PASSWORD 'over-Pw-1234';
		GRANT USAGE ON SCHEMA jitform TO overgranted;
		GRANT ALL ON ALL TABLES IN SCHEMA jitform TO overgranted;`)

	runner, err := NewPostgres(PostgresConfig{URL: c.URL("jitform_runner", "runner-Pw-7731", db)})
	if err != nil {
		t.Fatal(err)
	}
	defer runner.Close()
	for i := range 3 {
		if _, err := runner.Append(ctx, testEvent("runner", i)); err != nil {
			t.Fatalf("the runner role cannot append: %v", err)
		}
	}
	unlock, err := runner.Lock(ctx, LockInfo{Operation: "apply", Who: "ci@runner", PID: 1}, time.Second)
	if err != nil {
		t.Fatalf("the runner role cannot take the lock: %v", err)
	}
	if err := unlock(); err != nil {
		t.Fatal(err)
	}

	for _, role := range []struct{ user, pw string }{{"jitform_runner", "runner-Pw-7731"}, {"overgranted", "over-Pw-1234"}} {
		conn, err := pgx.Connect(ctx, c.URL(role.user, role.pw, db))
		if err != nil {
			t.Fatal(err)
		}
		for _, stmt := range []string{
			`UPDATE jitform.ledger SET line = line WHERE seq = 1`,
			`DELETE FROM jitform.ledger WHERE seq = 3`,
			`TRUNCATE jitform.ledger`,
			`ALTER TABLE jitform.ledger DISABLE TRIGGER ledger_append_only`,
			`DROP TRIGGER ledger_append_only ON jitform.ledger`,
			`INSERT INTO jitform.ledger (seq, prev, hash, line, batch) SELECT 2, prev, hash, line, 'fork' FROM jitform.ledger WHERE seq = 2`,
		} {
			_, err := conn.Exec(ctx, stmt)
			var pgErr *pgconn.PgError
			switch {
			case !errors.As(err, &pgErr):
				t.Errorf("%s: %q succeeded (%v), want it refused", role.user, stmt, err)
			case strings.HasPrefix(stmt, "INSERT"):
				if pgErr.Code != "23505" && pgErr.Code != "23514" { // unique or check violation: no fork
					t.Errorf("%s: %q refused with %s %s, want a unique or check violation", role.user, stmt, pgErr.Code, pgErr.Message)
				}
			case pgErr.Code != "42501" && pgErr.Code != "42809":
				t.Errorf("%s: %q refused with %s %s, want insufficient privilege", role.user, stmt, pgErr.Code, pgErr.Message)
			case role.user == "overgranted" && !strings.HasPrefix(stmt, "ALTER") && !strings.HasPrefix(stmt, "DROP") && !strings.Contains(pgErr.Message, "append-only"):
				// Granted the privileges, it is the trigger that refuses.
				t.Errorf("%s: %q refused by %q, want the append-only trigger", role.user, stmt, pgErr.Message)
			}
		}
		conn.Close(ctx)
	}
	events, err := p.Events(ctx)
	if err != nil || len(events) != 3 {
		t.Fatalf("after the attempts the ledger has %d events (%v), want the 3 intact", len(events), err)
	}
}

// TestPostgresPushThenPullVerifiesByteForByte pushes a local ledger into
// an empty PostgreSQL ledger keeping every hash, refuses a second push,
// pulls it into a fresh directory byte for byte, and pulls again after
// more appends (the local copy is a prefix).
func TestPostgresPushThenPullVerifiesByteForByte(t *testing.T) {
	c := pgtest.Start(t)
	ctx := pgCtx(t)
	p, _ := pgState(t, c)
	src, l := newLedger(t, 25)
	local, err := l.Events(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Import(ctx, local); err != nil {
		t.Fatalf("push: %v", err)
	}
	if err := p.Import(ctx, local); err == nil || !strings.Contains(err.Error(), "already holds 25") {
		t.Fatalf("second push = %v, want a refusal naming the 25 events", err)
	}
	dst := t.TempDir()
	n, err := PullToLocal(ctx, p, dst, time.Second)
	if err != nil || n != 25 {
		t.Fatalf("pull = %d, %v", n, err)
	}
	for _, name := range []string{LedgerFileName, HeadFileName} {
		a, _ := os.ReadFile(filepath.Join(src, StateDirName, name))
		b, _ := os.ReadFile(filepath.Join(dst, StateDirName, name))
		if !bytes.Equal(a, b) || len(a) == 0 {
			t.Errorf("%s after push and pull differs from the original", name)
		}
	}
	pulled, err := NewLocal(dst)
	if err != nil {
		t.Fatal(err)
	}
	if ev, err := pulled.Events(ctx); err != nil || len(ev) != 25 {
		t.Fatalf("the local verifier on the pulled ledger: %d events, %v", len(ev), err)
	}
	if _, err := p.Append(ctx, testEvent("after-push", 1)); err != nil {
		t.Fatal(err)
	}
	if n, err := PullToLocal(ctx, p, dst, time.Second); err != nil || n != 26 {
		t.Fatalf("second pull = %d, %v", n, err)
	}
	// A local ledger with another history is never overwritten.
	other := t.TempDir()
	ol, err := NewLocal(other)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ol.Append(ctx, testEvent("elsewhere", 1)); err != nil {
		t.Fatal(err)
	}
	before, _ := os.ReadFile(filepath.Join(other, StateDirName, LedgerFileName))
	if _, err := PullToLocal(ctx, p, other, time.Second); err == nil || !strings.Contains(err.Error(), "different history") {
		t.Fatalf("pull over a different history = %v, want a refusal", err)
	}
	after, _ := os.ReadFile(filepath.Join(other, StateDirName, LedgerFileName))
	if !bytes.Equal(before, after) {
		t.Fatal("a refused pull changed the local ledger")
	}
}

// TestPostgresLockFreedWhenHolderIsKilled: a waiter times out naming the
// holder (operation, user@host, pid, since); after kill -9 of the holder the
// lock is taken at once.
func TestPostgresLockFreedWhenHolderIsKilled(t *testing.T) {
	c := pgtest.Start(t)
	ctx := pgCtx(t)
	p, url := pgState(t, c)
	ready := filepath.Join(t.TempDir(), "ready")
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), pgHelperEnv+"=lock", "JITFORM_PG_URL="+url, "JITFORM_READY="+ready)
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	waitFile(t, ready)

	_, err := p.Lock(ctx, LockInfo{Operation: "plan", Who: "me@here", PID: os.Getpid()}, 300*time.Millisecond)
	var le *LockError
	if !errors.As(err, &le) {
		t.Fatalf("Lock while held = %v, want a *LockError", err)
	}
	if le.Holder.Operation != "apply" || le.Holder.Who != "child@testhost" || le.Holder.PID != cmd.Process.Pid || le.Holder.Since.IsZero() {
		t.Fatalf("holder = %+v, want apply by child@testhost pid %d", le.Holder, cmd.Process.Pid)
	}
	for _, want := range []string{"apply", "child@testhost", strconv.Itoa(cmd.Process.Pid), "since", "database session"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("lock error %q does not mention %q", err, want)
		}
	}
	if le.Waited < 300*time.Millisecond {
		t.Errorf("gave up after %s, before the timeout", le.Waited)
	}

	killed := time.Now()
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	unlock, err := p.Lock(ctx, LockInfo{Operation: "plan", Who: "me@here", PID: os.Getpid()}, 10*time.Second)
	if err != nil {
		t.Fatalf("Lock after the holder was killed: %v", err)
	}
	t.Logf("lock taken %s after kill -9 of its holder", time.Since(killed).Round(time.Millisecond))
	// While we hold it, the holder named is us, not the dead process.
	_, err = p.Lock(ctx, LockInfo{Operation: "x"}, 50*time.Millisecond)
	if !errors.As(err, &le) || le.Holder.Who != "me@here" {
		t.Fatalf("second Lock = %v, want held by me@here", err)
	}
	if err := unlock(); err != nil {
		t.Fatal(err)
	}
}

func waitFile(t *testing.T, path string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		if _, err := os.Stat(path); err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s did not appear", path)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestPostgresConcurrentProcessesAppend: 8 processes append at once; the
// ledger has every event once, seqs 1..N contiguous, and the chain verifies.
func TestPostgresConcurrentProcessesAppend(t *testing.T) {
	c := pgtest.Start(t)
	ctx := pgCtx(t)
	p, url := pgState(t, c)
	const procs, each = 8, 25
	var cmds []*exec.Cmd
	for i := range procs {
		cmd := exec.Command(os.Args[0])
		cmd.Env = append(os.Environ(), pgHelperEnv+"=append", "JITFORM_PG_URL="+url,
			"JITFORM_WHO=proc"+strconv.Itoa(i), "JITFORM_N="+strconv.Itoa(each))
		cmd.Stderr = os.Stderr
		cmds = append(cmds, cmd)
	}
	start := time.Now()
	for _, cmd := range cmds {
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
	}
	for i, cmd := range cmds {
		if err := cmd.Wait(); err != nil {
			t.Errorf("process %d: %v", i, err)
		}
	}
	t.Logf("%d processes appended %d events in %s", procs, procs*each, time.Since(start).Round(time.Millisecond))
	events, err := p.Events(ctx)
	if err != nil {
		t.Fatalf("the chain does not verify: %v", err)
	}
	if len(events) != procs*each {
		t.Fatalf("%d events, want %d", len(events), procs*each)
	}
	seen := map[string]bool{}
	for i, e := range events {
		if e.Seq != int64(i+1) {
			t.Fatalf("event %d has seq %d", i, e.Seq)
		}
		var pl testPayload
		if err := json.Unmarshal(e.Payload, &pl); err != nil {
			t.Fatal(err)
		}
		k := fmt.Sprintf("%s/%d", pl.Who, pl.I)
		if seen[k] {
			t.Fatalf("%s appended twice", k)
		}
		seen[k] = true
	}
	if len(seen) != procs*each {
		t.Fatalf("%d distinct events, want %d", len(seen), procs*each)
	}
}

// TestPostgresAppendFindsOutWhetherALostCommitHappened drops the
// connection in the two places where a client cannot know the outcome:
// before COMMIT reaches the server (the append did not happen and is done
// once more) and after the server committed but before its reply arrived
// (the append happened and must not be repeated). Either way the ledger
// holds the batch exactly once and Append returns what was stored.
func TestPostgresAppendFindsOutWhetherALostCommitHappened(t *testing.T) {
	c := pgtest.Start(t)
	ctx := pgCtx(t)

	t.Run("terminated before commit", func(t *testing.T) {
		p, _ := pgState(t, c)
		if _, err := p.Append(ctx, testEvent("first", 0)); err != nil {
			t.Fatal(err)
		}
		db := p.poolCfg.ConnConfig.Database
		var attempts []int
		p.beforeCommit = func(attempt int, pid uint32) {
			attempts = append(attempts, attempt)
			if attempt == 1 {
				c.Exec(t, db, "SELECT pg_terminate_backend($1)", int64(pid))
			}
		}
		got, err := p.Append(ctx, testEvent("lost", 1), testEvent("lost", 2))
		if err != nil {
			t.Fatalf("Append across a terminated session: %v", err)
		}
		if len(attempts) != 2 {
			t.Fatalf("attempts %v, want the batch inserted twice (the first never committed)", attempts)
		}
		assertOnce(t, ctx, p, got, 3)
	})

	t.Run("reply lost after commit", func(t *testing.T) {
		p0, _ := pgState(t, c)
		db := p0.poolCfg.ConnConfig.Database
		proxy := startCommitProxy(t, fmt.Sprintf("127.0.0.1:%d", c.Port))
		url := fmt.Sprintf("postgres://%s:%s@%s/%s?sslmode=disable", pgtest.SuperUser, pgtest.SuperPassword, proxy.addr, db)
		p, err := NewPostgres(PostgresConfig{URL: url})
		if err != nil {
			t.Fatal(err)
		}
		defer p.Close()
		if _, err := p.Append(ctx, testEvent("first", 0)); err != nil {
			t.Fatal(err)
		}
		var attempts []int
		p.beforeCommit = func(attempt int, _ uint32) {
			attempts = append(attempts, attempt)
			if attempt == 1 {
				proxy.dropNextCommitReply.Store(true)
			}
		}
		got, err := p.Append(ctx, testEvent("kept", 1), testEvent("kept", 2))
		if err != nil {
			t.Fatalf("Append whose commit reply was lost: %v", err)
		}
		if !proxy.dropped.Load() {
			t.Fatal("the proxy did not drop a commit reply: the test proved nothing")
		}
		if len(attempts) != 1 {
			t.Fatalf("attempts %v: the batch was inserted again although it had committed", attempts)
		}
		assertOnce(t, ctx, p0, got, 3)
	})
}

// assertOnce checks the ledger has n verified events and ends with got.
func assertOnce(t *testing.T, ctx context.Context, p *Postgres, got []Event, n int) {
	t.Helper()
	events, err := p.Events(ctx)
	if err != nil {
		t.Fatalf("chain: %v", err)
	}
	if len(events) != n {
		t.Fatalf("%d events, want %d (a duplicate or a loss)", len(events), n)
	}
	tail := events[n-len(got):]
	for i := range got {
		if got[i].Hash != tail[i].Hash {
			t.Fatalf("Append returned event %d/%s, the ledger holds %d/%s", got[i].Seq, got[i].Hash, tail[i].Seq, tail[i].Hash)
		}
	}
}

// commitProxy forwards TCP to PostgreSQL; armed, it lets the next COMMIT
// through to the server, waits for the server's reply and then closes the
// client's side without passing the reply on: a commit whose reply was lost.
type commitProxy struct {
	addr                string
	dropNextCommitReply atomic.Bool
	dropped             atomic.Bool
}

func startCommitProxy(t *testing.T, target string) *commitProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	px := &commitProxy{addr: ln.Addr().String()}
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			client, err := ln.Accept()
			if err != nil {
				return
			}
			server, err := net.Dial("tcp", target)
			if err != nil {
				client.Close()
				continue
			}
			commitSent := make(chan struct{}, 1)
			wg.Add(2)
			go func() { // client -> server
				defer wg.Done()
				buf := make([]byte, 32<<10)
				for {
					n, err := client.Read(buf)
					if n > 0 {
						if px.dropNextCommitReply.Load() && bytes.Contains(buf[:n], []byte("commit\x00")) && px.dropNextCommitReply.CompareAndSwap(true, false) {
							commitSent <- struct{}{}
						}
						if _, werr := server.Write(buf[:n]); werr != nil {
							break
						}
					}
					if err != nil {
						break
					}
				}
				server.Close()
			}()
			go func() { // server -> client
				defer wg.Done()
				buf := make([]byte, 32<<10)
				armed := false
				for {
					select {
					case <-commitSent:
						armed = true
					default:
					}
					n, err := server.Read(buf)
					if armed || len(commitSent) > 0 {
						// The server answered the COMMIT: swallow it and cut the client.
						px.dropped.Store(true)
						client.Close()
						server.Close()
						return
					}
					if n > 0 {
						if _, werr := client.Write(buf[:n]); werr != nil {
							break
						}
					}
					if err != nil {
						break
					}
				}
				client.Close()
			}()
		}
	}()
	return px
}

// TestPostgresSchemaVersions: an uninitialised database says to run
// `jitform init`; a schema newer than this binary is refused by reads,
// writes and Migrate alike, with a message saying to upgrade jitform.
func TestPostgresSchemaVersions(t *testing.T) {
	c := pgtest.Start(t)
	ctx := pgCtx(t)
	db := c.NewDatabase(t)
	p, err := NewPostgres(PostgresConfig{URL: c.SuperURL(db)})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	_, err = p.Events(ctx)
	var sv *SchemaVersionError
	if !errors.As(err, &sv) || sv.Found != 0 || !strings.Contains(err.Error(), "jitform init") {
		t.Fatalf("Events before init = %v, want a SchemaVersionError saying to run jitform init", err)
	}
	from, to, err := p.Migrate(ctx)
	if err != nil || from != 0 || to != PostgresSchemaVersion() {
		t.Fatalf("Migrate = %d, %d, %v", from, to, err)
	}
	if from, to, err := p.Migrate(ctx); err != nil || from != to {
		t.Fatalf("second Migrate = %d, %d, %v; want nothing to do", from, to, err)
	}
	// A process that checked the version before the upgrade refuses to write after it.
	if _, err := p.Append(ctx, testEvent("before-upgrade", 1)); err != nil {
		t.Fatal(err)
	}
	c.Exec(t, db, "INSERT INTO jitform.schema_version (version, name) VALUES (999, '0999_future.sql')")
	if _, err := p.Append(ctx, testEvent("after-upgrade", 1)); !errors.As(err, &sv) || sv.Found != 999 {
		t.Errorf("Append by a running old jitform after the upgrade = %v, want a refusal", err)
	}
	newer, err := NewPostgres(PostgresConfig{URL: c.SuperURL(db)})
	if err != nil {
		t.Fatal(err)
	}
	defer newer.Close()
	for name, op := range map[string]func() error{
		"Events":  func() error { _, err := newer.Events(ctx); return err },
		"Append":  func() error { _, err := newer.Append(ctx, testEvent("x", 1)); return err },
		"Lock":    func() error { _, err := newer.Lock(ctx, LockInfo{}, time.Second); return err },
		"Migrate": func() error { _, _, err := newer.Migrate(ctx); return err },
	} {
		err := op()
		if !errors.As(err, &sv) || sv.Found != 999 || !strings.Contains(err.Error(), "upgrade jitform") {
			t.Errorf("%s on a newer schema = %v, want a refusal saying to upgrade jitform", name, err)
		}
	}
}

// TestPostgresPasswordNeverInErrors: a wrong password, an unreachable
// server and a malformed URL produce errors without the password.
func TestPostgresPasswordNeverInErrors(t *testing.T) {
	c := pgtest.Start(t)
	ctx := pgCtx(t)
	const secret = "S3cret-Pw-in-url-8841"
	for name, url := range map[string]string{
		"wrong password": fmt.Sprintf("postgres://postgres:%s@127.0.0.1:%d/postgres?sslmode=verify-full&sslrootcert=%s", secret, c.Port, c.CAFile),
		"unreachable":    fmt.Sprintf("postgres://postgres:%s@127.0.0.1:1/postgres", secret),
		"bad tls":        fmt.Sprintf("postgres://postgres:%s@127.0.0.1:%d/postgres", secret, c.Port),
		"key=value":      fmt.Sprintf("host=127.0.0.1 port=%d user=postgres password=%s dbname=postgres sslrootcert=%s", c.Port, secret, c.CAFile),
		"bad url":        fmt.Sprintf("postgres://postgres:%s@127.0.0.1:%d/postgres?connect_timeout=abc", secret, c.Port),
	} {
		p, err := NewPostgres(PostgresConfig{URL: url})
		if err == nil {
			_, err = p.Events(ctx)
			if err == nil {
				_, _, err = p.Migrate(ctx)
			}
			p.Close()
		}
		if err == nil {
			t.Errorf("%s: no error", name)
			continue
		}
		if strings.Contains(err.Error(), secret) || strings.Contains(fmt.Sprintf("%+v", err), secret) {
			t.Errorf("%s: the password is in the error: %v", name, err)
		}
	}
}

// TestPostgresTLSVerifiedByDefault: without sslmode in the URL the server
// certificate is verified: an unknown CA is refused, the right ca_file works.
func TestPostgresTLSVerifiedByDefault(t *testing.T) {
	c := pgtest.Start(t)
	ctx := pgCtx(t)
	base := fmt.Sprintf("postgres://%s:%s@127.0.0.1:%d/postgres", pgtest.SuperUser, pgtest.SuperPassword, c.Port)
	p, err := NewPostgres(PostgresConfig{URL: base})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := p.Migrate(ctx); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Errorf("connect without the CA = %v, want a certificate error", err)
	}
	p.Close()
	p, err = NewPostgres(PostgresConfig{URL: base, CAFile: c.CAFile})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if _, _, err := p.Migrate(ctx); err != nil {
		t.Errorf("connect with ca_file: %v", err)
	}
	// A unix socket needs no TLS: the verify-full default must not break it.
	sock, err := NewPostgres(PostgresConfig{URL: c.SocketURL(pgtest.SuperUser, "postgres")})
	if err != nil {
		t.Fatal(err)
	}
	defer sock.Close()
	if _, err := sock.Events(ctx); err != nil {
		t.Errorf("read over the unix socket: %v", err)
	}
}

// TestPostgresAppendAcrossARestart: the server restarts (immediate mode,
// every session cut) between appends; the next Append reconnects and the
// chain continues, nothing lost or doubled; a lock taken after the restart
// works.
func TestPostgresAppendAcrossARestart(t *testing.T) {
	c := pgtest.Start(t)
	ctx := pgCtx(t)
	p, _ := pgState(t, c)
	if _, err := p.Append(ctx, testEvent("before", 1)); err != nil {
		t.Fatal(err)
	}
	c.Restart(t)
	got, err := p.Append(ctx, testEvent("after", 1))
	if err != nil {
		t.Fatalf("Append after a restart: %v", err)
	}
	assertOnce(t, ctx, p, got, 2)
	unlock, err := p.Lock(ctx, LockInfo{Operation: "apply"}, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	_ = unlock()
}

// TestPostgresClaimsSplitTargets: claims (one per target, for run
// replicas) are exclusive between sessions, independent of each other and
// of the state lock; a released claim, and every claim of a closed session,
// can be taken by another replica.
func TestPostgresClaimsSplitTargets(t *testing.T) {
	c := pgtest.Start(t)
	ctx := pgCtx(t)
	pa, url := pgState(t, c)
	pb, err := NewPostgres(PostgresConfig{URL: url})
	if err != nil {
		t.Fatal(err)
	}
	defer pb.Close()
	a, err := pa.NewClaims(ctx)
	if err != nil {
		t.Fatal(err)
	}
	b, err := pb.NewClaims(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	claim := func(cl *Claims, name string, want bool) {
		t.Helper()
		ok, err := cl.TryClaim(ctx, name)
		if err != nil || ok != want {
			t.Fatalf("TryClaim(%s) = %v, %v; want %v", name, ok, err, want)
		}
	}
	hosts := []string{"web01", "web02", "web03", "web04"}
	for i, h := range hosts {
		claim(a, h, true)
		claim(a, h, true) // already ours
		claim(b, h, false)
		if i == 3 {
			if err := a.Release(ctx, h); err != nil {
				t.Fatal(err)
			}
			claim(b, h, true)
		}
	}
	unlock, err := pb.Lock(ctx, LockInfo{Operation: "apply"}, time.Second)
	if err != nil {
		t.Fatalf("the state lock is not independent of the claims: %v", err)
	}
	_ = unlock()
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	// The server frees a closed session's locks as its backend exits,
	// a moment after the client hung up.
	closed := time.Now()
	for _, h := range hosts {
		for {
			ok, err := b.TryClaim(ctx, h)
			if err != nil {
				t.Fatal(err)
			}
			if ok {
				break
			}
			if time.Since(closed) > 5*time.Second {
				t.Fatalf("%s still claimed 5 s after its session closed", h)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
}

// TestPostgresSetupAsDocumented follows docs/state-postgres.md: an owner
// role that owns the database runs init, grants the runner role, and the
// runner works; and an owner that may not create schemas uses one the DBA
// made for it.
func TestPostgresSetupAsDocumented(t *testing.T) {
	c := pgtest.Start(t)
	ctx := pgCtx(t)
	c.Exec(t, "postgres", `CREATE ROLE jitform_owner LOGIN PASSWORD 'owner-Pw-1'`)
	c.Exec(t, "postgres", `CREATE ROLE jitform_runner LOGIN PASSWORD 'runner-Pw-7731'`)
	c.Exec(t, "postgres", `CREATE DATABASE jitform OWNER jitform_owner`)
	c.Exec(t, "postgres", `CREATE DATABASE premade`)
	c.Exec(t, "premade", `CREATE SCHEMA jitform AUTHORIZATION jitform_owner`)
	for _, db := range []string{"jitform", "premade"} {
		owner, err := NewPostgres(PostgresConfig{URL: c.URL("jitform_owner", "owner-Pw-1", db)})
		if err != nil {
			t.Fatal(err)
		}
		defer owner.Close()
		if _, _, err := owner.Migrate(ctx); err != nil {
			t.Fatalf("%s: init as the owner: %v", db, err)
		}
		pool, err := owner.getPool(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := pool.Exec(ctx, strings.Replace(runnerGrants, "CREATE ROLE jitform_runner LOGIN PASSWORD 'runner-Pw-7731';", "", 1)); err != nil {
			t.Fatalf("%s: the owner grants the runner: %v", db, err)
		}
		runner, err := NewPostgres(PostgresConfig{URL: c.URL("jitform_runner", "runner-Pw-7731", db)})
		if err != nil {
			t.Fatal(err)
		}
		defer runner.Close()
		if _, err := runner.Append(ctx, testEvent("runner", 1)); err != nil {
			t.Fatalf("%s: runner append: %v", db, err)
		}
		if _, _, err := runner.Migrate(ctx); err != nil {
			t.Fatalf("%s: init by the runner on an up-to-date schema should be a no-op: %v", db, err)
		}
		if events, err := runner.Events(ctx); err != nil || len(events) != 1 {
			t.Fatalf("%s: runner read: %d, %v", db, len(events), err)
		}
	}
}

// TestPostgresAppendToAStoppedServer fails after its retries without
// claiming to know more than it does, and without the password.
func TestPostgresAppendToAStoppedServer(t *testing.T) {
	c := pgtest.Start(t)
	ctx := pgCtx(t)
	p, _ := pgState(t, c)
	if _, err := p.Append(ctx, testEvent("before", 1)); err != nil {
		t.Fatal(err)
	}
	c.Stop()
	_, err := p.Append(ctx, testEvent("during", 1))
	if err == nil {
		t.Fatal("Append to a stopped server succeeded")
	}
	if !strings.Contains(err.Error(), "nothing was written") && !strings.Contains(err.Error(), "could not be found out") {
		t.Errorf("error %q says neither that nothing was written nor that the outcome is unknown", err)
	}
	if strings.Contains(err.Error(), pgtest.SuperPassword) {
		t.Errorf("the password is in the error: %v", err)
	}
	t.Log(err)
}

// TestPostgresClaimsSurviveARestart: a server restart cuts the claims
// session (and frees its claims); the next Share notices, reconnects,
// registers again and claims anew instead of trusting claims it lost.
func TestPostgresClaimsSurviveARestart(t *testing.T) {
	c := pgtest.Start(t)
	ctx := pgCtx(t)
	p, _ := pgState(t, c)
	cl, err := p.NewClaims(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	counter, err := p.NewClaims(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer counter.Close()
	if err := cl.Register(ctx, LockInfo{Operation: "run", Who: "r@h", PID: 1}); err != nil {
		t.Fatal(err)
	}
	targets := []string{"t1", "t2", "t3"}
	if got, err := cl.Share(ctx, targets); err != nil || len(got) != 3 {
		t.Fatalf("Share = %v, %v", got, err)
	}
	c.Restart(t)
	if redo, err := cl.NeedsReshare(ctx, counter); err != nil || !redo {
		t.Fatalf("NeedsReshare after the restart = %v, %v; want true (the claims died with the session)", redo, err)
	}
	got, err := cl.Share(ctx, targets)
	if err != nil || len(got) != 3 {
		t.Fatalf("Share after the restart = %v, %v", got, err)
	}
	// The claims are real again: another session cannot take them.
	other, err := p.NewClaims(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	if ok, err := other.TryClaim(ctx, "t1"); err != nil || ok {
		t.Fatalf("another session claimed t1 after the re-share: %v %v", ok, err)
	}
	if n, err := counter.Replicas(ctx); err != nil || n != 1 {
		t.Fatalf("replicas after the restart = %d, %v; want 1 (registered again)", n, err)
	}
}
