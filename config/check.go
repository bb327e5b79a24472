package config

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/hashicorp/hcl/v2"
)

// GrantSpec is what Policy.Check judges: a repository grant or a ledger
// request, reduced to the facts a policy constrains.
type GrantSpec struct {
	Principal  string
	Start, End time.Time
	Ticket     string
	Approvers  []string
	BreakGlass bool
}

// Violation is one way a grant breaks its policy. Field names the grant
// attribute at fault (duration, start, ticket, principal, approved_by,
// break_glass), so a caller can point at it.
type Violation struct {
	Field   string
	Message string
}

func (v Violation) String() string { return v.Field + ": " + v.Message }

// Open reports whether the policy's windows allow access at t; a policy
// without windows allows any time.
func (p *Policy) Open(t time.Time) bool {
	return len(p.Windows) == 0 || WindowsContain(p.Windows, t)
}

// NextBoundary is when the policy's windows next open or close after t, or
// the zero time when they never change (no windows, or open all week).
func (p *Policy) NextBoundary(after time.Time) time.Time {
	if len(p.Windows) == 0 {
		return time.Time{}
	}
	return NextWindowBoundary(p.Windows, after)
}

// Check returns every way g breaks the policy, or nil. inGroup reports
// whether the principal belongs to an eligible "group:<DN>" entry (it may
// be nil when no directory is at hand: such entries then never match).
// Break-glass grants skip the approval checks but need a break_glass block
// and obey its max_duration.
func (p *Policy) Check(g GrantSpec, inGroup func(eligibleEntry string) bool) []Violation {
	return p.check(g, inGroup, nil)
}

// policySets indexes a policy's lists for checking many grants against it
// (CheckGrants) in time linear in grants plus list lengths.
type policySets struct {
	eligible  map[string]bool // lower-cased ASCII principals
	groups    []string        // the "group:<DN>" entries
	approvers map[string]bool // lower-cased ASCII approvers
	// Non-ASCII entries, compared with strings.EqualFold as Check does
	// (lower-casing and EqualFold agree only on ASCII).
	otherEligible, otherApprovers []string
}

func (p *Policy) sets() *policySets {
	s := &policySets{eligible: map[string]bool{}, approvers: map[string]bool{}}
	for _, e := range p.Eligible {
		switch {
		case strings.HasPrefix(e, "group:"):
			s.groups = append(s.groups, e)
		case isASCII(e):
			s.eligible[strings.ToLower(e)] = true
		default:
			s.otherEligible = append(s.otherEligible, e)
		}
	}
	for _, a := range p.Approvers {
		if isASCII(a) {
			s.approvers[strings.ToLower(a)] = true
		} else {
			s.otherApprovers = append(s.otherApprovers, a)
		}
	}
	return s
}

// check is Check, with the policy's lists indexed when sets is not nil.
func (p *Policy) check(g GrantSpec, inGroup func(eligibleEntry string) bool, sets *policySets) []Violation {
	var out []Violation
	add := func(field, format string, args ...any) {
		out = append(out, Violation{Field: field, Message: fmt.Sprintf(format, args...)})
	}

	maxDur, maxName := p.MaxDuration, "max_duration"
	if g.BreakGlass {
		if p.BreakGlass == nil {
			add("break_glass", "%s does not allow break-glass grants", p.Addr)
		} else {
			maxDur, maxName = p.BreakGlass.MaxDuration, "break_glass max_duration"
		}
	}
	dur := g.End.Sub(g.Start)
	switch {
	case dur <= 0:
		add("duration", "the grant ends before it starts")
	case maxDur > 0 && dur > maxDur:
		add("duration", "duration %s exceeds the %s %s of %s", fmtDuration(dur), maxName, fmtDuration(maxDur), p.Addr)
	}

	if len(p.Windows) > 0 && dur > 0 && !windowsCover(p.Windows, g.Start, g.End) {
		specs := make([]string, len(p.Windows))
		for i, w := range p.Windows {
			specs[i] = w.Spec
		}
		add("start", "%s to %s is not inside the windows of %s (%s)",
			g.Start.UTC().Format(time.RFC3339), g.End.UTC().Format(time.RFC3339), p.Addr, strings.Join(specs, "; "))
	}

	if p.TicketPattern != nil && !p.TicketPattern.MatchString(g.Ticket) {
		if g.Ticket == "" {
			add("ticket", "%s requires a ticket matching %s", p.Addr, p.TicketPattern)
		} else {
			add("ticket", "ticket %q does not match the ticket_pattern %s of %s", g.Ticket, p.TicketPattern, p.Addr)
		}
	}

	if !p.eligible(g.Principal, inGroup, sets) {
		add("principal", "%s is not eligible for %s", g.Principal, p.Addr)
	}

	if !g.BreakGlass {
		approved := 0
		seen := make(map[string]bool, len(g.Approvers))
		isApprover := func(a string) bool {
			if sets != nil {
				return isASCII(a) && sets.approvers[strings.ToLower(a)] ||
					slices.ContainsFunc(sets.otherApprovers, func(x string) bool { return strings.EqualFold(x, a) }) ||
					!isASCII(a) && slices.ContainsFunc(p.Approvers, func(x string) bool { return strings.EqualFold(x, a) })
			}
			return slices.ContainsFunc(p.Approvers, func(x string) bool { return strings.EqualFold(x, a) })
		}
		for _, a := range g.Approvers {
			key := strings.ToLower(a)
			if seen[key] {
				continue // the same person twice counts once
			}
			seen[key] = true
			switch {
			case strings.EqualFold(a, g.Principal):
				add("approved_by", "%s cannot approve their own grant", a)
			case !isApprover(a):
				add("approved_by", "%s is not an approver of %s (approvers: %s)", a, p.Addr, listOrNone(p.Approvers))
			default:
				approved++
			}
		}
		if approved < p.Approvals {
			add("approved_by", "%s needs %d distinct approval(s) from %s, not the requester; it has %d",
				p.Addr, p.Approvals, listOrNone(p.Approvers), approved)
		}
	}
	return out
}

// eligible reports whether principal is listed, or in a listed directory group.
func (p *Policy) eligible(principal string, inGroup func(string) bool, sets *policySets) bool {
	if sets != nil && isASCII(principal) {
		if sets.eligible[strings.ToLower(principal)] ||
			slices.ContainsFunc(sets.otherEligible, func(x string) bool { return strings.EqualFold(x, principal) }) {
			return true
		}
		for _, e := range sets.groups {
			if inGroup != nil && inGroup(e) {
				return true
			}
		}
		return false
	}
	for _, e := range p.Eligible {
		if strings.HasPrefix(e, "group:") {
			if inGroup != nil && inGroup(e) {
				return true
			}
			continue
		}
		if strings.EqualFold(e, principal) {
			return true
		}
	}
	return false
}

func listOrNone(xs []string) string {
	if len(xs) == 0 {
		return "none"
	}
	return strings.Join(xs, ", ")
}

// fmtDuration prints 2h0m0s as 2h and 90m as 1h30m.
func fmtDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

// CheckGrants checks every repository grant against its policy and returns
// each violation as an error at the offending attribute. Eligibility through
// a "group:<DN>" entry needs the directory, so it is assumed here and
// checked by plan. Grants whose policy did not load were reported by Load.
func CheckGrants(cfg *Config) hcl.Diagnostics {
	var diags hcl.Diagnostics
	policies := make(map[string]*Policy, len(cfg.Policies))
	sets := make(map[*Policy]*policySets, len(cfg.Policies))
	for _, p := range cfg.Policies {
		policies[p.Addr] = p
		sets[p] = p.sets()
	}
	at := func(g *Grant, field string) *hcl.Range {
		if r, ok := g.Ranges.Of(field); ok {
			return &r
		}
		r := g.DeclRange
		return &r
	}
	// max_active: policy + principal -> the windows of the grants checked
	// so far, counted in O(log n) per grant (a principal may have
	// thousands of grants in a repository).
	active := map[string]*windowCounter{}
	for _, g := range cfg.Grants {
		if p := policies[g.Policy]; p != nil && p.MaxActive > 0 && p.Approval != ApprovalLedger {
			key := p.Addr + "\x00" + strings.ToLower(g.Principal)
			if active[key] == nil {
				active[key] = &windowCounter{}
			}
			active[key].prepare(g)
		}
	}
	for _, c := range active {
		c.index()
	}
	for _, g := range cfg.Grants {
		p := policies[g.Policy]
		if p == nil {
			continue
		}
		if p.Approval == ApprovalLedger {
			diags = append(diags, &hcl.Diagnostic{
				Severity: hcl.DiagError,
				Summary:  fmt.Sprintf("policy %s accepts only ledger approvals", p.Name),
				Detail: fmt.Sprintf("%s is a grant block, approved by review of the repository, but %s takes approvals only as signed ledger events: "+
					"use jitform grant request and grant approve instead.", g.Addr, p.Addr),
				Subject: at(g, "policy"),
			})
			continue
		}
		spec := GrantSpec{Principal: g.Principal, Start: g.Start, End: g.End(), Ticket: g.Ticket, Approvers: g.ApprovedBy}
		for _, v := range p.check(spec, func(string) bool { return true }, sets[p]) {
			diags = append(diags, &hcl.Diagnostic{
				Severity: hcl.DiagError,
				Summary:  "Grant does not conform to its policy",
				Detail:   fmt.Sprintf("%s: %s.", g.Addr, v.Message),
				Subject:  at(g, v.Field),
			})
		}
		if p.MaxActive > 0 {
			c := active[p.Addr+"\x00"+strings.ToLower(g.Principal)]
			if c.overlapping(g) >= p.MaxActive {
				diags = append(diags, &hcl.Diagnostic{
					Severity: hcl.DiagError,
					Summary:  "Grant does not conform to its policy",
					Detail: fmt.Sprintf("%s: %s would hold more than max_active = %d overlapping grants of %s.",
						g.Addr, g.Principal, p.MaxActive, p.Addr),
					Subject: at(g, "principal"),
				})
			}
			c.add(g)
		}
	}
	sortDiags(diags)
	return diags
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

// windowCounter counts, among the windows added so far, those overlapping
// a given one: #(start < end of g) - #(end <= start of g), which is exact
// because every window is longer than zero. prepare every window first,
// then index, then overlapping and add in any order.
type windowCounter struct {
	starts, ends []int64 // sorted coordinates
	byStart      fenwick
	byEnd        fenwick
}

func (c *windowCounter) prepare(g *Grant) {
	c.starts = append(c.starts, g.Start.UnixNano())
	c.ends = append(c.ends, g.End().UnixNano())
}

func (c *windowCounter) index() {
	slices.Sort(c.starts)
	slices.Sort(c.ends)
	c.byStart = make(fenwick, len(c.starts)+1)
	c.byEnd = make(fenwick, len(c.ends)+1)
}

func (c *windowCounter) overlapping(g *Grant) int {
	// starts strictly before g's end; ends at or before g's start.
	before, _ := slices.BinarySearch(c.starts, g.End().UnixNano())
	endedIdx, found := slices.BinarySearch(c.ends, g.Start.UnixNano())
	for found && endedIdx < len(c.ends) && c.ends[endedIdx] == g.Start.UnixNano() {
		endedIdx++
	}
	return c.byStart.sum(before) - c.byEnd.sum(endedIdx)
}

func (c *windowCounter) add(g *Grant) {
	i, _ := slices.BinarySearch(c.starts, g.Start.UnixNano())
	c.byStart.add(i)
	j, _ := slices.BinarySearch(c.ends, g.End().UnixNano())
	c.byEnd.add(j)
}

// fenwick is a binary indexed tree of counts over positions 0..n-1.
type fenwick []int

func (f fenwick) add(i int) {
	for i++; i < len(f); i += i & -i {
		f[i]++
	}
}

// sum counts the positions < n.
func (f fenwick) sum(n int) int {
	s := 0
	for i := n; i > 0; i -= i & -i {
		s += f[i]
	}
	return s
}
