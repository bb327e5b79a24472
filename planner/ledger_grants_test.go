package planner

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/jitform/jitform/config"
	"github.com/jitform/jitform/providers"
	"github.com/jitform/jitform/state"
)

// ledgerWorld is a policy repository built in Go (no HCL), with one key per
// person, for replaying signed grant events.
type ledgerWorld struct {
	t    testing.TB
	cfg  *config.Config
	keys map[string]ssh.Signer
	seq  int64
	// requests: grant ID -> ledger hash of its (first) request, which
	// decide binds every decision to, as the CLI does.
	requests map[string]string
}

var t0 = time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC)

func at(d time.Duration) time.Time { return t0.Add(d) }

func newLedgerWorld(t testing.TB) *ledgerWorld {
	t.Helper()
	w := &ledgerWorld{t: t, keys: map[string]ssh.Signer{}, requests: map[string]string{}}
	target := &config.Target{Kind: "ldif", Name: "corp", Addr: "target.ldif.corp", LDIF: &config.LDIFTarget{}}
	cfg := &config.Config{
		Targets: []*config.Target{target},
		Groups: []*config.Group{{
			Name: "ops", Addr: "group.ops", BaseAddr: "group.ops", Target: target,
			DN: "cn=ops,ou=groups,dc=corp,dc=example", Exclusive: true,
		}},
	}
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
		pol("repo", func(p *config.Policy) { p.Approval = config.ApprovalRepository }),
		pol("capped", func(p *config.Policy) { p.MaxActive = 1 }),
		pol("short_ttl", func(p *config.Policy) { p.RequestTTL = time.Hour }),
		// alice approves here: she may approve others, never herself.
		pol("peer", func(p *config.Policy) { p.Approvers = []string{"alice", "carol"} }),
	}
	for _, name := range []string{"alice", "bob", "carol", "dave", "erin", "frank"} {
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
	w.cfg = cfg
	return w
}

// event makes an event of typ by actor, signed with signer's key (the
// actor's own unless a test swaps it).
func (w *ledgerWorld) event(typ, actor, signer string, when time.Time, payload any) state.Event {
	w.t.Helper()
	ev, err := state.NewSignedEvent(typ, actor, when, payload)
	if err != nil {
		w.t.Fatal(err)
	}
	if signer != "" {
		if err := state.SignEvent(&ev, w.keys[signer]); err != nil {
			w.t.Fatal(err)
		}
	}
	w.seq++
	ev.Seq = w.seq
	// A stand-in for the chain hash (state.HashEvent), unique per event.
	ev.Hash = fmt.Sprintf("hash-%d", w.seq)
	return ev
}

func (w *ledgerWorld) request(id, policy, principal, actor string, when time.Time, start *time.Time, d time.Duration, breakGlass bool) state.Event {
	ev := w.event(state.EventRequest, actor, actor, when, state.GrantRequest{
		ID: id, Policy: "policy." + policy, Principal: principal, Start: start, Duration: d.String(),
		Ticket: "CHG1", Reason: "patch", BreakGlass: breakGlass,
	})
	if _, ok := w.requests[id]; !ok {
		w.requests[id] = ev.Hash
	}
	return ev
}

// decide signs a decision bound to the grant's request (its hash).
func (w *ledgerWorld) decide(typ, id, actor string, when time.Time, until *time.Time) state.Event {
	return w.event(typ, actor, actor, when, state.GrantDecision{Grant: id, Request: w.requests[id], Until: until, Reason: "because"})
}

func ptr(t time.Time) *time.Time { return &t }

const (
	gA = "g-aaaaaaaaaa"
	gB = "g-bbbbbbbbbb"
	gC = "g-cccccccccc"
)

// grantsAccess runs the whole planner (Replay, then Compute) and reports
// whether grant (any grant when "") adds a member to group.ops, and the
// add's reason.
func grantsAccess(t *testing.T, cfg *config.Config, events []state.Event, now time.Time, grant string) (bool, Reason, *Plan) {
	t.Helper()
	view, _ := Replay(cfg, events, now)
	obs := map[string]providers.Observation{"group.ops": {Members: []providers.Member{}}}
	res := map[string]map[string]providers.Resolution{"target.ldif.corp": {}}
	for _, p := range []string{"alice", "bob", "svc-deploy"} {
		res["target.ldif.corp"][p] = providers.Resolution{Member: providers.Member{ID: "uid=" + p + ",dc=corp,dc=example", Name: p}}
	}
	plan, err := Compute(Input{Config: cfg, Now: now, Observed: obs, Resolved: res, Ledger: view})
	if err != nil {
		t.Fatal(err)
	}
	for _, ch := range plan.Changes {
		if ch.Action == "add" && ch.Group == "group.ops" && (grant == "" || ch.Reason.Grant == grant) {
			return true, ch.Reason, plan
		}
	}
	return false, Reason{}, plan
}

func TestLedgerGrants(t *testing.T) {
	t.Parallel()
	type want struct {
		status     string
		access     bool // the plan at now adds the principal
		approvers  []string
		start, end time.Time
		breakGlass bool
		unreviewed bool
		warnings   []string // substrings, each in some warning
	}
	tests := []struct {
		name   string
		events func(w *ledgerWorld) []state.Event
		now    time.Time
		grant  string
		want   want
	}{
		{
			name: "approved: window starts at approval",
			events: func(w *ledgerWorld) []state.Event {
				return []state.Event{
					w.request(gA, "ops", "alice", "alice", at(0), nil, 2*time.Hour, false),
					w.decide(state.EventApprove, gA, "carol", at(10*time.Minute), nil),
				}
			},
			now: at(time.Hour), grant: gA,
			want: want{status: StatusApproved, access: true, approvers: []string{"carol"},
				start: at(10 * time.Minute), end: at(130 * time.Minute)},
		},
		{
			name: "approved: the request names its start",
			events: func(w *ledgerWorld) []state.Event {
				return []state.Event{
					w.request(gA, "ops", "alice", "alice", at(0), ptr(at(2*time.Hour)), 2*time.Hour, false),
					w.decide(state.EventApprove, gA, "carol", at(10*time.Minute), nil),
				}
			},
			now: at(3 * time.Hour), grant: gA,
			want: want{status: StatusApproved, access: true, approvers: []string{"carol"},
				start: at(2 * time.Hour), end: at(4 * time.Hour)},
		},
		{
			name: "request on behalf of a principal who is not an actor, by an eligible actor",
			events: func(w *ledgerWorld) []state.Event {
				return []state.Event{
					w.request(gA, "ops", "svc-deploy", "bob", at(0), nil, time.Hour, false),
					w.decide(state.EventApprove, gA, "dave", at(time.Minute), nil),
				}
			},
			now: at(30 * time.Minute), grant: gA,
			want: want{status: StatusApproved, access: true, approvers: []string{"dave"},
				start: at(time.Minute), end: at(61 * time.Minute)},
		},
		{
			name: "pending: no approval yet",
			events: func(w *ledgerWorld) []state.Event {
				return []state.Event{w.request(gA, "ops", "alice", "alice", at(0), nil, time.Hour, false)}
			},
			now: at(time.Hour), grant: gA,
			want: want{status: StatusPending},
		},
		{
			name: "forged approval signature",
			events: func(w *ledgerWorld) []state.Event {
				ap := w.decide(state.EventApprove, gA, "carol", at(time.Minute), nil)
				// Keep carol's signature but change what it covers.
				ap.Payload = json.RawMessage(`{"grant":"` + gA + `","reason":"edited"}`)
				return []state.Event{w.request(gA, "ops", "alice", "alice", at(0), nil, time.Hour, false), ap}
			},
			now: at(30 * time.Minute), grant: gA,
			want: want{status: StatusPending, warnings: []string{"approve of g-aaaaaaaaaa by carol does not count: forged or altered"}},
		},
		{
			name: "unsigned approval",
			events: func(w *ledgerWorld) []state.Event {
				return []state.Event{
					w.request(gA, "ops", "alice", "alice", at(0), nil, time.Hour, false),
					w.event(state.EventApprove, "carol", "", at(time.Minute), state.GrantDecision{Grant: gA}),
				}
			},
			now: at(30 * time.Minute), grant: gA,
			want: want{status: StatusPending, warnings: []string{"does not count: not signed"}},
		},
		{
			name: "approval signed with the wrong key (erin's, claiming to be carol)",
			events: func(w *ledgerWorld) []state.Event {
				return []state.Event{
					w.request(gA, "ops", "alice", "alice", at(0), nil, time.Hour, false),
					w.event(state.EventApprove, "carol", "erin", at(time.Minute), state.GrantDecision{Grant: gA}),
				}
			},
			now: at(30 * time.Minute), grant: gA,
			want: want{status: StatusPending, warnings: []string{"by carol does not count: wrong key"}},
		},
		{
			name: "approval by a declared actor who is not an approver",
			events: func(w *ledgerWorld) []state.Event {
				return []state.Event{
					w.request(gA, "ops", "alice", "alice", at(0), nil, time.Hour, false),
					w.decide(state.EventApprove, gA, "erin", at(time.Minute), nil),
				}
			},
			now: at(30 * time.Minute), grant: gA,
			want: want{status: StatusPending, warnings: []string{"erin is not an approver of policy.ops (approvers: carol, dave)"}},
		},
		{
			name: "approval by someone who is not a declared actor",
			events: func(w *ledgerWorld) []state.Event {
				return []state.Event{
					w.request(gA, "ops", "alice", "alice", at(0), nil, time.Hour, false),
					w.event(state.EventApprove, "mallory", "erin", at(time.Minute), state.GrantDecision{Grant: gA}),
				}
			},
			now: at(30 * time.Minute), grant: gA,
			want: want{status: StatusPending, warnings: []string{`"mallory" is not a declared actor`}},
		},
		{
			name: "approval replayed onto another grant",
			events: func(w *ledgerWorld) []state.Event {
				ap := w.decide(state.EventApprove, gA, "carol", at(time.Minute), nil)
				replay := ap
				replay.Seq = 4
				replay.Payload = json.RawMessage(`{"grant":"` + gB + `","reason":"because"}`)
				return []state.Event{
					w.request(gA, "ops", "bob", "bob", at(0), nil, time.Hour, false),
					ap,
					w.request(gB, "ops", "alice", "alice", at(0), nil, time.Hour, false),
					replay,
				}
			},
			now: at(30 * time.Minute), grant: gB,
			want: want{status: StatusPending, warnings: []string{"approve of g-bbbbbbbbbb by carol does not count: replayed signature: it was made for ledger event 1 (approve of g-aaaaaaaaaa)"}},
		},
		{
			name: "approval by the requester",
			events: func(w *ledgerWorld) []state.Event {
				return []state.Event{
					w.request(gA, "peer", "alice", "alice", at(0), nil, time.Hour, false),
					w.decide(state.EventApprove, gA, "alice", at(time.Minute), nil),
				}
			},
			now: at(30 * time.Minute), grant: gA,
			want: want{status: StatusPending, warnings: []string{"alice requested this grant (or is its principal) and cannot approve it"}},
		},
		{
			name: "request by someone other than the principal, who is an actor",
			events: func(w *ledgerWorld) []state.Event {
				return []state.Event{
					w.request(gA, "ops", "alice", "bob", at(0), nil, time.Hour, false),
					w.decide(state.EventApprove, gA, "carol", at(time.Minute), nil),
				}
			},
			now: at(30 * time.Minute), grant: gA,
			want: want{status: StatusInvalid, warnings: []string{"only alice may request access for alice (requested by bob)"}},
		},
		{
			name: "request by an actor who is not eligible",
			events: func(w *ledgerWorld) []state.Event {
				return []state.Event{
					w.request(gA, "ops", "svc-deploy", "erin", at(0), nil, time.Hour, false),
					w.decide(state.EventApprove, gA, "carol", at(time.Minute), nil),
				}
			},
			now: at(30 * time.Minute), grant: gA,
			want: want{status: StatusInvalid, warnings: []string{"requested by erin, who is not eligible under policy.ops"}},
		},
		{
			name: "forged request",
			events: func(w *ledgerWorld) []state.Event {
				rq := w.request(gA, "ops", "alice", "alice", at(0), nil, time.Hour, false)
				rq.Payload = json.RawMessage(`{"duration":"4h0m0s","id":"` + gA + `","policy":"policy.ops","principal":"alice","reason":"patch","ticket":"CHG1"}`)
				return []state.Event{rq, w.decide(state.EventApprove, gA, "carol", at(time.Minute), nil)}
			},
			now: at(30 * time.Minute), grant: gA,
			want: want{status: StatusInvalid, warnings: []string{"request g-aaaaaaaaaa does not count: forged or altered"}},
		},
		{
			name: "request under a repository-approval policy",
			events: func(w *ledgerWorld) []state.Event {
				return []state.Event{
					w.request(gA, "repo", "alice", "alice", at(0), nil, time.Hour, false),
					w.decide(state.EventApprove, gA, "carol", at(time.Minute), nil),
				}
			},
			now: at(30 * time.Minute), grant: gA,
			want: want{status: StatusInvalid, warnings: []string{`policy.repo takes approvals by repository review (approval = "repository")`}},
		},
		{
			name: "expired pending request",
			events: func(w *ledgerWorld) []state.Event {
				return []state.Event{w.request(gA, "short_ttl", "alice", "alice", at(0), nil, time.Hour, false)}
			},
			now: at(2 * time.Hour), grant: gA,
			want: want{status: StatusExpired},
		},
		{
			name: "approval after the request expired",
			events: func(w *ledgerWorld) []state.Event {
				return []state.Event{
					w.request(gA, "short_ttl", "alice", "alice", at(0), nil, time.Hour, false),
					w.decide(state.EventApprove, gA, "carol", at(61*time.Minute), nil),
				}
			},
			now: at(90 * time.Minute), grant: gA,
			want: want{status: StatusExpired, warnings: []string{"the request expired at 2026-11-23T10:00:00Z (request_ttl 1h0m0s), before this approval"}},
		},
		{
			name: "denied",
			events: func(w *ledgerWorld) []state.Event {
				return []state.Event{
					w.request(gA, "ops", "alice", "alice", at(0), nil, time.Hour, false),
					w.decide(state.EventDeny, gA, "dave", at(time.Minute), nil),
					w.decide(state.EventApprove, gA, "carol", at(2*time.Minute), nil),
				}
			},
			now: at(30 * time.Minute), grant: gA,
			want: want{status: StatusDenied, warnings: []string{"approve of g-aaaaaaaaaa by carol does not count: the request was denied"}},
		},
		{
			name: "deny by someone who may not",
			events: func(w *ledgerWorld) []state.Event {
				return []state.Event{
					w.request(gA, "ops", "alice", "alice", at(0), nil, time.Hour, false),
					w.decide(state.EventDeny, gA, "erin", at(time.Minute), nil),
				}
			},
			now: at(30 * time.Minute), grant: gA,
			want: want{status: StatusPending, warnings: []string{"erin is neither an approver of policy.ops nor the requester"}},
		},
		{
			name: "revoked: the grant ends at the revocation",
			events: func(w *ledgerWorld) []state.Event {
				return []state.Event{
					w.request(gA, "ops", "alice", "alice", at(0), nil, 2*time.Hour, false),
					w.decide(state.EventApprove, gA, "carol", at(time.Minute), nil),
					w.decide(state.EventRevoke, gA, "alice", at(30*time.Minute), nil),
				}
			},
			now: at(time.Hour), grant: gA,
			want: want{status: StatusRevoked, approvers: []string{"carol"}, start: at(time.Minute), end: at(121 * time.Minute)},
		},
		{
			name: "revocation by someone who may not does not end it",
			events: func(w *ledgerWorld) []state.Event {
				return []state.Event{
					w.request(gA, "ops", "alice", "alice", at(0), nil, 2*time.Hour, false),
					w.decide(state.EventApprove, gA, "carol", at(time.Minute), nil),
					w.decide(state.EventRevoke, gA, "erin", at(30*time.Minute), nil),
				}
			},
			now: at(time.Hour), grant: gA,
			want: want{status: StatusApproved, access: true, approvers: []string{"carol"}, start: at(time.Minute), end: at(121 * time.Minute),
				warnings: []string{"revoke of g-aaaaaaaaaa by erin does not count: erin is neither an approver"}},
		},
		{
			name: "2-of-M: one approval is not enough",
			events: func(w *ledgerWorld) []state.Event {
				return []state.Event{
					w.request(gA, "two", "alice", "alice", at(0), nil, time.Hour, false),
					w.decide(state.EventApprove, gA, "carol", at(time.Minute), nil),
				}
			},
			now: at(30 * time.Minute), grant: gA,
			want: want{status: StatusPending, approvers: []string{"carol"}},
		},
		{
			name: "2-of-M: two approvals by one person count once",
			events: func(w *ledgerWorld) []state.Event {
				return []state.Event{
					w.request(gA, "two", "alice", "alice", at(0), nil, time.Hour, false),
					w.decide(state.EventApprove, gA, "carol", at(time.Minute), nil),
					w.decide(state.EventApprove, gA, "carol", at(2*time.Minute), nil),
				}
			},
			now: at(30 * time.Minute), grant: gA,
			want: want{status: StatusPending, approvers: []string{"carol"},
				warnings: []string{"carol already approved it; one approval per approver"}},
		},
		{
			name: "2-of-M: two distinct approvers; the window starts at the second",
			events: func(w *ledgerWorld) []state.Event {
				return []state.Event{
					w.request(gA, "two", "alice", "alice", at(0), nil, time.Hour, false),
					w.decide(state.EventApprove, gA, "carol", at(time.Minute), nil),
					w.decide(state.EventApprove, gA, "frank", at(5*time.Minute), nil),
				}
			},
			now: at(30 * time.Minute), grant: gA,
			want: want{status: StatusApproved, access: true, approvers: []string{"carol", "frank"},
				start: at(5 * time.Minute), end: at(65 * time.Minute)},
		},
		{
			name: "approver shortens the window",
			events: func(w *ledgerWorld) []state.Event {
				return []state.Event{
					w.request(gA, "ops", "alice", "alice", at(0), ptr(at(0)), 4*time.Hour, false),
					w.decide(state.EventApprove, gA, "carol", at(time.Minute), ptr(at(time.Hour))),
				}
			},
			now: at(90 * time.Minute), grant: gA,
			want: want{status: StatusApproved, approvers: []string{"carol"}, start: at(0), end: at(time.Hour)},
		},
		{
			name: "approver tries to lengthen the window",
			events: func(w *ledgerWorld) []state.Event {
				return []state.Event{
					w.request(gA, "ops", "alice", "alice", at(0), ptr(at(0)), time.Hour, false),
					w.decide(state.EventApprove, gA, "carol", at(time.Minute), ptr(at(3*time.Hour))),
				}
			},
			now: at(90 * time.Minute), grant: gA,
			want: want{status: StatusApproved, approvers: []string{"carol"}, start: at(0), end: at(time.Hour),
				warnings: []string{"an approver may shorten a window, never lengthen it"}},
		},
		{
			name: "2-of-M: the first approver's shortening holds once the window opens",
			events: func(w *ledgerWorld) []state.Event {
				return []state.Event{
					w.request(gA, "two", "alice", "alice", at(0), nil, 2*time.Hour, false),
					w.decide(state.EventApprove, gA, "carol", at(time.Minute), ptr(at(time.Hour))),
					w.decide(state.EventApprove, gA, "dave", at(10*time.Minute), nil),
				}
			},
			now: at(30 * time.Minute), grant: gA,
			want: want{status: StatusApproved, access: true, approvers: []string{"carol", "dave"}, start: at(10 * time.Minute), end: at(time.Hour)},
		},
		{
			name: "break-glass: counts at once, flagged unreviewed",
			events: func(w *ledgerWorld) []state.Event {
				return []state.Event{w.request(gA, "bg", "alice", "alice", at(0), nil, time.Hour, true)}
			},
			now: at(30 * time.Minute), grant: gA,
			want: want{status: StatusApproved, access: true, start: at(0), end: at(time.Hour), breakGlass: true, unreviewed: true},
		},
		{
			name: "break-glass: reviewed by an approver",
			events: func(w *ledgerWorld) []state.Event {
				return []state.Event{
					w.request(gA, "bg", "alice", "alice", at(0), nil, time.Hour, true),
					w.decide(state.EventReview, gA, "carol", at(20*time.Minute), nil),
				}
			},
			now: at(30 * time.Minute), grant: gA,
			want: want{status: StatusApproved, access: true, start: at(0), end: at(time.Hour), breakGlass: true, unreviewed: false},
		},
		{
			name: "break-glass: a review by a non-approver does not count",
			events: func(w *ledgerWorld) []state.Event {
				return []state.Event{
					w.request(gA, "bg", "alice", "alice", at(0), nil, time.Hour, true),
					w.decide(state.EventReview, gA, "erin", at(20*time.Minute), nil),
				}
			},
			now: at(30 * time.Minute), grant: gA,
			want: want{status: StatusApproved, access: true, start: at(0), end: at(time.Hour), breakGlass: true, unreviewed: true,
				warnings: []string{"review of g-aaaaaaaaaa by erin does not count: erin is not an approver of policy.bg"}},
		},
		{
			name: "break-glass: longer than break_glass max_duration",
			events: func(w *ledgerWorld) []state.Event {
				return []state.Event{w.request(gA, "bg", "alice", "alice", at(0), nil, 2*time.Hour, true)}
			},
			now: at(30 * time.Minute), grant: gA,
			want: want{status: StatusInvalid, breakGlass: true, warnings: []string{"break-glass duration 2h0m0s is longer than policy.bg's break_glass max_duration 1h0m0s"}},
		},
		{
			name: "break-glass: under a policy without break_glass",
			events: func(w *ledgerWorld) []state.Event {
				return []state.Event{w.request(gA, "ops", "alice", "alice", at(0), nil, time.Hour, true)}
			},
			now: at(30 * time.Minute), grant: gA,
			want: want{status: StatusInvalid, breakGlass: true, warnings: []string{"policy.ops has no break_glass block"}},
		},
		{
			name: "break-glass: for someone else",
			events: func(w *ledgerWorld) []state.Event {
				return []state.Event{w.request(gA, "bg", "svc-deploy", "bob", at(0), nil, time.Hour, true)}
			},
			now: at(30 * time.Minute), grant: gA,
			want: want{status: StatusInvalid, breakGlass: true, warnings: []string{"a break-glass grant is for oneself; bob requested it for svc-deploy"}},
		},
		{
			name: "max_active: a second overlapping grant does not count",
			events: func(w *ledgerWorld) []state.Event {
				return []state.Event{
					w.request(gA, "capped", "alice", "alice", at(0), nil, 2*time.Hour, false),
					w.decide(state.EventApprove, gA, "carol", at(time.Minute), nil),
					w.request(gB, "capped", "alice", "alice", at(2*time.Minute), nil, 3*time.Hour, false),
					w.decide(state.EventApprove, gB, "carol", at(3*time.Minute), nil),
				}
			},
			now: at(150 * time.Minute), grant: gB,
			want: want{status: StatusRefused, approvers: []string{"carol"}, start: at(3 * time.Minute), end: at(183 * time.Minute),
				warnings: []string{"g-bbbbbbbbbb does not count: alice already held 1 overlapping grant(s) under policy.capped, its max_active"}},
		},
		{
			name: "approval of an unknown grant",
			events: func(w *ledgerWorld) []state.Event {
				return []state.Event{w.decide(state.EventApprove, gC, "carol", at(time.Minute), nil)}
			},
			now: at(30 * time.Minute), grant: "",
			want: want{warnings: []string{`approve of unknown grant "g-cccccccccc" does not count`}},
		},
		{
			name: "policy deleted after approval: Compute says so",
			events: func(w *ledgerWorld) []state.Event {
				return []state.Event{
					w.request(gA, "gone", "alice", "alice", at(0), nil, 2*time.Hour, false),
					w.decide(state.EventApprove, gA, "carol", at(time.Minute), nil),
				}
			},
			now: at(time.Hour), grant: gA,
			want: want{status: StatusInvalid, approvers: []string{"carol"}, start: at(time.Minute), end: at(121 * time.Minute),
				warnings: []string{"g-aaaaaaaaaa does not count: policy.gone no longer exists"}},
		},
		{
			name: "duplicate request ID",
			events: func(w *ledgerWorld) []state.Event {
				return []state.Event{
					w.request(gA, "ops", "bob", "bob", at(0), nil, time.Hour, false),
					w.request(gA, "ops", "alice", "alice", at(time.Minute), nil, time.Hour, false),
				}
			},
			now: at(30 * time.Minute), grant: gA,
			want: want{status: StatusPending, warnings: []string{"request reuses grant ID g-aaaaaaaaaa; the later request does not count"}},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			w := newLedgerWorld(t)
			events := tc.events(w)
			recs, _ := LedgerGrants(w.cfg, events, tc.now)
			access, reason, plan := grantsAccess(t, w.cfg, events, tc.now, tc.grant)
			// Compute adds its own warnings (a grant whose policy is gone).
			allWarns := slices.Clone(plan.Warnings)
			for _, sub := range tc.want.warnings {
				if !slices.ContainsFunc(allWarns, func(w Warning) bool { return strings.Contains(w.Summary+" "+w.Detail, sub) }) {
					t.Errorf("no warning contains %q; warnings:\n%s", sub, warningsText(allWarns))
				}
			}
			if tc.want.warnings == nil && len(allWarns) > 0 {
				t.Errorf("unexpected warnings:\n%s", warningsText(allWarns))
			}
			if access != tc.want.access {
				t.Errorf("plan adds a member = %v, want %v; plan changes %+v, warnings:\n%s", access, tc.want.access, plan.Changes, warningsText(plan.Warnings))
			}
			if tc.grant == "" {
				return
			}
			i := slices.IndexFunc(recs, func(r GrantRecord) bool { return r.ID == tc.grant })
			if i < 0 {
				t.Fatalf("no record for %s", tc.grant)
			}
			rec := recs[i]
			if rec.Status != tc.want.status {
				t.Errorf("status = %q, want %q (refusal %q)", rec.Status, tc.want.status, rec.Refusal)
			}
			if !slices.Equal(rec.Approvers, tc.want.approvers) {
				t.Errorf("approvers = %v, want %v", rec.Approvers, tc.want.approvers)
			}
			if !tc.want.start.IsZero() && (!rec.Start.Equal(tc.want.start) || !rec.End.Equal(tc.want.end)) {
				t.Errorf("window = %s..%s, want %s..%s", stamp(rec.Start), stamp(rec.End), stamp(tc.want.start), stamp(tc.want.end))
			}
			if rec.BreakGlass != tc.want.breakGlass || rec.Unreviewed != tc.want.unreviewed {
				t.Errorf("break-glass = %v unreviewed = %v, want %v %v", rec.BreakGlass, rec.Unreviewed, tc.want.breakGlass, tc.want.unreviewed)
			}
			if access {
				if !slices.Equal(reason.Approvers, tc.want.approvers) || reason.Grant != tc.grant ||
					reason.BreakGlass != tc.want.breakGlass || reason.Unreviewed != tc.want.unreviewed {
					t.Errorf("plan reason = %+v; want grant %s approvers %v break-glass %v unreviewed %v",
						reason, tc.grant, tc.want.approvers, tc.want.breakGlass, tc.want.unreviewed)
				}
			}
		})
	}
}

// TestRevokeRepositoryGrant: a signed revoke naming a grant block's address
// ends that grant through LedgerView.RevokedRepo; an unsigned one does not.
func TestRevokeRepositoryGrant(t *testing.T) {
	t.Parallel()
	w := newLedgerWorld(t)
	w.cfg.Grants = []*config.Grant{{
		Name: "alice_chg1", Addr: "grant.alice_chg1", Policy: "policy.repo", Principal: "alice",
		Start: at(0), Duration: 2 * time.Hour, Ticket: "CHG1", ApprovedBy: []string{"carol"},
	}}
	good := w.event(state.EventRevoke, "carol", "carol", at(30*time.Minute), state.GrantDecision{Grant: "grant.alice_chg1", Reason: "done early"})
	forged := w.event(state.EventRevoke, "carol", "erin", at(20*time.Minute), state.GrantDecision{Grant: "grant.alice_chg1"})
	unknown := w.event(state.EventRevoke, "carol", "carol", at(20*time.Minute), state.GrantDecision{Grant: "grant.nope"})

	view, warns := Replay(w.cfg, []state.Event{forged, unknown}, at(time.Hour))
	if len(view.RevokedRepo) != 0 {
		t.Fatalf("forged/unknown revocations counted: %v", view.RevokedRepo)
	}
	for _, sub := range []string{"revoke of grant.alice_chg1 by carol does not count: wrong key", "revoke of grant.nope does not count: no such grant block"} {
		if !slices.ContainsFunc(warns, func(w Warning) bool { return strings.Contains(w.Summary, sub) }) {
			t.Errorf("no warning contains %q:\n%s", sub, warningsText(warns))
		}
	}
	view, _ = Replay(w.cfg, []state.Event{good}, at(time.Hour))
	if got := view.RevokedRepo["grant.alice_chg1"]; !got.Equal(at(30 * time.Minute)) {
		t.Fatalf("RevokedRepo = %v, want grant.alice_chg1 at %s", view.RevokedRepo, stamp(at(30*time.Minute)))
	}
	if len(view.Grants) != 0 {
		t.Fatalf("a repository revocation became a ledger grant: %+v", view.Grants)
	}
}

func warningsText(ws []Warning) string {
	var b strings.Builder
	for _, w := range ws {
		b.WriteString("  " + w.Summary)
		if w.Detail != "" {
			b.WriteString(" (" + w.Detail + ")")
		}
		b.WriteString("\n")
	}
	return b.String()
}
