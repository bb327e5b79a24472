package state

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/jitform/jitform/internal/testbed/pgtest"
)

// pgChurn appends n rounds of add/remove changes with their outcomes
// (4 events a round) for members u0..u49, in batches.
func pgChurn(t testing.TB, b Backend, from, n int) {
	t.Helper()
	at := time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC)
	var batch []Event
	flush := func() {
		if len(batch) == 0 {
			return
		}
		if _, err := b.Append(context.Background(), batch...); err != nil {
			t.Fatal(err)
		}
		batch = batch[:0]
	}
	for i := from; i < from+n; i++ {
		for k, action := range []string{"add", "remove"} {
			id := fmt.Sprintf("c-%d-%d", i, k)
			c, _ := json.Marshal(Change{ID: id, PlanID: "p", Action: action, Group: "group.g", Target: "target.t", Member: fmt.Sprintf("uid=u%d", i%50), Reason: "grant"})
			o, _ := json.Marshal(ChangeOutcome{ID: id, Status: "done"})
			batch = append(batch,
				Event{Time: at, Type: EventChangeIntent, Actor: SystemActor, Payload: c},
				Event{Time: at, Type: EventChangeApplied, Actor: SystemActor, Payload: o})
		}
		if len(batch) >= 20_000 {
			flush()
		}
	}
	flush()
}

// wantPlan is what PlanEvents must return: CompactForReplay of the full
// verified read, and its head.
func wantPlan(t *testing.T, p *Postgres) ([]string, string) {
	t.Helper()
	events, err := p.Events(pgCtx(t))
	if err != nil {
		t.Fatalf("full read: %v", err)
	}
	return hashes(CompactForReplay(events)), Head(events)
}

func pgSnapshotCount(t *testing.T, p *Postgres) int {
	t.Helper()
	pool, err := p.getPool(pgCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	var n int
	if err := pool.QueryRow(pgCtx(t), "SELECT count(*) FROM jitform.snapshots").Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestPostgresPlanEventsMatchesFullRead: what a plan reads through the
// snapshot row is exactly CompactForReplay of the verified ledger, with its
// head, before and after events are appended after the snapshot, and the
// plan did not read the whole ledger to get it.
func TestPostgresPlanEventsMatchesFullRead(t *testing.T) {
	c := pgtest.Start(t)
	ctx := pgCtx(t)
	p, _ := pgState(t, c)

	// An empty ledger: nothing to plan from, no snapshot.
	if events, head, err := p.PlanEvents(ctx); err != nil || len(events) != 0 || head != "" {
		t.Fatalf("PlanEvents on an empty ledger = %d events, %q, %v", len(events), head, err)
	}
	pgChurn(t, p, 0, 100) // 400 events
	first, head1, err := p.PlanEvents(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if n := pgSnapshotCount(t, p); n != 1 {
		t.Fatalf("after the first plan's full read, %d snapshot rows, want 1", n)
	}
	want, wantHead := wantPlan(t, p)
	if !slices.Equal(hashes(CompactForReplay(first)), want) || head1 != wantHead {
		t.Fatalf("first plan: %d events head %s, want %d head %s", len(first), head1, len(want), wantHead)
	}

	for round, add := range []int{0, 25, 3} {
		pgChurn(t, p, 100+round*30, add)
		before := p.fullReads.Load()
		got, head, err := p.PlanEvents(ctx)
		if err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		if reads := p.fullReads.Load() - before; reads != 0 {
			t.Fatalf("round %d: the plan read the whole ledger %d times, want the snapshot and the tail only", round, reads)
		}
		want, wantHead := wantPlan(t, p)
		if !slices.Equal(hashes(CompactForReplay(got)), want) || head != wantHead {
			t.Fatalf("round %d: plan %d events head %s, full read %d head %s", round, len(got), head, len(want), wantHead)
		}
		if len(got) >= int(got[len(got)-1].Seq) {
			t.Fatalf("round %d: the plan kept all %d events: nothing was compacted, the test proves nothing", round, len(got))
		}
	}
}

// TestPostgresPlanRefusesAnEditBeforeTheCheckpoint: a superuser edits a
// row before (or at) the snapshot's event; PlanEvents itself refuses to
// plan and names that event, though it would not have read the row.
func TestPostgresPlanRefusesAnEditBeforeTheCheckpoint(t *testing.T) {
	for _, tc := range []struct {
		name string
		sql  string
		seq  int64
	}{
		{"an edited payload in the middle", `UPDATE jitform.ledger SET line = replace(line, '"status":"done"', '"status":"dune"') WHERE seq = 6`, 6},
		{"an edited actor of the first event", `UPDATE jitform.ledger SET line = replace(line, '"actor":"jitform"', '"actor":"mallory"') WHERE seq = 1`, 1},
		{"an edited checkpoint event", `UPDATE jitform.ledger SET line = replace(line, '"status":"done"', '"status":"dune"') WHERE seq = 200`, 200},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := pgtest.Start(t)
			ctx := pgCtx(t)
			p, _ := pgState(t, c)
			pgChurn(t, p, 0, 50) // 200 events: the snapshot is at 200
			if _, _, err := p.PlanEvents(ctx); err != nil {
				t.Fatal(err)
			}
			pgChurn(t, p, 50, 5)
			if _, _, err := p.PlanEvents(ctx); err != nil {
				t.Fatalf("plan before the edit: %v", err)
			}
			db := p.poolCfg.ConnConfig.Database
			pool, _ := p.getPool(ctx)
			before, err := p.ledgerState(ctx, pool)
			if err != nil {
				t.Fatal(err)
			}
			c.Exec(t, db, `ALTER TABLE jitform.ledger DISABLE TRIGGER USER;`+tc.sql+`;ALTER TABLE jitform.ledger ENABLE TRIGGER USER`)
			// The editing session has ended; its statistics reach the
			// server as it exits (documented: a plan may not see an edit
			// made in the last seconds by a session still open).
			for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
				if now, err := p.ledgerState(ctx, pool); err == nil && now != before {
					break
				}
				if time.Now().After(deadline) {
					t.Fatal("the server's statistics never counted the edit")
				}
			}
			_, _, err = p.PlanEvents(ctx)
			var ce *ChainError
			if !errors.As(err, &ce) || ce.Seq != tc.seq {
				t.Fatalf("PlanEvents after %s = %v, want a ChainError at %d", tc.name, err, tc.seq)
			}
		})
	}
}

// TestPostgresPlanFallsBackFromABadSnapshot: a snapshot row that is
// missing, garbled or does not match the ledger is never used and never
// an error by itself: the plan reads the whole ledger and gets the same.
func TestPostgresPlanFallsBackFromABadSnapshot(t *testing.T) {
	for _, tc := range []struct {
		name string
		sql  string
	}{
		{"no snapshot", `DELETE FROM jitform.snapshots`},
		{"a garbled kept line", `UPDATE jitform.snapshots SET events = overlay(events placing 'X' from 40 for 1)`},
		{"kept lines cut", `UPDATE jitform.snapshots SET events = left(events, length(events) - 5)`},
		{"a wrong checkpoint hash", `UPDATE jitform.snapshots SET hash = repeat('0', 64)`},
		{"a ledger edited since (another ledger_state)", `UPDATE jitform.snapshots SET ledger_state = ledger_state || '0'`},
		{"a checkpoint past the head", `UPDATE jitform.snapshots SET seq = 100000`},
		{"another format", `UPDATE jitform.snapshots SET format = 99`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := pgtest.Start(t)
			ctx := pgCtx(t)
			p, _ := pgState(t, c)
			pgChurn(t, p, 0, 60)
			if _, _, err := p.PlanEvents(ctx); err != nil {
				t.Fatal(err)
			}
			pgChurn(t, p, 60, 4)
			db := p.poolCfg.ConnConfig.Database
			c.Exec(t, db, tc.sql)
			before := p.fullReads.Load()
			got, head, err := p.PlanEvents(ctx)
			if err != nil {
				t.Fatalf("PlanEvents with %s = %v, want a fallback to the full read", tc.name, err)
			}
			if p.fullReads.Load() == before {
				t.Fatalf("PlanEvents used a snapshot with %s", tc.name)
			}
			want, wantHead := wantPlan(t, p)
			if !slices.Equal(hashes(CompactForReplay(got)), want) || head != wantHead {
				t.Fatalf("fallback plan: %d events head %s, want %d head %s", len(got), head, len(want), wantHead)
			}
		})
	}
}

// TestPostgresFullReadRefusesAForgedSnapshot: a snapshot row a plan would
// use (its kept lines are each genuine ledger rows, its checkpoint is in
// the ledger) but that leaves a kept event out (a managed member dropped)
// or has another prefix digest: `ledger verify` (Events) proves it
// against the ledger and names it.
func TestPostgresFullReadRefusesAForgedSnapshot(t *testing.T) {
	for _, tc := range []struct{ name, sql string }{
		{"a kept event left out", `UPDATE jitform.snapshots SET events = substr(events, strpos(events, E'\n') + 1)`},
		{"another prefix digest", `UPDATE jitform.snapshots SET prefix_sha256 = repeat('0', 64)`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := pgtest.Start(t)
			ctx := pgCtx(t)
			p, _ := pgState(t, c)
			pgChurn(t, p, 0, 60)
			if _, err := p.Events(ctx); err != nil {
				t.Fatal(err)
			}
			db := p.poolCfg.ConnConfig.Database
			c.Exec(t, db, tc.sql)
			_, err := p.Events(ctx)
			var ce *ChainError
			if !errors.As(err, &ce) || ce.Seq != 240 {
				t.Fatalf("Events with %s = %v, want a ChainError at the snapshot's event 240", tc.name, err)
			}
		})
	}
}

// TestPostgresRunnerRoleSnapshotsAreInsertOnly: the documented runner role
// writes the plan snapshot, and can neither UPDATE, DELETE nor TRUNCATE it.
func TestPostgresRunnerRoleSnapshotsAreInsertOnly(t *testing.T) {
	c := pgtest.Start(t)
	ctx := pgCtx(t)
	p, _ := pgState(t, c)
	db := p.poolCfg.ConnConfig.Database
	c.Exec(t, db, runnerGrants)
	runner, err := NewPostgres(PostgresConfig{URL: c.URL("jitform_runner", "runner-Pw-7731", db)})
	if err != nil {
		t.Fatal(err)
	}
	defer runner.Close()
	pgChurn(t, runner, 0, 10)
	if _, _, err := runner.PlanEvents(ctx); err != nil {
		t.Fatalf("runner plan: %v", err)
	}
	if n := pgSnapshotCount(t, p); n != 1 {
		t.Fatalf("the runner's plan wrote %d snapshot rows, want 1", n)
	}
	conn, err := pgx.Connect(ctx, c.URL("jitform_runner", "runner-Pw-7731", db))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	for _, sql := range []string{
		`UPDATE jitform.snapshots SET events = ''`,
		`DELETE FROM jitform.snapshots`,
		`TRUNCATE jitform.snapshots`,
		`ALTER TABLE jitform.snapshots DISABLE TRIGGER snapshots_append_only`,
	} {
		_, err := conn.Exec(ctx, sql)
		var pgErr *pgconn.PgError
		if !errors.As(err, &pgErr) || (pgErr.Code != "42501" && pgErr.Code != "42P01") {
			t.Errorf("runner %q = %v, want it refused (insufficient privilege)", sql, err)
		}
	}
	if n := pgSnapshotCount(t, p); n != 1 {
		t.Fatalf("%d snapshot rows after the runner's attempts, want 1", n)
	}
}

// BenchmarkPostgresPlanRead: plan reads (PlanEvents: the snapshot row, the
// server's prefix digest, the tail; here no tail) against the full read
// (Events, as `ledger verify`) on ledgers of n events of churn, on a real
// PostgreSQL. JITFORM_PG_BENCH_EVENTS (comma-separated) sets the sizes.
func BenchmarkPostgresPlanRead(b *testing.B) {
	sizes := []int{10_000, 200_000}
	if env := os.Getenv("JITFORM_PG_BENCH_EVENTS"); env != "" {
		sizes = nil
		for _, f := range strings.Split(env, ",") {
			n, err := strconv.Atoi(f)
			if err != nil {
				b.Fatal(err)
			}
			sizes = append(sizes, n)
		}
	}
	c := pgtest.Start(b)
	for _, n := range sizes {
		db := c.NewDatabase(b)
		p, err := NewPostgres(PostgresConfig{URL: c.SuperURL(db)})
		if err != nil {
			b.Fatal(err)
		}
		defer p.Close()
		ctx := context.Background()
		if _, _, err := p.Migrate(ctx); err != nil {
			b.Fatal(err)
		}
		start := time.Now()
		pgChurn(b, p, 0, n/4)
		b.Logf("%d events appended in %v", n, time.Since(start))
		if _, err := p.Events(ctx); err != nil { // writes the snapshot
			b.Fatal(err)
		}
		pool, _ := p.getPool(ctx)
		if _, err := pool.Exec(ctx, "VACUUM ANALYZE jitform.ledger"); err != nil {
			b.Fatal(err)
		}
		b.Run(fmt.Sprintf("events=%d/plan", n), func(b *testing.B) {
			for range b.N {
				before := p.fullReads.Load()
				if _, _, err := p.PlanEvents(ctx); err != nil || p.fullReads.Load() != before {
					b.Fatalf("plan: %v (full read: %v)", err, p.fullReads.Load() != before)
				}
			}
		})
		b.Run(fmt.Sprintf("events=%d/full", n), func(b *testing.B) {
			for range b.N {
				if events, err := p.Events(ctx); err != nil || len(events) != n {
					b.Fatalf("%d events, %v", len(events), err)
				}
			}
		})
	}
}

// A runner role granted before schema version 4 (no access to the
// snapshots table) still plans: snapshots only save work, and without
// them the plan reads and verifies the whole ledger.
func TestPostgresRunnerWithoutSnapshotAccessPlansByTheFullRead(t *testing.T) {
	c := pgtest.Start(t)
	ctx := pgCtx(t)
	p, _ := pgState(t, c)
	db := p.poolCfg.ConnConfig.Database
	c.Exec(t, db, strings.Replace(runnerGrants, "GRANT SELECT, INSERT ON jitform.snapshots TO jitform_runner;", "", 1))
	runner, err := NewPostgres(PostgresConfig{URL: c.URL("jitform_runner", "runner-Pw-7731", db)})
	if err != nil {
		t.Fatal(err)
	}
	defer runner.Close()
	pgChurn(t, runner, 0, 10)
	got, head, err := runner.PlanEvents(ctx)
	if err != nil {
		t.Fatalf("runner plan without snapshot access: %v", err)
	}
	all, err := p.Events(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if head != Head(all) || len(got) != len(CompactForReplay(all)) {
		t.Fatalf("runner plan read %d events (head %s), want the compaction of the full ledger (%d, head %s)", len(got), head, len(CompactForReplay(all)), Head(all))
	}
}
