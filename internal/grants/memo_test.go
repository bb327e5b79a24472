package grants

import (
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/jitform/jitform/config"
	"github.com/jitform/jitform/state"
)

// memoWorld is a ledger with ordinary and security-key signatures, a
// request signed by a key its actor never declared, and one approval whose
// payload was changed after signing.
func memoWorld(t *testing.T) *world {
	t.Helper()
	w := newWorld(t)
	w.request(gA, "ops", "alice", "alice", at(0), nil, time.Hour, false)
	w.decide(state.EventApprove, gA, "carol", at(time.Minute), nil)
	w.request(gB, "fido_uv", "vic", "vic", at(0), nil, time.Hour, false)
	w.decide(state.EventApprove, gB, "uma", at(time.Minute), nil)
	w.request(gC, "fido", "sam", "sam", at(0), nil, time.Hour, false)
	tampered := w.decisionEvent(state.EventApprove, gC, "carol", at(time.Minute), nil)
	tampered.Payload = []byte(`{"grant":"` + gC + `","reason":"changed after signing","request":"` + w.requestHash(gC) + `"}`)
	w.chain(tampered)
	forged := w.make(state.EventRequest, "bob", at(0), state.GrantRequest{ID: "g-dddddddddd", Policy: "policy.ops", Principal: "bob", Duration: "1h0m0s"})
	forged.Sig = w.make(state.EventRequest, "erin", at(0), state.GrantRequest{ID: "g-dddddddddd", Policy: "policy.ops", Principal: "bob", Duration: "1h0m0s"}).Sig
	w.chain(forged)
	return w
}

func replayMemo(w *world, memo Memo, now time.Time) (*Book, *SSHVerifier) {
	v := NewSSHVerifierMemo(w.cfg, w.events, memo)
	return Replay(w.cfg, v, w.events, now), v
}

// A warm memo answers every good signature: nothing is verified again, and
// the records and warnings are exactly those of a replay without memo.
// The two bad signatures are verified every time.
func TestMemoWarmReplayVerifiesOnlyFailures(t *testing.T) {
	t.Parallel()
	w := memoWorld(t)
	now := at(2 * time.Minute)
	plain, pv := replayMemo(w, nil, now)
	if n := pv.checked.Load(); n != int64(len(w.events)) {
		t.Fatalf("without memo: %d verified, want all %d", n, len(w.events))
	}
	memo := NewMemoryMemo()
	cold, cv := replayMemo(w, memo, now)
	warm, wv := replayMemo(w, memo, now)
	if n := cv.checked.Load(); n != int64(len(w.events)) {
		t.Fatalf("cold memo: %d verified, want %d", n, len(w.events))
	}
	if n := wv.checked.Load(); n != 2 {
		t.Fatalf("warm memo: %d verified, want 2 (the tampered approval and the forged request)", n)
	}
	for name, b := range map[string]*Book{"cold": cold, "warm": warm} {
		if !reflect.DeepEqual(b.Records(), plain.Records()) {
			t.Errorf("%s memo records:\n%+v\nwithout memo:\n%+v", name, b.Records(), plain.Records())
		}
		if !reflect.DeepEqual(b.Warnings(), plain.Warnings()) {
			t.Errorf("%s memo warnings:\n%s\nwithout memo:\n%s", name, warningsText(b.Warnings()), warningsText(plain.Warnings()))
		}
	}
	// The bad ones are still bad (the test is not vacuous).
	if r := recordOf(warm, gC); r.Status != StatusPending {
		t.Fatalf("grant with a tampered approval: %s, want pending", r.Status)
	}
	if r := recordOf(warm, "g-dddddddddd"); r.Status != StatusInvalid {
		t.Fatalf("request signed by an undeclared key: %s, want invalid", r.Status)
	}
	if r := recordOf(warm, gB); r.Status != StatusApproved {
		t.Fatalf("security-key grant: %s, want approved", r.Status)
	}
	if st := memo.EndCycle(); st.Size != len(w.events)-2 {
		t.Fatalf("memo holds %d entries, want %d (failures are never remembered)", st.Size, len(w.events)-2)
	}
}

func recordOf(b *Book, id string) Record {
	for _, r := range b.Records() {
		if r.ID == id {
			return r
		}
	}
	return Record{}
}

// The memo gives back a security key's flags and counter exactly as the
// verification found them.
func TestMemoKeepsSecurityKeySignatureInfo(t *testing.T) {
	t.Parallel()
	w := memoWorld(t)
	memo := NewMemoryMemo()
	NewSSHVerifierMemo(w.cfg, w.events, memo)
	warm := NewSSHVerifierMemo(w.cfg, nil, memo)
	sk := 0
	for _, ev := range w.events[:4] {
		pub, err := state.ParsePublicKey(w.cfg.ActorByName(ev.Actor).SSHKey)
		if err != nil {
			t.Fatal(err)
		}
		want, err := state.VerifyEventInfo(ev, pub)
		if err != nil {
			t.Fatal(err)
		}
		got, err := warm.VerifyInfo(ev)
		if err != nil || got != want {
			t.Fatalf("event %d by %s: memo gave %+v, %v; verification %+v", ev.Seq, ev.Actor, got, err, want)
		}
		if want.SecurityKey {
			sk++
			if want.Flags == 0 || want.Counter == 0 {
				t.Fatalf("event %d: security-key info without flags or counter: %+v", ev.Seq, want)
			}
		}
	}
	if sk != 2 {
		t.Fatalf("%d security-key signatures, want 2", sk)
	}
	if n := warm.checked.Load(); n != 0 {
		t.Fatalf("%d verified, want all from the memo", n)
	}
}

// An entry remembered for carol's old key does not vouch for her approval
// once her ssh_key is replaced: the key is part of the memo key.
func TestMemoDoesNotOutliveAKeyChange(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	w.request(gA, "ops", "alice", "alice", at(0), nil, time.Hour, false)
	w.decide(state.EventApprove, gA, "carol", at(time.Minute), nil)
	now := at(2 * time.Minute)
	memo := NewMemoryMemo()
	if b, _ := replayMemo(w, memo, now); recordOf(b, gA).Status != StatusApproved {
		t.Fatalf("before the key change: %s, want approved", recordOf(b, gA).Status)
	}
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	s, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	cfg := *w.cfg
	cfg.Actors = nil
	for _, a := range w.cfg.Actors {
		if a.Name == "carol" {
			a = &config.Actor{Name: "carol", SSHKey: string(ssh.MarshalAuthorizedKey(s.PublicKey()))}
		}
		cfg.Actors = append(cfg.Actors, a)
	}
	w.cfg = &cfg
	b, v := replayMemo(w, memo, now)
	if r := recordOf(b, gA); r.Status != StatusPending {
		t.Fatalf("after carol's key changed, her approval still counts: %s", r.Status)
	}
	if n := v.checked.Load(); n != 1 {
		t.Fatalf("%d verified, want 1 (carol's approval, under her new key)", n)
	}
}

// A memo entry vouches only for the exact signed bytes: an event changed
// after signing has another key, even with the memo full of its original.
func TestMemoEntryDoesNotCoverAChangedEvent(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	rq := w.request(gA, "ops", "alice", "alice", at(0), nil, time.Hour, false)
	memo := NewMemoryMemo()
	NewSSHVerifierMemo(w.cfg, w.events, memo)
	for name, change := range map[string]func(*state.Event){
		"payload": func(ev *state.Event) {
			ev.Payload = []byte(`{"duration":"4h0m0s","id":"` + gA + `","policy":"policy.ops","principal":"alice"}`)
		},
		"time":  func(ev *state.Event) { ev.Time = ev.Time.Add(time.Second) },
		"actor": func(ev *state.Event) { ev.Actor = "bob" },
	} {
		ev := rq
		change(&ev)
		v := NewSSHVerifierMemo(w.cfg, []state.Event{ev}, memo)
		if _, err := v.VerifyInfo(ev); err == nil {
			t.Errorf("%s changed after signing: the signature verifies", name)
		}
		if n := v.checked.Load(); n != 1 {
			t.Errorf("%s changed after signing: %d verified, want 1", name, n)
		}
	}
}

// EndCycle forgets what the cycle did not use, and nothing after a cycle
// that did not replay at all.
func TestMemoryMemoEndCycle(t *testing.T) {
	t.Parallel()
	m := NewMemoryMemo()
	k := func(i int) MemoKey { return MemoKey{byte(i)} }
	m.Add(k(1), state.SignatureInfo{KeyType: "ssh-ed25519"})
	m.Add(k(2), state.SignatureInfo{KeyType: "ssh-ed25519"})
	if st := m.EndCycle(); st.Added != 2 || st.Size != 2 || st.Dropped != 0 {
		t.Fatalf("first cycle: %+v", st)
	}
	if st := m.EndCycle(); st.Size != 2 || st.Dropped != 0 {
		t.Fatalf("a cycle that used nothing: %+v, want nothing forgotten", st)
	}
	if _, ok := m.Lookup(k(2)); !ok {
		t.Fatal("entry 2 lost")
	}
	if _, ok := m.Lookup(k(3)); ok {
		t.Fatal("entry 3 never added")
	}
	if st := m.EndCycle(); st.Hits != 1 || st.Misses != 1 || st.Dropped != 1 || st.Size != 1 {
		t.Fatalf("third cycle: %+v, want 1 hit, 1 miss, entry 1 forgotten", st)
	}
	if _, ok := m.Lookup(k(1)); ok {
		t.Fatal("entry 1 not forgotten")
	}
	// That lookup was this cycle's only use of the memo, a miss (as when
	// every signature fails and nothing is added): the cycle still used
	// the memo, so what it did not hit is forgotten.
	if st := m.EndCycle(); st.Misses != 1 || st.Dropped != 1 || st.Size != 0 {
		t.Fatalf("a cycle of misses only: %+v, want entry 2 forgotten", st)
	}
	// A cycle in which every event was new (each looked up, missed,
	// verified and added) forgets what earlier cycles added.
	m.Add(k(7), state.SignatureInfo{KeyType: "ssh-ed25519"})
	m.EndCycle()
	m.Lookup(k(8))
	m.Add(k(8), state.SignatureInfo{KeyType: "ssh-ed25519"})
	if st := m.EndCycle(); st.Misses != 1 || st.Added != 1 || st.Dropped != 1 || st.Size != 1 {
		t.Fatalf("a cycle of new events only: %+v, want entry 7 forgotten", st)
	}
}

// BenchmarkReplayMemo replays 10,000 signed grant events (5,000 requests,
// each approved once): cold (no memo, every signature verified), first
// (an empty memo filled as it goes) and warm (every signature in an
// in-process memo, as jitform run's second cycle).
func BenchmarkReplayMemo(b *testing.B) {
	w := newWorld(b)
	const grants = 5000
	for i := range grants {
		id := "g-" + strings.Map(func(r rune) rune { return rune("abcdefghij"[r-'0']) }, fmt.Sprintf("%010d", i))
		when := at(time.Duration(i) * time.Second)
		rq := w.chain(w.make(state.EventRequest, "alice", when, state.GrantRequest{
			ID: id, Policy: "policy.ops", Principal: "alice", Duration: "1h0m0s", Reason: "bench"}))
		w.chain(w.make(state.EventApprove, []string{"carol", "dave"}[i%2], when.Add(time.Millisecond),
			state.GrantDecision{Grant: id, Request: rq.Hash}))
	}
	now := at(grants * time.Second)
	run := func(b *testing.B, memo func() Memo) {
		var checked int64
		for b.Loop() {
			v := NewSSHVerifierMemo(w.cfg, w.events, memo())
			book := Replay(w.cfg, v, w.events, now)
			recs := book.Records()
			if len(recs) != grants || recs[grants-1].ApprovedAt.IsZero() {
				b.Fatalf("%d records, the last %+v", len(recs), recs[len(recs)-1])
			}
			checked += v.checked.Load()
		}
		b.ReportMetric(float64(checked)/float64(b.N), "verified/op")
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(w.events)), "ns/event")
	}
	b.Run("cold", func(b *testing.B) { run(b, func() Memo { return nil }) })
	// The first cycle of jitform run: everything verified and remembered.
	b.Run("first", func(b *testing.B) { run(b, func() Memo { return NewMemoryMemo() }) })
	warm := NewMemoryMemo()
	NewSSHVerifierMemo(w.cfg, w.events, warm)
	b.Run("warm", func(b *testing.B) { run(b, func() Memo { return warm }) })
}
