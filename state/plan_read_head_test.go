package state

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestPlanReadHeadRules: the plan's read (PlanEvents) holds the head to the
// same rules as a full read: a ledger with events and no head is refused,
// with or without a snapshot to read from, and an empty ledger file
// without a head is an empty ledger.
func TestPlanReadHeadRules(t *testing.T) {
	ctx := context.Background()
	for _, snapshot := range []bool{false, true} {
		dir, l := newLedger(t, 5)
		if snapshot {
			if _, err := l.Events(ctx); err != nil { // writes the snapshot
				t.Fatal(err)
			}
		}
		if err := os.Remove(filepath.Join(dir, StateDirName, HeadFileName)); err != nil {
			t.Fatal(err)
		}
		_, _, err := l.PlanEvents(ctx)
		var ce *ChainError
		if !errors.As(err, &ce) || !strings.Contains(ce.Reason, "ledger.head is missing") {
			t.Errorf("snapshot %v: PlanEvents with the head deleted = %v, want the missing head named", snapshot, err)
		}
	}

	dir := t.TempDir()
	l, err := NewLocal(dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(dir, StateDirName), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, StateDirName, LedgerFileName), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	events, head, err := l.PlanEvents(ctx)
	if err != nil || len(events) != 0 || head != "" {
		t.Errorf("PlanEvents on an empty ledger file without a head = %d events, head %q, %v; want an empty ledger", len(events), head, err)
	}
}
