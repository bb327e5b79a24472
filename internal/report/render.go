package report

import (
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

// Headline is the one-line exposure summary of a group, e.g.
// "group.db_admins: 3 members, 4.2 privilege-hours of 504 standing (-99.2%)".
func (g Group) Headline() string {
	unit := "members"
	if g.Members == 1 {
		unit = "member"
	}
	return fmt.Sprintf("%s: %d %s, %s privilege-hours of %s standing (%s)",
		g.Group, g.Members, unit, hours(g.PrivilegeHours), hours(g.StandingHours), percent(g.ReductionPercent))
}

func hours(h float64) string { return strconv.FormatFloat(h, 'f', -1, 64) }

func percent(p float64) string {
	if p == 0 {
		return "0%"
	}
	return strconv.FormatFloat(p, 'f', 1, 64) + "%"
}

func stamp(t time.Time) string { return t.UTC().Format(time.RFC3339) }

// dur prints seconds as a short duration: 42s, 14m2s, 3h5m.
func dur(secs float64) string {
	d := time.Duration(secs * float64(time.Second)).Round(time.Second)
	if d >= time.Hour {
		d = d.Round(time.Minute)
	}
	s := d.String()
	s = strings.TrimSuffix(s, "0s")
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	if s == "" {
		return "0s"
	}
	return s
}

func who(member, name string) string {
	if name != "" && name != member {
		return name + " (" + member + ")"
	}
	return member
}

// RenderText writes the report for people: the summary table first, then
// what needs attention (late and missing removals, failed changes,
// unreviewed break-glass), then the breakdowns.
func RenderText(w io.Writer, r *Report) error {
	b := &strings.Builder{}
	fmt.Fprintf(b, "jitform exposure report %s .. %s (%s hours, %d ledger events)\n\n",
		stamp(r.Since), stamp(r.Until), hours(r.PeriodHours), r.LedgerEvents)

	tw := tabwriter.NewWriter(b, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "GROUP\tTARGET\tMEMBERS\tPRIVILEGE-HOURS\tSTANDING-HOURS\tREDUCTION")
	for _, g := range r.Groups {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t%s\n", g.Group, g.Target, g.Members, hours(g.PrivilegeHours), hours(g.StandingHours), percent(g.ReductionPercent))
	}
	fmt.Fprintf(tw, "total\t\t%d\t%s\t%s\t%s\n", r.Totals.Members, hours(r.Totals.PrivilegeHours), hours(r.Totals.StandingHours), percent(r.Totals.ReductionPercent))
	tw.Flush()
	b.WriteString("\n")
	for _, g := range r.Groups {
		fmt.Fprintf(b, "  %s\n", g.Headline())
	}

	e := r.Expiry
	fmt.Fprintf(b, "\nExpiry latency: %d window(s) ended in the period; %d removed", e.Windows, e.Removed)
	if e.Removed > 0 {
		fmt.Fprintf(b, " (p50 %s, p99 %s, max %s)", dur(e.P50Seconds), dur(e.P99Seconds), dur(e.MaxSeconds))
	}
	lateAfter := r.LateAfter
	if d, err := time.ParseDuration(r.LateAfter); err == nil {
		lateAfter = dur(d.Seconds())
	}
	fmt.Fprintf(b, ", %d late (over %s), %d not removed\n", e.Late, lateAfter, e.NotRemoved)
	for _, we := range e.Entries {
		switch we.Status {
		case ExpiryNotRemoved:
			fmt.Fprintf(b, "  NOT REMOVED  %s %s  window ended %s (%s %s), no removal recorded by %s\n",
				we.Group, we.Member, stamp(we.End), we.Grant, we.Policy, stamp(r.Until))
		case ExpiryLate:
			fmt.Fprintf(b, "  LATE         %s %s  window ended %s (%s %s), removed %s, %s late%s\n",
				we.Group, we.Member, stamp(we.End), we.Grant, we.Policy, stamp(*we.RemovedAt), dur(*we.LatencySeconds), lockNote(we.RemovedBy))
		case ExpiryOnTime:
			fmt.Fprintf(b, "  on time      %s %s  window ended %s (%s), removed after %s%s\n",
				we.Group, we.Member, stamp(we.End), we.Grant, dur(*we.LatencySeconds), lockNote(we.RemovedBy))
		case ExpiryContinued:
			fmt.Fprintf(b, "  continued    %s %s  window ended %s (%s), member kept by %s\n",
				we.Group, we.Member, stamp(we.End), we.Grant, we.ContinuedBy)
		}
	}

	fmt.Fprintf(b, "\nFailed and unknown changes: %d\n", len(r.Problems))
	for _, p := range r.Problems {
		fmt.Fprintf(b, "  %s  %-10s %s %s %s", stamp(p.At), strings.ToUpper(p.Status), p.Action, who(p.Member, p.Name), p.Group)
		if p.Grant != "" {
			fmt.Fprintf(b, " (%s)", p.Grant)
		}
		if p.Error != "" {
			fmt.Fprintf(b, ": %s", p.Error)
		}
		if p.By != "" {
			fmt.Fprintf(b, " [by %s]", p.By)
		}
		b.WriteString("\n")
	}

	fmt.Fprintf(b, "\nBreak-glass grants: %d\n", len(r.BreakGlass))
	for _, bg := range r.BreakGlass {
		fmt.Fprintf(b, "  %s %s %s  %s .. %s", bg.Grant, bg.Principal, bg.Policy, stamp(bg.Start), stamp(bg.End))
		if bg.Ticket != "" {
			fmt.Fprintf(b, " %s", bg.Ticket)
		}
		if bg.Reviewed {
			fmt.Fprintf(b, "  reviewed by %s %s after the start\n", bg.ReviewedBy, dur(*bg.ReviewDelaySeconds))
		} else {
			b.WriteString("  NOT REVIEWED\n")
		}
	}

	fmt.Fprintf(b, "\nGrants whose window overlaps the period: %d\n", r.Grants.Total)
	writeCounts(b, "by policy", r.Grants.ByPolicy)
	writeCounts(b, "by approver", r.Grants.ByApprover)
	writeCounts(b, "by ticket", r.Grants.ByTicket)

	total := 0
	for _, c := range r.ChangesByRunner {
		total += c.Count
	}
	fmt.Fprintf(b, "\nChanges by runner: %d\n", total)
	for _, c := range r.ChangesByRunner {
		fmt.Fprintf(b, "  %5d  %s\n", c.Count, c.Key)
	}
	if len(r.RemovalsBy) > 0 {
		parts := make([]string, len(r.RemovalsBy))
		for i, c := range r.RemovalsBy {
			parts[i] = fmt.Sprintf("%s %d", c.Key, c.Count)
		}
		fmt.Fprintf(b, "Removals (privilege intervals ended in the period) by: %s\n", strings.Join(parts, ", "))
	}

	b.WriteString("\nPrivilege-active intervals (clipped to the period):\n")
	for _, g := range r.Groups {
		if len(g.Rows) == 0 {
			continue
		}
		fmt.Fprintf(b, "  %s\n", g.Group)
		for _, m := range g.Rows {
			fmt.Fprintf(b, "    %s  %s h\n", who(m.Member, m.Name), hours(m.PrivilegeHours))
			for _, iv := range m.Intervals {
				end := stamp(iv.End)
				if iv.Open {
					end += " (still active)"
				}
				fmt.Fprintf(b, "      %s .. %s  %s", stamp(iv.Start), end, iv.Reason)
				if iv.Grant != "" {
					fmt.Fprintf(b, " %s", iv.Grant)
				}
				b.WriteString(intervalWho(iv))
				if iv.Note != "" {
					fmt.Fprintf(b, "  [%s]", iv.Note)
				}
				b.WriteString("\n")
			}
		}
	}
	if len(r.Warnings) > 0 {
		fmt.Fprintf(b, "\nLedger warnings: %d\n", len(r.Warnings))
		for _, w := range r.Warnings {
			fmt.Fprintf(b, "  %s\n", w)
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// lockNote names a removal not made by jitform: " by ttl_link".
func lockNote(removedBy string) string {
	if removedBy == "" || removedBy == RemovedByJitform {
		return ""
	}
	return " by " + removedBy
}

// intervalWho says who added the member and what ended the interval:
// " by RUNNER, removed by jitform (RUNNER)".
func intervalWho(iv Interval) string {
	var parts []string
	if iv.By != "" {
		parts = append(parts, "by "+iv.By)
	}
	if iv.RemovedBy != "" {
		s := "removed by " + iv.RemovedBy
		if iv.EndedBy != "" && iv.EndedBy != iv.By {
			s += " (" + iv.EndedBy + ")"
		}
		parts = append(parts, s)
	}
	if len(parts) == 0 {
		return ""
	}
	return " " + strings.Join(parts, ", ")
}

func writeCounts(b *strings.Builder, label string, cs []Count) {
	if len(cs) == 0 {
		return
	}
	parts := make([]string, len(cs))
	for i, c := range cs {
		parts[i] = fmt.Sprintf("%s %d", c.Key, c.Count)
	}
	fmt.Fprintf(b, "  %-12s %s\n", label+":", strings.Join(parts, ", "))
}

// RenderJSON writes the report as indented JSON (docs/report.md).
func RenderJSON(w io.Writer, r *Report) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(r); err != nil {
		return fmt.Errorf("encode the report as JSON: %w", err)
	}
	return nil
}

// CSVHeader is the header row of RenderCSV: one table, a row per record,
// the first column says which kind of record.
var CSVHeader = []string{"record", "group", "member", "name", "start", "end", "hours", "reason", "status",
	"grant", "policy", "ticket", "detail", "by", "removed_by", "ended_by"}

// RenderCSV writes the report as one CSV table for spreadsheets: a "group"
// row per group (hours = privilege-hours, detail = standing hours and
// reduction), an "interval" row per privilege-active interval (by: who ran
// the add; removed_by: what ended it; ended_by: who ran that removal), a "window" row per window that
// ended, a "problem" row per failed or unknown change, a "grant" row per
// grant, a "runner" row per runner (detail = changes=N) and a "removals"
// row per kind of removal (detail = intervals_ended=N).
func RenderCSV(w io.Writer, r *Report) error {
	cw := csv.NewWriter(w)
	rec := func(fields ...string) { _ = cw.Write(fields) }
	rec(CSVHeader...)
	f := func(x float64) string { return strconv.FormatFloat(x, 'f', -1, 64) }
	for _, g := range r.Groups {
		rec("group", g.Group, "", "", stamp(r.Since), stamp(r.Until), f(g.PrivilegeHours), "", "", "", "", "",
			fmt.Sprintf("members=%d standing_hours=%s reduction=%s", g.Members, f(g.StandingHours), percent(g.ReductionPercent)), "", "", "")
	}
	for _, g := range r.Groups {
		for _, m := range g.Rows {
			for _, iv := range m.Intervals {
				status := "closed"
				if iv.Open {
					status = "open"
				}
				rec("interval", g.Group, m.Member, m.Name, stamp(iv.Start), stamp(iv.End), f(round(iv.End.Sub(iv.Start).Hours())),
					iv.Reason, status, iv.Grant, iv.Policy, iv.Ticket, iv.Note, iv.By, iv.RemovedBy, iv.EndedBy)
			}
		}
	}
	for _, we := range r.Expiry.Entries {
		removed, detail := "", ""
		if we.RemovedAt != nil {
			removed = stamp(*we.RemovedAt)
		}
		if we.LatencySeconds != nil {
			detail = "latency_seconds=" + f(*we.LatencySeconds)
		}
		if we.ContinuedBy != "" {
			detail = "continued_by=" + we.ContinuedBy
		}
		rec("window", we.Group, we.Member, we.Principal, stamp(we.End), removed, "", "", we.Status, we.Grant, we.Policy, "", detail, "", "", "")
	}
	for _, p := range r.Problems {
		rec("problem", p.Group, p.Member, p.Name, stamp(p.At), "", "", p.Reason, p.Status, p.Grant, "", "", p.Action+": "+p.Error, p.By, "", "")
	}
	for _, g := range r.Grants.List {
		detail := "approvers=" + strings.Join(g.Approvers, " ")
		if g.BreakGlass {
			detail += " break_glass"
			for _, bg := range r.BreakGlass {
				if bg.Grant == g.ID {
					if bg.Reviewed {
						detail += " reviewed_by=" + bg.ReviewedBy + " review_delay_seconds=" + f(*bg.ReviewDelaySeconds)
					} else {
						detail += " unreviewed"
					}
				}
			}
		}
		if g.Revoked {
			detail += " revoked"
		}
		rec("grant", "", g.Principal, "", stamp(g.Start), stamp(g.End), f(round(g.End.Sub(g.Start).Hours())), g.Reason, g.Source, g.ID, g.Policy, g.Ticket, detail, "", "", "")
	}
	for _, c := range r.ChangesByRunner {
		rec("runner", "", "", "", stamp(r.Since), stamp(r.Until), "", "", "", "", "", "", "changes="+strconv.Itoa(c.Count), c.Key, "", "")
	}
	for _, c := range r.RemovalsBy {
		rec("removals", "", "", "", stamp(r.Since), stamp(r.Until), "", "", "", "", "", "", "intervals_ended="+strconv.Itoa(c.Count), "", c.Key, "")
	}
	cw.Flush()
	if err := cw.Error(); err != nil {
		return fmt.Errorf("write the report as CSV: %w", err)
	}
	return nil
}
