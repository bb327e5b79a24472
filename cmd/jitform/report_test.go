package main

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/jitform/jitform/internal/report"
	"github.com/jitform/jitform/state"
)

var update = flag.Bool("update", false, "rewrite testdata/report (fixture repository and golden files)")

const (
	reportDir     = "../../testdata/report"
	reportRepo    = reportDir + "/repo"
	reportKeysDir = "../../testdata/keys"
)

// reportArgs is the period of the golden reports: the fixture's week.
var reportArgs = []string{"report", "--since", "2026-11-16T00:00:00Z", "--until", "2026-11-23T00:00:00Z"}

// reportHCL is the fixture repository: two groups, a repository policy, a
// ledger policy and a break-glass policy. Actor keys are testdata/keys.
const reportHCL = `# Fixture for the golden exposure reports (testdata/report/*.golden).
# Regenerate with: go test ./cmd/jitform -run TestReportGolden -update

target "ldif" "directory" {
  path   = "directory.ldif"
  flavor = "openldap"
}

group "db_admins" {
  target    = target.ldif.directory
  dn        = "cn=db-admins,ou=groups,dc=example,dc=org"
  members   = ["svc-backup"]
  exclusive = true
}

group "web_admins" {
  target    = target.ldif.directory
  dn        = "cn=web-admins,ou=groups,dc=example,dc=org"
  exclusive = false
}

%ACTORS%
policy "db_maintenance" {
  groups         = [group.db_admins]
  eligible       = ["alice", "bob"]
  max_duration   = "4h"
  approvals      = 1
  approvers      = ["carol", "dave"]
  ticket_pattern = "^CHG[0-9]+$"
}

policy "db_oncall" {
  groups         = [group.db_admins]
  eligible       = ["bob"]
  max_duration   = "4h"
  approvals      = 1
  approvers      = ["carol", "dave"]
  ticket_pattern = "^CHG[0-9]+$"
  approval       = "ledger"
}

policy "web_oncall" {
  groups       = [group.web_admins]
  eligible     = ["dave", "erin"]
  max_duration = "8h"
  approvals    = 1
  approvers    = ["carol"]
  approval     = "ledger"
  break_glass {
    max_duration = "2h"
  }
}

grant "alice_chg1042" {
  policy      = policy.db_maintenance
  principal   = "alice"
  start       = "2026-11-17T09:00:00Z"
  duration    = "2h"
  ticket      = "CHG1042"
  reason      = "migrate the orders database"
  approved_by = ["carol"]
}

grant "alice_chg1077" {
  policy      = policy.db_maintenance
  principal   = "alice"
  start       = "2026-11-22T14:00:00Z"
  duration    = "2h"
  ticket      = "CHG1077"
  reason      = "vacuum the orders database"
  approved_by = ["dave"]
}
`

func fixtureSigner(t *testing.T, name string) ssh.Signer {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(reportKeysDir, name))
	if err != nil {
		t.Fatal(err)
	}
	s, err := ssh.ParsePrivateKey(b)
	if err != nil {
		t.Fatalf("parse %s's test key: %v", name, err)
	}
	return s
}

func fixtureTime(s string) time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return t
}

func dn(name string) string { return "uid=" + name + ",ou=people,dc=example,dc=org" }

// writeReportFixture writes the fixture repository and its ledger into dir.
func writeReportFixture(t *testing.T, dir string) {
	t.Helper()
	var actors strings.Builder
	for _, name := range []string{"alice", "bob", "carol", "dave", "erin"} {
		pub := strings.TrimSpace(string(ssh.MarshalAuthorizedKey(fixtureSigner(t, name).PublicKey())))
		actors.WriteString("actor \"" + name + "\" {\n  ssh_key = \"" + pub + "\"\n}\n\n")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "main.hcl"), []byte(strings.Replace(reportHCL, "%ACTORS%", actors.String(), 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	b, err := state.NewLocal(dir)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	n := 0
	run := "" // the apply_started of the apply in progress
	// started records who runs the next changes (apply_started).
	started := func(at string, runner state.Runner) {
		n++
		run = "apply" + strings.ReplaceAll(at[:10], "-", "") + "-" + string(rune('a'+n%26))
		raw, _ := json.Marshal(state.ApplyStarted{ID: run, PlanID: "p" + at[:10], Operation: "run", Runner: runner})
		if _, err := b.Append(ctx, state.Event{Time: fixtureTime(at), Type: state.EventApplyStarted, Actor: state.SystemActor, Payload: raw}); err != nil {
			t.Fatal(err)
		}
	}
	ci := state.Runner{User: "runner", Host: "gh-runner-7", PID: 4120, CI: &state.CI{Provider: "github", Actor: "jitform-bot",
		Repository: "acme/access-policy", RunID: "9001", URL: "https://github.com/acme/access-policy/actions/runs/9001"}}
	ops := state.Runner{User: "ops", Host: "bastion", PID: 77}
	change := func(at, action, group, member, reason, grant, policy, ticket string) string {
		n++
		id := "run" + strings.ReplaceAll(at[:10], "-", "") + "-" + string(rune('a'+n%26))
		c := state.Change{ID: id, PlanID: "p" + at[:10], Action: action, Group: group, Target: "target.ldif.directory",
			Member: dn(member), Name: member, Reason: reason, Grant: grant, Policy: policy, Ticket: ticket, Run: run}
		raw, _ := json.Marshal(c)
		if _, err := b.Append(ctx, state.Event{Time: fixtureTime(at), Type: state.EventChangeIntent, Actor: state.SystemActor, Payload: raw}); err != nil {
			t.Fatal(err)
		}
		return id
	}
	outcome := func(at, id, status, errText string) {
		typ := state.EventChangeApplied
		if status != "done" && status != "already" {
			typ = state.EventChangeFailed
		}
		raw, _ := json.Marshal(state.ChangeOutcome{ID: id, Status: status, Error: errText})
		if _, err := b.Append(ctx, state.Event{Time: fixtureTime(at), Type: typ, Actor: state.SystemActor, Payload: raw}); err != nil {
			t.Fatal(err)
		}
	}
	// signed appends a signed grant event and returns its ledger hash, which
	// every decision on a request signs (state.GrantDecision.Request).
	signed := func(at, typ, actor string, payload any) string {
		ev, err := state.NewSignedEvent(typ, actor, fixtureTime(at), payload)
		if err != nil {
			t.Fatal(err)
		}
		if err := state.SignEvent(&ev, fixtureSigner(t, actor)); err != nil {
			t.Fatal(err)
		}
		written, err := b.Append(ctx, ev)
		if err != nil {
			t.Fatal(err)
		}
		return written[0].Hash
	}
	const db, web = "group.db_admins", "group.web_admins"
	// The first apply, by hand, strips mallory, who was in db_admins before jitform.
	started("2026-11-16T08:00:00Z", ops)
	id := change("2026-11-16T08:00:00Z", "remove", db, "mallory", "undeclared", "", "", "")
	outcome("2026-11-16T08:00:01Z", id, "done", "")
	// Then jitform run in CI. alice's repository grant: added and removed on time.
	started("2026-11-17T09:00:10Z", ci)
	id = change("2026-11-17T09:00:10Z", "add", db, "alice", "grant", "grant.alice_chg1042", "policy.db_maintenance", "CHG1042")
	outcome("2026-11-17T09:00:11Z", id, "done", "")
	id = change("2026-11-17T11:00:20Z", "remove", db, "alice", "window_ended", "grant.alice_chg1042", "policy.db_maintenance", "CHG1042")
	outcome("2026-11-17T11:00:21Z", id, "done", "")
	// bob's ledger grant, approved by dave: removed 47 minutes late.
	start := fixtureTime("2026-11-18T20:00:00Z")
	bobReq := signed("2026-11-18T19:30:00Z", state.EventRequest, "bob", state.GrantRequest{ID: "g-bobdbonca2", Policy: "policy.db_oncall",
		Principal: "bob", Start: &start, Duration: "4h0m0s", Ticket: "CHG1100", Reason: "replica failover"})
	signed("2026-11-18T19:45:00Z", state.EventApprove, "dave", state.GrantDecision{Grant: "g-bobdbonca2", Request: bobReq})
	id = change("2026-11-18T20:00:05Z", "add", db, "bob", "grant", "g-bobdbonca2", "policy.db_oncall", "CHG1100")
	outcome("2026-11-18T20:00:06Z", id, "done", "")
	id = change("2026-11-19T00:47:00Z", "remove", db, "bob", "window_ended", "g-bobdbonca2", "policy.db_oncall", "CHG1100")
	outcome("2026-11-19T00:47:02Z", id, "done", "")
	// erin breaks glass; carol reviews it the same morning.
	erinReq := signed("2026-11-20T03:10:00Z", state.EventRequest, "erin", state.GrantRequest{ID: "g-erinbreak2", Policy: "policy.web_oncall",
		Principal: "erin", Duration: "1h0m0s", Reason: "web outage INC-77", BreakGlass: true})
	id = change("2026-11-20T03:10:30Z", "add", web, "erin", "grant", "g-erinbreak2", "policy.web_oncall", "")
	outcome("2026-11-20T03:10:31Z", id, "done", "")
	id = change("2026-11-20T04:10:40Z", "remove", web, "erin", "window_ended", "g-erinbreak2", "policy.web_oncall", "")
	outcome("2026-11-20T04:10:41Z", id, "done", "")
	signed("2026-11-20T09:30:00Z", state.EventReview, "carol", state.GrantDecision{Grant: "g-erinbreak2", Request: erinReq, Reason: "outage confirmed"})
	// dave breaks glass, never reviewed; his removal fails, then times out.
	signed("2026-11-21T22:00:00Z", state.EventRequest, "dave", state.GrantRequest{ID: "g-davebreak3", Policy: "policy.web_oncall",
		Principal: "dave", Duration: "1h0m0s", Reason: "certificate expired", BreakGlass: true})
	id = change("2026-11-21T22:00:20Z", "add", web, "dave", "grant", "g-davebreak3", "policy.web_oncall", "")
	outcome("2026-11-21T22:00:21Z", id, "done", "")
	id = change("2026-11-21T23:00:15Z", "remove", web, "dave", "window_ended", "g-davebreak3", "policy.web_oncall", "")
	outcome("2026-11-21T23:00:16Z", id, "failed", `LDAP Result Code 52 "Unavailable": server is shutting down`)
	id = change("2026-11-21T23:05:00Z", "remove", web, "dave", "window_ended", "g-davebreak3", "policy.web_oncall", "")
	outcome("2026-11-21T23:05:30Z", id, "unknown", "remove on group.web_admins: context deadline exceeded")
	// alice's second grant: the add's outcome is unknown (it counts).
	id = change("2026-11-22T14:00:05Z", "add", db, "alice", "grant", "grant.alice_chg1077", "policy.db_maintenance", "CHG1077")
	outcome("2026-11-22T14:00:35Z", id, "unknown", "add on group.db_admins: write tcp 127.0.0.1:389: connection reset by peer")
	id = change("2026-11-22T16:00:30Z", "remove", db, "alice", "window_ended", "grant.alice_chg1077", "policy.db_maintenance", "CHG1077")
	outcome("2026-11-22T16:00:31Z", id, "done", "")
}

// runReport runs jitform -C dir with args and returns stdout.
func runReport(t *testing.T, dir string, args ...string) (string, string, int) {
	t.Helper()
	var out, errb bytes.Buffer
	a := &app{stdin: strings.NewReader(""), stdout: &out, stderr: &errb, getenv: func(string) string { return "" }}
	code := a.main(context.Background(), append([]string{"-C", dir}, args...))
	return out.String(), errb.String(), code
}

func copyTree(t *testing.T, src, dst string) {
	t.Helper()
	err := filepath.WalkDir(src, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		if d.IsDir() {
			return os.MkdirAll(filepath.Join(dst, rel), 0o755)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dst, rel), b, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
}

var generatedRE = regexp.MustCompile(`(generated_at": "|generated )[0-9TZ:-]+`)

// normalizeGenerated replaces the moment the report was made, the one
// thing that differs between runs.
func normalizeGenerated(s string) string { return generatedRE.ReplaceAllString(s, "${1}GENERATED") }

// TestReportGolden renders the fixture's week as text, JSON, CSV and HTML
// and compares each with testdata/report/*.golden (-update rewrites the
// fixture and the golden files).
func TestReportGolden(t *testing.T) {
	if *update {
		if err := os.RemoveAll(reportRepo); err != nil {
			t.Fatal(err)
		}
		writeReportFixture(t, reportRepo)
	}
	dir := t.TempDir()
	copyTree(t, reportRepo, dir)
	html := filepath.Join(t.TempDir(), "report.html")
	outputs := map[string][]string{
		"report.txt.golden":  reportArgs,
		"report.json.golden": append(append([]string{}, reportArgs...), "--json"),
		"report.csv.golden":  append(append([]string{}, reportArgs...), "--csv"),
	}
	for golden, args := range outputs {
		t.Run(golden, func(t *testing.T) {
			out, stderr, code := runReport(t, dir, args...)
			if code != 0 {
				t.Fatalf("exit %d: %s", code, stderr)
			}
			compareGolden(t, golden, normalizeGenerated(out))
		})
	}
	t.Run("report.html.golden", func(t *testing.T) {
		_, stderr, code := runReport(t, dir, append(append([]string{}, reportArgs...), "--html", html)...)
		if code != 0 {
			t.Fatalf("exit %d: %s", code, stderr)
		}
		b, err := os.ReadFile(html)
		if err != nil {
			t.Fatal(err)
		}
		compareGolden(t, "report.html.golden", normalizeGenerated(string(b)))
	})
}

func compareGolden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join(reportDir, name)
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("%s differs from the golden file (run with -update after checking the change):\n%s", name, firstDiff(string(want), got))
	}
}

func firstDiff(want, got string) string {
	wl, gl := strings.Split(want, "\n"), strings.Split(got, "\n")
	for i := 0; i < len(wl) || i < len(gl); i++ {
		var w, g string
		if i < len(wl) {
			w = wl[i]
		}
		if i < len(gl) {
			g = gl[i]
		}
		if w != g {
			return "line " + strconv.Itoa(i+1) + ":\n  want: " + w + "\n  got:  " + g
		}
	}
	return ""
}

// TestReportFixtureFacts checks the fixture's report against facts worked
// out by hand, so the golden files cannot silently bless a wrong number.
func TestReportFixtureFacts(t *testing.T) {
	dir := t.TempDir()
	copyTree(t, reportRepo, dir)
	out, stderr, code := runReport(t, dir, append(append([]string{}, reportArgs...), "--json")...)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	var r report.Report
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatal(err)
	}
	if r.FormatVersion != "1.0" {
		t.Errorf("format_version = %q, want 1.0", r.FormatVersion)
	}
	hoursOf := func(group, member string) float64 {
		for _, g := range r.Groups {
			for _, m := range g.Rows {
				if g.Group == group && (m.Member == member || m.Name == member) {
					return m.PrivilegeHours
				}
			}
		}
		return -1
	}
	// alice: 09:00:10..11:00:21 (2h0m11s) and 14:00:05..16:00:31 (2h0m26s, unknown add counts).
	want := map[[2]string]float64{
		{"group.db_admins", "alice"}:      round2((2*3600 + 11 + 2*3600 + 26) / 3600.0),
		{"group.db_admins", "bob"}:        round2((4*3600 + 46*60 + 57) / 3600.0),
		{"group.db_admins", "mallory"}:    round2((8*3600 + 1) / 3600.0),
		{"group.db_admins", "svc-backup"}: 168,
		{"group.web_admins", "erin"}:      round2((3600 + 11) / 3600.0),
		// dave's removal failed and then timed out: active to the period's end.
		{"group.web_admins", "dave"}: round2((3600*25 + 59*60 + 40) / 3600.0),
	}
	for k, w := range want {
		if got := hoursOf(k[0], k[1]); got != w {
			t.Errorf("%s %s: %v privilege-hours, want %v", k[0], k[1], got, w)
		}
	}
	if r.Expiry.Late != 1 || r.Expiry.NotRemoved != 1 || r.Expiry.Removed != 4 {
		t.Errorf("expiry: late %d, not removed %d, removed %d; want 1, 1, 4", r.Expiry.Late, r.Expiry.NotRemoved, r.Expiry.Removed)
	}
	if e := r.Expiry.Entries; len(e) < 2 || e[0].Status != report.ExpiryNotRemoved || e[0].Member != dn("dave") ||
		e[1].Status != report.ExpiryLate || e[1].Member != dn("bob") || *e[1].LatencySeconds != 47*60+2 {
		t.Errorf("late and missing removals must come first (dave not removed, bob 47m2s late): %+v", e)
	}
	if r.Expiry.MaxSeconds != 47*60+2 {
		t.Errorf("max latency %v, want 2822", r.Expiry.MaxSeconds)
	}
	if len(r.BreakGlass) != 2 || r.BreakGlass[0].Grant != "g-davebreak3" || r.BreakGlass[0].Reviewed ||
		r.BreakGlass[1].Grant != "g-erinbreak2" || !r.BreakGlass[1].Reviewed || *r.BreakGlass[1].ReviewDelaySeconds != 6*3600+20*60 {
		t.Errorf("break-glass: want dave unreviewed first, erin reviewed by carol 6h20m after: %+v", r.BreakGlass)
	}
	if len(r.Problems) != 3 || r.Problems[0].Action != "remove" || r.Problems[2].Status != "unknown" || r.Problems[2].Action != "add" {
		t.Errorf("problems: want dave's two removals first, then alice's unknown add: %+v", r.Problems)
	}
	// CSV parses, one header, every record kind present.
	csvOut, _, code := runReport(t, dir, append(append([]string{}, reportArgs...), "--csv")...)
	if code != 0 {
		t.Fatal("csv failed")
	}
	recs, err := csv.NewReader(strings.NewReader(csvOut)).ReadAll()
	if err != nil {
		t.Fatalf("CSV does not parse: %v", err)
	}
	kinds := map[string]int{}
	for _, rec := range recs[1:] {
		kinds[rec[0]]++
	}
	for _, k := range []string{"group", "interval", "window", "problem", "grant"} {
		if kinds[k] == 0 {
			t.Errorf("CSV has no %q rows: %v", k, kinds)
		}
	}
}

func round2(h float64) float64 { return float64(int64(h*100+0.5)) / 100 }

func TestReportBadFlags(t *testing.T) {
	dir := t.TempDir()
	copyTree(t, reportRepo, dir)
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"since after until", []string{"report", "--since", "2026-11-23", "--until", "2026-11-16"}, "is not before --until"},
		{"bad time", []string{"report", "--since", "last week"}, "--since:"},
		{"json and csv", []string{"report", "--json", "--csv"}, "choose one"},
		{"stray argument", []string{"report", "extra"}, "takes no arguments"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, stderr, code := runReport(t, dir, tt.args...)
			if code != exitError || out != "" || !strings.Contains(stderr, tt.want) {
				t.Errorf("exit %d, stdout %q, stderr %q; want exit 1, no output, %q", code, out, stderr, tt.want)
			}
		})
	}
}
