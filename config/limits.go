package config

import (
	"bytes"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/hashicorp/hcl/v2"
)

// Limits on what a policy repository may hold, so that a hostile or broken
// pull request cannot stall or crash CI. Documented in docs/language.md.
const (
	// MaxConfigFileSize is the largest *.hcl file read (8 MiB): a
	// repository of 10,000 groups and 100,000 grants fits in a few files
	// of that size.
	MaxConfigFileSize = 8 << 20
	// MaxNesting is how deeply brackets, parentheses, braces and template
	// interpolations may nest. The HCL parser recurses once per level and
	// overflows the stack near 100,000; real policies nest a handful.
	MaxNesting = 100
	// MaxChain is how many operators, conditionals, splats and brackets
	// one expression may chain at one level (between commas, or lines of
	// a block). The parser and evaluator also recurse once per unary
	// operator, conditional, splat and index ("!!!!x", "a ? b : c ? ...",
	// "a[*][*]..."): 200,000 of them overflow the stack.
	MaxChain = 256
)

// checkNesting scans src before the HCL parser (which recurses per level)
// sees it, in one linear pass, for brackets nesting deeper than MaxNesting
// and for expressions chaining more than MaxChain operators at one level.
// It follows HCL's lexical structure enough to skip comments and the
// literal text of quoted strings and heredocs, while counting the ${ } and
// %{ } inside them. A closing bracket closes only its own kind, so
// mismatched input counts as deeper, never shallower, than the parser
// would see.
func checkNesting(src []byte, filename string) *hcl.Diagnostic {
	const (
		quoted  = '"'
		heredoc = 'h'
		interp  = 'i'
	)
	type level struct {
		kind byte // '(' '[' '{', interp, quoted, heredoc
		ops  int  // operators and brackets chained at this level so far
	}
	stack := []level{{kind: '{'}} // the file body
	var markers []string          // the end markers of the open heredocs
	depth := 0                    // brackets and interpolations on the stack
	line, lineStart := 1, 0
	top := func() *level { return &stack[len(stack)-1] }
	push := func(k byte) {
		stack = append(stack, level{kind: k})
		if k != quoted && k != heredoc {
			depth++
		}
	}
	pop := func() {
		if len(stack) == 1 {
			return
		}
		switch top().kind {
		case quoted:
		case heredoc:
			markers = markers[:len(markers)-1]
		default:
			depth--
		}
		stack = stack[:len(stack)-1]
	}
	at := func(i int, s string) bool { return len(src)-i >= len(s) && string(src[i:i+len(s)]) == s }
	fail := func(i int, summary, detail string) *hcl.Diagnostic {
		col := utf8.RuneCount(src[lineStart:i]) + 1
		pos := hcl.Pos{Line: line, Column: col, Byte: i}
		return &hcl.Diagnostic{
			Severity: hcl.DiagError, Summary: summary, Detail: detail,
			Subject: &hcl.Range{Filename: filename, Start: pos, End: hcl.Pos{Line: line, Column: col + 1, Byte: i + 1}},
		}
	}
	for i := 0; i < len(src); i++ {
		c := src[i]
		if c == '\n' {
			line, lineStart = line+1, i+1
			switch top().kind {
			case quoted:
				pop() // a newline ends an unterminated string, as in HCL's lexer
			case '{':
				top().ops = 0 // a new attribute or block
			}
			if top().kind == heredoc {
				end := bytes.IndexByte(src[i+1:], '\n')
				if end < 0 {
					end = len(src) - i - 1
				}
				if strings.TrimSpace(string(src[i+1:i+1+end])) == markers[len(markers)-1] {
					pop()
				}
			}
			continue
		}
		chained := false
		switch top().kind {
		case quoted, heredoc:
			switch {
			case c == '\\' && top().kind == quoted:
				if i+1 < len(src) && src[i+1] != '\n' {
					i++
				}
			case c == '"' && top().kind == quoted:
				pop()
			case at(i, "$${") || at(i, "%%{"):
				i += 2 // literal
			case at(i, "${") || at(i, "%{"):
				push(interp)
				i++
			}
		default:
			switch {
			case c == '"':
				push(quoted)
			case c == '#' || at(i, "//"):
				for i+1 < len(src) && src[i+1] != '\n' {
					i++
				}
			case at(i, "/*"):
				for i += 2; i < len(src) && !at(i, "*/"); i++ {
					if src[i] == '\n' {
						line, lineStart = line+1, i+1
					}
				}
				i++
			case at(i, "<<"):
				j := i + 2
				if j < len(src) && src[j] == '-' {
					j++
				}
				k := j
				for k < len(src) && (src[k] == '_' || src[k] == '-' || src[k] >= 'a' && src[k] <= 'z' || src[k] >= 'A' && src[k] <= 'Z' || k > j && src[k] >= '0' && src[k] <= '9') {
					k++
				}
				if k > j && (at(k, "\n") || at(k, "\r\n")) {
					push(heredoc)
					markers = append(markers, string(src[j:k]))
					i = k - 1 // the newline comes next
				} else {
					chained = true
				}
			case c == '(' || c == '[' || c == '{':
				top().ops++
				if top().ops > MaxChain {
					chained = true
					break
				}
				push(c)
			case c == ')' || c == ']' || c == '}':
				t := top().kind
				if t == '(' && c == ')' || t == '[' && c == ']' || (t == '{' || t == interp) && c == '}' {
					pop()
				}
			case c == ',':
				top().ops = 0
			case strings.IndexByte("!-+*/%?&|=<>", c) >= 0:
				chained = true
			}
		}
		if chained {
			if top().ops++; top().ops > MaxChain {
				return fail(i, "Expression too long",
					fmt.Sprintf("One expression chains more than %d operators, conditionals, splats or brackets here; jitform reads at most %d (split it, or use a list). The file was not parsed.", MaxChain, MaxChain))
			}
		}
		if depth > MaxNesting {
			return fail(i, "Expression nested too deeply",
				fmt.Sprintf("Brackets, braces, parentheses and ${...} nest more than %d levels deep here; jitform reads at most %d (a policy needs a handful). The file was not parsed.", MaxNesting, MaxNesting))
		}
	}
	return nil
}

// tooLarge is the diagnostic for a configuration file over MaxConfigFileSize.
func tooLarge(filename string, size int64) *hcl.Diagnostic {
	return &hcl.Diagnostic{
		Severity: hcl.DiagError,
		Summary:  "Configuration file too large",
		Detail: fmt.Sprintf("%s is %d bytes; jitform reads configuration files of at most %d bytes (8 MiB). Split it into several *.hcl files.",
			filename, size, MaxConfigFileSize),
		Subject: &hcl.Range{Filename: filename, Start: hcl.InitialPos, End: hcl.InitialPos},
	}
}
