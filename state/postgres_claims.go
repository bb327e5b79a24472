package state

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
)

// Claims is one session's claims on named work (a target per name), for
// `jitform run` replicas that split a fleet between them: each claim is a
// session-level advisory lock on the Claims' own connection, so a replica
// that dies (kill -9, lost network) loses all its claims with its session
// and another replica can take them on its next cycle.
type Claims struct {
	p    *Postgres
	mu   sync.Mutex
	conn *pgx.Conn
	held map[string]bool
	// What the last Share worked from: the live replicas and the targets.
	sharedFor int
	targets   []string
	// registered is the replica record, written again on a new session.
	registered *LockInfo
}

// NewClaims opens a session for claims.
func (p *Postgres) NewClaims(ctx context.Context) (*Claims, error) {
	if _, err := p.ensureReady(ctx); err != nil {
		return nil, err
	}
	conn, err := pgx.ConnectConfig(ctx, p.poolCfg.ConnConfig.Copy())
	if err != nil {
		return nil, p.redact(fmt.Errorf("open a claims session on the PostgreSQL state: %w", err))
	}
	return &Claims{p: p, conn: conn, held: map[string]bool{}}, nil
}

// TryClaim claims name if no other session holds it; true when this
// session holds it (now or already).
func (c *Claims) TryClaim(ctx context.Context, name string) (bool, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.held[name] {
		return true, nil
	}
	var ok bool
	if err := c.conn.QueryRow(ctx, "SELECT pg_try_advisory_lock($1)", c.p.lockKey("claim\x00"+name)).Scan(&ok); err != nil {
		return false, c.p.redact(fmt.Errorf("claim %s: %w", name, err))
	}
	if ok {
		c.held[name] = true
	}
	return ok, nil
}

// Release gives up a claim.
func (c *Claims) Release(ctx context.Context, name string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.held[name] {
		return nil
	}
	if _, err := c.conn.Exec(ctx, "SELECT pg_advisory_unlock($1)", c.p.lockKey("claim\x00"+name)); err != nil {
		return c.p.redact(fmt.Errorf("release claim %s: %w", name, err))
	}
	delete(c.held, name)
	return nil
}

// Close ends the session, which frees every claim.
func (c *Claims) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.held = map[string]bool{}
	return c.conn.Close(context.Background())
}

// replicaNames marks a claims session's row in SCHEMA.locks: the live
// replicas are the sessions with such a row.
const replicaNames = "jitform run replica"

// Register records this session as a run replica (who, pid), so the
// replicas can count each other and split the targets evenly.
func (c *Claims) Register(ctx context.Context, info LockInfo) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if info.Since.IsZero() {
		info.Since = time.Now().UTC()
	}
	c.registered = &info
	return c.register(ctx)
}

func (c *Claims) register(ctx context.Context) error {
	info := c.registered
	if info == nil {
		return nil
	}
	_, err := c.conn.Exec(ctx, "INSERT INTO "+c.p.ident("locks")+` (backend_pid, names, operation, who, pid, since)
		VALUES (pg_backend_pid(), $1, $2, $3, $4, $5)
		ON CONFLICT (backend_pid) DO UPDATE SET names = EXCLUDED.names, operation = EXCLUDED.operation,
			who = EXCLUDED.who, pid = EXCLUDED.pid, since = EXCLUDED.since`,
		replicaNames, info.Operation, info.Who, info.PID, info.Since)
	if err != nil {
		return c.p.redact(fmt.Errorf("register as a run replica: %w", err))
	}
	return nil
}

// revive checks the session (c.mu held). A session that died took every
// claim with it: forget them, open a new one and register again.
func (c *Claims) revive(ctx context.Context) error {
	if !c.conn.IsClosed() {
		if err := c.conn.Ping(ctx); err == nil {
			return nil
		}
	}
	c.conn.Close(context.Background())
	c.held = map[string]bool{}
	conn, err := pgx.ConnectConfig(ctx, c.p.poolCfg.ConnConfig.Copy())
	if err != nil {
		return c.p.redact(fmt.Errorf("reopen the claims session on the PostgreSQL state: %w", err))
	}
	c.conn = conn
	return c.register(ctx)
}

// Replicas counts the live registered replicas (sessions still open).
func (c *Claims) Replicas(ctx context.Context) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	var n int
	err := c.conn.QueryRow(ctx, "SELECT count(*) FROM "+c.p.ident("locks")+` l
		WHERE l.names = $1 AND l.backend_pid IN (SELECT a.pid FROM pg_catalog.pg_stat_activity a)`, replicaNames).Scan(&n)
	if err != nil {
		return 0, c.p.redact(fmt.Errorf("count run replicas: %w", err))
	}
	return n, nil
}

// Held lists the names this session holds, sorted.
func (c *Claims) Held() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]string, 0, len(c.held))
	for n := range c.held {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// Share claims this replica's share of targets: ceil(len(targets) /
// replicas). It gives back claims beyond the share (so a replica that
// joins gets work on its next cycle) and claims free targets up to it
// (so the targets of a replica that died are taken over). It returns
// the targets held, sorted.
func (c *Claims) Share(ctx context.Context, targets []string) ([]string, error) {
	c.mu.Lock()
	err := c.revive(ctx)
	c.mu.Unlock()
	if err != nil {
		return nil, err
	}
	n, err := c.Replicas(ctx)
	if err != nil {
		return nil, err
	}
	n = max(n, 1)
	share := ShareOf(len(targets), n)
	c.mu.Lock()
	c.sharedFor, c.targets = n, append([]string(nil), targets...)
	c.mu.Unlock()
	want := map[string]bool{}
	for _, t := range targets {
		want[t] = true
	}
	held := c.Held()
	kept := 0
	for _, h := range held {
		if !want[h] || kept >= share {
			if err := c.Release(ctx, h); err != nil {
				return nil, err
			}
			continue
		}
		kept++
	}
	for _, t := range targets {
		if kept >= share {
			break
		}
		c.mu.Lock()
		mine := c.held[t]
		c.mu.Unlock()
		if mine {
			continue
		}
		ok, err := c.TryClaim(ctx, t)
		if err != nil {
			return nil, err
		}
		if ok {
			kept++
		}
	}
	return c.Held(), nil
}

// ShareOf is how many of n targets one of r replicas takes: ceil(n/r).
func ShareOf(n, r int) int { return (n + max(r, 1) - 1) / max(r, 1) }

// NeedsReshare reports whether the split should be redone now: the number
// of live replicas (counted on counter, another session) differs from the
// one the last Share used, or this replica holds less than its share while
// some target is claimed by no one (its replica died).
func (c *Claims) NeedsReshare(ctx context.Context, counter *Claims) (bool, error) {
	counter.mu.Lock()
	err := counter.revive(ctx)
	counter.mu.Unlock()
	if err != nil {
		return false, err
	}
	c.mu.Lock()
	dead := c.conn.IsClosed() || c.conn.Ping(ctx) != nil
	c.mu.Unlock()
	if dead {
		return true, nil // its claims are gone: claim again now
	}
	n, err := counter.Replicas(ctx)
	if err != nil {
		return false, err
	}
	c.mu.Lock()
	sharedFor, targets, held := c.sharedFor, c.targets, len(c.held)
	c.mu.Unlock()
	if sharedFor == 0 {
		return false, nil // no Share yet: the first cycle does it
	}
	if n != sharedFor {
		return true, nil
	}
	if held >= ShareOf(len(targets), n) {
		return false, nil
	}
	keys := make([]int64, len(targets))
	for i, t := range targets {
		keys[i] = c.p.lockKey("claim\x00" + t)
	}
	var claimed int
	counter.mu.Lock()
	defer counter.mu.Unlock()
	err = counter.conn.QueryRow(ctx, `SELECT count(*) FROM pg_catalog.pg_locks k
		WHERE k.locktype = 'advisory' AND k.granted AND k.objsubid = 1
		  AND k.database = (SELECT d.oid FROM pg_catalog.pg_database d WHERE d.datname = current_database())
		  AND ((k.classid::bigint << 32) | k.objid::bigint) = ANY ($1::bigint[])`, keys).Scan(&claimed)
	if err != nil {
		return false, c.p.redact(fmt.Errorf("count claimed targets: %w", err))
	}
	return claimed < len(targets), nil
}
