package state

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestCheckpointCatchesWhatTheHeadCannot: a checkpoint taken earlier is
// found in a ledger that only grew, and refused when the end was cut with
// ledger.head edited to match (which Events accepts), when the whole chain
// was rewritten with recomputed hashes, and when .jitform/ was deleted.
func TestCheckpointCatchesWhatTheHeadCannot(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	for _, tc := range []struct {
		name   string
		damage func(t *testing.T, dir string, l *Local)
		want   string // "" = the checkpoint holds
		bare   string // what a bare hash checkpoint says
	}{
		{"ledger only grew", func(t *testing.T, dir string, l *Local) {
			if _, err := l.Append(ctx, testEvent("later", 1)); err != nil {
				t.Fatal(err)
			}
		}, "", ""},
		{"end cut and head edited to match", func(t *testing.T, dir string, l *Local) {
			lines := ledgerLines(t, dir)
			writeLedger(t, dir, lines[:3])
			evs, err := parseLedger(joinLines(lines[:3]), nil)
			if err != nil {
				t.Fatal(err)
			}
			if err := l.writeHead(headRecord{Seq: 3, Hash: evs[2].Hash}); err != nil {
				t.Fatal(err)
			}
		}, "the ledger ends at event 3 but held event 5", "no event of the 3 has that hash"},
		{"chain rewritten with recomputed hashes", func(t *testing.T, dir string, l *Local) {
			if err := os.RemoveAll(filepath.Join(dir, StateDirName)); err != nil {
				t.Fatal(err)
			}
			for i := range 5 {
				if _, err := l.Append(ctx, testEvent("forger", i)); err != nil {
					t.Fatal(err)
				}
			}
		}, "event 5 has hash", "no event of the 5 has that hash"},
		{".jitform deleted", func(t *testing.T, dir string, l *Local) {
			if err := os.RemoveAll(filepath.Join(dir, StateDirName)); err != nil {
				t.Fatal(err)
			}
		}, "the ledger is empty but held event 5", "the ledger is empty: it was deleted or replaced"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir, l := newLedger(t, 5)
			events, err := l.Events(ctx)
			if err != nil {
				t.Fatal(err)
			}
			cp, ok := CheckpointOf(events)
			if !ok || cp.Seq != 5 || cp.Hash != events[4].Hash {
				t.Fatalf("CheckpointOf = %+v, %v; want event 5", cp, ok)
			}
			parsed, err := ParseCheckpoint(cp.String())
			if err != nil || parsed != cp {
				t.Fatalf("ParseCheckpoint(%q) = %+v, %v", cp.String(), parsed, err)
			}
			tc.damage(t, dir, l)
			after, err := l.Events(ctx)
			if err != nil {
				t.Fatalf("the damage must be invisible to the chain and the head alone, got %v", err)
			}
			for _, c := range []Checkpoint{cp, {Hash: cp.Hash}} { // SEQ:HASH and a bare hash
				err = VerifyCheckpoint(after, c)
				var ce *CheckpointError
				switch {
				case tc.want == "" && err != nil:
					t.Fatalf("VerifyCheckpoint(%s) = %v, want it to hold", c, err)
				case tc.want != "" && !errors.As(err, &ce):
					t.Fatalf("VerifyCheckpoint(%s) = %v, want a CheckpointError", c, err)
				case tc.want != "" && c.Seq != 0 && !strings.Contains(err.Error(), tc.want):
					t.Fatalf("VerifyCheckpoint(%s) = %v, want it to say %q", c, err, tc.want)
				case tc.want != "" && c.Seq == 0 && !strings.Contains(err.Error(), tc.bare):
					t.Fatalf("VerifyCheckpoint(%s) = %v, want it to say %q", c, err, tc.bare)
				}
			}
		})
	}
}

func joinLines(lines [][]byte) []byte {
	var b []byte
	for _, l := range lines {
		b = append(b, l...)
	}
	return b
}

func TestParseCheckpointRefusesMalformed(t *testing.T) {
	t.Parallel()
	h := strings.Repeat("ab", 32)
	for _, tc := range []struct {
		in   string
		want Checkpoint
		err  string
	}{
		{"7:" + h, Checkpoint{7, h}, ""},
		{"1:" + h, Checkpoint{1, h}, ""},
		{" 7:" + strings.ToUpper(h) + "\n", Checkpoint{7, h}, ""},
		{h, Checkpoint{0, h}, ""},
		{"0:" + h, Checkpoint{}, "positive integer"},
		{"-1:" + h, Checkpoint{}, "positive integer"},
		{"x:" + h, Checkpoint{}, "positive integer"},
		{"7:" + h[:63], Checkpoint{}, "64 hex digits"},
		{"7:" + h[:63] + "g", Checkpoint{}, "64 hex digits"},
		{"", Checkpoint{}, "SEQ:HASH"},
	} {
		t.Run(fmt.Sprintf("%q", tc.in), func(t *testing.T) {
			got, err := ParseCheckpoint(tc.in)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("ParseCheckpoint(%q) = %+v, %v; want an error saying %q", tc.in, got, err, tc.err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("ParseCheckpoint(%q) = %+v, %v; want %+v", tc.in, got, err, tc.want)
			}
		})
	}
}

// FuzzParseCheckpoint: no input panics ParseCheckpoint, and whatever it
// accepts prints back as text that parses to the same checkpoint.
func FuzzParseCheckpoint(f *testing.F) {
	h := strings.Repeat("0f", 32)
	for _, s := range []string{"7:" + h, h, "0:" + h, ":" + h, "7:", "", "99999999999999999999:" + h, "-3:" + h} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		c, err := ParseCheckpoint(s)
		if err != nil {
			return
		}
		if c.Seq < 0 || len(c.Hash) != 64 {
			t.Fatalf("ParseCheckpoint(%q) accepted %+v", s, c)
		}
		back, err := ParseCheckpoint(c.String())
		if err != nil || back != c {
			t.Fatalf("%q -> %+v -> %q -> %+v, %v", s, c, c.String(), back, err)
		}
	})
}
