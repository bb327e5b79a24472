package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jitform/jitform/state"
)

// ledgerRepo writes a ledger with a grant-less history: an add that
// failed, a removal that succeeded, and an outcome whose intent is not in
// the ledger (all through the real local backend).
func ledgerRepo(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	b, err := state.NewLocal(dir)
	if err != nil {
		t.Fatal(err)
	}
	at := func(m int) time.Time { return time.Date(2026, 11, 23, 9, m, 0, 0, time.UTC) }
	ev := func(m int, typ string, v any) state.Event {
		p, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		return state.Event{Time: at(m), Type: typ, Actor: state.SystemActor, Payload: p}
	}
	_, err = b.Append(context.Background(),
		ev(0, state.EventChangeIntent, state.Change{ID: "c-1", PlanID: "p-7f3a", Action: "add", Group: "group.db_admins", Target: "target.ldap.corp",
			Member: "uid=alice,ou=people,dc=example,dc=org", Reason: "grant", Grant: "grant.alice_chg1042", Ticket: "CHG1042"}),
		ev(1, state.EventChangeFailed, state.ChangeOutcome{ID: "c-1", Status: "failed", Error: "insufficient access <50>"}),
		ev(2, state.EventChangeIntent, state.Change{ID: "c-2", PlanID: "p-8e01", Action: "remove", Group: "group.web_admins", Target: "target.ldap.corp",
			Member: "uid=bob,ou=people,dc=example,dc=org", Reason: "window_ended"}),
		ev(3, state.EventChangeApplied, state.ChangeOutcome{ID: "c-2", Status: "done"}),
		ev(4, state.EventChangeFailed, state.ChangeOutcome{ID: "c-9", Status: "unknown", Error: "connection lost & reply not read"}),
	)
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

func runLedger(t *testing.T, dir string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	var out, errb bytes.Buffer
	a := &app{stdin: strings.NewReader(""), stdout: &out, stderr: &errb, getenv: func(string) string { return "" }}
	code = a.main(context.Background(), append([]string{"-C", dir, "ledger"}, args...))
	return out.String(), errb.String(), code
}

// TestLogOutcomeNamesMemberGroupAndPlan: an auditor reads what failed, on
// which group, in which plan, from the outcome line alone.
func TestLogOutcomeNamesMemberGroupAndPlan(t *testing.T) {
	t.Parallel()
	dir := ledgerRepo(t)
	out, errOut, code := runLedger(t, dir, "log")
	if code != exitOK {
		t.Fatalf("ledger log exited %d: %s", code, errOut)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 5 {
		t.Fatalf("ledger log printed %d lines, want 5:\n%s", len(lines), out)
	}
	for _, tc := range []struct {
		line int
		want string
	}{
		{1, "change_failed   jitform      failed: add uid=alice,ou=people,dc=example,dc=org to group.db_admins [c-1, plan p-7f3a]: insufficient access <50>"},
		{3, "change_applied  jitform      done: remove uid=bob,ou=people,dc=example,dc=org from group.web_admins [c-2, plan p-8e01]"},
		{4, "unknown [c-9] (no change_intent with this id in the ledger): connection lost & reply not read"},
		{0, "add uid=alice,ou=people,dc=example,dc=org to group.db_admins (grant grant.alice_chg1042 CHG1042) [c-1, plan p-7f3a]"},
	} {
		if !strings.HasSuffix(lines[tc.line], tc.want) {
			t.Errorf("line %d is\n  %q\nwant it to end with\n  %q", tc.line+1, lines[tc.line], tc.want)
		}
	}
}

// TestLogJSONIsTheStoredLines: --json prints each selected event as the
// exact line the ledger stores (no HTML escaping, same key order), so a
// SIEM can recompute its hash; --since and --type select.
func TestLogJSONIsTheStoredLines(t *testing.T) {
	t.Parallel()
	dir := ledgerRepo(t)
	stored, err := os.ReadFile(filepath.Join(dir, state.StateDirName, state.LedgerFileName))
	if err != nil {
		t.Fatal(err)
	}
	storedLines := strings.SplitAfter(string(stored), "\n")
	pick := func(idx ...int) string {
		var b strings.Builder
		for _, i := range idx {
			b.WriteString(storedLines[i])
		}
		return b.String()
	}
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"all", nil, string(stored)},
		{"one type", []string{"--type", "change_failed"}, pick(1, 4)},
		{"types repeated", []string{"--type", "change_failed", "--type", "change_applied"}, pick(1, 3, 4)},
		{"types comma-separated", []string{"--type", "change_intent,change_applied"}, pick(0, 2, 3)},
		{"since is inclusive", []string{"--since", "2026-11-23T09:03:00Z"}, pick(3, 4)},
		{"since and type", []string{"--since", "2026-11-23T09:01:00Z", "--type", "change_intent"}, pick(2)},
		{"a known type absent from the ledger", []string{"--type", "approve"}, ""},
		{"since after the last event", []string{"--since", "2026-11-24"}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			out, errOut, code := runLedger(t, dir, append([]string{"log", "--json"}, tc.args...)...)
			if code != exitOK {
				t.Fatalf("exit %d: %s", code, errOut)
			}
			if out != tc.want {
				t.Fatalf("ledger log --json %v printed\n%s\nwant\n%s", tc.args, out, tc.want)
			}
		})
	}
	if !strings.Contains(string(stored), "<50>") || !strings.Contains(string(stored), " & ") {
		t.Fatal("the ledger does not hold the characters json.Marshal would escape: the test proves nothing")
	}
	for _, bad := range [][]string{{"--type", "change_aplied"}, {"--since", "yesterday"}, {"--type", ","}} {
		_, errOut, code := runLedger(t, dir, append([]string{"log", "--json"}, bad...)...)
		if code != exitError || !strings.Contains(errOut, bad[0]) {
			t.Errorf("ledger log --json %v: exit %d, %q; want exit 1 naming %s", bad, code, errOut, bad[0])
		}
	}
}
