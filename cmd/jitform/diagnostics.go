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
	wr := hcl.NewDiagnosticTextWriter(a.stderr, files, a.diagWidth(), a.errColor())
	_ = wr.WriteDiagnostics(diags)

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
