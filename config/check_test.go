package config

import (
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

func testPolicy(t *testing.T) *Policy {
	t.Helper()
	return &Policy{
		Name: "web", Addr: "policy.web",
		Eligible:      []string{"alice", "bob", "group:CN=Web Ops,DC=corp,DC=example"},
		MaxDuration:   4 * time.Hour,
		Approvals:     2,
		Approvers:     []string{"carol", "dave", "erin", "alice"},
		TicketPattern: regexp.MustCompile("^CHG[0-9]+$"),
		Windows:       []Window{mustWindow(t, "Mon-Fri 07:00-19:00 Europe/Berlin")},
		Approval:      ApprovalRepository,
		BreakGlass:    &BreakGlass{MaxDuration: time.Hour},
	}
}

func TestPolicyCheck(t *testing.T) {
	t.Parallel()
	mon9 := utc("2026-11-23T08:00:00Z") // Monday 09:00 in Berlin
	good := GrantSpec{Principal: "alice", Start: mon9, End: mon9.Add(2 * time.Hour), Ticket: "CHG1042", Approvers: []string{"carol", "dave"}}
	with := func(f func(*GrantSpec)) GrantSpec {
		g := good
		g.Approvers = slices.Clone(good.Approvers)
		f(&g)
		return g
	}
	webOps := func(entry string) bool { return entry == "group:CN=Web Ops,DC=corp,DC=example" }
	tests := []struct {
		name    string
		policy  func(*Policy)
		grant   GrantSpec
		inGroup func(string) bool
		want    []string // "field: message fragment"
	}{
		{name: "conforms", grant: good},
		{name: "exactly max_duration", grant: with(func(g *GrantSpec) { g.End = g.Start.Add(4 * time.Hour) })},
		{name: "no max_duration: any length", policy: func(p *Policy) { p.MaxDuration, p.Windows = 0, nil },
			grant: with(func(g *GrantSpec) { g.End = g.Start.Add(30 * 24 * time.Hour) })},
		{name: "longer than max_duration", grant: with(func(g *GrantSpec) { g.End = g.Start.Add(4*time.Hour + time.Minute) }),
			want: []string{"duration: duration 4h1m exceeds the max_duration 4h of policy.web"}},
		{name: "ends before it starts", grant: with(func(g *GrantSpec) { g.End = g.Start }),
			want: []string{"duration: ends before it starts"}},
		{name: "ends as it starts, on a Sunday: only the duration is at fault", grant: with(func(g *GrantSpec) { g.Start = utc("2026-11-22T10:00:00Z"); g.End = g.Start }),
			want: []string{"duration: ends before it starts"}},
		{name: "runs past the window", grant: with(func(g *GrantSpec) { g.Start = utc("2026-11-23T16:00:00Z"); g.End = g.Start.Add(3 * time.Hour) }),
			want: []string{"start: 2026-11-23T16:00:00Z to 2026-11-23T19:00:00Z is not inside the windows of policy.web"}},
		{name: "ends exactly at the window's close", grant: with(func(g *GrantSpec) { g.Start = utc("2026-11-23T16:00:00Z"); g.End = utc("2026-11-23T18:00:00Z") })},
		{name: "on a Sunday", grant: with(func(g *GrantSpec) { g.Start = utc("2026-11-22T10:00:00Z"); g.End = g.Start.Add(time.Hour) }),
			want: []string{"start: "}},
		{name: "no windows means any time", policy: func(p *Policy) { p.Windows = nil },
			grant: with(func(g *GrantSpec) { g.Start = utc("2026-11-22T02:00:00Z"); g.End = g.Start.Add(time.Hour) })},
		{name: "ticket does not match", grant: with(func(g *GrantSpec) { g.Ticket = "xCHG1042" }),
			want: []string{`ticket: ticket "xCHG1042" does not match the ticket_pattern ^CHG[0-9]+$`}},
		{name: "ticket missing", grant: with(func(g *GrantSpec) { g.Ticket = "" }),
			want: []string{"ticket: policy.web requires a ticket matching ^CHG[0-9]+$"}},
		{name: "pattern anchored as written", policy: func(p *Policy) { p.TicketPattern = regexp.MustCompile("CHG") },
			grant: with(func(g *GrantSpec) { g.Ticket = "see CHG1042" })},
		{name: "no pattern: no ticket needed", policy: func(p *Policy) { p.TicketPattern = nil },
			grant: with(func(g *GrantSpec) { g.Ticket = "" })},
		{name: "not eligible", grant: with(func(g *GrantSpec) { g.Principal = "mallory" }),
			want: []string{"principal: mallory is not eligible for policy.web"}},
		{name: "eligible through a directory group", grant: with(func(g *GrantSpec) { g.Principal = "frank" }), inGroup: webOps},
		{name: "directory group without a directory", grant: with(func(g *GrantSpec) { g.Principal = "frank" }),
			want: []string{"principal: frank is not eligible"}},
		{name: "one approval short", grant: with(func(g *GrantSpec) { g.Approvers = []string{"carol"} }),
			want: []string{"approved_by: policy.web needs 2 distinct approval(s) from carol, dave, erin, alice, not the requester; it has 1"}},
		{name: "the same approver twice counts once", grant: with(func(g *GrantSpec) { g.Approvers = []string{"carol", "Carol"} }),
			want: []string{"approved_by: policy.web needs 2 distinct approval(s)"}},
		{name: "self-approval", grant: with(func(g *GrantSpec) { g.Approvers = []string{"alice", "carol", "dave"} }),
			want: []string{"approved_by: alice cannot approve their own grant"}},
		{name: "approver not in the list", grant: with(func(g *GrantSpec) { g.Approvers = []string{"carol", "dave", "mallory"} }),
			want: []string{"approved_by: mallory is not an approver of policy.web (approvers: carol, dave, erin, alice)"}},
		{name: "self and stranger and too few, each its own violation",
			grant: with(func(g *GrantSpec) { g.Approvers = []string{"alice", "mallory", "carol"} }),
			want:  []string{"approved_by: alice cannot approve", "approved_by: mallory is not an approver", "approved_by: policy.web needs 2"}},
		{name: "zero approvals needed", policy: func(p *Policy) { p.Approvals = 0 }, grant: with(func(g *GrantSpec) { g.Approvers = nil })},
		{name: "break-glass skips approvals", grant: with(func(g *GrantSpec) {
			g.BreakGlass, g.Approvers, g.End = true, []string{"alice", "mallory"}, g.Start.Add(time.Hour)
		})},
		{name: "break-glass has its own max_duration", grant: with(func(g *GrantSpec) { g.BreakGlass, g.Approvers = true, nil }),
			want: []string{"duration: duration 2h exceeds the break_glass max_duration 1h of policy.web"}},
		{name: "break-glass still needs eligibility, ticket and window", grant: with(func(g *GrantSpec) {
			g.BreakGlass, g.Principal, g.Ticket, g.End = true, "mallory", "", g.Start.Add(time.Hour)
			g.Start, g.End = utc("2026-11-22T10:00:00Z"), utc("2026-11-22T11:00:00Z")
		}), want: []string{"start: ", "ticket: ", "principal: mallory"}},
		{name: "break-glass not allowed", policy: func(p *Policy) { p.BreakGlass = nil },
			grant: with(func(g *GrantSpec) { g.BreakGlass = true }),
			want:  []string{"break_glass: policy.web does not allow break-glass grants"}},
		{name: "case-insensitive names", grant: with(func(g *GrantSpec) { g.Principal, g.Approvers = "ALICE", []string{"Carol", "DAVE"} })},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p := testPolicy(t)
			if tt.policy != nil {
				tt.policy(p)
			}
			got := p.Check(tt.grant, tt.inGroup)
			if len(got) != len(tt.want) {
				t.Fatalf("got %d violations %v, want %d %v", len(got), got, len(tt.want), tt.want)
			}
			for i, v := range got {
				field, frag, _ := strings.Cut(tt.want[i], ": ")
				if v.Field != field || !strings.Contains(v.Message, frag) {
					t.Errorf("violation %d = %s, want %s", i, v, tt.want[i])
				}
			}
		})
	}
}

func TestParseDuration(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   string
		want time.Duration
		err  bool
	}{
		{"90m", 90 * time.Minute, false},
		{"4h", 4 * time.Hour, false},
		{"1h30m", 90 * time.Minute, false},
		{"2d", 48 * time.Hour, false},
		{"1d12h", 36 * time.Hour, false},
		{"30s", 30 * time.Second, false},
		{"0s", 0, false},
		{"", 0, true},
		{"-1h", 0, true},
		{"+1h", 0, true},
		{"4 hours", 0, true},
		{"1.5d", 0, true},
		{"d", 0, true},
		{"2d-1h", 0, true},
		{"1w", 0, true},
	}
	for _, tt := range tests {
		got, err := ParseDuration(tt.in)
		if (err != nil) != tt.err || got != tt.want {
			t.Errorf("ParseDuration(%q) = %v, %v; want %v, error %v", tt.in, got, err, tt.want, tt.err)
		}
	}
}

func BenchmarkPolicyCheck(b *testing.B) {
	w, _ := ParseWindow("Mon-Fri 07:00-19:00 Europe/Berlin")
	p := &Policy{Addr: "policy.web", Eligible: []string{"alice"}, MaxDuration: 4 * time.Hour, Approvals: 1,
		Approvers: []string{"carol"}, TicketPattern: regexp.MustCompile("^CHG[0-9]+$"), Windows: []Window{w}}
	start := utc("2026-11-23T08:00:00Z")
	g := GrantSpec{Principal: "alice", Start: start, End: start.Add(2 * time.Hour), Ticket: "CHG1", Approvers: []string{"carol"}}
	for b.Loop() {
		if v := p.Check(g, nil); len(v) != 0 {
			b.Fatal(v)
		}
	}
}

func TestPolicyOpenAndNextBoundary(t *testing.T) {
	t.Parallel()
	p := testPolicy(t)
	sun, mon := utc("2026-11-22T12:00:00Z"), utc("2026-11-23T12:00:00Z")
	if p.Open(sun) || !p.Open(mon) {
		t.Error("Open must follow the windows")
	}
	if got := p.NextBoundary(sun); !got.Equal(utc("2026-11-23T06:00:00Z")) {
		t.Errorf("NextBoundary = %s", got)
	}
	p.Windows = nil
	if !p.Open(sun) || !p.NextBoundary(sun).IsZero() {
		t.Error("a policy without windows is always open and never changes")
	}
}
