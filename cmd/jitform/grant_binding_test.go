package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/crypto/ssh"

	"github.com/jitform/jitform/state"
)

// TestGrantForgedRequestReplacement is issue 10's attack on a real local
// ledger: alice requests 30 minutes, carol approves, then alice (who can
// write .jitform/) signs a 4-hour request under the same ID, puts it in the
// first request's place and re-hashes the chain and the head. ledger
// verify passes, but carol's approval signed the hash of the 30-minute
// request, so the grant does not count, and grant show and plan say why.
func TestGrantForgedRequestReplacement(t *testing.T) {
	t.Parallel()
	r := newGrantRepo(t)
	id := r.request("alice", "--policy", "ops", "--duration", "30m", "--ticket", "CHG1", "--reason", "short fix")
	r.mustOK(r.as("carol", "grant", "approve", id))
	if g := r.show(id); g.Status != "approved" || g.Duration != "30m0s" {
		t.Fatalf("before the forgery: %+v", g)
	}

	ledger := filepath.Join(r.dir, ".jitform", state.LedgerFileName)
	raw, err := os.ReadFile(ledger)
	if err != nil {
		t.Fatal(err)
	}
	var events []state.Event
	for _, line := range bytes.Split(bytes.TrimSpace(raw), []byte("\n")) {
		var ev state.Event
		if err := json.Unmarshal(line, &ev); err != nil {
			t.Fatal(err)
		}
		events = append(events, ev)
	}
	i := -1
	for k, ev := range events {
		if ev.Type == state.EventRequest {
			if q, _ := state.DecodeGrantRequest(ev); q.ID == id {
				i = k
			}
		}
	}
	if i < 0 {
		t.Fatalf("no request %s in the ledger", id)
	}
	q, _ := state.DecodeGrantRequest(events[i])
	q.Duration = "4h0m0s"
	forged, err := state.NewSignedEvent(state.EventRequest, "alice", events[i].Time, q)
	if err != nil {
		t.Fatal(err)
	}
	signer, _ := ssh.NewSignerFromKey(r.priv["alice"])
	if err := state.SignEvent(&forged, signer); err != nil {
		t.Fatal(err)
	}
	events[i].Payload, events[i].Sig = forged.Payload, forged.Sig
	var out bytes.Buffer
	prev := ""
	for k := range events {
		events[k].Prev = prev
		if events[k].Hash, err = state.HashEvent(events[k]); err != nil {
			t.Fatal(err)
		}
		prev = events[k].Hash
		line, err := state.EncodeEvent(events[k])
		if err != nil {
			t.Fatal(err)
		}
		out.Write(line)
		out.WriteByte('\n')
	}
	if err := os.WriteFile(ledger, out.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	head, _ := json.Marshal(map[string]any{"seq": len(events), "hash": prev})
	if err := os.WriteFile(filepath.Join(r.dir, ".jitform", state.HeadFileName), head, 0o600); err != nil {
		t.Fatal(err)
	}

	// The forgery is invisible to the chain ...
	r.mustOK(r.run("ledger", "verify"))
	// ... but the grant does not count, and every view says why.
	g := r.show(id)
	if g.Status != "refused" || g.Active || len(g.Approvers) != 0 {
		t.Fatalf("the replaced request must not count: %+v", g)
	}
	if len(g.Decisions) != 1 || g.Decisions[0].Counted || !strings.Contains(g.Decisions[0].Why, "signed for a different request") {
		t.Fatalf("carol's approval must be shown as not counted, signed for a different request: %+v", g.Decisions)
	}
	if !strings.Contains(g.Refusal, "its request was replaced after carol signed a decision on it") {
		t.Fatalf("the grant's refusal does not say the request was replaced: %q", g.Refusal)
	}
	if got := r.list("--active").Grants; len(got) != 1 || got[0].ID != "grant.alice_repo" {
		t.Fatalf("only the repository grant is active: %+v", got)
	}
	// (The test directory resolves nobody, so the plan has errors; its
	// JSON still carries the ledger's warnings.)
	plan, _, _ := r.run("plan", "--json")
	if strings.Contains(plan, `"grant": "`+id+`"`) || !strings.Contains(plan, "signed for a different request") {
		t.Fatalf("plan must not add alice for %s and must warn that the approval was signed for a different request:\n%s", id, plan)
	}
	// A new approval of what is in the ledger now would need a new
	// decision: the grant stays refused, it is not re-approvable.
	_, stderr, code := r.as("dave", "grant", "approve", id)
	if code != 1 || !strings.Contains(stderr, "the request does not count (its request was replaced") {
		t.Fatalf("approving the replaced request: exit %d: %s", code, stderr)
	}
}
