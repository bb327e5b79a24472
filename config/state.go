package config

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/gohcl"
)

// State is the repository's state block. A repository without one keeps
// its state in local files (.jitform/); one with `state "postgres"` keeps
// it in PostgreSQL and never falls back to local files.
type State struct {
	Kind     string // "postgres"
	Postgres *PostgresState

	DeclRange hcl.Range
}

// PostgresState is `state "postgres" { ... }`.
type PostgresState struct {
	// URL is the libpq connection string (postgres://user:pw@host/db or
	// key=value). It may hold a password: a Secret, never printed.
	URL Secret
	// Schema holds the tables (default "jitform": table jitform.ledger).
	Schema string
	// CAFile verifies the server certificate (sslrootcert); relative to
	// the config directory. TLS is verified (sslmode=verify-full) unless
	// the URL sets sslmode.
	CAFile string
}

// StateKinds are the state backends a state block may name.
var StateKinds = []string{"postgres"}

// url is a secret attribute (it may carry a password): like a target's
// password it may come from env(), read when the state is opened.
type postgresStateHCL struct {
	URL    hcl.Expression `hcl:"url"`
	Schema string         `hcl:"schema,optional"`
	CAFile string         `hcl:"ca_file,optional"`
}

var stateSchema = &hcl.BodySchema{Blocks: []hcl.BlockHeaderSchema{{Type: "state", LabelNames: []string{"kind"}}}}

var pgSchemaName = regexp.MustCompile(`^[a-z_][a-z0-9_]{0,62}$`)

// decodeStateBlocks checks every state block (at most one, of a known
// kind) and returns the one declared, or nil.
func decodeStateBlocks(dir string, opts LoadOptions, blocks []*hcl.Block, ctx *hcl.EvalContext) (*State, hcl.Diagnostics) {
	var diags hcl.Diagnostics
	var found *State
	for _, b := range blocks {
		if b.Type != "state" {
			continue
		}
		if found != nil {
			diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Duplicate state block",
				Detail: fmt.Sprintf("The state is already declared at %s; a repository has one state.", found.DeclRange), Subject: b.DefRange.Ptr()})
			continue
		}
		kind := b.Labels[0]
		if kind != "postgres" {
			diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Unknown state kind",
				Detail:  fmt.Sprintf("%q is not a state kind%s; the kinds are %s (without a state block, jitform keeps its state in .jitform/).", kind, suggest(kind, StateKinds), strings.Join(StateKinds, ", ")),
				Subject: b.LabelRanges[0].Ptr()})
			found = &State{Kind: kind, DeclRange: b.DefRange}
			continue
		}
		found = &State{Kind: kind, DeclRange: b.DefRange}
		var raw postgresStateHCL
		d := gohcl.DecodeBody(guardBodyAllowing(b.Body, "url"), ctx, &raw)
		diags = append(diags, d...)
		if d.HasErrors() {
			continue
		}
		at := attrsOf(b)
		bad := false
		if !at.has("url") {
			// gohcl never reports a missing hcl.Expression.
			diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Missing required argument",
				Detail: `The argument "url" is required in state "postgres": the database, e.g. url = env("JITFORM_STATE_URL").`, Subject: b.DefRange.Ptr()})
			continue
		}
		url, udiags := decodeSecret("url", raw.URL, ctx, dir, opts)
		diags = append(diags, udiags...)
		if udiags.HasErrors() {
			continue
		}
		if url.d == nil && strings.TrimSpace(url.Reveal()) == "" {
			diags = append(diags, at.errAt("url", "Empty state url", `url must be a PostgreSQL connection URL, e.g. url = env("JITFORM_STATE_URL") with postgres://jitform@db.example/jitform.`))
			bad = true
		}
		if raw.Schema == "" {
			raw.Schema = "jitform"
		} else if !pgSchemaName.MatchString(raw.Schema) {
			diags = append(diags, at.errAt("schema", "Invalid schema name",
				fmt.Sprintf("%q cannot name the schema: use lower-case letters, digits and underscores (at most 63, not starting with a digit).", raw.Schema)))
			bad = true
		}
		if raw.CAFile != "" {
			if !filepath.IsAbs(raw.CAFile) && dir != "" {
				raw.CAFile = filepath.Join(dir, raw.CAFile)
			}
			if _, err := os.Stat(raw.CAFile); err != nil {
				diags = append(diags, at.errAt("ca_file", "Cannot read ca_file", fmt.Sprintf("read %s: %v.", raw.CAFile, unwrapPathErr(err))))
				bad = true
			}
		}
		if !bad {
			found.Postgres = &PostgresState{URL: url, Schema: raw.Schema, CAFile: raw.CAFile}
		}
	}
	return found, diags
}

// LoadState reads only the state block of the repository in dir, for
// commands that open the state without needing the rest of the
// configuration (ledger, grant, init). It returns nil when no state block
// is declared. Files that do not parse are errors: jitform must not fall
// back to local files because it could not read the block that forbids it.
func LoadState(dir string, opts LoadOptions) (*State, hcl.Diagnostics) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, hcl.Diagnostics{{Severity: hcl.DiagError, Summary: "Cannot read the configuration directory",
			Detail: fmt.Sprintf("read %s: %v", dir, unwrapPathErr(err))}}
	}
	var secrets []string
	ctx := evalContext(dir, opts, deferredEnvFunc())
	var names []string
	for _, e := range entries {
		if n := e.Name(); !e.IsDir() && strings.HasSuffix(n, ".hcl") && !strings.HasPrefix(n, ".") {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	var diags hcl.Diagnostics
	var blocks []*hcl.Block
	// The files are parsed in parallel (as Load does) and handed to the
	// Load that follows (parseFileOnce): plan parses each file once.
	results := parseEach(len(names), func(i int) parsed {
		path := filepath.Join(dir, names[i])
		src, err := os.ReadFile(path)
		if err != nil {
			return parsed{diags: hcl.Diagnostics{{Severity: hcl.DiagError, Summary: "Cannot read a configuration file",
				Detail: fmt.Sprintf("read %s: %v", path, unwrapPathErr(err))}}}
		}
		f, d := parseFileOnce(src, path, true)
		return parsed{file: f, diags: d}
	})
	for _, r := range results {
		f, d := r.file, r.diags
		diags = append(diags, d...)
		if f == nil || d.HasErrors() {
			continue
		}
		content, _, d := f.Body.PartialContent(stateSchema)
		diags = append(diags, d...)
		blocks = append(blocks, content.Blocks...)
	}
	st, d := decodeStateBlocks(dir, opts, blocks, ctx)
	diags = dropEchoes(append(diags, d...))
	scrub(diags, secrets)
	return st, diags
}
