package grants

import (
	"crypto/sha256"
	"encoding/binary"
	"sync"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/jitform/jitform/state"
)

// Memo remembers signatures that verified, so that a process that replays
// the same ledger again (jitform run, every cycle) need not check them
// again. Only successful verifications are added: a failure is checked
// again every time. An implementation must be safe for concurrent use.
//
// A Memo is trusted like the key check it replaces: whoever can add an
// entry can make a forged signature count. MemoryMemo lives in the
// process's memory; a memo kept anywhere else must authenticate its
// entries with a secret the state's writers do not have (grants/filememo).
type Memo interface {
	Lookup(k MemoKey) (state.SignatureInfo, bool)
	Add(k MemoKey, info state.SignatureInfo)
}

// MemoKey names one verification: SHA-256 over a domain-separation prefix,
// the declared key's SHA256 fingerprint, every field the signed bytes are
// made of (state.Event.SignedData: type, actor, time as signed, payload as
// stored) and the armored signature, each length-prefixed. A changed
// ssh_key, payload, time, type, actor or signature is another key.
//
// The payload is hashed as stored rather than in its canonical form: the
// signed bytes are a function of these fields, so equal keys still mean
// equal signed bytes, and the key costs a hash instead of a JSON round
// trip (a payload stored in another form is merely verified again).
type MemoKey [sha256.Size]byte

// memoKeyDomain separates memo keys from every other SHA-256 jitform takes.
const memoKeyDomain = "jitform-verify-memo-key-v1\x00"

// MemoKeyOf is the memo key of checking ev's signature against pub.
func MemoKeyOf(pub ssh.PublicKey, ev state.Event) MemoKey {
	return memoKey(ssh.FingerprintSHA256(pub), ev)
}

func memoKey(fingerprint string, ev state.Event) MemoKey {
	h := sha256.New()
	var n [8]byte
	field := func(s string) {
		binary.BigEndian.PutUint64(n[:], uint64(len(s)))
		h.Write(n[:])
		h.Write([]byte(s))
	}
	h.Write([]byte(memoKeyDomain))
	field(fingerprint)
	field(ev.Type)
	field(ev.Actor)
	field(ev.Time.UTC().Format(time.RFC3339Nano))
	field(string(ev.Payload))
	field(ev.Sig)
	var k MemoKey
	h.Sum(k[:0])
	return k
}

// MemoryMemo is a Memo in the process's memory, which nothing outside the
// process can write: `jitform run` keeps one across its cycles. EndCycle
// bounds it to the entries the last cycle used.
type MemoryMemo struct {
	mu      sync.Mutex
	entries map[MemoKey]memoEntry
	gen     uint64
	cur     MemoStats
}

type memoEntry struct {
	info state.SignatureInfo
	gen  uint64 // the cycle that last used it
}

// MemoStats counts a cycle's use of a MemoryMemo.
type MemoStats struct {
	Hits    int // signatures not verified again
	Misses  int // looked up and not found: verified
	Added   int // verified and remembered
	Dropped int // not used in the cycle: forgotten at its end
	Size    int // entries kept
}

// NewMemoryMemo returns an empty in-process memo.
func NewMemoryMemo() *MemoryMemo {
	return &MemoryMemo{entries: map[MemoKey]memoEntry{}}
}

// Lookup implements Memo.
func (m *MemoryMemo) Lookup(k MemoKey) (state.SignatureInfo, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	e, ok := m.entries[k]
	if !ok {
		m.cur.Misses++
		return state.SignatureInfo{}, false
	}
	m.cur.Hits++
	e.gen = m.gen
	m.entries[k] = e
	return e.info, true
}

// Add implements Memo.
func (m *MemoryMemo) Add(k MemoKey, info state.SignatureInfo) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.cur.Added++
	m.entries[k] = memoEntry{info: info, gen: m.gen}
}

// EndCycle forgets the entries the cycle now ending did not use (events
// gone from the ledger, keys changed in the configuration), so the memo
// never outgrows one replay, and returns the cycle's counts. A cycle that
// used the memo not at all (it failed before replaying) forgets nothing.
func (m *MemoryMemo) EndCycle() MemoStats {
	m.mu.Lock()
	defer m.mu.Unlock()
	st := m.cur
	if st.Hits+st.Misses+st.Added > 0 {
		for k, e := range m.entries {
			if e.gen != m.gen {
				delete(m.entries, k)
				st.Dropped++
			}
		}
	}
	st.Size = len(m.entries)
	m.gen++
	m.cur = MemoStats{}
	return st
}
