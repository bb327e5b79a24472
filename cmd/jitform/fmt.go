package main

import (
	"bytes"
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/sergi/go-diff/diffmatchpatch"

	"github.com/jitform/jitform/config"
	"github.com/jitform/jitform/internal/ansi"
)

const fmtUsage = `
Usage: jitform [-C DIR] fmt [--check] [--diff] [--recursive] [PATH...]

Rewrites every *.hcl file of the policy repository (or the files and
directories given) in the canonical format, and lists the files it changed.

  --check   change nothing; list the files that need formatting and exit 1 if any do
  --diff    print a unified diff of the formatting changes
            (with --check: show what would change, write nothing)

Examples:
  jitform fmt
  jitform fmt --check --diff     # in CI: fail and show why when a file is not formatted
  jitform fmt --recursive policies/
`

func cmdFmt(ctx context.Context, a *app, args []string) int {
	flags := a.flagSet("fmt", fmtUsage)
	check := flags.Bool("check", false, "list files that need formatting; exit 1 if any; write nothing")
	diff := flags.Bool("diff", false, "print a unified diff of the changes")
	recursive := flags.Bool("recursive", false, "also format files in subdirectories")
	if code, done := a.parse(flags, args); done {
		return code
	}
	paths := flags.Args()
	if len(paths) == 0 {
		paths = []string{a.dir}
	} else {
		for i, p := range paths {
			paths[i] = a.path(p)
		}
	}
	files, err := hclFiles(paths, *recursive)
	if err != nil {
		return a.errorf("%v", err)
	}

	failed, unformatted := false, 0
	for _, name := range files {
		src, err := os.ReadFile(name)
		if err != nil {
			a.errorf("read %s: %v", name, err)
			failed = true
			continue
		}
		out, err := config.Format(src)
		if err != nil {
			a.errorf("format %s: %v", name, err)
			failed = true
			continue
		}
		if bytes.Equal(src, out) {
			continue
		}
		unformatted++
		fmt.Fprintln(a.stdout, name)
		if *diff {
			fmt.Fprint(a.stdout, unifiedDiff(name, string(src), string(out), a.color()))
		}
		if *check {
			continue
		}
		if err := writeFileAtomic(name, out); err != nil {
			a.errorf("write %s: %v", name, err)
			failed = true
		}
	}
	if failed {
		return exitError
	}
	if *check && unformatted > 0 {
		fmt.Fprintf(a.stderr, "%d file(s) need formatting; run `jitform fmt` to fix them.\n", unformatted)
		return exitError
	}
	return exitOK
}

// hclFiles lists the *.hcl files named by paths, sorted; directories are
// walked (one level unless recursive; hidden directories such as .jitform and
// .git are skipped).
func hclFiles(paths []string, recursive bool) ([]string, error) {
	var files []string
	for _, p := range paths {
		info, err := os.Stat(p)
		if err != nil {
			return nil, fmt.Errorf("fmt: %w", err)
		}
		if !info.IsDir() {
			files = append(files, p)
			continue
		}
		err = filepath.WalkDir(p, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.IsDir() {
				if path != p && (!recursive || strings.HasPrefix(d.Name(), ".")) {
					return filepath.SkipDir
				}
				return nil
			}
			if strings.HasSuffix(d.Name(), ".hcl") {
				files = append(files, path)
			}
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("fmt: list %s: %w", p, err)
		}
	}
	sort.Strings(files)
	return files, nil
}

// writeFileAtomic replaces name with data via a temporary file and rename,
// keeping its permissions: an interrupted fmt never leaves half a file.
func writeFileAtomic(name string, data []byte) error {
	mode := os.FileMode(0o644)
	if info, err := os.Stat(name); err == nil {
		mode = info.Mode().Perm()
	}
	tmp, err := os.CreateTemp(filepath.Dir(name), "."+filepath.Base(name)+".tmp*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Chmod(mode); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), name)
}

// unifiedDiff is a unified diff (3 lines of context) from old to new, made
// from go-diff's line diff.
func unifiedDiff(name, old, new string, color bool) string {
	dmp := diffmatchpatch.New()
	a, b, lines := dmp.DiffLinesToChars(old, new)
	diffs := dmp.DiffCharsToLines(dmp.DiffMain(a, b, false), lines)

	type line struct {
		op   diffmatchpatch.Operation
		text string
	}
	var all []line
	for _, d := range diffs {
		if d.Text == "" {
			continue
		}
		text := strings.TrimSuffix(d.Text, "\n")
		for _, l := range strings.Split(text, "\n") {
			all = append(all, line{d.Type, l})
		}
	}

	const context = 3
	var out strings.Builder
	fmt.Fprintf(&out, "--- %s\n+++ %s (formatted)\n", name, name)
	paint := ansi.Painter(color).Paint
	// Walk hunks: runs of changes with up to 2*context equal lines between.
	oldLine, newLine := 1, 1
	i := 0
	for i < len(all) {
		if all[i].op == diffmatchpatch.DiffEqual {
			i++
			oldLine++
			newLine++
			continue
		}
		start := i - context
		if start < 0 {
			start = 0
		}
		// extend the hunk while the next change is close enough
		end := i
		for end < len(all) {
			if all[end].op != diffmatchpatch.DiffEqual {
				end++
				continue
			}
			run := end
			for run < len(all) && all[run].op == diffmatchpatch.DiffEqual {
				run++
			}
			if run == len(all) || run-end > 2*context {
				end += min(context, run-end)
				break
			}
			end = run
		}
		hOld, hNew := oldLine-(i-start), newLine-(i-start)
		var body strings.Builder
		nOld, nNew := 0, 0
		for k := start; k < end; k++ {
			switch all[k].op {
			case diffmatchpatch.DiffEqual:
				body.WriteString(" " + all[k].text + "\n")
				nOld++
				nNew++
			case diffmatchpatch.DiffDelete:
				body.WriteString(paint(red, "-"+all[k].text) + "\n")
				nOld++
			case diffmatchpatch.DiffInsert:
				body.WriteString(paint(green, "+"+all[k].text) + "\n")
				nNew++
			}
		}
		fmt.Fprintf(&out, "@@ -%d,%d +%d,%d @@\n%s", hOld, nOld, hNew, nNew, body.String())
		// advance the line counters over the hunk's part after i
		for k := i; k < end; k++ {
			switch all[k].op {
			case diffmatchpatch.DiffEqual:
				oldLine++
				newLine++
			case diffmatchpatch.DiffDelete:
				oldLine++
			case diffmatchpatch.DiffInsert:
				newLine++
			}
		}
		i = end
	}
	return out.String()
}
