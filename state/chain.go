package state

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"time"
)

// ChainError names the first ledger event that fails verification. Seq is
// the event's sequence number (the expected one when the line cannot be
// parsed), Line the 1-based line in the ledger file.
type ChainError struct {
	Seq    int64
	Line   int
	Reason string
}

func (e *ChainError) Error() string {
	return fmt.Sprintf("ledger event %d (line %d): %s", e.Seq, e.Line, e.Reason)
}

// EncodeEvent returns the canonical line of e (without the newline): the
// Event fields in struct order, no insignificant whitespace, no HTML
// escaping, the payload in canonical JSON (sorted keys) and the time as
// written by time.Time's JSON encoding. The same logical event always
// encodes to the same bytes, so its hash is stable.
func EncodeEvent(e Event) ([]byte, error) {
	payload := []byte(e.Payload)
	if len(bytes.TrimSpace(payload)) == 0 {
		payload = []byte("null")
	}
	canon, err := CanonicalJSON(payload)
	if err != nil {
		return nil, fmt.Errorf("encode event %d payload: %w", e.Seq, err)
	}
	e.Payload = canon
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(e); err != nil {
		return nil, fmt.Errorf("encode event %d: %w", e.Seq, err)
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n")), nil
}

// HashEvent returns the hex SHA-256 of e's canonical encoding with Hash
// empty: what Event.Hash must be.
func HashEvent(e Event) (string, error) {
	e.Hash = ""
	line, err := EncodeEvent(e)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(line)
	return hex.EncodeToString(sum[:]), nil
}

// Head returns the hash of the last event: what the next event's Prev must
// be, and a short value to anchor elsewhere (CI logs) to detect a rewrite
// of the whole ledger. It is "" for an empty ledger.
func Head(events []Event) string {
	if len(events) == 0 {
		return ""
	}
	return events[len(events)-1].Hash
}

// Verify checks an in-memory chain: sequence numbers 1, 2, 3…, every Prev
// the previous Hash, every Hash the hash of its event. It returns a
// *ChainError naming the first bad event (Line is its index + 1).
func Verify(events []Event) error {
	prev := ""
	for i, e := range events {
		if err := checkLink(e, int64(i)+1, prev, i+1); err != nil {
			return err
		}
		prev = e.Hash
	}
	return nil
}

// checkLink verifies one event against its expected place in the chain.
func checkLink(e Event, wantSeq int64, wantPrev string, line int) *ChainError {
	if e.Seq != wantSeq {
		seq := e.Seq
		reason := fmt.Sprintf("sequence number is %d where %d was expected: an event was deleted, inserted or moved here", e.Seq, wantSeq)
		if e.Seq <= 0 {
			seq = wantSeq
			reason = fmt.Sprintf("sequence number %d is not positive", e.Seq)
		}
		return &ChainError{Seq: seq, Line: line, Reason: reason}
	}
	if e.Prev != wantPrev {
		return &ChainError{Seq: e.Seq, Line: line, Reason: "prev does not match the hash of the event before it: the chain was cut or rewritten here"}
	}
	h, err := HashEvent(e)
	if err != nil {
		return &ChainError{Seq: e.Seq, Line: line, Reason: err.Error()}
	}
	if h != e.Hash {
		return &ChainError{Seq: e.Seq, Line: line, Reason: "hash does not match the event's content: the event was edited"}
	}
	return nil
}

// headRecord is .jitform/ledger.head: the last event's seq and hash,
// written after every append. It catches what the chain alone cannot: the
// removal of events from the end.
type headRecord struct {
	Seq  int64  `json:"seq"`
	Hash string `json:"hash"`
}

// parseLedger reads a ledger file's bytes and verifies them. Every line
// must be the canonical encoding of its event, so a line edited in a way
// that keeps the hash (spacing, key order, unknown keys) is refused too.
// head, when not nil, is checked against the chain. A final line without
// a newline is reported as an interrupted write, not silently dropped.
func parseLedger(data []byte, head *headRecord) ([]Event, error) {
	var events []Event
	prev := ""
	line := 0
	for off := 0; off < len(data); {
		line++
		wantSeq := int64(len(events)) + 1
		nl := bytes.IndexByte(data[off:], '\n')
		if nl < 0 {
			return events, &ChainError{Seq: wantSeq, Line: line, Reason: fmt.Sprintf(
				"the last line has no newline: the last write was interrupted (a crash mid-append), it is not a complete event. "+
					"Events before it are intact; to repair, cut the file back to its first %d bytes (truncate -s %d .jitform/ledger.jsonl) and run `jitform ledger verify`",
				off, off)}
		}
		raw := data[off : off+nl]
		off += nl + 1
		e, cerr := parseLine(raw, wantSeq, line)
		if cerr != nil {
			return events, cerr
		}
		if cerr := checkLink(e, wantSeq, prev, line); cerr != nil {
			return events, cerr
		}
		events = append(events, e)
		prev = e.Hash
	}
	if head != nil {
		if err := checkHead(events, *head, line); err != nil {
			return events, err
		}
	}
	return events, nil
}

// parseLine decodes one line and insists it is in canonical form.
func parseLine(raw []byte, wantSeq int64, line int) (Event, *ChainError) {
	var e Event
	if len(raw) == 0 {
		return e, &ChainError{Seq: wantSeq, Line: line, Reason: "empty line: every line must be one event"}
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	if err := dec.Decode(&e); err != nil {
		return e, &ChainError{Seq: wantSeq, Line: line, Reason: fmt.Sprintf("not a JSON event: %v", err)}
	}
	seq := e.Seq
	if seq <= 0 {
		seq = wantSeq
	}
	enc, err := EncodeEvent(e)
	if err != nil {
		return e, &ChainError{Seq: seq, Line: line, Reason: err.Error()}
	}
	if !bytes.Equal(enc, raw) {
		return e, &ChainError{Seq: seq, Line: line, Reason: "the line is not in canonical form (spacing, key order, an unknown or repeated field, or a payload that is not canonical JSON): it was edited outside jitform"}
	}
	return e, nil
}

// checkHead compares the chain with the recorded head. A chain longer than
// the head is a crash between appending and recording the head, and is
// accepted as long as the head's event is still in place.
func checkHead(events []Event, h headRecord, lines int) *ChainError {
	n := int64(len(events))
	switch {
	case h.Seq < 0:
		return &ChainError{Seq: 1, Line: 1, Reason: fmt.Sprintf("ledger.head records a negative sequence number %d: it was edited", h.Seq)}
	case h.Seq > n:
		return &ChainError{Seq: n + 1, Line: lines + 1, Reason: fmt.Sprintf(
			"the ledger ends at event %d but ledger.head records event %d: events were removed from the end of the ledger", n, h.Seq)}
	case h.Seq == 0:
		if h.Hash != "" {
			return &ChainError{Seq: 1, Line: 1, Reason: "ledger.head records no events but a hash: it was edited"}
		}
	case events[h.Seq-1].Hash != h.Hash:
		return &ChainError{Seq: h.Seq, Line: int(h.Seq), Reason: "the event's hash differs from the one recorded in ledger.head: the ledger was rewritten from here on"}
	}
	return nil
}

// prepareEvent fills a new event's chain fields: seq, prev, UTC time (now
// when unset), canonical payload and hash.
func prepareEvent(e Event, seq int64, prev string, now time.Time) (Event, []byte, error) {
	e.Seq, e.Prev, e.Hash = seq, prev, ""
	if e.Time.IsZero() {
		e.Time = now
	}
	e.Time = e.Time.UTC()
	if e.Type == "" {
		return e, nil, fmt.Errorf("event %d has no type", seq)
	}
	payload := []byte(e.Payload)
	if len(bytes.TrimSpace(payload)) == 0 {
		payload = []byte("null")
	}
	canon, err := CanonicalJSON(payload)
	if err != nil {
		return e, nil, fmt.Errorf("%s event payload: %w", e.Type, err)
	}
	e.Payload = canon
	h, err := HashEvent(e)
	if err != nil {
		return e, nil, err
	}
	e.Hash = h
	line, err := EncodeEvent(e)
	if err != nil {
		return e, nil, err
	}
	return e, line, nil
}
