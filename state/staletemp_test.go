package state

import (
	"context"
	"os"
	"path/filepath"
	"testing"
)

// TestKilledHeadWriteLeavesNoTempForever kills a real process (SIGKILL)
// after it wrote a temporary head file and before it renamed it over
// ledger.head: the leftover is removed by the next read or the next
// append, under the ledger flock, and nothing is lost.
func TestKilledHeadWriteLeavesNoTempForever(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	for _, next := range []string{"Events", "Append"} {
		t.Run("cleaned by "+next, func(t *testing.T) {
			t.Parallel()
			dir, l := newLedger(t, 2)
			cmd := helperCmd(t, "crash", "JITFORM_DIR="+dir, "JITFORM_POINT=head-tmp")
			if err := cmd.Run(); err == nil {
				t.Fatal("the child was not killed")
			}
			pattern := filepath.Join(dir, StateDirName, staleTempPattern)
			if left, _ := filepath.Glob(pattern); len(left) != 1 {
				t.Fatalf("after a killed head write, %d temporary head file(s) %v; want 1 (the crash point is not where the test thinks)", len(left), left)
			}
			want := 4 // 2 + the killed append's 2 events, durable before the head
			switch next {
			case "Events":
				events, err := l.Events(ctx)
				if err != nil || len(events) != want {
					t.Fatalf("Events = %d, %v; want %d", len(events), err, want)
				}
			case "Append":
				out, err := l.Append(ctx, testEvent("after", 0))
				if err != nil || out[0].Seq != int64(want)+1 {
					t.Fatalf("Append = %+v, %v; want event %d", out, err, want+1)
				}
			}
			if left, _ := filepath.Glob(pattern); len(left) != 0 {
				t.Fatalf("temporary head files still there after %s: %v", next, left)
			}
			// Files that merely look alike are not jitform's to delete.
			other := filepath.Join(dir, StateDirName, "ledger.head.tmp-notes")
			if err := os.WriteFile(other, []byte("x"), 0o600); err != nil {
				t.Fatal(err)
			}
			if _, err := l.Events(ctx); err != nil {
				t.Fatal(err)
			}
			if _, err := os.Stat(other); err != nil {
				t.Fatalf("a file not matching %s was removed: %v", staleTempPattern, err)
			}
		})
	}
}
