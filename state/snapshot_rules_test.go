package state

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"
)

// planRead is a plan's read of l; rewrote says whether it wrote
// snapshot.json (a read that falls back to the whole ledger always
// does; one that reads only the events after the snapshot does not,
// until snapshotRefresh of them follow it).
func planRead(t *testing.T, l *Local) (events []Event, head string, rewrote bool, err error) {
	t.Helper()
	before, _ := os.Stat(l.snapshotPath())
	events, head, err = l.PlanEvents(context.Background())
	after, _ := os.Stat(l.snapshotPath())
	return events, head, after != nil && (before == nil || !os.SameFile(before, after)), err
}

// appendOne appends one change outcome (any event will do).
func appendOne(t *testing.T, l *Local, i int) {
	t.Helper()
	if _, err := l.Append(context.Background(), outcomeEvent(i)); err != nil {
		t.Fatal(err)
	}
}

func outcomeEvent(i int) Event {
	p, _ := json.Marshal(ChangeOutcome{ID: "c" + strings.Repeat("x", i%7), Status: "done"})
	return Event{Type: EventChangeApplied, Actor: SystemActor, Time: time.Date(2026, 11, 23, 9, 0, i%60, 0, time.UTC), Payload: p}
}

func snapshotSeq(t *testing.T, l *Local) int64 {
	t.Helper()
	hdr, _, ok := l.readSnapshot()
	if !ok {
		t.Fatal("no usable snapshot")
	}
	return hdr.Seq
}

// TestAPlanReadsOnlyTheEventsAfterTheSnapshot: with a snapshot that
// matches the ledger, a plan reads the snapshot's events and verifies only
// the events after its checkpoint, wherever the checkpoint is (the first
// event, the head, before one event or many); it leaves the snapshot in
// place and reads what the whole ledger gives.
func TestAPlanReadsOnlyTheEventsAfterTheSnapshot(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name         string
		before, tail int // events before the snapshot is written, then after it
	}{
		{"snapshot at the first event, events after it", 1, 3},
		{"snapshot at the first event, nothing after it", 1, 0},
		{"snapshot at the head", 40, 0},
		{"one event after the snapshot", 40, 1},
		{"many events after the snapshot", 40, 25},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l, err := NewLocal(t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			for i := range tc.before {
				appendOne(t, l, i)
			}
			if _, err := l.Events(ctx); err != nil { // writes the snapshot
				t.Fatal(err)
			}
			for i := range tc.tail {
				appendOne(t, l, tc.before+i)
			}
			got, head, rewrote, err := planRead(t, l)
			if err != nil {
				t.Fatal(err)
			}
			if rewrote {
				t.Error("the plan read the whole ledger and rewrote the snapshot")
			}
			all, err := l.Events(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if head != Head(all) {
				t.Errorf("head %s, want %s", head, Head(all))
			}
			if snapshotSeq(t, l) != int64(tc.before) {
				t.Errorf("the snapshot moved to event %d", snapshotSeq(t, l))
			}
			if want := append(hashes(CompactForReplay(all[:tc.before])), hashes(all[tc.before:])...); !reflect.DeepEqual(hashes(got), want) {
				t.Errorf("the plan read %d events, want the snapshot's and the %d after it", len(got), tc.tail)
			}
		})
	}
}

// TestTheSnapshotIsRenewed10000EventsOn: a plan that finds
// snapshotRefresh (10,000) events or more after the snapshot rewrites it
// at the head, where the next plan reads it; with one fewer it leaves it.
// A full read (ledger verify) renews it by the same count.
func TestTheSnapshotIsRenewed10000EventsOn(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	for _, tail := range []int{snapshotRefresh - 1, snapshotRefresh} {
		want := int64(3)
		if tail >= snapshotRefresh {
			want = int64(3 + tail)
		}
		batch := make([]Event, tail)
		for i := range batch {
			batch[i] = outcomeEvent(i)
		}
		var ls [2]*Local
		for k := range ls {
			l, err := NewLocal(t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			for i := range 3 {
				appendOne(t, l, i)
			}
			if _, err := l.Events(ctx); err != nil { // the snapshot at event 3
				t.Fatal(err)
			}
			if _, err := l.Append(ctx, batch...); err != nil {
				t.Fatal(err)
			}
			ls[k] = l
		}
		// ledger verify
		if _, err := ls[1].Events(ctx); err != nil {
			t.Fatal(err)
		}
		if got := snapshotSeq(t, ls[1]); got != want {
			t.Errorf("%d events after the snapshot: a full read left it at event %d, want %d", tail, got, want)
		}
		// plan
		l := ls[0]
		_, head, _, err := planRead(t, l)
		if err != nil {
			t.Fatal(err)
		}
		if got := snapshotSeq(t, l); got != want {
			t.Errorf("%d events after the snapshot: a plan left it at event %d, want %d", tail, got, want)
		}
		if tail < snapshotRefresh {
			continue
		}
		// The renewed snapshot is read by the next plan.
		appendOne(t, l, 1)
		got, head2, rewrote, err := planRead(t, l)
		if err != nil || rewrote || head2 == head {
			t.Errorf("%d events after the snapshot: the next plan = %v, rewrote %v", tail, err, rewrote)
		}
		all, err := l.AuditEvents(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(hashes(CompactForReplay(got)), hashes(CompactForReplay(all))) {
			t.Errorf("%d events after the snapshot: the next plan read other events than the ledger's", tail)
		}
	}
}

// TestASnapshotThatNoLongerMatchesIsNotTrusted: a plan does not read a
// snapshot that is of another format, damaged, edited, or whose checkpoint
// is not where its header says in the ledger; it reads and verifies the
// whole ledger instead (what a full read gives), and writes a new one at
// the head.
func TestASnapshotThatNoLongerMatchesIsNotTrusted(t *testing.T) {
	ctx := context.Background()
	header := func(edit func(h *snapshotHeader)) func(t *testing.T, l *Local) {
		return func(t *testing.T, l *Local) {
			data, _ := os.ReadFile(l.snapshotPath())
			nl := bytes.IndexByte(data, '\n')
			var h snapshotHeader
			if err := json.Unmarshal(data[:nl], &h); err != nil {
				t.Fatal(err)
			}
			edit(&h)
			b, _ := json.Marshal(h)
			os.WriteFile(l.snapshotPath(), append(b, data[nl:]...), 0o600)
		}
	}
	keptLines := func(edit func(lines [][]byte) [][]byte) func(t *testing.T, l *Local) {
		return func(t *testing.T, l *Local) {
			data, _ := os.ReadFile(l.snapshotPath())
			lines := bytes.Split(bytes.TrimSuffix(data, []byte("\n")), []byte("\n"))
			lines = append(lines[:1], edit(lines[1:])...)
			os.WriteFile(l.snapshotPath(), append(bytes.Join(lines, []byte("\n")), '\n'), 0o600)
		}
	}
	for _, tc := range []struct {
		name   string
		damage func(t *testing.T, l *Local)
	}{
		{"another format", header(func(h *snapshotHeader) { h.Format = 2 })},
		{"no checkpoint", header(func(h *snapshotHeader) { h.Seq = 0 })},
		{"a kept event more than the header counts", header(func(h *snapshotHeader) { h.Events-- })},
		{"a kept event fewer than the header counts", header(func(h *snapshotHeader) { h.Events++ })},
		{"a negative line start", header(func(h *snapshotHeader) { h.LineStart, h.Offset = -1, 0 })},
		{"an offset at its line start", header(func(h *snapshotHeader) { h.Offset = h.LineStart })},
		{"an offset past the ledger's end", header(func(h *snapshotHeader) { h.Offset += 1 << 20 })},
		{"a checkpoint one line early", header(func(h *snapshotHeader) { h.Seq--; h.LineStart -= 10; h.Offset -= 10 })},
		{"a checkpoint hash of another event", header(func(h *snapshotHeader) { h.Hash = strings.Repeat("0", 64) })},
		{"a checkpoint past the head", header(func(h *snapshotHeader) { h.Seq += 100 })},
		{"a prefix hash that does not match", header(func(h *snapshotHeader) { h.Prefix = strings.Repeat("0", 64) })},
		{"kept events out of order", keptLines(func(k [][]byte) [][]byte { k[0], k[1] = k[1], k[0]; return k })},
		{"a kept event twice", keptLines(func(k [][]byte) [][]byte { return append(k[:1], k...)[:len(k)] })},
		{"a kept event edited", keptLines(func(k [][]byte) [][]byte {
			k[0] = bytes.Replace(k[0], []byte(`"actor":"jitform"`), []byte(`"actor":"jitforn"`), 1)
			return k
		})},
		{"cut short", func(t *testing.T, l *Local) {
			data, _ := os.ReadFile(l.snapshotPath())
			os.WriteFile(l.snapshotPath(), data[:len(data)-3], 0o600)
		}},
		{"empty", func(t *testing.T, l *Local) { os.WriteFile(l.snapshotPath(), nil, 0o600) }},
		{"a header with a field jitform does not write", func(t *testing.T, l *Local) {
			data, _ := os.ReadFile(l.snapshotPath())
			os.WriteFile(l.snapshotPath(), append([]byte(`{"trusted":true,`), data[1:]...), 0o600)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l, err := NewLocal(t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			churn(t, l, 0, 10) // 40 events: the snapshot keeps a few
			if _, err := l.Events(ctx); err != nil {
				t.Fatal(err)
			}
			churn(t, l, 10, 2)
			tc.damage(t, l)
			got, head, rewrote, err := planRead(t, l)
			if err != nil {
				t.Fatal(err)
			}
			all, err := l.AuditEvents(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if !rewrote || snapshotSeq(t, l) != int64(len(all)) {
				t.Error("the plan trusted the snapshot")
			}
			if head != Head(all) || !reflect.DeepEqual(hashes(got), hashes(CompactForReplay(all))) {
				t.Error("the plan read other events than the whole ledger gives")
			}
		})
	}
}

// TestAPlanChecksTheEventsAfterTheSnapshotAsAFullRead: what follows the
// snapshot's checkpoint is held to the full read's rules: a last write
// torn right after it is refused as a full read refuses it, a head behind
// the last event (a crash between an append and its head) is accepted
// when it is an event of the tail and refused when its hash is not, and a
// state without a ledger is empty.
func TestAPlanChecksTheEventsAfterTheSnapshotAsAFullRead(t *testing.T) {
	ctx := context.Background()
	newWithSnapshot := func(t *testing.T) *Local {
		l, err := NewLocal(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		churn(t, l, 0, 5)
		if _, err := l.Events(ctx); err != nil {
			t.Fatal(err)
		}
		return l
	}
	t.Run("torn right after the checkpoint", func(t *testing.T) {
		l := newWithSnapshot(t)
		f, err := os.OpenFile(l.ledgerPath(), os.O_WRONLY|os.O_APPEND, 0)
		if err != nil {
			t.Fatal(err)
		}
		f.WriteString(`{"seq":21,"time":`)
		f.Close()
		_, _, err = l.PlanEvents(ctx)
		var ce *ChainError
		if !errors.As(err, &ce) || ce.Seq != 21 || !strings.Contains(ce.Reason, "the last line has no newline") {
			t.Errorf("plan of a torn ledger = %v, want the torn event 21 named", err)
		}
	})
	for _, behind := range []int{1, 3, 4} {
		l := newWithSnapshot(t) // the snapshot at event 20
		churn(t, l, 5, 1)       // events 21..24
		all, err := l.Events(ctx)
		if err != nil {
			t.Fatal(err)
		}
		at := all[len(all)-1-behind]
		if err := l.writeHead(headRecord{Seq: at.Seq, Hash: at.Hash}); err != nil {
			t.Fatal(err)
		}
		got, head, rewrote, err := planRead(t, l)
		if err != nil || rewrote || head != Head(all) || !reflect.DeepEqual(hashes(CompactForReplay(got)), hashes(CompactForReplay(all))) {
			t.Errorf("head %d behind the last event: plan = %v, rewrote %v, head %s; want the ledger's events to %s from the snapshot", behind, err, rewrote, head, Head(all))
		}
		if err := l.writeHead(headRecord{Seq: at.Seq, Hash: all[0].Hash}); err != nil {
			t.Fatal(err)
		}
		_, _, err = l.PlanEvents(ctx)
		var ce *ChainError
		if !errors.As(err, &ce) || ce.Seq != at.Seq {
			t.Errorf("head %d behind with another event's hash: plan = %v, want event %d named", behind, err, at.Seq)
		}
	}
	l, err := NewLocal(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	events, head, err := l.PlanEvents(ctx)
	if err != nil || len(events) != 0 || head != "" {
		t.Errorf("plan of a state without a ledger = %d events, %q, %v; want none", len(events), head, err)
	}
}
