package filememo

import (
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/jitform/jitform/config"
	"github.com/jitform/jitform/internal/grants"
	"github.com/jitform/jitform/planner"
	"github.com/jitform/jitform/state"
)

var t0 = time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC)

// ledger is a policy with one approval, alice's request, and an approval
// that names carol but is signed with erin's key: it must never count.
type ledger struct {
	cfg    *config.Config
	keys   map[string]ssh.Signer
	events []state.Event
}

func newLedger(t testing.TB) *ledger {
	t.Helper()
	l := &ledger{cfg: &config.Config{}, keys: map[string]ssh.Signer{}}
	l.cfg.Policies = []*config.Policy{{
		Name: "ops", Addr: "policy.ops", Groups: []string{"group.ops"}, Eligible: []string{"alice"},
		MaxDuration: 4 * time.Hour, Approvals: 1, Approvers: []string{"carol"}, Approval: config.ApprovalLedger,
		RequestTTL: 24 * time.Hour,
	}}
	for _, name := range []string{"alice", "carol", "erin"} {
		_, priv, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		s, err := ssh.NewSignerFromKey(priv)
		if err != nil {
			t.Fatal(err)
		}
		l.keys[name] = s
		l.cfg.Actors = append(l.cfg.Actors, &config.Actor{Name: name, SSHKey: string(ssh.MarshalAuthorizedKey(s.PublicKey()))})
	}
	rq := l.add(t, state.EventRequest, "alice", "alice", t0, state.GrantRequest{
		ID: "g-aaaaaaaaaa", Policy: "policy.ops", Principal: "alice", Duration: "1h0m0s", Reason: "patch"})
	l.add(t, state.EventApprove, "carol", "erin", t0.Add(time.Minute), state.GrantDecision{Grant: "g-aaaaaaaaaa", Request: rq.Hash})
	return l
}

func (l *ledger) add(t testing.TB, typ, actor, signer string, when time.Time, payload any) state.Event {
	t.Helper()
	ev, err := state.NewSignedEvent(typ, actor, when, payload)
	if err != nil {
		t.Fatal(err)
	}
	if err := state.SignEvent(&ev, l.keys[signer]); err != nil {
		t.Fatal(err)
	}
	ev.Seq = int64(len(l.events) + 1)
	ev.Prev = state.Head(l.events)
	if ev.Hash, err = state.HashEvent(ev); err != nil {
		t.Fatal(err)
	}
	l.events = append(l.events, ev)
	return ev
}

// status is the grant's status replayed with memo.
func (l *ledger) status(memo grants.Memo) string {
	recs, _ := planner.LedgerGrantsMemo(l.cfg, l.events, t0.Add(2*time.Minute), memo)
	if len(recs) != 1 {
		return "no record"
	}
	return recs[0].Status
}

// forgedKey is the memo key of the approval signed with the wrong key,
// against carol's declared key: what a forger must vouch for.
func (l *ledger) forgedKey(t *testing.T) grants.MemoKey {
	t.Helper()
	pub, err := state.ParsePublicKey(l.cfg.ActorByName("carol").SSHKey)
	if err != nil {
		t.Fatal(err)
	}
	return grants.MemoKeyOf(pub, l.events[1])
}

func cacheDir(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "cache")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	return dir
}

func writeEntries(t *testing.T, dir string, lines ...string) {
	t.Helper()
	body := header + "\n" + strings.Join(lines, "\n") + "\n"
	if err := os.WriteFile(filepath.Join(dir, EntriesFileName), []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
}

// Someone who can write the entries file but does not hold the secret (a
// state writer, a poisoned CI cache) cannot make a badly signed approval
// count: an entry without a MAC, with a wrong one, or with one made under
// another secret is ignored. Only the secret's holder can (the control
// case), which is why the directory must be the operator's alone.
func TestForgedEntriesDoNotMakeAGrantCount(t *testing.T) {
	t.Parallel()
	l := newLedger(t)
	if got := l.status(nil); got != grants.StatusPending {
		t.Fatalf("without memo: %s, want pending (the approval's signature is erin's)", got)
	}
	info := state.SignatureInfo{KeyType: ssh.KeyAlgoED25519}
	k := l.forgedKey(t)
	other := &Memo{secret: make([]byte, secretSize)}
	if _, err := rand.Read(other.secret); err != nil {
		t.Fatal(err)
	}
	good := other.line(k, info)
	fields := strings.Fields(good)
	for name, line := range map[string]string{
		"MAC under another secret": good,
		"no MAC":                   strings.Join(fields[:5], " "),
		"empty MAC":                strings.Join(fields[:5], " ") + " ",
		"zero MAC":                 strings.Join(fields[:5], " ") + " " + strings.Repeat("0", 64),
		"MAC of another entry":     strings.Join(fields[:5], " ") + " " + strings.Fields(other.line(grants.MemoKey{1}, info))[5],
	} {
		t.Run(name, func(t *testing.T) {
			dir := cacheDir(t)
			if _, err := Open(dir); err != nil { // makes the secret
				t.Fatal(err)
			}
			writeEntries(t, dir, line)
			m, err := Open(dir)
			if err != nil {
				t.Fatal(err)
			}
			if got := l.status(m); got != grants.StatusPending {
				t.Fatalf("forged entry (%s) made the grant %s", name, got)
			}
			if err := m.Save(); err != nil {
				t.Fatal(err)
			}
			if b, _ := os.ReadFile(filepath.Join(dir, EntriesFileName)); strings.Contains(string(b), line) {
				t.Fatalf("the forged entry survived a save:\n%s", b)
			}
		})
	}
	t.Run("control: an entry made with the secret is trusted", func(t *testing.T) {
		dir := cacheDir(t)
		m, err := Open(dir)
		if err != nil {
			t.Fatal(err)
		}
		writeEntries(t, dir, m.line(k, info))
		m, err = Open(dir)
		if err != nil {
			t.Fatal(err)
		}
		if got := l.status(m); got != grants.StatusApproved {
			t.Fatalf("entry with the right MAC: %s, want approved (else the forgery cases prove nothing)", got)
		}
	})
}

// Entries round-trip through the file with their signature info intact
// (security-key flags and counter included); the second process verifies
// nothing; a save keeps only the entries this process used.
func TestEntriesRoundTrip(t *testing.T) {
	t.Parallel()
	dir := cacheDir(t)
	m, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	sk := state.SignatureInfo{KeyType: state.KeyTypeSKECDSA, SecurityKey: true, Flags: state.SKFlagUserPresence | state.SKFlagUserVerification, Counter: 4294967295}
	plain := state.SignatureInfo{KeyType: ssh.KeyAlgoED25519}
	m.Add(grants.MemoKey{1}, sk)
	m.Add(grants.MemoKey{2}, plain)
	m.Add(grants.MemoKey{3}, plain)
	if err := m.Save(); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"", EntriesFileName, SecretFileName} {
		fi, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		want := os.FileMode(0o600)
		if name == "" {
			want = 0o700
		}
		if runtime.GOOS != "windows" && fi.Mode().Perm() != want {
			t.Errorf("%s: mode %04o, want %04o", filepath.Join(dir, name), fi.Mode().Perm(), want)
		}
	}
	m2, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	if got, ok := m2.Lookup(grants.MemoKey{1}); !ok || got != sk {
		t.Fatalf("security-key entry: %+v, %v; want %+v", got, ok, sk)
	}
	if got, ok := m2.Lookup(grants.MemoKey{2}); !ok || got != plain {
		t.Fatalf("entry 2: %+v, %v", got, ok)
	}
	if _, ok := m2.Lookup(grants.MemoKey{4}); ok {
		t.Fatal("entry 4 was never added")
	}
	if err := m2.Save(); err != nil {
		t.Fatal(err)
	}
	m3, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := m3.Lookup(grants.MemoKey{3}); ok {
		t.Fatal("entry 3, unused by the second process, was kept")
	}
	if _, ok := m3.Lookup(grants.MemoKey{1}); !ok {
		t.Fatal("entry 1 lost")
	}
}

// A damaged entries file is no error: its entries are verified again and
// the next save replaces it.
func TestDamagedEntriesAreIgnored(t *testing.T) {
	t.Parallel()
	l := newLedger(t)
	for name, body := range map[string]string{
		"garbage":    "\x00\xff not ours \n\n",
		"no header":  strings.Repeat("ab", 32) + " ssh-ed25519 0 00 0 " + strings.Repeat("cd", 32) + "\n",
		"truncated":  header + "\n" + strings.Repeat("ab", 20),
		"long line":  header + "\n" + strings.Repeat("x", 1<<20) + "\n",
		"bad fields": header + "\n" + strings.Repeat("ab", 32) + " ssh-ed25519 2 zz -1 nothex\n",
	} {
		t.Run(name, func(t *testing.T) {
			dir := cacheDir(t)
			if _, err := Open(dir); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, EntriesFileName), []byte(body), 0o600); err != nil {
				t.Fatal(err)
			}
			m, err := Open(dir)
			if err != nil {
				t.Fatalf("a damaged entries file is an error: %v", err)
			}
			if got := l.status(m); got != grants.StatusPending {
				t.Fatalf("status %s", got)
			}
			if err := m.Save(); err != nil {
				t.Fatal(err)
			}
			b, err := os.ReadFile(filepath.Join(dir, EntriesFileName))
			if err != nil {
				t.Fatal(err)
			}
			// alice's request verified and is the one entry kept.
			if lines := strings.Split(strings.TrimSpace(string(b)), "\n"); len(lines) != 2 || lines[0] != header {
				t.Fatalf("saved:\n%q", b)
			}
		})
	}
}

// A directory or secret others could write is refused, naming the path.
func TestUnsafeDirectoryIsRefused(t *testing.T) {
	t.Parallel()
	if runtime.GOOS == "windows" {
		t.Skip("no mode bits")
	}
	check := func(t *testing.T, dir, path, reason string) {
		t.Helper()
		_, err := Open(dir)
		var ue *UnsafeError
		if !errors.As(err, &ue) || ue.Path != path || !strings.Contains(err.Error(), reason) || !strings.Contains(err.Error(), path) {
			t.Fatalf("Open(%s) = %v; want an UnsafeError at %s saying %q", dir, err, path, reason)
		}
	}
	t.Run("group-writable directory", func(t *testing.T) {
		dir := cacheDir(t)
		if err := os.Chmod(dir, 0o770); err != nil {
			t.Fatal(err)
		}
		check(t, dir, dir, "writable by group or others")
	})
	t.Run("symbolic link", func(t *testing.T) {
		dir := cacheDir(t)
		link := filepath.Join(filepath.Dir(dir), "link")
		if err := os.Symlink(dir, link); err != nil {
			t.Fatal(err)
		}
		check(t, link, link, "symbolic link")
	})
	t.Run("world-writable parent without sticky bit", func(t *testing.T) {
		parent := filepath.Join(t.TempDir(), "shared")
		if err := os.Mkdir(parent, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(parent, 0o777); err != nil {
			t.Fatal(err)
		}
		dir := filepath.Join(parent, "cache")
		check(t, dir, dir, parent+" above it is writable")
	})
	t.Run("readable secret", func(t *testing.T) {
		dir := cacheDir(t)
		if _, err := Open(dir); err != nil {
			t.Fatal(err)
		}
		secret := filepath.Join(dir, SecretFileName)
		if err := os.Chmod(secret, 0o644); err != nil {
			t.Fatal(err)
		}
		check(t, dir, secret, "readable or writable by group or others")
	})
	t.Run("short secret", func(t *testing.T) {
		dir := cacheDir(t)
		secret := filepath.Join(dir, SecretFileName)
		if err := os.WriteFile(secret, []byte("short"), 0o600); err != nil {
			t.Fatal(err)
		}
		check(t, dir, secret, "5 bytes")
	})
	t.Run("a sticky world-writable parent is fine", func(t *testing.T) {
		parent := filepath.Join(t.TempDir(), "tmp")
		if err := os.Mkdir(parent, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(parent, 0o777|os.ModeSticky); err != nil {
			t.Fatal(err)
		}
		if _, err := Open(filepath.Join(parent, "cache")); err != nil {
			t.Fatal(err)
		}
	})
}

// BenchmarkReplayFileMemo: a separate plan process replaying 10,000 signed
// grant events (5,000 requests, each approved once) without the cache and
// with a warm one (opened, read and MAC-checked every time).
func BenchmarkReplayFileMemo(b *testing.B) {
	l := newLedger(b)
	l.events = l.events[:0]
	const n = 5000
	for i := range n {
		id := "g-" + strings.Map(func(r rune) rune { return rune("abcdefghij"[r-'0']) }, fmt.Sprintf("%010d", i))
		when := t0.Add(time.Duration(i) * time.Second)
		rq := l.add(b, state.EventRequest, "alice", "alice", when, state.GrantRequest{
			ID: id, Policy: "policy.ops", Principal: "alice", Duration: "1h0m0s", Reason: "bench"})
		l.add(b, state.EventApprove, "carol", "carol", when.Add(time.Millisecond), state.GrantDecision{Grant: id, Request: rq.Hash})
	}
	now := t0.Add(n * time.Second)
	dir := filepath.Join(b.TempDir(), "cache")
	m, err := Open(dir)
	if err != nil {
		b.Fatal(err)
	}
	planner.LedgerGrantsMemo(l.cfg, l.events, now, m)
	if err := m.Save(); err != nil {
		b.Fatal(err)
	}
	replay := func(b *testing.B, memo func() grants.Memo) {
		for b.Loop() {
			recs, _ := planner.LedgerGrantsMemo(l.cfg, l.events, now, memo())
			if len(recs) != n || recs[n-1].ApprovedAt.IsZero() {
				b.Fatalf("%d records", len(recs))
			}
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(l.events)), "ns/event")
	}
	b.Run("cold", func(b *testing.B) { replay(b, func() grants.Memo { return nil }) })
	b.Run("warm", func(b *testing.B) {
		replay(b, func() grants.Memo {
			m, err := Open(dir)
			if err != nil {
				b.Fatal(err)
			}
			return m
		})
	})
}
