package planner

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jitform/jitform/providers"
)

func samplePlan(t *testing.T) *Plan {
	t.Helper()
	at := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	start, end := at.Add(-time.Hour), at.Add(time.Hour)
	next := end
	p := &Plan{
		FormatVersion: FormatVersion,
		CreatedAt:     at,
		At:            at,
		ValidUntil:    end,
		NextChangeAt:  &next,
		NextChange:    "grant.alice ends",
		ConfigDigest:  "cfg1",
		LedgerHead:    "head1",
		Observed:      map[string]string{"group.a": ObservedDigest(providers.Observation{Members: []providers.Member{{ID: "x"}}})},
		Changes: []Change{{Action: "add", Group: "group.a", Target: "target.ldif.corp", Member: "uid=alice", Principal: "alice",
			Reason: Reason{Kind: ReasonGrant, Grant: "grant.alice", Policy: "policy.p", Ticket: "CHG1", Approvers: []string{"carol"}, WindowStart: &start, WindowEnd: &end}}},
		Groups: []GroupSummary{{Group: "group.a", Target: "target.ldif.corp", Observed: 1, Desired: 2, Adds: 1, Readable: true}},
	}
	id, err := planID(p)
	if err != nil {
		t.Fatal(err)
	}
	p.ID = id
	return p
}

func TestPlanFileRoundTrip(t *testing.T) {
	t.Parallel()
	p := samplePlan(t)
	path := filepath.Join(t.TempDir(), "plan.json")
	if err := WritePlanFile(path, p); err != nil {
		t.Fatal(err)
	}
	got, err := ReadPlanFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var a, b bytes.Buffer
	if err := RenderJSON(&a, p); err != nil {
		t.Fatal(err)
	}
	if err := RenderJSON(&b, got); err != nil {
		t.Fatal(err)
	}
	if a.String() != b.String() {
		t.Errorf("round trip changed the plan:\n%s\nvs\n%s", a.String(), b.String())
	}
	if err := CheckFresh(got, p, p.At.Add(time.Minute)); err != nil {
		t.Errorf("CheckFresh of an unchanged plan: %v", err)
	}
}

func TestReadPlanFileRefusesBadFiles(t *testing.T) {
	t.Parallel()
	p := samplePlan(t)
	var good bytes.Buffer
	if err := RenderJSON(&good, p); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, content string
		want          []string
	}{
		{"truncated", good.String()[:good.Len()/2], []string{"not a jitform plan"}},
		{"syntax error", "{\n  \"format_version\": \"1.0\",\n  \"id\": ,\n}", []string{"not a jitform plan", "line 3"}},
		{"not a plan", `{"hello": "world"}`, []string{"no format_version"}},
		{"future format", strings.Replace(good.String(), `"format_version": "1.0"`, `"format_version": "2.0"`, 1), []string{`format_version "2.0"`, "Run jitform plan again"}},
		// An unknown minor version used to skip the integrity check, so an
		// edited valid_until was applied.
		{"unknown minor format with an edited valid_until", regexp.MustCompile(`"valid_until": "[^"]*"`).ReplaceAllString(
			strings.Replace(good.String(), `"format_version": "1.0"`, `"format_version": "1.9"`, 1), `"valid_until": "2099-01-01T00:00:00Z"`),
			[]string{`format_version "1.9" is not supported by this jitform (it reads 1.0)`}},
		{"unknown minor format, otherwise untouched", strings.Replace(good.String(), `"format_version": "1.0"`, `"format_version": "1.1"`, 1), []string{`format_version "1.1" is not supported`}},
		{"empty format", strings.Replace(good.String(), `"format_version": "1.0"`, `"format_version": ""`, 1), []string{`format_version "" is not supported`}},
		{"edited valid_until", regexp.MustCompile(`"valid_until": "[^"]*"`).ReplaceAllString(good.String(), `"valid_until": "2099-01-01T00:00:00Z"`), []string{"modified after it was written"}},
		{"edited", strings.Replace(good.String(), "uid=alice", "uid=mallory", 1), []string{"modified after it was written"}},
		{"bad action", strings.Replace(good.String(), `"action": "add"`, `"action": "grant"`, 1), []string{`changes[0].action is "grant"`}},
		{"unknown field", strings.Replace(good.String(), `"id":`, `"extra": 1, "id":`, 1), []string{"unknown field"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			path := filepath.Join(t.TempDir(), "plan.json")
			if err := os.WriteFile(path, []byte(tt.content), 0o600); err != nil {
				t.Fatal(err)
			}
			_, err := ReadPlanFile(path)
			if err == nil {
				t.Fatal("ReadPlanFile accepted a bad plan file")
			}
			for _, w := range append(tt.want, path) {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
}

func TestCheckFresh(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 11, 23, 10, 5, 0, 0, time.UTC)
	tests := []struct {
		name   string
		mutate func(saved, fresh *Plan)
		now    time.Time
		want   string // "" = fresh
	}{
		{"unchanged", func(s, f *Plan) {}, now, ""},
		{"expired", func(s, f *Plan) {}, time.Date(2026, 11, 23, 11, 0, 0, 0, time.UTC), "valid until 2026-11-23T11:00:00Z"},
		{"config changed", func(s, f *Plan) { f.ConfigDigest = "cfg2" }, now, "the configuration changed"},
		{"ledger changed", func(s, f *Plan) { f.LedgerHead = "head2" }, now, "the ledger changed"},
		{"membership changed", func(s, f *Plan) { f.Observed = map[string]string{"group.a": "other"} }, now, "the membership of group.a changed"},
		{"group unreadable now", func(s, f *Plan) { f.Observed = map[string]string{} }, now, "group.a can no longer be read"},
		{"changes differ", func(s, f *Plan) { f.Changes = nil }, now, "no longer needed: add group.a uid=alice"},
		{"as many changes, but others", func(s, f *Plan) {
			f.Changes = slices.Clone(f.Changes)
			f.Changes[0].Member = "uid=bob"
		}, now, "no longer needed: add group.a uid=alice; now also needed: add group.a uid=bob"},
		{"changes differ: only gone", func(s, f *Plan) { f.Changes = nil }, now, "the changes differ (no longer needed: add group.a uid=alice)."},
		{"changes differ: only new", func(s, f *Plan) {
			f.Changes = append(slices.Clone(f.Changes), Change{Action: "remove", Group: "group.a", Member: "uid=mallory"})
		}, now, "the changes differ (now also needed: remove group.a uid=mallory)."},
		{"five changes gone are all named", func(s, f *Plan) {
			s.Changes = nil
			for _, m := range []string{"a", "b", "c", "d", "e"} {
				s.Changes = append(s.Changes, Change{Action: "add", Group: "group.a", Member: "uid=" + m})
			}
			f.Changes = nil
		}, now, "(no longer needed: add group.a uid=a, add group.a uid=b, add group.a uid=c, add group.a uid=d, add group.a uid=e)."},
		{"six changes gone: five named and a count", func(s, f *Plan) {
			s.Changes = nil
			for _, m := range []string{"a", "b", "c", "d", "e", "f"} {
				s.Changes = append(s.Changes, Change{Action: "add", Group: "group.a", Member: "uid=" + m})
			}
			f.Changes = nil
		}, now, "(no longer needed: add group.a uid=a, add group.a uid=b, add group.a uid=c, add group.a uid=d, add group.a uid=e, and 1 more)."},
		{"the ledger was empty when planned", func(s, f *Plan) { s.LedgerHead = "" }, now, "the ledger changed (head (empty), now head1)"},
		{"long digests are cut to 12 characters", func(s, f *Plan) { f.ConfigDigest = "0123456789abcdef" }, now, "the configuration changed (digest cfg1, now 0123456789ab)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			saved, fresh := samplePlan(t), samplePlan(t)
			tt.mutate(saved, fresh)
			err := CheckFresh(saved, fresh, tt.now)
			if tt.want == "" {
				if err != nil {
					t.Fatalf("CheckFresh = %v, want fresh", err)
				}
				return
			}
			var se *StaleError
			if !errors.As(err, &se) {
				t.Fatalf("CheckFresh = %v, want a *StaleError", err)
			}
			if !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), "Run jitform plan again") {
				t.Errorf("error %q does not say %q and what to do", err, tt.want)
			}
		})
	}
}

func TestObservedDigestIgnoresOrderAndNames(t *testing.T) {
	t.Parallel()
	a := ObservedDigest(providers.Observation{Members: []providers.Member{{ID: "a", Name: "A"}, {ID: "b"}}})
	b := ObservedDigest(providers.Observation{Members: []providers.Member{{ID: "b", Name: "x"}, {ID: "a"}, {ID: "a"}}})
	c := ObservedDigest(providers.Observation{Members: []providers.Member{{ID: "a"}}})
	// "ab" must not collide with "a","b".
	d := ObservedDigest(providers.Observation{Members: []providers.Member{{ID: "ab"}}})
	if a != b {
		t.Errorf("digest depends on order or names: %s vs %s", a, b)
	}
	if a == c || a == d || c == d {
		t.Errorf("different memberships share a digest")
	}
	if got := ObservedDigest(providers.Observation{Err: errors.New("boom")}); got != "" {
		t.Errorf("unreadable digest = %q, want empty", got)
	}
}

func TestSealAfterEditing(t *testing.T) {
	t.Parallel()
	p := samplePlan(t)
	p.Changes = p.Changes[:0] // as restricting a plan to --target groups does
	path := filepath.Join(t.TempDir(), "plan.json")
	if err := WritePlanFile(path, p); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadPlanFile(path); err == nil || !strings.Contains(err.Error(), "modified after it was written") {
		t.Fatalf("an edited, unsealed plan was accepted: %v", err)
	}
	if err := Seal(p); err != nil {
		t.Fatal(err)
	}
	if err := WritePlanFile(path, p); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadPlanFile(path); err != nil {
		t.Fatalf("sealed plan refused: %v", err)
	}
}

// TestPlanFileAccountsRoundTrip: a saved plan with an account change (no
// member, action enable, credentials) and a right reads back with the same
// ID; an account change with a membership action, or an unknown kind, is
// refused.
func TestPlanFileAccountsRoundTrip(t *testing.T) {
	t.Parallel()
	p := samplePlan(t)
	p.Changes = append(p.Changes,
		Change{Kind: KindRight, Action: "add", Group: "right.b", Target: "target.winrm.web01", Object: "SeBackupPrivilege", Member: "S-1-5-21-1-1104",
			Reason: p.Changes[0].Reason},
		Change{Kind: KindAccount, Action: ActionEnable, Group: "account.c", Target: "target.winrm.web01", Object: "jit-admin", Principal: "alice",
			PasswordRotated: true, Credentials: []Credential{{Grant: "grant.alice", Principal: "alice"}}, Reason: p.Changes[0].Reason})
	p.Accounts = []AccountSummary{{Account: "account.c", Target: "target.winrm.web01", Name: "jit-admin", Readable: true, Exists: true, DesiredEnabled: true, RotatePassword: true, ActiveGrants: []string{"grant.alice"}}}
	if err := Seal(p); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "p.plan")
	if err := WritePlanFile(path, p); err != nil {
		t.Fatal(err)
	}
	back, err := ReadPlanFile(path)
	if err != nil {
		t.Fatalf("read back: %v", err)
	}
	if back.ID != p.ID || len(back.Changes) != 3 || back.Changes[2].Credentials[0].Grant != "grant.alice" || len(back.Accounts) != 1 {
		t.Fatalf("round trip changed the plan: %+v", back)
	}
	for name, mutate := range map[string]func(c *Change){
		"account with add":  func(c *Change) { c.Action = "add" },
		"unknown kind":      func(c *Change) { c.Kind = "printer" },
		"account w/o group": func(c *Change) { c.Group = "" },
	} {
		q := *p
		q.Changes = append([]Change(nil), p.Changes...)
		mutate(&q.Changes[2])
		if err := Seal(&q); err != nil {
			t.Fatal(err)
		}
		bad := filepath.Join(t.TempDir(), "bad.plan")
		if err := WritePlanFile(bad, &q); err != nil {
			t.Fatal(err)
		}
		if _, err := ReadPlanFile(bad); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}
