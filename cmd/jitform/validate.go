package main

import (
	"context"
	"fmt"
	"time"

	"github.com/hashicorp/hcl/v2"

	"github.com/jitform/jitform/config"
)

const validateUsage = `
Usage: jitform [-C DIR] validate [--json]

Checks the policy repository without contacting any target or reading the
ledger: HCL syntax, unknown blocks and attributes, missing attributes, bad
durations and times, unknown references, and every grant against its policy
(max_duration, windows, ticket_pattern, eligibility, approvals, approvers, a
principal approving its own grant). Every problem is reported in one pass with
file:line:col. Exit code 1 when there are errors.

validate needs no password: env() in a password is read only when a target
is opened (plan, apply, run); env() anywhere else is an error, since only
passwords are never printed.

--json prints the result as one JSON document on stdout, in the shape of
terraform validate -json (format_version "1.0", valid, error_count,
warning_count, diagnostics with severity, summary, detail and range), for
editors and CI annotations. The exit code is the same.

Examples:
  jitform validate
  jitform -C policies validate
  jitform validate --json | jq -r '.diagnostics[] | "\(.range.filename):\(.range.start.line): \(.summary)"'
`

func cmdValidate(ctx context.Context, a *app, args []string) int {
	fs := a.flagSet("validate", validateUsage)
	asJSON := fs.Bool("json", false, "print the diagnostics as JSON (docs/cli.md)")
	if code, done := a.parse(fs, args); done {
		return code
	}
	if fs.NArg() > 0 {
		return a.errorf("validate takes no arguments (got %q); use -C DIR to choose the repository", fs.Args())
	}
	cfg, diags := config.Load(a.dir, config.LoadOptions{PlanTime: time.Now().UTC(), Context: ctx})
	if cfg != nil {
		// Grant conformance is checked even when loading found errors, so
		// one run reports everything it can.
		diags = append(diags, config.CheckGrants(cfg)...)
	}
	if *asJSON {
		code := a.writeJSON(validateJSON(diags))
		if diags.HasErrors() && code == exitOK {
			return exitError
		}
		return code
	}
	a.printDiags(cfg, diags)
	if diags.HasErrors() {
		return a.errorf("the configuration is invalid; fix the errors above")
	}
	fmt.Fprintln(a.stdout, "Success! The configuration is valid.")
	return exitOK
}

// validateDoc is `validate --json`, shaped like `terraform validate -json`.
type validateDoc struct {
	FormatVersion string           `json:"format_version"`
	Valid         bool             `json:"valid"`
	ErrorCount    int              `json:"error_count"`
	WarningCount  int              `json:"warning_count"`
	Diagnostics   []diagnosticJSON `json:"diagnostics"`
}

type diagnosticJSON struct {
	Severity string     `json:"severity"` // "error" or "warning"
	Summary  string     `json:"summary"`
	Detail   string     `json:"detail,omitempty"`
	Range    *rangeJSON `json:"range,omitempty"`
}

type rangeJSON struct {
	Filename string  `json:"filename"`
	Start    posJSON `json:"start"`
	End      posJSON `json:"end"`
}

type posJSON struct {
	Line   int `json:"line"`
	Column int `json:"column"`
	Byte   int `json:"byte"`
}

func validateJSON(diags hcl.Diagnostics) validateDoc {
	doc := validateDoc{FormatVersion: "1.0", Diagnostics: []diagnosticJSON{}}
	for _, d := range diags {
		dj := diagnosticJSON{Severity: "warning", Summary: d.Summary, Detail: d.Detail}
		if d.Severity == hcl.DiagError {
			dj.Severity = "error"
			doc.ErrorCount++
		} else {
			doc.WarningCount++
		}
		if r := d.Subject; r != nil {
			dj.Range = &rangeJSON{Filename: r.Filename,
				Start: posJSON{r.Start.Line, r.Start.Column, r.Start.Byte},
				End:   posJSON{r.End.Line, r.End.Column, r.End.Byte}}
		}
		doc.Diagnostics = append(doc.Diagnostics, dj)
	}
	doc.Valid = doc.ErrorCount == 0
	return doc
}
