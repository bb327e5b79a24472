// Command jitform reconciles just-in-time privileged access: it plans and
// applies group membership changes from a policy repository of HCL files.
//
// This package only parses flags, renders and maps outcomes to exit codes;
// the work happens in internal/operation, config, planner, state and the
// providers. One file per command.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/pflag"
	"golang.org/x/term"

	"github.com/jitform/jitform/internal/ansi"
	"github.com/jitform/jitform/internal/debuglog"
	"github.com/jitform/jitform/internal/grants/filememo"
	"github.com/jitform/jitform/internal/operation"
	"github.com/jitform/jitform/providers"
	"github.com/jitform/jitform/providers/ldap"
	"github.com/jitform/jitform/providers/ldif"
	"github.com/jitform/jitform/providers/winrm"
	"github.com/jitform/jitform/state"
)

// Exit codes.
const (
	exitOK      = 0 // success; no changes under --detailed-exitcode
	exitError   = 1 // any error
	exitChanges = 2 // success with changes, under --detailed-exitcode
)

// version is set at build time: -ldflags "-X main.version=v1.2.3".
var version = "dev"

func main() {
	// A plan holds its whole configuration (the syntax tree of every file)
	// and every group read while it runs, and the collector's default
	// pace (GOGC=100) spent a quarter of the CPU of a 10,000-group,
	// 100,000-grant plan marking it over and over; at 200 that plan takes
	// 20% less CPU for about the same peak RSS (issue 11). GOGC, when
	// set, still decides.
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(200)
	}
	os.Exit(Main())
}

// Main runs jitform with the process's arguments and standard streams and
// returns the exit code. Script tests run it as the "jitform" command.
func Main() int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	a := &app{
		stdin:    os.Stdin,
		stdout:   os.Stdout,
		stderr:   os.Stderr,
		getenv:   os.Getenv,
		stdinTTY: isTerminal(os.Stdin),
		outTTY:   isTerminal(os.Stdout),
		errTTY:   isTerminal(os.Stderr),
	}
	return a.main(ctx, os.Args[1:])
}

func isTerminal(f *os.File) bool { return term.IsTerminal(int(f.Fd())) }

// app is one invocation: streams, global flags and what they imply.
type app struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	getenv         func(string) string
	stdinTTY       bool
	outTTY, errTTY bool

	dir             string // -C
	noColor         bool   // --no-color
	compactWarnings bool   // -compact-warnings: one line per warning
	command         string // the command being run (plan, apply, ...)

	opened []interface{ Close() } // state backends to close when the command ends (state.go)
}

// command is one subcommand. run gets the arguments after its name.
type command struct {
	name    string
	summary string
	run     func(ctx context.Context, a *app, args []string) int
}

// commands is the dispatch table. `grant` (grant.go) and `run` (run.go)
// belong to other parts of jitform; each provides its cmdX function.
func commands() []command {
	return []command{
		{"init", "Prepare a policy repository: check it and create its state directory", cmdInit},
		{"validate", "Check the configuration and every grant against its policy", cmdValidate},
		{"fmt", "Rewrite HCL files in the canonical format", cmdFmt},
		{"import", "Adopt existing groups: print (or --write) the members they have now", cmdImport},
		{"plan", "Show which memberships would change, and why", cmdPlan},
		{"apply", "Make the planned membership changes", cmdApply},
		{"show", "Show a saved plan, or the members jitform manages per the ledger", cmdShow},
		{"grant", "Request, approve, deny, revoke and list grants in the ledger", cmdGrant},
		{"ledger", "Verify the ledger's hash chain or print the audit trail", cmdLedger},
		{"run", "Plan and apply at every window boundary, until stopped", cmdRun},
		{"report", "Exposure report from the ledger: privilege-hours, expiry latency, break-glass", cmdReport},
		{"state", "Copy the ledger between local files and PostgreSQL (push, pull)", cmdState},
		{"version", "Print the jitform version", cmdVersion},
		{"completion", "Print a shell completion script (bash, zsh, fish, powershell)", cmdCompletion},
	}
}

const mainUsage = `Usage: jitform [-C DIR] [--no-color] <command> [flags] [args]

jitform reconciles just-in-time privileged access. A policy repository (every
*.hcl file in a directory) declares targets, privileged groups, elevation
policies and approved time-bound grants; jitform plans and applies the group
membership they require now, and records every change in a hash-chained ledger.

Commands:
%s
Global flags:
  -C, --chdir DIR   use the policy repository in DIR (default: the current directory);
                    like git -C, relative paths given to commands are relative to DIR
      --no-color    never colour the output (NO_COLOR in the environment does the same)
      --version     print the version and exit
  -h, --help        show this help; "jitform <command> --help" shows a command's help

Examples:
  jitform -C examples/quickstart plan
  jitform plan --out tonight.plan && jitform apply tonight.plan
  jitform apply --auto-approve        # in CI, with no one to ask

Exit codes: 0 success (and no changes under --detailed-exitcode), 1 error,
2 success with changes (plan --detailed-exitcode).
`

func (a *app) usage(w io.Writer) {
	var b strings.Builder
	for _, c := range commands() {
		fmt.Fprintf(&b, "  %-9s %s\n", c.name, c.summary)
	}
	fmt.Fprintf(w, mainUsage, b.String())
}

func (a *app) main(ctx context.Context, args []string) int {
	fs := pflag.NewFlagSet("jitform", pflag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.SetInterspersed(false) // global flags stop at the command name
	fs.StringVarP(&a.dir, "chdir", "C", ".", "")
	fs.BoolVar(&a.noColor, "no-color", false, "")
	showVersion := fs.Bool("version", false, "")
	help := fs.BoolP("help", "h", false, "")
	// Global flags end at the command name: its arguments are the
	// command's to normalise.
	cmdAt := commandIndex(fs, args)
	norm := append(normalizeArgs(fs, args[:cmdAt]), args[cmdAt:]...)
	if err := fs.Parse(norm); err != nil {
		fmt.Fprintf(a.stderr, "jitform: %v\n\n", err)
		a.usage(a.stderr)
		return exitError
	}
	if *showVersion {
		return cmdVersion(ctx, a, nil)
	}
	rest := fs.Args()
	if *help || len(rest) == 0 {
		if len(rest) == 0 && !*help {
			a.usage(a.stderr)
			return exitError
		}
		a.usage(a.stdout)
		return exitOK
	}
	name := rest[0]
	if name == "help" {
		if len(rest) > 1 {
			return a.main(ctx, []string{rest[1], "--help"})
		}
		a.usage(a.stdout)
		return exitOK
	}
	for _, c := range commands() {
		if c.name == name {
			a.command = c.name
			defer a.closeState()
			return c.run(ctx, a, rest[1:])
		}
	}
	fmt.Fprintf(a.stderr, "jitform: unknown command %q%s\nRun 'jitform --help' for the list of commands.\n", name, suggest(name))
	return exitError
}

func suggest(name string) string {
	for _, c := range commands() {
		if strings.HasPrefix(c.name, name) || strings.HasPrefix(name, c.name) {
			return fmt.Sprintf(" (did you mean %q?)", c.name)
		}
	}
	return ""
}

// color reports whether stdout gets ANSI colours: a terminal, no --no-color,
// and no NO_COLOR (set and non-empty, as https://no-color.org asks).
func (a *app) color() bool {
	return a.outTTY && !a.noColor && a.getenv("NO_COLOR") == ""
}

func (a *app) errColor() bool {
	return a.errTTY && !a.noColor && a.getenv("NO_COLOR") == ""
}

func (a *app) paintErr(code, s string) string { return ansi.Painter(a.errColor()).Paint(code, s) }

const (
	red    = ansi.Red
	green  = ansi.Green
	yellow = ansi.Yellow
	bold   = ansi.Bold
)

// errorf prints "Error: ..." to stderr and returns exitError.
func (a *app) errorf(format string, args ...any) int {
	fmt.Fprintf(a.stderr, "%s %s\n", a.paintErr(red+bold, "Error:"), fmt.Sprintf(format, args...))
	return exitError
}

// progress sends one line to stderr: logs never mix with the plan on stdout.
func (a *app) progress(format string, args ...any) {
	fmt.Fprintf(a.stderr, format+"\n", args...)
}

// flagSet makes a command's flag set; usage is the command's help text and
// is printed with the flag list for --help.
func (a *app) flagSet(name, usage string) *pflag.FlagSet {
	fs := pflag.NewFlagSet("jitform "+name, pflag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.SortFlags = false
	fs.Usage = func() {
		fmt.Fprint(a.stdout, strings.TrimLeft(usage, "\n"))
		if fu := flagUsages(fs); fu != "" {
			fmt.Fprintf(a.stdout, "\nFlags:\n%s", fu)
		}
	}
	return fs
}

// flagUsages lists a command's flags for --help, aligned; boolean flags are
// shown without pflag's "[=true|false]" noise.
func flagUsages(fs *pflag.FlagSet) string {
	type row struct{ left, usage string }
	var rows []row
	width := 0
	fs.VisitAll(func(f *pflag.Flag) {
		left := "      --" + f.Name
		if f.Shorthand != "" {
			left = "  -" + f.Shorthand + ", --" + f.Name
		}
		varname, usage := pflag.UnquoteUsage(f)
		if f.Value.Type() != "bool" && varname != "" {
			left += " " + varname
		}
		switch f.DefValue {
		case "", "false", "0", "0s", "[]":
		default:
			usage += fmt.Sprintf(" (default %s)", f.DefValue)
		}
		rows = append(rows, row{left, usage})
		width = max(width, len(left))
	})
	var b strings.Builder
	for _, r := range rows {
		fmt.Fprintf(&b, "%-*s   %s\n", width, r.left, r.usage)
	}
	return b.String()
}

// parse parses a command's flags. It returns done=true with the exit code
// when the command must stop (help was shown, or a flag was wrong).
func (a *app) parse(fs *pflag.FlagSet, args []string) (code int, done bool) {
	fs.BoolP("help", "h", false, "show this help")
	// Terraform users type "plan -no-color": accept it after the command too.
	fs.BoolVar(&a.noColor, "no-color", a.noColor, "never colour the output")
	fs.BoolVar(&a.compactWarnings, "compact-warnings", a.compactWarnings, "show each warning on one line")
	input := fs.Bool("input", true, "ask at the terminal when needed (-input=false: never ask)")
	err := fs.Parse(normalizeArgs(fs, args))
	if !*input {
		a.stdinTTY = false // nothing is asked: no confirmation, no passphrase
	}
	if errors.Is(err, pflag.ErrHelp) {
		fs.Usage()
		return exitOK, true
	}
	if err != nil {
		if hint := terraformFlagHint(args); hint != "" {
			fmt.Fprintf(a.stderr, "%s: %s\nRun '%s --help' for usage.\n", fs.Name(), hint, fs.Name())
			return exitError, true
		}
		fmt.Fprintf(a.stderr, "%s: %v\nRun '%s --help' for usage.\n", fs.Name(), err, fs.Name())
		return exitError, true
	}
	if h, _ := fs.GetBool("help"); h {
		fs.Usage()
		return exitOK, true
	}
	return exitOK, false
}

// normalizeArgs accepts Terraform's single-dash spelling of long flags
// (-auto-approve, -out=FILE) by rewriting them to --auto-approve, --out=FILE
// when the name is one of fs's long flags. Shorthand flags (-C, -h), values
// of flags that take one, and everything after "--" are left untouched.
func normalizeArgs(fs *pflag.FlagSet, args []string) []string {
	out := make([]string, 0, len(args))
	takesValue := func(f *pflag.Flag) bool { return f != nil && f.NoOptDefVal == "" }
	for i := 0; i < len(args); i++ {
		arg := args[i]
		if arg == "--" {
			out = append(out, args[i:]...)
			break
		}
		var f *pflag.Flag
		switch {
		case strings.HasPrefix(arg, "--"):
			name, _, _ := strings.Cut(arg[2:], "=")
			f = fs.Lookup(name)
		case len(arg) > 2 && arg[0] == '-':
			name, _, _ := strings.Cut(arg[1:], "=")
			if lf := fs.Lookup(name); lf != nil && len(name) > 1 {
				arg, f = "-"+arg, lf
			}
		case len(arg) == 2 && arg[0] == '-':
			f = fs.ShorthandLookup(arg[1:])
		}
		out = append(out, arg)
		// "--out FILE": FILE is a value, never a flag to rewrite.
		if f != nil && !strings.Contains(arg, "=") && takesValue(f) && i+1 < len(args) {
			i++
			out = append(out, args[i])
		}
	}
	return out
}

// path resolves a file named on the command line: like git -C and make -C,
// -C DIR makes relative paths relative to DIR.
func (a *app) path(p string) string {
	if p == "" || filepath.IsAbs(p) || a.dir == "." {
		return p
	}
	return filepath.Join(a.dir, p)
}

// commandIndex is the index of the first argument that is neither a flag
// of fs nor the value of one: the command name (len(args) if none).
func commandIndex(fs *pflag.FlagSet, args []string) int {
	for i := 0; i < len(args); i++ {
		arg := args[i]
		if arg == "--" || !strings.HasPrefix(arg, "-") || arg == "-" {
			return i
		}
		name := strings.TrimLeft(arg, "-")
		if strings.Contains(name, "=") {
			continue
		}
		f := fs.Lookup(name)
		if f == nil && len(name) == 1 {
			f = fs.ShorthandLookup(name)
		}
		if f != nil && f.NoOptDefVal == "" {
			i++ // skip the flag's value
		}
	}
	return len(args)
}

// registry maps every target kind to its provider.
func registry() providers.Registry {
	return providers.Registry{
		"ldap":  ldap.Open,
		"ldif":  ldif.Open,
		"winrm": winrm.Open,
	}
}

// backend opens the state the repository declares: PostgreSQL for a
// state "postgres" block, else the local files in .jitform/ (state.go).
func (a *app) backend() (state.Backend, error) {
	return a.openBackend()
}

// warnEphemeralState warns, loudly, when plan, apply or run works in CI on
// local state that starts empty: the workspace is thrown away after the
// job, so the next job will not know which members this one added and will
// never remove them.
func (a *app) warnEphemeralState(b *state.Local) {
	switch a.command {
	case "plan", "apply", "run":
	default:
		return
	}
	if ci := strings.ToLower(strings.TrimSpace(a.getenv("CI"))); ci != "true" && ci != "1" {
		return
	}
	empty, err := b.Empty()
	if err != nil || !empty {
		return // a damaged state is reported by the read that follows
	}
	const bar = "!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!"
	a.progress("%s\n%s jitform runs in CI (CI=true) on LOCAL state that is EMPTY (%s).\n"+
		"The members this %s adds, and the ledger that records them, live in the job's workspace and\n"+
		"will be FORGOTTEN when the job ends: the next job starts empty again, does not know what jitform\n"+
		"added, and will never remove it.\n"+
		"Use the shared backend: a state \"postgres\" block in the policy repository (see docs/state-postgres.md),\n"+
		"or restore .jitform/ before and save it after every job.\n%s",
		bar, a.paintErr(red+bold, "WARNING:"), b.Dir(), a.command, bar)
}

// verifyCache opens the verified-signature cache that JITFORM_VERIFY_CACHE
// names (nil when unset). It refuses a directory inside the policy
// repository: whoever can change the repository's files (a pull request
// checked out in CI) could then write the cache's secret and its entries.
func (a *app) verifyCache() (*filememo.Memo, error) {
	dir := a.getenv(filememo.EnvVar)
	if dir == "" {
		return nil, nil
	}
	dir, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", filememo.EnvVar, err)
	}
	if inside(a.dir, dir) {
		return nil, &filememo.UnsafeError{Path: dir, Reason: "it is inside the policy repository " + a.dir + ", whose files a pull request can write",
			Fix: "name a directory outside the repository that only the user running jitform can write"}
	}
	return filememo.Open(dir)
}

// inside reports whether path is dir or below it, symbolic links resolved
// as far as they exist.
func inside(dir, path string) bool {
	real := func(p string) string {
		p, _ = filepath.Abs(p)
		for q, rest := p, ""; ; {
			if r, err := filepath.EvalSymlinks(q); err == nil {
				return filepath.Join(r, rest)
			}
			up := filepath.Dir(q)
			if up == q {
				return p
			}
			rest = filepath.Join(filepath.Base(q), rest)
			q = up
		}
	}
	rel, err := filepath.Rel(real(dir), real(path))
	return err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator))
}

// useVerifyCache gives opts the memo JITFORM_VERIFY_CACHE names, if any;
// save writes it back when the command ends (a failure costs only the next
// run's time, so it is a warning).
func (a *app) useVerifyCache(opts *operation.Options) (save func(), err error) {
	m, err := a.verifyCache()
	if err != nil || m == nil {
		return func() {}, err
	}
	opts.VerifyMemo = m
	return func() {
		if err := m.Save(); err != nil {
			a.progress("warning: %v (the next plan verifies those signatures again)", err)
		}
	}, nil
}

// options are the operation settings common to plan and apply.
func (a *app) options(b state.Backend, parallelism int, lockTimeout time.Duration) operation.Options {
	return operation.Options{
		Dir:         a.dir,
		Parallelism: parallelism,
		Registry:    registry(),
		Backend:     b,
		Progress:    a.progress,
		LockTimeout: lockTimeout,
		Log:         debuglog.New(a.getenv(debuglog.EnvVar), a.stderr),
	}
}
