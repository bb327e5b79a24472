package config

import (
	"bytes"
	"strings"
	"sync"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"

	"github.com/jitform/jitform/internal/parallel"
)

// parseFile parses one configuration file into exactly what
// hclsyntax.ParseConfig returns, faster for the shape almost every block
// has. hclsyntax spends most of a large load on work that this shape does
// not need: it segments every token into grapheme clusters to count
// columns, grows one token slice for the whole file (a 5,000-group file is
// ~600k tokens, copied over and over as the slice grows), and runs each
// quoted string through its escape and template machinery.
//
// fastParse builds the syntax tree itself for top-level blocks whose body
// is one attribute per line, each a plain quoted string (printable ASCII,
// no escapes, no ${ } or %{ } and no $${ or %%{), a list of them, true, false, null or a
// reference (target.ldap.corp). Any other top-level block is handed to
// hclsyntax alone, at its own position in the file. Whenever anything is
// unusual (non-ASCII outside strings, tabs, CRLF, heredocs, a block that
// does not parse alone without a diagnostic, a top-level attribute) the
// whole file is parsed by hclsyntax as before, so every diagnostic is
// hclsyntax's own. Tests compare both trees on every corpus we have.
func parseFile(src []byte, filename string) (*hcl.File, hcl.Diagnostics) {
	fp, ok := fastParse(src, filename)
	// Hostile input is refused before hclsyntax, which would take seconds
	// or overflow the stack on it. A file entirely in the fast shape is
	// within the limits by construction (brackets nest two deep, and an
	// expression chains at most one operator, =), unless an identifier is
	// made of hundreds of dashes: only such files skip the scan.
	if !ok || len(fp.slow) > 0 || fp.dashes {
		if d := checkNesting(src, filename); d != nil {
			return nil, hcl.Diagnostics{d}
		}
	}
	if ok {
		for _, s := range fp.slow {
			b, ok := slowBlock(src[s.start:s.end], filename, s.pos)
			if !ok {
				return hclsyntax.ParseConfig(src, filename, hcl.InitialPos)
			}
			fp.body.Blocks[s.index] = b
		}
		// An hcl.File's Nav (used to name the block a diagnostic is in)
		// is hclsyntax's own unexported type pointing at the root body:
		// parse an empty file and fill its root body in place.
		f, _ := hclsyntax.ParseConfig(nil, filename, hcl.InitialPos)
		*f.Body.(*hclsyntax.Body) = *fp.body
		f.Bytes = src
		return f, nil
	}
	return hclsyntax.ParseConfig(src, filename, hcl.InitialPos)
}

// fastParsed is fastParse's result: the root body, with a nil in Blocks
// for each block left to hclsyntax (slow).
type fastParsed struct {
	body *hclsyntax.Body
	slow []slowSpan
	// dashes: an identifier holds more dashes than checkNesting allows
	// operators in one expression (it counts them as minus signs).
	dashes bool
}

// slowSpan is a top-level block that hclsyntax is to parse alone.
type slowSpan struct {
	index      int // in body.Blocks
	start, end int
	pos        hcl.Pos // of start
}

// handoff passes the files LoadState parsed to the Load that follows in
// the same process (plan and apply open the state the repository declares,
// then load it): each file is parsed once. An entry is taken only for the
// same name and the same bytes, and taken once.
var handoff = struct {
	sync.Mutex
	files map[string]parsedFile
}{files: map[string]parsedFile{}}

type parsedFile struct {
	src   []byte
	file  *hcl.File
	diags hcl.Diagnostics
}

// parsed is one file's syntax tree and diagnostics.
type parsed struct {
	file  *hcl.File
	diags hcl.Diagnostics
	// Set by LoadFiles for a file that parsed: its top-level blocks, and
	// its grants' decoding (by index in blocks; nil for other blocks).
	blocks       hcl.Blocks
	contentDiags hcl.Diagnostics
	grants       []*grantDecoded
}

// parseEach runs parse(0..n-1) on every core, at most GOMAXPROCS at once
// (files parse independently), and returns the results in order.
func parseEach(n int, parse func(i int) parsed) []parsed {
	results := make([]parsed, n)
	parallel.Chunks(n, 1, func(i, _ int) { results[i] = parse(i) })
	return results
}

// parseFileOnce is parseFile, or the result LoadState stashed for the
// same file; stash keeps this result for the next call.
func parseFileOnce(src []byte, filename string, stash bool) (*hcl.File, hcl.Diagnostics) {
	handoff.Lock()
	p, ok := handoff.files[filename]
	delete(handoff.files, filename)
	handoff.Unlock()
	if !ok || !bytes.Equal(p.src, src) {
		p.file, p.diags = parseFile(src, filename)
		p.src = src
	}
	if stash {
		handoff.Lock()
		handoff.files[filename] = p
		handoff.Unlock()
	}
	return p.file, p.diags
}

type fastParser struct {
	src      []byte
	filename string
	i        int // next byte
	line     int
	col      int // of byte i; every byte since the line's start is ASCII
	dashes   bool
	// text is src as a string: names and values are substrings of it,
	// not one allocation each.
	text string
	// Nodes are allocated in slabs: a 10,000-group repository has
	// millions, and one allocation per node was most of the fast path.
	attrs  slab[hclsyntax.Attribute]
	tmpls  slab[hclsyntax.TemplateExpr]
	lits   slab[hclsyntax.LiteralValueExpr]
	travs  slab[hclsyntax.ScopeTraversalExpr]
	tuples slab[hclsyntax.TupleConsExpr]
	exprs  slab[hclsyntax.Expression]
	steps  slab[hcl.Traverser]
	blocks slab[hclsyntax.Block]
	bodies slab[hclsyntax.Body]
	// scratch collects a list's elements before they get their own slice.
	scratch []hclsyntax.Expression
}

// slab hands out elements of large arrays, which live as long as any of
// their elements does (here: as long as the configuration).
type slab[T any] struct{ free []T }

func (s *slab[T]) one() *T { return &s.many(1)[0] }

// many returns n zero elements, capacity n (an append copies).
func (s *slab[T]) many(n int) []T {
	if n > len(s.free) {
		if n > 64 {
			return make([]T, n)
		}
		s.free = make([]T, 256)
	}
	out := s.free[:n:n]
	s.free = s.free[n:]
	return out
}

func (p *fastParser) pos() hcl.Pos { return hcl.Pos{Line: p.line, Column: p.col, Byte: p.i} }

func (p *fastParser) rng(from, to hcl.Pos) hcl.Range {
	return hcl.Range{Filename: p.filename, Start: from, End: to}
}

func (p *fastParser) eof() bool { return p.i >= len(p.src) }

// skipSpaces skips ' ' (a tab is an error in HCL: hclsyntax reports it).
func (p *fastParser) skipSpaces() {
	for p.i < len(p.src) && p.src[p.i] == ' ' {
		p.i++
		p.col++
	}
}

func (p *fastParser) newline() {
	p.i++
	p.line++
	p.col = 1
}

func isIdentStart(c byte) bool { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '_' }

func isIdentByte(c byte) bool { return isIdentStart(c) || c >= '0' && c <= '9' || c == '-' }

// ident reads an ASCII identifier; ok is false if none starts here, or if
// it runs into a byte that could continue a Unicode identifier.
func (p *fastParser) ident() (string, hcl.Range, bool) {
	if p.eof() || !isIdentStart(p.src[p.i]) {
		return "", hcl.Range{}, false
	}
	start := p.pos()
	j := p.i
	for j < len(p.src) && isIdentByte(p.src[j]) {
		j++
	}
	if j < len(p.src) && p.src[j] >= 0x80 {
		return "", hcl.Range{}, false
	}
	name := p.text[p.i:j]
	if strings.Count(name, "-") >= MaxChain-2 {
		p.dashes = true
	}
	p.col += j - p.i
	p.i = j
	return name, p.rng(start, p.pos()), true
}

// quoted reads a quoted string of printable ASCII without escapes or
// template sequences: its value, the range with the quotes and the range
// of the text between them.
func (p *fastParser) quoted() (string, hcl.Range, hcl.Range, bool) {
	if p.eof() || p.src[p.i] != '"' {
		return "", hcl.Range{}, hcl.Range{}, false
	}
	open := p.pos()
	j := p.i + 1
	for ; j < len(p.src); j++ {
		c := p.src[j]
		if c == '"' {
			break
		}
		if c < 0x20 || c > 0x7e || c == '\\' {
			return "", hcl.Range{}, hcl.Range{}, false
		}
		if (c == '$' || c == '%') && j+1 < len(p.src) && p.src[j+1] == '{' {
			return "", hcl.Range{}, hcl.Range{}, false // a template sequence or its escape
		}
	}
	if j >= len(p.src) {
		return "", hcl.Range{}, hcl.Range{}, false
	}
	s := p.text[p.i+1 : j]
	textStart := hcl.Pos{Line: open.Line, Column: open.Column + 1, Byte: open.Byte + 1}
	p.col += j + 1 - p.i
	p.i = j + 1
	textEnd := hcl.Pos{Line: p.line, Column: p.col - 1, Byte: p.i - 1}
	if s == "" {
		// hclsyntax places an empty string's text after the closing quote.
		textStart, textEnd = p.pos(), p.pos()
	}
	return s, p.rng(open, p.pos()), p.rng(textStart, textEnd), true
}

// punct reads the byte c as a one-column token.
func (p *fastParser) punct(c byte) (hcl.Range, bool) {
	if p.eof() || p.src[p.i] != c {
		return hcl.Range{}, false
	}
	start := p.pos()
	p.i++
	p.col++
	return p.rng(start, p.pos()), true
}

// fastParse reads src as top-level blocks, building those in the fast
// shape and locating the others; ok=false when hclsyntax must parse the
// whole file. It calls nothing in hclsyntax, so it is safe on any input.
func fastParse(src []byte, filename string) (fastParsed, bool) {
	if bytes.IndexByte(src, '\r') >= 0 || bytes.IndexByte(src, '\t') >= 0 {
		return fastParsed{}, false
	}
	var slow []slowSpan
	p := &fastParser{src: src, text: string(src), filename: filename, line: 1, col: 1}
	body := &hclsyntax.Body{Attributes: hclsyntax.Attributes{}, Blocks: hclsyntax.Blocks{}}
	var first *hcl.Pos // where the first token (not a /* */ comment) starts
	mark := func() {
		if first == nil {
			pos := p.pos()
			first = &pos
		}
	}
	for {
		p.skipSpaces()
		if p.eof() {
			break
		}
		switch c := p.src[p.i]; {
		case c == '\n':
			mark()
			p.newline()
		case c == '#' || c == '/' && p.i+1 < len(p.src) && p.src[p.i+1] == '/':
			mark()
			end := bytes.IndexByte(p.src[p.i:], '\n')
			if end < 0 {
				return fastParsed{}, false // a comment at the end: its columns need graphemes
			}
			p.i += end
			p.newline()
		case c == '/' && p.i+1 < len(p.src) && p.src[p.i+1] == '*':
			end := bytes.Index(p.src[p.i+2:], []byte("*/"))
			if end < 0 {
				return fastParsed{}, false
			}
			for k := p.i; k < p.i+2+end+2; k++ {
				switch {
				case p.src[k] == '\n':
					p.line++
					p.col = 1
				case p.src[k] >= 0x80:
					return fastParsed{}, false
				default:
					p.col++
				}
			}
			p.i += 2 + end + 2
		case isIdentStart(c):
			mark()
			start := p.i
			startPos := p.pos()
			b, ok := p.block()
			if !ok {
				// hclsyntax is to parse this block alone.
				end, ok := blockEnd(src, start)
				if !ok {
					return fastParsed{}, false
				}
				slow = append(slow, slowSpan{index: len(body.Blocks), start: start, end: end, pos: startPos})
				p.i, p.line, p.col = startPos.Byte, startPos.Line, startPos.Column
				for ; p.i < end; p.i++ {
					switch c := src[p.i]; {
					case c == '\n':
						p.line, p.col = p.line+1, 1
					case c < 0x80:
						p.col++
					default:
						return fastParsed{}, false // columns after it need graphemes
					}
				}
			}
			body.Blocks = append(body.Blocks, b)
			// A block ends its line (hclsyntax: "Missing newline after
			// block definition").
			p.skipSpaces()
			if !p.eof() && p.src[p.i] != '\n' && p.src[p.i] != '#' && !(p.src[p.i] == '/' && p.i+1 < len(p.src) && p.src[p.i+1] == '/') {
				return fastParsed{}, false
			}
		default:
			return fastParsed{}, false
		}
	}
	eof := p.rng(p.pos(), p.pos())
	if first == nil {
		first = &eof.Start
	}
	body.SrcRange = p.rng(*first, eof.End)
	body.EndRange = eof
	return fastParsed{body: body, slow: slow, dashes: p.dashes}, true
}

// slowBlock parses src, one block starting at start, with hclsyntax; ok is
// false unless that is exactly one block without a diagnostic.
func slowBlock(src []byte, filename string, start hcl.Pos) (*hclsyntax.Block, bool) {
	f, diags := hclsyntax.ParseConfig(src, filename, start)
	if len(diags) > 0 {
		return nil, false
	}
	b := f.Body.(*hclsyntax.Body)
	if len(b.Attributes) != 0 || len(b.Blocks) != 1 || b.Blocks[0].CloseBraceRange.End.Byte != start.Byte+len(src) {
		return nil, false
	}
	return b.Blocks[0], true
}

// blockEnd finds the byte after the closing brace of the top-level block
// starting at start, following HCL's lexical structure: quoted strings
// (with escapes and ${ } / %{ } holding expressions), comments and
// brackets. ok is false for a heredoc or anything left open; hclsyntax
// then parses the whole file.
func blockEnd(src []byte, start int) (int, bool) {
	const quoted, interp = '"', 'i'
	var stack []byte
	for i := start; i < len(src); i++ {
		c := src[i]
		top := byte(0)
		if len(stack) > 0 {
			top = stack[len(stack)-1]
		}
		if top == quoted {
			switch {
			case c == '\\':
				i++
			case c == '"':
				stack = stack[:len(stack)-1]
			case c == '\n':
				return 0, false
			case (c == '$' || c == '%') && i+1 < len(src) && src[i+1] == '{':
				if i > 0 && src[i-1] == c { // $${ and %%{ are literal
					break
				}
				stack = append(stack, interp)
				i++
			}
			continue
		}
		switch {
		case c == '"':
			stack = append(stack, quoted)
		case c == '#' || c == '/' && i+1 < len(src) && src[i+1] == '/':
			for i+1 < len(src) && src[i+1] != '\n' {
				i++
			}
		case c == '/' && i+1 < len(src) && src[i+1] == '*':
			end := bytes.Index(src[i+2:], []byte("*/"))
			if end < 0 {
				return 0, false
			}
			i += 2 + end + 1
		case c == '<' && i+1 < len(src) && src[i+1] == '<':
			return 0, false // a heredoc, perhaps
		case c == '{' || c == '[' || c == '(':
			stack = append(stack, c)
		case c == '}' || c == ']' || c == ')':
			want := map[byte]byte{'}': '{', ']': '[', ')': '('}[c]
			if top != want && !(c == '}' && top == interp) {
				return 0, false
			}
			stack = stack[:len(stack)-1]
			if len(stack) == 0 {
				return i + 1, true
			}
		}
	}
	return 0, false
}

// block reads a block in the fast shape; ok=false leaves the position
// undefined (the caller starts over from the block's start).
func (p *fastParser) block() (*hclsyntax.Block, bool) {
	typ, typeRange, ok := p.ident()
	if !ok {
		return nil, false
	}
	b := p.blocks.one()
	b.Type, b.TypeRange = typ, typeRange
	for {
		p.skipSpaces()
		if p.eof() {
			return nil, false
		}
		if p.src[p.i] == '{' {
			break
		}
		var label string
		var r hcl.Range
		if p.src[p.i] == '"' {
			label, r, _, ok = p.quoted()
		} else {
			label, r, ok = p.ident()
		}
		if !ok {
			return nil, false
		}
		b.Labels = append(b.Labels, label)
		b.LabelRanges = append(b.LabelRanges, r)
	}
	b.OpenBraceRange, _ = p.punct('{')
	p.skipSpaces()
	if p.eof() || p.src[p.i] != '\n' {
		return nil, false // a one-line block, or a comment
	}
	body := p.bodies.one()
	body.Attributes, body.Blocks = make(hclsyntax.Attributes, 8), hclsyntax.Blocks{}
	for {
		p.skipSpaces()
		if p.eof() {
			return nil, false
		}
		c := p.src[p.i]
		if c == '\n' {
			p.newline()
			continue
		}
		if c == '}' {
			b.CloseBraceRange, _ = p.punct('}')
			break
		}
		name, nameRange, ok := p.ident()
		if !ok {
			return nil, false
		}
		if _, dup := body.Attributes[name]; dup {
			return nil, false
		}
		p.skipSpaces()
		eq, ok := p.punct('=')
		if !ok || !p.eof() && p.src[p.i] == '=' { // not ==
			return nil, false
		}
		p.skipSpaces()
		expr, ok := p.expr()
		if !ok {
			return nil, false
		}
		p.skipSpaces()
		if p.eof() || p.src[p.i] != '\n' {
			return nil, false
		}
		a := p.attrs.one()
		*a = hclsyntax.Attribute{
			Name: name, Expr: expr,
			SrcRange:    hcl.RangeBetween(nameRange, expr.Range()),
			NameRange:   nameRange,
			EqualsRange: eq,
		}
		body.Attributes[name] = a
	}
	body.SrcRange = hcl.RangeBetween(b.OpenBraceRange, b.CloseBraceRange)
	body.EndRange = hcl.Range{Filename: p.filename, Start: b.CloseBraceRange.End, End: b.CloseBraceRange.End}
	b.Body = body
	return b, true
}

// expr reads a value in the fast shape: a plain quoted string, a list of
// values, true, false, null or a reference.
func (p *fastParser) expr() (hclsyntax.Expression, bool) {
	if p.eof() {
		return nil, false
	}
	switch c := p.src[p.i]; {
	case c == '"':
		s, r, text, ok := p.quoted()
		if !ok {
			return nil, false
		}
		lit := p.lits.one()
		lit.Val, lit.SrcRange = cty.StringVal(s), text
		t := p.tmpls.one()
		t.Parts, t.SrcRange = p.exprs.many(1), r
		t.Parts[0] = lit
		return t, true
	case c == '[':
		open, _ := p.punct('[')
		exprs := p.scratch[:0] // lists do not nest here
		for {
			p.skipNewlines()
			if p.eof() {
				return nil, false
			}
			if p.src[p.i] == ']' {
				break
			}
			if p.src[p.i] == '[' {
				return nil, false // lists of lists: not the fast shape (it nests two deep at most)
			}
			e, ok := p.expr()
			if !ok {
				return nil, false
			}
			exprs = append(exprs, e)
			p.skipNewlines()
			if p.eof() {
				return nil, false
			}
			if p.src[p.i] == ',' {
				p.i++
				p.col++
				continue
			}
			if p.src[p.i] != ']' {
				return nil, false
			}
		}
		p.scratch = exprs
		closing, _ := p.punct(']')
		t := p.tuples.one()
		t.Exprs, t.SrcRange, t.OpenRange = exprs, hcl.RangeBetween(open, closing), open
		t.Exprs = nil
		if len(exprs) > 0 {
			t.Exprs = p.exprs.many(len(exprs))
			copy(t.Exprs, exprs)
		}
		return t, true
	case isIdentStart(c):
		name, r, ok := p.ident()
		if !ok {
			return nil, false
		}
		var v cty.Value
		switch name {
		case "true":
			v = cty.True
		case "false":
			v = cty.False
		case "null":
			v = cty.NullVal(cty.DynamicPseudoType)
		}
		if v != cty.NilVal {
			if !p.eof() && p.src[p.i] == '.' {
				return nil, false
			}
			lit := p.lits.one()
			lit.Val, lit.SrcRange = v, r
			return lit, true
		}
		var buf [4]hcl.Traverser
		trav := append(buf[:0], hcl.TraverseRoot{Name: name, SrcRange: r})
		for !p.eof() && p.src[p.i] == '.' {
			dot, _ := p.punct('.')
			attr, ar, ok := p.ident()
			if !ok {
				return nil, false
			}
			trav = append(trav, hcl.TraverseAttr{Name: attr, SrcRange: hcl.RangeBetween(dot, ar)})
		}
		if !p.eof() && (p.src[p.i] == '[' || p.src[p.i] == '(') {
			return nil, false
		}
		e := p.travs.one()
		e.Traversal = p.steps.many(len(trav))
		copy(e.Traversal, trav)
		e.SrcRange = hcl.RangeBetween(trav[0].SourceRange(), trav[len(trav)-1].SourceRange())
		return e, true
	}
	return nil, false
}

// skipNewlines skips spaces and newlines (inside brackets, where newlines
// do not end the attribute).
func (p *fastParser) skipNewlines() {
	for !p.eof() {
		switch p.src[p.i] {
		case ' ':
			p.i++
			p.col++
		case '\n':
			p.newline()
		default:
			return
		}
	}
}
