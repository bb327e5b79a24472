package report

import (
	"fmt"
	"html"
	"io"
	"strings"
	"time"
)

// Timeline colours by interval reason; late and missing removals are red.
var reasonColor = map[string]string{
	ReasonGrant:      "#2f6db5",
	ReasonBreakGlass: "#e08a00",
	ReasonDeclared:   "#7a7f87",
	ReasonUnknown:    "#8e44ad",
}

const lateColor = "#d62728"

// RenderHTML writes one self-contained HTML page: no scripts, no network
// (a Content-Security-Policy forbids every fetch), no external fonts. It
// has the summary table, an SVG timeline (a row per member per group, bars
// coloured by reason, window ends marked, late and missing removals in red)
// and the lists that need attention.
func RenderHTML(w io.Writer, r *Report) error {
	b := &strings.Builder{}
	esc := html.EscapeString
	fmt.Fprintf(b, `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>jitform exposure report %s .. %s</title>
<style>
body { font-family: system-ui, -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; margin: 24px; color: #1d2330; background: #fff; }
h1 { font-size: 20px; margin: 0 0 4px; }
h2 { font-size: 16px; margin: 24px 0 8px; }
p.sub { color: #555; margin: 0 0 16px; }
table { border-collapse: collapse; font-size: 13px; }
th, td { border-bottom: 1px solid #e3e6eb; padding: 4px 10px; text-align: left; }
th { background: #f3f5f8; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
tr.total td { font-weight: bold; }
.bad { color: %s; font-weight: bold; }
.legend span { display: inline-block; margin-right: 14px; font-size: 12px; }
.legend i { display: inline-block; width: 12px; height: 12px; margin-right: 4px; vertical-align: -2px; }
svg text { font-family: inherit; font-size: 11px; fill: #1d2330; }
</style>
</head>
<body>
`, esc(stamp(r.Since)), esc(stamp(r.Until)), lateColor)
	fmt.Fprintf(b, "<h1>jitform exposure report</h1>\n<p class=\"sub\">%s .. %s (%s hours), %d ledger events, generated %s</p>\n",
		esc(stamp(r.Since)), esc(stamp(r.Until)), esc(hours(r.PeriodHours)), r.LedgerEvents, esc(stamp(r.GeneratedAt)))

	// Summary table.
	b.WriteString("<table id=\"summary\">\n<tr><th>group</th><th>target</th><th>members</th><th>privilege-hours</th><th>standing hours</th><th>reduction</th></tr>\n")
	for _, g := range r.Groups {
		fmt.Fprintf(b, "<tr><td>%s</td><td>%s</td><td class=\"num\">%d</td><td class=\"num\">%s</td><td class=\"num\">%s</td><td class=\"num\">%s</td></tr>\n",
			esc(g.Group), esc(g.Target), g.Members, esc(hours(g.PrivilegeHours)), esc(hours(g.StandingHours)), esc(percent(g.ReductionPercent)))
	}
	fmt.Fprintf(b, "<tr class=\"total\"><td>total</td><td></td><td class=\"num\">%d</td><td class=\"num\">%s</td><td class=\"num\">%s</td><td class=\"num\">%s</td></tr>\n</table>\n",
		r.Totals.Members, esc(hours(r.Totals.PrivilegeHours)), esc(hours(r.Totals.StandingHours)), esc(percent(r.Totals.ReductionPercent)))
	e := r.Expiry
	fmt.Fprintf(b, "<p>Expiry latency: %d window(s) ended, %d removed", e.Windows, e.Removed)
	if e.Removed > 0 {
		fmt.Fprintf(b, " (p50 %s, p99 %s, max %s)", esc(dur(e.P50Seconds)), esc(dur(e.P99Seconds)), esc(dur(e.MaxSeconds)))
	}
	fmt.Fprintf(b, ", <span class=\"%s\">%d late</span>, <span class=\"%s\">%d not removed</span>; %d failed or unknown change(s); %d break-glass grant(s).</p>\n",
		badIf(e.Late), e.Late, badIf(e.NotRemoved), e.NotRemoved, len(r.Problems), len(r.BreakGlass))

	b.WriteString("<h2>Timeline</h2>\n<div class=\"legend\">")
	for _, k := range []string{ReasonGrant, ReasonBreakGlass, ReasonDeclared, ReasonUnknown} {
		fmt.Fprintf(b, "<span><i style=\"background:%s\"></i>%s</span>", reasonColor[k], strings.ReplaceAll(k, "_", "-"))
	}
	fmt.Fprintf(b, "<span><i style=\"background:%s\"></i>late or missing removal</span><span><i style=\"background:#111;width:2px\"></i>window end</span></div>\n", lateColor)
	writeTimeline(b, r)

	// What needs attention.
	b.WriteString("<h2>Windows that ended (late and missing removals first)</h2>\n")
	if len(e.Entries) == 0 {
		b.WriteString("<p>None.</p>\n")
	} else {
		b.WriteString("<table id=\"expiry\">\n<tr><th>status</th><th>group</th><th>member</th><th>grant</th><th>window end</th><th>removed</th><th>latency</th></tr>\n")
		for _, we := range e.Entries {
			removed, lat := "", ""
			if we.RemovedAt != nil {
				removed = stamp(*we.RemovedAt)
			}
			if we.LatencySeconds != nil {
				lat = dur(*we.LatencySeconds)
			}
			if we.ContinuedBy != "" {
				lat = "kept by " + we.ContinuedBy
			}
			cls := ""
			if we.Status == ExpiryLate || we.Status == ExpiryNotRemoved {
				cls = " class=\"bad\""
			}
			fmt.Fprintf(b, "<tr><td%s>%s</td><td>%s</td><td>%s</td><td>%s</td><td>%s</td><td>%s</td><td>%s</td></tr>\n",
				cls, esc(we.Status), esc(we.Group), esc(we.Member), esc(we.Grant), esc(stamp(we.End)), esc(removed), esc(lat))
		}
		b.WriteString("</table>\n")
	}
	b.WriteString("<h2>Failed and unknown changes</h2>\n")
	if len(r.Problems) == 0 {
		b.WriteString("<p>None.</p>\n")
	} else {
		b.WriteString("<table id=\"problems\">\n<tr><th>at</th><th>status</th><th>change</th><th>group</th><th>member</th><th>error</th></tr>\n")
		for _, p := range r.Problems {
			fmt.Fprintf(b, "<tr><td>%s</td><td class=\"bad\">%s</td><td>%s</td><td>%s</td><td>%s</td><td>%s</td></tr>\n",
				esc(stamp(p.At)), esc(p.Status), esc(p.Action), esc(p.Group), esc(who(p.Member, p.Name)), esc(p.Error))
		}
		b.WriteString("</table>\n")
	}
	b.WriteString("<h2>Break-glass grants</h2>\n")
	if len(r.BreakGlass) == 0 {
		b.WriteString("<p>None.</p>\n")
	} else {
		b.WriteString("<table id=\"breakglass\">\n<tr><th>grant</th><th>principal</th><th>policy</th><th>start</th><th>end</th><th>ticket</th><th>review</th></tr>\n")
		for _, bg := range r.BreakGlass {
			review := "<span class=\"bad\">not reviewed</span>"
			if bg.Reviewed {
				review = esc(fmt.Sprintf("by %s, %s after the start", bg.ReviewedBy, dur(*bg.ReviewDelaySeconds)))
			}
			fmt.Fprintf(b, "<tr><td>%s</td><td>%s</td><td>%s</td><td>%s</td><td>%s</td><td>%s</td><td>%s</td></tr>\n",
				esc(bg.Grant), esc(bg.Principal), esc(bg.Policy), esc(stamp(bg.Start)), esc(stamp(bg.End)), esc(bg.Ticket), review)
		}
		b.WriteString("</table>\n")
	}
	fmt.Fprintf(b, "<h2>Grants (%d)</h2>\n", r.Grants.Total)
	for _, sec := range []struct {
		label string
		cs    []Count
	}{{"by policy", r.Grants.ByPolicy}, {"by approver", r.Grants.ByApprover}, {"by ticket", r.Grants.ByTicket}} {
		if len(sec.cs) == 0 {
			continue
		}
		parts := make([]string, len(sec.cs))
		for i, c := range sec.cs {
			parts[i] = fmt.Sprintf("%s %d", esc(c.Key), c.Count)
		}
		fmt.Fprintf(b, "<p>%s: %s</p>\n", sec.label, strings.Join(parts, ", "))
	}
	b.WriteString("<h2>Who made the changes</h2>\n")
	if len(r.ChangesByRunner) == 0 {
		b.WriteString("<p>No change in the period.</p>\n")
	} else {
		b.WriteString("<table id=\"runners\">\n<tr><th>runner</th><th>changes</th></tr>\n")
		for _, c := range r.ChangesByRunner {
			fmt.Fprintf(b, "<tr><td>%s</td><td class=\"num\">%d</td></tr>\n", esc(c.Key), c.Count)
		}
		b.WriteString("</table>\n")
	}
	if len(r.RemovalsBy) > 0 {
		parts := make([]string, len(r.RemovalsBy))
		for i, c := range r.RemovalsBy {
			parts[i] = fmt.Sprintf("%s %d", esc(c.Key), c.Count)
		}
		fmt.Fprintf(b, "<p id=\"removals\">Removals by: %s</p>\n", strings.Join(parts, ", "))
	}
	b.WriteString("</body>\n</html>\n")
	_, err := io.WriteString(w, b.String())
	return err
}

func badIf(n int) string {
	if n > 0 {
		return "bad"
	}
	return ""
}

// writeTimeline draws the SVG: time runs left to right over the period, a
// row per member per group.
func writeTimeline(b *strings.Builder, r *Report) {
	esc := html.EscapeString
	const (
		labelW = 300
		plotW  = 820
		rowH   = 22
		barH   = 14
		top    = 28
	)
	type line struct {
		group  bool
		label  string
		short  string // a member's name, shown when known
		member *Member
		gaddr  string
	}
	var lines []line
	for gi := range r.Groups {
		g := &r.Groups[gi]
		unit := "members"
		if g.Members == 1 {
			unit = "member"
		}
		lines = append(lines, line{group: true, label: fmt.Sprintf("%d %s, %s privilege-hours of %s standing (%s)",
			g.Members, unit, hours(g.PrivilegeHours), hours(g.StandingHours), percent(g.ReductionPercent)), gaddr: g.Group})
		for mi := range g.Rows {
			m := &g.Rows[mi]
			lines = append(lines, line{label: m.Member, short: m.Name, member: m, gaddr: g.Group})
		}
	}
	height := top + rowH*len(lines) + 10
	width := labelW + plotW + 40
	span := r.Until.Sub(r.Since)
	x := func(t time.Time) float64 {
		if span <= 0 {
			return labelW
		}
		if t.Before(r.Since) {
			t = r.Since
		}
		if t.After(r.Until) {
			t = r.Until
		}
		return labelW + float64(plotW)*float64(t.Sub(r.Since))/float64(span)
	}
	fmt.Fprintf(b, "<svg id=\"timeline\" xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\" role=\"img\" aria-label=\"privilege-active timeline\">\n",
		width, height, width, height)
	fmt.Fprintf(b, "<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" fill=\"#fafbfc\" stroke=\"#d5d9e0\"/>\n", labelW, top-4, plotW, rowH*len(lines)+4)
	// Axis: about eight ticks on whole hours or days.
	for _, t := range ticks(r.Since, r.Until) {
		xx := x(t)
		fmt.Fprintf(b, "<line x1=\"%.1f\" y1=\"%d\" x2=\"%.1f\" y2=\"%d\" stroke=\"#e3e6eb\"/>\n", xx, top-4, xx, top+rowH*len(lines))
		label := t.Format("01-02 15:04")
		fmt.Fprintf(b, "<text x=\"%.1f\" y=\"%d\" text-anchor=\"middle\">%s</text>\n", xx, top-10, esc(label))
	}
	// Windows per member, for late marks.
	type mk struct{ group, member string }
	late := map[mk][]WindowEnd{}
	for _, we := range r.Expiry.Entries {
		if we.Status == ExpiryLate || we.Status == ExpiryNotRemoved {
			late[mk{we.Group, we.Member}] = append(late[mk{we.Group, we.Member}], we)
		}
	}
	for i, ln := range lines {
		y := top + i*rowH
		if ln.group {
			fmt.Fprintf(b, "<text x=\"4\" y=\"%d\" font-weight=\"bold\">%s</text>\n", y+barH, esc(truncate(ln.gaddr, 46)))
			fmt.Fprintf(b, "<text x=\"%d\" y=\"%d\" fill=\"#555\">%s</text>\n", labelW+4, y+barH, esc(ln.label))
			continue
		}
		shown := ln.short
		if shown == "" {
			shown = ln.label
		}
		fmt.Fprintf(b, "<text x=\"16\" y=\"%d\"><title>%s</title>%s</text>\n", y+barH, esc(ln.label), esc(truncate(shown, 44)))
		for _, iv := range ln.member.Intervals {
			x1, x2 := x(iv.Start), x(iv.End)
			if x2-x1 < 2 {
				x2 = x1 + 2 // a short interval is still visible
			}
			tip := fmt.Sprintf("%s: %s .. %s", iv.Reason, stamp(iv.Start), stamp(iv.End))
			if iv.Open {
				tip += " (still active)"
			}
			if iv.Grant != "" {
				tip += " " + iv.Grant
			}
			tip += intervalWho(iv)
			if iv.Note != "" {
				tip += " [" + iv.Note + "]"
			}
			fmt.Fprintf(b, "<rect class=\"bar %s\" x=\"%.1f\" y=\"%d\" width=\"%.1f\" height=\"%d\" rx=\"2\" fill=\"%s\"><title>%s</title></rect>\n",
				esc(iv.Reason), x1, y+3, x2-x1, barH, reasonColor[iv.Reason], esc(tip))
		}
		for _, we := range late[mk{ln.gaddr, ln.member.Member}] {
			end := r.Until
			tip := fmt.Sprintf("not removed: window %s ended %s", we.Grant, stamp(we.End))
			if we.RemovedAt != nil {
				end = *we.RemovedAt
				tip = fmt.Sprintf("late removal: window %s ended %s, removed %s (%s late)", we.Grant, stamp(we.End), stamp(end), dur(*we.LatencySeconds))
			}
			x1, x2 := x(we.End), x(end)
			if x2-x1 < 3 {
				x2 = x1 + 3
			}
			fmt.Fprintf(b, "<rect class=\"late\" x=\"%.1f\" y=\"%d\" width=\"%.1f\" height=\"%d\" fill=\"%s\"><title>%s</title></rect>\n",
				x1, y+3, x2-x1, barH, lateColor, esc(tip))
		}
		for _, t := range ln.member.WindowEnds {
			xx := x(t)
			fmt.Fprintf(b, "<line class=\"window-end\" x1=\"%.1f\" y1=\"%d\" x2=\"%.1f\" y2=\"%d\" stroke=\"#111\" stroke-width=\"2\"><title>window ended %s</title></line>\n",
				xx, y+1, xx, y+barH+5, esc(stamp(t)))
		}
	}
	b.WriteString("</svg>\n")
}

func truncate(s string, n int) string {
	if len([]rune(s)) <= n {
		return s
	}
	return string([]rune(s)[:n-1]) + "…"
}

// ticks picks axis instants on round boundaries, about eight of them.
func ticks(since, until time.Time) []time.Time {
	span := until.Sub(since)
	if span <= 0 {
		return nil
	}
	steps := []time.Duration{time.Minute, 5 * time.Minute, 15 * time.Minute, time.Hour, 3 * time.Hour, 6 * time.Hour, 12 * time.Hour, 24 * time.Hour, 48 * time.Hour, 7 * 24 * time.Hour, 30 * 24 * time.Hour}
	step := steps[len(steps)-1]
	for _, s := range steps {
		if span/s <= 8 {
			step = s
			break
		}
	}
	var out []time.Time
	for t := since.Truncate(step); !t.After(until); t = t.Add(step) {
		if !t.Before(since) {
			out = append(out, t)
		}
	}
	return out
}
