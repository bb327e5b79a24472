// Package report computes jitform's exposure report from the ledger: per
// group and member, how long each held the privilege (privilege-active time)
// against the standing baseline (the same members holding it permanently),
// the grants behind it, break-glass use and its review, how quickly expired
// windows were stripped (expiry latency), and every change that failed or
// whose outcome is unknown.
//
// It is pure: (ledger events, config, observed membership, since, until,
// now) -> Report. Reading the ledger and the targets is the caller's job.
// Renderers for text, JSON, CSV and HTML live in render*.go.
//
// Never under-report: a change whose outcome is unknown (or missing, after a
// crash) counts as having happened when that means more privilege, until a
// later outcome proves otherwise.
package report

import (
	"encoding/json"
	"fmt"
	"math"
	"sort"
	"strings"
	"time"

	"github.com/jitform/jitform/config"
	"github.com/jitform/jitform/planner"
	"github.com/jitform/jitform/state"
)

// FormatVersion is the version of the report JSON (docs/report.md).
const FormatVersion = "1.0"

// DefaultLateAfter is how long after a window's end a removal may come
// before it counts as late.
const DefaultLateAfter = 15 * time.Minute

// Interval reasons: what colours a bar in the timeline.
const (
	ReasonGrant      = "grant"       // an approved grant
	ReasonBreakGlass = "break_glass" // a break-glass grant
	ReasonDeclared   = "declared"    // a declared standing member
	ReasonUnknown    = "unknown"     // an uncertain outcome, or held without a recorded add
)

// Expiry statuses of a window that ended in the period.
const (
	ExpiryOnTime     = "on_time"     // removed within LateAfter of the window's end
	ExpiryLate       = "late"        // removed, but more than LateAfter after the end
	ExpiryNotRemoved = "not_removed" // no removal recorded by the end of the period
	ExpiryContinued  = "continued"   // another grant or a declaration kept the member: no removal due
)

// Input is everything a report is computed from.
type Input struct {
	Config *config.Config
	Events []state.Event
	// Observed is optional: group address -> canonical IDs of the members
	// present now. A member present now whom the ledger never recorded
	// being added counts as active (reason unknown) for the period.
	Observed map[string][]string
	// Since and Until bound the period; Now is when the report is made.
	Since, Until, Now time.Time
	// LateAfter: removals more than this after a window's end are late
	// (0: DefaultLateAfter).
	LateAfter time.Duration
}

// Report is the exposure report. Its JSON form is documented in
// docs/report.md; fields are only ever added.
type Report struct {
	FormatVersion string    `json:"format_version"`
	GeneratedAt   time.Time `json:"generated_at"`
	Since         time.Time `json:"since"`
	Until         time.Time `json:"until"`
	PeriodHours   float64   `json:"period_hours"`
	LateAfter     string    `json:"late_after"`
	LedgerEvents  int       `json:"ledger_events"`

	Totals     Totals       `json:"totals"`
	Groups     []Group      `json:"groups"`
	Expiry     Expiry       `json:"expiry"`
	Problems   []Problem    `json:"problems"`
	Grants     GrantSummary `json:"grants"`
	BreakGlass []BreakGlass `json:"break_glass"`
	// ChangesByRunner counts the membership changes jitform announced in
	// the period by who ran the apply (apply_started; "not recorded" for
	// ledgers written before it was).
	ChangesByRunner []Count `json:"changes_by_runner"`
	// RemovalsBy counts the privilege intervals that ended in the period
	// by what ended them: jitform, ttl_link, windows_switch, unknown.
	RemovalsBy []Count  `json:"removals_by"`
	Warnings   []string `json:"warnings,omitempty"`
}

// What ended a privilege interval (Interval.RemovedBy).
const (
	RemovedByJitform       = "jitform"        // a removal jitform made and recorded
	RemovedByTTLLink       = "ttl_link"       // the directory's expiring link (removed_by_server)
	RemovedByWindowsSwitch = "windows_switch" // a host's dead-man's switch (removed_by_server)
	RemovedByUnknown       = "unknown"        // found gone, no lock known to have done it
)

// notRecorded is the runner of changes whose apply did not record one.
const notRecorded = "not recorded"

// Totals sums every group.
type Totals struct {
	Groups           int     `json:"groups"`
	Members          int     `json:"members"` // member rows (a member of two groups counts twice)
	PrivilegeHours   float64 `json:"privilege_hours"`
	StandingHours    float64 `json:"standing_hours"`
	ReductionPercent float64 `json:"reduction_percent"`
}

// Group is one managed group's exposure in the period.
type Group struct {
	Group            string   `json:"group"`
	Target           string   `json:"target"`
	Members          int      `json:"members"` // members with any privilege-active time in the period
	PrivilegeHours   float64  `json:"privilege_hours"`
	StandingHours    float64  `json:"standing_hours"` // members x period
	ReductionPercent float64  `json:"reduction_percent"`
	Rows             []Member `json:"member_rows"`
}

// Member is one member of one group.
type Member struct {
	Member         string     `json:"member"` // canonical ID (or the declared name)
	Name           string     `json:"name,omitempty"`
	PrivilegeHours float64    `json:"privilege_hours"`
	ActiveSeconds  int64      `json:"active_seconds"`
	Intervals      []Interval `json:"intervals"`
	// WindowEnds are the ends of grant windows for this member in the
	// period (the timeline marks them).
	WindowEnds []time.Time `json:"window_ends,omitempty"`
}

// Interval is one privilege-active stretch, clipped to the period.
type Interval struct {
	Start time.Time `json:"start"`
	End   time.Time `json:"end"`
	// Open: no removal recorded by the end of the period.
	Open   bool   `json:"open"`
	Reason string `json:"reason"` // grant, break_glass, declared, unknown
	Grant  string `json:"grant,omitempty"`
	Policy string `json:"policy,omitempty"`
	Ticket string `json:"ticket,omitempty"`
	Note   string `json:"note,omitempty"`
	// By is who ran the apply that added the member (its runner).
	By string `json:"by,omitempty"`
	// RemovedBy is what ended the interval: jitform, ttl_link,
	// windows_switch or unknown; EndedBy the runner of jitform's removal,
	// or of the apply that found the member gone.
	RemovedBy string `json:"removed_by,omitempty"`
	EndedBy   string `json:"ended_by,omitempty"`
}

// Expiry is how quickly members were removed after their windows ended.
type Expiry struct {
	Windows    int `json:"windows"` // windows that ended in the period (excluding continued)
	Removed    int `json:"removed"`
	Late       int `json:"late"`
	NotRemoved int `json:"not_removed"`
	// Latency percentiles (nearest rank) over removed windows, in seconds.
	P50Seconds float64 `json:"p50_seconds"`
	P99Seconds float64 `json:"p99_seconds"`
	MaxSeconds float64 `json:"max_seconds"`
	// Entries: late and not-removed windows first, then the rest by end.
	Entries []WindowEnd `json:"entries"`
}

// WindowEnd is one grant window that ended in the period, on one group.
type WindowEnd struct {
	Status         string     `json:"status"` // on_time, late, not_removed, continued
	Grant          string     `json:"grant"`
	Policy         string     `json:"policy"`
	Principal      string     `json:"principal"`
	Group          string     `json:"group"`
	Member         string     `json:"member"`
	End            time.Time  `json:"end"`
	Revoked        bool       `json:"revoked,omitempty"`
	RemovedAt      *time.Time `json:"removed_at,omitempty"`
	LatencySeconds *float64   `json:"latency_seconds,omitempty"`
	ContinuedBy    string     `json:"continued_by,omitempty"`
	// RemovedBy is what made the removal: jitform, ttl_link,
	// windows_switch or unknown (Interval.RemovedBy).
	RemovedBy string `json:"removed_by,omitempty"`
}

// Problem is a change that failed, or whose outcome is unknown or missing.
type Problem struct {
	At     time.Time `json:"at"`
	Status string    `json:"status"` // failed, unknown, no_outcome
	Action string    `json:"action"`
	Group  string    `json:"group"`
	Member string    `json:"member"`
	Name   string    `json:"name,omitempty"`
	Reason string    `json:"reason,omitempty"`
	Grant  string    `json:"grant,omitempty"`
	Error  string    `json:"error,omitempty"`
	Seq    int64     `json:"seq"`
	By     string    `json:"by,omitempty"` // who ran the apply
}

// GrantSummary counts the grants whose windows overlap the period.
type GrantSummary struct {
	Total      int          `json:"total"`
	ByPolicy   []Count      `json:"by_policy"`
	ByApprover []Count      `json:"by_approver"`
	ByTicket   []Count      `json:"by_ticket"`
	List       []GrantEntry `json:"list"`
}

// Count is one row of a breakdown.
type Count struct {
	Key   string `json:"key"`
	Count int    `json:"count"`
}

// GrantEntry is one grant whose window overlaps the period.
type GrantEntry struct {
	ID         string    `json:"id"`
	Source     string    `json:"source"` // repository or ledger
	Policy     string    `json:"policy"`
	Principal  string    `json:"principal"`
	Start      time.Time `json:"start"`
	End        time.Time `json:"end"`
	Ticket     string    `json:"ticket,omitempty"`
	Reason     string    `json:"reason,omitempty"`
	Approvers  []string  `json:"approvers"`
	BreakGlass bool      `json:"break_glass,omitempty"`
	Revoked    bool      `json:"revoked,omitempty"`
}

// BreakGlass is a break-glass grant whose window overlaps the period.
type BreakGlass struct {
	Grant              string     `json:"grant"`
	Policy             string     `json:"policy"`
	Principal          string     `json:"principal"`
	Start              time.Time  `json:"start"`
	End                time.Time  `json:"end"`
	Ticket             string     `json:"ticket,omitempty"`
	Reason             string     `json:"reason,omitempty"`
	Reviewed           bool       `json:"reviewed"`
	ReviewedBy         string     `json:"reviewed_by,omitempty"`
	ReviewedAt         *time.Time `json:"reviewed_at,omitempty"`
	ReviewDelaySeconds *float64   `json:"review_delay_seconds,omitempty"`
}

// rowKey names one member of one group.
type rowKey struct{ group, member string }

// span is a raw privilege-active interval, before clipping.
type span struct {
	start, end time.Time // end zero: open
	reason     string
	grant      string
	policy     string
	ticket     string
	note       string
	uncertain  bool
	intent     string // the add intent that opened it
	by         string // runner of the add
	removedBy  string // what ended it (RemovedBy*)
	endedBy    string // runner of the removal, or of the apply that found it gone
}

type row struct {
	name       string
	spans      []span
	open       int       // index of the open span, -1 if none
	lastAbsent time.Time // last moment the member was known not to be there
}

type pendingIntent struct {
	c   state.Change
	at  time.Time
	seq int64
	by  string // runner of the apply that announced it
}

// Build computes the report. It never fails: malformed events become
// warnings, as in the planner.
func Build(in Input) *Report {
	late := in.LateAfter
	if late <= 0 {
		late = DefaultLateAfter
	}
	since, until := in.Since.UTC(), in.Until.UTC()
	var clampWarning string
	if now := in.Now.UTC(); !in.Now.IsZero() && until.After(now) && now.After(since) {
		// The ledger cannot know the future: the period ends now.
		clampWarning = fmt.Sprintf("until %s is in the future; the period ends now (%s)", until.Format(time.RFC3339), now.Format(time.RFC3339))
		until = now
	}
	r := &Report{
		FormatVersion: FormatVersion,
		GeneratedAt:   in.Now.UTC(),
		Since:         since,
		Until:         until,
		PeriodHours:   round(until.Sub(since).Hours()),
		LateAfter:     late.String(),
		LedgerEvents:  len(in.Events),
		Groups:        []Group{},
		Problems:      []Problem{},
		BreakGlass:    []BreakGlass{},
	}
	r.Expiry.Entries = []WindowEnd{}
	if clampWarning != "" {
		r.Warnings = append(r.Warnings, clampWarning)
	}
	r.Grants.List = []GrantEntry{}

	cfg := in.Config
	if cfg == nil {
		cfg = &config.Config{}
	}

	// Grants, from the repository and the ledger. Only events up to Until
	// count: the report is as of its end.
	events := in.Events
	if monotonic(events) {
		events = events[:sort.Search(len(events), func(i int) bool { return events[i].Time.After(until) })]
	} else {
		kept := make([]state.Event, 0, len(events))
		for _, ev := range events {
			if !ev.Time.After(until) {
				kept = append(kept, ev)
			}
		}
		events = kept
	}
	grants := collectGrants(cfg, events, until, r)
	byID := map[string]*grantInfo{}
	for i := range grants {
		byID[grants[i].ID] = &grants[i]
	}

	// Replay the membership changes.
	rows := map[rowKey]*row{}
	groupTarget := map[string]string{}
	for _, g := range cfg.Groups {
		groupTarget[g.Addr] = g.Target.Addr
	}
	getRow := func(k rowKey) *row {
		rw := rows[k]
		if rw == nil {
			rw = &row{open: -1}
			rows[k] = rw
		}
		return rw
	}
	// Intents waiting for their outcome, by ID: indexes into a slab whose
	// freed slots are reused (a pendingIntent is too large to be a map
	// value without an allocation per intent).
	intents := map[string]int{}
	var slab []pendingIntent
	var free []int
	grantMembers := map[string][]rowKey{} // grant ID -> rows it added
	runners := map[string]string{}        // apply_started ID -> runner
	byRunner := map[string]int{}
	removals := map[string]int{}
	dec := newPayloadDecoder()
	for base := 0; base < len(events); base += decodeWindow {
		win := events[base:min(base+decodeWindow, len(events))]
		dec.decode(win)
		for wi, ev := range win {
			switch ev.Type {
			case state.EventApplyStarted:
				var st state.ApplyStarted
				if err := json.Unmarshal(ev.Payload, &st); err != nil || st.ID == "" {
					r.Warnings = append(r.Warnings, fmt.Sprintf("ledger event %d: malformed apply_started ignored", ev.Seq))
					continue
				}
				runners[st.ID] = st.Runner.String()
			case state.EventRemovedByServer:
				var rb state.RemovedByServer
				if err := json.Unmarshal(ev.Payload, &rb); err != nil || rb.Group == "" || rb.Member == "" {
					r.Warnings = append(r.Warnings, fmt.Sprintf("ledger event %d: malformed removed_by_server ignored", ev.Seq))
					continue
				}
				at := rb.ObservedAt.UTC()
				if at.IsZero() {
					at = ev.Time.UTC()
				}
				if end, ok := removedByServer(getRow(rowKey{rb.Group, rb.Member}), rb, at, runners[rb.Run]); ok && !end.Before(since) {
					removals[lockName(rb.Lock)]++
				}
			case state.EventChangeIntent:
				c := dec.changes[wi]
				if dec.errs[wi] != nil || c.ID == "" || c.Group == "" || c.Member == "" {
					r.Warnings = append(r.Warnings, fmt.Sprintf("ledger event %d: malformed change_intent ignored", ev.Seq))
					continue
				}
				by := runners[c.Run]
				if !ev.Time.Before(since) {
					if by == "" {
						byRunner[notRecorded]++
					} else {
						byRunner[by]++
					}
				}
				pi := pendingIntent{c: c, at: ev.Time.UTC(), seq: ev.Seq, by: by}
				k, ok := intents[c.ID]
				switch {
				case ok:
				case len(free) > 0:
					k, free = free[len(free)-1], free[:len(free)-1]
				default:
					k = len(slab)
					slab = append(slab, pendingIntent{})
				}
				slab[k] = pi
				intents[c.ID] = k
				if _, ok := groupTarget[c.Group]; !ok && c.Target != "" {
					groupTarget[c.Group] = c.Target
				}
				if c.Action == "add" {
					k := rowKey{c.Group, c.Member}
					if c.Grant != "" && !containsKey(grantMembers[c.Grant], k) {
						grantMembers[c.Grant] = append(grantMembers[c.Grant], k)
					}
					// The add may happen any moment after its intent: the member
					// counts as active from here until an outcome says otherwise.
					addIntent(getRow(k), pi)
				}
			case state.EventChangeApplied, state.EventChangeFailed:
				if dec.errs[wi] != nil {
					r.Warnings = append(r.Warnings, fmt.Sprintf("ledger event %d: malformed %s ignored", ev.Seq, ev.Type))
					continue
				}
				scratchO := &dec.outcomes[wi]
				k, ok := intents[scratchO.ID]
				if !ok {
					r.Warnings = append(r.Warnings, fmt.Sprintf("ledger event %d: %s for an unknown change intent %s", ev.Seq, ev.Type, scratchO.ID))
					continue
				}
				pi := slab[k]
				delete(intents, scratchO.ID)
				free = append(free, k)
				status := scratchO.Status
				if ev.Type == state.EventChangeFailed && status != "failed" {
					status = "unknown"
				}
				if ev.Type == state.EventChangeApplied && status != "done" && status != "already" {
					status = "unknown"
				}
				if applyOutcome(getRow(rowKey{pi.c.Group, pi.c.Member}), pi, status, ev.Time.UTC(), byID) && !ev.Time.Before(since) {
					removals[RemovedByJitform]++
				}
				if status == "failed" || status == "unknown" {
					if !ev.Time.Before(since) {
						r.Problems = append(r.Problems, problem(pi, status, scratchO.Error))
					}
				}
			}
		}
	}
	// Intents without an outcome (a crash between the call and the
	// record): an add may have happened, a remove may not have.
	for _, pi := range sortedIntents(intents, slab) {
		applyOutcome(getRow(rowKey{pi.c.Group, pi.c.Member}), pi, "no_outcome", time.Time{}, byID)
		if !pi.at.Before(since) {
			r.Problems = append(r.Problems, problem(pi, "no_outcome", "the ledger records the intent but no outcome (a crash during apply?)"))
		}
	}

	// Declared standing members hold the group the whole period.
	declared := map[string]map[string]bool{}
	for _, g := range cfg.Groups {
		for _, m := range g.Members {
			lm := strings.ToLower(m)
			if declared[g.Addr] == nil {
				declared[g.Addr] = map[string]bool{}
			}
			declared[g.Addr][lm] = true
			var hit *row
			for k, rw := range rows {
				if k.group == g.Addr && (strings.ToLower(k.member) == lm || strings.ToLower(rw.name) == lm) {
					hit = rw
					break
				}
			}
			if hit == nil {
				hit = getRow(rowKey{g.Addr, m})
			}
			hit.spans = []span{{start: since, reason: ReasonDeclared, note: "declared standing member"}}
			hit.open = 0
		}
		if _, ok := groupTarget[g.Addr]; !ok {
			groupTarget[g.Addr] = g.Target.Addr
		}
	}

	// Observed members with no record of how they got there.
	for g, ms := range in.Observed {
		for _, m := range ms {
			rw := getRow(rowKey{g, m})
			if rw.open >= 0 {
				continue
			}
			rw.spans = append(rw.spans, span{start: rw.lastAbsent, reason: ReasonUnknown, uncertain: true,
				note: "present when observed; the ledger records no add"})
			rw.open = len(rw.spans) - 1
		}
	}

	r.ChangesByRunner = counts(byRunner)
	r.RemovalsBy = counts(removals)
	buildGroups(r, cfg, rows, groupTarget, since, until)
	buildExpiry(r, cfg, grants, grantMembers, rows, declared, since, until, late)
	buildGrants(r, grants, since, until)
	sort.SliceStable(r.Problems, func(i, j int) bool {
		a, b := r.Problems[i], r.Problems[j]
		ra, rb := a.Action == "remove", b.Action == "remove"
		if ra != rb {
			return ra // failed removals first: a member who should be gone is still there
		}
		return a.Seq < b.Seq
	})
	return r
}

func monotonic(events []state.Event) bool {
	for i := 1; i < len(events); i++ {
		if events[i].Time.Before(events[i-1].Time) {
			return false
		}
	}
	return true
}

func containsKey(ks []rowKey, k rowKey) bool {
	for _, x := range ks {
		if x == k {
			return true
		}
	}
	return false
}

func sortedIntents(m map[string]int, slab []pendingIntent) []pendingIntent {
	out := make([]pendingIntent, 0, len(m))
	for _, k := range m {
		out = append(out, slab[k])
	}
	sort.Slice(out, func(i, j int) bool { return out[i].seq < out[j].seq })
	return out
}

func problem(pi pendingIntent, status, errText string) Problem {
	return Problem{At: pi.at, Status: status, Action: pi.c.Action, Group: pi.c.Group, Member: pi.c.Member,
		Name: pi.c.Name, Reason: pi.c.Reason, Grant: pi.c.Grant, Error: errText, Seq: pi.seq, By: pi.by}
}

// lockName is the RemovedBy of a removed_by_server lock.
func lockName(lock string) string {
	switch lock {
	case state.LockTTLLink:
		return RemovedByTTLLink
	case state.LockWindowsSwitch:
		return RemovedByWindowsSwitch
	}
	return RemovedByUnknown
}

// removedByServer ends the member's open interval where a server-side
// lock did: at the lock's expiry when it is known (and inside the
// interval), else when the member was found gone. ok is false when the
// member was not active (nothing to end); end is when it ended.
func removedByServer(rw *row, rb state.RemovedByServer, observed time.Time, by string) (end time.Time, ok bool) {
	if rw.open < 0 {
		return time.Time{}, false
	}
	sp := &rw.spans[rw.open]
	end = observed
	if rb.Expires != nil {
		if x := rb.Expires.UTC(); x.After(sp.start) && x.Before(observed) {
			end = x
		}
	}
	sp.end, sp.removedBy, sp.endedBy = end, lockName(rb.Lock), by
	if sp.uncertain {
		sp.note = "" // it was there: the lock removed it
		sp.uncertain = false
	}
	rw.open = -1
	rw.lastAbsent = end
	return end, true
}

// applyOutcome moves one row's state by one change outcome. status is done,
// already, failed, unknown or no_outcome. It reports whether the outcome
// ended an interval (a removal jitform made).
func applyOutcome(rw *row, pi pendingIntent, status string, at time.Time, byID map[string]*grantInfo) bool {
	if pi.c.Name != "" {
		rw.name = pi.c.Name
	}
	certain := status == "done" || status == "already"
	switch pi.c.Action {
	case "add":
		if rw.open < 0 {
			return false
		}
		sp := &rw.spans[rw.open]
		own := sp.intent == pi.c.ID // this add opened the interval
		switch {
		case certain && sp.uncertain:
			// Confirmed (a retry that found it "already" there confirms too).
			sp.reason, sp.uncertain, sp.note = addReason(pi.c, byID), false, ""
			if !own {
				sp.grant, sp.policy, sp.ticket = pi.c.Grant, pi.c.Policy, pi.c.Ticket
			}
		case !own:
			// The member was already active when this add was announced.
		case status == "failed" && len(rw.spans)-1 == rw.open:
			// Certainly not added: the tentative interval never was.
			rw.spans = rw.spans[:rw.open]
			rw.open = -1
		case status == "unknown":
			sp.note = "add outcome unknown: counted as active until proven otherwise"
		}
	case "remove":
		if certain {
			if rw.open < 0 {
				// Removed, but the ledger never recorded the add: held at
				// least since the member was last known absent.
				rw.spans = append(rw.spans, span{start: rw.lastAbsent, reason: ReasonUnknown, uncertain: true,
					note: "held before the ledger records an add"})
				rw.open = len(rw.spans) - 1
			}
			// The removal happened by the outcome: end there.
			rw.spans[rw.open].end = at
			rw.spans[rw.open].removedBy, rw.spans[rw.open].endedBy = RemovedByJitform, pi.by
			rw.open = -1
			rw.lastAbsent = at
			return true
		}
		// Failed or uncertain: the member is (still) there.
		if status == "no_outcome" && len(rw.spans) > 0 && rw.spans[len(rw.spans)-1].end.After(pi.at) {
			return false // a later removal already closed what this one would have
		}
		if rw.open < 0 {
			rw.spans = append(rw.spans, span{start: rw.lastAbsent, reason: ReasonUnknown, uncertain: true,
				note: "removal " + status + ": held before the ledger records an add"})
			rw.open = len(rw.spans) - 1
		}
	}
	return false
}

// addIntent opens a tentative interval for an announced add, unless the
// member is already active.
func addIntent(rw *row, pi pendingIntent) {
	if pi.c.Name != "" {
		rw.name = pi.c.Name
	}
	if rw.open >= 0 {
		sp := &rw.spans[rw.open]
		if sp.uncertain && sp.intent == "" {
			// Held without a recorded add; from now on by this change.
			sp.intent = pi.c.ID
		}
		return
	}
	rw.spans = append(rw.spans, span{start: pi.at, reason: ReasonUnknown, uncertain: true, intent: pi.c.ID,
		grant: pi.c.Grant, policy: pi.c.Policy, ticket: pi.c.Ticket, by: pi.by,
		note: "add announced, no outcome recorded: counted as active until proven otherwise"})
	rw.open = len(rw.spans) - 1
}

// addReason is the timeline colour of a confirmed add.
func addReason(c state.Change, byID map[string]*grantInfo) string {
	if c.Reason == planner.ReasonDeclared {
		return ReasonDeclared
	}
	if g := byID[c.Grant]; g != nil && g.BreakGlass {
		return ReasonBreakGlass
	}
	return ReasonGrant
}

// grantInfo is a grant as the report sees it.
type grantInfo struct {
	planner.Grant
	ReviewedBy string
	ReviewedAt time.Time
	EffEnd     time.Time // End, or the revocation if earlier
}

func collectGrants(cfg *config.Config, events []state.Event, until time.Time, r *Report) []grantInfo {
	var out []grantInfo
	recs, warns := planner.LedgerGrants(cfg, events, until)
	for _, w := range warns {
		r.Warnings = append(r.Warnings, w.Summary)
	}
	revokedRepo := map[string]time.Time{}
	for _, rec := range recs {
		if rec.Source == "repository" {
			if rec.Revoked {
				revokedRepo[rec.ID] = rec.RevokedAt.UTC()
			}
			continue
		}
		if rec.ApprovedAt.IsZero() || rec.Status == planner.StatusInvalid || rec.Status == planner.StatusRefused {
			continue // never took effect
		}
		gi := grantInfo{Grant: rec.Grant, ReviewedBy: rec.ReviewedBy, ReviewedAt: rec.ReviewedAt}
		out = append(out, gi)
	}
	for _, g := range cfg.Grants {
		pg := planner.Grant{ID: g.Addr, Source: "repository", Policy: g.Policy, Principal: g.Principal,
			Start: g.Start, End: g.End(), Ticket: g.Ticket, Reason: g.Reason, Approvers: g.ApprovedBy}
		if at, ok := revokedRepo[g.Addr]; ok {
			pg.Revoked, pg.RevokedAt = true, at
		}
		out = append(out, grantInfo{Grant: pg})
	}
	for i := range out {
		g := &out[i]
		g.Start, g.End = g.Start.UTC(), g.End.UTC()
		g.EffEnd = g.End
		if g.Revoked && !g.RevokedAt.IsZero() && g.RevokedAt.Before(g.EffEnd) {
			g.EffEnd = g.RevokedAt.UTC()
		}
	}
	sort.SliceStable(out, func(i, j int) bool {
		if !out[i].Start.Equal(out[j].Start) {
			return out[i].Start.Before(out[j].Start)
		}
		return out[i].ID < out[j].ID
	})
	return out
}

func buildGroups(r *Report, cfg *config.Config, rows map[rowKey]*row, groupTarget map[string]string, since, until time.Time) {
	period := until.Sub(since)
	byGroup := map[string]*Group{}
	var order []string
	addGroup := func(addr string) *Group {
		g := byGroup[addr]
		if g == nil {
			g = &Group{Group: addr, Target: groupTarget[addr], Rows: []Member{}}
			byGroup[addr] = g
			order = append(order, addr)
		}
		return g
	}
	for _, g := range cfg.Groups {
		addGroup(g.Addr)
	}
	keys := make([]rowKey, 0, len(rows))
	for k := range rows {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if keys[i].group != keys[j].group {
			return keys[i].group < keys[j].group
		}
		return keys[i].member < keys[j].member
	})
	for _, k := range keys {
		rw := rows[k]
		m := Member{Member: k.member, Name: rw.name, Intervals: []Interval{}}
		var active time.Duration
		for _, sp := range rw.spans {
			start, end, open := sp.start, sp.end, sp.end.IsZero()
			if open || end.After(until) {
				end = until
			}
			if start.Before(since) {
				start = since
			}
			if !end.After(start) {
				continue
			}
			active += end.Sub(start)
			iv := Interval{Start: start, End: end, Open: open, Reason: sp.reason,
				Grant: sp.grant, Policy: sp.policy, Ticket: sp.ticket, Note: sp.note, By: sp.by}
			if !open && !sp.end.After(until) {
				iv.RemovedBy, iv.EndedBy = sp.removedBy, sp.endedBy
			}
			m.Intervals = append(m.Intervals, iv)
		}
		if active <= 0 {
			continue
		}
		m.ActiveSeconds = int64(active / time.Second)
		m.PrivilegeHours = round(active.Hours())
		g := addGroup(k.group)
		g.Rows = append(g.Rows, m)
	}
	// Config groups first (source order), then groups only the ledger knows.
	for _, addr := range order {
		g := byGroup[addr]
		var active time.Duration
		for _, m := range g.Rows {
			active += time.Duration(m.ActiveSeconds) * time.Second
		}
		g.Members = len(g.Rows)
		standing := time.Duration(g.Members) * period
		g.PrivilegeHours = round(active.Hours())
		g.StandingHours = round(standing.Hours())
		g.ReductionPercent = reduction(active, standing)
		r.Groups = append(r.Groups, *g)
		r.Totals.Groups++
		r.Totals.Members += g.Members
	}
	var active, standing time.Duration
	for _, g := range r.Groups {
		for _, m := range g.Rows {
			active += time.Duration(m.ActiveSeconds) * time.Second
		}
		standing += time.Duration(g.Members) * period
	}
	r.Totals.PrivilegeHours = round(active.Hours())
	r.Totals.StandingHours = round(standing.Hours())
	r.Totals.ReductionPercent = reduction(active, standing)
}

// reduction is the change from standing to active, in percent (negative: less).
func reduction(active, standing time.Duration) float64 {
	if standing <= 0 {
		return 0
	}
	return math.Round((float64(active)/float64(standing)-1)*1000) / 10
}

func round(h float64) float64 { return math.Round(h*100) / 100 }

func buildExpiry(r *Report, cfg *config.Config, grants []grantInfo, grantMembers map[string][]rowKey,
	rows map[rowKey]*row, declared map[string]map[string]bool, since, until time.Time, late time.Duration) {

	baseOf := map[string]string{}
	for _, g := range cfg.Groups {
		baseOf[g.Addr] = g.BaseAddr
	}
	// Grants by principal, for continuation.
	byPrincipal := map[string][]*grantInfo{}
	for i := range grants {
		byPrincipal[grants[i].Principal] = append(byPrincipal[grants[i].Principal], &grants[i])
	}
	covers := func(g *grantInfo, group string) bool {
		for _, k := range grantMembers[g.ID] {
			if k.group == group {
				return true
			}
		}
		pol := cfg.PolicyByAddr(g.Policy)
		if pol == nil {
			return false
		}
		base := baseOf[group]
		for _, pg := range pol.Groups {
			if pg == base || pg == group {
				return true
			}
		}
		return false
	}
	memberIdx := map[rowKey]*Member{}
	for gi := range r.Groups {
		for mi := range r.Groups[gi].Rows {
			m := &r.Groups[gi].Rows[mi]
			memberIdx[rowKey{r.Groups[gi].Group, m.Member}] = m
		}
	}
	var latencies []float64
	for i := range grants {
		g := &grants[i]
		end := g.EffEnd
		if end.Before(since) || end.After(until) {
			continue
		}
		for _, k := range grantRows(g, byPrincipal[g.Principal], grantMembers, covers) {
			rw := rows[k]
			if rw == nil {
				continue
			}
			we := WindowEnd{Grant: g.ID, Policy: g.Policy, Principal: g.Principal, Group: k.group, Member: k.member,
				End: end, Revoked: g.Revoked && g.EffEnd.Before(g.End)}
			if d := declared[k.group]; d != nil && (d[strings.ToLower(k.member)] || d[strings.ToLower(rw.name)]) {
				we.Status, we.ContinuedBy = ExpiryContinued, "declared"
			}
			for _, o := range byPrincipal[g.Principal] {
				if we.Status != "" {
					break
				}
				if o.ID != g.ID && !o.Start.After(end) && o.EffEnd.After(end) && covers(o, k.group) {
					we.Status, we.ContinuedBy = ExpiryContinued, o.ID
				}
			}
			// The member's interval that the window end falls in (or the
			// last one before it).
			var sp *span
			if j := sort.Search(len(rw.spans), func(j int) bool { return rw.spans[j].start.After(end) }); j > 0 {
				sp = &rw.spans[j-1]
			}
			if sp == nil || !sp.end.IsZero() && !sp.end.After(g.Start) {
				continue // not active during this window: it never took effect here
			}
			// The timeline marks the end on this member's row.
			if m := memberIdx[k]; m != nil {
				m.WindowEnds = append(m.WindowEnds, end)
			}
			if we.Status == ExpiryContinued {
				r.Expiry.Entries = append(r.Expiry.Entries, we)
				continue
			}
			r.Expiry.Windows++
			if sp.end.IsZero() || sp.end.After(until) {
				we.Status = ExpiryNotRemoved
				r.Expiry.NotRemoved++
				r.Expiry.Entries = append(r.Expiry.Entries, we)
				continue
			}
			removed := sp.end
			lat := removed.Sub(end)
			if lat < 0 {
				lat = 0 // removed before the window ended (policy changed, revoked)
			}
			secs := lat.Seconds()
			we.RemovedAt, we.LatencySeconds, we.RemovedBy = &removed, &secs, sp.removedBy
			we.Status = ExpiryOnTime
			if lat > late {
				we.Status = ExpiryLate
				r.Expiry.Late++
			}
			r.Expiry.Removed++
			latencies = append(latencies, secs)
			r.Expiry.Entries = append(r.Expiry.Entries, we)
		}
	}
	rank := func(s string) int {
		switch s {
		case ExpiryNotRemoved:
			return 0
		case ExpiryLate:
			return 1
		case ExpiryOnTime:
			return 2
		}
		return 3
	}
	sort.SliceStable(r.Expiry.Entries, func(i, j int) bool {
		a, b := r.Expiry.Entries[i], r.Expiry.Entries[j]
		if rank(a.Status) != rank(b.Status) {
			return rank(a.Status) < rank(b.Status)
		}
		if !a.End.Equal(b.End) {
			return a.End.Before(b.End)
		}
		if a.Group != b.Group {
			return a.Group < b.Group
		}
		return a.Member < b.Member
	})
	if len(latencies) > 0 {
		sort.Float64s(latencies)
		r.Expiry.P50Seconds = nearestRank(latencies, 50)
		r.Expiry.P99Seconds = nearestRank(latencies, 99)
		r.Expiry.MaxSeconds = latencies[len(latencies)-1]
	}
}

// grantRows are the rows a grant's window applies to: those its own adds
// made, and those of the same principal's other grants on groups its policy
// covers (a member added under one grant and kept by an overlapping one).
func grantRows(g *grantInfo, samePrincipal []*grantInfo, grantMembers map[string][]rowKey, covers func(*grantInfo, string) bool) []rowKey {
	out := append([]rowKey(nil), grantMembers[g.ID]...)
	for _, o := range samePrincipal {
		if o.ID == g.ID {
			continue
		}
		for _, k := range grantMembers[o.ID] {
			if !containsKey(out, k) && covers(g, k.group) {
				out = append(out, k)
			}
		}
	}
	return out
}

// nearestRank is the p-th percentile of sorted xs by the nearest-rank method.
func nearestRank(sorted []float64, p float64) float64 {
	n := int(math.Ceil(p / 100 * float64(len(sorted))))
	if n < 1 {
		n = 1
	}
	return sorted[n-1]
}

func buildGrants(r *Report, grants []grantInfo, since, until time.Time) {
	byPolicy, byApprover, byTicket := map[string]int{}, map[string]int{}, map[string]int{}
	for i := range grants {
		g := &grants[i]
		if g.Start.After(until) || g.EffEnd.Before(since) {
			continue
		}
		approvers := append([]string{}, g.Approvers...)
		r.Grants.List = append(r.Grants.List, GrantEntry{ID: g.ID, Source: g.Source, Policy: g.Policy, Principal: g.Principal,
			Start: g.Start, End: g.EffEnd, Ticket: g.Ticket, Reason: g.Reason, Approvers: approvers,
			BreakGlass: g.BreakGlass, Revoked: g.Revoked})
		r.Grants.Total++
		byPolicy[g.Policy]++
		if len(approvers) == 0 {
			if g.BreakGlass {
				byApprover["(break-glass: none)"]++
			} else {
				byApprover["(none)"]++
			}
		}
		for _, a := range approvers {
			byApprover[a]++
		}
		t := g.Ticket
		if t == "" {
			t = "(none)"
		}
		byTicket[t]++
		if g.BreakGlass {
			bg := BreakGlass{Grant: g.ID, Policy: g.Policy, Principal: g.Principal, Start: g.Start, End: g.EffEnd,
				Ticket: g.Ticket, Reason: g.Reason}
			if g.ReviewedBy != "" && !g.ReviewedAt.IsZero() && !g.ReviewedAt.After(until) {
				at := g.ReviewedAt.UTC()
				d := at.Sub(g.Start).Seconds()
				bg.Reviewed, bg.ReviewedBy, bg.ReviewedAt, bg.ReviewDelaySeconds = true, g.ReviewedBy, &at, &d
			}
			r.BreakGlass = append(r.BreakGlass, bg)
		}
	}
	r.Grants.ByPolicy = counts(byPolicy)
	r.Grants.ByApprover = counts(byApprover)
	r.Grants.ByTicket = counts(byTicket)
	// Unreviewed break-glass grants first.
	sort.SliceStable(r.BreakGlass, func(i, j int) bool {
		return !r.BreakGlass[i].Reviewed && r.BreakGlass[j].Reviewed
	})
}

// counts sorts a breakdown by count (descending), then key.
func counts(m map[string]int) []Count {
	out := make([]Count, 0, len(m))
	for k, n := range m {
		out = append(out, Count{k, n})
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Count != out[j].Count {
			return out[i].Count > out[j].Count
		}
		return out[i].Key < out[j].Key
	})
	return out
}
