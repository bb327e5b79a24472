package state

import (
	"context"
	"fmt"
	"os"
	"time"
)

// PullToLocal exports the PostgreSQL ledger to the local state of the
// config directory dir (.jitform/ledger.jsonl and ledger.head), byte for
// byte as stored, for audits and offline plans (`jitform state pull`). The
// rows are verified first. A local ledger that is not a prefix of the
// PostgreSQL one (a different history) is refused, never overwritten. It
// returns the number of events written.
func PullToLocal(ctx context.Context, p *Postgres, dir string, lockTimeout time.Duration) (int, error) {
	data, err := p.Lines(ctx)
	if err != nil {
		return 0, err
	}
	events, err := parseLedger(data, nil)
	if err != nil {
		return 0, fmt.Errorf("the PostgreSQL ledger fails verification, nothing was written: %w", err)
	}
	local, err := NewLocal(dir)
	if err != nil {
		return 0, err
	}
	unlock, err := local.Lock(ctx, LockInfo{Operation: "state pull", Who: whoAmI(), PID: os.Getpid()}, lockTimeout)
	if err != nil {
		return 0, err
	}
	defer unlock()
	have, err := local.Events(ctx)
	if err != nil {
		return 0, fmt.Errorf("the local ledger in %s cannot be read, nothing was written (move it away to pull): %w", local.Dir(), err)
	}
	if len(have) > len(events) {
		return 0, fmt.Errorf("the local ledger in %s holds %d event(s), more than PostgreSQL's %d: it is a different history; nothing was written (move it away to pull)", local.Dir(), len(have), len(events))
	}
	for i, e := range have {
		if e.Hash != events[i].Hash {
			return 0, fmt.Errorf("the local ledger in %s differs from PostgreSQL's at event %d: it is a different history; nothing was written (move it away to pull)", local.Dir(), e.Seq)
		}
	}
	if err := local.ensureDir(); err != nil {
		return 0, err
	}
	if err := writeFileAtomic(local.ledgerPath(), data, 0o600, nil); err != nil {
		return 0, fmt.Errorf("write %s: %w", local.ledgerPath(), err)
	}
	if err := local.writeHead(headRecord{Seq: int64(len(events)), Hash: Head(events)}); err != nil {
		return 0, fmt.Errorf("write %s: %w", local.headPath(), err)
	}
	return len(events), nil
}

// whoAmI is user@host for lock records.
func whoAmI() string {
	u := os.Getenv("USER")
	if u == "" {
		u = "unknown"
	}
	h, _ := os.Hostname()
	return u + "@" + h
}
