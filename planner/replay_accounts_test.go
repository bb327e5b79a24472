package planner

import (
	"encoding/json"
	"reflect"
	"sort"
	"testing"
	"time"

	"github.com/jitform/jitform/config"
	"github.com/jitform/jitform/state"
)

// TestReplayKeepsEachAccountsRecord: what the ledger says of accounts:
// which declared accounts jitform enabled, which ephemeral accounts it
// created (the plan deletes only those), and to which grants it delivered
// a password. Each case is one rule of an outcome closing an account
// change.
func TestReplayKeepsEachAccountsRecord(t *testing.T) {
	t.Parallel()
	const (
		acct = "account.svc"
		tmp  = "account.tmp"
	)
	seq := int64(0)
	ev := func(typ string, payload any) state.Event {
		seq++
		b, _ := json.Marshal(payload)
		return state.Event{Seq: seq, Time: time.Date(2026, 11, 23, 9, 0, int(seq), 0, time.UTC), Type: typ, Actor: state.SystemActor, Payload: b}
	}
	change := func(id, action, group, member, grant string) state.Event {
		return ev(state.EventChangeIntent, state.Change{ID: id, Kind: KindAccount, Action: action, Group: group, Member: member, Grant: grant})
	}
	out := func(typ, id, status string, creds ...string) state.Event {
		o := state.ChangeOutcome{ID: id, Status: status}
		for _, g := range creds {
			if o.Credentials == nil {
				o.Credentials = map[string]string{}
			}
			o.Credentials[g] = "0123456789abcdef"
		}
		return ev(typ, o)
	}
	const applied, failed = state.EventChangeApplied, state.EventChangeFailed
	for _, tc := range []struct {
		name      string
		events    func() []state.Event
		enabled   []string // accounts jitform enabled
		instances []string // ACCOUNT MEMBER jitform created
		creds     []string // ACCOUNT GRANT delivered a password
	}{
		{"an enable applied with a password records both", func() []state.Event {
			return []state.Event{change("c1", ActionEnable, acct, "cn=svc", "grant.a"), out(applied, "c1", "done", "grant.a")}
		}, []string{acct}, nil, []string{acct + " grant.a"}},
		{"an enable reported already done records the password it set", func() []state.Event {
			return []state.Event{change("c1", ActionEnable, acct, "cn=svc", "grant.a"), out(applied, "c1", "already", "grant.a")}
		}, []string{acct}, nil, []string{acct + " grant.a"}},
		{"an enable that sets no password keeps the one delivered before", func() []state.Event {
			return []state.Event{change("c1", ActionEnable, acct, "cn=svc", "grant.a"), out(applied, "c1", "done", "grant.a"),
				change("c2", ActionEnable, acct, "cn=svc", "grant.b"), out(applied, "c2", "done")}
		}, []string{acct}, nil, []string{acct + " grant.a"}},
		{"a new password replaces every one delivered before", func() []state.Event {
			return []state.Event{change("c1", ActionEnable, acct, "cn=svc", "grant.a"), out(applied, "c1", "done", "grant.a"),
				change("c2", ActionEnable, acct, "cn=svc", "grant.b"), out(applied, "c2", "done", "grant.b", "grant.c")}
		}, []string{acct}, nil, []string{acct + " grant.b", acct + " grant.c"}},
		{"an enable reported done in a change_failed event delivered nothing", func() []state.Event {
			return []state.Event{change("c1", ActionEnable, acct, "cn=svc", "grant.a"), out(failed, "c1", "done", "grant.a")}
		}, []string{acct}, nil, nil},
		{"an enable found absent by a later read is not enabled", func() []state.Event {
			return []state.Event{change("c1", ActionEnable, acct, "cn=svc", "grant.a"), out(failed, "c1", "unknown"), out(failed, "c1", StatusObservedAbsent)}
		}, nil, nil, nil},
		{"an enable found present by a later read stays enabled", func() []state.Event {
			return []state.Event{change("c1", ActionEnable, acct, "cn=svc", "grant.a"), out(failed, "c1", "unknown"), out(applied, "c1", StatusObservedPresent)}
		}, []string{acct}, nil, nil},
		{"a failed enable is not enabled", func() []state.Event {
			return []state.Event{change("c1", ActionEnable, acct, "cn=svc", "grant.a"), out(failed, "c1", "failed")}
		}, nil, nil, nil},
		{"a disable found disabled by a later read ends the record of the enable", func() []state.Event {
			return []state.Event{change("c1", ActionEnable, acct, "cn=svc", "grant.a"), out(applied, "c1", "done", "grant.a"),
				change("c2", ActionDisable, acct, "cn=svc", ""), out(failed, "c2", "unknown"), out(failed, "c2", StatusObservedAbsent)}
		}, nil, nil, []string{acct + " grant.a"}},
		{"a disable applied ends the record and the delivered passwords", func() []state.Event {
			return []state.Event{change("c1", ActionEnable, acct, "cn=svc", "grant.a"), out(applied, "c1", "done", "grant.a"),
				change("c2", ActionDisable, acct, "cn=svc", ""), out(applied, "c2", "done")}
		}, nil, nil, nil},
		{"a failed disable leaves it enabled", func() []state.Event {
			return []state.Event{change("c1", ActionEnable, acct, "cn=svc", "grant.a"), out(applied, "c1", "done", "grant.a"),
				change("c2", ActionDisable, acct, "cn=svc", ""), out(failed, "c2", "failed")}
		}, []string{acct}, nil, []string{acct + " grant.a"}},
		{"a create applied records the account and its grant's password", func() []state.Event {
			return []state.Event{change("c1", ActionCreate, tmp, "cn=t1", "grant.a"), out(applied, "c1", "done", "grant.a")}
		}, nil, []string{tmp + " cn=t1"}, []string{tmp + " grant.a"}},
		{"a failed create keeps the record: an earlier create may have made it", func() []state.Event {
			return []state.Event{change("c1", ActionCreate, tmp, "cn=t1", "grant.a"), out(failed, "c1", "failed")}
		}, nil, []string{tmp + " cn=t1"}, nil},
		{"a create found absent by a later read ends the record", func() []state.Event {
			return []state.Event{change("c1", ActionCreate, tmp, "cn=t1", "grant.a"), out(applied, "c1", "done", "grant.a"),
				change("c2", ActionCreate, tmp, "cn=t1", "grant.a"), out(failed, "c2", "unknown"), out(failed, "c2", StatusObservedAbsent)}
		}, nil, nil, nil},
		{"a delete applied ends the record and its grant's password", func() []state.Event {
			return []state.Event{change("c1", ActionCreate, tmp, "cn=t1", "grant.a"), out(applied, "c1", "done", "grant.a"),
				change("c2", ActionCreate, tmp, "cn=t2", "grant.b"), out(applied, "c2", "done", "grant.b"),
				change("c3", ActionDelete, tmp, "cn=t1", ""), out(applied, "c3", "done")}
		}, nil, []string{tmp + " cn=t2"}, []string{tmp + " grant.b"}},
		{"a delete found absent by a later read ends the record", func() []state.Event {
			return []state.Event{change("c1", ActionCreate, tmp, "cn=t1", "grant.a"), out(applied, "c1", "done", "grant.a"),
				change("c3", ActionDelete, tmp, "cn=t1", ""), out(failed, "c3", "unknown"), out(failed, "c3", StatusObservedAbsent)}
		}, nil, nil, nil},
		{"a failed delete keeps the record", func() []state.Event {
			return []state.Event{change("c1", ActionCreate, tmp, "cn=t1", "grant.a"), out(applied, "c1", "done", "grant.a"),
				change("c3", ActionDelete, tmp, "cn=t1", ""), out(failed, "c3", "failed")}
		}, nil, []string{tmp + " cn=t1"}, []string{tmp + " grant.a"}},
	} {
		seq = 0
		v, _ := Replay(&config.Config{}, tc.events(), time.Date(2026, 11, 24, 0, 0, 0, 0, time.UTC))
		var enabled, instances, creds []string
		for a := range v.Accounts {
			enabled = append(enabled, a)
		}
		for a, m := range v.Instances {
			for id := range m {
				instances = append(instances, a+" "+id)
			}
		}
		for a, m := range v.Credentials {
			for g, ok := range m {
				if ok {
					creds = append(creds, a+" "+g)
				}
			}
		}
		sort.Strings(enabled)
		sort.Strings(instances)
		sort.Strings(creds)
		if !reflect.DeepEqual(enabled, tc.enabled) || !reflect.DeepEqual(instances, tc.instances) || !reflect.DeepEqual(creds, tc.creds) {
			t.Errorf("%s:\n enabled %v, created %v, passwords %v\nwant    %v,         %v,          %v", tc.name, enabled, instances, creds, tc.enabled, tc.instances, tc.creds)
		}
	}
}

// TestAMemberTheServerRemovedIsNoLongerManaged: a removed_by_server event
// (an expiring link or a host's switch removed a member jitform added)
// leaves jitform nothing to undo; one whose payload does not decode
// changes nothing.
func TestAMemberTheServerRemovedIsNoLongerManaged(t *testing.T) {
	t.Parallel()
	rbs := func(seq int64, payload string) state.Event {
		return state.Event{Seq: seq, Type: state.EventRemovedByServer, Actor: state.SystemActor, Payload: json.RawMessage(payload)}
	}
	events := []state.Event{
		intent(1, "c1", "add", "group.g", "u1", "grant.a"), outcome(2, state.EventChangeApplied, "c1", "done"),
		intent(3, "c2", "add", "group.g", "u2", "grant.b"), outcome(4, state.EventChangeApplied, "c2", "done"),
		rbs(5, `{"run":"r","intent":"c1","group":"group.g","member":"u1","lock":"ttl_link","observed_at":"2026-11-23T11:00:00Z"}`),
		rbs(6, `{"group":["group.g"],"member":"u2"}`),
	}
	v, _ := Replay(&config.Config{}, events, time.Date(2026, 11, 24, 0, 0, 0, 0, time.UTC))
	if _, ok := v.Managed["group.g"]["u1"]; ok {
		t.Error("u1, removed by the server, is still managed")
	}
	if _, ok := v.Managed["group.g"]["u2"]; !ok {
		t.Error("u2 is no longer managed after a removed_by_server event that does not decode")
	}
}
