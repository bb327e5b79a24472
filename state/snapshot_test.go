package state

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"
)

// churn appends n rounds of a member added to and removed from a group,
// each change with its outcome: history the planner no longer needs.
func churn(t testing.TB, l *Local, from, n int) {
	t.Helper()
	var batch []Event
	at := time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC)
	for i := from; i < from+n; i++ {
		for k, action := range []string{"add", "remove"} {
			id := fmt.Sprintf("c-%d-%d", i, k)
			c, _ := json.Marshal(Change{ID: id, PlanID: "p", Action: action, Group: "group.g", Target: "target.t", Member: fmt.Sprintf("uid=u%d", i%50), Reason: "grant"})
			o, _ := json.Marshal(ChangeOutcome{ID: id, Status: "done"})
			batch = append(batch,
				Event{Time: at, Type: EventChangeIntent, Actor: SystemActor, Payload: c},
				Event{Time: at, Type: EventChangeApplied, Actor: SystemActor, Payload: o})
		}
	}
	if _, err := l.Append(context.Background(), batch...); err != nil {
		t.Fatal(err)
	}
}

func hashes(events []Event) []string {
	var out []string
	for _, e := range events {
		out = append(out, e.Hash)
	}
	return out
}

// TestPlanEventsMatchesFullRead: what a plan reads through the snapshot is
// exactly CompactForReplay of the verified ledger, with its head, before
// and after events are appended after the snapshot; the snapshot is 0600.
func TestPlanEventsMatchesFullRead(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	l, err := NewLocal(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	churn(t, l, 0, 100)
	for round := range 3 {
		got, head, err := l.PlanEvents(ctx)
		if err != nil {
			t.Fatal(err)
		}
		all, err := l.Events(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if head != Head(all) {
			t.Fatalf("round %d: head %s, want %s", round, head, Head(all))
		}
		// The snapshot's events, then every event after it.
		hdr, kept, ok := l.readSnapshot()
		if !ok {
			t.Fatalf("round %d: no snapshot", round)
		}
		if want := append(hashes(kept), hashes(all[hdr.Seq:])...); !reflect.DeepEqual(hashes(got), want) {
			t.Fatalf("round %d: plan read %d events, want the snapshot's %d and the %d after it", round, len(got), len(kept), len(all)-int(hdr.Seq))
		}
		if want := CompactForReplay(all); !reflect.DeepEqual(hashes(CompactForReplay(got)), hashes(want)) {
			t.Fatalf("round %d: plan read compacts to other events than the ledger", round)
		}
		if len(got) >= len(all) {
			t.Fatalf("round %d: the snapshot kept all %d events", round, len(all))
		}
		fi, err := os.Stat(l.snapshotPath())
		if err != nil || fi.Mode().Perm() != 0o600 {
			t.Fatalf("round %d: snapshot: %v, %v", round, fi, err)
		}
		churn(t, l, 100*(round+1), 10)
	}
}

// TestPlanEventsVerifiesTheTail: events after the snapshot are verified as
// before (an edit is refused, as a full read refuses it), and a snapshot
// whose event is no longer in the ledger is not used.
func TestPlanEventsVerifiesTheTail(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir := t.TempDir()
	l, err := NewLocal(dir)
	if err != nil {
		t.Fatal(err)
	}
	churn(t, l, 0, 20)
	if _, _, err := l.PlanEvents(ctx); err != nil {
		t.Fatal(err)
	}
	churn(t, l, 20, 5)
	path := l.ledgerPath()
	orig, _ := os.ReadFile(path)
	edited := bytes.Replace(orig, []byte(`"member":"uid=u24"`), []byte(`"member":"uid=u99"`), 1)
	if bytes.Equal(edited, orig) {
		t.Fatal("nothing to edit")
	}
	if err := os.WriteFile(path, edited, 0o600); err != nil {
		t.Fatal(err)
	}
	var ce *ChainError
	if _, _, err := l.PlanEvents(ctx); !errors.As(err, &ce) || ce.Seq <= 80 {
		t.Fatalf("edited tail event: got %v, want a chain error after the snapshot's event 80", err)
	}
	// The ledger replaced by another one: the snapshot's event is not there.
	os.WriteFile(path, orig, 0o600)
	dir2 := t.TempDir()
	l2, _ := NewLocal(dir2)
	churn(t, l2, 500, 30)
	other, _ := os.ReadFile(l2.ledgerPath())
	head, _ := os.ReadFile(l2.headPath())
	os.WriteFile(path, other, 0o600)
	os.WriteFile(l.headPath(), head, 0o600)
	got, _, err := l.PlanEvents(ctx)
	if err != nil {
		t.Fatal(err)
	}
	all, _ := l2.Events(ctx)
	if !reflect.DeepEqual(hashes(got), hashes(CompactForReplay(all))) {
		t.Fatal("a snapshot of another ledger was used")
	}
}

// TestSnapshotEditedIsReported: a snapshot edited to drop a member jitform
// manages is refused by the full read (`jitform ledger verify`); a damaged
// one is ignored and rebuilt.
func TestSnapshotEditedIsReported(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	l, err := NewLocal(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	churn(t, l, 0, 20)
	c, _ := json.Marshal(Change{ID: "keep", Action: "add", Group: "group.g", Member: "uid=admin"})
	o, _ := json.Marshal(ChangeOutcome{ID: "keep", Status: "done"})
	l.Append(ctx, Event{Type: EventChangeIntent, Actor: SystemActor, Payload: c}, Event{Type: EventChangeApplied, Actor: SystemActor, Payload: o})
	churn(t, l, 20, 5)
	if _, _, err := l.PlanEvents(ctx); err != nil {
		t.Fatal(err)
	}
	snap, _ := os.ReadFile(l.snapshotPath())
	lines := bytes.Split(bytes.TrimSuffix(snap, []byte("\n")), []byte("\n"))
	var out [][]byte
	for _, ln := range lines {
		if !bytes.Contains(ln, []byte(`uid=admin`)) {
			out = append(out, ln)
		}
	}
	if len(out) == len(lines) {
		t.Fatal("the managed member is not in the snapshot")
	}
	var hdr snapshotHeader
	json.Unmarshal(out[0], &hdr)
	hdr.Events = len(out) - 1
	out[0], _ = json.Marshal(hdr)
	os.WriteFile(l.snapshotPath(), append(bytes.Join(out, []byte("\n")), '\n'), 0o600)
	var ce *ChainError
	if _, err := l.Events(ctx); !errors.As(err, &ce) || !bytes.Contains([]byte(ce.Reason), []byte(SnapshotFileName)) {
		t.Fatalf("edited snapshot: full read gave %v, want an error naming %s", err, SnapshotFileName)
	}
	// Damaged (cut short): ignored, rebuilt by the next read.
	os.WriteFile(l.snapshotPath(), snap[:len(snap)/2], 0o600)
	got, _, err := l.PlanEvents(ctx)
	if err != nil {
		t.Fatal(err)
	}
	all, _ := l.Events(ctx)
	if !reflect.DeepEqual(hashes(got), hashes(CompactForReplay(all))) {
		t.Fatal("damaged snapshot not rebuilt")
	}
	if _, err := os.Stat(filepath.Join(l.Dir(), SnapshotFileName)); err != nil {
		t.Fatal(err)
	}
}

// An edit in the ledger's middle, before the snapshot's checkpoint, is
// refused by plan as DESIGN.md promises (not only by ledger verify), even
// when it keeps every line's length and the snapshot is in place.
func TestPlanEventsRefusesAnEditBeforeTheSnapshot(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	l, err := NewLocal(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	churn(t, l, 0, 50)
	if _, _, err := l.PlanEvents(ctx); err != nil { // writes the snapshot
		t.Fatal(err)
	}
	if _, _, ok := l.readSnapshot(); !ok {
		t.Fatal("no snapshot after a plan")
	}
	churn(t, l, 50, 5) // a tail after the checkpoint
	data, err := os.ReadFile(l.ledgerPath())
	if err != nil {
		t.Fatal(err)
	}
	// uid=u7 -> uid=u8 in an early event: same length, chain not redone.
	i := bytes.Index(data, []byte(`uid=u7"`))
	if i < 0 {
		t.Fatal("no uid=u7 in the ledger")
	}
	data[i+5] = '8'
	if err := os.WriteFile(l.ledgerPath(), data, 0o600); err != nil {
		t.Fatal(err)
	}
	_, _, err = l.PlanEvents(ctx)
	var ce *ChainError
	if !errors.As(err, &ce) {
		t.Fatalf("PlanEvents after an edit in the middle = %v, want a *ChainError naming it", err)
	}
}
