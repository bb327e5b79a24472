package state

import (
	"encoding/json"
	"fmt"
	"reflect"
	"testing"
	"time"
)

// cev is one event of a compaction case, with the label the case's
// expectations use.
type cev struct {
	label string
	ev    Event
}

func cIntent(label, id, action, group, member string) cev {
	p, _ := json.Marshal(Change{ID: id, Action: action, Group: group, Member: member, Reason: "grant"})
	return cev{label, Event{Type: EventChangeIntent, Actor: SystemActor, Payload: p}}
}

func cAccount(label, id, action, account, member string) cev {
	p, _ := json.Marshal(Change{ID: id, Kind: "account", Action: action, Group: account, Member: member, Grant: "g-aaaaaaaaaa"})
	return cev{label, Event{Type: EventChangeIntent, Actor: SystemActor, Payload: p}}
}

func cOutcome(label, typ, id, status string) cev {
	p, _ := json.Marshal(ChangeOutcome{ID: id, Status: status})
	return cev{label, Event{Type: typ, Actor: SystemActor, Payload: p}}
}

func cRaw(label, typ, payload string) cev {
	return cev{label, Event{Type: typ, Actor: SystemActor, Payload: json.RawMessage(payload)}}
}

// compacted returns the labels of the events CompactForReplay keeps, in
// the order it returns them.
func compacted(t *testing.T, evs []cev) []string {
	t.Helper()
	events := make([]Event, len(evs))
	bySeq := map[int64]string{}
	at := time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC)
	for i, e := range evs {
		events[i] = e.ev
		events[i].Seq, events[i].Time = int64(i+1), at.Add(time.Duration(i)*time.Second)
		bySeq[int64(i+1)] = e.label
	}
	var got []string
	for _, e := range CompactForReplay(events) {
		got = append(got, bySeq[e.Seq])
	}
	return got
}

// TestCompactionKeepsWhatTheReplayNeeds: the plan snapshot
// (CompactForReplay) keeps, in ledger order, what the planner's replay
// reads to decide who jitform manages and what is uncertain, and drops
// the history of members it no longer manages. Each case is one rule.
func TestCompactionKeepsWhatTheReplayNeeds(t *testing.T) {
	const (
		g, h     = "group.g", "group.h"
		applied  = EventChangeApplied
		failed   = EventChangeFailed
		acct     = "account.svc"
		ephemera = "account.tmp"
	)
	for _, tc := range []struct {
		name   string
		events []cev
		keep   []string
	}{
		{"the history of a member no longer managed is dropped, the change that took it out stays for its group",
			[]cev{
				cIntent("add1", "c1", "add", g, "u1"), cOutcome("done1", applied, "c1", "done"),
				cIntent("rm2", "c2", "remove", g, "u1"), cOutcome("done2", applied, "c2", "done"),
				cIntent("add3", "c3", "add", g, "u1"), cOutcome("done3", applied, "c3", "already"),
				cIntent("rm4", "c4", "remove", g, "u1"), cOutcome("done4", applied, "c4", "already"),
			},
			[]string{"rm4", "done4"}},
		{"a managed member keeps the add that made it so, its earlier history is dropped",
			[]cev{
				cIntent("add1", "c1", "add", g, "u1"), cOutcome("done1", applied, "c1", "done"),
				cIntent("rm2", "c2", "remove", g, "u1"), cOutcome("done2", applied, "c2", "done"),
				cIntent("add3", "c3", "add", g, "u1"), cOutcome("done3", applied, "c3", "done"),
			},
			[]string{"add3", "done3"}},
		{"an intent without an outcome is kept",
			[]cev{
				cIntent("add1", "c1", "add", g, "u1"), cOutcome("done1", applied, "c1", "done"),
				cIntent("rm2", "c2", "remove", g, "u1"), cOutcome("done2", applied, "c2", "done"),
				cIntent("rm3", "c3", "remove", g, "u2"),
			},
			[]string{"rm3"}},
		{"a change whose outcome is unknown is kept with it",
			[]cev{
				cIntent("add1", "c1", "add", g, "u1"), cOutcome("done1", applied, "c1", "done"),
				cIntent("rm2", "c2", "remove", g, "u1"), cOutcome("done2", applied, "c2", "done"),
				cIntent("rm3", "c3", "remove", g, "u2"), cOutcome("unk3", failed, "c3", "unknown"),
			},
			[]string{"rm3", "unk3"}},
		{"a change the replay warns about (an outcome after unknown that is no observation) is kept",
			[]cev{
				cIntent("rm1", "c1", "remove", g, "u1"), cOutcome("unk1", failed, "c1", "unknown"),
				cOutcome("late1", applied, "c1", "done"), cOutcome("seen1", applied, "c1", "observed_absent"),
				cIntent("add2", "c2", "add", g, "u2"),
			},
			[]string{"rm1", "unk1", "late1", "seen1", "add2"}},
		{"a read that finds the member absent closes an unknown change and ends its management",
			[]cev{
				cIntent("add1", "c1", "add", g, "u1"), cOutcome("unk1", failed, "c1", "unknown"),
				cOutcome("seen1", failed, "c1", "observed_absent"),
				cIntent("add2", "c2", "add", g, "u2"),
			},
			[]string{"add2"}},
		{"a read that finds the member present closes an unknown change",
			[]cev{
				cIntent("rm1", "c1", "remove", g, "u1"), cOutcome("unk1", failed, "c1", "unknown"),
				cOutcome("seen1", applied, "c1", "observed_present"),
				cIntent("add2", "c2", "add", g, "u2"),
			},
			[]string{"add2"}},
		{"an add found present after unknown stays managed",
			[]cev{
				cIntent("add1", "c1", "add", g, "u1"), cOutcome("unk1", failed, "c1", "unknown"),
				cOutcome("seen1", applied, "c1", "observed_present"),
				cIntent("add2", "c2", "add", g, "u2"),
			},
			[]string{"add1", "unk1", "seen1", "add2"}},
		{"a failed add ends the management its intent began",
			[]cev{
				cIntent("add1", "c1", "add", g, "u1"), cOutcome("fail1", failed, "c1", "failed"),
				cIntent("add2", "c2", "add", g, "u2"),
			},
			[]string{"add2"}},
		{"a failed remove leaves the member managed: the add is kept",
			[]cev{
				cIntent("add1", "c1", "add", g, "u1"), cOutcome("done1", applied, "c1", "done"),
				cIntent("rm2", "c2", "remove", g, "u1"), cOutcome("fail2", failed, "c2", "failed"),
			},
			[]string{"add1", "done1"}},
		{"a remove whose done comes as change_failed does not end the management",
			[]cev{
				cIntent("add1", "c1", "add", g, "u1"), cOutcome("done1", applied, "c1", "done"),
				cIntent("rm2", "c2", "remove", g, "u1"), cOutcome("odd2", failed, "c2", "done"),
			},
			[]string{"add1", "done1"}},
		{"a second certain outcome is kept (the replay warns), the closed change is not",
			[]cev{
				cIntent("rm1", "c1", "remove", g, "u1"), cOutcome("done1", applied, "c1", "done"),
				cOutcome("again1", applied, "c1", "done"),
				cIntent("add2", "c2", "add", g, "u2"),
			},
			[]string{"again1", "add2"}},
		{"an outcome for an intent that is not in the ledger is kept",
			[]cev{
				cOutcome("orphan", applied, "c9", "done"), cOutcome("orphan2", failed, "c8", "failed"),
			},
			[]string{"orphan", "orphan2"}},
		{"an intent ID written twice keeps every event of it",
			[]cev{
				cIntent("rm1", "c1", "remove", g, "u1"), cOutcome("done1", applied, "c1", "done"),
				cIntent("rm1b", "c1", "remove", h, "u9"), cOutcome("done1b", applied, "c1", "done"),
				cIntent("add5", "c5", "add", g, "u5"), cIntent("add6", "c6", "add", h, "u6"),
			},
			[]string{"rm1", "done1", "rm1b", "done1b", "add5", "add6"}},
		{"a member a kept change touches keeps the change that last decided it",
			[]cev{
				cIntent("add1", "c1", "add", g, "u1"), cOutcome("done1", applied, "c1", "done"),
				cIntent("rm2", "c2", "remove", g, "u1"), cOutcome("done2", applied, "c2", "done"),
				cIntent("rm3", "c3", "remove", g, "u1"),
			},
			[]string{"rm2", "done2", "rm3"}},
		{"a group whose members were never decided keeps its last change",
			[]cev{
				cIntent("rm1", "c1", "remove", g, "u1"), cOutcome("fail1", failed, "c1", "failed"),
				cIntent("rm2", "c2", "remove", g, "u2"), cOutcome("fail2", failed, "c2", "failed"),
			},
			[]string{"rm2", "fail2"}},
		{"a group keeps the change that last decided one of its members, not merely its last change",
			[]cev{
				cIntent("add1", "c1", "add", g, "u1"), cOutcome("done1", applied, "c1", "done"),
				cIntent("rm2", "c2", "remove", g, "u1"), cOutcome("done2", applied, "c2", "done"),
				cIntent("rm3", "c3", "remove", g, "u2"), cOutcome("fail3", failed, "c3", "failed"),
			},
			[]string{"rm2", "done2"}},
		{"every group keeps a change",
			[]cev{
				cIntent("rm1", "c1", "remove", g, "u1"), cOutcome("done1", applied, "c1", "done"),
				cIntent("rm2", "c2", "remove", h, "u1"), cOutcome("done2", applied, "c2", "done"),
			},
			[]string{"rm1", "done1", "rm2", "done2"}},
		{"every account change is kept, group churn is still dropped",
			[]cev{
				cAccount("en1", "a1", "enable", acct, "cn=svc"), cOutcome("en1done", applied, "a1", "done"),
				cAccount("en2", "a2", "enable", acct, "cn=svc"), cOutcome("en2done", applied, "a2", "already"),
				cAccount("dis3", "a3", "disable", acct, "cn=svc"), cOutcome("dis3done", applied, "a3", "done"),
				cAccount("mk4", "a4", "create", ephemera, "cn=t1"), cOutcome("mk4done", applied, "a4", "done"),
				cAccount("mk5", "a5", "create", ephemera, "cn=t2"), cOutcome("mk5gone", failed, "a5", "observed_absent"),
				cAccount("del6", "a6", "delete", ephemera, "cn=t1"), cOutcome("del6done", applied, "a6", "done"),
				cIntent("add7", "c7", "add", g, "u1"), cOutcome("done7", applied, "c7", "done"),
				cIntent("rm8", "c8", "remove", g, "u1"), cOutcome("done8", applied, "c8", "done"),
			},
			[]string{"en1", "en1done", "en2", "en2done", "dis3", "dis3done", "mk4", "mk4done", "mk5", "mk5gone", "del6", "del6done", "rm8", "done8"}},
		{"an account change whose ID a group change reuses is kept whole",
			[]cev{
				cAccount("en1", "c1", "enable", acct, "cn=svc"), cOutcome("en1done", applied, "c1", "done"),
				cIntent("add1", "c1", "add", g, "u1"), cOutcome("add1done", applied, "c1", "done"),
			},
			[]string{"en1", "en1done", "add1", "add1done"}},
		{"events that are not membership changes are all kept",
			[]cev{
				cRaw("req", EventRequest, `{"id":"g-aaaaaaaaaa"}`), cRaw("appr", EventApprove, `{"grant":"g-aaaaaaaaaa"}`),
				cRaw("run", EventApplyStarted, `{"id":"r1"}`), cRaw("sess", EventSessionsEnded, `{"id":"c1"}`),
				cRaw("rbs", EventRemovedByServer, `{"group":"group.g","member":"u1"}`),
				cIntent("rm1", "c1", "remove", g, "u1"), cOutcome("done1", applied, "c1", "done"),
				cIntent("rm2", "c2", "remove", g, "u2"), cOutcome("done2", applied, "c2", "done"),
			},
			[]string{"req", "appr", "run", "sess", "rbs", "rm2", "done2"}},
		{"malformed change events are kept (the replay warns about each)",
			[]cev{
				cRaw("notjson", EventChangeIntent, `{"id":`), cRaw("noid", EventChangeIntent, `{"id":"","group":"group.g","member":"u1","action":"add"}`),
				cRaw("nogroup", EventChangeIntent, `{"id":"c3","group":"","member":"u1","action":"add"}`),
				cRaw("nomember", EventChangeIntent, `{"id":"c4","group":"group.g","member":"","action":"add"}`),
				cRaw("badout", EventChangeApplied, `{"id":7}`), cRaw("badout2", EventChangeFailed, `[]`),
				cIntent("rm1", "c1", "remove", g, "u1"), cOutcome("done1", applied, "c1", "done"),
			},
			[]string{"notjson", "noid", "nogroup", "nomember", "badout", "badout2", "rm1", "done1"}},
		{"a payload that is not JSON is not read as a change, however readable its fields",
			[]cev{
				cRaw("open", EventChangeIntent, `{`), cRaw("key", EventChangeIntent, `{"id"`), cRaw("cut", EventChangeIntent, `{"id":"c0"`),
				cRaw("nocolon", EventChangeIntent, `{"id"!"c1","action"!"remove","group"!"group.g","member"!"u1"}`), cOutcome("o1", applied, "c1", "done"),
				cRaw("trailing", EventChangeIntent, `{"id":"c2","action":"remove","group":"group.g","member":"u2"}x`), cOutcome("o2", applied, "c2", "done"),
				cRaw("unclosed", EventChangeIntent, `{"id":"c3","action":"remove","group":"group.g","member":"u3"x`), cOutcome("o3", applied, "c3", "done"),
				cRaw("nocomma", EventChangeIntent, `{"id":"c4"x"action":"remove"x"group":"group.g"x"member":"u4"}`), cOutcome("o4", applied, "c4", "done"),
				cIntent("add9", "c9", "add", g, "u9"),
			},
			[]string{"open", "key", "cut", "nocolon", "o1", "trailing", "o2", "unclosed", "o3", "nocomma", "o4", "add9"}},
		{"a payload key that folds to a field name outside ASCII is read as encoding/json reads it",
			[]cev{
				cIntent("add1", "c1", "add", g, "u1"), cRaw("fail1", EventChangeFailed, "{\"id\":\"c1\",\"\u017ftatus\":\"failed\"}"),
				cIntent("add2", "c2", "add", g, "u2"), cRaw("fail2", EventChangeFailed, "{\"\u212aind\":\"x\",\"id\":\"c2\",\"status\":\"failed\"}"),
				cIntent("add3", "c3", "add", g, "u3"),
			},
			[]string{"add3"}},
		{"payload keys in capitals are read as encoding/json reads them, case-insensitively",
			[]cev{
				cRaw("add1", EventChangeIntent, `{"ID":"c1","Action":"add","Group":"group.g","Member":"u1"}`),
				cRaw("done1", EventChangeApplied, `{"Id":"c1","Status":"done"}`),
				cRaw("rm2", EventChangeIntent, `{"iD":"c2","aCTION":"remove","gROUP":"group.g","mEMBER":"u1"}`),
				cRaw("done2", EventChangeApplied, `{"ID":"c2","STATUS":"done"}`),
				cIntent("add3", "c3", "add", g, "u3"), cOutcome("done3", applied, "c3", "done"),
			},
			[]string{"add3", "done3"}},
		{"payloads with other fields, escapes and nesting decode to the same change",
			[]cev{
				cRaw("add1", EventChangeIntent, `{"action":"add","expires":"2026-11-23T10:00:00Z","extra":{"a":[1,{"b":null}],"c":true},"group":"group.\u0067","id":"c1","member":"u1","plan_id":"p","run":"r"}`),
				cRaw("done1", EventChangeApplied, `{"credentials":{"g-aaaaaaaaaa":"f"},"error":"","id":"c1","password_rotated":true,"status":"done"}`),
				cIntent("rm2", "c2", "remove", g, "u1"), cOutcome("done2", applied, "c2", "done"),
				cIntent("add3", "c3", "add", g, "u1"), cOutcome("done3", applied, "c3", "done"),
				cRaw("rm4", EventChangeIntent, `{ "id" : "c4" , "action":"remove","group":"group.g","member":"u1"}`),
				cRaw("done4", EventChangeApplied, "{\"id\":\"c4\",\n\"status\":\"done\"}"),
			},
			[]string{"rm4", "done4"}},
	} {
		if got := compacted(t, tc.events); !reflect.DeepEqual(got, tc.keep) {
			t.Errorf("%s:\n kept %v\n want %v", tc.name, got, tc.keep)
		}
	}
}

// TestCompactionOfALongLedgerAcrossDecodeChunks: a ledger longer than one
// decode chunk (decodeReplayFields splits the payloads in chunks of
// chunkLines) pairs each outcome with its own intent: of 12,000 changes
// of members added and removed, only the add of the one member still
// managed is kept (it also stands for its group).
func TestCompactionOfALongLedgerAcrossDecodeChunks(t *testing.T) {
	var evs []cev
	n := 3 * chunkLines / 4
	for i := range n {
		m := fmt.Sprintf("u%d", i%40)
		id := fmt.Sprintf("c%d", i)
		evs = append(evs, cIntent("", id+"a", "add", "group.g", m), cOutcome("", EventChangeApplied, id+"a", "done"))
		evs = append(evs, cIntent("", id+"r", "remove", "group.g", m), cOutcome("", EventChangeApplied, id+"r", "done"))
	}
	evs = append(evs, cIntent("add", "last", "add", "group.g", "u7"), cOutcome("added", EventChangeApplied, "last", "done"))
	evs = append(evs, cRaw("ended", EventSessionsEnded, `{"id":"x"}`))
	if got, want := compacted(t, evs), []string{"add", "added", "ended"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("kept %v, want %v", got, want)
	}
}
