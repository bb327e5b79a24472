package state

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"time"
)

// File names inside the state directory.
const (
	StateDirName   = ".jitform"
	LedgerFileName = "ledger.jsonl"
	HeadFileName   = "ledger.head"
	LockFileName   = "lock"
)

// Local is the default backend: files in DIR/.jitform/ beside the config.
// Appends from several goroutines or processes are serialised with flock
// on the ledger file; the state lock is a separate flock on .jitform/lock.
type Local struct {
	dir string // DIR/.jitform
	now func() time.Time
	// crash, set only by tests, is called at the points where a crash
	// leaves the files in a distinct state ("torn": the new lines written but
	// for the end of the last; "before-head": lines durable, head not yet recorded).
	crash func(point string)
}

var _ Backend = (*Local)(nil)

// NewLocal opens the state of the config directory dir. The state
// directory is created on the first write.
func NewLocal(dir string) (*Local, error) {
	fi, err := os.Stat(dir)
	if err != nil {
		return nil, fmt.Errorf("open state: %w", err)
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("open state: %s is not a directory", dir)
	}
	l := &Local{dir: filepath.Join(dir, StateDirName), now: time.Now}
	if err := l.checkSafe(); err != nil {
		return nil, err
	}
	return l, nil
}

// Init creates the state directory (mode 0700) if it does not exist, for
// `jitform init`. Nothing else needs it: the first write creates it too.
func (l *Local) Init(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return l.ensureDir()
}

// Dir is the state directory (DIR/.jitform).
func (l *Local) Dir() string { return l.dir }

func (l *Local) ledgerPath() string { return filepath.Join(l.dir, LedgerFileName) }
func (l *Local) headPath() string   { return filepath.Join(l.dir, HeadFileName) }
func (l *Local) lockPath() string   { return filepath.Join(l.dir, LockFileName) }

// Events reads and verifies the whole ledger. A missing ledger is empty.
// It holds a shared flock while reading, so it never sees half an append.
// It also proves the plan snapshot against the verified events and renews
// it when it is missing or far behind (snapshot.go).
func (l *Local) Events(ctx context.Context) ([]Event, error) {
	return l.readVerified(ctx, func(events []Event, data []byte) error {
		// A full read proves the snapshot plans read (snapshot.go), and
		// renews it when it is missing or far behind, still under the
		// shared flock.
		fresh, err := l.checkSnapshot(events)
		if err != nil {
			return err
		}
		if !fresh {
			l.writeSnapshot(CompactForReplay(events), data)
		}
		return nil
	})
}

// AuditEvents reads and verifies the whole ledger exactly as Events does
// (every event's hash and link, and the head), and neither checks nor
// writes the plan snapshot: a reader that needs every event and changes
// nothing (the exposure report) skips a third of the read's cost. ledger
// verify and plans keep proving the snapshot.
func (l *Local) AuditEvents(ctx context.Context) ([]Event, error) {
	return l.readVerified(ctx, nil)
}

// AuditReader is implemented by backends with a cheaper verified read for
// readers that write nothing (see Local.AuditEvents).
type AuditReader interface {
	AuditEvents(ctx context.Context) ([]Event, error)
}

// readVerified reads and verifies the whole ledger; then, still holding
// the shared flock, it calls locked (if set) with the events and the file's
// bytes.
func (l *Local) readVerified(ctx context.Context, locked func([]Event, []byte) error) ([]Event, error) {
	if err := l.checkSafe(); err != nil {
		return nil, err
	}
	f, err := os.Open(l.ledgerPath())
	if errors.Is(err, fs.ErrNotExist) {
		// No ledger is an empty one, unless a head says events existed.
		head, herr := l.readHead(false)
		if herr != nil {
			return nil, herr
		}
		if head != nil && head.Seq > 0 {
			return nil, &ChainError{Seq: 1, Line: 1, Reason: fmt.Sprintf("ledger.jsonl is missing but ledger.head records %d event(s): the ledger was deleted", head.Seq)}
		}
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read ledger: %w", err)
	}
	defer f.Close()
	if err := flockWait(ctx, f, false); err != nil {
		return nil, fmt.Errorf("read ledger %s: %w", l.ledgerPath(), err)
	}
	defer unlockFile(f)
	// No append runs while a shared flock is held, so any temporary head
	// file is left over from a killed append.
	l.removeStaleTemps()
	data, err := readFile(f)
	if err != nil {
		return nil, fmt.Errorf("read ledger %s: %w", l.ledgerPath(), err)
	}
	head, err := l.readHead(len(data) > 0)
	if err != nil {
		return nil, err
	}
	events, err := parseLedger(data, head)
	if err != nil {
		return nil, err
	}
	if locked != nil {
		if err := locked(events, data); err != nil {
			return nil, err
		}
	}
	return events, nil
}

// readFile reads f to its end into one buffer of the file's size: the
// ledger is hundreds of MB, which io.ReadAll would copy as it grows.
func readFile(f *os.File) ([]byte, error) {
	size := 512
	if fi, err := f.Stat(); err == nil && fi.Size() > 0 && int64(int(fi.Size())) == fi.Size() {
		size = int(fi.Size()) + 1 // +1: EOF is seen without growing
	}
	data := make([]byte, 0, size)
	for {
		n, err := f.Read(data[len(data):cap(data)])
		data = data[:len(data)+n]
		if errors.Is(err, io.EOF) {
			return data, nil
		}
		if err != nil {
			return nil, err
		}
		if len(data) == cap(data) {
			data = append(data, 0)[:len(data)]
		}
	}
}

// readHead reads ledger.head. A missing head beside a non-empty ledger is
// a chain error: without it a truncated ledger looks whole.
func (l *Local) readHead(ledgerHasData bool) (*headRecord, error) {
	b, err := os.ReadFile(l.headPath())
	if errors.Is(err, fs.ErrNotExist) {
		if !ledgerHasData {
			return nil, nil
		}
		return nil, &ChainError{Seq: 1, Line: 1, Reason: "ledger.head is missing, so events removed from the end of the ledger could not be detected. " +
			"If ledger.jsonl is a trusted copy, write its last event's seq and hash to .jitform/ledger.head as {\"seq\":N,\"hash\":\"...\"}"}
	}
	if err != nil {
		return nil, fmt.Errorf("read ledger head: %w", err)
	}
	var h headRecord
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&h); err != nil {
		return nil, &ChainError{Seq: 1, Line: 1, Reason: fmt.Sprintf("ledger.head is not a valid head record (%v): it was edited or damaged", err)}
	}
	return &h, nil
}

// writeHead replaces ledger.head atomically and durably.
func (l *Local) writeHead(h headRecord) error {
	b, err := json.Marshal(h)
	if err != nil {
		return err
	}
	return writeFileAtomic(l.headPath(), append(b, '\n'), 0o600, func() {
		if l.crash != nil {
			l.crash("head-tmp")
		}
	})
}

// ensureDir creates the state directory (0700) and makes its creation
// durable.
// It refuses a state directory that is not safe to trust (checkSafe).
func (l *Local) ensureDir() error {
	if _, err := os.Lstat(l.dir); err == nil {
		return l.checkSafe()
	}
	if err := os.Mkdir(l.dir, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("create state directory: %w", err)
	}
	if err := l.checkSafe(); err != nil {
		return err
	}
	return syncDir(filepath.Dir(l.dir))
}

// Append adds events after the current head. Under an exclusive flock on
// the ledger it re-reads the tail (the last line and the head record),
// checks it, writes the new lines in one write, fsyncs, and only then
// records the new head and returns. It returns the events as stored.
func (l *Local) Append(ctx context.Context, events ...Event) ([]Event, error) {
	if len(events) == 0 {
		return nil, nil
	}
	if err := l.ensureDir(); err != nil {
		return nil, err
	}
	path := l.ledgerPath()
	_, statErr := os.Stat(path)
	created := errors.Is(statErr, fs.ErrNotExist)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open ledger: %w", err)
	}
	defer f.Close()
	if err := flockWait(ctx, f, true); err != nil {
		return nil, fmt.Errorf("append to ledger %s: %w", path, err)
	}
	defer unlockFile(f)
	// Under the exclusive flock no other append is writing a head, so a
	// temporary head file is what a killed append left behind.
	l.removeStaleTemps()

	last, size, err := l.readTail(f)
	if err != nil {
		return nil, err
	}
	if size == 0 {
		// A fresh ledger gets an empty head first, so a missing head
		// always means a deleted one.
		if _, err := os.Stat(l.headPath()); errors.Is(err, fs.ErrNotExist) {
			if err := l.writeHead(headRecord{}); err != nil {
				return nil, fmt.Errorf("append to ledger: write head: %w", err)
			}
		}
	}
	if created {
		if err := syncDir(l.dir); err != nil {
			return nil, err
		}
	}

	now := l.now()
	out := make([]Event, 0, len(events))
	var buf bytes.Buffer
	seq, prev := last.Seq, last.Hash
	for _, e := range events {
		seq++
		stored, line, err := prepareEvent(e, seq, prev, now)
		if err != nil {
			return nil, fmt.Errorf("append to ledger: %w", err)
		}
		buf.Write(line)
		buf.WriteByte('\n')
		out = append(out, stored)
		prev = stored.Hash
	}
	data := buf.Bytes()
	if l.crash != nil {
		part := data[:len(data)-len(data)/4] // ends inside the last line
		if _, err := f.WriteAt(part, size); err == nil && f.Sync() == nil {
			l.crash("torn")
		}
	}
	if _, err := f.WriteAt(data, size); err != nil {
		// A short write (disk full) must not leave a torn line behind.
		return nil, fmt.Errorf("append to ledger %s: %w", path, errors.Join(err, f.Truncate(size)))
	}
	if err := f.Sync(); err != nil {
		// The lines may or may not be durable: cut them so that no later
		// reader trusts events whose Append reported failure.
		return nil, fmt.Errorf("append to ledger %s: fsync: %w", path, errors.Join(err, f.Truncate(size)))
	}
	if l.crash != nil {
		l.crash("before-head")
	}
	if err := l.writeHead(headRecord{Seq: seq, Hash: prev}); err != nil {
		return nil, fmt.Errorf("append to ledger: record head: %w", err)
	}
	return out, nil
}

// readTail returns the last event (zero for an empty ledger) and the file
// size, checked against the head record. It reads only the end of the file:
// the full chain is verified by Events, which plan and apply run first.
func (l *Local) readTail(f *os.File) (Event, int64, error) {
	fi, err := f.Stat()
	if err != nil {
		return Event{}, 0, fmt.Errorf("append to ledger: %w", err)
	}
	size := fi.Size()
	head, err := l.readHead(size > 0)
	if err != nil {
		return Event{}, 0, err
	}
	if size == 0 {
		if head != nil && head.Seq != 0 {
			return Event{}, 0, &ChainError{Seq: 1, Line: 1, Reason: fmt.Sprintf("the ledger is empty but ledger.head records event %d: events were removed", head.Seq)}
		}
		return Event{}, 0, nil
	}
	line, err := lastLine(f, size)
	if err != nil {
		return Event{}, 0, err
	}
	if line == nil {
		// Torn tail: let the full parser name it precisely.
		data, rerr := io.ReadAll(io.NewSectionReader(f, 0, size))
		if rerr != nil {
			return Event{}, 0, fmt.Errorf("append to ledger: %w", rerr)
		}
		_, perr := parseLedger(data, head)
		if perr == nil {
			perr = errors.New("append to ledger: the last line has no newline")
		}
		return Event{}, 0, perr
	}
	var e Event
	if err := json.Unmarshal(line, &e); err != nil || e.Seq <= 0 {
		return Event{}, 0, &ChainError{Seq: e.Seq, Line: int(e.Seq), Reason: "the last line is not a valid event; run `jitform ledger verify`"}
	}
	if cerr := checkTailEvent(e, line); cerr != nil {
		return Event{}, 0, cerr
	}
	switch {
	case head.Seq > e.Seq:
		return Event{}, 0, &ChainError{Seq: e.Seq + 1, Line: int(e.Seq) + 1, Reason: fmt.Sprintf("the ledger ends at event %d but ledger.head records event %d: events were removed from the end of the ledger", e.Seq, head.Seq)}
	case head.Seq == e.Seq && head.Hash != e.Hash:
		return Event{}, 0, &ChainError{Seq: e.Seq, Line: int(e.Seq), Reason: "the last event's hash differs from the one recorded in ledger.head: the ledger was rewritten"}
	}
	return e, size, nil
}

// checkTailEvent checks that the last line is canonical and self-consistent.
func checkTailEvent(e Event, raw []byte) *ChainError {
	enc, err := EncodeEvent(e)
	if err != nil || !bytes.Equal(enc, raw) {
		return &ChainError{Seq: e.Seq, Line: int(e.Seq), Reason: "the last line is not in canonical form: it was edited outside jitform; run `jitform ledger verify`"}
	}
	h, err := HashEvent(e)
	if err != nil || h != e.Hash {
		return &ChainError{Seq: e.Seq, Line: int(e.Seq), Reason: "the last event's hash does not match its content: it was edited; run `jitform ledger verify`"}
	}
	return nil
}

// lastLine returns the last complete line of a file of the given size
// (without its newline), or nil when the file does not end in a newline.
func lastLine(f *os.File, size int64) ([]byte, error) {
	chunk := int64(8 << 10)
	for {
		if chunk > size {
			chunk = size
		}
		buf := make([]byte, chunk)
		if _, err := f.ReadAt(buf, size-chunk); err != nil && !errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("append to ledger: read tail: %w", err)
		}
		if buf[len(buf)-1] != '\n' {
			return nil, nil
		}
		body := buf[:len(buf)-1]
		if i := bytes.LastIndexByte(body, '\n'); i >= 0 {
			return body[i+1:], nil
		}
		if chunk == size {
			return body, nil
		}
		chunk *= 4
	}
}

// flockWait takes a file lock (shared or exclusive), polling so that ctx
// can cancel the wait (a blocking flock cannot be interrupted).
func flockWait(ctx context.Context, f *os.File, exclusive bool) error {
	delay := time.Millisecond
	for {
		ok, err := tryLock(f, exclusive)
		if err != nil {
			return fmt.Errorf("lock %s: %w", f.Name(), err)
		}
		if ok {
			return nil
		}
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
		if delay < 20*time.Millisecond {
			delay *= 2
		}
	}
}

// writeFileAtomic writes data to a temporary file in path's directory,
// fsyncs it, renames it over path and fsyncs the directory: readers see the
// old or the new content, never a mix.
// beforeRename, when not nil, runs with the temporary file durable and not
// yet renamed (tests crash there).
func writeFileAtomic(path string, data []byte, perm fs.FileMode, beforeRename func()) error {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	name := tmp.Name()
	ok := false
	defer func() {
		if !ok {
			tmp.Close()
			os.Remove(name)
		}
	}()
	if err := tmp.Chmod(perm); err != nil {
		return err
	}
	if _, err := tmp.Write(data); err != nil {
		return err
	}
	if err := tmp.Sync(); err != nil {
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if beforeRename != nil {
		beforeRename()
	}
	if err := os.Rename(name, path); err != nil {
		return err
	}
	ok = true
	return syncDir(dir)
}

// syncDir makes a directory's entries (a created or renamed file) durable.
func syncDir(dir string) error {
	if runtime.GOOS == "windows" {
		return nil // NTFS journals renames; directories cannot be fsynced there
	}
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("sync directory %s: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync directory %s: %w", dir, err)
	}
	return nil
}

// Empty reports whether the ledger holds no events yet (no state directory,
// no ledger file, or an empty one). It only looks at the file's size: Events
// verifies.
func (l *Local) Empty() (bool, error) {
	fi, err := os.Stat(l.ledgerPath())
	if errors.Is(err, fs.ErrNotExist) {
		return true, nil
	}
	if err != nil {
		return false, fmt.Errorf("read ledger: %w", err)
	}
	return fi.Size() == 0, nil
}

// UnsafeStateError is a state directory or file that jitform refuses to
// trust, as ssh refuses a private key others can write: whoever can write
// the ledger can rewrite what jitform knows it added.
type UnsafeStateError struct {
	Path   string // the offending path
	Reason string
	Fix    string // the command that repairs it
}

func (e *UnsafeStateError) Error() string {
	return fmt.Sprintf("refusing to use the state at %s: %s. Fix: %s", e.Path, e.Reason, e.Fix)
}

// stateFiles are the files whose mode is checked; any other entry of the
// state directory is only checked for being a symbolic link.
var stateFiles = []string{LedgerFileName, HeadFileName, LockFileName, SnapshotFileName}

// checkSafe refuses state that someone other than its owner could change
// or redirect: a .jitform that is a symbolic link, is not a directory or
// resolves outside the repository; any symbolic link inside it; a
// .jitform writable by group or others; a ledger, head or lock file that
// is not a regular file or is writable by group or others. A missing
// .jitform is fine (it is created 0700 on the first write).
func (l *Local) checkSafe() error {
	fi, err := os.Lstat(l.dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("check the state directory: %w", err)
	}
	repo := filepath.Dir(l.dir)
	if fi.Mode()&fs.ModeSymlink != 0 {
		target, _ := os.Readlink(l.dir)
		if !filepath.IsAbs(target) {
			target = filepath.Join(repo, target)
		}
		return &UnsafeStateError{Path: l.dir,
			Reason: fmt.Sprintf("it is a symbolic link (to %s); jitform keeps its state only in a real directory inside the repository, so that no link can redirect the ledger", target),
			Fix:    fmt.Sprintf("replace the link by the directory itself: rm %s && cp -a %s %s && chmod 700 %s", l.dir, target, l.dir, l.dir)}
	}
	if !fi.IsDir() {
		return &UnsafeStateError{Path: l.dir, Reason: fmt.Sprintf("it is not a directory (mode %s)", fi.Mode()),
			Fix: fmt.Sprintf("move it away; jitform creates %s (mode 0700) on its next write", l.dir)}
	}
	if realRepo, err := filepath.EvalSymlinks(repo); err == nil {
		if realDir, err := filepath.EvalSymlinks(l.dir); err == nil {
			if rel, err := filepath.Rel(realRepo, realDir); err != nil || rel != StateDirName {
				return &UnsafeStateError{Path: l.dir, Reason: fmt.Sprintf("it resolves to %s, outside the repository %s", realDir, realRepo),
					Fix: fmt.Sprintf("make %s a real directory inside the repository (mode 0700)", l.dir)}
			}
		}
	}
	if groupOrWorldWritable(fi.Mode()) {
		return &UnsafeStateError{Path: l.dir, Reason: fmt.Sprintf("it is writable by group or others (mode %04o): anyone who can write it can rewrite the ledger", fi.Mode().Perm()),
			Fix: "chmod 700 " + l.dir}
	}
	entries, err := os.ReadDir(l.dir)
	if err != nil {
		return fmt.Errorf("check the state directory: %w", err)
	}
	for _, e := range entries {
		p := filepath.Join(l.dir, e.Name())
		if e.Type()&fs.ModeSymlink != 0 {
			target, _ := os.Readlink(p)
			if !filepath.IsAbs(target) {
				target = filepath.Join(l.dir, target)
			}
			return &UnsafeStateError{Path: p,
				Reason: fmt.Sprintf("it is a symbolic link (to %s); every file of the state must be a regular file inside %s", target, l.dir),
				Fix:    fmt.Sprintf("replace the link by the file itself: cp --remove-destination %s %s && chmod 600 %s", target, p, p)}
		}
	}
	for _, name := range stateFiles {
		p := filepath.Join(l.dir, name)
		fi, err := os.Lstat(p)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return fmt.Errorf("check the state file: %w", err)
		}
		if !fi.Mode().IsRegular() {
			return &UnsafeStateError{Path: p, Reason: fmt.Sprintf("it is not a regular file (mode %s)", fi.Mode()),
				Fix: "restore it from a trusted copy as a regular file with mode 0600"}
		}
		if groupOrWorldWritable(fi.Mode()) {
			return &UnsafeStateError{Path: p, Reason: fmt.Sprintf("it is writable by group or others (mode %04o): anyone who can write it can rewrite the ledger", fi.Mode().Perm()),
				Fix: "chmod 600 " + p}
		}
	}
	return nil
}

// groupOrWorldWritable reports a mode others could write through. Windows
// has no such bits (ACLs there are the administrator's to set).
func groupOrWorldWritable(m fs.FileMode) bool {
	return runtime.GOOS != "windows" && m.Perm()&0o022 != 0
}

// staleTempPattern matches the temporary files writeHead renames over
// ledger.head; a SIGKILL between creating and renaming one leaves it.
const staleTempPattern = "." + HeadFileName + ".tmp*"

// removeStaleTemps deletes temporary head files left by killed appends.
// Callers hold the ledger flock (shared or exclusive), so no append is
// writing one. It is best effort: a read-only state directory keeps them,
// and they do no harm beyond the clutter.
func (l *Local) removeStaleTemps() {
	names, err := filepath.Glob(filepath.Join(l.dir, staleTempPattern))
	if err != nil {
		return
	}
	snaps, _ := filepath.Glob(filepath.Join(l.dir, "."+SnapshotFileName+".tmp*"))
	names = append(names, snaps...)
	for _, n := range names {
		if fi, err := os.Lstat(n); err == nil && fi.Mode().IsRegular() {
			_ = os.Remove(n)
		}
	}
}
