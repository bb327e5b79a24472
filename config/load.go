package config

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/convert"
)

// LoadOptions are the inputs of Load besides the files.
type LoadOptions struct {
	// PlanTime is the value of plantimestamp(); zero means the current time.
	PlanTime time.Time
	// LookupEnv reads variables for env() when a target is opened
	// (Secret.Value); nil means os.LookupEnv. Tests set it so that they
	// need not touch the process environment.
	LookupEnv func(name string) (string, bool)
	// Context, when set, stops the load early once it is done (a signal):
	// checked between files and between blocks. The result is then an
	// error diagnostic saying the load was interrupted.
	Context context.Context
}

// interrupted returns the diagnostic for a cancelled load, or nil.
func (o LoadOptions) interrupted() *hcl.Diagnostic {
	if o.Context == nil || o.Context.Err() == nil {
		return nil
	}
	return &hcl.Diagnostic{
		Severity: hcl.DiagError,
		Summary:  "Loading was interrupted",
		Detail:   fmt.Sprintf("The configuration was not fully read: %v.", context.Cause(o.Context)),
	}
}

// Load reads every *.hcl file in dir (not subdirectories; names starting
// with a dot are skipped) and decodes the repository. The returned Config is
// never nil: its Files let the caller render the diagnostics.
func Load(dir string, opts LoadOptions) (*Config, hcl.Diagnostics) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		cfg := &Config{Dir: dir, Files: map[string]*hcl.File{}}
		return cfg, hcl.Diagnostics{{
			Severity: hcl.DiagError,
			Summary:  "Cannot read the configuration directory",
			Detail:   fmt.Sprintf("read %s: %v", dir, unwrapPathErr(err)),
		}}
	}
	files := map[string][]byte{}
	var diags hcl.Diagnostics
	for _, e := range entries {
		name := e.Name()
		if e.IsDir() || !strings.HasSuffix(name, ".hcl") || strings.HasPrefix(name, ".") {
			continue
		}
		if d := opts.interrupted(); d != nil {
			return &Config{Dir: dir, Files: map[string]*hcl.File{}}, append(diags, d)
		}
		b, d := readConfigFile(filepath.Join(dir, name))
		if d != nil {
			diags = append(diags, d)
			continue
		}
		files[name] = b
	}
	if len(files) == 0 && !diags.HasErrors() {
		return &Config{Dir: dir, Files: map[string]*hcl.File{}}, hcl.Diagnostics{{
			Severity: hcl.DiagError,
			Summary:  "No configuration files",
			Detail:   fmt.Sprintf("%s contains no *.hcl files; is this the policy repository? (use -C DIR)", dir),
		}}
	}
	cfg, more := LoadFiles(dir, files, opts)
	return cfg, append(diags, more...)
}

// readConfigFile reads one *.hcl file: a regular file (a symlink to one is
// followed) of at most MaxConfigFileSize bytes. A fifo or device named
// *.hcl is refused rather than read forever.
func readConfigFile(p string) ([]byte, *hcl.Diagnostic) {
	fail := func(err error) ([]byte, *hcl.Diagnostic) {
		return nil, &hcl.Diagnostic{
			Severity: hcl.DiagError,
			Summary:  "Cannot read a configuration file",
			Detail:   fmt.Sprintf("read %s: %v", p, unwrapPathErr(err)),
		}
	}
	fi, err := os.Stat(p)
	if err != nil {
		return fail(err)
	}
	if !fi.Mode().IsRegular() {
		return fail(fmt.Errorf("not a regular file (%s)", fileKind(fi.Mode())))
	}
	if fi.Size() > MaxConfigFileSize {
		return nil, tooLarge(p, fi.Size())
	}
	f, err := os.Open(p)
	if err != nil {
		return fail(err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, MaxConfigFileSize+1))
	if err != nil {
		return fail(err)
	}
	if len(b) > MaxConfigFileSize {
		return nil, tooLarge(p, int64(len(b)))
	}
	return b, nil
}

// LoadFiles decodes the given files (name -> source; names relative to dir,
// which is where file() reads and what diagnostics are prefixed with). The
// returned Config is never nil. All problems are collected in one pass.
func LoadFiles(dir string, files map[string][]byte, opts LoadOptions) (*Config, hcl.Diagnostics) {
	l := &loader{
		cfg:       &Config{Dir: dir, Files: map[string]*hcl.File{}},
		targets:   map[string]*targetEntry{},
		groups:    map[string]*declared{},
		rights:    map[string]*declared{},
		sudoRoles: map[string]*declared{},
		accounts:  map[string]*declared{},
		rotating:  map[string]bool{},
		actors:    map[string]*declared{},
		policies:  map[string]*declared{},
		grants:    map[string]*declared{},
		managed:   map[string]string{},
	}
	l.dir, l.opts = dir, opts
	l.ctx = evalContext(dir, opts, deferredEnvFunc())
	names := make([]string, 0, len(files))
	for name := range files {
		names = append(names, name)
	}
	sort.Strings(names)
	l.cfg.Digest = digest(names, files)

	// Parsing is most of a load; files parse independently, so in parallel.
	results := parseEach(len(names), func(i int) parsed {
		filename := names[i]
		if dir != "" {
			filename = filepath.Join(dir, filename)
		}
		src := files[names[i]]
		// Hostile input is refused before the parser, which would
		// take seconds or overflow the stack on it (parseFile runs
		// checkNesting where it must).
		if len(src) > MaxConfigFileSize {
			return parsed{diags: hcl.Diagnostics{tooLarge(filename, int64(len(src)))}}
		}
		if opts.interrupted() != nil {
			return parsed{}
		}
		f, diags := parseFileOnce(src, filename, false)
		r := parsed{file: f, diags: diags}
		if f == nil || diags.HasErrors() {
			return r
		}
		// The file's blocks, and the grants decoded here too: a grant's
		// values depend on no other block, and there may be 100,000.
		content, cdiags := f.Body.Content(rootSchema)
		r.blocks, r.contentDiags = content.Blocks, cdiags
		r.grants = make([]*grantDecoded, len(content.Blocks))
		for i, b := range content.Blocks {
			if b.Type == "grant" && len(b.Labels) == 1 {
				r.grants[i] = decodeGrant(b, l.ctx)
			}
		}
		return r
	})
	if d := opts.interrupted(); d != nil {
		return l.cfg, hcl.Diagnostics{d}
	}

	var blocks []*hcl.Block
	var decodedGrants []*grantDecoded // by index in blocks
	for i, name := range names {
		filename := name
		if dir != "" {
			filename = filepath.Join(dir, name)
		}
		r := results[i]
		l.diags = append(l.diags, r.diags...)
		if r.file == nil {
			continue
		}
		l.cfg.Files[filename] = r.file
		// A file that does not parse yields no blocks (the parse above
		// took none): half a file would give misleading "unknown
		// reference" errors elsewhere.
		l.diags = append(l.diags, r.contentDiags...)
		blocks = append(blocks, r.blocks...)
		decodedGrants = append(decodedGrants, r.grants...)
	}

	// Declarations first, then what refers to them, so a reference can be
	// resolved whatever the file or the order it is written in.
	n := 0
	for _, kind := range []string{"target", "group", "right", "sudo_role", "account", "actor", "policy", "grant", "notify"} {
		for i, b := range blocks {
			if b.Type != kind {
				continue
			}
			if n++; n%256 == 0 {
				if d := opts.interrupted(); d != nil {
					return l.cfg, append(l.diags, d)
				}
			}
			switch kind {
			case "target":
				l.target(b)
			case "group":
				l.group(b)
			case "right", "sudo_role":
				l.managedSet(b, kind)
			case "account":
				l.account(b)
			case "actor":
				l.actor(b)
			case "policy":
				l.policy(b)
			case "grant":
				l.grant(b, decodedGrants[i])
			case "notify":
				l.notify(b)
			}
		}
	}
	_, stateDiags := decodeStateBlocks(dir, opts, blocks, l.ctx)
	l.diags = append(l.diags, stateDiags...)
	l.diags = dropEchoes(l.diags)
	scrub(l.diags, l.secrets)
	sortDiags(l.diags)
	return l.cfg, l.diags
}

// dropEchoes removes gohcl's "value must be known" errors, which only repeat
// a failed function call or a forbidden reference reported within the same
// expression, and says where references are allowed. Linear in the number
// of diagnostics (plus a sort), however many there are.
func dropEchoes(diags hcl.Diagnostics) hcl.Diagnostics {
	starts := map[string][]int{} // file -> start bytes of error subjects, sorted
	for _, d := range diags {
		if d.Severity == hcl.DiagError && d.Subject != nil {
			starts[d.Subject.Filename] = append(starts[d.Subject.Filename], d.Subject.Start.Byte)
		}
	}
	for _, s := range starts {
		sort.Ints(s)
	}
	// errorsIn counts error subjects starting in [from, to].
	errorsIn := func(file string, from, to int) int {
		s := starts[file]
		return sort.SearchInts(s, to+1) - sort.SearchInts(s, from)
	}
	out := diags[:0]
	for _, d := range diags {
		if d.Summary == "Unsuitable value type" && strings.Contains(d.Detail, "value must be known") && d.Subject != nil {
			from, to := d.Subject.Start.Byte, d.Subject.Start.Byte
			if d.Context != nil && d.Context.Filename == d.Subject.Filename {
				from, to = min(from, d.Context.Start.Byte), max(to, d.Context.End.Byte-1)
			}
			if errorsIn(d.Subject.Filename, from, to) > 1 { // another besides this one
				continue
			}
		}
		if d.Summary == "Variables not allowed" {
			d.Detail = "A reference may appear only as the target of a group, right, sudo_role or account, in a policy's groups, rights, sudo_roles and accounts, and as a grant's policy; here a value is expected."
		}
		out = append(out, d)
	}
	return out
}

// minScrubLen is the shortest value scrubbed from diagnostics: replacing
// every "a" would garble messages, and no real secret is that short.
const minScrubLen = 4

// scrub replaces every literal password in the diagnostics' text, in one
// pass per text however many there are.
func scrub(diags hcl.Diagnostics, secrets []string) {
	var pairs []string
	for _, s := range secrets {
		if len(s) >= minScrubLen {
			pairs = append(pairs, s, redacted)
		}
	}
	if len(pairs) == 0 {
		return
	}
	r := strings.NewReplacer(pairs...)
	for _, d := range diags {
		d.Summary = r.Replace(d.Summary)
		d.Detail = r.Replace(d.Detail)
	}
}

// sortDiags orders diagnostics by file and position (those without a
// position first), so output is stable and reads top to bottom.
func sortDiags(diags hcl.Diagnostics) {
	sort.SliceStable(diags, func(i, j int) bool {
		a, b := diags[i].Subject, diags[j].Subject
		switch {
		case a == nil || b == nil:
			return a == nil && b != nil
		case a.Filename != b.Filename:
			return a.Filename < b.Filename
		default:
			return a.Start.Byte < b.Start.Byte
		}
	})
}

var rootSchema = &hcl.BodySchema{Blocks: []hcl.BlockHeaderSchema{
	{Type: "target", LabelNames: []string{"kind", "name"}},
	{Type: "group", LabelNames: []string{"name"}},
	{Type: "right", LabelNames: []string{"name"}},
	{Type: "sudo_role", LabelNames: []string{"name"}},
	{Type: "account", LabelNames: []string{"name"}},
	{Type: "actor", LabelNames: []string{"name"}},
	{Type: "policy", LabelNames: []string{"name"}},
	{Type: "grant", LabelNames: []string{"name"}},
	{Type: "notify", LabelNames: []string{"kind", "name"}},
	{Type: "state", LabelNames: []string{"kind"}}, // config/state.go
}}

// digest is a hex SHA-256 over the sorted (name, bytes) pairs, each length-
// prefixed so that no two different repositories hash alike.
func digest(names []string, files map[string][]byte) string {
	h := sha256.New()
	var n [8]byte
	for _, name := range names {
		binary.BigEndian.PutUint64(n[:], uint64(len(name)))
		h.Write(n[:])
		h.Write([]byte(name))
		binary.BigEndian.PutUint64(n[:], uint64(len(files[name])))
		h.Write(n[:])
		h.Write(files[name])
	}
	return hex.EncodeToString(h.Sum(nil))
}

// declared records a declaration for duplicate and reference checks. A
// broken one (it had errors) is still known, so references to it raise no
// second error.
type declared struct {
	decl   hcl.Range
	broken bool
	policy *Policy
}

type targetEntry struct {
	declared
	kind      string
	hosts     []string  // multi-host targets
	instances []*Target // one, or one per host
}

type loader struct {
	cfg   *Config
	ctx   *hcl.EvalContext
	diags hcl.Diagnostics

	targets   map[string]*targetEntry // "kind.name"
	groups    map[string]*declared    // name
	rights    map[string]*declared
	sudoRoles map[string]*declared
	accounts  map[string]*declared
	rotating  map[string]bool // account base address -> rotate_password
	actors    map[string]*declared
	policies  map[string]*declared
	grants    map[string]*declared
	managed   map[string]string // target address + group identity -> group address
	secrets   []string          // literal passwords, never to appear in a diagnostic
	dir       string
	opts      LoadOptions
}

func (l *loader) errorf(rng *hcl.Range, summary, format string, args ...any) {
	l.diags = append(l.diags, &hcl.Diagnostic{
		Severity: hcl.DiagError, Summary: summary, Detail: fmt.Sprintf(format, args...), Subject: rng,
	})
}

// checkName validates a block label used in references; prev is the range
// of an earlier declaration of the same address, if any. False means the
// block is not to be decoded (reported).
func (l *loader) checkName(b *hcl.Block, labelIdx int, prev *declared, addr string) bool {
	label := b.Labels[labelIdx]
	if !validIdentifier(label) {
		l.errorf(b.LabelRanges[labelIdx].Ptr(), "Invalid name",
			"%q cannot be used as a name: a name starts with a letter and holds letters, digits, underscores and dashes.", label)
		return false
	}
	if prev != nil {
		l.errorf(b.DefRange.Ptr(), "Duplicate "+b.Type,
			"%s is already declared at %s; names must be unique.", addr, prev.decl)
		return false
	}
	return true
}

// validIdentifier is hclsyntax.ValidIdentifier with a fast path for ASCII
// names (that function runs the HCL lexer on every call, a measurable part
// of loading 10,000 grants).
func validIdentifier(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c == '_':
		case i > 0 && (c >= '0' && c <= '9' || c == '-'):
		case c >= 0x80:
			return hclsyntax.ValidIdentifier(s)
		default:
			return false
		}
	}
	return true
}

// attrs returns the block's attribute ranges (native syntax only).
func attrsOf(b *hcl.Block) blockAttrs {
	at := blockAttrs{decl: b.DefRange}
	if sb, ok := b.Body.(*hclsyntax.Body); ok {
		at.ranges = Ranges{body: sb}
	}
	return at
}

// attrExpr returns the attribute's expression, or nil when absent.
func attrExpr(b *hcl.Block, name string) hclsyntax.Expression {
	if sb, ok := b.Body.(*hclsyntax.Body); ok {
		if a, ok := sb.Attributes[name]; ok {
			return a.Expr
		}
	}
	return nil
}

func (l *loader) target(b *hcl.Block) {
	kind, name := b.Labels[0], b.Labels[1]
	base := "target." + kind + "." + name
	known := false
	for _, k := range targetKinds {
		known = known || k == kind
	}
	if !known {
		l.errorf(b.LabelRanges[0].Ptr(), "Unknown target kind",
			"%q is not a target kind%s; the kinds are %s.", kind, suggest(kind, targetKinds), strings.Join(targetKinds, ", "))
		// Still declare it (broken) so that references to it raise no second error.
		if _, dup := l.targets[kind+"."+name]; !dup {
			l.targets[kind+"."+name] = &targetEntry{declared: declared{decl: b.DefRange, broken: true}, kind: kind}
		}
		return
	}
	var prev *declared
	if e, dup := l.targets[kind+"."+name]; dup {
		prev = &e.declared
	}
	if !l.checkName(b, 1, prev, base) {
		return
	}
	e := &targetEntry{declared: declared{decl: b.DefRange}, kind: kind}
	l.targets[kind+"."+name] = e

	at := attrsOf(b)
	at.secret = l.secret
	dt, diags, _ := decodeTargetBody(kind, guardBody(b.Body, ""), l.ctx, at)
	l.diags = append(l.diags, diags...)
	if diags.HasErrors() {
		e.broken = true
		return
	}
	if dt.Hosts == nil {
		t := &Target{Kind: kind, Name: name, Addr: base, LDAP: dt.LDAP, LDIF: dt.LDIF, WinRM: dt.WinRM, DeclRange: b.DefRange}
		e.instances = []*Target{t}
		l.cfg.Targets = append(l.cfg.Targets, t)
		return
	}
	e.hosts = dt.Hosts
	for _, h := range dt.Hosts {
		t := &Target{Kind: kind, Name: name, Key: h, Addr: instanceAddr(base, h), DeclRange: b.DefRange}
		if dt.WinRM != nil {
			w := *dt.WinRM
			w.Address = h
			t.WinRM = &w
		}
		e.instances = append(e.instances, t)
		l.cfg.Targets = append(l.cfg.Targets, t)
	}
}

// secret decodes a secret attribute (password): the one place a value
// from env() may go. A literal becomes a Secret at once; an expression that
// uses env() is kept unevaluated in the Secret and evaluated when a target
// is opened (Secret.Value), so loading reads no environment variable.
func (l *loader) secret(name string, expr hcl.Expression) (Secret, hcl.Diagnostics) {
	s, diags := decodeSecret(name, expr, l.ctx, l.dir, l.opts)
	if diags.HasErrors() {
		return s, diags
	}
	if s.d == nil {
		l.secrets = append(l.secrets, s.Reveal())
	}
	return s, nil
}

// decodeSecret is loader.secret for code without a loader (the state block,
// read alone by LoadState). ctx must evaluate env() as deferred.
func decodeSecret(name string, expr hcl.Expression, ctx *hcl.EvalContext, dir string, opts LoadOptions) (Secret, hcl.Diagnostics) {
	v, diags := expr.Value(ctx)
	if diags.HasErrors() {
		return Secret{}, diags
	}
	v, _ = v.UnmarkDeep()
	sv, err := convert.Convert(v, cty.String)
	if err != nil || sv.IsNull() {
		// The message must not show the value: say only what is expected.
		return Secret{}, hcl.Diagnostics{{
			Severity: hcl.DiagError,
			Summary:  "Invalid " + name,
			Detail:   fmt.Sprintf("%s must be a string, such as env(\"JITFORM_CORP_PASSWORD\").", name),
			Subject:  expr.Range().Ptr(),
		}}
	}
	if !sv.IsKnown() {
		return Secret{d: &deferredSecret{expr: hcl.UnwrapExpression(expr), dir: dir, opts: opts}}, nil
	}
	return NewSecret(sv.AsString()), nil
}

// secretOf returns the password of a kind's settings, or nil.
func secretOf(settings any) *Secret {
	switch s := settings.(type) {
	case *LDAPTarget:
		if s != nil {
			return &s.Password
		}
	case *WinRMTarget:
		if s != nil {
			return &s.Password
		}
	}
	return nil
}

// instanceAddr is base["key"], the address of one instance.
func instanceAddr(base, key string) string { return fmt.Sprintf("%s[%q]", base, key) }

// ref is a resolved reference: a root (target, group, policy), its names,
// and an optional instance key.
type ref struct {
	root   string
	names  []string
	key    string
	hasKey bool
	rng    hcl.Range
}

var refShapes = map[string]string{
	"target":    "target.KIND.NAME",
	"group":     "group.NAME",
	"right":     "right.NAME",
	"sudo_role": "sudo_role.NAME",
	"account":   "account.NAME",
	"policy":    "policy.NAME",
	"actor":     "actor.NAME",
	"grant":     "grant.NAME",
}

// parseRef reads expr as a reference to a `want` block; it reports what is
// wrong and returns ok=false otherwise.
func (l *loader) parseRef(expr hcl.Expression, attr, want string, allowKey bool) (ref, bool) {
	r := ref{rng: expr.Range()}
	trav, diags := hcl.AbsTraversalForExpr(expr)
	if diags.HasErrors() {
		l.errorf(r.rng.Ptr(), "Invalid reference", "%s must be a reference such as %s, without quotes.", attr, refShapes[want])
		return r, false
	}
	r.root = trav.RootName()
	if _, known := refShapes[r.root]; !known {
		l.errorf(r.rng.Ptr(), "Invalid reference", "%s must refer to a %s (%s); %q is not a kind of block%s.",
			attr, want, refShapes[want], r.root, suggest(r.root, []string{"target", "group", "right", "sudo_role", "account", "policy"}))
		return r, false
	}
	if r.root != want {
		l.errorf(r.rng.Ptr(), "Reference of the wrong kind", "%s must refer to a %s (%s), not a %s.", attr, want, refShapes[want], r.root)
		return r, false
	}
	nNames := 1
	if want == "target" {
		nNames = 2
	}
	for i, step := range trav[1:] {
		switch s := step.(type) {
		case hcl.TraverseAttr:
			if len(r.names) == nNames {
				l.errorf(r.rng.Ptr(), "Invalid reference", "%s must be written %s; .%s is one name too many.", attr, refShapes[want], s.Name)
				return r, false
			}
			r.names = append(r.names, s.Name)
		case hcl.TraverseIndex:
			if !allowKey || len(r.names) != nNames || i != len(trav)-2 || !s.Key.Type().Equals(cty.String) || s.Key.IsNull() {
				l.errorf(r.rng.Ptr(), "Invalid reference", "%s must be written %s%s.", attr, refShapes[want], map[bool]string{true: ` or ` + refShapes[want] + `["host"]`}[allowKey])
				return r, false
			}
			r.key, r.hasKey = s.Key.AsString(), true
		default:
			l.errorf(r.rng.Ptr(), "Invalid reference", "%s must be written %s.", attr, refShapes[want])
			return r, false
		}
	}
	if len(r.names) != nNames {
		l.errorf(r.rng.Ptr(), "Invalid reference", "%s must be written %s.", attr, refShapes[want])
		return r, false
	}
	return r, true
}

// undeclared reports a reference to nothing, with the closest name.
func (l *loader) undeclared(r ref, addr string, candidates []string) {
	l.errorf(r.rng.Ptr(), "Reference to an undeclared "+r.root, "No %s is declared%s.", addr, suggest(addr, candidates))
}
