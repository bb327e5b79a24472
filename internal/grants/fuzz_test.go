package grants

import (
	"fmt"
	"testing"
	"time"

	"github.com/jitform/jitform/internal/grants/sktest"
	"github.com/jitform/jitform/state"
)

// writeTimeRule: the rules Check applies and Apply leaves to the planner
// (or, for until, turns into a warning).
var writeTimeRule = map[string]bool{RuleConforms: true, RuleMaxActive: true, RuleUntil: true, RulePolicyGone: true, RuleNothingToRevoke: true}

// acceptAll is a Verifier for the fuzz target only: it lets every event
// through to the transition rules, which are what is being fuzzed.
type acceptAll struct{}

func (acceptAll) Verify(state.Event) error { return nil }

// declaredKeys is an InfoVerifier for the fuzz target: every signature
// "verifies", made by the actor's declared key with that key's flags (the
// software security keys of newWorld), so the security-key rules run.
type declaredKeys struct{ w *world }

func (d declaredKeys) Verify(ev state.Event) error {
	_, err := d.VerifyInfo(ev)
	return err
}

func (d declaredKeys) VerifyInfo(ev state.Event) (state.SignatureInfo, error) {
	k, ok := d.w.keys[ev.Actor]
	if !ok {
		return state.SignatureInfo{}, fmt.Errorf("%q is not a declared actor", ev.Actor)
	}
	info := state.SignatureInfo{KeyType: k.PublicKey().Type(), SecurityKey: state.IsSecurityKeyType(k.PublicKey().Type())}
	if sk, ok := k.(*sktest.Signer); ok {
		info.Flags = sk.Flags
		if !info.UserPresent() {
			return info, state.ErrNoUserPresence
		}
	}
	return info, nil
}

// FuzzTransitions drives the state machine with arbitrary event sequences
// (6 bytes an event: type, actor, grant, minutes, duration, flags) and
// checks, before each event is applied, that Check (what the CLI asks)
// agrees with Apply (what the replay decides): a refusal at replay is the
// same refusal when writing, and an event accepted when writing is
// accepted at replay. What Check cannot see before signing (a security
// key's flags) CheckSigned sees after: together they refuse exactly what
// the replay refuses. Check must not change the Book, and nothing panics.
func FuzzTransitions(f *testing.F) {
	f.Add([]byte{0, 0, 0, 0, 60, 0, 1, 2, 0, 5, 0, 1, 3, 0, 0, 30, 0, 1})
	f.Add([]byte{0, 0, 0, 0, 30, 2, 0, 0, 1, 60, 30, 2, 0, 0, 2, 120, 30, 2, 4, 2, 0, 10, 0, 1})
	f.Add([]byte{0, 1, 1, 0, 90, 4, 1, 2, 1, 3, 0, 5, 2, 3, 1, 4, 0, 1, 3, 0, 1, 200, 0, 0})
	f.Add([]byte{0, 6, 0, 0, 60, 0x80, 1, 7, 0, 5, 0, 1, 1, 8, 0, 5, 0, 1, 1, 9, 0, 6, 0, 1})
	actors := []string{"alice", "bob", "carol", "dave", "erin", "ALICE", "sam", "uma", "vic", "nora"}
	policies := []string{"ops", "two", "bg", "budget", "capped", "short_ttl", "peer", "repo", "fido", "fido_uv"}
	ids := []string{gA, gB, gC, "grant.alice_chg1"}
	types := []string{state.EventRequest, state.EventApprove, state.EventDeny, state.EventRevoke, state.EventReview}
	f.Fuzz(func(t *testing.T, data []byte) {
		w := newWorld(t)
		b := New(w.cfg, declaredKeys{w})
		hashes := map[string]string{}
		for n := 0; n+6 <= len(data) && n < 6*40; n += 6 {
			c := data[n : n+6]
			typ := types[int(c[0])%len(types)]
			actor := actors[int(c[1])%len(actors)]
			id := ids[int(c[2])%len(ids)]
			when := at(time.Duration(c[3]) * 10 * time.Minute)
			d := time.Duration(c[4]%250+1) * time.Minute
			flags := c[5]
			var payload any
			if typ == state.EventRequest {
				q := state.GrantRequest{ID: id, Policy: "policy." + policies[int(flags>>4)%len(policies)], Principal: actor,
					Duration: d.String(), Ticket: "CHG1", Reason: "fuzz", BreakGlass: flags&2 != 0}
				if flags&4 != 0 {
					q.Start = ptr(when.Add(time.Duration(int(c[4])-100) * time.Minute))
				}
				if flags&8 != 0 {
					q.Principal = "svc-deploy"
				}
				payload = q
			} else {
				dec := state.GrantDecision{Grant: id, Request: hashes[id], Reason: "fuzz"}
				if flags&1 != 0 {
					dec.Request = "bogus"
				}
				if flags&2 != 0 {
					dec.Until = ptr(when.Add(time.Duration(int(c[4])-60) * time.Minute))
				}
				if id == "grant.alice_chg1" && flags&4 != 0 {
					dec.Block = BlockDigest(w.cfg.Grants[0])
				}
				payload = dec
			}
			ev, err := state.NewSignedEvent(typ, actor, when, payload)
			if err != nil {
				t.Fatal(err)
			}
			ev.Seq = int64(n/6 + 1)
			ev.Hash = fmt.Sprintf("h%d", ev.Seq)
			if typ == state.EventRequest && hashes[id] == "" {
				hashes[id] = ev.Hash
			}
			before := fmt.Sprintf("%+v", b.Records())
			_, checked := b.Check(ev)
			if checked == nil {
				checked = b.CheckSigned(ev)
			}
			if after := fmt.Sprintf("%+v", b.Records()); after != before {
				t.Fatalf("event %d: Check changed the Book", ev.Seq)
			}
			applied := b.Apply(ev)
			switch {
			case applied != nil && (applied.Rule == RuleSKPresence || applied.Rule == RuleSKVerification) && checked != nil:
				// The replay checks the signature and its flags first (they
				// exist only once signed); writing refuses too, by the first
				// rule that holds before signing.
			case applied != nil && (checked == nil || checked.Rule != applied.Rule):
				t.Fatalf("event %d (%s by %s of %s): replay refuses (%s: %s) but writing would not (%v)", ev.Seq, typ, actor, id, applied.Rule, applied.Reason, checked)
			case applied != nil && checked.Reason != applied.Reason:
				t.Fatalf("event %d: different words:\n  check:  %s\n  replay: %s", ev.Seq, checked.Reason, applied.Reason)
			case applied == nil && checked != nil && !writeTimeRule[checked.Rule]:
				t.Fatalf("event %d (%s by %s of %s): writing refuses (%s: %s), which is not a write-time rule, but replay accepts",
					ev.Seq, typ, actor, id, checked.Rule, checked.Reason)
			}
		}
		b.Finish(at(48 * time.Hour))
		_ = b.Records()
	})
}
