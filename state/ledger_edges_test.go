package state

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
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

// An edited last event given a hash JSON must escape (a quote), with the
// head rewritten to match: the stored hash is still checked against the
// event's content, and the ledger is refused as edited.
func TestAnEditedEventWithAnEscapedHashIsRefused(t *testing.T) {
	t.Parallel()
	dir, l := newLedger(t, 2)
	lines := ledgerLines(t, dir)
	var e Event
	if err := json.Unmarshal(lines[1], &e); err != nil {
		t.Fatal(err)
	}
	e.Payload = json.RawMessage(`{"id":"c2","status":"failed"}`)
	e.Hash = `forged"hash`
	line, err := EncodeEvent(e)
	if err != nil {
		t.Fatal(err)
	}
	writeLedger(t, dir, [][]byte{lines[0], append(line, '\n')})
	head, _ := json.Marshal(headRecord{Seq: 2, Hash: e.Hash})
	if err := os.WriteFile(filepath.Join(dir, StateDirName, HeadFileName), head, 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = l.Events(context.Background())
	var ce *ChainError
	if !errors.As(err, &ce) || ce.Seq != 2 || !strings.Contains(ce.Reason, "edited") {
		t.Fatalf("Events = %v, want event 2 refused as edited", err)
	}
}

// A long ledger is checked in parallel: an edited event anywhere in it,
// the last included, is still found and named.
func TestAnEditAnywhereInALongLedgerIsFound(t *testing.T) {
	t.Parallel()
	const n = 1500
	dir, l := newLedger(t, 0)
	batch := make([]Event, n)
	for i := range batch {
		batch[i] = Event{Type: EventChangeApplied, Actor: SystemActor, Time: time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC),
			Payload: json.RawMessage(fmt.Sprintf(`{"id":"c%d","status":"done"}`, i+1))}
	}
	if _, err := l.Append(context.Background(), batch...); err != nil {
		t.Fatal(err)
	}
	lines := ledgerLines(t, dir)
	for _, at := range []int{1, 700, 751, n} {
		edited := slices.Clone(lines)
		edited[at-1] = bytes.Replace(lines[at-1], []byte(`"status":"done"`), []byte(`"status":"fail"`), 1)
		writeLedger(t, dir, edited)
		_, err := l.Events(context.Background())
		var ce *ChainError
		if !errors.As(err, &ce) || ce.Seq != int64(at) || !strings.Contains(ce.Reason, "edited") {
			t.Errorf("event %d of %d edited: Events = %v, want that event refused as edited", at, n, err)
		}
	}
	writeLedger(t, dir, lines)
	if events, err := l.Events(context.Background()); err != nil || len(events) != n {
		t.Fatalf("the intact ledger: %d events, %v", len(events), err)
	}
}

// A line whose sequence number is not positive and that is not in
// canonical form is named by its place in the ledger, never as event 0.
func TestANonCanonicalLineWithSeqZeroIsNamedByItsPlace(t *testing.T) {
	t.Parallel()
	dir, l := newLedger(t, 3)
	lines := ledgerLines(t, dir)
	lines[1] = bytes.Replace(lines[1], []byte(`{"seq":2,`), []byte(`{"seq":0 ,`), 1)
	writeLedger(t, dir, lines)
	_, err := l.Events(context.Background())
	var ce *ChainError
	if !errors.As(err, &ce) || ce.Seq != 2 || ce.Line != 2 || !strings.Contains(ce.Reason, "canonical form") {
		t.Fatalf("Events = %v, want event 2 on line 2 refused as not canonical", err)
	}
}

// A line cut right after its sequence number is refused as not JSON, like
// any malformed line, not a crash of the reader.
func TestALineThatEndsInItsSeqIsRefused(t *testing.T) {
	t.Parallel()
	dir, l := newLedger(t, 2)
	lines := ledgerLines(t, dir)
	writeLedger(t, dir, [][]byte{lines[0], []byte("{\"seq\":2\n")})
	_, err := l.Events(context.Background())
	var ce *ChainError
	if !errors.As(err, &ce) || ce.Seq != 2 || !strings.Contains(ce.Reason, "not a JSON event") {
		t.Fatalf("Events = %v, want event 2 refused as not a JSON event", err)
	}
}

// Reads take the fast decoder for every line jitform writes (encoding/json
// is the slow fallback): sequence numbers with every digit, and the event
// decoded is the one written.
func TestTheFastDecoderTakesEveryCanonicalLine(t *testing.T) {
	t.Parallel()
	for _, seq := range []int64{1, 9, 10, 90, 1234567890, 9876543210} {
		e := testEvent("a", 1)
		e.Seq, e.Prev, e.Hash = seq, strings.Repeat("ab", 32), strings.Repeat("cd", 32)
		line, err := EncodeEvent(e)
		if err != nil {
			t.Fatal(err)
		}
		got, ok := decodeEventFast(line)
		if !ok {
			t.Errorf("seq %d: the fast decoder refused %s", seq, line)
			continue
		}
		if enc, err := EncodeEvent(got); err != nil || !bytes.Equal(enc, line) {
			t.Errorf("seq %d: decoded %+v, which encodes to %s", seq, got, enc)
		}
	}
}

// No ledger file is an empty ledger unless ledger.head says events
// existed: a head that records no events leaves it empty, one that
// records an event makes the missing file a deleted ledger.
func TestAMissingLedgerIsEmptyUnlessTheHeadRecordsEvents(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		head    headRecord
		deleted bool
	}{
		{headRecord{Seq: 0}, false},
		{headRecord{Seq: 1, Hash: strings.Repeat("ab", 32)}, true},
	} {
		dir, l := newLedger(t, 1)
		if err := os.Remove(filepath.Join(dir, StateDirName, LedgerFileName)); err != nil {
			t.Fatal(err)
		}
		if err := l.writeHead(tc.head); err != nil {
			t.Fatal(err)
		}
		events, err := l.Events(context.Background())
		switch {
		case tc.deleted && (err == nil || !strings.Contains(err.Error(), "the ledger was deleted")):
			t.Errorf("head %+v: Events = %v, want the ledger named as deleted", tc.head, err)
		case !tc.deleted && (err != nil || len(events) != 0):
			t.Errorf("head %+v: Events = %d events, %v; want an empty ledger", tc.head, len(events), err)
		}
	}
}

// A crash in the very first append after the ledger file was created and
// before anything was written leaves an empty file and no head: that is an
// empty ledger, and appending works.
func TestAnEmptyLedgerFileWithoutAHeadIsEmpty(t *testing.T) {
	t.Parallel()
	dir, l := newLedger(t, 1)
	if err := os.WriteFile(filepath.Join(dir, StateDirName, LedgerFileName), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(dir, StateDirName, HeadFileName)); err != nil {
		t.Fatal(err)
	}
	if events, err := l.Events(context.Background()); err != nil || len(events) != 0 {
		t.Fatalf("Events = %d events, %v; want an empty ledger", len(events), err)
	}
	if evs, err := l.Append(context.Background(), testEvent("x", 0)); err != nil || evs[0].Seq != 1 {
		t.Fatalf("Append = %+v, %v; want event 1", evs, err)
	}
}

// The very first append killed after its events are durable and before it
// records the head: like any later append, the events stand (the head is
// one append behind, which is not tampering), because a fresh ledger gets
// an empty head before its first write.
func TestTheFirstAppendKilledBeforeItsHeadKeepsItsEvents(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	l, err := NewLocal(dir)
	if err != nil {
		t.Fatal(err)
	}
	cmd := helperCmd(t, "crash", "JITFORM_DIR="+dir, "JITFORM_POINT=before-head")
	if err := cmd.Run(); err == nil {
		t.Fatal("the child was not killed")
	}
	events, err := l.Events(context.Background())
	if err != nil || len(events) != 2 {
		t.Fatalf("Events = %d, %v; want the 2 events of the killed append", len(events), err)
	}
	if more, err := l.Append(context.Background(), testEvent("after", 0)); err != nil || more[0].Seq != 3 {
		t.Fatalf("Append after the crash = %+v, %v; want event 3", more, err)
	}
}

// Append reads only the tail; what it finds there is refused with the same
// precise reasons a full read gives: a last line cut inside the event the
// head records, a last line that is no event, events cut from the end
// (named at the first missing event).
func TestAppendRefusesABadTailPrecisely(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name      string
		damage    func(lines [][]byte) [][]byte
		seq, line int64
		reason    string
	}{
		{"torn last line", func(lines [][]byte) [][]byte {
			return append(lines[:2], lines[2][:len(lines[2])/2])
		}, 3, 3, "cut inside event 3"},
		{"last line with seq 0", func(lines [][]byte) [][]byte {
			return append(lines[:2], bytes.Replace(lines[2], []byte(`{"seq":3,`), []byte(`{"seq":0,`), 1))
		}, 0, 0, "the last line is not a valid event"},
		{"last event cut", func(lines [][]byte) [][]byte { return lines[:2] }, 3, 3, "events were removed from the end"},
	} {
		dir, l := newLedger(t, 3)
		writeLedger(t, dir, tc.damage(ledgerLines(t, dir)))
		_, err := l.Append(context.Background(), testEvent("x", 0))
		var ce *ChainError
		if !errors.As(err, &ce) || ce.Seq != tc.seq || int64(ce.Line) != tc.line || !strings.Contains(ce.Reason, tc.reason) {
			t.Errorf("%s: Append = %v (%+v), want event %d on line %d: ...%s...", tc.name, err, ce, tc.seq, tc.line, tc.reason)
		}
	}
}

// A head or snapshot write that cannot replace its file (here a directory
// stands at its path) is reported, and leaves no temporary file behind.
func TestAnAtomicWriteThatCannotReplaceItsFileFails(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "ledger.head")
	if err := os.MkdirAll(filepath.Join(path, "occupied"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := writeFileAtomic(path, []byte(`{"seq":1}`), 0o600, nil); err == nil {
		t.Fatal("writeFileAtomic over a directory succeeded")
	}
	if left, _ := filepath.Glob(filepath.Join(dir, ".ledger.head.tmp*")); len(left) != 0 {
		t.Errorf("temporary files left: %v", left)
	}
}

// Empty looks at the ledger file only: missing or empty is empty, a file
// with an event is not.
func TestEmptyIsWhetherTheLedgerHoldsAnything(t *testing.T) {
	t.Parallel()
	dir, l := newLedger(t, 0)
	if e, err := l.Empty(); err != nil || !e {
		t.Errorf("no ledger: Empty = %v, %v; want true", e, err)
	}
	if err := os.Mkdir(filepath.Join(dir, StateDirName), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, StateDirName, LedgerFileName), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if e, err := l.Empty(); err != nil || !e {
		t.Errorf("empty ledger file: Empty = %v, %v; want true", e, err)
	}
	if _, err := l.Append(context.Background(), testEvent("x", 0)); err != nil {
		t.Fatal(err)
	}
	if e, err := l.Empty(); err != nil || e {
		t.Errorf("one event: Empty = %v, %v; want false", e, err)
	}
}

// sshString reads an SSH wire string (security-key signature fields): an
// empty string and one that ends exactly at the end of the data are read;
// a length past the end is refused.
func TestSSHStringsEndingAtTheEndOfTheDataAreRead(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in      []byte
		s, rest string
		ok      bool
	}{
		{[]byte{0, 0, 0, 0}, "", "", true},
		{[]byte{0, 0, 0, 2, 'h', 'i'}, "hi", "", true},
		{[]byte{0, 0, 0, 2, 'h', 'i', 'x'}, "hi", "x", true},
		{[]byte{0, 0, 0, 3, 'h', 'i'}, "", "", false},
		{[]byte{0, 0, 0}, "", "", false},
	} {
		s, rest, ok := sshString(tc.in)
		if ok != tc.ok || string(s) != tc.s || string(rest) != tc.rest {
			t.Errorf("sshString(%v) = %q, %q, %v; want %q, %q, %v", tc.in, s, rest, ok, tc.s, tc.rest, tc.ok)
		}
	}
}

// A key that does not parse is named in the error by its first 37
// characters and "..." when longer than 40, whole otherwise, so a pasted
// blob stays readable.
func TestAnUnparsableKeyIsNamedAbbreviated(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ key, want string }{
		{strings.Repeat("k", 40), `"` + strings.Repeat("k", 40) + `"`},
		{strings.Repeat("k", 41), `"` + strings.Repeat("k", 37) + `..."`},
	} {
		_, err := ParsePublicKey(tc.key)
		if err == nil || !strings.Contains(err.Error(), "parse ssh_key "+tc.want+":") {
			t.Errorf("ParsePublicKey(%d chars) = %v, want it named as %s", len(tc.key), err, tc.want)
		}
	}
}
