package operation

import (
	"context"
	"time"

	"github.com/jitform/jitform/state"
)

// ReplicaClaims makes `jitform run` on a PostgreSQL state one of possibly
// several replicas: each cycle it acts only on its share of the targets of
// the repository in dir (ceil(targets / live replicas)), claimed with one
// advisory lock per target on a session of its own. A replica that dies
// loses its claims with its session; the others take its targets on their
// next cycle. info is the replica record (who, pid) the others count.
//
// Every watchEvery it checks whether the split must be redone (a replica
// died or joined, or a target is claimed by no one while this replica is
// below its share) and then calls wake, so targets are taken over in
// seconds rather than at the next window boundary or drift interval.
// closeFn ends both sessions, which frees every claim.
func ReplicaClaims(ctx context.Context, pg *state.Postgres, dir string, info state.LockInfo, watchEvery time.Duration, wake func()) (claim func(context.Context) ([]string, error), closeFn func(), err error) {
	claims, err := pg.NewClaims(ctx)
	if err != nil {
		return nil, nil, err
	}
	if err := claims.Register(ctx, info); err != nil {
		claims.Close()
		return nil, nil, err
	}
	claim = func(ctx context.Context) ([]string, error) {
		cfg, _, err := LoadConfig(dir, time.Now().UTC())
		if err != nil {
			return nil, err
		}
		var targets []string
		for _, t := range cfg.Targets {
			targets = append(targets, t.Addr)
		}
		return claims.Share(ctx, targets)
	}
	// A separate session counts, so the count never waits behind a claim.
	counter, err := pg.NewClaims(ctx)
	if err != nil {
		claims.Close()
		return nil, nil, err
	}
	wctx, stop := context.WithCancel(ctx)
	go func() {
		t := time.NewTicker(watchEvery)
		defer t.Stop()
		for {
			select {
			case <-wctx.Done():
				return
			case <-t.C:
			}
			if redo, err := claims.NeedsReshare(wctx, counter); err == nil && redo {
				wake()
			}
		}
	}()
	return claim, func() { stop(); counter.Close(); claims.Close() }, nil
}
