package main

import (
	"bufio"
	"bytes"
	"context"
	"time"

	"github.com/jitform/jitform/internal/operation"
	"github.com/jitform/jitform/internal/report"
)

const reportUsage = `
Usage: jitform [-C DIR] report [--since TIME] [--until TIME] [--json | --csv] [--html FILE]

The exposure report, from the ledger: per group and member, the
privilege-active time in the period against the standing baseline (the same
members holding the group permanently) and the reduction; grants by policy,
approver and ticket; break-glass grants and their review; expiry latency (from
each window's end to the recorded removal: p50, p99, max, late and missing
removals named first); and every change that failed or whose outcome is
unknown. A change with an unknown outcome counts as active until a later
outcome proves otherwise: the report never under-reports.

It reads the configuration and the ledger only; it opens no target and needs
no connection secrets. The JSON form (format_version "1.0") and the CSV
columns are in docs/report.md.

TIME is RFC 3339 (2026-11-23T09:00:00Z), a UTC date and time (2026-11-23T09:00,
2026-11-23), or a duration relative to now (-168h). --until defaults to now,
--since to a week before --until.

Examples:
  jitform report
  jitform report --since 2026-11-01 --until 2026-12-01 --html exposure.html
  jitform report --json | jq '.groups[] | {group, reduction_percent}'
  jitform report --csv > exposure.csv
`

func cmdReport(ctx context.Context, a *app, args []string) int {
	fs := a.flagSet("report", reportUsage)
	sinceArg := fs.String("since", "", "start of the period (`TIME`; default: a week before --until)")
	untilArg := fs.String("until", "", "end of the period (`TIME`; default: now)")
	asJSON := fs.Bool("json", false, "print the report as JSON")
	asCSV := fs.Bool("csv", false, "print the report as CSV")
	htmlFile := fs.String("html", "", "also write a self-contained HTML page with a timeline to `FILE`")
	lateAfter := fs.Duration("late-after", report.DefaultLateAfter, "a removal more than `D` after its window's end is late")
	if code, done := a.parse(fs, args); done {
		return code
	}
	if fs.NArg() > 0 {
		return a.errorf("report takes no arguments (got %q); see jitform report --help", fs.Args())
	}
	if *asJSON && *asCSV {
		return a.errorf("--json and --csv are alternatives: choose one")
	}
	if *lateAfter <= 0 {
		return a.errorf("--late-after %s: must be positive", *lateAfter)
	}
	now := time.Now().UTC().Truncate(time.Second)
	until := now
	if *untilArg != "" {
		t, err := parseAt(*untilArg, now)
		if err != nil {
			return a.errorf("--until: %v", err)
		}
		until = t
	}
	since := until.Add(-7 * 24 * time.Hour)
	if *sinceArg != "" {
		t, err := parseAt(*sinceArg, now)
		if err != nil {
			return a.errorf("--since: %v", err)
		}
		since = t
	}
	if !since.Before(until) {
		return a.errorf("--since %s is not before --until %s", since.Format(time.RFC3339), until.Format(time.RFC3339))
	}

	cfg, warns, err := operation.LoadConfig(a.dir, now)
	if err != nil {
		return a.fail(err)
	}
	a.printDiags(cfg, warns)
	b, err := a.backend()
	if err != nil {
		return a.errorf("%v", err)
	}
	events, err := operation.ReadLedgerForAudit(ctx, b)
	if err != nil {
		return a.fail(err)
	}
	r := report.Build(report.Input{Config: cfg, Events: events, Since: since, Until: until, Now: now, LateAfter: *lateAfter})

	if *htmlFile != "" {
		var page bytes.Buffer
		if err := report.RenderHTML(&page, r); err != nil {
			return a.errorf("render the HTML report: %v", err)
		}
		if err := writeFileAtomic(a.path(*htmlFile), page.Bytes()); err != nil {
			return a.errorf("write the HTML report: %v", err)
		}
		a.progress("Wrote the HTML report to %s", a.path(*htmlFile))
	}
	out := bufio.NewWriter(a.stdout)
	switch {
	case *asJSON:
		err = report.RenderJSON(out, r)
	case *asCSV:
		err = report.RenderCSV(out, r)
	default:
		err = report.RenderText(out, r)
	}
	if err == nil {
		err = out.Flush()
	}
	if err != nil {
		return a.errorf("%v", err)
	}
	return exitOK
}
