// Package filememo keeps the grant signatures that verified (grants.Memo)
// in a directory, for plans and applies run as separate processes. It is
// off unless JITFORM_VERIFY_CACHE names the directory.
//
// An entry that says "this signature verified" lets whoever wrote it make
// a forged grant count, so each entry is authenticated with HMAC-SHA256
// under a secret kept beside it (32 random bytes, mode 0600), and the
// directory must be one only its owner can write: not a symbolic link, not
// writable by group or others, nor is any directory above it (unless
// sticky, as /tmp). The memo is then as trusted as that directory, which is
// why it must never be the state directory, nor a CI cache a pull request
// can write. An entry whose MAC does not check, a truncated or garbage
// file: the entry is ignored and its signature verified again; the plan
// never fails for it.
package filememo

import (
	"bufio"
	"bytes"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/jitform/jitform/internal/grants"
	"github.com/jitform/jitform/state"
)

// EnvVar names the directory of the memo; unset or empty: no memo.
const EnvVar = "JITFORM_VERIFY_CACHE"

// File names inside the directory.
const (
	SecretFileName  = "secret"
	EntriesFileName = "verified"
)

const (
	secretSize = 32
	header     = "jitform verified signatures v1"
	macDomain  = "jitform-verify-memo-entry-v1\x00"
	// maxFileSize bounds what is read: a ledger of a million grant events
	// is about 200 MB of entries; anything larger is not ours.
	maxFileSize = 256 << 20
)

// UnsafeError is a memo directory or secret that others could write (or
// read, for the secret): using it would let them make forged grants count.
type UnsafeError struct {
	Path   string
	Reason string
	Fix    string
}

func (e *UnsafeError) Error() string {
	return fmt.Sprintf("refusing the verified-signature cache at %s (%s): %s; it would let others make forged grants count. Fix: %s, or unset %s",
		e.Path, EnvVar, e.Reason, e.Fix, EnvVar)
}

// Memo is a grants.Memo read from and saved to a directory.
type Memo struct {
	dir    string
	secret []byte

	mu      sync.Mutex
	stored  map[grants.MemoKey]string              // entries read, not yet checked: the line
	used    map[grants.MemoKey]state.SignatureInfo // checked or added in this process
	read    int                                    // entries in the file read
	changed bool                                   // an entry was added or one read was bad
}

// Open opens (creating it and its secret if needed) the memo in dir. An
// unsafe directory or secret is an *UnsafeError; unreadable entries are
// not an error.
func Open(dir string) (*Memo, error) {
	if dir == "" {
		return nil, errors.New("verified-signature cache: no directory")
	}
	dir, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("verified-signature cache %s: %w", dir, err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create the verified-signature cache directory: %w", err)
	}
	if err := checkDir(dir); err != nil {
		return nil, err
	}
	secret, err := readSecret(filepath.Join(dir, SecretFileName))
	if err != nil {
		return nil, err
	}
	m := &Memo{dir: dir, secret: secret, stored: map[grants.MemoKey]string{}, used: map[grants.MemoKey]state.SignatureInfo{}}
	m.load()
	return m, nil
}

// Dir is the memo's directory.
func (m *Memo) Dir() string { return m.dir }

// checkDir refuses a directory others can write or redirect, and one below
// a directory others can write without the sticky bit (they could move it
// away and put their own in its place).
func checkDir(dir string) error {
	fi, err := os.Lstat(dir)
	if err != nil {
		return fmt.Errorf("check the verified-signature cache directory: %w", err)
	}
	if fi.Mode()&fs.ModeSymlink != 0 {
		target, _ := os.Readlink(dir)
		return &UnsafeError{Path: dir, Reason: fmt.Sprintf("it is a symbolic link (to %s)", target),
			Fix: "name the real directory"}
	}
	if !fi.IsDir() {
		return &UnsafeError{Path: dir, Reason: fmt.Sprintf("it is not a directory (mode %s)", fi.Mode()), Fix: "name a directory"}
	}
	if writableByOthers(fi.Mode()) {
		return &UnsafeError{Path: dir, Reason: fmt.Sprintf("it is writable by group or others (mode %04o)", fi.Mode().Perm()),
			Fix: "chmod 700 " + dir}
	}
	parent, err := filepath.EvalSymlinks(filepath.Dir(dir))
	if err != nil {
		return fmt.Errorf("check the verified-signature cache directory: %w", err)
	}
	for p := parent; ; p = filepath.Dir(p) {
		fi, err := os.Stat(p)
		if err != nil {
			return fmt.Errorf("check the verified-signature cache directory: %w", err)
		}
		if writableByOthers(fi.Mode()) && fi.Mode()&fs.ModeSticky == 0 {
			return &UnsafeError{Path: dir, Reason: fmt.Sprintf("%s above it is writable by group or others (mode %04o) without the sticky bit", p, fi.Mode().Perm()),
				Fix: "put the cache in a directory only you can write (for example under your home directory)"}
		}
		if up := filepath.Dir(p); up == p {
			return nil
		}
	}
}

// writableByOthers: Windows has no such bits (ACLs there are the
// administrator's to set), as for the state directory.
func writableByOthers(m fs.FileMode) bool {
	return runtime.GOOS != "windows" && m.Perm()&0o022 != 0
}

// readSecret reads the secret, or makes it when there is none.
func readSecret(path string) ([]byte, error) {
	fi, err := os.Lstat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return makeSecret(path)
	}
	if err != nil {
		return nil, fmt.Errorf("read the verified-signature cache secret: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return nil, &UnsafeError{Path: path, Reason: fmt.Sprintf("the secret is not a regular file (mode %s)", fi.Mode()),
			Fix: "rm " + path + " (a new one is made; every signature is verified once again)"}
	}
	if runtime.GOOS != "windows" && fi.Mode().Perm()&0o077 != 0 {
		return nil, &UnsafeError{Path: path, Reason: fmt.Sprintf("the secret is readable or writable by group or others (mode %04o)", fi.Mode().Perm()),
			Fix: "rm " + path + " (a new one is made; every signature is verified once again)"}
	}
	secret, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read the verified-signature cache secret: %w", err)
	}
	if len(secret) != secretSize {
		return nil, &UnsafeError{Path: path, Reason: fmt.Sprintf("the secret is %d bytes, not %d", len(secret), secretSize),
			Fix: "rm " + path + " (a new one is made; every signature is verified once again)"}
	}
	return secret, nil
}

// makeSecret writes a new secret beside path and links it into place, so a
// concurrent process never reads a half-written one: the first link wins
// and the loser reads the winner's.
func makeSecret(path string) ([]byte, error) {
	secret := make([]byte, secretSize)
	if _, err := rand.Read(secret); err != nil {
		return nil, fmt.Errorf("make the verified-signature cache secret: %w", err)
	}
	tmp, err := writeTemp(filepath.Dir(path), filepath.Base(path), secret)
	if err != nil {
		return nil, fmt.Errorf("make the verified-signature cache secret: %w", err)
	}
	defer os.Remove(tmp)
	err = os.Link(tmp, path)
	if errors.Is(err, fs.ErrExist) {
		return readSecret(path)
	}
	if err != nil {
		// No hard links here: a rename may replace a secret another
		// process just made, which only costs its entries (verified again).
		if err := os.Rename(tmp, path); err != nil {
			return nil, fmt.Errorf("make the verified-signature cache secret: %w", err)
		}
	}
	return secret, nil
}

// writeTemp writes data to a new mode-0600 file in dir, synced, and
// returns its name.
func writeTemp(dir, base string, data []byte) (string, error) {
	f, err := os.CreateTemp(dir, "."+base+".tmp*")
	if err != nil {
		return "", err
	}
	name := f.Name()
	err = f.Chmod(0o600)
	if err == nil {
		_, err = f.Write(data)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(name)
		return "", err
	}
	return name, nil
}

// load reads the entries file. Whatever cannot be read is left out: its
// signatures are verified again.
func (m *Memo) load() {
	path := filepath.Join(m.dir, EntriesFileName)
	fi, err := os.Lstat(path)
	if err != nil || !fi.Mode().IsRegular() || fi.Size() > maxFileSize {
		m.changed = err == nil // something is there that is not ours: replace it
		return
	}
	f, err := os.Open(path)
	if err != nil {
		return
	}
	defer f.Close()
	sc := bufio.NewScanner(io.LimitReader(f, maxFileSize))
	if !sc.Scan() || sc.Text() != header {
		m.changed = true
		return
	}
	for sc.Scan() {
		line := sc.Text()
		k, ok := lineKey(line)
		if !ok {
			m.changed = true
			continue
		}
		m.stored[k] = line
		m.read++
	}
	if sc.Err() != nil {
		m.changed = true // a line too long, or a read error: rewrite it
	}
}

// lineKey is the memo key an entry line names.
func lineKey(line string) (grants.MemoKey, bool) {
	var k grants.MemoKey
	h, _, ok := strings.Cut(line, " ")
	if !ok || len(h) != 2*len(k) {
		return k, false
	}
	if _, err := hex.Decode(k[:], []byte(h)); err != nil {
		return k, false
	}
	return k, true
}

// An entry line is
//
//	<key hex> <key type> <security key 0|1> <flags hex> <counter> <mac hex>
//
// where mac is HMAC-SHA256(secret, macDomain || key || the info, encoded
// by macInput).
func (m *Memo) line(k grants.MemoKey, info state.SignatureInfo) string {
	sk := "0"
	if info.SecurityKey {
		sk = "1"
	}
	return fmt.Sprintf("%x %s %s %02x %d %x", k[:], info.KeyType, sk, info.Flags, info.Counter, m.mac(k, info))
}

func (m *Memo) mac(k grants.MemoKey, info state.SignatureInfo) []byte {
	h := hmac.New(sha256.New, m.secret)
	h.Write([]byte(macDomain))
	h.Write(k[:])
	var n [4]byte
	binary.BigEndian.PutUint32(n[:], uint32(len(info.KeyType)))
	h.Write(n[:])
	h.Write([]byte(info.KeyType))
	sk := byte(0)
	if info.SecurityKey {
		sk = 1
	}
	h.Write([]byte{sk, info.Flags})
	binary.BigEndian.PutUint32(n[:], info.Counter)
	h.Write(n[:])
	return h.Sum(nil)
}

// parse checks an entry line's MAC and returns its info.
func (m *Memo) parse(k grants.MemoKey, line string) (state.SignatureInfo, bool) {
	f := strings.Split(line, " ")
	if len(f) != 6 || (f[2] != "0" && f[2] != "1") {
		return state.SignatureInfo{}, false
	}
	flags, err := strconv.ParseUint(f[3], 16, 8)
	if err != nil {
		return state.SignatureInfo{}, false
	}
	counter, err := strconv.ParseUint(f[4], 10, 32)
	if err != nil {
		return state.SignatureInfo{}, false
	}
	got, err := hex.DecodeString(f[5])
	if err != nil {
		return state.SignatureInfo{}, false
	}
	info := state.SignatureInfo{KeyType: f[1], SecurityKey: f[2] == "1", Flags: byte(flags), Counter: uint32(counter)}
	if !hmac.Equal(got, m.mac(k, info)) {
		return state.SignatureInfo{}, false
	}
	return info, true
}

// Lookup implements grants.Memo: an entry counts only when its MAC checks.
func (m *Memo) Lookup(k grants.MemoKey) (state.SignatureInfo, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if info, ok := m.used[k]; ok {
		return info, true
	}
	line, ok := m.stored[k]
	if !ok {
		return state.SignatureInfo{}, false
	}
	delete(m.stored, k)
	info, ok := m.parse(k, line)
	if !ok {
		m.changed = true
		return state.SignatureInfo{}, false
	}
	m.used[k] = info
	return info, true
}

// Add implements grants.Memo.
func (m *Memo) Add(k grants.MemoKey, info state.SignatureInfo) {
	if strings.ContainsAny(info.KeyType, " \r\n") || info.KeyType == "" {
		return // not a key type an entry line can carry; verified again next time
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.used[k]; !ok {
		m.used[k] = info
		m.changed = true
	}
}

// Save replaces the entries file with the entries this process used or
// added (so it never outgrows the ledger replayed), atomically: a temporary
// file renamed over it. It writes nothing when that is what the file holds.
func (m *Memo) Save() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.changed && len(m.used) == m.read {
		return nil
	}
	keys := make([]grants.MemoKey, 0, len(m.used))
	for k := range m.used {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b grants.MemoKey) int { return bytes.Compare(a[:], b[:]) })
	var b bytes.Buffer
	b.WriteString(header + "\n")
	for _, k := range keys {
		b.WriteString(m.line(k, m.used[k]))
		b.WriteByte('\n')
	}
	path := filepath.Join(m.dir, EntriesFileName)
	tmp, err := writeTemp(m.dir, EntriesFileName, b.Bytes())
	if err != nil {
		return fmt.Errorf("save the verified-signature cache: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("save the verified-signature cache: %w", err)
	}
	m.read, m.changed = len(m.used), false
	return nil
}
