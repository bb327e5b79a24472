package state

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"hash"
	"strconv"
	"strings"
	"time"

	"github.com/jitform/jitform/internal/parallel"
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
	if !isCanonicalJSON(payload) {
		canon, err := CanonicalJSON(payload)
		if err != nil {
			return nil, fmt.Errorf("encode event %d payload: %w", e.Seq, err)
		}
		payload = canon
	}
	e.Payload = payload
	line, err := appendEvent(make([]byte, 0, 256+len(payload)+len(e.Sig)), e)
	if err != nil {
		return nil, fmt.Errorf("encode event %d: %w", e.Seq, err)
	}
	return line, nil
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
	lines, tornAt := splitLines(data)
	events, err := parseLines(lines, 0, "")
	if err != nil {
		return events, err
	}
	if tornAt >= 0 {
		n := len(lines) + 1
		if head != nil && head.Seq >= int64(n) {
			// The head is recorded only after the lines are durable, so a
			// crash never leaves it at or past a cut line: this was cut.
			return events, &ChainError{Seq: int64(n), Line: n, Reason: fmt.Sprintf(
				"the ledger was cut inside event %d, and ledger.head records event %d: a crash cannot do this (the head is recorded after the events are durable), so events were removed from the end",
				n, head.Seq)}
		}
		return events, &ChainError{Seq: int64(n), Line: n, Reason: fmt.Sprintf(
			"the last line has no newline: the last write was interrupted (a crash mid-append), it is not a complete event. "+
				"Events before it are intact; to repair, cut the file back to its first %d bytes (truncate -s %d .jitform/ledger.jsonl) and run `jitform ledger verify`",
			tornAt, tornAt)}
	}
	if head != nil {
		if err := checkHead(events, *head, len(lines)); err != nil {
			return events, err
		}
	}
	return events, nil
}

// parseLines decodes and verifies ledger lines that follow event base
// (whose hash is prev): canonical form, hashes and links.
func parseLines(lines [][]byte, base int64, prev string) ([]Event, *ChainError) {
	// Each line is decoded and hash-checked on its own, in parallel for
	// long ledgers (nearly all of a read's cost); the links between lines
	// are then checked in order, so the first bad event is the one named.
	events := make([]Event, len(lines))
	res := make([]lineResult, len(lines))
	parallel.Chunks(len(lines), chunkLines, func(lo, hi int) {
		decodeChunk(lines[lo:hi], events[lo:hi], res[lo:hi], base+int64(lo))
	})

	for i := range res {
		r, e := &res[i], &events[i]
		if r.err != nil {
			return events[:i], r.err
		}
		want := base + int64(i) + 1
		if e.Seq != want || string(r.prev) != prev {
			e.Prev = string(r.prev)
			return events[:i], checkLink(*e, want, prev, int(want))
		}
		if !r.hashOK {
			return events[:i], &ChainError{Seq: e.Seq, Line: int(want), Reason: "hash does not match the event's content: the event was edited"}
		}
		// The previous event's hash string, not a copy of it.
		e.Prev = prev
		prev = e.Hash
	}
	return events, nil
}

// lineResult is what checking one line on its own found: its prev value
// (the link pass sets the event's Prev), whether its hash matches its
// content, or what is wrong with it.
type lineResult struct {
	prev   []byte
	hashOK bool
	err    *ChainError
}

// decodeChunk decodes and hash-checks consecutive lines, the first of
// which follows event base. A canonical line (nearly all) is checked
// without re-encoding it, and its event's strings and payload share two
// allocations per chunk rather than taking several per event: a million
// events are otherwise millions of small objects for the GC. Any other
// line goes through parseLine, which names what is wrong with it.
func decodeChunk(lines [][]byte, events []Event, out []lineResult, base int64) {
	d := sha256.New()
	fields := make([]lineFields, len(lines))
	strLen, payloadLen := 0, 0
	for i, raw := range lines {
		f, ok := scanEvent(raw)
		if !ok || !f.canonical {
			want := base + int64(i) + 1
			e, cerr := parseLine(raw, want, int(want))
			if cerr != nil {
				out[i].err = cerr
				continue
			}
			out[i] = lineResult{prev: []byte(e.Prev), hashOK: storedHashOK(e, raw)}
			e.Prev = ""
			events[i] = e
			continue
		}
		fields[i] = f
		out[i].hashOK = lineHashOK(d, raw, &f)
		out[i].prev = f.prev
		strLen += len(f.hash) + len(f.sig)
		payloadLen += len(f.payload)
	}
	// The strings of the chunk are substrings of one string, the payloads
	// slices (capacity-capped, so an append copies) of one array.
	var sb strings.Builder
	sb.Grow(strLen)
	payloads := make([]byte, 0, payloadLen)
	for i := range lines {
		if fields[i].payload == nil { // an error, or decoded by parseLine
			continue
		}
		f := &fields[i]
		sb.Write(f.hash)
		sb.Write(f.sig)
		payloads = append(payloads, f.payload...)
	}
	all := sb.String()
	interned := map[string]string{}
	intern := func(b []byte) string {
		if s, ok := interned[string(b)]; ok {
			return s
		}
		s := string(b)
		if len(interned) < 64 {
			interned[s] = s
		}
		return s
	}
	so, po := 0, 0
	for i := range lines {
		if fields[i].payload == nil { // an error, or decoded by parseLine
			continue
		}
		f := &fields[i]
		e := &events[i]
		e.Seq, e.Time = f.seq, f.time
		e.Type, e.Actor = intern(f.typ), intern(f.actor)
		e.Hash = all[so : so+len(f.hash)]
		so += len(f.hash)
		e.Sig = all[so : so+len(f.sig)]
		so += len(f.sig)
		e.Payload = payloads[po : po+len(f.payload) : po+len(f.payload)]
		po += len(f.payload)
	}
}

// splitLines splits a ledger into its newline-terminated lines. tornAt is
// the offset of a final line without a newline, or -1.
func splitLines(data []byte) (lines [][]byte, tornAt int) {
	lines = make([][]byte, 0, bytes.Count(data, []byte("\n")))
	for off := 0; off < len(data); {
		nl := bytes.IndexByte(data[off:], '\n')
		if nl < 0 {
			return lines, off
		}
		lines = append(lines, data[off:off+nl])
		off += nl + 1
	}
	return lines, -1
}

// chunkLines is how many lines a worker decodes at a time.
const chunkLines = 4096

// storedHashOK checks the hash of an event whose line is known to be its
// canonical encoding: the hash is of the line itself with the hash value
// blanked, which saves encoding the event a second time.
func storedHashOK(e Event, raw []byte) bool {
	suffix := `"hash":"` + e.Hash + `"}`
	if !bytes.HasSuffix(raw, []byte(suffix)) {
		h, err := HashEvent(e)
		return err == nil && h == e.Hash
	}
	h := sha256.New()
	h.Write(raw[:len(raw)-len(suffix)])
	h.Write([]byte(`"hash":""}`))
	return hex.EncodeToString(h.Sum(nil)) == e.Hash
}

// lineHashOK is storedHashOK for a line scanEvent found canonical: the
// hashed bytes are the line up to the hash value, then `"}`. d is reused.
func lineHashOK(d hash.Hash, raw []byte, f *lineFields) bool {
	d.Reset()
	d.Write(raw[:f.hashAt])
	d.Write([]byte(`"}`))
	var sum [sha256.Size]byte
	var hx [2 * sha256.Size]byte
	hex.Encode(hx[:], d.Sum(sum[:0]))
	return string(hx[:]) == string(f.hash)
}

// parseLine decodes one line and insists it is in canonical form.
func parseLine(raw []byte, wantSeq int64, line int) (Event, *ChainError) {
	var e Event
	if len(raw) == 0 {
		return e, &ChainError{Seq: wantSeq, Line: line, Reason: "empty line: every line must be one event"}
	}
	f, ok := scanEvent(raw)
	if ok {
		e = f.event()
		if f.canonical {
			return e, nil // scanEvent proved what re-encoding would
		}
	} else if err := json.Unmarshal(raw, &e); err != nil {
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

// Checkpoint is a ledger head recorded elsewhere (a CI log, a ticket, a
// second repository) so that a later reader can prove the ledger still
// contains it: the event at Seq, with Hash. Each hash commits to every
// event before it, so a ledger that verifies and still holds the checkpoint
// was not changed up to Seq.
type Checkpoint struct {
	Seq  int64  `json:"seq"`
	Hash string `json:"hash"`
}

// String is the checkpoint's one-word form, "SEQ:HASH", as printed by
// `jitform ledger checkpoint` and read by ParseCheckpoint.
// A checkpoint given as a bare hash (Seq 0) prints as the hash.
func (c Checkpoint) String() string {
	if c.Seq == 0 {
		return c.Hash
	}
	return fmt.Sprintf("%d:%s", c.Seq, c.Hash)
}

// CheckpointOf returns the head of a verified chain; ok is false for an
// empty ledger, which has nothing to anchor.
func CheckpointOf(events []Event) (c Checkpoint, ok bool) {
	if len(events) == 0 {
		return Checkpoint{}, false
	}
	last := events[len(events)-1]
	return Checkpoint{Seq: last.Seq, Hash: last.Hash}, true
}

// ParseCheckpoint reads "SEQ:HASH" (what `ledger checkpoint` prints) or a
// bare HASH (the head `ledger verify` prints; Seq is then 0 and the event
// is looked up by hash).
func ParseCheckpoint(s string) (Checkpoint, error) {
	s = strings.TrimSpace(s)
	seqText, hash, hasSeq := strings.Cut(s, ":")
	if !hasSeq {
		seqText, hash = "", s
	}
	hash = strings.ToLower(hash)
	if len(hash) != sha256.Size*2 || strings.Trim(hash, "0123456789abcdef") != "" {
		return Checkpoint{}, fmt.Errorf("checkpoint %q: want SEQ:HASH as printed by `jitform ledger checkpoint` (HASH is 64 hex digits)", s)
	}
	var seq int64
	if hasSeq {
		n, err := strconv.ParseInt(seqText, 10, 64)
		if err != nil || n < 1 {
			return Checkpoint{}, fmt.Errorf("checkpoint %q: the sequence number before ':' must be a positive integer", s)
		}
		seq = n
	}
	return Checkpoint{Seq: seq, Hash: hash}, nil
}

// CheckpointError says why a verified ledger does not contain a checkpoint.
type CheckpointError struct {
	Checkpoint Checkpoint
	Reason     string
}

func (e *CheckpointError) Error() string {
	return fmt.Sprintf("the ledger does not contain checkpoint %s: %s", e.Checkpoint, e.Reason)
}

// VerifyCheckpoint proves that a chain (already verified by Verify or a
// backend's Events) still contains the checkpoint's event, at its seq with
// its hash. It catches what the chain and ledger.head alone cannot: events
// cut from the end with the head edited to match, a whole ledger rewritten
// with recomputed hashes, and a deleted state directory.
func VerifyCheckpoint(events []Event, c Checkpoint) error {
	n := int64(len(events))
	if c.Seq == 0 {
		for _, e := range events {
			if e.Hash == c.Hash {
				return nil
			}
		}
		if n == 0 {
			return &CheckpointError{c, "the ledger is empty: it was deleted or replaced since the checkpoint was taken"}
		}
		return &CheckpointError{c, fmt.Sprintf("no event of the %d has that hash: the ledger was rewritten, replaced or cut since the checkpoint was taken", n)}
	}
	switch {
	case n == 0:
		return &CheckpointError{c, fmt.Sprintf("the ledger is empty but held event %d when the checkpoint was taken: it was deleted or replaced", c.Seq)}
	case n < c.Seq:
		return &CheckpointError{c, fmt.Sprintf("the ledger ends at event %d but held event %d when the checkpoint was taken: events were removed from its end (or it was replaced)", n, c.Seq)}
	}
	if got := events[c.Seq-1].Hash; got != c.Hash {
		return &CheckpointError{c, fmt.Sprintf("event %d has hash %s, not the checkpoint's %s: the ledger was rewritten at or before event %d", c.Seq, got, c.Hash, c.Seq)}
	}
	return nil
}
