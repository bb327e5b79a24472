package operation

import (
	"context"
	"fmt"
	"time"

	"github.com/jitform/jitform/config"
	"github.com/jitform/jitform/state"
)

// targetLocker is a backend that can lock targets one by one (PostgreSQL):
// applies to different targets then run side by side, and only those on a
// shared target wait for each other.
type targetLocker interface {
	LockNames(ctx context.Context, names []string, info state.LockInfo, timeout time.Duration) (func() error, error)
}

// lockState takes what an operation on opts.Targets needs: a lock per
// target it reads or changes when the backend has them, else the state lock.
func lockState(ctx context.Context, opts Options, cfg *config.Config, operation string) (func() error, error) {
	tl, ok := opts.Backend.(targetLocker)
	if !ok {
		return opts.Backend.Lock(ctx, opts.lockInfo(operation), opts.LockTimeout)
	}
	keep, err := selectGroups(cfg, opts.Targets)
	if err != nil {
		return nil, err
	}
	var names []string
	for _, g := range cfg.Groups {
		if keep == nil || keep[g.Addr] {
			names = append(names, g.Target.Addr)
		}
	}
	for _, a := range cfg.Accounts {
		if keep == nil || keep[a.Addr] {
			names = append(names, a.Target.Addr)
		}
	}
	if len(names) == 0 {
		// Nothing to read or change; still exclude a concurrent apply of
		// the whole repository from reading half of it.
		names = []string{"state"}
	}
	unlock, err := tl.LockNames(ctx, names, opts.lockInfo(operation), opts.LockTimeout)
	if err != nil {
		return nil, fmt.Errorf("lock %d target(s): %w", len(names), err)
	}
	return unlock, nil
}
