package state

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"
)

// LockError is a lock wait that timed out: Holder says who holds the lock,
// as the holder recorded it (zero if it could not be read).
type LockError struct {
	Path   string
	Holder LockInfo
	Waited time.Duration
}

func (e *LockError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "the state lock %s is held", e.Path)
	h := e.Holder
	if h.Operation != "" || h.Who != "" || h.PID != 0 {
		fmt.Fprintf(&b, " by %s (%s, pid %d)", orUnknown(h.Operation), orUnknown(h.Who), h.PID)
	}
	if !h.Since.IsZero() {
		fmt.Fprintf(&b, " since %s", h.Since.UTC().Format(time.RFC3339))
	}
	fmt.Fprintf(&b, "; gave up after waiting %s. Wait for that run to finish, or retry with a longer --lock-timeout. "+
		"A holder that crashed releases the lock by itself (the kernel drops its flock), so there is no stale lock to delete", e.Waited.Round(time.Millisecond))
	return b.String()
}

func orUnknown(s string) string {
	if s == "" {
		return "unknown"
	}
	return s
}

// Lock takes .jitform/lock with flock(LOCK_EX|LOCK_NB), polling until it
// is free, timeout passes or ctx is done. The holder writes info into the
// file so that a waiter can say who holds it. The kernel releases a flock
// when its process dies, so a crashed holder never wedges the lock.
func (l *Local) Lock(ctx context.Context, info LockInfo, timeout time.Duration) (func() error, error) {
	if err := l.ensureDir(); err != nil {
		return nil, err
	}
	path := l.lockPath()
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open state lock: %w", err)
	}
	start := time.Now()
	wctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	ok, err := tryLock(f, true)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("take state lock %s: %w", path, err)
	}
	if !ok {
		if err := flockWait(wctx, f, true); err != nil {
			holder := readLockInfo(f)
			f.Close()
			if ctx.Err() != nil {
				return nil, fmt.Errorf("take state lock %s: %w", path, ctx.Err())
			}
			if errors.Is(err, context.DeadlineExceeded) {
				return nil, &LockError{Path: path, Holder: holder, Waited: time.Since(start)}
			}
			return nil, fmt.Errorf("take state lock %s: %w", path, err)
		}
	}
	if info.Since.IsZero() {
		info.Since = time.Now().UTC()
	}
	b, err := json.Marshal(info)
	if err == nil {
		err = f.Truncate(0)
	}
	if err == nil {
		_, err = f.WriteAt(append(b, '\n'), 0)
	}
	if err != nil {
		unlockFile(f)
		f.Close()
		return nil, fmt.Errorf("record state lock holder in %s: %w", path, err)
	}
	released := false
	return func() error {
		if released {
			return nil
		}
		released = true
		// Clear the holder first: a reader who sees the file unlocked
		// must not see a stale name in it.
		terr := f.Truncate(0)
		uerr := unlockFile(f)
		cerr := f.Close()
		if err := errors.Join(terr, uerr, cerr); err != nil {
			return fmt.Errorf("release state lock %s: %w", path, err)
		}
		return nil
	}, nil
}

// readLockInfo reads what the holder recorded; zero if unreadable (the
// holder may be between taking the lock and writing it).
func readLockInfo(f *os.File) LockInfo {
	var info LockInfo
	b, err := io.ReadAll(io.NewSectionReader(f, 0, 4096))
	if err == nil {
		_ = json.Unmarshal(b, &info)
	}
	return info
}
