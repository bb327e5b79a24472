package planner

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/tools/txtar"

	"github.com/jitform/jitform/state"
)

// srcEvent is one line of a ledger_*.txtar scenario's ledger.src section:
// the event as a person meant it, and how the test corrupts it. A decision
// (approve, deny, revoke, review) of a ledger grant is bound to its request
// as jitform grant binds it: unless its payload names a "request", the
// hash of the grant's request event is added before signing. The
// ledger.jsonl section is generated from it, signed with the test-only keys
// in testdata/keys (ed25519 signatures are deterministic, so the generated
// lines are stable and checked in).
type srcEvent struct {
	Type    string          `json:"type"`
	Actor   string          `json:"actor"`
	Time    time.Time       `json:"time"`
	Payload json.RawMessage `json:"payload"`
	// Signer is whose key signs (default: the actor); "-" leaves the event
	// unsigned, as jitform's own change events are.
	Signer string `json:"signer,omitempty"`
	// Tamper replaces the payload after signing (a forged event).
	Tamper json.RawMessage `json:"tamper,omitempty"`
	// SigFrom copies the signature of the event with that seq (a replay).
	SigFrom int64 `json:"sig_from,omitempty"`
}

const keysDir = "../testdata/keys"

// TestLedgerScenarioLedgers checks that every ledger_*.txtar scenario's
// ledger.jsonl is exactly what its ledger.src gives when signed with the
// test keys, so the scenarios exercise real signatures; -update rewrites it.
// (Run it before TestScenarios -update: that one renders the plans.)
func TestLedgerScenarioLedgers(t *testing.T) {
	files, err := filepath.Glob(filepath.Join(scenarioDir, "ledger_*.txtar"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatalf("no ledger_*.txtar scenarios in %s", scenarioDir)
	}
	signers := map[string]ssh.Signer{}
	for _, name := range []string{"alice", "bob", "carol", "dave", "erin"} {
		pemBytes, err := os.ReadFile(filepath.Join(keysDir, name))
		if err != nil {
			t.Fatal(err)
		}
		s, err := ssh.ParsePrivateKey(pemBytes)
		if err != nil {
			t.Fatal(err)
		}
		signers[name] = s
	}
	for _, file := range files {
		t.Run(strings.TrimSuffix(filepath.Base(file), ".txtar"), func(t *testing.T) {
			ar, err := txtar.ParseFile(file)
			if err != nil {
				t.Fatal(err)
			}
			src := sectionIndex(ar, "ledger.src")
			if src < 0 {
				t.Fatalf("%s has no ledger.src section", file)
			}
			got, err := buildLedger(ar.Files[src].Data, signers)
			if err != nil {
				t.Fatalf("%s: ledger.src: %v", file, err)
			}
			i := sectionIndex(ar, "ledger.jsonl")
			if i >= 0 && bytes.Equal(ar.Files[i].Data, got) {
				return
			}
			if !*update {
				t.Fatalf("%s: ledger.jsonl is not what ledger.src gives; run go test ./planner -run TestLedgerScenarioLedgers -update", file)
			}
			if i < 0 {
				ar.Files = append(ar.Files[:src+1], append([]txtar.File{{Name: "ledger.jsonl", Data: got}}, ar.Files[src+1:]...)...)
			} else {
				ar.Files[i].Data = got
			}
			if err := os.WriteFile(file, txtar.Format(ar), 0o644); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func buildLedger(src []byte, signers map[string]ssh.Signer) ([]byte, error) {
	var out bytes.Buffer
	var events []state.Event
	requests := map[string]string{} // grant ID -> hash of its first request
	err := eachLine(src, func(line string) (err error) {
		var s srcEvent
		dec := json.NewDecoder(strings.NewReader(line))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&s); err != nil {
			return err
		}
		seq := int64(len(events) + 1)
		hash := fmt.Sprintf("h%d", seq)
		if s.Payload, err = bindToRequest(s.Type, s.Payload, hash, requests); err != nil {
			return err
		}
		ev := state.Event{Seq: seq, Time: s.Time.UTC(), Type: s.Type, Actor: s.Actor, Payload: s.Payload}
		canon, err := state.CanonicalJSON(ev.Payload)
		if err != nil {
			return err
		}
		ev.Payload = canon
		signer := s.Signer
		if signer == "" {
			signer = s.Actor
		}
		if signer != "-" {
			k := signers[signer]
			if k == nil {
				return fmt.Errorf("no test key for %q in %s", signer, keysDir)
			}
			if err := state.SignEvent(&ev, k); err != nil {
				return err
			}
		}
		if len(s.Tamper) > 0 {
			if ev.Payload, err = state.CanonicalJSON(s.Tamper); err != nil {
				return err
			}
		}
		if s.SigFrom > 0 {
			if s.SigFrom >= seq {
				return fmt.Errorf("sig_from %d is not an earlier event", s.SigFrom)
			}
			ev.Sig = events[s.SigFrom-1].Sig
		}
		ev.Prev = ""
		if seq > 1 {
			ev.Prev = fmt.Sprintf("h%d", seq-1)
		}
		ev.Hash = hash
		events = append(events, ev)
		b, err := json.Marshal(ev)
		if err != nil {
			return err
		}
		out.Write(b)
		out.WriteByte('\n')
		return nil
	})
	return out.Bytes(), err
}

// bindToRequest records a request's hash, and adds "request" (that hash) to
// a decision on a ledger grant whose payload names none.
func bindToRequest(typ string, payload json.RawMessage, hash string, requests map[string]string) (json.RawMessage, error) {
	var m map[string]any
	if err := json.Unmarshal(payload, &m); err != nil {
		return nil, err
	}
	switch typ {
	case state.EventRequest:
		if id, _ := m["id"].(string); id != "" {
			if _, ok := requests[id]; !ok {
				requests[id] = hash
			}
		}
		return payload, nil
	case state.EventApprove, state.EventDeny, state.EventRevoke, state.EventReview:
		id, _ := m["grant"].(string)
		if _, named := m["request"]; named || requests[id] == "" {
			return payload, nil
		}
		m["request"] = requests[id]
		return json.Marshal(m)
	}
	return payload, nil
}
