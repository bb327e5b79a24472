package grants

import (
	"crypto/ed25519"
	"crypto/rand"
	"regexp"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/jitform/jitform/config"
	"github.com/jitform/jitform/internal/grants/sktest"
	"github.com/jitform/jitform/state"
)

// world is a policy repository built in Go and a real hash-chained ledger
// of signed events (state.SignEvent, state.HashEvent), one key per person.
type world struct {
	t      testing.TB
	cfg    *config.Config
	keys   map[string]ssh.Signer
	events []state.Event
}

var t0 = time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC)

func at(d time.Duration) time.Time { return t0.Add(d) }

func ptr(t time.Time) *time.Time { return &t }

const (
	gA = "g-aaaaaaaaaa"
	gB = "g-bbbbbbbbbb"
	gC = "g-cccccccccc"
)

func newWorld(t testing.TB) *world {
	t.Helper()
	w := &world{t: t, keys: map[string]ssh.Signer{}}
	cfg := &config.Config{}
	pol := func(name string, mut func(*config.Policy)) *config.Policy {
		p := &config.Policy{
			Name: name, Addr: "policy." + name, Groups: []string{"group.ops"},
			Eligible: []string{"alice", "bob", "svc-deploy"}, MaxDuration: 4 * time.Hour,
			Approvals: 1, Approvers: []string{"carol", "dave"}, Approval: config.ApprovalLedger,
			RequestTTL: 24 * time.Hour,
		}
		if mut != nil {
			mut(p)
		}
		return p
	}
	cfg.Policies = []*config.Policy{
		pol("ops", nil),
		pol("two", func(p *config.Policy) { p.Approvals = 2; p.Approvers = []string{"carol", "dave", "frank"} }),
		pol("bg", func(p *config.Policy) { p.BreakGlass = &config.BreakGlass{MaxDuration: time.Hour} }),
		pol("budget", func(p *config.Policy) {
			p.BreakGlass = &config.BreakGlass{MaxDuration: time.Hour, MaxPerDay: 2 * time.Hour}
			p.MaxActive = 1
		}),
		pol("repo", func(p *config.Policy) { p.Approval = config.ApprovalRepository }),
		pol("capped", func(p *config.Policy) { p.MaxActive = 1 }),
		pol("short_ttl", func(p *config.Policy) { p.RequestTTL = time.Hour }),
		pol("ticketed", func(p *config.Policy) { p.TicketPattern = regexp.MustCompile("^CHG[0-9]+$") }),
		// alice approves here: she may approve and review others, never herself.
		// Security-key policies: sam (presence), uma and vic (user
		// verified) and nora (never touched) sign with security keys.
		pol("fido", func(p *config.Policy) {
			p.RequireSecurityKey = config.SecurityKeyPresence
			p.Eligible = []string{"alice", "sam", "uma", "vic", "nora"}
			p.Approvers = []string{"carol", "sam", "uma", "vic", "nora"}
			p.BreakGlass = &config.BreakGlass{MaxDuration: time.Hour}
		}),
		pol("fido_uv", func(p *config.Policy) {
			p.RequireSecurityKey = config.SecurityKeyUserVerification
			p.Eligible = []string{"alice", "sam", "uma", "vic", "nora"}
			p.Approvers = []string{"carol", "sam", "uma", "vic", "nora"}
		}),
		pol("peer", func(p *config.Policy) {
			p.Approvers = []string{"alice", "carol", "ALICE", "bob"}
			p.BreakGlass = &config.BreakGlass{MaxDuration: time.Hour}
		}),
	}
	cfg.Grants = []*config.Grant{{
		Name: "alice_chg1", Addr: "grant.alice_chg1", Policy: "policy.repo", Principal: "alice",
		Start: at(0), Duration: 2 * time.Hour, Ticket: "CHG1", ApprovedBy: []string{"carol"},
	}}
	// "ALICE" is a second actor whose name differs from alice's only in case.
	for _, name := range []string{"alice", "bob", "carol", "dave", "erin", "frank", "ALICE"} {
		_, priv, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		s, err := ssh.NewSignerFromKey(priv)
		if err != nil {
			t.Fatal(err)
		}
		w.keys[name] = s
		cfg.Actors = append(cfg.Actors, &config.Actor{Name: name, SSHKey: string(ssh.MarshalAuthorizedKey(s.PublicKey()))})
	}
	for _, k := range []struct {
		name, typ string
		flags     byte
	}{
		{"sam", sktest.TypeEd25519, sktest.FlagUserPresence},
		{"uma", sktest.TypeECDSA, sktest.FlagUserPresence | sktest.FlagUserVerification},
		{"vic", sktest.TypeEd25519, sktest.FlagUserPresence | sktest.FlagUserVerification},
		{"nora", sktest.TypeEd25519, sktest.FlagUserVerification},
	} {
		s, err := sktest.New(k.typ, k.flags)
		if err != nil {
			t.Fatal(err)
		}
		w.keys[k.name] = s
		cfg.Actors = append(cfg.Actors, &config.Actor{Name: k.name, SSHKey: s.AuthorizedKey()})
	}
	w.cfg = cfg
	return w
}

// make builds a signed event of typ by actor, not yet in the ledger.
func (w *world) make(typ, actor string, when time.Time, payload any) state.Event {
	w.t.Helper()
	ev, err := state.NewSignedEvent(typ, actor, when, payload)
	if err != nil {
		w.t.Fatal(err)
	}
	if err := state.SignEvent(&ev, w.keys[actor]); err != nil {
		w.t.Fatal(err)
	}
	return ev
}

// chain appends ev to the ledger as a backend would: seq, prev, hash.
func (w *world) chain(ev state.Event) state.Event {
	w.t.Helper()
	ev.Seq = int64(len(w.events) + 1)
	ev.Prev = state.Head(w.events)
	h, err := state.HashEvent(ev)
	if err != nil {
		w.t.Fatal(err)
	}
	ev.Hash = h
	w.events = append(w.events, ev)
	return ev
}

func (w *world) requestEvent(id, policy, principal, actor string, when time.Time, start *time.Time, d time.Duration, breakGlass bool) state.Event {
	return w.make(state.EventRequest, actor, when, state.GrantRequest{
		ID: id, Policy: "policy." + policy, Principal: principal, Start: start, Duration: d.String(),
		Ticket: "CHG1", Reason: "patch", BreakGlass: breakGlass,
	})
}

func (w *world) request(id, policy, principal, actor string, when time.Time, start *time.Time, d time.Duration, breakGlass bool) state.Event {
	return w.chain(w.requestEvent(id, policy, principal, actor, when, start, d, breakGlass))
}

// requestHash is the ledger hash of grant id's first request.
func (w *world) requestHash(id string) string {
	for _, ev := range w.events {
		if ev.Type == state.EventRequest {
			if q, _ := state.DecodeGrantRequest(ev); q.ID == id {
				return ev.Hash
			}
		}
	}
	return ""
}

// decisionEvent is a decision bound to the grant's request, as the CLI
// writes it.
func (w *world) decisionEvent(typ, id, actor string, when time.Time, until *time.Time) state.Event {
	return w.make(typ, actor, when, state.GrantDecision{Grant: id, Request: w.requestHash(id), Until: until, Reason: "because"})
}

func (w *world) decide(typ, id, actor string, when time.Time, until *time.Time) state.Event {
	return w.chain(w.decisionEvent(typ, id, actor, when, until))
}

func (w *world) replay(now time.Time) *Book {
	return Replay(w.cfg, NewSSHVerifier(w.cfg, w.events), w.events, now)
}

func hasWarning(ws []Warning, sub string) bool {
	for _, w := range ws {
		if strings.Contains(w.Summary+" "+w.Detail, sub) {
			return true
		}
	}
	return false
}

func warningsText(ws []Warning) string {
	var b strings.Builder
	for _, w := range ws {
		b.WriteString("  " + w.Summary + "\n")
	}
	return b.String()
}
