package state

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
)

// Watch calls notify whenever another writer appends to the ledger, until
// ctx is done: it LISTENs on the channel the insert trigger notifies, on
// a session of its own. Appends made through this Postgres value do not
// call notify (`jitform run` would otherwise wake itself after every
// apply). When the session fails, Watch reconnects with backoff, calls
// notify once (a change may have been missed meanwhile) and reports the
// failure to onError (may be nil). It returns ctx's error.
func (p *Postgres) Watch(ctx context.Context, notify func(), onError func(error)) error {
	p.mu.Lock()
	if p.ownSeqs == nil {
		p.ownSeqs = map[int64]bool{}
	}
	p.watching = true
	p.mu.Unlock()
	defer func() {
		p.mu.Lock()
		p.watching, p.ownSeqs = false, nil
		p.mu.Unlock()
	}()
	report := func(err error) {
		if onError != nil && ctx.Err() == nil {
			onError(p.redact(err))
		}
	}
	delay := 100 * time.Millisecond
	for first := true; ; first = false {
		err := p.listen(ctx, notify, !first, func() { delay = 100 * time.Millisecond })
		if ctx.Err() != nil {
			return ctx.Err()
		}
		report(fmt.Errorf("watch the PostgreSQL ledger for changes (will reconnect in %s): %w", delay, err))
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(delay):
		}
		delay = min(delay*2, 10*time.Second)
	}
}

// listen runs one LISTEN session until it fails. missed: notify once
// the session listens (an earlier session failed).
func (p *Postgres) listen(ctx context.Context, notify func(), missed bool, listening func()) error {
	if _, err := p.ensureReady(ctx); err != nil {
		return err
	}
	conn, err := pgx.ConnectConfig(ctx, p.poolCfg.ConnConfig.Copy())
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, "LISTEN "+pgx.Identifier{p.Channel()}.Sanitize()); err != nil {
		return err
	}
	listening()
	if missed {
		notify()
	}
	for {
		n, err := conn.WaitForNotification(ctx)
		if err != nil {
			return err
		}
		seq, perr := strconv.ParseInt(n.Payload, 10, 64)
		if perr == nil && p.ownAppend(seq) {
			continue
		}
		notify()
	}
}

// ownAppend reports (once) whether this value appended event seq.
func (p *Postgres) ownAppend(seq int64) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ownSeqs[seq] {
		delete(p.ownSeqs, seq)
		return true
	}
	return false
}

// recordOwn remembers (or, after a failed commit, forgets) the seqs this
// value appends, while Watch runs.
func (p *Postgres) recordOwn(events []Event, own bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.watching {
		return
	}
	for _, e := range events {
		if own {
			p.ownSeqs[e.Seq] = true
		} else {
			delete(p.ownSeqs, e.Seq)
		}
	}
	// A notification lost with a failed session never clears its seq:
	// keep the set bounded.
	if len(p.ownSeqs) > 100000 {
		p.ownSeqs = map[int64]bool{}
	}
}
