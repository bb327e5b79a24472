package operation

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"slices"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/jitform/jitform/internal/grants"
	"github.com/jitform/jitform/state"
)

// cycleCounts records each cycle's memo counts as Run ends the cycle.
type cycleCounts struct {
	*grants.MemoryMemo
	cycles []grants.MemoStats
}

func (c *cycleCounts) EndCycle() grants.MemoStats {
	st := c.MemoryMemo.EndCycle()
	c.cycles = append(c.cycles, st)
	return st
}

// jitform run verifies a grant's signatures in its first cycle and none
// in the next: the ledger grant still counts (alice stays in the group),
// answered by the memo Run keeps in memory.
func TestRunVerifiesEachSignatureOnce(t *testing.T) {
	keys := map[string]ssh.Signer{}
	hcl := repo + `
policy "q" {
  groups       = [group.gb]
  eligible     = ["alice"]
  max_duration = "4h"
  approvals    = 1
  approvers    = ["carol"]
  approval     = "ledger"
}
`
	for _, name := range []string{"alice", "carol"} {
		_, priv, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		s, err := ssh.NewSignerFromKey(priv)
		if err != nil {
			t.Fatal(err)
		}
		keys[name] = s
		hcl += fmt.Sprintf("actor %q {\n  ssh_key = %q\n}\n", name, string(ssh.MarshalAuthorizedKey(s.PublicKey())))
	}
	f := newFixture(t, hcl)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	now := time.Now().UTC().Truncate(time.Second)
	sign := func(typ, actor string, when time.Time, payload any) state.Event {
		ev, err := state.NewSignedEvent(typ, actor, when, payload)
		if err != nil {
			t.Fatal(err)
		}
		if err := state.SignEvent(&ev, keys[actor]); err != nil {
			t.Fatal(err)
		}
		stored, err := f.opts.Backend.Append(ctx, ev)
		if err != nil {
			t.Fatal(err)
		}
		return stored[0]
	}
	rq := sign(state.EventRequest, "alice", now.Add(-time.Minute), state.GrantRequest{
		ID: "g-aaaaaaaaaa", Policy: "policy.q", Principal: "alice", Duration: "2h0m0s", Reason: "patch"})
	sign(state.EventApprove, "carol", now.Add(-30*time.Second), state.GrantDecision{Grant: "g-aaaaaaaaaa", Request: rq.Hash})

	memo := &cycleCounts{MemoryMemo: grants.NewMemoryMemo()}
	clock := &fakeClock{now: now, stopAfter: 3, cancel: cancel}
	opts := f.opts
	opts.VerifyMemo = memo
	if err := Run(ctx, RunOptions{Options: opts, DriftInterval: time.Minute, Clock: clock}); err != nil {
		t.Fatal(err)
	}
	if len(memo.cycles) != 3 {
		t.Fatalf("%d cycles ended, want 3", len(memo.cycles))
	}
	if st := memo.cycles[0]; st.Misses != 2 || st.Added != 2 || st.Hits != 0 {
		t.Errorf("first cycle: %+v, want both signatures verified and remembered", st)
	}
	for i, st := range memo.cycles[1:] {
		if st.Misses != 0 || st.Added != 0 || st.Hits != 2 || st.Size != 2 {
			t.Errorf("cycle %d: %+v, want 0 verified, both from the memo", i+2, st)
		}
	}
	f.d.mu.Lock()
	defer f.d.mu.Unlock()
	if !slices.Contains(f.d.groups["group.gb"], dn("alice")) {
		t.Errorf("the ledger grant did not add alice: group.gb = %v", f.d.groups["group.gb"])
	}
}
