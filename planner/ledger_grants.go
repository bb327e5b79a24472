package planner

import (
	"time"

	"github.com/jitform/jitform/config"
	"github.com/jitform/jitform/state"
)

// ledgerGrants derives the grants requested and decided in the ledger,
// counting only approvals whose signatures verify against a declared
// approver's key. (The grant workflow fills this in; until then the ledger
// holds no grants.)
func ledgerGrants(cfg *config.Config, events []state.Event, now time.Time) ([]Grant, []Warning) {
	return nil, nil
}
