package state

import (
	"context"
	"fmt"
	"sync"

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
