package config

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/hashicorp/hcl/v2"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/function"
)

// evalContext carries only the functions: references (target.*, group.*,
// policy.*) are read as traversals and resolved by the loader, so no value
// of one block, and no secret, is ever reachable from another.
// Every value env() returns is passed to seen, so the loader can scrub it
// from diagnostics: an environment variable may hold a secret.
func evalContext(dir string, opts LoadOptions, seen func(string)) *hcl.EvalContext {
	lookup := opts.LookupEnv
	if lookup == nil {
		lookup = os.LookupEnv
	}
	planTime := opts.PlanTime
	if planTime.IsZero() {
		planTime = time.Now()
	}
	return &hcl.EvalContext{Functions: map[string]function.Function{
		"env":           envFunc(lookup, seen),
		"file":          fileFunc(dir),
		"plantimestamp": planTimestampFunc(planTime.UTC().Truncate(time.Second)),
		"timeadd":       timeAddFunc(),
	}}
}

// envFunc reads an environment variable. An unset variable is an error
// naming the variable; the value is never part of any message.
func envFunc(lookup func(string) (string, bool), seen func(string)) function.Function {
	return function.New(&function.Spec{
		Description: "The value of an environment variable; an error when it is not set.",
		Params:      []function.Parameter{{Name: "name", Type: cty.String}},
		Type:        function.StaticReturnType(cty.String),
		Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
			name := args[0].AsString()
			v, ok := lookup(name)
			if !ok {
				return cty.NilVal, fmt.Errorf("environment variable %s is not set", name)
			}
			if !utf8.ValidString(v) {
				return cty.NilVal, fmt.Errorf("environment variable %s is not valid UTF-8", name)
			}
			seen(v)
			return cty.StringVal(v), nil
		},
	})
}

// fileFunc reads a file relative to the config directory.
func fileFunc(dir string) function.Function {
	return function.New(&function.Spec{
		Description: "The contents of a file, relative to the config directory.",
		Params:      []function.Parameter{{Name: "path", Type: cty.String}},
		Type:        function.StaticReturnType(cty.String),
		Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
			p := args[0].AsString()
			if !filepath.IsAbs(p) {
				p = filepath.Join(dir, p)
			}
			b, err := os.ReadFile(p)
			if err != nil {
				return cty.NilVal, fmt.Errorf("read %s: %w", p, unwrapPathErr(err))
			}
			if !utf8.Valid(b) {
				return cty.NilVal, fmt.Errorf("%s is not valid UTF-8 text", p)
			}
			return cty.StringVal(string(b)), nil
		},
	})
}

// unwrapPathErr drops the *PathError wrapper whose path we print already.
func unwrapPathErr(err error) error {
	if pe, ok := err.(*os.PathError); ok {
		return pe.Err
	}
	return err
}

func planTimestampFunc(t time.Time) function.Function {
	return function.New(&function.Spec{
		Description: "The plan time (RFC 3339, UTC). A grant starting at it moves with every plan: for demos only.",
		Type:        function.StaticReturnType(cty.String),
		Impl: func([]cty.Value, cty.Type) (cty.Value, error) {
			return cty.StringVal(t.Format(time.RFC3339)), nil
		},
	})
}

// timeAddFunc adds a duration (config syntax, may be negative) to an RFC 3339 time.
func timeAddFunc() function.Function {
	return function.New(&function.Spec{
		Description: "Adds a duration such as \"2h\" or \"-1d\" to an RFC 3339 timestamp.",
		Params: []function.Parameter{
			{Name: "timestamp", Type: cty.String},
			{Name: "duration", Type: cty.String},
		},
		Type: function.StaticReturnType(cty.String),
		Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
			ts, err := time.Parse(time.RFC3339, args[0].AsString())
			if err != nil {
				return cty.NilVal, function.NewArgErrorf(0, "%q is not an RFC 3339 timestamp such as 2026-11-23T09:00:00Z", args[0].AsString())
			}
			ds := args[1].AsString()
			neg := strings.HasPrefix(ds, "-")
			d, err := ParseDuration(strings.TrimPrefix(ds, "-"))
			if err != nil {
				return cty.NilVal, function.NewArgError(1, err)
			}
			if neg {
				d = -d
			}
			return cty.StringVal(ts.Add(d).UTC().Format(time.RFC3339)), nil
		},
	})
}
