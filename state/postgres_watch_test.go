package state

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jitform/jitform/internal/testbed/pgtest"
)

// TestPostgresWatch: another writer's append wakes the watcher within a
// second; the watcher's own appends do not; after its session is
// terminated it reconnects, wakes once (a change may have been missed) and
// keeps waking on appends.
func TestPostgresWatch(t *testing.T) {
	c := pgtest.Start(t)
	ctx := pgCtx(t)
	p, url := pgState(t, c)
	other, err := NewPostgres(PostgresConfig{URL: url})
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()

	wake := make(chan struct{}, 16)
	var errs atomic.Int32
	wctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		done <- p.Watch(wctx, func() { wake <- struct{}{} }, func(error) { errs.Add(1) })
	}()
	defer func() {
		stop()
		if err := <-done; err != context.Canceled {
			t.Errorf("Watch returned %v after cancel, want context.Canceled", err)
		}
	}()
	waitListening(t, ctx, c, p)

	expectWake := func(why string) time.Duration {
		t.Helper()
		start := time.Now()
		select {
		case <-wake:
			return time.Since(start)
		case <-time.After(2 * time.Second):
			t.Fatalf("no wake within 2 s after %s", why)
		}
		return 0
	}
	expectQuiet := func(why string) {
		t.Helper()
		select {
		case <-wake:
			t.Fatalf("woken after %s", why)
		case <-time.After(300 * time.Millisecond):
		}
	}

	expectQuiet("nothing happened")
	start := time.Now()
	if _, err := other.Append(ctx, testEvent("approver", 1)); err != nil {
		t.Fatal(err)
	}
	expectWake("another writer's append")
	t.Logf("woken %s after another writer's Append began", time.Since(start).Round(time.Millisecond))
	expectQuiet("one append (one wake per batch at most)")

	if _, err := p.Append(ctx, testEvent("self", 1), testEvent("self", 2)); err != nil {
		t.Fatal(err)
	}
	expectQuiet("the watcher's own append")

	db := p.poolCfg.ConnConfig.Database
	c.Exec(t, db, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE query LIKE 'LISTEN%'")
	expectWake("the listening session was terminated (reconnect)")
	if errs.Load() == 0 {
		t.Error("the lost session was not reported")
	}
	waitListening(t, ctx, c, p)
	if _, err := other.Append(ctx, testEvent("approver", 2)); err != nil {
		t.Fatal(err)
	}
	expectWake("an append after the reconnect")
}

// waitListening waits until a session LISTENs on p's channel.
func waitListening(t *testing.T, ctx context.Context, c *pgtest.Cluster, p *Postgres) {
	t.Helper()
	pool, err := p.getPool(ctx)
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		var n int
		if err := pool.QueryRow(ctx, "SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'LISTEN%' AND state = 'idle'").Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n > 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("the watcher never listened")
		}
		time.Sleep(20 * time.Millisecond)
	}
}
