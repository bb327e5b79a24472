package faulttest

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/jitform/jitform/internal/crashpoint"
	"github.com/jitform/jitform/state"
)

// An intent a crash left open is closed by the next apply that reads the
// group: killed after its intents were recorded and before the provider
// call, the apply leaves bob's add to the non-exclusive group open. bob's
// grant is then deleted; the next apply finds bob absent and records so
// (change_failed, observed_absent). Later an administrator adds bob by hand:
// every later apply leaves him alone, because jitform never added him. Before
// the fix the open intent kept bob "added by jitform" forever and the hand
// made membership was removed.
func TestOpenIntentClosedThenHandAddedMemberLeftAlone(t *testing.T) {
	for _, kind := range []string{"ldif", "slapd"} {
		t.Run(kind, func(t *testing.T) {
			dir := t.TempDir()
			d := ldifDirectory(t, dir)
			if kind == "slapd" {
				d = slapdDirectory(t)
			}
			write := func(grantBob bool) {
				if err := os.WriteFile(filepath.Join(dir, "main.hcl"), []byte(policyRepo(d.target, time.Now(), grantBob)), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			write(true)
			_, out, ps := jitform(t, dir, []string{crashpoint.Env + "=" + crashpoint.AfterIntent + ":1"}, "apply", "--auto-approve")
			if ws, _ := ps.Sys().(syscall.WaitStatus); !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
				t.Fatalf("apply was not killed after its intents:\n%s", out)
			}
			if slices.Contains(d.members(t, opsDN), bob) {
				t.Fatal("bob is in ops: the kill came after the provider call")
			}
			var bobIntent string
			for _, c := range ledgerChanges(t, dir) {
				if c.Member == bob && c.Group == "group.ops" && c.Action == "add" {
					bobIntent = c.ID
				}
			}
			if bobIntent == "" {
				t.Fatal("the killed apply recorded no intent to add bob to ops")
			}

			write(false) // bob's grant is gone
			if code, out, _ := jitform(t, dir, nil, "apply", "--auto-approve"); code != 0 {
				t.Fatalf("apply after the crash exited %d:\n%s", code, out)
			}
			if got := closing(t, dir, bobIntent); got != state.EventChangeFailed+" observed_absent" {
				t.Errorf("bob's open intent was closed with %q, want change_failed observed_absent", got)
			}
			checkLedger(t, dir)

			// Later, by hand, outside jitform.
			d.add(t, opsDN, bob)
			for range 2 {
				if code, out, _ := jitform(t, dir, nil, "apply", "--auto-approve"); code != 0 {
					t.Fatalf("apply exited %d:\n%s", code, out)
				}
				if got := d.members(t, opsDN); !slices.Contains(got, bob) {
					t.Fatalf("bob, added by hand to the non-exclusive group, was removed as jitform's: %v", got)
				}
			}
			if code, out, _ := jitform(t, dir, nil, "plan", "--detailed-exitcode"); code != 0 {
				t.Errorf("plan exited %d, want 0 (bob left alone):\n%s", code, out)
			}
			checkLedger(t, dir)
		})
	}
}

// closing is the "type status" of the outcomes recorded for intent id.
func closing(t *testing.T, dir, id string) string {
	t.Helper()
	var got string
	for _, ev := range ledgerEvents(t, dir) {
		if ev.Type != state.EventChangeApplied && ev.Type != state.EventChangeFailed {
			continue
		}
		var o state.ChangeOutcome
		if err := json.Unmarshal(ev.Payload, &o); err != nil {
			t.Fatal(err)
		}
		if o.ID == id {
			if got != "" {
				got += ", "
			}
			got += ev.Type + " " + o.Status
		}
	}
	return got
}
