package state

import (
	"context"
	"time"
)

// Backend stores the ledger and the lock. The local backend keeps them in
// .jitform/ beside the config; a shared backend (PostgreSQL) can implement the
// same interface without touching the planner.
type Backend interface {
	// Events reads the whole ledger in order, verifying the hash chain.
	// A broken chain is an error of type *ChainError naming the first bad event.
	Events(ctx context.Context) ([]Event, error)
	// Append writes events after the current head and makes them durable
	// (fsync) before returning. It fills Seq, Prev and Hash.
	Append(ctx context.Context, events ...Event) ([]Event, error)
	// Lock takes the state lock, waiting up to timeout. The returned
	// function releases it.
	Lock(ctx context.Context, info LockInfo, timeout time.Duration) (unlock func() error, err error)
}

// LockInfo says who holds the lock; a waiter that times out reports it.
type LockInfo struct {
	Operation string    `json:"operation"`
	Who       string    `json:"who"` // user@host
	PID       int       `json:"pid"`
	Since     time.Time `json:"since"`
}
