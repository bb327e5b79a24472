package main

import (
	"errors"
	"fmt"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"golang.org/x/term"

	"github.com/jitform/jitform/config"
	"github.com/jitform/jitform/internal/operation"
)

// diagWidth is the wrap width for diagnostics: the terminal's, or 100.
func (a *app) diagWidth() uint {
	if a.errTTY {
		if w, _, err := term.GetSize(2); err == nil && w > 20 {
			return uint(w)
		}
	}
	return 100
}

// printDiags renders diagnostics to stderr with file:line:col and the source
// snippet, all of them at once so a person fixes every mistake in one pass.
func (a *app) printDiags(cfg *config.Config, diags hcl.Diagnostics) {
	if len(diags) == 0 {
		return
	}
	var files map[string]*hcl.File
	if cfg != nil {
		files = cfg.Files
	}
	shown, similar := groupWarnings(diags)
	if a.compactWarnings {
		// -compact-warnings: errors in full, warnings one line each.
		var errs hcl.Diagnostics
		for _, d := range diags {
			if d.Severity == hcl.DiagError {
				errs = append(errs, d)
				continue
			}
			fmt.Fprintf(a.stderr, "%s %s%s\n", a.paintErr(yellow+bold, "Warning:"), d.Summary, at(d.Subject))
		}
		shown, similar = errs, nil
	}
	wr := hcl.NewDiagnosticTextWriter(a.stderr, files, a.diagWidth(), a.errColor())
	for _, d := range shown {
		_ = wr.WriteDiagnostic(d)
		if more := similar[d]; len(more) > 0 {
			fmt.Fprintf(a.stderr, "(and %d more similar warning(s): %s)\n\n", len(more), strings.Join(more, ", "))
		}
	}

	// Then one grep-able line per error, file:line:col first (editors and CI
	// annotations jump to it).
	var lines []string
	for _, d := range diags {
		if d.Severity != hcl.DiagError {
			continue
		}
		where := "(no location)"
		if d.Subject != nil {
			where = fmt.Sprintf("%s:%d:%d", d.Subject.Filename, d.Subject.Start.Line, d.Subject.Start.Column)
		}
		msg := d.Summary
		if d.Detail != "" {
			msg += ": " + strings.Join(strings.Fields(d.Detail), " ")
		}
		lines = append(lines, where+": "+msg)
	}
	if len(lines) > 0 {
		fmt.Fprintf(a.stderr, "%d error(s):\n", len(lines))
		for _, l := range lines {
			fmt.Fprintf(a.stderr, "  %s\n", l)
		}
	}
}

// groupWarnings keeps errors and the first warning of each summary, as
// Terraform does: the quickstart's three plantimestamp() grants say it once.
// similar maps a shown warning to where the others of its kind are.
func groupWarnings(diags hcl.Diagnostics) (shown hcl.Diagnostics, similar map[*hcl.Diagnostic][]string) {
	similar = map[*hcl.Diagnostic][]string{}
	first := map[string]*hcl.Diagnostic{}
	for _, d := range diags {
		if d.Severity != hcl.DiagWarning {
			shown = append(shown, d)
			continue
		}
		if f, ok := first[d.Summary]; ok {
			similar[f] = append(similar[f], strings.TrimPrefix(at(d.Subject), " at "))
			continue
		}
		first[d.Summary] = d
		shown = append(shown, d)
	}
	return shown, similar
}

// at is " at file:line" for a diagnostic's subject, or "".
func at(r *hcl.Range) string {
	if r == nil {
		return ""
	}
	return fmt.Sprintf(" at %s:%d", r.Filename, r.Start.Line)
}

// fail reports an error from an operation and returns exitError. A config
// error is rendered as diagnostics; others as one "Error:" line.
func (a *app) fail(err error) int {
	var ce *operation.ConfigError
	if errors.As(err, &ce) {
		a.printDiags(ce.Config, ce.Diags)
		return a.errorf("the configuration is invalid; nothing was read or changed. Run `jitform validate` after fixing it")
	}
	return a.errorf("%v", err)
}
