package report

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/jitform/jitform/config"
	"github.com/jitform/jitform/state"
)

var t0 = time.Date(2026, 11, 16, 0, 0, 0, 0, time.UTC)

func at(d time.Duration) time.Time { return t0.Add(d) }

const week = 7 * 24 * time.Hour

// world is a config built in Go and a ledger of change events.
type world struct {
	cfg    *config.Config
	events []state.Event
	n      int
}

func newWorld() *world {
	target := &config.Target{Kind: "ldif", Name: "dir", Addr: "target.ldif.dir", LDIF: &config.LDIFTarget{}}
	cfg := &config.Config{Targets: []*config.Target{target}}
	for _, g := range []string{"db_admins", "web_admins"} {
		cfg.Groups = append(cfg.Groups, &config.Group{Name: g, Addr: "group." + g, BaseAddr: "group." + g, Target: target, Exclusive: true})
	}
	cfg.Policies = []*config.Policy{{Name: "db", Addr: "policy.db", Groups: []string{"group.db_admins"}, MaxDuration: 8 * time.Hour,
		Approvals: 1, Approvers: []string{"carol"}, Approval: config.ApprovalRepository}}
	return &world{cfg: cfg}
}

func (w *world) grant(name, principal string, start time.Time, d time.Duration, approver string) {
	w.cfg.Grants = append(w.cfg.Grants, &config.Grant{Name: name, Addr: "grant." + name, Policy: "policy.db", Principal: principal,
		Start: start, Duration: d, Ticket: "CHG" + name, ApprovedBy: []string{approver}})
}

func (w *world) ev(t time.Time, typ string, payload any) {
	raw, _ := json.Marshal(payload)
	w.events = append(w.events, state.Event{Seq: int64(len(w.events) + 1), Time: t, Type: typ, Actor: state.SystemActor, Payload: raw})
}

// change records an intent at t and, unless status is "", its outcome at
// t+1s.
func (w *world) change(t time.Time, action, group, member, grant, status string) {
	w.n++
	id := fmt.Sprintf("c%d", w.n)
	reason := "grant"
	if action == "remove" {
		reason = "window_ended"
	}
	w.ev(t, state.EventChangeIntent, state.Change{ID: id, Action: action, Group: "group." + group, Target: "target.ldif.dir",
		Member: member, Name: member, Reason: reason, Grant: grant, Policy: "policy.db"})
	switch status {
	case "":
	case "done", "already":
		w.ev(t.Add(time.Second), state.EventChangeApplied, state.ChangeOutcome{ID: id, Status: status})
	default:
		w.ev(t.Add(time.Second), state.EventChangeFailed, state.ChangeOutcome{ID: id, Status: status, Error: "boom"})
	}
}

func (w *world) build(since, until time.Time) *Report {
	return Build(Input{Config: w.cfg, Events: w.events, Since: since, Until: until, Now: until.Add(time.Hour)})
}

func member(r *Report, group, m string) *Member {
	for gi := range r.Groups {
		for mi := range r.Groups[gi].Rows {
			if r.Groups[gi].Group == "group."+group && r.Groups[gi].Rows[mi].Member == m {
				return &r.Groups[gi].Rows[mi]
			}
		}
	}
	return nil
}

func activeOf(r *Report, group, m string) time.Duration {
	mm := member(r, group, m)
	if mm == nil {
		return 0
	}
	return time.Duration(mm.ActiveSeconds) * time.Second
}

// TestPrivilegeActiveTime proves how outcomes open and close intervals;
// each case names the rule.
func TestPrivilegeActiveTime(t *testing.T) {
	tests := []struct {
		name  string
		setup func(w *world)
		want  time.Duration
		// wantReason is the first interval's reason ("" for none).
		wantReason string
	}{
		{"a successful add starts at its intent and a successful removal ends at its outcome", func(w *world) {
			w.change(at(10*time.Hour), "add", "db_admins", "alice", "grant.a", "done")
			w.change(at(12*time.Hour), "remove", "db_admins", "alice", "grant.a", "done")
		}, 2*time.Hour + time.Second, ReasonGrant},
		{"an add that failed grants nothing", func(w *world) {
			w.change(at(10*time.Hour), "add", "db_admins", "alice", "grant.a", "failed")
		}, 0, ""},
		{"an add with an unknown outcome counts until a removal proves otherwise", func(w *world) {
			w.change(at(10*time.Hour), "add", "db_admins", "alice", "grant.a", "unknown")
			w.change(at(13*time.Hour), "remove", "db_admins", "alice", "grant.a", "done")
		}, 3*time.Hour + time.Second, ReasonUnknown},
		{"an add intent without an outcome (crash) counts to the end of the period", func(w *world) {
			w.change(at(week-2*time.Hour), "add", "db_admins", "alice", "grant.a", "")
		}, 2 * time.Hour, ReasonUnknown},
		{"a crash intent later closed by a removal counts only until that removal", func(w *world) {
			w.change(at(10*time.Hour), "add", "db_admins", "alice", "grant.a", "")
			w.change(at(11*time.Hour), "remove", "db_admins", "alice", "grant.a", "done")
		}, time.Hour + time.Second, ReasonUnknown},
		{"a failed removal keeps the member active", func(w *world) {
			w.change(at(week-5*time.Hour), "add", "db_admins", "alice", "grant.a", "done")
			w.change(at(week-3*time.Hour), "remove", "db_admins", "alice", "grant.a", "failed")
		}, 5 * time.Hour, ReasonGrant},
		{"a removal with an unknown outcome keeps the member active", func(w *world) {
			w.change(at(week-5*time.Hour), "add", "db_admins", "alice", "grant.a", "done")
			w.change(at(week-3*time.Hour), "remove", "db_admins", "alice", "grant.a", "unknown")
		}, 5 * time.Hour, ReasonGrant},
		{"a member removed without a recorded add was active from the period's start", func(w *world) {
			w.change(at(8*time.Hour), "remove", "db_admins", "mallory", "", "done")
		}, 8*time.Hour + time.Second, ReasonUnknown},
		{"a retried add (already) does not restart the interval", func(w *world) {
			w.change(at(10*time.Hour), "add", "db_admins", "alice", "grant.a", "unknown")
			w.change(at(11*time.Hour), "add", "db_admins", "alice", "grant.a", "already")
			w.change(at(12*time.Hour), "remove", "db_admins", "alice", "grant.a", "done")
		}, 2*time.Hour + time.Second, ReasonGrant},
		{"an interval that began before the period counts from its start", func(w *world) {
			w.change(at(-5*time.Hour), "add", "db_admins", "alice", "grant.a", "done")
			w.change(at(2*time.Hour), "remove", "db_admins", "alice", "grant.a", "done")
		}, 2*time.Hour + time.Second, ReasonGrant},
		{"events after the period are ignored: the report is as of its end", func(w *world) {
			w.change(at(week-time.Hour), "add", "db_admins", "alice", "grant.a", "done")
			w.change(at(week+time.Hour), "remove", "db_admins", "alice", "grant.a", "done")
		}, time.Hour, ReasonGrant},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := newWorld()
			tt.setup(w)
			r := w.build(t0, t0.Add(week))
			m := "alice"
			if strings.Contains(tt.name, "without a recorded add") {
				m = "mallory"
			}
			if got := activeOf(r, "db_admins", m); got != tt.want {
				t.Errorf("active %s, want %s", got, tt.want)
			}
			mm := member(r, "db_admins", m)
			switch {
			case tt.wantReason == "" && mm != nil:
				t.Errorf("want no row, got %+v", mm)
			case tt.wantReason != "" && (mm == nil || mm.Intervals[0].Reason != tt.wantReason):
				t.Errorf("want first interval reason %s, got %+v", tt.wantReason, mm)
			}
		})
	}
}

// TestStandingBaseline: the issue's own example, 3 members holding 4.2 h in
// a week against 504 standing hours.
func TestStandingBaseline(t *testing.T) {
	w := newWorld()
	// 4.2 h in total: 2 h + 1.5 h + 0.7 h (outcomes 1 s after intents are
	// absorbed by starting each add one second early).
	w.change(at(10*time.Hour-time.Second), "add", "db_admins", "a", "", "done")
	w.change(at(12*time.Hour-time.Second), "remove", "db_admins", "a", "", "done")
	w.change(at(20*time.Hour-time.Second), "add", "db_admins", "b", "", "done")
	w.change(at(21*time.Hour+30*time.Minute-time.Second), "remove", "db_admins", "b", "", "done")
	w.change(at(30*time.Hour-time.Second), "add", "db_admins", "c", "", "done")
	w.change(at(30*time.Hour+42*time.Minute-time.Second), "remove", "db_admins", "c", "", "done")
	r := w.build(t0, t0.Add(week))
	g := r.Groups[0]
	if got, want := g.Headline(), "group.db_admins: 3 members, 4.2 privilege-hours of 504 standing (-99.2%)"; got != want {
		t.Errorf("headline %q, want %q", got, want)
	}
	if r.Totals.StandingHours != 504 || r.Totals.PrivilegeHours != 4.2 {
		t.Errorf("totals %+v", r.Totals)
	}
	// A group nobody held has no standing hours and no reduction.
	if g := r.Groups[1]; g.Members != 0 || g.StandingHours != 0 || g.ReductionPercent != 0 {
		t.Errorf("empty group: %+v", g)
	}
}

func TestDeclaredMembersHoldTheWholePeriod(t *testing.T) {
	w := newWorld()
	w.cfg.Groups[0].Members = []string{"svc-backup"}
	w.change(at(time.Hour), "add", "db_admins", "uid=svc-backup,dc=x", "", "done") // the declared member re-added: same row
	w.events[0].Payload = []byte(strings.Replace(string(w.events[0].Payload), `"name":"uid=svc-backup,dc=x"`, `"name":"svc-backup"`, 1))
	r := w.build(t0, t0.Add(week))
	if len(r.Groups[0].Rows) != 1 {
		t.Fatalf("want one row for the declared member, got %+v", r.Groups[0].Rows)
	}
	m := r.Groups[0].Rows[0]
	if m.PrivilegeHours != 168 || m.Intervals[0].Reason != ReasonDeclared {
		t.Errorf("declared member: %+v", m)
	}
}

func TestObservedMemberWithoutRecordCounts(t *testing.T) {
	w := newWorld()
	r := Build(Input{Config: w.cfg, Since: t0, Until: t0.Add(week), Now: t0.Add(week),
		Observed: map[string][]string{"group.web_admins": {"eve"}}})
	m := member(r, "web_admins", "eve")
	if m == nil || m.PrivilegeHours != 168 || m.Intervals[0].Reason != ReasonUnknown || !m.Intervals[0].Open {
		t.Errorf("an observed member with no ledger record must count the whole period as unknown: %+v", m)
	}
}

func TestUntilInTheFutureEndsNow(t *testing.T) {
	w := newWorld()
	w.change(at(time.Hour), "add", "db_admins", "alice", "", "done")
	now := at(3 * time.Hour)
	r := Build(Input{Config: w.cfg, Events: w.events, Since: t0, Until: t0.Add(week), Now: now})
	if !r.Until.Equal(now) || activeOf(r, "db_admins", "alice") != 2*time.Hour || len(r.Warnings) != 1 {
		t.Errorf("until %s, active %s, warnings %q", r.Until, activeOf(r, "db_admins", "alice"), r.Warnings)
	}
}

// TestExpiryLatency: window end -> recorded removal; late and missing first;
// a window continued by an overlapping grant owes no removal.
func TestExpiryLatency(t *testing.T) {
	w := newWorld()
	w.grant("a", "alice", at(10*time.Hour), 2*time.Hour, "carol") // removed 20 s after its end
	w.change(at(10*time.Hour), "add", "db_admins", "alice", "grant.a", "done")
	w.change(at(12*time.Hour+19*time.Second), "remove", "db_admins", "alice", "grant.a", "done")
	w.grant("b", "bob", at(20*time.Hour), time.Hour, "dave") // removed 1 h late
	w.change(at(20*time.Hour), "add", "db_admins", "bob", "grant.b", "done")
	w.change(at(22*time.Hour-time.Second), "remove", "db_admins", "bob", "grant.b", "done")
	w.grant("c", "carl", at(30*time.Hour), time.Hour, "carol") // never removed
	w.change(at(30*time.Hour), "add", "db_admins", "carl", "grant.c", "done")
	w.grant("d1", "dora", at(40*time.Hour), time.Hour, "carol") // continued by d2
	w.grant("d2", "dora", at(40*time.Hour+30*time.Minute), time.Hour, "carol")
	w.change(at(40*time.Hour), "add", "db_admins", "dora", "grant.d1", "done")
	w.change(at(41*time.Hour+30*time.Minute+4*time.Second), "remove", "db_admins", "dora", "grant.d2", "done")
	r := w.build(t0, t0.Add(week))
	e := r.Expiry
	if e.Windows != 4 || e.Removed != 3 || e.Late != 1 || e.NotRemoved != 1 {
		t.Fatalf("expiry counts %+v", e)
	}
	order := []string{}
	for _, we := range e.Entries {
		order = append(order, we.Status+":"+we.Grant)
	}
	want := "not_removed:grant.c late:grant.b on_time:grant.a on_time:grant.d2 continued:grant.d1"
	if got := strings.Join(order, " "); got != want {
		t.Errorf("entries %s\nwant    %s", got, want)
	}
	// latencies 5 s (d2), 20 s (a), 3600 s (b): nearest rank p50 = 20 s.
	if e.P50Seconds != 20 || e.P99Seconds != 3600 || e.MaxSeconds != 3600 {
		t.Errorf("p50 %v p99 %v max %v", e.P50Seconds, e.P99Seconds, e.MaxSeconds)
	}
	// Grants are counted by policy, approver and ticket.
	if r.Grants.Total != 5 || r.Grants.ByApprover[0] != (Count{"carol", 4}) || r.Grants.ByPolicy[0] != (Count{"policy.db", 5}) {
		t.Errorf("grants %+v", r.Grants)
	}
	// The timeline marks window ends on the member's row.
	if m := member(r, "db_admins", "bob"); m == nil || len(m.WindowEnds) != 1 || !m.WindowEnds[0].Equal(at(21*time.Hour)) {
		t.Errorf("bob's window end not marked: %+v", m)
	}
}

func TestProblemsNamedRemovalsFirst(t *testing.T) {
	w := newWorld()
	w.change(at(time.Hour), "add", "db_admins", "alice", "grant.a", "failed")
	w.change(at(2*time.Hour), "add", "db_admins", "bob", "grant.b", "unknown")
	w.change(at(3*time.Hour), "remove", "db_admins", "carl", "grant.c", "failed")
	w.change(at(4*time.Hour), "remove", "db_admins", "dora", "grant.d", "")
	r := w.build(t0, t0.Add(week))
	var got []string
	for _, p := range r.Problems {
		got = append(got, p.Status+" "+p.Action+" "+p.Member)
	}
	want := "failed remove carl,no_outcome remove dora,failed add alice,unknown add bob"
	if strings.Join(got, ",") != want {
		t.Errorf("problems %q\nwant %q", strings.Join(got, ","), want)
	}
}

func TestHTMLIsSelfContainedAndEscaped(t *testing.T) {
	w := newWorld()
	w.change(at(time.Hour), "add", "db_admins", `<script>alert(1)</script>`, "", "done")
	var b strings.Builder
	if err := RenderHTML(&b, w.build(t0, t0.Add(week))); err != nil {
		t.Fatal(err)
	}
	page := b.String()
	for _, bad := range []string{"<script", "http://", "https://", "src=", "@import", "url("} {
		if strings.Contains(strings.ReplaceAll(page, `xmlns="http://www.w3.org/2000/svg"`, ""), bad) {
			t.Errorf("the page contains %q: not self-contained or not escaped", bad)
		}
	}
	if !strings.Contains(page, "&lt;script&gt;") || !strings.Contains(page, "<svg") || !strings.Contains(page, "default-src 'none'") {
		t.Error("want the escaped member, an SVG and a CSP that forbids fetches")
	}
}

// TestDecodeMatchesEncodingJSON: the hand decoder gives exactly what
// encoding/json gives, including through its fallbacks.
func TestDecodeMatchesEncodingJSON(t *testing.T) {
	inputs := []string{
		`{"action":"add","group":"group.g","id":"x1","member":"uid=a,dc=x","name":"a","plan_id":"p","reason":"grant","target":"t"}`,
		` { "id" : "x2" , "action":"remove" } `,
		`{}`,
		`{"id":"esc\"aped","member":"uid=\u00e9"}`,
		`{"ID":"case-insensitive key"}`,
		`{"id":"x","extra":{"nested":1}}`,
		`{"id":"x","status":"done","error":"a\nb"}`,
		`{"id":1}`,
		`{"id":"x",}`,
		`[]`,
		`{"id":"x"} trailing`,
		`{"id":"dup","id":"last"}`,
	}
	for _, in := range inputs {
		var got, want state.Change
		gerr := decodeChange([]byte(in), &got, interner{})
		werr := json.Unmarshal([]byte(in), &want)
		if (gerr == nil) != (werr == nil) || got != want {
			t.Errorf("decodeChange(%s) = %+v, %v; encoding/json gives %+v, %v", in, got, gerr, want, werr)
		}
		var gotO, wantO state.ChangeOutcome
		gerr = decodeOutcome([]byte(in), &gotO)
		werr = json.Unmarshal([]byte(in), &wantO)
		if (gerr == nil) != (werr == nil) || !reflect.DeepEqual(gotO, wantO) {
			t.Errorf("decodeOutcome(%s) = %+v, %v; encoding/json gives %+v, %v", in, gotO, gerr, wantO, werr)
		}
	}
}

// TestEventsAfterUntilIgnoredEvenOutOfOrder: a ledger whose clock stepped
// back still has its events after the period ignored.
func TestEventsAfterUntilIgnoredEvenOutOfOrder(t *testing.T) {
	w := newWorld()
	w.change(at(week-time.Hour), "add", "db_admins", "alice", "grant.a", "done")
	w.change(at(week+time.Hour), "remove", "db_admins", "alice", "grant.a", "done")
	w.change(at(week-2*time.Hour), "add", "db_admins", "bob", "grant.b", "done") // clock stepped back
	w.change(at(week+2*time.Hour), "remove", "db_admins", "bob", "grant.b", "done")
	r := w.build(t0, t0.Add(week))
	if a, b := activeOf(r, "db_admins", "alice"), activeOf(r, "db_admins", "bob"); a != time.Hour || b != 2*time.Hour {
		t.Errorf("alice %s, bob %s; want 1h and 2h (removals after the period ignored)", a, b)
	}
}
