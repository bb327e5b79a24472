package config

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
)

// LoadOptions are the inputs of Load besides the files.
type LoadOptions struct {
	// PlanTime is the value of plantimestamp(); zero means the current time.
	PlanTime time.Time
	// LookupEnv reads variables for env(); nil means os.LookupEnv. Tests
	// set it so that they need not touch the process environment.
	LookupEnv func(name string) (string, bool)
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
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			diags = append(diags, &hcl.Diagnostic{
				Severity: hcl.DiagError,
				Summary:  "Cannot read a configuration file",
				Detail:   fmt.Sprintf("read %s: %v", filepath.Join(dir, name), unwrapPathErr(err)),
			})
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
	l.ctx = evalContext(dir, opts, func(v string) { l.secrets = append(l.secrets, v) })
	names := make([]string, 0, len(files))
	for name := range files {
		names = append(names, name)
	}
	sort.Strings(names)
	l.cfg.Digest = digest(names, files)

	// Parsing is most of a load; files parse independently, so in parallel.
	type parsed struct {
		file  *hcl.File
		diags hcl.Diagnostics
	}
	results := make([]parsed, len(names))
	var wg sync.WaitGroup
	sem := make(chan struct{}, runtime.GOMAXPROCS(0))
	for i, name := range names {
		filename := name
		if dir != "" {
			filename = filepath.Join(dir, name)
		}
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			f, diags := hclsyntax.ParseConfig(files[name], filename, hcl.InitialPos)
			results[i] = parsed{f, diags}
		})
	}
	wg.Wait()

	var blocks []*hcl.Block
	for i, name := range names {
		filename := name
		if dir != "" {
			filename = filepath.Join(dir, name)
		}
		f, diags := results[i].file, results[i].diags
		l.diags = append(l.diags, diags...)
		if f == nil {
			continue
		}
		l.cfg.Files[filename] = f
		if diags.HasErrors() {
			// A file that does not parse yields no blocks: half a file
			// would give misleading "unknown reference" errors elsewhere.
			continue
		}
		content, diags := f.Body.Content(rootSchema)
		l.diags = append(l.diags, diags...)
		blocks = append(blocks, content.Blocks...)
	}

	// Declarations first, then what refers to them, so a reference can be
	// resolved whatever the file or the order it is written in.
	for _, kind := range []string{"target", "group", "right", "sudo_role", "account", "actor", "policy", "grant", "notify"} {
		for _, b := range blocks {
			if b.Type != kind {
				continue
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
				l.grant(b)
			case "notify":
				l.notify(b)
			}
		}
	}
	l.diags = dropEchoes(l.diags)
	scrub(l.diags, l.secrets)
	sortDiags(l.diags)
	return l.cfg, l.diags
}

// dropEchoes removes gohcl's "value must be known" errors, which only repeat
// a failed function call or a forbidden reference reported at the same
// place, and says where references are allowed.
func dropEchoes(diags hcl.Diagnostics) hcl.Diagnostics {
	out := diags[:0]
	for _, d := range diags {
		if d.Summary == "Unsuitable value type" && strings.Contains(d.Detail, "value must be known") && d.Subject != nil {
			echo := false
			for _, o := range diags {
				if o != d && o.Severity == hcl.DiagError && o.Subject != nil && o.Subject.Filename == d.Subject.Filename && o.Subject.Start == d.Subject.Start {
					echo = true
					break
				}
			}
			if echo {
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

// scrub replaces every secret (passwords, and env() values, which may be
// secrets used in the wrong attribute) in the diagnostics' text.
func scrub(diags hcl.Diagnostics, secrets []string) {
	for _, s := range secrets {
		if len(s) < minScrubLen {
			continue
		}
		for _, d := range diags {
			d.Summary = strings.ReplaceAll(d.Summary, s, redacted)
			d.Detail = strings.ReplaceAll(d.Detail, s, redacted)
		}
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
	secrets   []string          // env() values and passwords, never to appear in a diagnostic
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
	if !hclsyntax.ValidIdentifier(label) {
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

// attrs returns the block's attribute ranges (native syntax only).
func attrsOf(b *hcl.Block) blockAttrs {
	at := blockAttrs{decl: b.DefRange, ranges: map[string]hcl.Range{}}
	if sb, ok := b.Body.(*hclsyntax.Body); ok {
		for name, a := range sb.Attributes {
			at.ranges[name] = a.Expr.Range()
		}
		for _, nb := range sb.Blocks {
			at.ranges[nb.Type] = nb.DefRange()
			for name, a := range nb.Body.Attributes {
				at.ranges[nb.Type+"."+name] = a.Expr.Range()
			}
		}
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

	dt, diags, _ := decodeTargetBody(kind, b.Body, l.ctx, attrsOf(b))
	l.diags = append(l.diags, diags...)
	for _, pw := range []*Secret{secretOf(dt.LDAP), secretOf(dt.WinRM)} {
		if pw != nil && pw.IsSet() {
			l.secrets = append(l.secrets, pw.Reveal())
		}
	}
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
