package state

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Verify names the bad event by its sequence number and by its line (its
// place in the ledger, 1-based), which differ once an event is missing.
func TestVerifyNamesTheLineOfTheBadEvent(t *testing.T) {
	t.Parallel()
	_, l := newLedger(t, 4)
	events, err := l.Events(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name      string
		change    func([]Event) []Event
		seq, line int
	}{
		{"edited", func(e []Event) []Event { e[2].Payload = json.RawMessage(`{"id":"c3","status":"failed"}`); return e }, 3, 3},
		{"deleted", func(e []Event) []Event { return append(e[:1], e[2:]...) }, 3, 2},
	} {
		err := Verify(tc.change(append([]Event(nil), events...)))
		var ce *ChainError
		if !errors.As(err, &ce) || ce.Seq != int64(tc.seq) || ce.Line != tc.line {
			t.Errorf("%s: Verify = %v, want event %d on line %d", tc.name, err, tc.seq, tc.line)
			continue
		}
		if want := fmt.Sprintf("(line %d)", tc.line); !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %q does not say %s", tc.name, err, want)
		}
	}
}

// A ledger cut inside the very event that ledger.head records: the head is
// written only after the event is durable, so a crash cannot leave this;
// events were removed from the end, and the ledger is refused as cut, not
// offered the repair of an interrupted write.
func TestACutInsideTheEventTheHeadRecordsIsRefused(t *testing.T) {
	t.Parallel()
	dir, l := newLedger(t, 3)
	path := filepath.Join(dir, StateDirName, LedgerFileName)
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b[:len(b)-10], 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = l.Events(context.Background())
	var ce *ChainError
	if !errors.As(err, &ce) || ce.Seq != 3 || !strings.Contains(ce.Reason, "events were removed from the end") {
		t.Fatalf("Events = %v, want event 3 refused as cut (events removed from the end)", err)
	}
	if _, err := l.Append(context.Background(), testEvent("x", 0)); err == nil {
		t.Fatal("Append to a cut ledger succeeded")
	}
}

// An event's line holds any payload and signature size: a large payload
// (a long justification) and a signature longer than the payload (an RSA
// key's) encode, hash and read back unchanged.
func TestLargePayloadsAndLongSignaturesEncode(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC)
	big, _ := json.Marshal(map[string]string{"why": strings.Repeat("x", 4000)})
	for _, e := range []Event{
		{Seq: 1, Time: at, Type: EventChangeApplied, Actor: SystemActor, Payload: big},
		{Seq: 1, Time: at, Type: EventChangeApplied, Actor: SystemActor, Payload: json.RawMessage(`{}`), Sig: strings.Repeat("S", 1200)},
	} {
		line, err := EncodeEvent(e)
		if err != nil {
			t.Fatal(err)
		}
		var back Event
		if err := json.Unmarshal(line, &back); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(back.Payload, e.Payload) || back.Sig != e.Sig {
			t.Errorf("read back %d payload bytes and a %d-byte signature, want %d and %d", len(back.Payload), len(back.Sig), len(e.Payload), len(e.Sig))
		}
		if _, err := HashEvent(e); err != nil {
			t.Fatal(err)
		}
	}
}

// A ledger of one event cut inside it, while ledger.head records that
// event: the cut is named as such (inside event 1, which the head
// records), as for a cut in any later event.
func TestALedgerCutInsideItsOnlyEventIsNamedAsCut(t *testing.T) {
	t.Parallel()
	dir, l := newLedger(t, 1)
	path := filepath.Join(dir, StateDirName, LedgerFileName)
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b[:len(b)/2], 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = l.Events(context.Background())
	var ce *ChainError
	if !errors.As(err, &ce) || ce.Seq != 1 || !strings.Contains(ce.Reason, "cut inside event 1, and ledger.head records event 1") {
		t.Fatalf("Events = %v, want event 1 named as cut inside it while the head records it", err)
	}
	if _, err := l.Append(context.Background(), testEvent("x", 0)); err == nil {
		t.Fatal("Append after a cut ledger succeeded")
	}
}
