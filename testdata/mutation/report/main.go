// Command report turns the JSON files gremlins writes (one per package,
// gremlins unleash -o FILE) into the table scripts/mutate.sh prints, lists
// every surviving mutant that testdata/mutation/equivalent.txt does not
// explain, and exits 1 when a package is under the threshold.
//
// It lives under testdata so that go build ./... and go test ./... skip it;
// scripts/mutate.sh runs it with go run.
//
// Usage: report -equivalent FILE -threshold 90 DIR=FILE.json...
// where DIR is the package directory relative to the module root.
package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"go/ast"
	"go/token"
	"go/types"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"golang.org/x/tools/go/packages"
)

type result struct {
	Files []struct {
		Name      string `json:"file_name"`
		Mutations []struct {
			Type   string `json:"type"`
			Status string `json:"status"`
			Line   int    `json:"line"`
			Column int    `json:"column"`
		} `json:"mutations"`
	} `json:"files"`
	Elapsed float64 `json:"elapsed_time"`
}

type mutant struct {
	file   string // relative to the module root
	line   int
	col    int
	typ    string
	status string
}

func (m mutant) key() string { return fmt.Sprintf("%s:%d:%d %s", m.file, m.line, m.col, m.typ) }

var (
	workers      int
	rejudge      bool
	rerun        bool
	rerunTimeout time.Duration
)

type row struct {
	pkg                                                        string
	killed, lived, equivalent, notCovered, timedOut, notViable int
	efficacy, coverage                                         float64
	seconds                                                    float64
	survivors                                                  []mutant
}

func main() {
	eqFile := flag.String("equivalent", "testdata/mutation/equivalent.txt", "allow-list of equivalent mutants")
	threshold := flag.Float64("threshold", 90, "minimum efficacy and mutant coverage, in percent")
	flag.BoolVar(&rerun, "rerun", true, "run the mutants gremlins reports NOT COVERED or TIMED OUT (see rerunNotCovered)")
	flag.BoolVar(&rejudge, "rejudge", false, "run the LIVED mutants again too: after adding tests, judge the survivors of an earlier gremlins run without running it all again")
	flag.IntVar(&workers, "workers", 1, "mutants rerun at once")
	flag.DurationVar(&rerunTimeout, "timeout", 3*time.Minute, "time limit of one rerun mutant's tests (and build)")
	flag.Parse()

	equivalent, err := readEquivalent(*eqFile)
	if err != nil {
		fmt.Fprintln(os.Stderr, "mutate:", err)
		os.Exit(2)
	}
	used := map[string]bool{}
	var rows []row
	for _, arg := range flag.Args() {
		dir, file, ok := strings.Cut(arg, "=")
		if !ok {
			fmt.Fprintf(os.Stderr, "mutate: argument %q: want DIR=FILE.json\n", arg)
			os.Exit(2)
		}
		r, err := summarise(dir, file, equivalent, used)
		if err != nil {
			fmt.Fprintf(os.Stderr, "mutate: %s: %v\n", dir, err)
			os.Exit(2)
		}
		rows = append(rows, r)
	}

	fail := false
	fmt.Println("| package | killed | lived | equivalent | not covered | timed out | not viable | efficacy | mutant coverage | time |")
	fmt.Println("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
	for _, r := range rows {
		mark := ""
		if r.efficacy < *threshold || r.coverage < *threshold {
			mark, fail = " **under threshold**", true
		}
		fmt.Printf("| %s | %d | %d | %d | %d | %d | %d | %.1f%% | %.1f%% | %.0fs |%s\n", r.pkg, r.killed, r.lived, r.equivalent,
			r.notCovered, r.timedOut, r.notViable, r.efficacy, r.coverage, r.seconds, mark)
	}
	for _, r := range rows {
		if len(r.survivors) == 0 {
			continue
		}
		fmt.Printf("\nsurviving mutants in %s (kill each with a test, or explain it in %s):\n", r.pkg, *eqFile)
		for _, m := range r.survivors {
			note := ""
			if m.status == "NOT COVERED" {
				note = " (not covered)"
			}
			fmt.Printf("  %s%s  %s\n", m.key(), note, sourceLine(m))
		}
	}
	var stale []string
	for k := range equivalent {
		for _, r := range rows {
			if !used[k] && strings.HasPrefix(k, r.pkg+"/") && !strings.Contains(strings.TrimPrefix(k, r.pkg+"/"), "/") {
				stale = append(stale, k)
			}
		}
	}
	if len(stale) > 0 && len(rows) > 0 {
		sort.Strings(stale)
		fmt.Printf("\nentries of %s that no surviving mutant of these packages matched (code moved, or a test kills it now):\n", *eqFile)
		for _, k := range stale {
			fmt.Println("  " + k)
		}
	}
	if fail {
		fmt.Printf("\nFAIL: efficacy and mutant coverage must be at least %.0f%% on every package\n", *threshold)
		os.Exit(1)
	}
}

// summarise counts one package's mutants. A KILLED arithmetic mutant of a
// string concatenation ("a" + b becomes "a" - b) never compiled: gremlins
// counts the failed build as a kill; it is counted here as not viable.
func summarise(dir, file string, equivalent map[string]string, used map[string]bool) (row, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return row{}, err
	}
	var res result
	if err := json.Unmarshal(data, &res); err != nil {
		return row{}, fmt.Errorf("reading gremlins output %s: %w", file, err)
	}
	concat, err := stringConcatenations(dir)
	if err != nil {
		return row{}, err
	}
	r := row{pkg: dir, seconds: res.Elapsed}
	var all []mutant
	for _, f := range res.Files {
		for _, mu := range f.Mutations {
			m := mutant{file: filepath.ToSlash(filepath.Join(dir, f.Name)), line: mu.Line, col: mu.Column, typ: mu.Type, status: mu.Status}
			if (m.typ == "ARITHMETIC_BASE" || m.typ == "INVERT_NEGATIVES") && concat[fmt.Sprintf("%s:%d:%d", m.file, m.line, m.col)] {
				m.status = "NOT VIABLE"
			}
			all = append(all, m)
		}
	}
	if rerun {
		// gremlins' NOT COVERED and TIMED OUT, run here; a mutant whose
		// tests still pass stays NOT COVERED (no test reaches it, or none
		// notices), or LIVED when gremlins ran it.
		var wg sync.WaitGroup
		sem := make(chan struct{}, max(workers, 1))
		for i := range all {
			if all[i].status != "NOT COVERED" && all[i].status != "TIMED OUT" && !(rejudge && all[i].status == "LIVED") {
				continue
			}
			wg.Add(1)
			sem <- struct{}{}
			go func(m *mutant) {
				defer wg.Done()
				defer func() { <-sem }()
				switch st := rerunNotCovered(dir, *m); {
				case st != "LIVED":
					m.status = st
				case m.status == "TIMED OUT":
					m.status = "LIVED"
				case m.status == "LIVED":
					// still lives
				}
			}(&all[i])
		}
		wg.Wait()
	}
	for _, m := range all {
		switch m.status {
		case "KILLED":
			r.killed++
		case "LIVED", "NOT COVERED":
			if _, ok := equivalent[m.key()]; ok {
				used[m.key()] = true
				r.equivalent++
			} else if m.status == "LIVED" {
				r.lived++
				r.survivors = append(r.survivors, m)
			} else {
				r.notCovered++
				r.survivors = append(r.survivors, m)
			}
		case "TIMED OUT":
			r.timedOut++
		case "NOT VIABLE":
			r.notViable++
		}
	}
	sort.Slice(r.survivors, func(i, j int) bool {
		a, b := r.survivors[i], r.survivors[j]
		if a.file != b.file {
			return a.file < b.file
		}
		if a.line != b.line {
			return a.line < b.line
		}
		return a.col < b.col
	})
	// Efficacy: killed over killed and lived, equivalent mutants left out
	// (they cannot change behaviour). Coverage: mutants some test runs
	// (killed, lived, equivalent, timed out) over all viable mutants.
	r.efficacy = 100
	if r.killed+r.lived > 0 {
		r.efficacy = 100 * float64(r.killed) / float64(r.killed+r.lived)
	}
	covered := r.killed + r.lived + r.equivalent + r.timedOut
	r.coverage = 100
	if covered+r.notCovered > 0 {
		r.coverage = 100 * float64(covered) / float64(covered+r.notCovered)
	}
	return r, nil
}

// stringConcatenations returns the positions (file:line:col, file relative
// to the module root) of every + between strings in the package in dir.
func stringConcatenations(dir string) (map[string]bool, error) {
	cfg := &packages.Config{Mode: packages.NeedName | packages.NeedFiles | packages.NeedSyntax | packages.NeedTypes | packages.NeedTypesInfo}
	pkgs, err := packages.Load(cfg, "./"+dir)
	if err != nil {
		return nil, fmt.Errorf("loading the package to find string concatenations: %w", err)
	}
	root, err := os.Getwd()
	if err != nil {
		return nil, err
	}
	out := map[string]bool{}
	for _, p := range pkgs {
		if p.TypesInfo == nil {
			continue
		}
		for _, f := range p.Syntax {
			ast.Inspect(f, func(n ast.Node) bool {
				var pos token.Pos
				var x ast.Expr
				switch n := n.(type) {
				case *ast.BinaryExpr:
					if n.Op != token.ADD {
						return true
					}
					pos, x = n.OpPos, n
				case *ast.AssignStmt:
					if n.Tok != token.ADD_ASSIGN || len(n.Lhs) != 1 {
						return true
					}
					pos, x = n.TokPos, n.Lhs[0]
				default:
					return true
				}
				if t := p.TypesInfo.TypeOf(x); t != nil {
					if b, ok := t.Underlying().(*types.Basic); ok && b.Info()&types.IsString != 0 {
						at := p.Fset.Position(pos)
						rel, err := filepath.Rel(root, at.Filename)
						if err == nil {
							out[fmt.Sprintf("%s:%d:%d", filepath.ToSlash(rel), at.Line, at.Column)] = true
						}
					}
				}
				return true
			})
		}
	}
	return out, nil
}

// readEquivalent reads the allow-list: one mutant a line,
// "file:line:col MUTATOR — why it cannot change behaviour"; # comments.
func readEquivalent(file string) (map[string]string, error) {
	out := map[string]string{}
	f, err := os.Open(file)
	if os.IsNotExist(err) {
		return out, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	n := 0
	for sc.Scan() {
		n++
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		fields := strings.Fields(line)
		why := ""
		if i := strings.Index(line, "—"); i >= 0 {
			why = strings.TrimSpace(line[i+len("—"):])
		}
		if len(fields) < 2 || why == "" {
			return nil, fmt.Errorf("%s:%d: want \"file:line:col MUTATOR — why it cannot change behaviour\"", file, n)
		}
		out[fields[0]+" "+fields[1]] = why
	}
	return out, sc.Err()
}

// sourceLine is the mutated line, trimmed, for the reader.
func sourceLine(m mutant) string {
	data, err := os.ReadFile(m.file)
	if err != nil {
		return ""
	}
	lines := strings.Split(string(data), "\n")
	if m.line < 1 || m.line > len(lines) {
		return ""
	}
	s := strings.TrimSpace(lines[m.line-1])
	if len(s) > 100 {
		s = s[:100] + "…"
	}
	return "| " + s
}

// rerunNotCovered runs one mutant that gremlins did not run. gremlins
// decides coverage from the coverage profile, in which the case
// expressions of a switch statement belong to no block: every mutant of a
// "case a == b:" is reported NOT COVERED, whatever the tests do. This
// applies the same one-token change gremlins would (through go test
// -overlay, so the tree is not touched) and runs the package's tests.
// It returns KILLED, LIVED, TIMED OUT or NOT VIABLE (does not build).
func rerunNotCovered(dir string, m mutant) string {
	src, err := os.ReadFile(m.file)
	if err != nil {
		return "LIVED"
	}
	mutated, ok := mutate(src, m.line, m.col, m.typ)
	if !ok {
		fmt.Fprintf(os.Stderr, "mutate: cannot apply %s; counted as not covered\n", m.key())
		return "LIVED"
	}
	tmp, err := os.MkdirTemp("", "mutant-")
	if err != nil {
		return "LIVED"
	}
	defer os.RemoveAll(tmp)
	abs, _ := filepath.Abs(m.file)
	mfile := filepath.Join(tmp, filepath.Base(m.file))
	overlay := filepath.Join(tmp, "overlay.json")
	ov, _ := json.Marshal(map[string]map[string]string{"Replace": {abs: mfile}})
	if os.WriteFile(mfile, mutated, 0o600) != nil || os.WriteFile(overlay, ov, 0o600) != nil {
		return "LIVED"
	}
	ctx, cancel := context.WithTimeout(context.Background(), rerunTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", "test", "-overlay", overlay, "-count=1", "-vet=off", "-failfast",
		"-timeout", (rerunTimeout + 10*time.Second).String(), "./"+dir)
	cmd.WaitDelay = 5 * time.Second
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err = cmd.Run()
	var exit *exec.ExitError
	switch {
	case ctx.Err() != nil:
		return "TIMED OUT"
	case err == nil:
		fmt.Fprintf(os.Stderr, "   rerun LIVED       %s\n", m.key())
		return "LIVED"
	case bytes.Contains(out.Bytes(), []byte("[build failed]")) || bytes.Contains(out.Bytes(), []byte("[setup failed]")):
		return "NOT VIABLE"
	case errors.As(err, &exit):
		fmt.Fprintf(os.Stderr, "   rerun KILLED      %s\n", m.key())
		return "KILLED"
	}
	return "LIVED"
}

// mutate applies gremlins' change of mutator typ to the operator at
// line:col (1-based; col counts bytes, as go/token does).
func mutate(src []byte, line, col int, typ string) ([]byte, bool) {
	off := 0
	for l := 1; l < line; l++ {
		i := bytes.IndexByte(src[off:], '\n')
		if i < 0 {
			return nil, false
		}
		off += i + 1
	}
	off += col - 1
	if off >= len(src) {
		return nil, false
	}
	table := map[string]map[string]string{
		"ARITHMETIC_BASE":       {"+": "-", "*": "/", "/": "*", "%": "*", "-": "+"},
		"CONDITIONALS_BOUNDARY": {">=": ">", ">": ">=", "<=": "<", "<": "<="},
		"CONDITIONALS_NEGATION": {"==": "!=", "!=": "==", ">=": "<", ">": "<=", "<=": ">", "<": ">="},
		"INCREMENT_DECREMENT":   {"++": "--", "--": "++"},
		"INVERT_NEGATIVES":      {"-": "+"},
		"INVERT_LOGICAL":        {"&&": "||", "||": "&&"},
		"INVERT_LOOPCTRL":       {"break": "continue", "continue": "break"},
	}[typ]
	// Longest operator first: ">=" before ">".
	ops := make([]string, 0, len(table))
	for op := range table {
		ops = append(ops, op)
	}
	sort.Slice(ops, func(i, j int) bool { return len(ops[i]) > len(ops[j]) })
	for _, op := range ops {
		if bytes.HasPrefix(src[off:], []byte(op)) {
			// "+=" is not "+", "<<" is not "<".
			if rest := src[off+len(op):]; len(op) == 1 && len(rest) > 0 && strings.ContainsRune("=<>&|+-", rune(rest[0])) {
				continue
			}
			out := append([]byte{}, src[:off]...)
			out = append(out, table[op]...)
			return append(out, src[off+len(op):]...), true
		}
	}
	return nil, false
}
