package operation

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/jitform/jitform/providers"
	"github.com/jitform/jitform/state"
)

const lockPolicy = `
policy "p" {
  groups       = [group.ops]
  eligible     = ["alice"]
  max_duration = "4h"
  approvals    = 1
  approvers    = ["carol"]
}
grant "alice_chg1" {
  policy      = policy.p
  principal   = "alice"
  start       = "2026-11-23T09:00:00Z"
  duration    = "2h"
  approved_by = ["carol"]
}
`

// A member jitform added for a grant and never removed, found gone at the
// next apply, is recorded as removed_by_server in that apply's one write,
// naming the lock that covered it: the expiring link of a ttl_links
// directory, a Windows host's switch, or unknown where no lock was set. The
// next apply does not record it again.
func TestApplyRecordsRemovalsNotMadeByJitform(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		target   string
		lock     string
		hasLock  bool
		groupHCL string
	}{
		{"an AD expiring link", `target "ldap" "corp" {
  url       = "ldaps://dc01.corp.example"
  bind_dn   = "CN=svc,DC=corp,DC=example"
  password  = "x"
  base_dn   = "DC=corp,DC=example"
  flavor    = "active_directory"
  ttl_links = true
}`, state.LockTTLLink, true, `group "ops" {
  target = target.ldap.corp
  dn     = "CN=Ops,DC=corp,DC=example"
}`},
		{"a Windows dead-man's switch", `target "winrm" "web" {
  address  = "web01"
  user     = "svc"
  password = "x"
}`, state.LockWindowsSwitch, true, `group "ops" {
  target = target.winrm.web
  name   = "Administrators"
}`},
		{"no lock: someone else removed it", `target "ldif" "a" {
  path = "a.ldif"
}`, state.LockUnknown, false, `group "ops" {
  target = target.ldif.a
  dn     = "cn=ops,dc=example,dc=org"
}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t, tt.target+"\n"+tt.groupHCL+"\n"+lockPolicy)
			f.d.groups = map[string][]string{"group.ops": {}}
			f.opts.Registry = providers.Registry{"ldap": f.d.open, "winrm": f.d.open, "ldif": f.d.open}
			now := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
			f.opts.Now = func() time.Time { return now }
			ctx := context.Background()

			// 10:00: alice's window is open; jitform adds her.
			res, err := Apply(ctx, f.opts, nil, nil)
			if err != nil {
				t.Fatal(err)
			}
			if added, _, failed := res.Counts(); added != 1 || failed != 0 {
				t.Fatalf("first apply: %+v", res.Outcomes)
			}
			evs := events(t, f.opts.Backend)
			var intent state.Change
			for _, ev := range evs {
				if ev.Type == state.EventChangeIntent {
					_ = json.Unmarshal(ev.Payload, &intent)
				}
			}
			windowEnd := time.Date(2026, 11, 23, 11, 0, 0, 0, time.UTC)
			if tt.hasLock != (intent.Expires != nil) || tt.hasLock && !intent.Expires.Equal(windowEnd) {
				t.Fatalf("intent expires = %v, want %v when the target has a lock", intent.Expires, windowEnd)
			}

			// 11:00 the lock fires (or someone removes her); 11:30 the next apply reads the group.
			f.d.mu.Lock()
			f.d.groups["group.ops"] = nil
			f.d.mu.Unlock()
			now = time.Date(2026, 11, 23, 11, 30, 0, 0, time.UTC)
			cb := &countingBackend{Backend: f.opts.Backend}
			opts := f.opts
			opts.Backend = cb
			res, err = Apply(ctx, opts, nil, nil)
			if err != nil {
				t.Fatal(err)
			}
			if len(res.Outcomes) != 0 {
				t.Errorf("second apply changed %+v; an absent member is not removed again", res.Outcomes)
			}
			if len(res.ServerRemovals) != 1 || res.ServerRemovals[0].Lock != tt.lock {
				t.Fatalf("server removals = %+v, want one by %s", res.ServerRemovals, tt.lock)
			}
			if got := cb.appends.Load(); got != 1 {
				t.Errorf("%d appends, want 1 (apply_started and removed_by_server together)", got)
			}
			after := events(t, f.opts.Backend)[len(evs):]
			if len(after) != 2 || after[0].Type != state.EventApplyStarted || after[1].Type != state.EventRemovedByServer {
				t.Fatalf("second apply wrote %v, want apply_started, removed_by_server", after)
			}
			var st state.ApplyStarted
			var rb state.RemovedByServer
			_ = json.Unmarshal(after[0].Payload, &st)
			if err := json.Unmarshal(after[1].Payload, &rb); err != nil {
				t.Fatal(err)
			}
			want := state.RemovedByServer{Run: st.ID, Intent: intent.ID, Group: "group.ops", Member: dn("alice"),
				Grant: "grant.alice_chg1", Lock: tt.lock, Expires: intent.Expires, ObservedAt: now}
			if rb.Run != want.Run || rb.Intent != want.Intent || rb.Group != want.Group || rb.Member != want.Member ||
				rb.Grant != want.Grant || rb.Lock != want.Lock || !rb.ObservedAt.Equal(now) || (rb.Expires == nil) != (want.Expires == nil) {
				t.Errorf("removed_by_server = %+v, want %+v", rb, want)
			}

			// The next apply has nothing to record: jitform no longer manages her.
			now = now.Add(time.Hour)
			n := len(events(t, f.opts.Backend))
			if _, err := Apply(ctx, f.opts, nil, nil); err != nil {
				t.Fatal(err)
			}
			if got := len(events(t, f.opts.Backend)); got != n {
				t.Errorf("a later apply wrote %d more event(s); the removal is recorded once", got-n)
			}
		})
	}
}

// A managed member still present, or whose add is still uncertain, is not
// a removal by anyone.
func TestApplyRecordsNoServerRemovalForPresentMembers(t *testing.T) {
	t.Parallel()
	f := newFixture(t, `target "ldif" "a" {
  path = "a.ldif"
}
group "ops" {
  target = target.ldif.a
  dn     = "cn=ops,dc=example,dc=org"
}
`+lockPolicy)
	f.d.groups = map[string][]string{"group.ops": {}}
	now := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	f.opts.Now = func() time.Time { return now }
	if _, err := Apply(context.Background(), f.opts, nil, nil); err != nil {
		t.Fatal(err)
	}
	n := len(events(t, f.opts.Backend))
	now = now.Add(10 * time.Minute) // alice still there, window still open
	res, err := Apply(context.Background(), f.opts, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.ServerRemovals) != 0 || len(events(t, f.opts.Backend)) != n {
		t.Errorf("an apply with alice present recorded %+v", res.ServerRemovals)
	}
}
