package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/hashicorp/hcl/v2"

	"github.com/jitform/jitform/config"
	"github.com/jitform/jitform/internal/ansi"
	"github.com/jitform/jitform/internal/operation"
	"github.com/jitform/jitform/planner"
	"github.com/jitform/jitform/providers"
	"github.com/jitform/jitform/state"
)

const applyUsage = `
Usage: jitform [-C DIR] apply [flags] [PLANFILE]

Makes the membership changes a plan lists and records each one in the ledger
(an intent before the change, the outcome after it). Takes the state lock, so
two applies never interleave.

Without PLANFILE, jitform plans again, shows the plan and asks for 'yes' on
the terminal; --auto-approve skips the question (CI). Without a terminal and
without --auto-approve it refuses.

With PLANFILE (from jitform plan --out), it applies exactly that plan without
asking, and refuses it when it is stale: past its valid_until, or the config,
the ledger or an observed membership changed since it was made.

A plan with errors is refused whole. One failing target never stops the
others; a failed removal of a member whose access ended is listed first.

With --as NAME, a declared actor signs the plan being applied (its id and
digest) with --key FILE or their ssh-agent key; the signed apply_signed event
is written before any change, and a key that is not the actor's refuses the
apply. Every apply records who ran it (user, host, CI job) as apply_started.

Examples:
  jitform apply
  jitform apply --auto-approve --as alice --key ~/.ssh/id_ed25519
  jitform apply --auto-approve --lock-timeout 2m
  jitform plan --out tonight.plan && jitform apply tonight.plan

Exit codes: 0 success, 1 error (any change failed, stale plan, refused, lock).
`

func cmdApply(ctx context.Context, a *app, args []string) int {
	fs := a.flagSet("apply", applyUsage)
	autoApprove := fs.Bool("auto-approve", false, "apply without asking for confirmation")
	lockTimeout := fs.Duration("lock-timeout", 0, "wait up to `D` for the state lock held by another run (e.g. 30s)")
	parallelism := fs.Int("parallelism", operation.DefaultParallelism, "change at most `N` targets at once")
	targets := fs.StringArray("target", nil, "apply only to this target or group `ADDR` (repeatable), as plan --target")
	as := fs.String("as", "", "sign the plan being applied as the declared actor `NAME` (recorded as apply_signed)")
	keyFile := fs.String("key", a.getenv("JITFORM_KEY"), "with --as: sign with the private key in `FILE` (default $JITFORM_KEY, else the ssh-agent)")
	if code, done := a.parse(fs, args); done {
		return code
	}
	if len(*targets) > 0 && fs.NArg() == 1 {
		return a.errorf("--target and a plan file exclude each other: a saved plan already holds its scope (make it with plan --target ADDR --out FILE)")
	}
	if fs.Changed("key") && *as == "" {
		return a.errorf("--key signs the apply as an actor: add --as NAME (a declared actor); nothing was changed")
	}
	if fs.NArg() > 1 {
		return a.errorf("apply takes at most one plan file (got %q)", fs.Args())
	}

	var saved *planner.Plan
	if fs.NArg() == 1 {
		p, err := planner.ReadPlanFile(a.path(fs.Arg(0)))
		if err != nil {
			return a.errorf("%v; nothing was changed", err)
		}
		saved = p
	} else if !*autoApprove && !a.stdinTTY {
		return a.errorf("apply needs confirmation and there is no terminal to ask on, so nothing was changed: " +
			"run with --auto-approve, or apply a saved plan file (jitform plan --out FILE, then jitform apply FILE).")
	}

	b, err := a.backend()
	if err != nil {
		return a.errorf("%v", err)
	}
	opts := a.options(b, *parallelism, *lockTimeout)
	saveMemo, err := a.useVerifyCache(&opts)
	if err != nil {
		return a.errorf("%v", err)
	}
	defer saveMemo()
	opts.Targets = *targets
	// Warnings before the prompt, not after the changes are made.
	warned := false
	opts.ConfigLoaded = func(cfg *config.Config, warns hcl.Diagnostics) {
		a.printDiags(cfg, warns)
		warned = true
	}
	opts.Runner = a.runner()
	if *as != "" {
		// A person stands behind this apply: their key must sign before
		// anything is read or changed.
		cfg, _, err := operation.LoadConfig(a.dir, time.Now().UTC())
		if err != nil {
			return a.fail(err)
		}
		signer, done, err := a.signer(ctx, cfg, *as, *keyFile)
		if err != nil {
			return a.errorf("%v; nothing was changed", err)
		}
		defer done()
		opts.SignAs, opts.Signer = *as, signer
	}

	var confirm operation.ConfirmFunc
	shown := false
	if saved == nil {
		confirm = func(p *planner.Plan) (bool, error) {
			shown = true
			if err := planner.RenderText(a.stdout, p, a.color()); err != nil {
				return false, err
			}
			if *autoApprove {
				fmt.Fprintln(a.stdout)
				return true, nil
			}
			return askYes(a.stdin, a.stdout)
		}
	}
	res, err := operation.Apply(ctx, opts, saved, confirm)
	if errors.Is(err, operation.ErrCancelled) {
		fmt.Fprintln(a.stdout, "\nApply cancelled: nothing was changed.")
		return exitError
	}
	if res == nil {
		return a.fail(err)
	}
	if !warned {
		a.printDiags(res.Config, res.ConfigWarnings)
	}
	if !shown && saved == nil {
		// No changes: confirm was not needed; still say what was found.
		_ = planner.RenderText(a.stdout, res.Plan, a.color())
	}
	code := a.printResult(res)
	a.notifyApply(ctx, res)
	if err != nil {
		return a.fail(err)
	}
	if n := len(res.Plan.Unreadable); n > 0 {
		for _, u := range res.Plan.Unreadable {
			fmt.Fprintf(a.stderr, "  %s on %s: %s\n", u.Group, u.Target, u.Error)
		}
		if n == len(res.Plan.Groups) {
			return a.errorf("no group could be read (%d of %d), so nothing was checked or changed", n, n)
		}
		return a.errorf("%d group(s) could not be read and were not changed", n)
	}
	return code
}

// askYes asks Terraform's question; only "yes" approves.
func askYes(in io.Reader, out io.Writer) (bool, error) {
	fmt.Fprint(out, "\nDo you want to make these changes?\n"+
		"  jitform will make exactly the changes shown above and record them in the ledger.\n"+
		"  Only 'yes' will be accepted to approve.\n\n"+
		"  Enter a value: ")
	line, err := bufio.NewReader(in).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return false, fmt.Errorf("read the answer: %w", err)
	}
	return strings.TrimSpace(line) == "yes", nil
}

// printResult prints each outcome (failed removals first, loud) and the
// summary, and returns the exit code.
func (a *app) printResult(res *operation.Result) int {
	added, removed, failed := res.Counts()
	paint := ansi.Painter(a.color()).Paint
	if len(res.Closed) > 0 {
		// Earlier runs left these uncertain (a crash, a lost answer); this
		// apply read the groups and recorded what it found.
		fmt.Fprintf(a.stdout, "\nClosed %d uncertain change(s) left by earlier runs:\n", len(res.Closed))
		for _, c := range res.Closed {
			ch := c.Change.Change
			found := "absent"
			if c.Status == planner.StatusObservedPresent {
				found = "present"
			}
			fmt.Fprintf(a.stdout, "  ~ %s %s in %s (%s [%s]): member found %s\n", ch.Action, ch.Member, ch.Group, c.Change.Status, ch.ID, found)
		}
	}
	if len(res.ServerRemovals) > 0 {
		// Members jitform added that something else removed: a server-side
		// lock (expiring link, dead-man's switch) or a person.
		fmt.Fprintf(a.stdout, "\nFound %d member(s) jitform added gone without a removal by jitform (recorded as removed_by_server):\n", len(res.ServerRemovals))
		for _, rb := range res.ServerRemovals {
			by := "by a " + strings.ReplaceAll(rb.Lock, "_", " ")
			if rb.Lock == state.LockUnknown {
				by = "by something other than jitform (no server-side lock was set)"
			}
			fmt.Fprintf(a.stdout, "  ~ %s left %s (%s) %s\n", rb.Member, rb.Group, rb.Grant, by)
		}
	}
	if len(res.Outcomes) > 0 {
		fmt.Fprintln(a.stdout)
	}
	for _, o := range res.Outcomes {
		c := o.Change
		who := c.Member
		name := c.Principal
		if name == "" {
			name = c.MemberName
		}
		if name != "" && name != c.Member {
			who = fmt.Sprintf("%s (%s)", c.Member, name)
		}
		why := c.Reason.Kind
		if c.Reason.Grant != "" {
			why += ", " + c.Reason.Grant
		}
		if c.Kind == planner.KindAccount {
			a.printAccountOutcome(o, why, paint)
			continue
		}
		switch {
		case !o.Status.OK() && c.Action == string(providers.Remove):
			verb := "FAILED to remove"
			if o.Status == providers.Unknown {
				verb = "UNKNOWN whether jitform removed"
			}
			fmt.Fprintln(a.stdout, paint(red+bold, fmt.Sprintf("  ✗ %s %s from %s (%s): %v", verb, who, c.Group, why, o.Err)))
			fmt.Fprintln(a.stdout, paint(red, "    this member may still hold the privilege; fix the cause and run jitform apply again, or remove it by hand"))
		case !o.Status.OK():
			verb := "FAILED to add"
			if o.Status == providers.Unknown {
				verb = "UNKNOWN whether jitform added"
			}
			fmt.Fprintln(a.stdout, paint(red, fmt.Sprintf("  ✗ %s %s to %s (%s): %v", verb, who, c.Group, why, o.Err)))
		case c.Action == string(providers.Add):
			note := ""
			if o.Status == providers.Already {
				note = " (already a member)"
			}
			fmt.Fprintln(a.stdout, paint(green, fmt.Sprintf("  + added %s to %s%s", who, c.Group, note)))
		default:
			note := ""
			if o.Status == providers.Already {
				note = " (already gone)"
			}
			fmt.Fprintln(a.stdout, paint(red, fmt.Sprintf("  - removed %s from %s%s", who, c.Group, note)))
		}
	}
	// Groups that could not be read were neither checked nor changed: the
	// apply is not complete, and the summary says which and why.
	unreadable := res.Plan.Unreadable
	switch {
	case len(unreadable) > 0 && len(unreadable) == len(res.Plan.Groups)+len(res.Plan.Accounts):
		fmt.Fprintln(a.stdout, paint(red+bold, fmt.Sprintf("\nApply failed: none of the %d group(s) could be read, so nothing was checked or changed:", len(unreadable))))
	case len(unreadable) > 0:
		fmt.Fprintln(a.stdout, paint(red+bold, fmt.Sprintf("\nApply failed: %d added, %d removed, %d failed; %d group(s) could not be read and were not checked or changed:",
			added, removed, failed, len(unreadable))))
	case failed > 0:
		fmt.Fprintln(a.stdout, paint(red+bold, fmt.Sprintf("\nApply failed: %d added, %d removed, %d failed. Every change is recorded in the ledger.", added, removed, failed)))
		return exitError
	default:
		summary := fmt.Sprintf("\nApply complete! %d added, %d removed.", added, removed)
		if enabled, disabled := res.AccountCounts(); enabled+disabled > 0 {
			summary = fmt.Sprintf("\nApply complete! %d added, %d removed, %d account(s) enabled, %d disabled.", added, removed, enabled, disabled)
		}
		if created, deleted := res.EphemeralCounts(); created+deleted > 0 {
			summary = strings.TrimSuffix(summary, ".") + fmt.Sprintf(", %d account(s) created, %d deleted.", created, deleted)
		}
		fmt.Fprintln(a.stdout, paint(green+bold, summary))
		return exitOK
	}
	for _, u := range unreadable {
		fmt.Fprintln(a.stdout, paint(red, fmt.Sprintf("  ✗ %s on %s: %s", u.Group, u.Target, u.Error)))
	}
	if failed > 0 {
		fmt.Fprintln(a.stdout, "Every change is recorded in the ledger.")
	}
	return exitError
}

// printAccountOutcome prints one account change's outcome. A disable that
// failed is as loud as a failed removal: the account may still log in.
func (a *app) printAccountOutcome(o operation.Outcome, why string, paint func(code, s string) string) {
	c := o.Change
	what := fmt.Sprintf("account %s (%s)", c.Object, c.Group)
	rotated := ""
	if c.PasswordRotated {
		rotated = ", password rotated"
	}
	switch {
	case !o.Status.OK():
		act := c.Action // enable, disable, create or delete
		if act != planner.ActionDisable && act != planner.ActionCreate && act != planner.ActionDelete {
			act = planner.ActionEnable
		}
		verb := "FAILED to " + act
		if o.Status == providers.Unknown {
			verb = "UNKNOWN whether jitform " + act + "d"
		}
		// Access that was to be taken away may remain: as loud as a
		// failed removal.
		if act == planner.ActionDisable || act == planner.ActionDelete {
			fmt.Fprintln(a.stdout, paint(red+bold, fmt.Sprintf("  ✗ %s %s (%s): %v", verb, what, why, o.Err)))
			fmt.Fprintln(a.stdout, paint(red, "    this account may still log in; fix the cause and run jitform apply again, or "+act+" it by hand"))
		} else {
			fmt.Fprintln(a.stdout, paint(red, fmt.Sprintf("  ✗ %s %s (%s): %v", verb, what, why, o.Err)))
		}
	case c.Action == planner.ActionCreate:
		fmt.Fprintln(a.stdout, paint(green, fmt.Sprintf("  + created %s, password set (%s)", what, why)))
		for _, cr := range c.Credentials {
			fmt.Fprintf(a.stdout, "    %s fetches the account's password with: jitform grant credential %s --key FILE\n", cr.Principal, cr.Grant)
		}
	case c.Action == planner.ActionDelete:
		fmt.Fprintln(a.stdout, paint(red, fmt.Sprintf("  - deleted %s (%s)", what, why)))
	case c.Action == planner.ActionEnable:
		fmt.Fprintln(a.stdout, paint(green, fmt.Sprintf("  ~ enabled %s%s (%s)", what, rotated, why)))
		for _, cr := range c.Credentials {
			fmt.Fprintf(a.stdout, "    %s fetches the password with: jitform grant credential %s --key FILE\n", cr.Principal, cr.Grant)
		}
	default:
		fmt.Fprintln(a.stdout, paint(red, fmt.Sprintf("  ~ disabled %s%s (%s)", what, rotated, why)))
	}
}

// runner is who runs this command, for the ledger's apply_started: the OS
// user and host, and the CI job read from the environment.
func (a *app) runner() *state.Runner {
	r := operation.CurrentRunner(a.getenv)
	return &r
}
