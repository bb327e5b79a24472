package state

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestAGiveUpOnTheLockSaysWhatIsKnownOfItsHolder: a lock wait that times
// out names the holder whenever it recorded anything (its operation, who,
// or only its pid; what it left out shows as unknown), says since when if
// it recorded that, and says nothing of a holder that recorded nothing (it
// is between taking the lock and writing its name).
func TestAGiveUpOnTheLockSaysWhatIsKnownOfItsHolder(t *testing.T) {
	since := time.Date(2026, 11, 23, 9, 30, 0, 0, time.FixedZone("CET", 3600))
	const tail = "; gave up after waiting 1.5s. Wait for that run to finish, or retry with a longer --lock-timeout. " +
		"A holder that crashed releases the lock by itself (the kernel drops its flock), so there is no stale lock to delete"
	for _, tc := range []struct {
		name   string
		holder LockInfo
		want   string
	}{
		{"nothing recorded", LockInfo{}, "the state lock L is held" + tail},
		{"everything", LockInfo{Operation: "apply", Who: "carol@ci", PID: 42, Since: since}, "the state lock L is held by apply (carol@ci, pid 42) since 2026-11-23T08:30:00Z" + tail},
		{"only the operation", LockInfo{Operation: "run"}, "the state lock L is held by run (unknown, pid 0)" + tail},
		{"only who", LockInfo{Who: "dave@host"}, "the state lock L is held by unknown (dave@host, pid 0)" + tail},
		{"only the pid", LockInfo{PID: 7}, "the state lock L is held by unknown (unknown, pid 7)" + tail},
		{"only since", LockInfo{Since: since}, "the state lock L is held since 2026-11-23T08:30:00Z" + tail},
	} {
		err := &LockError{Path: "L", Holder: tc.holder, Waited: 1500*time.Millisecond + 300*time.Microsecond}
		if got := err.Error(); got != tc.want {
			t.Errorf("%s:\n got %s\nwant %s", tc.name, got, tc.want)
		}
	}
}

// TestTheHolderAfterACrashedOneIsNamed: a holder killed before releasing
// leaves its record in the lock file (the kernel drops only its flock);
// the next holder's record replaces it whole, so a waiter names the new
// holder, not a mix of the two or nobody.
func TestTheHolderAfterACrashedOneIsNamed(t *testing.T) {
	dir := t.TempDir()
	l, err := NewLocal(dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Init(context.Background()); err != nil {
		t.Fatal(err)
	}
	crashed, _ := json.Marshal(LockInfo{Operation: "apply", Who: "a-long-gone-runner@an-old-ci-host.example", PID: 987654, Since: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)})
	if err := os.WriteFile(filepath.Join(dir, StateDirName, LockFileName), append(crashed, '\n'), 0o600); err != nil {
		t.Fatal(err)
	}
	unlock, err := l.Lock(context.Background(), LockInfo{Operation: "run", Who: "b@h", PID: 2}, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer unlock()
	other, _ := NewLocal(dir)
	_, err = other.Lock(context.Background(), LockInfo{Operation: "plan"}, 50*time.Millisecond)
	var le *LockError
	if !errors.As(err, &le) || le.Holder.Who != "b@h" || le.Holder.PID != 2 || le.Holder.Operation != "run" {
		t.Fatalf("Lock while b@h holds it after a crashed holder = %v, want it to name b@h (run, pid 2)", err)
	}
}
