package state

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
)

// SnapshotFileName is the local backend's verified snapshot: the ledger
// events the planner's replay needs (CompactForReplay) up to a checkpoint,
// so that plan and apply verify only the events after it.
const SnapshotFileName = "snapshot.json"

// snapshotFormat changes whenever CompactForReplay keeps different events:
// a snapshot of another format is ignored and rebuilt. 3: every account
// change is kept (format 2 kept one per account, losing the ephemeral
// accounts jitform created and the passwords it delivered).
const snapshotFormat = 3

// snapshotRefresh is how many events after the snapshot make a plan
// rewrite it (a full read always does).
const snapshotRefresh = 10_000

// snapshotHeader is the first line of snapshot.json; the kept events
// follow, one canonical line each, as in the ledger.
type snapshotHeader struct {
	Format int    `json:"format"`
	Seq    int64  `json:"seq"`  // the checkpoint: event Seq…
	Hash   string `json:"hash"` // …with this hash
	// LineStart and Offset are the byte offsets of event Seq's line in
	// ledger.jsonl and of the byte after its newline: a plan reads that one
	// line to prove the event is still there, then only what follows.
	LineStart int64 `json:"line_start"`
	Offset    int64 `json:"offset"`
	// Prefix is the SHA-256 of ledger.jsonl's bytes before Offset: a plan
	// hashes them (no parsing, ~1 ms per MB) so that an edit anywhere in
	// the ledger's middle is still refused by plan, as DESIGN.md promises,
	// and not only by ledger verify.
	Prefix string `json:"prefix_sha256"`
	Events int    `json:"events"` // kept events that follow
}

// PlanReader is a backend that can return the events the planner's replay
// needs (CompactForReplay of the verified ledger) without reading and
// verifying the whole ledger on every call.
type PlanReader interface {
	PlanEvents(ctx context.Context) (events []Event, head string, err error)
}

// ReadForPlan returns what the planner replays and the ledger's head hash:
// from a PlanReader's snapshot when the backend has one, else the whole
// verified ledger.
func ReadForPlan(ctx context.Context, b Backend) ([]Event, string, error) {
	if r, ok := b.(PlanReader); ok {
		return r.PlanEvents(ctx)
	}
	events, err := b.Events(ctx)
	return events, Head(events), err
}

func (l *Local) snapshotPath() string { return filepath.Join(l.dir, SnapshotFileName) }

// PlanEvents returns CompactForReplay of the verified ledger and its head.
// With a snapshot it reads the snapshot, checks that its event is still in
// ledger.jsonl at its offset with its seq and hash, and reads and verifies
// only the events after it (chained from that hash) against ledger.head.
// Without a usable snapshot (missing, of another format, damaged, or a
// ledger that no longer holds its event) it verifies the whole ledger, as
// Events does, and writes a new one. `jitform ledger verify` (Events)
// always walks the whole ledger, and also checks the snapshot against it.
//
// The snapshot only saves work: what it holds was derived from events
// verified when it was written, it is a file of the same protected state
// directory (0600, refused when others can write it), its events are
// re-hashed when read, grant signatures and every config-dependent verdict
// are recomputed on every plan from the kept events, and a full read proves
// it matches the ledger.
func (l *Local) PlanEvents(ctx context.Context) ([]Event, string, error) {
	if err := l.checkSafe(); err != nil {
		return nil, "", err
	}
	f, err := os.Open(l.ledgerPath())
	if errors.Is(err, fs.ErrNotExist) {
		events, err := l.Events(ctx)
		return events, Head(events), err
	}
	if err != nil {
		return nil, "", fmt.Errorf("read ledger: %w", err)
	}
	defer f.Close()
	if err := flockWait(ctx, f, false); err != nil {
		return nil, "", fmt.Errorf("read ledger %s: %w", l.ledgerPath(), err)
	}
	defer unlockFile(f)
	l.removeStaleTemps()
	fi, err := f.Stat()
	if err != nil {
		return nil, "", fmt.Errorf("read ledger: %w", err)
	}
	size := fi.Size()
	head, err := l.readHead(size > 0)
	if err != nil {
		return nil, "", err
	}
	if hdr, kept, ok := l.readSnapshot(); ok && head != nil {
		if events, headHash, ok := l.readTailFrom(f, size, *head, hdr, kept); ok {
			return events, headHash, nil
		}
	}
	data, err := io.ReadAll(io.NewSectionReader(f, 0, size))
	if err != nil {
		return nil, "", fmt.Errorf("read ledger %s: %w", l.ledgerPath(), err)
	}
	events, err := parseLedger(data, head)
	if err != nil {
		return nil, "", err
	}
	compact := CompactForReplay(events)
	l.writeSnapshot(compact, data)
	return compact, Head(events), nil
}

// readTailFrom verifies the snapshot's event in place and the events after
// it. ok is false when the snapshot cannot be used: the caller then reads
// the whole ledger, which names any fault precisely.
func (l *Local) readTailFrom(f *os.File, size int64, head headRecord, hdr snapshotHeader, kept []Event) ([]Event, string, bool) {
	if hdr.LineStart < 0 || hdr.Offset <= hdr.LineStart || hdr.Offset > size || head.Seq < hdr.Seq {
		return nil, "", false
	}
	start := hdr.LineStart
	if start > 0 {
		start-- // the newline ending the line before: the offset is a line start
	}
	data := make([]byte, size-start)
	if _, err := f.ReadAt(data, start); err != nil {
		return nil, "", false
	}
	if hdr.LineStart > 0 {
		if data[0] != '\n' {
			return nil, "", false
		}
		data = data[1:]
	}
	n := hdr.Offset - hdr.LineStart
	if data[n-1] != '\n' {
		return nil, "", false
	}
	own := data[:n-1]
	e, cerr := parseLine(own, hdr.Seq, int(hdr.Seq))
	if cerr != nil || e.Seq != hdr.Seq || e.Hash != hdr.Hash || !storedHashOK(e, own) {
		return nil, "", false
	}
	// Every byte before the checkpoint is still what was verified: an edit
	// in the middle sends the plan to the full read, which names it.
	prefix := sha256.New()
	if _, err := io.Copy(prefix, io.NewSectionReader(f, 0, hdr.Offset)); err != nil || hex.EncodeToString(prefix.Sum(nil)) != hdr.Prefix {
		return nil, "", false
	}
	lines, tornAt := splitLines(data[n:])
	if tornAt >= 0 {
		return nil, "", false
	}
	tail, cerr := parseLines(lines, hdr.Seq, hdr.Hash)
	if cerr != nil {
		return nil, "", false
	}
	last := Checkpoint{Seq: hdr.Seq, Hash: hdr.Hash}
	if len(tail) > 0 {
		last = Checkpoint{Seq: tail[len(tail)-1].Seq, Hash: tail[len(tail)-1].Hash}
	}
	// ledger.head must be the snapshot's event or one after it.
	switch {
	case head.Seq > last.Seq:
		return nil, "", false
	case head.Seq == hdr.Seq && head.Hash != hdr.Hash:
		return nil, "", false
	case head.Seq > hdr.Seq && tail[head.Seq-hdr.Seq-1].Hash != head.Hash:
		return nil, "", false
	}
	events := append(kept, tail...)
	if len(tail) >= snapshotRefresh {
		events = CompactForReplay(events)
		prefix.Write(data[n:]) // the whole file now: the new checkpoint's prefix
		l.writeSnapshotAt(events, last, size-int64(len(lines[len(lines)-1]))-1, size, hex.EncodeToString(prefix.Sum(nil)))
	}
	return events, last.Hash, true
}

// readSnapshot reads snapshot.json; ok is false when there is none or it
// cannot be used (another format, damaged, an event whose hash does not
// match its content).
func (l *Local) readSnapshot() (snapshotHeader, []Event, bool) {
	var hdr snapshotHeader
	data, err := os.ReadFile(l.snapshotPath())
	if err != nil {
		return hdr, nil, false
	}
	lines, tornAt := splitLines(data)
	if tornAt >= 0 || len(lines) == 0 {
		return hdr, nil, false
	}
	dec := json.NewDecoder(bytes.NewReader(lines[0]))
	dec.DisallowUnknownFields()
	if dec.Decode(&hdr) != nil || hdr.Format != snapshotFormat || hdr.Seq < 1 || hdr.Events != len(lines)-1 {
		return hdr, nil, false
	}
	kept := make([]Event, 0, len(lines)-1)
	var prev int64
	for _, raw := range lines[1:] {
		e, cerr := parseLine(raw, prev+1, 0)
		if cerr != nil || e.Seq <= prev || e.Seq > hdr.Seq || !storedHashOK(e, raw) {
			return hdr, nil, false
		}
		prev = e.Seq
		kept = append(kept, e)
	}
	return hdr, kept, true
}

// writeSnapshot records the compaction of a fully verified ledger (data is
// its content). Best effort: a state directory that cannot be written
// (a read-only audit copy) only keeps plans on the full read.
func (l *Local) writeSnapshot(compact []Event, data []byte) {
	if len(data) == 0 {
		return
	}
	body := data[:len(data)-1]
	lastLine := body[bytes.LastIndexByte(body, '\n')+1:]
	e, ok := decodeEventFast(lastLine)
	if !ok {
		return
	}
	sum := sha256.Sum256(data)
	l.writeSnapshotAt(compact, Checkpoint{Seq: e.Seq, Hash: e.Hash}, int64(len(data)-len(lastLine)-1), int64(len(data)), hex.EncodeToString(sum[:]))
}

func (l *Local) writeSnapshotAt(compact []Event, at Checkpoint, lineStart, offset int64, prefix string) {
	hdr, err := json.Marshal(snapshotHeader{Format: snapshotFormat, Seq: at.Seq, Hash: at.Hash, LineStart: lineStart, Offset: offset, Prefix: prefix, Events: len(compact)})
	if err != nil {
		return
	}
	buf := append(hdr, '\n')
	for _, e := range compact {
		line, err := EncodeEvent(e)
		if err != nil {
			return
		}
		buf = append(append(buf, line...), '\n')
	}
	_ = writeFileAtomic(l.snapshotPath(), buf, 0o600, nil)
}

// checkSnapshot is the full read's proof of the snapshot: when it is of
// this format and its event is in the (verified) ledger, what it holds
// must be what CompactForReplay derives from the ledger up to that event.
// It returns whether the snapshot is current enough to keep.
func (l *Local) checkSnapshot(events []Event) (fresh bool, err error) {
	data, err := os.ReadFile(l.snapshotPath())
	if err != nil {
		return false, nil
	}
	nl := bytes.IndexByte(data, '\n')
	if nl < 0 {
		return false, nil
	}
	var hdr snapshotHeader
	dec := json.NewDecoder(bytes.NewReader(data[:nl]))
	dec.DisallowUnknownFields()
	if dec.Decode(&hdr) != nil || hdr.Format != snapshotFormat || hdr.Seq < 1 ||
		hdr.Seq > int64(len(events)) || events[hdr.Seq-1].Hash != hdr.Hash {
		return false, nil // not usable by a plan either: rewritten below
	}
	// The events are verified, so comparing their canonical lines with the
	// snapshot's is comparing the events themselves.
	want := CompactForReplay(events[:hdr.Seq])
	rest := data[nl+1:]
	same := hdr.Events == len(want)
	buf := make([]byte, 0, 1024)
	for i := 0; same && i < len(want); i++ {
		line, err := EncodeEvent(want[i])
		if err != nil {
			return false, err
		}
		buf = append(append(buf[:0], line...), '\n')
		same = bytes.HasPrefix(rest, buf)
		rest = rest[min(len(buf), len(rest)):]
	}
	if !same || len(rest) != 0 {
		return false, &ChainError{Seq: hdr.Seq, Line: int(hdr.Seq), Reason: fmt.Sprintf(
			"%s, the verified summary of the ledger up to this event that plans read instead of the whole ledger, does not match the ledger: it was edited outside jitform. "+
				"Delete %s; the next plan rebuilds it from the verified ledger", SnapshotFileName, l.snapshotPath())}
	}
	return int64(len(events))-hdr.Seq < snapshotRefresh, nil
}
