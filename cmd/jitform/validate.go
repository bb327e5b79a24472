package main

import (
	"context"
	"fmt"
	"time"

	"github.com/jitform/jitform/config"
)

const validateUsage = `
Usage: jitform [-C DIR] validate

Checks the policy repository without contacting any target or reading the
ledger: HCL syntax, unknown blocks and attributes, missing attributes, bad
durations and times, unknown references, and every grant against its policy
(max_duration, windows, ticket_pattern, eligibility, approvals, approvers, a
principal approving its own grant). Every problem is reported in one pass with
file:line:col. Exit code 1 when there are errors.

validate needs no password: env() in a password is read only when a target
is opened (plan, apply, run); env() anywhere else is an error, since only
passwords are never printed.

Examples:
  jitform validate
  jitform -C policies validate
`

func cmdValidate(ctx context.Context, a *app, args []string) int {
	fs := a.flagSet("validate", validateUsage)
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
	a.printDiags(cfg, diags)
	if diags.HasErrors() {
		return a.errorf("the configuration is invalid; fix the errors above")
	}
	fmt.Fprintln(a.stdout, "Success! The configuration is valid.")
	return exitOK
}
